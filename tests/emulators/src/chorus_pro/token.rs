//! The PISTE OAuth2 token endpoint (client credentials, `openid` scope only).

use super::*;

pub(super) async fn token(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let form = form::map(&body);
    let basic = credentials::basic(&headers);
    let (id, secret) = match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some((id, secret)), _, _) => (Some(id), Some(secret)),
        (None, id, secret) => (id.cloned(), secret.cloned()),
    };
    if id.as_deref() != Some(state.opts.client_id.as_str())
        || secret.as_deref() != Some(state.opts.client_secret.as_str())
    {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type"}),
        );
    }
    if let Some(scope) = form.get("scope") {
        if scope.split_whitespace().any(|s| s != "openid") {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_scope", "error_description": "Only openid is granted"}),
            );
        }
    }
    let n = state.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let nanos = (dates::unix_nanos() % 1_000_000_000) as u32;
    let access_token = format!("cpro-emu-{n:06}-{nanos:08x}");
    lock(&state.tokens).insert(
        access_token.clone(),
        Instant::now() + state.opts.token_lifetime,
    );
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.opts.token_lifetime.as_secs(),
            "scope": "openid"
        }),
    )
}
