//! Per-instance rate limits, enforced by the host for every request a plugin sends.
//!
//! Providers count requests in *rolling* windows and refuse the excess (HTTP 429), so the
//! limiter is a sliding-window log, not a token bucket: a bucket of N tokens refilled at N/s
//! lets 2N requests through in one rolling second at its boundary, which a strict provider
//! refuses. Here a request is admitted only when fewer than N were admitted in the last
//! window; otherwise it *waits* for the oldest one to leave the window (plus a small margin
//! for network jitter). Requests queue instead of failing.
//!
//! The daily quota is a counter per instance and UTC day in the state database, so it
//! survives restarts; when it is spent, calls fail at once with the time it resets.
//!
//! Waiting is visible: a request that would have to wait past its call's deadline is not
//! queued to fail later, it is refused at once ([`QuotaDenied`]) saying when capacity returns
//! (the API answers `429 quota_exhausted` with `Retry-After`), and every shorter wait is
//! logged with its instance, operation and length and counted in [`WaitCounters`].

use super::shared_window::{Rule, SharedWindowError, SharedWindows};
use super::state::StateDb;
use crate::storage::quota::PgWindows;
use passerelle_plugin_api::{HttpError, HttpErrorKind, Quotas};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A request's slot in a window: taken when the request is admitted, stamped when its
/// answer arrived. The provider received it somewhere in between, so the slot is only freed
/// a whole window after the *answer*: however late the request reached the provider, the
/// next one admitted into that slot reaches it more than a window later. That is what keeps
/// a strict provider from ever counting N+1, whatever the jitter; the cost is the round-trip
/// time per window (about 1 % against a local service).
#[derive(Debug)]
struct Slot {
    id: u64,
    /// `None` while the request is in flight.
    answered: Option<Instant>,
}

#[derive(Debug)]
struct Window {
    limit: usize,
    length: Duration,
    slots: Vec<Slot>,
}

/// How often a request waiting for in-flight ones to finish looks again.
pub(crate) const IN_FLIGHT_POLL: Duration = Duration::from_millis(2);

impl Window {
    fn new(limit: u32, length: Duration) -> Self {
        Window {
            limit: limit.max(1) as usize,
            length,
            slots: Vec::new(),
        }
    }

    /// How long to wait before a request may be admitted (zero: now).
    fn wait(&mut self, now: Instant) -> Duration {
        let length = self.length;
        self.slots
            .retain(|s| s.answered.is_none_or(|t| now.duration_since(t) < length));
        if self.slots.len() < self.limit {
            return Duration::ZERO;
        }
        self.slots
            .iter()
            .filter_map(|s| s.answered)
            .min()
            .map(|t| (t + length).saturating_duration_since(now))
            .unwrap_or(IN_FLIGHT_POLL)
            .max(Duration::from_micros(100))
    }

    fn answered(&mut self, id: u64, at: Instant) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.id == id) {
            slot.answered = Some(at);
        }
    }
}

#[derive(Debug)]
struct Limiter {
    quotas: Quotas,
    windows: Vec<Window>,
    next_id: u64,
}

/// A request admitted by the limiter. Dropping it (when the answer arrived or the request
/// failed) stamps its slots.
#[derive(Debug)]
pub struct Permit {
    slot: Option<Taken>,
}

#[derive(Debug)]
enum Taken {
    Local(Arc<Mutex<Limiter>>, u64),
    Shared(Arc<SharedWindows>, i64),
    Cluster(Arc<PgWindows>, i64),
}

impl Drop for Permit {
    fn drop(&mut self) {
        match self.slot.take() {
            Some(Taken::Local(limiter, id)) => {
                let now = Instant::now();
                let mut l = limiter
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for w in &mut l.windows {
                    w.answered(id, now);
                }
            }
            Some(Taken::Shared(windows, slot)) => windows.answered(slot),
            Some(Taken::Cluster(windows, slot)) => windows.answered(slot),
            None => {}
        }
    }
}

/// All limiters of this process. With [`QuotaBook::shared`], the windows are shared with
/// every process of the data directory ([`super::shared_window`]); with
/// [`QuotaBook::clustered`], with every process of every node on one PostgreSQL database
/// ([`crate::storage::quota`]); otherwise they are this process's own.
#[derive(Debug, Default)]
pub struct QuotaBook {
    limiters: Mutex<HashMap<String, Arc<Mutex<Limiter>>>>,
    shared: Option<Arc<SharedWindows>>,
    cluster: Option<Arc<PgWindows>>,
    /// What waiting for quota cost this process (read by metrics and tests).
    pub counters: WaitCounters,
}

/// Quota waits and refusals of this process since it started.
#[derive(Debug, Default)]
pub struct WaitCounters {
    /// Requests that waited for a slot (and then went out).
    pub waits: AtomicU64,
    /// Their waits added up, in milliseconds.
    pub waited_ms: AtomicU64,
    /// Requests refused at once because capacity returns after their deadline, or the
    /// daily quota is spent.
    pub refused: AtomicU64,
}

impl WaitCounters {
    /// `(waits, waited_ms, refused)` now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.waits.load(Ordering::Relaxed),
            self.waited_ms.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

/// A request refused by the quota without waiting: when capacity returns is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDenied {
    /// Says which quota, when it frees up and why the request did not wait.
    pub message: String,
    /// Whole seconds until capacity returns (at least 1): the API's `Retry-After`.
    pub retry_after_secs: u64,
}

impl From<QuotaDenied> for HttpError {
    fn from(d: QuotaDenied) -> Self {
        HttpError {
            kind: HttpErrorKind::Quota,
            message: format!("{}; retry after {} s", d.message, d.retry_after_secs),
        }
    }
}

/// The caller's `Prefer: wait=<seconds>` (RFC 7240, section 4.3): how long it will wait for
/// the answer. At least one second; an absent or malformed preference is `None`.
pub fn preferred_wait(headers: &axum::http::HeaderMap) -> Option<Duration> {
    headers
        .get_all(axum::http::header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pref| {
            let (name, value) = pref.split(';').next()?.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())?
        })
        .next()
        .map(|secs| Duration::from_secs(secs.max(1)))
}

fn describe(quotas: Quotas) -> String {
    let mut parts = Vec::new();
    if let Some(n) = quotas.per_second {
        parts.push(format!("{n} per second"));
    }
    if let Some(n) = quotas.per_minute {
        parts.push(format!("{n} per minute"));
    }
    parts.join(", ")
}

impl QuotaBook {
    /// Windows kept in `path`, shared by the processes that open the same file.
    pub fn shared(path: &std::path::Path) -> Result<Self, SharedWindowError> {
        Ok(QuotaBook {
            shared: Some(Arc::new(SharedWindows::open(path)?)),
            ..QuotaBook::default()
        })
    }

    /// Windows kept in PostgreSQL, shared by every node of the database.
    pub fn clustered(pg: Arc<crate::storage::Pg>) -> Result<Self, crate::storage::PgError> {
        Ok(QuotaBook {
            cluster: Some(Arc::new(PgWindows::open(pg)?)),
            ..QuotaBook::default()
        })
    }

    fn limiter(&self, instance: &str, quotas: Quotas) -> Arc<Mutex<Limiter>> {
        let mut all = self
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = all.entry(instance.to_owned()).or_insert_with(|| {
            Arc::new(Mutex::new(Limiter {
                quotas: Quotas::default(),
                windows: Vec::new(),
                next_id: 0,
            }))
        });
        let mut limiter = entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if limiter.quotas != quotas {
            // A config change (e.g. sandbox → production) replaces the windows.
            let mut windows = Vec::new();
            if let Some(n) = quotas.per_second {
                windows.push(Window::new(n, Duration::from_secs(1)));
            }
            if let Some(n) = quotas.per_minute {
                windows.push(Window::new(n, Duration::from_secs(60)));
            }
            limiter.quotas = quotas;
            limiter.windows = windows;
        }
        drop(limiter);
        entry.clone()
    }

    /// Takes a slot of this process's own windows (zero) or says how long to wait.
    fn try_take_local(&self, instance: &str, quotas: Quotas, permit: &mut Permit) -> Duration {
        let limiter = self.limiter(instance, quotas);
        let mut l = limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let wait = l
            .windows
            .iter_mut()
            .map(|w| w.wait(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() {
            l.next_id += 1;
            let id = l.next_id;
            for w in &mut l.windows {
                w.slots.push(Slot { id, answered: None });
            }
            permit.slot = Some(Taken::Local(limiter.clone(), id));
        }
        wait
    }

    /// The refusal of a request once the daily quota is spent (counted and measured).
    fn daily_spent(&self, instance: &str, per_day: u32) -> QuotaDenied {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        crate::metrics::quota_exhausted(instance);
        let to_midnight = 86_400 - (super::state::now_ms() / 1000).rem_euclid(86_400);
        QuotaDenied {
            message: format!(
                "the daily quota of {per_day} requests of instance `{instance}` is spent; it resets at {} 00:00 UTC",
                next_utc_day()
            ),
            retry_after_secs: u64::try_from(to_midnight).unwrap_or(1).max(1),
        }
    }

    /// Waits for a slot of `instance` and takes it; fails at once when the daily quota is
    /// spent. Keep the permit until the answer has arrived.
    pub async fn acquire(
        &self,
        state: &StateDb,
        instance: &str,
        quotas: Quotas,
    ) -> Result<Permit, HttpError> {
        self.acquire_until(state, instance, quotas, None, "")
            .await
            .map_err(HttpError::from)
    }

    /// [`QuotaBook::acquire`] for a call that ends at `deadline`: a request whose slot
    /// frees up only after it is refused at once, saying when; a shorter wait is logged
    /// (instance, operation, wait) and counted.
    pub async fn acquire_until(
        &self,
        state: &StateDb,
        instance: &str,
        quotas: Quotas,
        deadline: Option<Instant>,
        operation: &str,
    ) -> Result<Permit, QuotaDenied> {
        let mut used_today = 0;
        if let Some(per_day) = quotas.per_day {
            let day = utc_day();
            let used = state.day_count(instance, &day).unwrap_or(0);
            used_today = used;
            if used >= u64::from(per_day) {
                return Err(self.daily_spent(instance, per_day));
            }
        }
        let started = Instant::now();
        let mut permit = Permit { slot: None };
        let rules: Vec<Rule> = [
            (quotas.per_second, Duration::from_secs(1)),
            (quotas.per_minute, Duration::from_secs(60)),
        ]
        .into_iter()
        .filter_map(|(limit, length)| limit.map(|limit| Rule { limit, length }))
        .collect();
        let mut slept = false;
        if !rules.is_empty() {
            loop {
                let wait = match (&self.cluster, &self.shared) {
                    (Some(cluster), _) => match cluster.try_take(instance, &rules).await {
                        Ok(Ok(slot)) => {
                            permit.slot = Some(Taken::Cluster(cluster.clone(), slot));
                            Duration::ZERO
                        }
                        Ok(Err(wait)) => wait,
                        Err(e) => {
                            return Err(QuotaDenied {
                                message: format!("cannot take a provider quota slot: {e}"),
                                retry_after_secs: 1,
                            })
                        }
                    },
                    (None, Some(shared)) => match shared.try_take(instance, &rules) {
                        Ok(Ok(slot)) => {
                            permit.slot = Some(Taken::Shared(shared.clone(), slot));
                            Duration::ZERO
                        }
                        Ok(Err(wait)) => wait,
                        Err(e) => {
                            return Err(QuotaDenied {
                                message: e.to_string(),
                                retry_after_secs: 1,
                            })
                        }
                    },
                    (None, None) => self.try_take_local(instance, quotas, &mut permit),
                };
                if wait.is_zero() {
                    break;
                }
                let now = Instant::now();
                if let Some(deadline) = deadline.filter(|d| now + wait > *d) {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    let left = deadline.saturating_duration_since(now);
                    tracing::warn!(
                        instance,
                        operation,
                        wait_ms = wait.as_millis() as u64,
                        "refused at once: the provider quota frees up after the call's deadline"
                    );
                    return Err(QuotaDenied {
                        message: format!(
                            "instance `{instance}` is at its provider quota ({}): capacity returns in {:.1} s, after this call's deadline ({:.1} s left), so the call was not queued",
                            describe(quotas),
                            wait.as_secs_f64(),
                            left.as_secs_f64()
                        ),
                        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                    });
                }
                slept = true;
                tokio::time::sleep(wait).await;
            }
            let waited = started.elapsed();
            if slept {
                crate::metrics::quota_wait(instance, waited);
                let wait_ms = waited.as_millis() as u64;
                self.counters.waits.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .waited_ms
                    .fetch_add(wait_ms, Ordering::Relaxed);
                if waited >= Duration::from_secs(1) {
                    tracing::warn!(
                        instance,
                        operation,
                        wait_ms,
                        "waited for the provider quota"
                    );
                } else {
                    tracing::info!(
                        instance,
                        operation,
                        wait_ms,
                        "waited for the provider quota"
                    );
                }
            }
        }
        if let Some(per_day) = quotas.per_day {
            // Counted only while under the cap, in one statement: processes and nodes that
            // all saw room above cannot pass the cap together.
            match state.count_request_within(instance, &utc_day(), u64::from(per_day)) {
                Ok(true) => {}
                Ok(false) => return Err(self.daily_spent(instance, per_day)),
                Err(e) => {
                    tracing::warn!(instance, error = %e, "cannot count the request against the daily quota");
                }
            }
            let remaining = u64::from(per_day).saturating_sub(used_today + 1);
            crate::metrics::quota_daily_remaining(instance, remaining);
        }
        Ok(permit)
    }
}

fn days_since_epoch() -> i64 {
    super::state::now_ms() / 86_400_000
}

fn civil(days: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// Today, UTC, as `YYYY-MM-DD`.
pub fn utc_day() -> String {
    civil(days_since_epoch())
}

fn next_utc_day() -> String {
    civil(days_since_epoch() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), "1970-01-01");
        assert_eq!(civil(20_785), "2026-11-28");
        assert_eq!(civil(11_016), "2000-02-29");
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_n_in_any_rolling_second() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.db")).unwrap();
        let book = QuotaBook::default();
        let quotas = Quotas {
            per_second: Some(5),
            ..Quotas::default()
        };
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..20 {
            let permit = book.acquire(&db, "i", quotas).await.unwrap();
            times.push(Instant::now());
            drop(permit);
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            assert!(in_window <= 5, "{in_window} requests within a second");
        }
        // 20 requests at 5/s: the 16th waits for the third window.
        assert!(start.elapsed() >= Duration::from_secs(3));
        assert!(start.elapsed() < Duration::from_millis(3200));
    }

    #[tokio::test(start_paused = true)]
    async fn books_sharing_a_file_never_admit_more_than_n_together() {
        // Two books on one quota file: two processes on one data directory.
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(StateDb::open(&dir.path().join("s.db")).unwrap());
        let path = dir.path().join("quota.sqlite3");
        let books = [
            Arc::new(QuotaBook::shared(&path).unwrap()),
            Arc::new(QuotaBook::shared(&path).unwrap()),
        ];
        let quotas = Quotas {
            per_second: Some(5),
            ..Quotas::default()
        };
        let start = Instant::now();
        let mut tasks = Vec::new();
        for book in books {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::new();
                for _ in 0..10 {
                    let permit = book.acquire(&db, "i", quotas).await.unwrap();
                    times.push(Instant::now());
                    drop(permit);
                }
                times
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.extend(t.await.unwrap());
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            assert!(in_window <= 5, "{in_window} requests within a second");
        }
        // 20 requests at 5/s between them, as for one book.
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(
            start.elapsed() < Duration::from_millis(3300),
            "{:?}",
            start.elapsed()
        );
        // Another instance has its own window.
        let other = QuotaBook::shared(&path).unwrap();
        let before = Instant::now();
        drop(other.acquire(&db, "j", quotas).await.unwrap());
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[test]
    fn a_slot_held_by_a_dead_process_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quota.sqlite3");
        let windows = SharedWindows::open(&path).unwrap();
        let rule = [Rule {
            limit: 1,
            length: Duration::from_secs(60),
        }];
        // A slot in flight of a process that exited (a child that has been reaped).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = i64::from(child.id());
        child.wait().unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO quota_slots (instance, pid, taken_ms) VALUES ('i', ?1, ?2)",
            rusqlite::params![dead, super::super::state::now_ms()],
        )
        .unwrap();
        // Its slot counts as answered now: the window is full for a minute, not forever.
        let wait = windows.try_take("i", &rule).unwrap().unwrap_err();
        assert!(
            wait > Duration::from_secs(59) && wait <= Duration::from_secs(61),
            "{wait:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_freed_a_window_after_the_answer_not_the_admission() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.db")).unwrap();
        let book = QuotaBook::default();
        let quotas = Quotas {
            per_second: Some(1),
            ..Quotas::default()
        };
        let first = book.acquire(&db, "i", quotas).await.unwrap();
        // The answer takes 400 ms to come back.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let answered = Instant::now();
        drop(first);
        book.acquire(&db, "i", quotas).await.unwrap();
        assert!(Instant::now().duration_since(answered) >= Duration::from_secs(1));
    }

    /// Issue 19: a call over quota waited silently (a Sirene lookup answered after 6 s).
    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_is_refused_at_once_and_a_shorter_one_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.db")).unwrap();
        let book = QuotaBook::default();
        let quotas = Quotas {
            per_second: Some(1),
            ..Quotas::default()
        };
        drop(book.acquire(&db, "i", quotas).await.unwrap());
        assert_eq!(book.counters.snapshot(), (0, 0, 0), "no wait yet");

        let before = Instant::now();
        let denied = book
            .acquire_until(
                &db,
                "i",
                quotas,
                Some(before + Duration::from_millis(300)),
                "company.lookup",
            )
            .await
            .unwrap_err();
        assert_eq!(Instant::now(), before, "the refusal did not come at once");
        assert_eq!(denied.retry_after_secs, 1);
        assert!(
            denied.message.contains("instance `i`")
                && denied.message.contains("1 per second")
                && denied.message.contains("capacity returns in 1.0 s")
                && denied.message.contains("deadline"),
            "{}",
            denied.message
        );
        assert_eq!(book.counters.snapshot(), (0, 0, 1));
        let http = HttpError::from(denied);
        assert_eq!(http.kind, HttpErrorKind::Quota);
        assert!(
            http.message.ends_with("retry after 1 s"),
            "{}",
            http.message
        );

        // A deadline beyond the wait: the call waits, and the wait is counted.
        book.acquire_until(
            &db,
            "i",
            quotas,
            Some(Instant::now() + Duration::from_secs(5)),
            "company.lookup",
        )
        .await
        .unwrap();
        let (waits, waited_ms, refused) = book.counters.snapshot();
        assert_eq!((waits, refused), (1, 1));
        assert!((1000..1100).contains(&waited_ms), "{waited_ms}");
    }

    #[test]
    fn the_callers_wait_preference_is_read_from_prefer() {
        use axum::http::{HeaderMap, HeaderValue};
        let with = |values: &[&'static str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("prefer", HeaderValue::from_static(v));
            }
            preferred_wait(&h)
        };
        assert_eq!(with(&["wait=5"]), Some(Duration::from_secs(5)));
        assert_eq!(
            with(&["respond-async, Wait = 12"]),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            with(&["return=minimal", "wait=\"3\""]),
            Some(Duration::from_secs(3))
        );
        assert_eq!(with(&["wait=0"]), Some(Duration::from_secs(1)));
        assert_eq!(with(&["wait=soon"]), None);
        assert_eq!(with(&["handling=strict"]), None);
        assert_eq!(with(&[]), None);
    }

    #[tokio::test]
    async fn daily_quota_survives_and_says_when_it_resets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let quotas = Quotas {
            per_day: Some(2),
            ..Quotas::default()
        };
        {
            let db = StateDb::open(&path).unwrap();
            let book = QuotaBook::default();
            drop(book.acquire(&db, "i", quotas).await.unwrap());
            drop(book.acquire(&db, "i", quotas).await.unwrap());
        }
        let db = StateDb::open(&path).unwrap();
        let err = QuotaBook::default()
            .acquire(&db, "i", quotas)
            .await
            .unwrap_err();
        assert_eq!(err.kind, HttpErrorKind::Quota);
        assert!(
            err.message.contains("resets at") && err.message.contains("UTC"),
            "{}",
            err.message
        );
        let denied = QuotaBook::default()
            .acquire_until(&db, "i", quotas, None, "company.lookup")
            .await
            .unwrap_err();
        assert!(
            (1..=86_400).contains(&denied.retry_after_secs),
            "Retry-After is the time to the next UTC midnight: {}",
            denied.retry_after_secs
        );
        QuotaBook::default()
            .acquire(&db, "other", quotas)
            .await
            .unwrap();
    }

    /// Two books on one PostgreSQL database: two nodes of a cluster. The slots' own times
    /// (the database clock) never hold more than N in any rolling second, and the pair is as
    /// fast as one book.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_sharing_a_database_never_admit_more_than_n_together() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("quota_cluster") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(StateDb::open(&dir.path().join("s.db")).unwrap());
        let books = [
            Arc::new(QuotaBook::clustered(pg.clone()).unwrap()),
            Arc::new(QuotaBook::clustered(pg.clone()).unwrap()),
        ];
        let quotas = Quotas {
            per_second: Some(5),
            ..Quotas::default()
        };
        let start = std::time::Instant::now();
        let mut tasks = Vec::new();
        for book in books {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    let permit = book.acquire(&db, "i", quotas).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    drop(permit);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        let taken: Vec<i64> = pg
            .run(|pool| async move {
                let rows = pool
                    .get()
                    .await?
                    .query(
                        "SELECT taken_ms FROM quota_slots WHERE instance = 'i' ORDER BY taken_ms",
                        &[],
                    )
                    .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
            .unwrap();
        assert_eq!(taken.len(), 20);
        for (i, t) in taken.iter().enumerate() {
            let in_window = taken[i..].iter().filter(|u| **u - *t < 1000).count();
            assert!(
                in_window <= 5,
                "{in_window} requests within a second: {taken:?}"
            );
        }
        assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(4000), "{elapsed:?}");
    }

    /// A node killed with a request in flight: its slot is counted as answered by the next
    /// node, at once (its liveness lock went with its connections); a live node's is not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slot_in_flight_of_a_gone_node_is_released_and_a_live_ones_is_not() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("quota_gone") else {
            return;
        };
        let rule = [Rule {
            limit: 1,
            length: Duration::from_secs(60),
        }];
        let windows = PgWindows::open(pg.clone()).unwrap();
        let other = PgWindows::open(pg.clone()).unwrap();
        // Another live node's request in flight: wait for its answer, polling.
        let slot = other.try_take("live", &rule).await.unwrap().unwrap();
        let wait = windows.try_take("live", &rule).await.unwrap().unwrap_err();
        assert_eq!(wait, IN_FLIGHT_POLL, "{wait:?}");
        other.answered(slot);
        let wait = windows.try_take("live", &rule).await.unwrap().unwrap_err();
        assert!(wait > Duration::from_secs(59), "{wait:?}");
        // A slot of a holder whose lock nobody holds (its process is gone).
        let gone = windows.holder().wrapping_add(1);
        pg.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO quota_slots (instance, holder, taken_ms)
                     VALUES ('dead', $1, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)",
                    &[&gone],
                )
                .await?;
            Ok(())
        })
        .unwrap();
        let wait = windows.try_take("dead", &rule).await.unwrap().unwrap_err();
        assert!(
            wait > Duration::from_secs(59) && wait <= Duration::from_secs(61),
            "the dead node's slot counts as answered now, for a minute: {wait:?}"
        );
    }

    /// The daily cap holds across nodes: the request that finds the cap reached after its
    /// wait is refused, not counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_daily_cap_is_shared_by_the_nodes_of_a_database() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("quota_daily") else {
            return;
        };
        let db = Arc::new(StateDb::postgres(pg.clone()));
        let quotas = Quotas {
            per_day: Some(3),
            ..Quotas::default()
        };
        let books = [
            QuotaBook::clustered(pg.clone()).unwrap(),
            QuotaBook::clustered(pg).unwrap(),
        ];
        let mut admitted = 0;
        for round in 0..3 {
            for book in &books {
                if book.acquire(&db, "i", quotas).await.is_ok() {
                    admitted += 1;
                } else {
                    assert!(round >= 1);
                }
            }
        }
        assert_eq!(admitted, 3);
        assert_eq!(db.day_count("i", &utc_day()).unwrap(), 3);
        assert_eq!(
            books[0].counters.snapshot().2 + books[1].counters.snapshot().2,
            3
        );
    }
}
