//! Routing, the EWS endpoint, and the identity platform's token endpoint.

use super::*;

pub(super) fn app(state: Arc<Shared>) -> Router {
    Router::new()
        .route(EWS_PATH, post(ews))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .with_state(state)
}

pub(super) fn into_response(reply: Reply) -> Response {
    let mut response = (reply.status, reply.body).into_response();
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

pub(super) async fn ews(
    State(state): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = state.enter();
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let (operation, reply) = state.handle(peer, &headers, &text);
    lock(&state.requests).push(CapturedRequest {
        operation,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: text,
        status: reply.status.as_u16(),
    });
    into_response(reply)
}

/// An error of the identity platform, in its JSON shape.
pub(super) fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = serde_json::json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: 0b7e1a52-0000-4000-8000-000000000000 Correlation ID: 5f3c7a10-0000-4000-8000-000000000000 Timestamp: 2025-01-01 00:00:00Z"
        ),
        "error_codes": [code],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": "0b7e1a52-0000-4000-8000-000000000000",
        "correlation_id": "5f3c7a10-0000-4000-8000-000000000000",
    });
    (status, axum::Json(body)).into_response()
}

pub(super) async fn token(
    State(state): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = form::pairs(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    // Client secret in the form or as HTTP Basic (client_secret_basic).
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    let (client_id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (field("client_id"), field("client_secret")),
    };
    if field("grant_type").as_deref() != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !state
        .opts
        .apps
        .iter()
        .any(|a| a.tenant.eq_ignore_ascii_case(&tenant))
    {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    let client_id = client_id.unwrap_or_default();
    let Some(app) = state
        .opts
        .apps
        .iter()
        .find(|a| a.tenant.eq_ignore_ascii_case(&tenant) && a.client_id == client_id)
    else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
        );
    };
    if secret.as_deref() != Some(app.client_secret.as_str()) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
        );
    }
    if field("scope").as_deref() != Some(EWS_SCOPE) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                field("scope").unwrap_or_default()
            ),
        );
    }
    let n = state.next();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "eyJ0eXAiOiJKV1QifQ.{client_id}.{n}.{:?}",
        Instant::now()
    ));
    lock(&state.tokens).insert(
        token.clone(),
        (
            client_id.clone(),
            Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECS),
        ),
    );
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    axum::Json(serde_json::json!({
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
        "ext_expires_in": TOKEN_LIFETIME_SECS,
        "access_token": token,
    }))
    .into_response()
}
