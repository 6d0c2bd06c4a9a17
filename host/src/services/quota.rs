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

use super::state::StateDb;
use passerelle_plugin_api::{HttpError, HttpErrorKind, Quotas};
use std::collections::HashMap;
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
const IN_FLIGHT_POLL: Duration = Duration::from_millis(2);

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
    slot: Option<(Arc<Mutex<Limiter>>, u64)>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((limiter, id)) = self.slot.take() {
            let now = Instant::now();
            let mut l = limiter
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for w in &mut l.windows {
                w.answered(id, now);
            }
        }
    }
}

/// All limiters of this process.
#[derive(Debug, Default)]
pub struct QuotaBook {
    limiters: Mutex<HashMap<String, Arc<Mutex<Limiter>>>>,
}

impl QuotaBook {
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

    /// Waits for a slot of `instance` and takes it; fails at once when the daily quota is
    /// spent. Keep the permit until the answer has arrived.
    pub async fn acquire(
        &self,
        state: &StateDb,
        instance: &str,
        quotas: Quotas,
    ) -> Result<Permit, HttpError> {
        let mut used_today = 0;
        if let Some(per_day) = quotas.per_day {
            let day = utc_day();
            let used = state.day_count(instance, &day).unwrap_or(0);
            used_today = used;
            if used >= u64::from(per_day) {
                crate::metrics::quota_exhausted(instance);
                return Err(HttpError {
                    kind: HttpErrorKind::Quota,
                    message: format!(
                        "the daily quota of {per_day} requests of instance `{instance}` is spent; it resets at {} 00:00 UTC",
                        next_utc_day()
                    ),
                });
            }
        }
        let mut permit = Permit { slot: None };
        if quotas.per_second.is_some() || quotas.per_minute.is_some() {
            let limiter = self.limiter(instance, quotas);
            let (queued, mut waited) = (Instant::now(), false);
            loop {
                let wait = {
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
                        permit.slot = Some((limiter.clone(), id));
                    }
                    wait
                };
                if wait.is_zero() {
                    if waited {
                        crate::metrics::quota_wait(instance, queued.elapsed());
                    }
                    break;
                }
                waited = true;
                tokio::time::sleep(wait).await;
            }
        }
        if let Some(per_day) = quotas.per_day {
            if let Err(e) = state.count_request(instance, &utc_day()) {
                tracing::warn!(instance, error = %e, "cannot count the request against the daily quota");
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
        QuotaBook::default()
            .acquire(&db, "other", quotas)
            .await
            .unwrap();
    }
}
