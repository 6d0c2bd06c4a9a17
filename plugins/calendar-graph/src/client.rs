//! Talking to Microsoft Graph: app-only token, URLs, retries and errors.
//!
//! Every request goes through [`Graph::send`]: it adds the bearer token that the host caches
//! (a fresh one once after a 401), lets the host's [`RetryPolicy`] wait out throttling
//! (429 and 503 with `Retry-After`, which Graph sends when a mailbox gets more than 4
//! concurrent requests or an app spends its budget), and turns any other failure into a
//! [`Failure`] that keeps the HTTP status and the OData code, so that a caller can tell an
//! event that is gone (404) from a mailbox it may not open (403).

use crate::config::{Config, GRAPH_SCOPE};
use crate::errors::{describe, token_error, Context, ODataError};
use passerelle_plugin_api::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Attempts per request when Graph throttles or is briefly unavailable.
const ATTEMPTS: u32 = 6;
/// Wait between attempts when Graph gives no `Retry-After`.
const DEFAULT_DELAY: Duration = Duration::from_secs(2);

/// A request that did not succeed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The HTTP status, 0 when no answer came.
    pub status: u16,
    /// Graph's OData error code, empty when there was none.
    pub code: String,
    pub error: PluginError,
}

impl From<Failure> for PluginError {
    fn from(f: Failure) -> Self {
        f.error
    }
}

/// A Graph client for one plugin call; shared by the sync threads.
pub struct Graph<'a, 'h> {
    config: &'a Config,
    host: &'a Host<'h>,
    oauth: OAuth2Client,
    retry: RetryPolicy,
    throttled: AtomicU64,
    waited_ms: AtomicU64,
}

impl<'a, 'h> Graph<'a, 'h> {
    pub fn new(config: &'a Config, host: &'a Host<'h>) -> Self {
        let oauth = OAuth2Client::new(
            &config.token_url(),
            config.client_id(),
            config
                .client_secret
                .as_ref()
                .map(Secret::expose)
                .unwrap_or_default()
                .trim(),
        )
        .scope(GRAPH_SCOPE);
        Graph {
            config,
            host,
            oauth,
            retry: RetryPolicy::new(ATTEMPTS, DEFAULT_DELAY),
            throttled: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// An access token (a new one when `fresh`), with the AADSTS code explained on failure.
    pub fn token(&self, fresh: bool) -> Result<String, PluginError> {
        let result = if fresh {
            self.oauth.refresh(self.host)
        } else {
            self.oauth.token(self.host)
        };
        result.map_err(|e| token_error(e, &self.config.token_url()))
    }

    /// A request to `path` (starting with `/`, already encoded) under the Graph base URL.
    pub fn request(&self, method: Method, path: &str) -> HttpRequest {
        HttpRequest::new(method, format!("{}{path}", self.config.graph_base()))
            .header("Accept", "application/json")
            .timeout_ms(self.config.timeout_ms())
    }

    /// How many times, and how long in all, requests waited for throttling.
    pub fn throttling(&self) -> (u64, u64) {
        (
            self.throttled.load(Ordering::Relaxed),
            self.waited_ms.load(Ordering::Relaxed),
        )
    }

    /// Sends `request` about `mailbox`'s calendar; a 2xx answer, or why not.
    pub fn send(
        &self,
        request: &HttpRequest,
        idempotency: Idempotency,
        mailbox: &str,
    ) -> Result<HttpResponse, Failure> {
        let cx = Context {
            mailbox,
            client_id: self.config.client_id(),
        };
        let token_failure = |error: PluginError| Failure {
            status: 0,
            code: String::new(),
            error,
        };
        let mut token = self.token(false).map_err(token_failure)?;
        let mut refreshed = false;
        loop {
            let authorised = request.clone().bearer(&token);
            let retried = self
                .retry
                .run(self.host, idempotency, || self.host.http(&authorised));
            if let Some((_, before_last)) = retried.attempts.split_last() {
                for attempt in before_last {
                    self.throttled.fetch_add(1, Ordering::Relaxed);
                    self.waited_ms
                        .fetch_add(attempt.waited_ms, Ordering::Relaxed);
                }
            }
            let response = match retried.result {
                Ok(r) => r,
                Err(e) => {
                    return Err(Failure {
                        status: 0,
                        code: String::new(),
                        error: self.transport_error(e),
                    })
                }
            };
            if response.is_success() {
                return Ok(response);
            }
            if response.status == 401 && !refreshed {
                refreshed = true;
                token = self.token(true).map_err(token_failure)?;
                continue;
            }
            let odata = ODataError::read(&response.body);
            let error = describe(response.status, &odata, cx);
            return Err(Failure {
                status: response.status,
                code: odata.code,
                error,
            });
        }
    }

    /// The error for a request that got no answer at all.
    fn transport_error(&self, error: HttpError) -> PluginError {
        let url = self.config.graph_base();
        match error.kind {
            HttpErrorKind::Connect => PluginError::new(
                ErrorKind::Unavailable,
                format!(
                    "Microsoft Graph is unreachable at {url} ({}): check the Graph URL and the \
                     network (DNS, proxy, firewall)",
                    error.message
                ),
            ),
            HttpErrorKind::Timeout => PluginError::new(
                ErrorKind::Timeout,
                format!(
                    "no answer from {url} in time ({}): try again or raise the timeout",
                    error.message
                ),
            ),
            HttpErrorKind::InvalidUrl => PluginError::config(
                "graph_url",
                format!("{url} is not a usable URL: {}", error.message),
            ),
            // The host's message names the certificate's issuer, or the quota, already.
            _ => error.into(),
        }
    }
}

/// Percent-encodes a path segment or a query value: everything but RFC 3986's unreserved
/// characters and `@` (allowed in both, and easier to read in logs).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `?a=1&b=2` with encoded values; names are written as given (`$select`).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let joined = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("?{joined}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_values_are_encoded() {
        assert_eq!(encode("jane@contoso.com"), "jane@contoso.com");
        assert_eq!(encode("AAMk/+a="), "AAMk%2F%2Ba%3D");
        assert_eq!(
            query(&[("startDateTime", "2025-03-01T00:00:00Z"), ("$top", "50")]),
            "?startDateTime=2025-03-01T00%3A00%3A00Z&$top=50"
        );
        assert_eq!(encode("id eq 'x'"), "id%20eq%20%27x%27");
    }
}
