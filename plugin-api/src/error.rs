//! The one error type that crosses the boundary. Plugins return it from operations and tasks;
//! the host maps its [`ErrorKind`] to exit codes and HTTP statuses.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What went wrong, in a form a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller's input is wrong (bad SIRET, unsupported file…).
    InvalidInput,
    /// The instance's configuration is wrong or incomplete.
    Config,
    /// The provider has no such object.
    NotFound,
    /// The provider refused the credentials.
    Unauthorized,
    /// The credentials are valid but not allowed to do this.
    Forbidden,
    /// The provider's rate limit or the instance's quota is exhausted.
    RateLimited,
    /// The provider could not be reached or answered with a server error.
    Unavailable,
    /// The provider answered something the plugin did not understand.
    Upstream,
    /// The plugin does not serve this operation or task.
    Unsupported,
    /// The plugin panicked; the call was contained.
    Panic,
    /// The call ran past its deadline.
    Timeout,
    /// A bug or an unexpected condition.
    Internal,
}

/// An error with a message meant for a person: what happened and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: String,
    /// The configuration field or input field concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: message.into(),
            field: None,
        }
    }

    /// Names the field concerned.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub fn config(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message).with_field(field)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Serialises for the boundary; never fails in practice, falls back to a plain message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"kind\":\"internal\",\"message\":{:?}}}",
                self.message.replace('"', "'")
            )
        })
    }

    /// Reads an error from the boundary; anything unreadable becomes an internal error
    /// carrying the raw text.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| Self::internal(text.to_owned()))
    }
}
