//! `/api/tokens`: API tokens for the ERP and scripts, scoped, stored hashed, shown once.

use super::ApiJson;
use crate::server::audit::{Action, Change};
use crate::server::auth::{Principal, Scope, TokenInfo};
use crate::server::error::{ApiError, ErrorBody};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1 to 64 letters, digits, `-`, `_` or `.`; unique among active tokens.
    pub name: String,
    pub scope: Scope,
}

/// A token just created: its value is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send it as `Authorization: Bearer <token>`.
    pub token: String,
    pub info: TokenInfo,
}

/// API tokens (never their values).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>)))]
pub(super) async fn list_tokens(
    State(app): State<AppState>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(app.auth.list_tokens()?))
}

/// Creates an API token; its value is in this answer only.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "`invalid_value`: the name is not valid", body = ErrorBody)))]
pub(super) async fn create_token(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let actor = who.actor();
    let (info, token) = app
        .auth
        .create_token(&body.name, body.scope, &actor)
        .map_err(auth_error)?;
    app.audit.record_or_log(Change {
        actor: &actor,
        instance: None,
        field: None,
        action: Action::CreateToken,
        old: None,
        new: Some(format!("{} ({}, scope {})", info.name, info.id, info.scope)),
    });
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info })))
}

/// Revokes an API token, by id or name.
#[utoipa::path(delete, path = "/api/tokens/{token}", tag = "tokens",
    params(("token" = String, Path, description = "Token id or name")),
    responses((status = 200, body = TokenInfo), (status = 404, body = ErrorBody)))]
pub(super) async fn revoke_token(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(token): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    let info = app.auth.revoke_token(&token).map_err(auth_error)?;
    app.audit.record_or_log(Change {
        actor: &who.actor(),
        instance: None,
        field: None,
        action: Action::RevokeToken,
        old: Some(format!("{} ({}, scope {})", info.name, info.id, info.scope)),
        new: None,
    });
    Ok(Json(info))
}

pub fn auth_error(e: crate::server::auth::AuthError) -> ApiError {
    use crate::server::auth::AuthError;
    match e {
        AuthError::Db(db) => ApiError::internal(db),
        AuthError::Hash(h) => ApiError::internal(h),
        AuthError::TokenExists(_) => {
            ApiError::new(crate::failure::ErrorCode::AlreadyExists, e.to_string())
        }
        AuthError::NoSuchToken(_) => ApiError::not_found(e.to_string()),
        AuthError::WeakPassword | AuthError::BadUserName | AuthError::BadTokenName => {
            ApiError::new(crate::failure::ErrorCode::InvalidValue, e.to_string())
        }
    }
}
