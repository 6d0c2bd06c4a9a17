//! Graph's error replies (`{"error":{"code","message","innerError"}}`), with
//! `Retry-After` when throttled.

use super::*;

/// A Graph error reply.
pub(super) struct GraphError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) retry_after: Option<u64>,
}

pub(super) fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> GraphError {
    GraphError {
        status,
        code,
        message: message.into(),
        retry_after: None,
    }
}

impl GraphError {
    /// Graph's OData error body, with the `innerError` Graph adds.
    pub(super) fn into_response(self, counter: u64) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": "2025-03-01T08:00:00",
                    "request-id": format!("8d1b0a3e-0000-4000-8000-{counter:012}"),
                    "client-request-id": format!("8d1b0a3e-0000-4000-8000-{counter:012}"),
                }
            }
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

pub(super) type Answer = Result<(StatusCode, Option<Value>), GraphError>;
