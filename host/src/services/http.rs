//! The one HTTP client of the host.
//!
//! rustls with the system's root certificates; connect and request timeouts; a request log
//! line per call with method, URL, status and duration — never headers or bodies, so that
//! credentials cannot leak into logs. Failures without a response are classified
//! (connect, TLS, timeout) so that a test report can say what to fix.

use passerelle_plugin_api::host::wire::HttpOutcome;
use passerelle_plugin_api::{HttpError, HttpErrorKind, HttpRequest, HttpResponse, Method};
use std::time::{Duration, Instant};

/// Timeout of a request when the plugin does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Answers larger than this are cut off with an error: plugins get bodies in memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct HttpSetupError(String);

#[derive(Debug, Clone)]
pub struct HttpService {
    client: reqwest::Client,
}

impl HttpService {
    pub fn new() -> Result<Self, HttpSetupError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("passerelle/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpSetupError(e.to_string()))?;
        Ok(HttpService { client })
    }

    /// Sends a plugin's request. Any HTTP status is a response.
    pub async fn send(&self, instance: &str, request: HttpRequest) -> HttpOutcome {
        let started = Instant::now();
        let method = request.method;
        let url_for_log = strip_query(&request.url);
        let outcome = self.send_inner(request).await;
        let ms = started.elapsed().as_millis();
        match &outcome {
            HttpOutcome::Response(r) => {
                tracing::info!(instance, method = ?method, url = %url_for_log, status = r.status, ms, "http")
            }
            HttpOutcome::Error(e) => {
                tracing::warn!(instance, method = ?method, url = %url_for_log, error = %e.message, ms, "http failed")
            }
        }
        outcome
    }

    async fn send_inner(&self, request: HttpRequest) -> HttpOutcome {
        let url = match reqwest::Url::parse(&request.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => {
                return error(
                    HttpErrorKind::InvalidUrl,
                    format!("the URL scheme `{}` is not supported; use https:// (or http:// for a local service)", u.scheme()),
                )
            }
            Err(e) => {
                return error(
                    HttpErrorKind::InvalidUrl,
                    format!("{:?} is not a valid URL ({e})", request.url),
                )
            }
        };
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
        };
        let timeout = request
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        let mut builder = self.client.request(method, url.clone()).timeout(timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return classify(&url, timeout, &e),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|l| l > MAX_BODY as u64)
        {
            return error(
                HttpErrorKind::Other,
                format!(
                    "the answer of {} is larger than {} MiB",
                    strip_query(url.as_str()),
                    MAX_BODY / 1024 / 1024
                ),
            );
        }
        match response.bytes().await {
            Ok(body) => HttpOutcome::Response(HttpResponse {
                status,
                headers,
                body: body.to_vec(),
            }),
            Err(e) => classify(&url, timeout, &e),
        }
    }
}

fn error(kind: HttpErrorKind, message: String) -> HttpOutcome {
    HttpOutcome::Error(HttpError { kind, message })
}

/// The URL without its query string (which may carry a key).
fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// Turns a reqwest failure into a kind and a message that says what to check.
fn classify(url: &reqwest::Url, timeout: Duration, e: &reqwest::Error) -> HttpOutcome {
    let host = url.host_str().unwrap_or("?").to_owned();
    let chain = error_chain(e);
    let lower = chain.to_lowercase();
    if e.is_timeout() {
        return error(
            HttpErrorKind::Timeout,
            format!("{host} did not answer within {} s", timeout.as_secs_f64()),
        );
    }
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        return error(
            HttpErrorKind::Tls,
            format!("the TLS connection to {host} failed: {chain}"),
        );
    }
    if e.is_connect() || lower.contains("dns") || lower.contains("connection refused") {
        return error(
            HttpErrorKind::Connect,
            format!(
                "cannot reach {host} ({}): {chain}; check the URL and that the service is up and reachable from this machine",
                strip_query(url.as_str())
            ),
        );
    }
    error(
        HttpErrorKind::Other,
        format!("request to {host} failed: {chain}"),
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
