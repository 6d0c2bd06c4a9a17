//! Mindee's answers: JSON bodies, the API's error shapes, the gateway's HTML pages and
//! scripted outages, and the 404 of an unknown route.

use super::*;

pub(super) fn json_response(status: StatusCode, body: impl Into<String>) -> Response {
    respond::json_text(status, JSON, body)
}

/// Mindee's error shape, for errors the sample repository has no body for.
pub(super) fn api_error(status: StatusCode, path: &str, error: Value) -> Response {
    json_response(
        status,
        json!({
            "api_request": {
                "error": error,
                "resources": [],
                "status": "failure",
                "status_code": status.as_u16(),
                "url": format!("https://api.mindee.net{path}")
            }
        })
        .to_string(),
    )
}

/// A 400 about the `document` field, in Django REST framework's validation shape.
pub(super) fn document_error(path: &str, message: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        path,
        json!({"details": {"document": [message]}}),
    )
}

pub(super) fn bad_request(path: &str, message: &str, details: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        path,
        json!({"code": "BadRequest", "message": message, "details": details}),
    )
}

pub(super) fn gateway_page(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
        ERROR_50X_HTML,
    )
        .into_response()
}

/// Outermost layer: counts every request and plays the gateway's outages.
pub(super) async fn gateway(
    State(state): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return gateway_page(StatusCode::BAD_GATEWAY);
    }
    match state.take_failure(|f| f != Failure::InferenceFailed) {
        Some(Failure::BadGateway) => gateway_page(StatusCode::BAD_GATEWAY),
        Some(Failure::Unavailable) => gateway_page(StatusCode::SERVICE_UNAVAILABLE),
        _ => next.run(request).await,
    }
}

pub(super) async fn unknown_route(uri: Uri) -> Response {
    if uri.path().starts_with("/v2/") {
        return v2::not_found(uri.path());
    }
    api_error(
        StatusCode::NOT_FOUND,
        uri.path(),
        json!({
            "code": "NotFound",
            "message": "Not found",
            "details": format!("{} does not match any product", uri.path())
        }),
    )
}
