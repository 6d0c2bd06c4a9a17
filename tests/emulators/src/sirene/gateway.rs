//! INSEE's gateway in front of the API: JSON answers and Sirene's error shape, the outage
//! page, the API key check and the per-minute quota.

use super::*;

/// A JSON answer with INSEE's content type.
pub(super) fn json_response(status: StatusCode, body: impl Into<String>) -> Response {
    respond::json_text(status, JSON_UTF8, body)
}

/// Sirene's error shape: `{"header":{"statut":N,"message":"…"}}`.
pub(super) fn sirene_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        json!({"header": {"statut": status.as_u16(), "message": message}}).to_string(),
    )
}

/// Outermost layer: counts every request and plays the outage.
pub(super) async fn gateway(
    State(state): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.unavailable.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n\
             <body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n\
             <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response();
    }
    next.run(request).await
}

pub(super) async fn api_key_auth(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    match headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()) {
        None => sirene_error(
            StatusCode::UNAUTHORIZED,
            "Missing API key: send it in the X-INSEE-Api-Key-Integration header",
        ),
        Some(key) if key != state.opts.api_key => {
            sirene_error(StatusCode::UNAUTHORIZED, "Invalid API key")
        }
        Some(_) => next.run(request).await,
    }
}

/// The per-minute quota over a rolling window; refused requests do not count.
pub(super) async fn quota(
    State(state): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.opts.per_minute as usize;
    if limit > 0 {
        if let Err(wait) = state.window.admit(&[Limit::per_minute(limit)]) {
            return with_retry_after(
                sirene_error(StatusCode::TOO_MANY_REQUESTS, "Trop de requêtes"),
                retry_after_secs(wait),
            );
        }
    }
    next.run(request).await
}
