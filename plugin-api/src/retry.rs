//! Retrying HTTP calls safely.
//!
//! Attempts and delay come from the instance configuration (Chorus Pro: 3 attempts, 10 s).
//! What is retried: no connection (the request never left), 429 and 503 (the provider says it
//! did not process it), and — for idempotent requests only — timeouts, 502 and 504, where the
//! request may have been applied. A 4xx that says the request is wrong is never retried.
//! `Retry-After` (seconds) wins over the configured delay, up to a cap. Every attempt is
//! logged and returned, so a test report can show them.

use crate::host::{Host, LogLevel};
use crate::http::{HttpError, HttpErrorKind, HttpRequest, HttpResponse};
use std::time::Duration;

/// How many times to try and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, at least 1.
    pub attempts: u32,
    pub delay: Duration,
    /// Longest wait accepted from a `Retry-After` header.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn new(attempts: u32, delay: Duration) -> Self {
        RetryPolicy {
            attempts: attempts.max(1),
            delay,
            max_retry_after: Duration::from_secs(120),
        }
    }

    /// One attempt, no retry.
    pub fn once() -> Self {
        Self::new(1, Duration::ZERO)
    }
}

/// Whether a request may be sent twice without harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, and writes that the provider deduplicates.
    Idempotent,
    /// Submissions: retried only when the answer proves nothing was applied.
    NotIdempotent,
}

/// One attempt and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    pub number: u32,
    /// `HTTP 503`, `connect: …`.
    pub outcome: String,
    /// Time waited after this attempt, before the next one.
    pub waited_ms: u64,
}

/// The final result and every attempt that led to it.
#[derive(Debug, Clone)]
pub struct Retried {
    pub result: Result<HttpResponse, HttpError>,
    pub attempts: Vec<Attempt>,
}

impl Retried {
    /// "3 attempts: HTTP 503, HTTP 503, HTTP 201" for reports.
    pub fn describe(&self) -> String {
        let list = self
            .attempts
            .iter()
            .map(|a| a.outcome.clone())
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{} attempt{}: {list}",
            self.attempts.len(),
            if self.attempts.len() == 1 { "" } else { "s" }
        )
    }
}

/// Whether this outcome may be retried for a request of this idempotency.
pub fn is_retryable(result: &Result<HttpResponse, HttpError>, idempotency: Idempotency) -> bool {
    let idempotent = idempotency == Idempotency::Idempotent;
    match result {
        Ok(r) => match r.status {
            429 | 503 => true,
            502 | 504 => idempotent,
            _ => false,
        },
        Err(e) => match e.kind {
            HttpErrorKind::Connect => true,
            HttpErrorKind::Timeout | HttpErrorKind::Other => idempotent,
            HttpErrorKind::InvalidUrl | HttpErrorKind::Tls | HttpErrorKind::Quota => false,
        },
    }
}

fn outcome(result: &Result<HttpResponse, HttpError>) -> String {
    match result {
        Ok(r) => format!("HTTP {}", r.status),
        Err(e) => format!("{:?}: {}", e.kind, e.message).to_lowercase(),
    }
}

impl RetryPolicy {
    /// Sends `request` through the host, retrying as described in the module docs.
    pub fn send(
        &self,
        host: &Host<'_>,
        request: &HttpRequest,
        idempotency: Idempotency,
    ) -> Retried {
        self.run(host, idempotency, || host.http(request))
    }

    /// Retries any request-sending closure (e.g. one that adds a fresh OAuth2 token).
    pub fn run(
        &self,
        host: &Host<'_>,
        idempotency: Idempotency,
        mut send: impl FnMut() -> Result<HttpResponse, HttpError>,
    ) -> Retried {
        let mut attempts = Vec::new();
        let mut number = 0;
        loop {
            number += 1;
            let result = send();
            let last = number >= self.attempts || !is_retryable(&result, idempotency);
            let wait = if last {
                Duration::ZERO
            } else {
                result
                    .as_ref()
                    .ok()
                    .and_then(HttpResponse::retry_after_secs)
                    .map(|s| Duration::from_secs(s).min(self.max_retry_after))
                    .unwrap_or(self.delay)
            };
            let attempt = Attempt {
                number,
                outcome: outcome(&result),
                waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            };
            if !last {
                host.log(
                    LogLevel::Warn,
                    format!(
                        "attempt {number}/{} failed ({}); retrying in {} ms",
                        self.attempts, attempt.outcome, attempt.waited_ms
                    ),
                );
            }
            attempts.push(attempt);
            if last {
                return Retried { result, attempts };
            }
            host.sleep(wait);
        }
    }
}
