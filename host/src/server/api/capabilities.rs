//! `/api/capabilities`: the operations the loaded plugins serve, and the calls the ERP makes
//! (`POST /api/capabilities/{operation}`), by category, never by provider.

use super::ApiQuery;
use crate::server::actions;
use crate::server::auth::Principal;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CapabilityQuery {
    /// Instance to use; by default the one enabled instance serving the operation.
    pub instance: Option<String>,
}

/// An operation and the instances that can serve it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CapabilityDoc {
    /// E.g. `company.lookup`.
    pub operation: String,
    /// Loaded plugins serving it.
    pub plugins: Vec<String>,
    /// Instances of those plugins.
    pub instances: Vec<CapabilityInstance>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CapabilityInstance {
    pub id: String,
    pub plugin: String,
    pub enabled: bool,
}

/// Operations served by the loaded plugins, with the instances able to serve them.
#[utoipa::path(get, path = "/api/capabilities", tag = "capabilities",
    responses((status = 200, body = Vec<CapabilityDoc>)))]
pub(super) async fn list_capabilities(
    State(app): State<AppState>,
) -> Result<Json<Vec<CapabilityDoc>>, ApiError> {
    Ok(Json(
        app.engine
            .capabilities()?
            .into_iter()
            .map(|c| CapabilityDoc {
                operation: c.operation,
                plugins: c.plugins,
                instances: c
                    .instances
                    .into_iter()
                    .map(|i| CapabilityInstance {
                        id: i.id.to_string(),
                        plugin: i.plugin,
                        enabled: i.enabled,
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// Calls a capability operation (what the ERP does). The body is the operation's input;
/// the answer is its output. Needs a token of scope `capabilities` or `admin`.
///
/// A caller that waits less than the host's 120 s says so with `Prefer: wait=<seconds>`
/// (RFC 7240): a call whose provider quota frees up later fails at once with
/// `429 quota_exhausted` and `Retry-After`.
#[utoipa::path(post, path = "/api/capabilities/{operation}", tag = "capabilities",
    params(("operation" = String, Path, description = "E.g. `company.lookup`"), CapabilityQuery,
        ("Prefer" = Option<String>, Header, description = "`wait=<seconds>` (RFC 7240): how long the caller waits; a call whose provider quota frees up later fails at once with 429 `quota_exhausted` and `Retry-After`")),
    request_body(content = Object, description = "The operation's input, e.g. `{\"id\": \"21920023500014\"}` for company.lookup"),
    responses((status = 200, description = "The operation's output", body = Object),
        (status = 404, description = "`no_provider`, `not_found`, `unsupported_operation`", body = ErrorBody),
        (status = 409, description = "`instance_disabled`, `ambiguous_provider`, `invalid_configuration`", body = ErrorBody),
        (status = 422, description = "`invalid_value`: the input is wrong", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub(super) async fn invoke_capability(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(operation): Path<String>,
    ApiQuery(q): ApiQuery<CapabilityQuery>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let deadline =
        crate::services::quota::preferred_wait(&headers).unwrap_or(crate::engine::CALL_DEADLINE);
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the input is not valid JSON: {e}")))?
    };
    let instance = q
        .instance
        .as_deref()
        .map(actions::instance_id)
        .transpose()?;
    let out = app
        .engine
        .invoke_within(&operation, input, instance.as_ref(), &who.actor(), deadline)
        .await?;
    Ok(Json(out))
}
