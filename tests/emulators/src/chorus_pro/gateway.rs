//! The PISTE gateway in front of `/cpro`: JSON answers, the per-second and daily quotas,
//! the Bearer check, scripted failures, the `cpro-account` technical account and the
//! content type.

use super::*;

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    respond::json(status, JSON_UTF8, body)
}

/// Chorus Pro's refusal shape.
pub(super) fn refusal(status: StatusCode, code: i64, label: &str) -> Response {
    json_response(status, &json!({"codeRetour": code, "libelle": label}))
}

/// Outermost layer of `/cpro`: counts, then applies the strict per-second and daily quotas.
pub(super) async fn quota(
    State(state): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    state.api_requests.fetch_add(1, Ordering::SeqCst);
    let now = Instant::now();
    if state.opts.per_second > 0
        && state
            .window
            .admit(&[Limit::per_second(state.opts.per_second as usize)])
            .is_err()
    {
        state.quota_refusals.fetch_add(1, Ordering::SeqCst);
        let response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({
                "error": "rate_limited",
                "error_description": format!(
                    "Quota dépassé : {} requêtes par seconde au plus",
                    state.opts.per_second
                )
            }),
        );
        return with_retry_after(response, 1);
    }
    if state.opts.per_day > 0 && !state.day.admit(u64::from(state.opts.per_day)) {
        state.quota_refusals.fetch_add(1, Ordering::SeqCst);
        return json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({
                "error": "rate_limited",
                "error_description": format!(
                    "Quota journalier dépassé : {} requêtes par jour au plus",
                    state.opts.per_day
                )
            }),
        );
    }
    lock(&state.admitted_log).push(now);
    next.run(request).await
}

/// The gateway's Bearer check.
pub(super) async fn bearer(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        // RFC 6750 §3.1: no error code when no credentials were sent.
        let mut response = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_request", "error_description": "Bearer token missing"}),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"PISTE\""),
        );
        return response;
    };
    let valid = lock(&state.tokens)
        .get(token)
        .is_some_and(|expiry| *expiry > Instant::now());
    if valid {
        return next.run(request).await;
    }
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({
            "error": "invalid_token",
            "error_description": "The access token is invalid or has expired"
        }),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"PISTE\", error=\"invalid_token\", error_description=\"The access token is invalid or has expired\"",
        ),
    );
    response
}

/// Transient failures a test asked for.
pub(super) async fn injected_failures(
    State(state): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let failed = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failed {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "error": "service_unavailable",
                "error_description": "Le service est momentanément indisponible"
            }),
        );
    }
    next.run(request).await
}

/// Chorus Pro's check of the technical account (`cpro-account`).
pub(super) async fn technical_account(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(raw) = headers.get("cpro-account").and_then(|v| v.to_str().ok()) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            CODE_ACCOUNT,
            "En-tête cpro-account absent : compte technique requis",
        );
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!(
        "{}:{}",
        state.opts.technical_login, state.opts.technical_password
    );
    match decoded {
        Some(account) if account == expected => {
            request
                .extensions_mut()
                .insert(Login(state.opts.technical_login.clone()));
            next.run(request).await
        }
        _ => refusal(
            StatusCode::UNAUTHORIZED,
            CODE_ACCOUNT,
            "Authentification du compte technique impossible : identifiant ou mot de passe incorrect",
        ),
    }
}

/// The technical account of a call, set by [`technical_account`].
#[derive(Debug, Clone)]
pub(super) struct Login(pub(super) String);

/// POSTs carry JSON.
pub(super) async fn content_type(headers: HeaderMap, request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST {
        let ok = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !ok {
            return refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                CODE_BAD_JSON,
                "Content-Type attendu : application/json;charset=utf-8",
            );
        }
    }
    next.run(request).await
}
