//! # passerelle-plugin-api
//!
//! The only crate a Passerelle plugin needs. It owns every type that crosses the boundary
//! between the host and a plugin, and nothing else: no I/O, no host logic.
//!
//! A plugin author writes a configuration struct, implements [`Plugin`] and calls
//! [`export_plugin!`]. Everything a plugin does outside its own memory (HTTP, logging, clock,
//! sleeping, persistent state) goes through the [`Host`] it is handed, so that one TLS stack,
//! one rate limiter and one redacting logger serve every plugin.
//!
//! ```ignore
//! use passerelle_plugin_api::prelude::*;
//!
//! export_plugin!(MyPlugin);
//! ```
//!
//! ## Versioning
//! [`PLUGIN_API_VERSION`] is the version of the *boundary*, independent from this crate's and
//! the host's versions. The host accepts plugins whose API version has the same major and a
//! minor no greater than its own. See `CHANGELOG.md` for what each version added.

pub mod abi;
pub mod blocks;
pub mod capabilities;
pub mod config;
pub mod contract;
pub mod error;
pub mod events;
mod export;
pub mod host;
pub mod http;
pub mod i18n;
pub mod manifest;
pub mod multipart;
pub mod oauth2;
pub mod plugin;
pub mod report;
pub mod retry;
pub mod serve;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{config_schema, Secret};
pub use contract::{contract, contracts, OperationContract};
pub use error::{ErrorKind, PluginError};
pub use host::{Host, LogLevel};
pub use http::{HttpAuth, HttpError, HttpErrorKind, HttpRequest, HttpResponse, Method};
pub use i18n::{Catalog, Text};
pub use manifest::{Category, Manifest, Quotas, TaskDecl};
pub use oauth2::OAuth2Client;
pub use plugin::{Call, Operation, Plugin, Reply, TaskOutcome};
pub use report::{Check, Status, Step, TestReport};
pub use retry::{Idempotency, RetryPolicy};
pub use serve::Operations;

/// Version of the plugin boundary (root module layout, host callbacks, JSON shapes).
///
/// Bump the minor for additions (new root-module fields after `last_prefix_field`, new host
/// callbacks, new optional JSON fields) and the major for anything else.
pub const PLUGIN_API_VERSION: &str = "1.1.0";

/// Everything a plugin author needs, in one `use`.
pub mod prelude {
    pub use crate::blocks::{
        CredentialsSpec, OAuth2Credentials, Retry, RetrySpec, Timeout, TimeoutSpec,
    };
    pub use crate::capabilities::*;
    pub use crate::config::{check_range, is_http_url, Secret};
    pub use crate::error::{ErrorKind, PluginError};
    pub use crate::events;
    pub use crate::export_plugin;
    pub use crate::host::{Host, LogLevel};
    pub use crate::http::{HttpAuth, HttpError, HttpErrorKind, HttpRequest, HttpResponse, Method};
    pub use crate::i18n::Text;
    pub use crate::manifest::{Category, Manifest, Quotas, TaskDecl};
    pub use crate::oauth2::OAuth2Client;
    pub use crate::plugin::{Call, Operation, Plugin, Reply, TaskOutcome};
    pub use crate::report::{Check, Status, Step, TestReport};
    pub use crate::retry::{Idempotency, RetryPolicy};
    pub use crate::serve::Operations;
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use crate::export::{
        root_module, root_module_declaring, root_module_describing, ROOT_MODULE_LOADER_SYMBOL,
    };
    pub use abi_stable;
}
