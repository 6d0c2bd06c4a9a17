//! The one error type of the HTTP API: every failure becomes JSON `{code, message}` with a
//! stable machine-readable `code`, and for validation the field's name and JSON pointer.
//!
//! Internal details (paths, SQLite messages, panics) never reach the client: they are logged
//! (redacted) and the client gets `internal` with a message saying where to look.
//!
//! Stable codes: `invalid_request`, `invalid_id`, `invalid_value`, `invalid_configuration`,
//! `unauthenticated`, `forbidden`, `csrf_failed`, `origin_mismatch`, `not_found`, `not_tested`, `unknown_plugin`,
//! `already_exists`, `stale_revision`, `instance_disabled`, `no_provider`,
//! `ambiguous_provider`, `unsupported_operation`, `provider_error`, `provider_unavailable`,
//! `provider_timeout`, `rate_limited`, `quota_exhausted`, `method_not_allowed`,
//! `payload_too_large`, `unsupported_media_type`, `not_implemented`, `internal`: the
//! [`ErrorCode`]s of [`crate::failure`], which also classifies the domain errors. Each code
//! has one status, given by [`ErrorCode::status`] here and nowhere else.

pub use crate::failure::ErrorCode;
use crate::instances::ConfigError;
use crate::runner::RunError;
use crate::schema::FieldError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem with one field of a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// Field name; empty when the problem concerns the configuration as a whole.
    pub field: String,
    /// JSON pointer of the field in the configuration, e.g. `/api_key`.
    pub pointer: String,
    pub message: String,
}

impl From<&FieldError> for FieldProblem {
    fn from(e: &FieldError) -> Self {
        FieldProblem {
            field: e.field.clone(),
            pointer: e.pointer.clone(),
            message: e.message.clone(),
        }
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_value`.
    pub code: String,
    /// What happened and what to do, for a person.
    pub message: String,
    /// The field concerned (validation errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// JSON pointer of the field concerned, e.g. `/timeout_secs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Every problem, when a whole configuration was checked (`invalid_configuration`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

impl ErrorCode {
    /// The HTTP status of every answer with this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::InvalidId => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidValue | ErrorCode::InvalidConfiguration => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::CsrfFailed | ErrorCode::OriginMismatch => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::NotFound
            | ErrorCode::NotTested
            | ErrorCode::UnknownPlugin
            | ErrorCode::NoProvider
            | ErrorCode::UnsupportedOperation => StatusCode::NOT_FOUND,
            ErrorCode::AlreadyExists
            | ErrorCode::StaleRevision
            | ErrorCode::InstanceDisabled
            | ErrorCode::AmbiguousProvider => StatusCode::CONFLICT,
            ErrorCode::ProviderError => StatusCode::BAD_GATEWAY,
            ErrorCode::ProviderUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ProviderTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::RateLimited | ErrorCode::QuotaExhausted => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer: a status and an [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// The typed code; `body.code` is its text.
    pub code: ErrorCode,
    /// Boxed: errors travel in every `Result` of the handlers and should stay small.
    pub body: Box<ErrorBody>,
    /// Seconds for `Retry-After` (rate limiting).
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.body.message, self.body.code)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// An answer with the code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::with_status(code.status(), code, message)
    }

    /// An answer whose status is not the code's own: a status refused by the HTTP layer
    /// itself (e.g. 414) and reported as `invalid_request`.
    pub fn with_status(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            body: Box::new(ErrorBody {
                code: code.as_str().to_owned(),
                message: message.into(),
                field: None,
                pointer: None,
                errors: Vec::new(),
            }),
            retry_after: None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// A value refused for one field.
    pub fn invalid_value(error: &FieldError) -> Self {
        let mut e = ApiError::new(ErrorCode::InvalidValue, error.message.clone());
        if !error.field.is_empty() {
            e.body.field = Some(error.field.clone());
            e.body.pointer = Some(error.pointer.clone());
        }
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "sign in, or send an API token as `Authorization: Bearer <token>` (create one with `passerelle admin token create`)",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    pub fn csrf() -> Self {
        ApiError::new(
            ErrorCode::CsrfFailed,
            "this request changes something but carries no valid CSRF token: send the session's token in the X-CSRF-Token header (or the _csrf form field), or reload the page",
        )
    }

    /// A session's changing request that did not come from this server's pages.
    pub fn origin(message: String) -> Self {
        ApiError::new(ErrorCode::OriginMismatch, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn not_implemented(what: &str) -> Self {
        ApiError::new(
            ErrorCode::NotImplemented,
            format!("{what} is not available over HTTP yet; use the command line"),
        )
    }

    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = ApiError::new(ErrorCode::RateLimited, message);
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }

    /// An unexpected failure: logged in full (redacted), reported without details.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %crate::redact::redact(&detail.to_string()), "internal error in the HTTP API");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(*self.body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"passerelle\""),
            );
        }
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        let code = e.code();
        match &e {
            _ if code == ErrorCode::Internal => ApiError::internal(&e),
            ConfigError::Field { error, .. } => ApiError::invalid_value(error),
            ConfigError::Invalid { errors, .. } => {
                let mut api = ApiError::new(code, e.to_string());
                api.body.errors = errors.iter().map(FieldProblem::from).collect();
                if let Some(first) = errors.first().filter(|f| !f.field.is_empty()) {
                    api.body.field = Some(first.field.clone());
                    api.body.pointer = Some(first.pointer.clone());
                }
                api
            }
            _ => ApiError::new(code, e.to_string()),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        let code = e.code();
        match e {
            RunError::Config(c) => c.into(),
            RunError::Busy(ref busy) => {
                let mut api = ApiError::new(code, e.to_string());
                api.retry_after = Some(busy.retry_after_secs.max(1));
                api
            }
            RunError::Plugin(ref p) => {
                // A plugin finding the saved configuration wrong is a conflict with the
                // instance's state, not a bad request body: 409, as the OpenAPI documents.
                let status = if p.kind == passerelle_plugin_api::ErrorKind::Config {
                    StatusCode::CONFLICT
                } else {
                    code.status()
                };
                let mut api = ApiError::with_status(status, code, e.to_string());
                if let Some(field) = &p.field {
                    api.body.pointer = Some(format!("/{field}"));
                    api.body.field = Some(field.clone());
                }
                api
            }
            _ => ApiError::new(code, e.to_string()),
        }
    }
}

impl From<super::db::DbError> for ApiError {
    fn from(e: super::db::DbError) -> Self {
        ApiError::internal(e)
    }
}

impl From<super::audit::AuditError> for ApiError {
    fn from(e: super::audit::AuditError) -> Self {
        ApiError::internal(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("a background task failed: {e}"))
    }
}
