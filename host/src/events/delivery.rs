//! The delivery worker of `passerelle serve`: sends the outbox's pending deliveries as signed
//! HTTP POSTs, retries them with exponential back-off, and records every attempt.
//!
//! - **At least once**: a delivery is marked delivered only after the receiver answered 2xx,
//!   so a host killed mid-send sends it again after restart, with the same
//!   `X-Passerelle-Delivery` (the event id). Receivers drop ids they have seen.
//! - **In order per instance**: per webhook and instance, only the oldest pending delivery is
//!   in flight ([`super::outbox::Outbox::due`]); a failing one holds back its instance's later
//!   events for that webhook, and nothing else.
//! - **Once per cluster**: on PostgreSQL several `serve` nodes run this worker on one outbox;
//!   `due` leases what it returns to this node, and what the worker does not start now is
//!   released at once.
//! - **Retries**: after failed attempt *n* the next comes `base × 2^(n-1)` later (capped at
//!   `max`, plus up to 10 % jitter), until `retry_for` has passed since the delivery was
//!   queued (default 3 days, at least 24 h); then it is `failed` and `replay` sends it again.
//!   `PASSERELLE_WEBHOOK_RETRY_BASE_MS`, `…_MAX_MS` and `…_FOR_SECS` change these (tests use
//!   a short base).
//!
//! Deliveries use the host's HTTP client, so the certificate authorities added with
//! `passerelle trust add` apply to the ERP's receiver too.

use super::outbox::{DeliveryState, Due, Outbox};
use super::signature;
use super::webhooks::{self, Target};
use crate::engine::Engine;
use crate::services::state::now_ms;
use passerelle_plugin_api::events::{types, Event};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BASE_ENV: &str = "PASSERELLE_WEBHOOK_RETRY_BASE_MS";
pub const MAX_ENV: &str = "PASSERELLE_WEBHOOK_RETRY_MAX_MS";
pub const FOR_ENV: &str = "PASSERELLE_WEBHOOK_RETRY_FOR_SECS";

/// Deliveries in flight at once (to distinct webhook and instance pairs).
const MAX_IN_FLIGHT: usize = 16;
/// Longest wait between two looks at the outbox: events stored by other processes (a CLI
/// task run) are seen within this.
const POLL: Duration = Duration::from_millis(500);
/// Events older than this, with nothing pending, are forgotten.
const RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// When attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// How long after being queued a delivery is still retried.
    pub retry_for: Duration,
    /// Deadline of one attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(10),
            max: Duration::from_secs(3600),
            retry_for: Duration::from_secs(3 * 24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not a whole number {expected}; fix or unset it")]
pub struct PolicyError {
    var: &'static str,
    value: String,
    expected: &'static str,
}

fn env_u64(
    var: &'static str,
    expected: &'static str,
    min: u64,
) -> Result<Option<u64>, PolicyError> {
    match std::env::var(var) {
        Ok(value) => value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|v| *v >= min)
            .map(Some)
            .ok_or(PolicyError {
                var,
                value,
                expected,
            }),
        Err(_) => Ok(None),
    }
}

impl RetryPolicy {
    /// The default policy, changed by the environment variables above.
    pub fn from_env() -> Result<Self, PolicyError> {
        let mut p = RetryPolicy::default();
        if let Some(ms) = env_u64(BASE_ENV, "of milliseconds (at least 1)", 1)? {
            p.base = Duration::from_millis(ms);
        }
        if let Some(ms) = env_u64(MAX_ENV, "of milliseconds (at least 1)", 1)? {
            p.max = Duration::from_millis(ms);
        }
        if let Some(s) = env_u64(FOR_ENV, "of seconds (at least 1)", 1)? {
            p.retry_for = Duration::from_secs(s);
        }
        Ok(p)
    }

    /// The wait after failed attempt number `attempt` (from 1), without jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AttemptOutcome {
    /// The receiver's HTTP status, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it is not delivered (absent when delivered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl AttemptOutcome {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// The one place where a delivery's outcome and the backlog are both known: logs and metrics
/// (webhook deliveries by outcome, backlog gauge).
fn delivery_observed(
    webhook: &str,
    event: &Event,
    outcome: &AttemptOutcome,
    state: DeliveryState,
    backlog: u64,
) {
    crate::metrics::webhook_delivery(match state {
        DeliveryState::Delivered => crate::metrics::DeliveryOutcome::Delivered,
        DeliveryState::Pending => crate::metrics::DeliveryOutcome::Retry,
        DeliveryState::Failed => crate::metrics::DeliveryOutcome::Failed,
    });
    crate::metrics::webhook_backlog(backlog);
    match state {
        DeliveryState::Delivered => {
            tracing::info!(webhook, event = %event.id, kind = %event.kind, instance = %event.instance, ms = outcome.duration_ms, backlog, "webhook delivered")
        }
        DeliveryState::Pending => {
            tracing::warn!(webhook, event = %event.id, kind = %event.kind, instance = %event.instance, error = outcome.error.as_deref().unwrap_or(""), backlog, "webhook delivery failed; retried later")
        }
        DeliveryState::Failed => {
            tracing::error!(webhook, event = %event.id, kind = %event.kind, instance = %event.instance, error = outcome.error.as_deref().unwrap_or(""), backlog, "webhook delivery given up after its retry window; `passerelle webhooks replay` sends it again")
        }
    }
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    crate::redact::redact(&text)
}

/// Sends one event to one webhook, once.
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    event: &Event,
    attempt: u32,
    timeout: Duration,
) -> AttemptOutcome {
    let started = Instant::now();
    let body = serde_json::to_vec(event).unwrap_or_default();
    let timestamp = now_ms() / 1000;
    let request = client
        .post(&target.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signature::EVENT_HEADER, &event.kind)
        .header(signature::DELIVERY_HEADER, &event.id)
        .header(signature::TIMESTAMP_HEADER, timestamp.to_string())
        .header(
            signature::SIGNATURE_HEADER,
            signature::sign(&target.secret, timestamp, &body),
        )
        .header(signature::ATTEMPT_HEADER, attempt.to_string())
        .body(body);
    let (status, error) = match request.send().await {
        Ok(response) => {
            let status = response.status();
            // Read (a little of) the answer so the connection can be reused.
            let _ = response.bytes().await;
            if status.is_success() {
                (Some(status.as_u16()), None)
            } else {
                (
                    Some(status.as_u16()),
                    Some(format!("the receiver answered HTTP {status}")),
                )
            }
        }
        Err(e) => (None, Some(error_chain(&e))),
    };
    AttemptOutcome {
        status,
        error,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// `webhooks test`: sends a `webhook.ping` event to one webhook now, outside the outbox.
pub async fn ping(
    engine: &Engine,
    id: &str,
) -> Result<(Event, AttemptOutcome), webhooks::WebhookError> {
    let target = webhooks::find(&engine.services.events, &engine.key, id)?;
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let event = Event {
        id: format!("evt-{}", signature::hex(&bytes)),
        kind: types::WEBHOOK_PING.to_owned(),
        instance: String::new(),
        time: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        data: serde_json::json!({"webhook": id}),
    };
    let outcome = send(
        &engine.services.http.client(),
        &target,
        &event,
        1,
        RetryPolicy::default().timeout,
    )
    .await;
    Ok((event, outcome))
}

/// Where the next state of a delivery comes from: the outcome, its age and the policy.
fn next_state(
    policy: &RetryPolicy,
    due: &Due,
    outcome: &AttemptOutcome,
    now: i64,
) -> (DeliveryState, i64) {
    if outcome.delivered() {
        return (DeliveryState::Delivered, now);
    }
    let delay = policy.delay(due.attempts + 1);
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=delay.as_millis() / 10);
    let next = now
        .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
        .saturating_add(i64::try_from(jitter).unwrap_or(0));
    let window_end = due
        .created_ms
        .saturating_add(i64::try_from(policy.retry_for.as_millis()).unwrap_or(i64::MAX));
    if next > window_end {
        (DeliveryState::Failed, next)
    } else {
        (DeliveryState::Pending, next)
    }
}

/// Starts the worker; it runs until the process ends.
pub fn spawn(engine: Arc<Engine>) -> Result<tokio::task::JoinHandle<()>, PolicyError> {
    let policy = RetryPolicy::from_env()?;
    Ok(tokio::spawn(run(engine, policy)))
}

async fn run(engine: Arc<Engine>, policy: RetryPolicy) {
    let outbox: &Outbox = &engine.services.events;
    let mut in_flight: HashSet<(String, String)> = HashSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut targets: HashMap<String, (String, Option<Target>)> = HashMap::new();
    let mut pruned = Instant::now();
    loop {
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            match outbox.prune(now_ms() - RETENTION_MS) {
                Ok(n) if n > 0 => {
                    tracing::info!(events = n, "forgot delivered events older than 30 days")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune the event outbox"),
            }
        }
        let due = match outbox.due(now_ms(), 64) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "the delivery worker cannot read the outbox");
                Vec::new()
            }
        };
        let nothing_due = due.is_empty();
        if !nothing_due {
            refresh_targets(&engine, &mut targets);
        }
        let client = engine.services.http.client();
        for d in due {
            let key = (d.webhook.clone(), d.event.instance.clone());
            let target = match targets.get(&d.webhook) {
                Some((_, Some(target)))
                    if in_flight.len() < MAX_IN_FLIGHT && !in_flight.contains(&key) =>
                {
                    target
                }
                _ => {
                    // Not now: give it back to the cluster (leased on PostgreSQL).
                    if let Err(e) = outbox.release(&d.webhook, d.seq) {
                        tracing::warn!(error = %e, "cannot release a webhook delivery; another node takes it after its lease");
                    }
                    continue;
                }
            };
            in_flight.insert(key.clone());
            let (engine, target, client) = (engine.clone(), target.clone(), client.clone());
            tasks.spawn(async move {
                let outcome = send(&client, &target, &d.event, d.attempts + 1, policy.timeout).await;
                let (state, next) = next_state(&policy, &d, &outcome, now_ms());
                let outbox = &engine.services.events;
                if let Err(e) = outbox.record_attempt(
                    &d.webhook,
                    d.seq,
                    outcome.status,
                    outcome.error.as_deref(),
                    i64::try_from(outcome.duration_ms).unwrap_or(i64::MAX),
                    state,
                    next,
                ) {
                    tracing::error!(error = %e, "cannot record a webhook delivery; it will be sent again");
                }
                let backlog = outbox.backlog().unwrap_or(0);
                delivery_observed(&d.webhook, &d.event, &outcome, state, backlog);
                key
            });
        }
        // Sleep until the next due delivery only when nothing was due now: a due delivery
        // that could not start (its webhook's secret cannot be opened) must not spin the loop.
        let wait = if in_flight.is_empty() && nothing_due {
            match outbox.next_due_ms() {
                Ok(Some(next)) => {
                    Duration::from_millis(u64::try_from(next - now_ms()).unwrap_or(0)).min(POLL)
                }
                _ => POLL,
            }
        } else {
            POLL
        };
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(key) = done {
                    in_flight.remove(&key);
                } else {
                    // A panicking delivery task: forget every key, the outbox still has them.
                    in_flight.clear();
                    tasks.abort_all();
                }
            }
            () = outbox.stored.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
        // Collect every other finished task before looking again.
        while let Some(done) = tasks.try_join_next() {
            if let Ok(key) = done {
                in_flight.remove(&key);
            }
        }
    }
}

/// Opens the secrets of new or changed webhooks (`None`: cannot be opened); drops removed
/// ones.
fn refresh_targets(engine: &Engine, targets: &mut HashMap<String, (String, Option<Target>)>) {
    let rows = match engine.services.events.webhooks() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the delivery worker cannot read the webhooks");
            return;
        }
    };
    targets.retain(|id, _| rows.iter().any(|r| &r.id == id));
    for row in rows {
        if targets
            .get(&row.id)
            .is_some_and(|(sealed, _)| *sealed == row.sealed_secret)
        {
            continue;
        }
        match webhooks::target(&engine.key, &row) {
            Ok(t) => {
                targets.insert(row.id.clone(), (row.sealed_secret.clone(), Some(t)));
            }
            Err(e) => {
                // Said once per stored secret, not at every look at the outbox.
                tracing::error!(webhook = %row.id, error = %e, "webhook not delivered to; remove it and add it again with its secret");
                targets.insert(row.id.clone(), (row.sealed_secret.clone(), None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap_and_gives_up_after_the_window() {
        let p = RetryPolicy {
            base: Duration::from_secs(10),
            max: Duration::from_secs(3600),
            retry_for: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
        };
        assert_eq!(p.delay(1), Duration::from_secs(10));
        assert_eq!(p.delay(2), Duration::from_secs(20));
        assert_eq!(p.delay(4), Duration::from_secs(80));
        assert_eq!(p.delay(20), Duration::from_secs(3600));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(3600));
        // The default retries for at least a day.
        assert!(RetryPolicy::default().retry_for >= Duration::from_secs(24 * 3600));

        let event = Event {
            id: "evt-1".into(),
            kind: "x.y".into(),
            instance: "i".into(),
            time: String::new(),
            data: serde_json::Value::Null,
        };
        let due = |attempts, created_ms| Due {
            webhook: "w".into(),
            seq: 1,
            attempts,
            created_ms,
            event: event.clone(),
        };
        let failed = AttemptOutcome {
            status: Some(500),
            error: Some("HTTP 500".into()),
            duration_ms: 1,
        };
        let now = 1_000_000_000;
        let (state, next) = next_state(&p, &due(0, now), &failed, now);
        assert_eq!(state, DeliveryState::Pending);
        assert!((now + 10_000..=now + 11_000).contains(&next), "{next}");
        // Queued a day ago: the next attempt would fall outside the window.
        let (state, _) = next_state(&p, &due(30, now - 24 * 3600 * 1000), &failed, now);
        assert_eq!(state, DeliveryState::Failed);
        let ok = AttemptOutcome {
            status: Some(204),
            error: None,
            duration_ms: 1,
        };
        assert_eq!(
            next_state(&p, &due(3, 0), &ok, now).0,
            DeliveryState::Delivered
        );
    }
}
