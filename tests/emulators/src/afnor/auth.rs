//! The platform's JSON answers and errors, its OAuth2 token endpoint (client credentials)
//! and the Bearer check in front of the flow and directory services.

use super::*;

pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errorCode": code, "errorMessage": message}).to_string(),
    )
        .into_response()
}

pub(super) fn json_ok(status: StatusCode, body: &Value) -> Response {
    respond::json(status, JSON, body)
}

pub(super) async fn token(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let form = form::map(&body);
    let basic = credentials::basic(&headers);
    let (id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_ok(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type"}),
        );
    }
    if id.as_deref() != Some(state.opts.client_id.as_str())
        || secret.as_deref() != Some(state.opts.client_secret.as_str())
    {
        return json_ok(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        );
    }
    let n = state.ids.fetch_add(1, Ordering::SeqCst);
    let access_token = format!("pa-emu-{n:06}-{:08x}", state.tick() & 0xffff_ffff);
    lock(&state.tokens).insert(
        access_token.clone(),
        Instant::now() + state.opts.token_lifetime,
    );
    json_ok(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.opts.token_lifetime.as_secs(),
        }),
    )
}

pub(super) async fn authorize(
    State(state): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let valid = token
        .as_deref()
        .and_then(|t| lock(&state.tokens).get(t).copied())
        .is_some_and(|until| until > Instant::now());
    if !valid {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Missing or invalid token",
        );
        if let Ok(v) = "Bearer error=\"invalid_token\"".parse() {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return r;
    }
    next.run(request).await
}

pub(super) async fn health() -> Response {
    json_ok(StatusCode::OK, &json!({"status": "UP"}))
}
