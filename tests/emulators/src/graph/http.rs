//! Routing, and the identity platform's token endpoint (client credentials) with its
//! AADSTS errors.

use super::*;
use crate::entra::{aad_error, token_answer};

pub(super) fn app(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .fallback(graph)
        .with_state(state)
}

pub(super) async fn graph(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let query: Vec<(String, String)> = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let mailbox = (segments.len() >= 3 && segments[0] == "v1.0" && segments[1] == "users")
        .then(|| segments[2].to_lowercase());
    let (_in_flight, over) = state.enter(mailbox.as_deref());
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let answer = match state.authenticate(&headers) {
        Err(e) => Err(e),
        Ok(_) if mailbox.is_none() => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "Resource not found for the segment '{}'.",
                segments.last().map(String::as_str).unwrap_or_default()
            ),
        )),
        Ok(_) if over => {
            state.throttled.fetch_add(1, Ordering::SeqCst);
            Err(GraphError {
                retry_after: Some(1),
                ..error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                )
            })
        }
        Ok(grant) => state.route(&method, &segments, &query, &headers, &body, &grant),
    };
    let counter = state.next();
    let response = match answer {
        Ok((status, Some(value))) => (status, Json(value)).into_response(),
        Ok((status, None)) => status.into_response(),
        Err(e) => e.into_response(counter),
    };
    lock(&state.requests).push(CapturedRequest {
        method: method.to_string(),
        path: format!("/{}", segments.join("/")),
        query,
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: response.status().as_u16(),
    });
    response
}

pub(super) async fn token(
    State(state): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
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
    let client_id = field("client_id");
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
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
        );
    };
    if field("client_secret") != app.client_secret {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
        );
    }
    if lock(&state.expired).contains(client_id) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            &format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."),
        );
    }
    if field("scope") != GRAPH_SCOPE {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                field("scope")
            ),
        );
    }
    let n = state.next();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let token = format!(
        "{}.{}.emulator-signature-{n}",
        b64(&json!({"typ": "JWT", "alg": "RS256", "kid": "emulator"})),
        b64(&json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{tenant}/"),
            "appid": client_id,
            "tid": tenant,
            "roles": app.roles,
            "n": n,
        })),
    );
    lock(&state.tokens).insert(
        token.clone(),
        Grant {
            client_id: client_id.to_owned(),
            roles: app.roles.clone(),
            expiry: Instant::now() + Duration::from_secs(TOKEN_LIFETIME_SECS),
        },
    );
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    token_answer(&token, TOKEN_LIFETIME_SECS)
}
