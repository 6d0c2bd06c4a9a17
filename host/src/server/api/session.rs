//! `/api/session`: who is calling, and the CSRF token a browser session sends back.

use crate::server::auth::{Principal, Scope};
use crate::server::error::ErrorBody;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

/// Who is calling.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDoc {
    /// As the audit history names the caller.
    pub actor: String,
    /// `session` or `token`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The CSRF token to send in `X-CSRF-Token` with changing requests (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// Who is calling (and the session's CSRF token).
#[utoipa::path(get, path = "/api/session", tag = "session",
    responses((status = 200, body = SessionDoc), (status = 401, body = ErrorBody)))]
pub(super) async fn session(Extension(who): Extension<Principal>) -> Json<SessionDoc> {
    Json(match &who {
        Principal::User { csrf, .. } => SessionDoc {
            actor: who.actor(),
            kind: "session".into(),
            scope: None,
            csrf_token: Some(csrf.clone()),
        },
        Principal::Token { scope, .. } => SessionDoc {
            actor: who.actor(),
            kind: "token".into(),
            scope: Some(*scope),
            csrf_token: None,
        },
    })
}
