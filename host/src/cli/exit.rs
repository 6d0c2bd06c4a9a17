//! Exit codes of the command line, stable and documented in the README:
//!
//! - 0: success (a test with warnings included)
//! - 1: the operation ran and failed (test failed, provider error)
//! - 2: invalid command line (clap's own)
//! - 3: refused: invalid value, incomplete configuration, stale revision
//! - 4: not found: instance, plugin, company
//! - 70: internal error
//!
//! Errors are classified once, in [`crate::failure`]; this module only maps a class to its
//! code (the HTTP API maps the same classification to statuses in `server::error`).

use crate::failure::Class;
use crate::instances::ConfigError;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_REFUSED: u8 = 3;
pub const EXIT_NOT_FOUND: u8 = 4;
pub const EXIT_INTERNAL: u8 = 70;

/// The exit code of a class of failure.
pub fn exit_code(class: Class) -> u8 {
    match class {
        Class::NotFound => EXIT_NOT_FOUND,
        Class::Refused => EXIT_REFUSED,
        Class::Failed => EXIT_FAILED,
        Class::Internal => EXIT_INTERNAL,
    }
}

/// The exit code of an error that reached `main`: that of the first classified error in its
/// chain (configuration and run errors, invalid ids); anything else is internal.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<ConfigError>() {
            return exit_code(c.class());
        }
        if let Some(r) = cause.downcast_ref::<crate::runner::RunError>() {
            return exit_code(r.class());
        }
        if cause.downcast_ref::<crate::ids::InvalidId>().is_some() {
            return exit_code(Class::Refused);
        }
    }
    EXIT_INTERNAL
}

/// Wraps an error as a refusal (exit code 3).
pub fn refused(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(ConfigError::Refused(e.to_string()))
}
