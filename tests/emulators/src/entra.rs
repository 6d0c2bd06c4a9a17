//! The Microsoft identity platform (Entra ID) as both Microsoft emulators show it: Exchange
//! Online (EWS) and Microsoft Graph take app-only tokens from the same v2.0 token endpoint,
//! so its error shape (`AADSTS…` codes) and its token answer are written once, here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Fixed trace and correlation ids: answers stay comparable from one run to the next.
const TRACE_ID: &str = "0b7e1a52-0000-4000-8000-000000000000";
const CORRELATION_ID: &str = "5f3c7a10-0000-4000-8000-000000000000";
const TIMESTAMP: &str = "2025-01-01 00:00:00Z";

/// An error of the identity platform, in its JSON shape.
pub fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: {TRACE_ID} Correlation ID: {CORRELATION_ID} Timestamp: {TIMESTAMP}"
        ),
        "error_codes": [code],
        "timestamp": TIMESTAMP,
        "trace_id": TRACE_ID,
        "correlation_id": CORRELATION_ID,
    });
    (status, Json(body)).into_response()
}

/// The answer to a granted client-credentials request.
pub fn token_answer(access_token: &str, lifetime_secs: u64) -> Response {
    Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime_secs,
        "ext_expires_in": lifetime_secs,
        "access_token": access_token,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_carry_the_aadsts_code_in_both_places() {
        let r = aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Bad secret.",
        );
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"], "invalid_client");
        assert_eq!(v["error_codes"][0], 7000215);
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: Bad secret. Trace ID: "));
    }
}
