//! JSON answers. Providers differ in the content type they send (`application/json`, with
//! or without `;charset=utf-8`) and clients may look at it, so each emulator names its own.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/json;charset=utf-8`, as INSEE's and the PISTE gateways send it.
pub const JSON_UTF8: &str = "application/json;charset=utf-8";

/// A response with `body` (already serialised JSON) and the given content type.
pub fn json_text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<String>,
) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.into(),
    )
        .into_response()
}

/// A response with `body` serialised as JSON and the given content type.
pub fn json(status: StatusCode, content_type: &'static str, body: &Value) -> Response {
    json_text(status, content_type, body.to_string())
}

/// Sets `Retry-After` (whole seconds) on an answer, typically a `429` or a `503`.
pub fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_answers_carry_the_content_type_and_retry_after() {
        let r = with_retry_after(
            json(
                StatusCode::TOO_MANY_REQUESTS,
                JSON_UTF8,
                &serde_json::json!({"a": 1}),
            ),
            7,
        );
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON_UTF8);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }
}
