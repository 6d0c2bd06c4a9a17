//! The JSON API under `/api`: plugins and their schemas, instances with per-field save,
//! enable/disable, tests, the audit history, API tokens, and the capabilities the ERP calls.
//!
//! Every route is declared with its OpenAPI description next to it (`utoipa`), and the
//! router is built from those declarations ([`router`]), so a route cannot exist without
//! being documented. Errors are [`ApiError`]s: JSON with a stable code.
//!
//! One file per resource (`plugins`, `instances`, `capabilities`, `tokens`, `tasks`, `trust`,
//! `audit`, `session`, `webhooks`) holds its documents and handlers; this file holds the
//! extractors whose rejections are JSON errors and the router.

pub mod audit;
pub mod capabilities;
pub mod instances;
pub mod plugins;
pub mod session;
pub mod tasks;
pub mod tokens;
pub mod trust;
pub mod webhooks;

pub use audit::*;
pub use capabilities::*;
pub use instances::*;
pub use plugins::*;
pub use session::*;
pub use tasks::*;
pub use tokens::*;
pub use trust::*;

use super::error::ApiError;
use super::AppState;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body of a capability call (documents travel base64-encoded).
pub const CAPABILITY_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Most audit entries returned at once.
pub const AUDIT_MAX: u32 = 1000;

// ----- extractors with JSON errors -----

/// `Json<T>` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            // Too large and not JSON keep their own status (413, 415), as documented.
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                crate::failure::ErrorCode::PayloadTooLarge,
                format!("the request body is too large: {}", r.body_text()),
            )),
            Err(r) if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(ApiError::new(
                crate::failure::ErrorCode::UnsupportedMediaType,
                format!(
                    "the request body must be JSON sent with `Content-Type: application/json`: {}",
                    r.body_text()
                ),
            )),
            Err(r) => Err(ApiError::bad_request(format!(
                "the request body is not what this endpoint expects: {}",
                r.body_text()
            ))),
        }
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(ApiError::bad_request(format!(
                "invalid query string: {}",
                r.body_text()
            ))),
        }
    }
}

// ----- router -----

/// The API routes with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    let calls = OpenApiRouter::new()
        .routes(routes!(capabilities::invoke_capability))
        .layer(DefaultBodyLimit::max(CAPABILITY_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(session::session))
        .routes(routes!(plugins::list_plugins))
        .routes(routes!(plugins::plugin_schema))
        .routes(routes!(
            instances::list_instances,
            instances::create_instance
        ))
        .routes(routes!(instances::get_instance, instances::delete_instance))
        .routes(routes!(instances::set_field, instances::clear_field))
        .routes(routes!(instances::enable_instance))
        .routes(routes!(instances::disable_instance))
        .routes(routes!(instances::run_test, instances::last_test))
        .routes(routes!(audit::instance_audit))
        .routes(routes!(audit::audit))
        .routes(routes!(capabilities::list_capabilities))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(tasks::tasks))
        .routes(routes!(tasks::run_task))
        .routes(routes!(trust::trust))
        .merge(webhooks::router())
        .routes(routes!(super::metrics::scrape))
        .merge(calls)
}
