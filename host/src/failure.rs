//! How a failure is classified, once for every surface.
//!
//! Each kind of failure has a stable [`ErrorCode`] (what the HTTP API puts in `code`) and a
//! [`Class`]: not found, refused, failed, internal. The command line maps the class to its
//! exit code (`cli::exit`), the HTTP API maps the code to its status (`server::error`); the
//! domain errors ([`ConfigError`], [`RunError`]) are classified here and nowhere else, so the
//! two surfaces cannot drift apart.

use crate::instances::ConfigError;
use crate::runner::RunError;
use crate::store::StoreError;
use passerelle_plugin_api::ErrorKind;

/// What kind of failure it is, for whoever decides what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The thing asked for does not exist: instance, plugin, provider, company.
    NotFound,
    /// The request was refused before anything ran: invalid value, incomplete
    /// configuration, stale revision, disabled instance. Fix the request and retry.
    Refused,
    /// The operation ran and failed: the provider answered an error, timed out, or the
    /// quota is spent.
    Failed,
    /// A bug or a broken host (disk, database); the log has the details.
    Internal,
}

/// The stable, machine-readable code of a failure (the HTTP API's `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidId,
    InvalidValue,
    InvalidConfiguration,
    Unauthenticated,
    Forbidden,
    CsrfFailed,
    OriginMismatch,
    NotFound,
    NotTested,
    UnknownPlugin,
    AlreadyExists,
    StaleRevision,
    InstanceDisabled,
    NoProvider,
    AmbiguousProvider,
    UnsupportedOperation,
    ProviderError,
    ProviderUnavailable,
    ProviderTimeout,
    RateLimited,
    QuotaExhausted,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotImplemented,
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidId,
        ErrorCode::InvalidValue,
        ErrorCode::InvalidConfiguration,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::CsrfFailed,
        ErrorCode::OriginMismatch,
        ErrorCode::NotFound,
        ErrorCode::NotTested,
        ErrorCode::UnknownPlugin,
        ErrorCode::AlreadyExists,
        ErrorCode::StaleRevision,
        ErrorCode::InstanceDisabled,
        ErrorCode::NoProvider,
        ErrorCode::AmbiguousProvider,
        ErrorCode::UnsupportedOperation,
        ErrorCode::ProviderError,
        ErrorCode::ProviderUnavailable,
        ErrorCode::ProviderTimeout,
        ErrorCode::RateLimited,
        ErrorCode::QuotaExhausted,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotImplemented,
        ErrorCode::Internal,
    ];

    /// The code as clients see it, e.g. `invalid_value`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::InvalidConfiguration => "invalid_configuration",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::OriginMismatch => "origin_mismatch",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NotTested => "not_tested",
            ErrorCode::UnknownPlugin => "unknown_plugin",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::StaleRevision => "stale_revision",
            ErrorCode::InstanceDisabled => "instance_disabled",
            ErrorCode::NoProvider => "no_provider",
            ErrorCode::AmbiguousProvider => "ambiguous_provider",
            ErrorCode::UnsupportedOperation => "unsupported_operation",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::ProviderTimeout => "provider_timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExhausted => "quota_exhausted",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Internal => "internal",
        }
    }

    /// The class of failures with this code.
    pub fn class(self) -> Class {
        match self {
            ErrorCode::NotFound
            | ErrorCode::NotTested
            | ErrorCode::UnknownPlugin
            | ErrorCode::NoProvider => Class::NotFound,
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidId
            | ErrorCode::InvalidValue
            | ErrorCode::InvalidConfiguration
            | ErrorCode::Unauthenticated
            | ErrorCode::Forbidden
            | ErrorCode::CsrfFailed
            | ErrorCode::OriginMismatch
            | ErrorCode::AlreadyExists
            | ErrorCode::StaleRevision
            | ErrorCode::InstanceDisabled
            | ErrorCode::AmbiguousProvider
            | ErrorCode::MethodNotAllowed
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::NotImplemented => Class::Refused,
            ErrorCode::UnsupportedOperation
            | ErrorCode::ProviderError
            | ErrorCode::ProviderUnavailable
            | ErrorCode::ProviderTimeout
            | ErrorCode::RateLimited
            | ErrorCode::QuotaExhausted => Class::Failed,
            ErrorCode::Internal => Class::Internal,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl ConfigError {
    /// The code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConfigError::Store(StoreError::NotFound(_)) => ErrorCode::NotFound,
            ConfigError::Store(StoreError::Exists(_)) => ErrorCode::AlreadyExists,
            ConfigError::Store(StoreError::Stale { .. }) => ErrorCode::StaleRevision,
            ConfigError::Store(
                StoreError::Io { .. } | StoreError::Corrupt { .. } | StoreError::Database(_),
            )
            | ConfigError::Secret(_) => ErrorCode::Internal,
            ConfigError::Id(_) => ErrorCode::InvalidId,
            ConfigError::Field { .. } => ErrorCode::InvalidValue,
            ConfigError::Invalid { .. } => ErrorCode::InvalidConfiguration,
            ConfigError::UnknownPlugin { .. } => ErrorCode::UnknownPlugin,
            ConfigError::Provisioning { .. } | ConfigError::Refused(_) => ErrorCode::InvalidRequest,
        }
    }

    /// The class of this failure: its code's, except that an unreadable instance file or
    /// secret key is the operator's to fix (refused where the operator sees the details, at
    /// the command line) while HTTP clients only learn that it is internal.
    pub fn class(&self) -> Class {
        match self {
            ConfigError::Store(StoreError::Corrupt { .. }) | ConfigError::Secret(_) => {
                Class::Refused
            }
            other => other.code().class(),
        }
    }
}

impl RunError {
    /// The code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            RunError::Config(c) => c.code(),
            RunError::Busy(_) => ErrorCode::QuotaExhausted,
            RunError::WaitedTooLong { .. } => ErrorCode::ProviderTimeout,
            RunError::Disabled(_) => ErrorCode::InstanceDisabled,
            RunError::NoProvider(_) => ErrorCode::NoProvider,
            RunError::Ambiguous { .. } => ErrorCode::AmbiguousProvider,
            RunError::Plugin(p) => match p.kind {
                ErrorKind::InvalidInput => ErrorCode::InvalidValue,
                ErrorKind::Config => ErrorCode::InvalidConfiguration,
                ErrorKind::NotFound => ErrorCode::NotFound,
                ErrorKind::Unsupported => ErrorCode::UnsupportedOperation,
                ErrorKind::RateLimited => ErrorCode::RateLimited,
                ErrorKind::Unavailable => ErrorCode::ProviderUnavailable,
                ErrorKind::Timeout => ErrorCode::ProviderTimeout,
                ErrorKind::Unauthorized
                | ErrorKind::Forbidden
                | ErrorKind::Upstream
                | ErrorKind::Panic
                | ErrorKind::Internal => ErrorCode::ProviderError,
            },
        }
    }

    /// The class of this failure.
    pub fn class(&self) -> Class {
        match self {
            RunError::Config(c) => c.class(),
            other => other.code().class(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_plugin_api::PluginError;

    #[test]
    fn codes_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn domain_errors_are_classified_once_for_both_surfaces() {
        let x = crate::ids::InstanceId::new("x").unwrap();
        let missing = ConfigError::Store(StoreError::NotFound(x.clone()));
        assert_eq!(missing.code(), ErrorCode::NotFound);
        assert_eq!(missing.class(), Class::NotFound);
        let stale = ConfigError::Store(StoreError::Stale {
            id: x,
            expected: 1,
            actual: 2,
        });
        assert_eq!(
            (stale.code(), stale.class()),
            (ErrorCode::StaleRevision, Class::Refused)
        );
        let corrupt = ConfigError::Store(StoreError::Corrupt {
            path: "x.toml".into(),
            reason: "bad".into(),
        });
        assert_eq!(
            (corrupt.code(), corrupt.class()),
            (ErrorCode::Internal, Class::Refused)
        );
        let busy = RunError::Plugin(PluginError::new(ErrorKind::Timeout, "slow"));
        assert_eq!(
            (busy.code(), busy.class()),
            (ErrorCode::ProviderTimeout, Class::Failed)
        );
        let wrapped = RunError::Config(ConfigError::UnknownPlugin {
            plugin: "p".into(),
            loaded: "none".into(),
        });
        assert_eq!(wrapped.class(), Class::NotFound);
    }
}
