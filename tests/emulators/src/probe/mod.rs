//! A generic provider for the host-services tests: a health endpoint that fails on demand, an
//! OAuth2 token endpoint with a protected resource, and a *strict* rate-limited endpoint that
//! refuses any request beyond N in a rolling second — the behaviour of PISTE and others, which
//! the host's quotas must never trigger.

use crate::kit::lock;
use crate::kit::quota::{Limit, RollingWindow};
use crate::kit::serve::{self as server, RunningServer};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings of a [`ProbeEmulator`].
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of issued tokens, in seconds.
    pub token_lifetime: u64,
    /// Requests accepted by `/strict` in any rolling second.
    pub strict_per_second: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            client_id: "probe-client".into(),
            client_secret: "probe-secret".into(),
            token_lifetime: 3600,
            strict_per_second: 10,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    opts: Mutex<Option<ProbeOptions>>,
    fail_next: AtomicUsize,
    fail_status: Mutex<u16>,
    tokens: Mutex<HashMap<String, Instant>>,
    strict_log: RollingWindow,
    accepted: AtomicUsize,
    rejected: AtomicUsize,
    token_requests: AtomicUsize,
    health_requests: AtomicUsize,
}

/// A running probe emulator; stops when dropped.
#[derive(Debug)]
pub struct ProbeEmulator {
    server: RunningServer,
    shared: Arc<Shared>,
}

impl ProbeEmulator {
    pub fn start(opts: ProbeOptions) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        *lock(&shared.opts) = Some(opts);
        *lock(&shared.fail_status) = 503;
        let router = Router::new()
            .route("/health", get(health))
            .route("/token", post(token))
            .route("/protected", get(protected))
            .route("/strict", get(strict))
            .with_state(shared.clone());
        Ok(ProbeEmulator {
            server: server::spawn(router)?,
            shared,
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The next `n` health requests fail with `status` (503 by default, with `Retry-After: 0`).
    pub fn fail_next(&self, n: usize, status: u16) {
        *lock(&self.shared.fail_status) = status;
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Forgets every issued token, so the next protected call answers 401.
    pub fn revoke_tokens(&self) {
        lock(&self.shared.tokens).clear();
    }

    pub fn health_requests(&self) -> usize {
        self.shared.health_requests.load(Ordering::SeqCst)
    }

    pub fn token_requests(&self) -> usize {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// Requests `/strict` accepted and refused with 429.
    pub fn strict_counts(&self) -> (usize, usize) {
        (
            self.shared.accepted.load(Ordering::SeqCst),
            self.shared.rejected.load(Ordering::SeqCst),
        )
    }
}

fn opts(shared: &Shared) -> ProbeOptions {
    lock(&shared.opts).clone().unwrap_or_default()
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    shared.health_requests.fetch_add(1, Ordering::SeqCst);
    let failing = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        let status = StatusCode::from_u16(*lock(&shared.fail_status))
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, [("Retry-After", "0")], "temporarily unavailable").into_response();
    }
    Json(serde_json::json!({"status": "UP"})).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<TokenForm>) -> Response {
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
    let o = opts(&shared);
    if form.grant_type.as_deref() != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if form.client_id.as_deref() != Some(&o.client_id)
        || form.client_secret.as_deref() != Some(&o.client_secret)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "invalid_client", "error_description": "Bad client credentials"})),
        )
            .into_response();
    }
    let n = shared.token_requests.load(Ordering::SeqCst);
    let token = format!("probe-token-{n}-{}", Instant::now().elapsed().as_nanos());
    lock(&shared.tokens).insert(
        token.clone(),
        Instant::now() + Duration::from_secs(o.token_lifetime),
    );
    Json(serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": o.token_lifetime})).into_response()
}

async fn protected(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let valid = lock(&shared.tokens)
        .get(bearer)
        .is_some_and(|until| *until > Instant::now());
    if valid {
        Json(serde_json::json!({"secret_data": 42})).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "invalid_token"})),
        )
            .into_response()
    }
}

async fn strict(State(shared): State<Arc<Shared>>) -> Response {
    let limit = opts(&shared).strict_per_second;
    if shared
        .strict_log
        .admit(&[Limit::per_second(limit)])
        .is_err()
    {
        shared.rejected.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "1")],
            "quota exceeded",
        )
            .into_response();
    }
    shared.accepted.fetch_add(1, Ordering::SeqCst);
    Json(serde_json::json!({"ok": true})).into_response()
}
