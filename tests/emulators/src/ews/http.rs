//! Routing, the EWS endpoint, and the identity platform's token endpoint.

use super::*;
use crate::entra::{aad_error, token_answer};

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

pub(super) async fn token(
    State(state): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = form::pairs(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    // Client secret in the form or as HTTP Basic (client_secret_basic).
    let basic = crate::kit::credentials::basic(&headers);
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
    token_answer(&token, TOKEN_LIFETIME_SECS)
}
