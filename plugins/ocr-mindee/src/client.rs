//! Talking to Mindee's API v1: the predict request, its retries, and what each HTTP
//! outcome means. The single place where statuses get a meaning, for the test routine and
//! the OCR alike.
//!
//! Mindee answers errors as `{"api_request": {"error": {"code", "message", "details"}}}`,
//! where `details` is a sentence or, for refused form fields, an object such as
//! `{"document": ["…"]}`; gateways in front of it answer with HTML pages. Both become one
//! sentence saying what happened and what to do.
//!
//! Retries: a prediction changes nothing but the page counter, and Mindee refuses or fails
//! before counting a page, so predict requests are treated as idempotent: 429, 5xx, timeouts
//! and lost connections are retried with the instance's attempts and delay. The host's
//! [`RetryPolicy`] retries 429, 502, 503 and 504 by itself; a 500 (Mindee's "Inference
//! failed") is handed to it as a failed attempt so that it is retried too, and the answer is
//! restored afterwards.

use crate::config::{Config, DEFAULT_URL};
use crate::document::{Document, CONTENT_FIELD};
use crate::multipart;
use passerelle_plugin_api::prelude::*;
use serde_json::Value;
use std::cell::RefCell;

/// The multipart field Mindee reads the file from.
pub const DOCUMENT_FIELD: &str = "document";

/// What Mindee said in an error body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiError {
    /// `Unauthorized`, `TooManyRequests`, `PlanLimitReached`…
    pub code: Option<String>,
    /// `Authorization required`, `Inference failed`…
    pub message: Option<String>,
    /// `Invalid token provided`, or `document: …` for refused fields.
    pub details: Option<String>,
}

impl ApiError {
    /// Reads `api_request.error` from a JSON body; `None` when the body is not Mindee's.
    pub fn from_body(body: &[u8]) -> Option<ApiError> {
        let json: Value = serde_json::from_slice(body).ok()?;
        let error = json.pointer("/api_request/error")?;
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(300).collect::<String>())
        };
        Some(ApiError {
            code: text(error.get("code")),
            message: text(error.get("message")),
            details: error.get("details").and_then(details_text),
        })
    }

    /// `Authorization required: Invalid token provided`, without repeating itself.
    pub fn sentence(&self) -> Option<String> {
        match (&self.message, &self.details) {
            (Some(m), Some(d)) if d.contains(m.as_str()) => Some(d.clone()),
            (Some(m), Some(d)) => Some(format!("{m}: {d}")),
            (Some(m), None) => Some(m.clone()),
            (None, Some(d)) => Some(d.clone()),
            (None, None) => self.code.clone(),
        }
    }
}

/// `details` as a sentence: a string, or `field: message; …` for an object of lists.
fn details_text(details: &Value) -> Option<String> {
    let text = match details {
        Value::String(s) => s.trim().to_owned(),
        Value::Object(fields) => fields
            .iter()
            .map(|(field, problems)| {
                let problems = match problems {
                    Value::Array(list) => list
                        .iter()
                        .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" "),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{field}: {problems}")
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Array(list) => list
            .iter()
            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    (!text.is_empty()).then(|| text.chars().take(300).collect())
}

/// What an HTML error page says: its first heading, else its title.
pub fn html_summary(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    if !lower.contains("<html") && !lower.contains("<!doctype html") {
        return None;
    }
    let inner = |tag: &str| -> Option<String> {
        let open = lower.find(&format!("<{tag}"))?;
        let start = open + lower[open..].find('>')? + 1;
        let end = start + lower[start..].find(&format!("</{tag}"))?;
        let s = text
            .get(start..end)?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        (!s.is_empty()).then_some(s)
    };
    inner("h1").or_else(|| inner("title"))
}

/// What the answer says, in quotes, for messages: Mindee's error, or an HTML page's heading.
fn said(response: &HttpResponse) -> String {
    if let Some(sentence) = ApiError::from_body(&response.body).and_then(|e| e.sentence()) {
        return format!(": {sentence}");
    }
    if let Some(heading) = html_summary(&response.body) {
        return format!(", an HTML error page saying \"{heading}\"");
    }
    String::new()
}

/// The error for an HTTP answer that is not a success. `attempts` describes the retries
/// when there were several ("3 attempts: HTTP 503, HTTP 503, HTTP 503").
pub fn status_error(response: &HttpResponse, url: &str, attempts: Option<&str>) -> PluginError {
    let status = response.status;
    let api = ApiError::from_body(&response.body).unwrap_or_default();
    let said = said(response);
    let tried = attempts.map(|a| format!(" ({a})")).unwrap_or_default();
    match status {
        400 => PluginError::invalid_input(format!(
            "Mindee refused the document (HTTP 400{said}): send a readable JPEG, PNG, WebP, HEIC, \
             TIFF or PDF of at most 10 MB and 10 pages"
        ))
        .with_field(CONTENT_FIELD),
        401 => PluginError::new(
            ErrorKind::Unauthorized,
            format!(
                "Mindee refused the token (HTTP 401{said}): copy an API key from \
                 platform.mindee.com (API keys) into the Mindee token field"
            ),
        )
        .with_field("token"),
        402 | 403 => {
            let plan = api.code.as_deref() == Some("PlanLimitReached")
                || api
                    .sentence()
                    .is_some_and(|s| s.to_ascii_lowercase().contains("limit"));
            let advice = if plan {
                "the plan's limit is reached: upgrade the Mindee plan or wait for the next period"
            } else {
                "check the account's plan and its subscription to expense receipts on \
                 platform.mindee.com"
            };
            PluginError::new(
                ErrorKind::Forbidden,
                format!(
                    "Mindee refuses requests from this account (HTTP {status}{said}): {advice}"
                ),
            )
        }
        404 => PluginError::config(
            "product_version",
            format!(
                "Mindee has no such product at {url} (HTTP 404{said}): check the connection URL \
                 (e.g. {DEFAULT_URL}), the product version, and that the account subscribes to \
                 expense receipts"
            ),
        ),
        429 => {
            let wait = response
                .retry_after_secs()
                .map(|s| format!("retry in {s} s (Retry-After)"))
                .unwrap_or_else(|| "retry in a moment".to_owned());
            PluginError::new(
                ErrorKind::RateLimited,
                format!(
                    "Mindee's rate limit is reached (HTTP 429{said}){tried}: Mindee allows 4 \
                     requests per second and 75 per minute; {wait}; if it lasts, the plan's \
                     request limit may be reached"
                ),
            )
        }
        500..=599 => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "Mindee could not read the document now (HTTP {status}{said}){tried}: try again \
                 later"
            ),
        ),
        _ => PluginError::new(
            ErrorKind::Upstream,
            format!("unexpected answer from {url} (HTTP {status}{said}){tried}"),
        ),
    }
}

/// The error for a request that got no answer at all.
pub fn transport_error(
    error: HttpError,
    url: &str,
    timeout_secs: u32,
    attempts: Option<&str>,
) -> PluginError {
    let tried = attempts.map(|a| format!(" ({a})")).unwrap_or_default();
    match error.kind {
        HttpErrorKind::Connect => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "Mindee is unreachable at {url}{tried}: {}; check the connection URL and the \
                 network (DNS, proxy, firewall)",
                error.message
            ),
        ),
        // The host's message names the certificate's issuer and how to trust it.
        HttpErrorKind::Tls => PluginError::new(ErrorKind::Unavailable, error.message),
        HttpErrorKind::Timeout => PluginError::new(
            ErrorKind::Timeout,
            format!(
                "Mindee did not answer within {timeout_secs} s{tried}: try again, or raise the \
                 timeout"
            ),
        ),
        HttpErrorKind::Quota => PluginError::new(ErrorKind::RateLimited, error.message),
        HttpErrorKind::InvalidUrl => PluginError::config(
            "url",
            format!("{url} is not a usable URL: {}", error.message),
        ),
        HttpErrorKind::Other => PluginError::new(
            ErrorKind::Unavailable,
            format!("the request to {url} failed{tried}: {}", error.message),
        ),
    }
}

/// Mindee's API for one instance.
pub struct Client<'c, 'h> {
    config: &'c Config,
    host: &'c Host<'h>,
}

impl<'c, 'h> Client<'c, 'h> {
    pub fn new(config: &'c Config, host: &'c Host<'h>) -> Self {
        Client { config, host }
    }

    /// `{url}/products/mindee/expense_receipts/v5/predict`.
    pub fn predict_url(&self) -> String {
        format!(
            "{}/products/mindee/expense_receipts/{}/predict",
            self.config.base_url(),
            self.config.product_version.path()
        )
    }

    fn request(&self, form: multipart::Form) -> HttpRequest {
        HttpRequest::post(self.predict_url())
            .secret_header("Authorization", format!("Token {}", self.config.token()))
            .header("Accept", "application/json")
            .body(&form.content_type, form.body)
            .timeout_ms(self.config.timeout_ms())
    }

    /// Sends `document` for prediction (with retries) and returns Mindee's JSON answer.
    pub fn predict(&self, document: &Document) -> Result<Value, PluginError> {
        let url = self.predict_url();
        let form = multipart::file_form(
            DOCUMENT_FIELD,
            &document.file_name,
            document.format.media_type(),
            &document.bytes,
            self.host.now_unix_ms(),
        );
        let request = self.request(form);
        let failed_answer: RefCell<Option<HttpResponse>> = RefCell::new(None);
        let mut retried =
            self.config
                .retry_policy()
                .run(self.host, Idempotency::Idempotent, || {
                    let outcome = self.host.http(&request);
                    *failed_answer.borrow_mut() = None;
                    match outcome {
                        Ok(r) if r.status >= 500 && !matches!(r.status, 502..=504) => {
                            let message = format!("HTTP {}{}", r.status, said(&r));
                            *failed_answer.borrow_mut() = Some(r);
                            Err(HttpError {
                                kind: HttpErrorKind::Other,
                                message,
                            })
                        }
                        other => other,
                    }
                });
        if let (Err(_), Some(answer)) = (&retried.result, failed_answer.take()) {
            retried.result = Ok(answer);
        }
        let tried = (retried.attempts.len() > 1).then(|| retried.describe());
        let response = retried
            .result
            .map_err(|e| transport_error(e, &url, self.config.timeout.secs(), tried.as_deref()))?;
        if !matches!(response.status, 200 | 201) {
            return Err(status_error(&response, &url, tried.as_deref()));
        }
        response.json()
    }

    /// Sends an upload without a document, once: Mindee checks the token (and the product,
    /// plan and rate limit) and then refuses the empty form with HTTP 400 — an answer that
    /// proves the configuration works without consuming a prediction.
    pub fn probe(&self) -> Result<HttpResponse, HttpError> {
        let request = self.request(multipart::empty_form(self.host.now_unix_ms()));
        self.host.http(&request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://api.mindee.net/v1/products/mindee/expense_receipts/v5/predict";

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    const INVALID_TOKEN: &str =
        include_str!("../../../tests/emulators/fixtures/ocr-mindee/error_401_invalid_token.json");
    const NO_TOKEN: &str =
        include_str!("../../../tests/emulators/fixtures/ocr-mindee/error_401_from_mindeeapi.json");
    const BAD_REQUEST: &str = include_str!(
        "../../../tests/emulators/fixtures/ocr-mindee/error_400_from_mindeeapi_with_object_response_in_detail.json"
    );
    const TOO_MANY: &str =
        include_str!("../../../tests/emulators/fixtures/ocr-mindee/error_429_from_mindeeapi.json");
    const INFERENCE_FAILED: &str =
        include_str!("../../../tests/emulators/fixtures/ocr-mindee/error_500_from_mindeeapi.json");
    const SYNC_DISALLOWED: &str =
        include_str!("../../../tests/emulators/fixtures/ocr-mindee/error_403_sync_disallowed.json");
    const GATEWAY: &str =
        include_str!("../../../tests/emulators/fixtures/ocr-mindee/error_50x.html");

    #[test]
    fn real_error_bodies_are_read() {
        let e = ApiError::from_body(INVALID_TOKEN.as_bytes()).unwrap();
        assert_eq!(e.code.as_deref(), Some("Unauthorized"));
        assert_eq!(
            e.sentence().as_deref(),
            Some("Authorization required: Invalid token provided")
        );
        let e = ApiError::from_body(BAD_REQUEST.as_bytes()).unwrap();
        assert_eq!(e.code, None);
        assert_eq!(e.sentence().as_deref(), Some("document: error message"));
        let e = ApiError::from_body(TOO_MANY.as_bytes()).unwrap();
        assert_eq!(
            e.sentence().as_deref(),
            Some("Too many requests: Too Many Requests.")
        );
        assert_eq!(ApiError::from_body(GATEWAY.as_bytes()), None);
        assert_eq!(
            html_summary(GATEWAY.as_bytes()).as_deref(),
            Some("An error occurred.")
        );
        assert_eq!(html_summary(b"{\"a\":1}"), None);
    }

    #[test]
    fn statuses_map_to_kinds_fields_and_advice() {
        let e = status_error(&response(401, INVALID_TOKEN), URL, None);
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert_eq!(e.field.as_deref(), Some("token"));
        assert!(
            e.message.starts_with(
                "Mindee refused the token (HTTP 401: Authorization required: Invalid token provided)"
            ),
            "{}",
            e.message
        );
        let e = status_error(&response(401, NO_TOKEN), URL, None);
        assert!(e.message.contains("No token provided"), "{}", e.message);

        let e = status_error(&response(400, BAD_REQUEST), URL, None);
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert_eq!(e.field.as_deref(), Some(CONTENT_FIELD));
        assert!(
            e.message.contains("(HTTP 400: document: error message)"),
            "{}",
            e.message
        );

        let e = status_error(&response(403, SYNC_DISALLOWED), URL, None);
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(
            e.message.contains("does not support sync mode"),
            "{}",
            e.message
        );
        assert!(e.message.contains("subscription"), "{}", e.message);
        let plan = r#"{"api_request":{"error":{"code":"PlanLimitReached","message":"Plan limit reached","details":"x"}}}"#;
        let e = status_error(&response(403, plan), URL, None);
        assert!(
            e.message.contains("plan's limit is reached"),
            "{}",
            e.message
        );

        let e = status_error(&response(404, "{}"), URL, None);
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.field.as_deref(), Some("product_version"));
        assert!(e.message.contains(URL));

        let e = status_error(
            &response(429, TOO_MANY),
            URL,
            Some("3 attempts: HTTP 429, HTTP 429, HTTP 429"),
        );
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert!(
            e.message.starts_with(
                "Mindee's rate limit is reached (HTTP 429: Too many requests: Too Many Requests.) \
                 (3 attempts: HTTP 429, HTTP 429, HTTP 429)"
            ),
            "{}",
            e.message
        );
        let mut limited = response(429, "");
        limited.headers.push(("Retry-After".into(), "9".into()));
        assert!(status_error(&limited, URL, None)
            .message
            .contains("retry in 9 s"));

        let e = status_error(&response(500, INFERENCE_FAILED), URL, None);
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(
            e.message
                .contains("(HTTP 500: Inference failed: Can not run prediction:)"),
            "{}",
            e.message
        );
        let e = status_error(&response(502, GATEWAY), URL, None);
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(
            e.message
                .contains("(HTTP 502, an HTML error page saying \"An error occurred.\")"),
            "{}",
            e.message
        );
        let e = status_error(&response(418, ""), URL, None);
        assert_eq!(e.kind, ErrorKind::Upstream);
    }

    #[test]
    fn transport_errors_say_what_to_check() {
        let e = transport_error(
            HttpError {
                kind: HttpErrorKind::Timeout,
                message: String::new(),
            },
            URL,
            30,
            Some("2 attempts: timeout: x, timeout: x"),
        );
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(
            e.message.contains("within 30 s (2 attempts"),
            "{}",
            e.message
        );
        let e = transport_error(
            HttpError {
                kind: HttpErrorKind::Connect,
                message: "connection refused".into(),
            },
            URL,
            30,
            None,
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("connection refused"));
        let e = transport_error(
            HttpError {
                kind: HttpErrorKind::InvalidUrl,
                message: "bad".into(),
            },
            URL,
            30,
            None,
        );
        assert_eq!(e.field.as_deref(), Some("url"));
    }
}
