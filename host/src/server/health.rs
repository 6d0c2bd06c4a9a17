//! Probes for load balancers and orchestrators, outside authentication: `/healthz` says the
//! process answers; `/readyz` says it can serve (storage reachable, plugins loaded).
//!
//! Both answer small JSON without paths, ids of secrets or versions, since anyone who reaches
//! the port may call them. `/readyz` lists enabled instances whose plugin is missing as a
//! warning without failing: one misconfigured instance must not take every node out of the
//! pool, while a node that cannot read its storage must leave it.
//!
//! `/readyz` names the storage backend (`embedded` or `postgres`); on PostgreSQL the storage
//! check is a round trip to the shared database, so a node that lost it leaves the pool.

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    respond(StatusCode::OK, json!({ "status": "ok" }))
}

async fn readyz(State(app): State<AppState>) -> Response {
    let engine = app.engine.clone();
    let audit_db = app.audit.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let console = match engine.backend.pg() {
            Some(pg) => pg.ping().map_err(|e| e.to_string()),
            None => Ok(()),
        }
        .and_then(|()| audit_db.reachable().map_err(|e| e.to_string()));
        let instances = engine.store.list().map_err(|e| e.to_string());
        (console, instances, engine)
    })
    .await;
    let Ok((console, instances, engine)) = checked else {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "backend": app.engine.backend.name(), "checks": { "storage": "the check did not finish" } }),
        );
    };
    let mut ready = true;
    let storage = match (&console, &instances) {
        (Ok(()), Ok(_)) => "ok".to_owned(),
        (Err(e), _) | (_, Err(e)) => {
            ready = false;
            tracing::warn!(error = %e, "readiness: storage unreachable");
            "unreachable".to_owned()
        }
    };
    let registry = engine.registry.load();
    let loaded = registry.plugins.len();
    if loaded == 0 {
        ready = false;
    }
    let missing: Vec<String> = instances
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.enabled && registry.get(&i.plugin).is_none())
        .map(|i| i.id.to_string())
        .collect();
    let status = if ready { "ready" } else { "unavailable" };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    respond(
        code,
        json!({
            "status": status,
            "backend": engine.backend.name(),
            "checks": {
                "storage": storage,
                "plugins": { "loaded": loaded, "refused": registry.refused.len() },
            },
            "warnings": { "instances_without_plugin": missing },
        }),
    )
}

fn respond(code: StatusCode, body: serde_json::Value) -> Response {
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}
