//! `/api/audit` and `/api/instances/{id}/audit`: the audit history, newest first.

use super::{ApiQuery, AUDIT_MAX};
use crate::server::audit::AuditEntry;
use crate::server::error::ApiError;
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this instance's changes.
    pub instance: Option<String>,
    /// At most this many entries, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// At most this many entries, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

pub(super) fn limit(requested: Option<u32>) -> u32 {
    requested.unwrap_or(100).clamp(1, AUDIT_MAX)
}

/// The audit history of one instance, newest first.
#[utoipa::path(get, path = "/api/instances/{id}/audit", tag = "audit",
    params(("id" = String, Path, description = "Instance id"), LimitQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
pub(super) async fn instance_audit(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(app.audit.list(Some(&id), limit(q.limit))?))
}

/// The audit history, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
pub(super) async fn audit(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(app.audit.list(
        q.instance.as_deref().filter(|s| !s.is_empty()),
        limit(q.limit),
    )?))
}
