//! A loaded plugin and the safe calls into it.
//!
//! Everything that crosses the boundary is JSON; this module decodes it and turns a plugin's
//! failures (errors, panics caught by `export_plugin!`, undecodable answers) into
//! [`PluginError`]s. It does not decide on which thread a call runs: see [`crate::runner`].

use crate::schema::ConfigSchema;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString};
use passerelle_plugin_api::abi::{HostCallbacks, HostCallbacks_TO, PluginModRef};
use passerelle_plugin_api::{ErrorKind, Manifest, PluginError, Quotas, TaskOutcome, TestReport};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// A plugin library that passed every check of the loader.
pub struct LoadedPlugin {
    pub path: PathBuf,
    /// SHA-256 of the library file, hex.
    pub sha256: String,
    /// The publisher key that signed it, when signed.
    pub signed_by: Option<String>,
    pub manifest: Manifest,
    pub schema: ConfigSchema,
    pub module: PluginModRef,
    /// Time taken to map the library and run its checks.
    pub load_time: Duration,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.manifest.id)
            .field("path", &self.path)
            .finish()
    }
}

/// Decodes a boundary answer; an `RErr` carries a JSON [`PluginError`].
pub(crate) fn decode<T: DeserializeOwned>(
    entry: &str,
    result: RResult<RString, RString>,
) -> Result<T, PluginError> {
    match result {
        RResult::ROk(json) => serde_json::from_str(json.as_str()).map_err(|e| {
            PluginError::new(
                ErrorKind::Internal,
                format!("the plugin's answer to {entry} is not what this host expects ({e})"),
            )
        }),
        RResult::RErr(json) => Err(PluginError::from_json(json.as_str())),
    }
}

impl LoadedPlugin {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// The plugin's own cross-field rules.
    pub fn validate(&self, config: &Value) -> Result<Vec<PluginError>, PluginError> {
        let config = config.to_string();
        decode(
            "validate",
            (self.module.validate())(RStr::from_str(&config)),
        )
    }

    /// Quotas for a configuration.
    pub fn quotas(&self, config: &Value) -> Quotas {
        let config = config.to_string();
        decode("quotas", (self.module.quotas())(RStr::from_str(&config)))
            .unwrap_or(self.manifest.quotas)
    }

    /// Runs the test routine. Blocking: call it from a blocking thread.
    pub fn test(
        &self,
        config: &Value,
        host: &impl HostCallbacks,
    ) -> Result<TestReport, PluginError> {
        let config = config.to_string();
        let host = HostCallbacks_TO::from_ptr(host, TD_Opaque);
        decode("test", (self.module.test())(RStr::from_str(&config), host))
    }

    /// Serves an operation. Blocking: call it from a blocking thread.
    pub fn invoke(
        &self,
        operation: &str,
        input: &Value,
        config: &Value,
        host: &impl HostCallbacks,
    ) -> Result<Value, PluginError> {
        let config = config.to_string();
        let input = input.to_string();
        let host = HostCallbacks_TO::from_ptr(host, TD_Opaque);
        decode(
            "invoke",
            (self.module.invoke())(
                RStr::from_str(operation),
                RStr::from_str(&input),
                RStr::from_str(&config),
                host,
            ),
        )
    }

    /// Runs a scheduled task. Blocking: call it from a blocking thread.
    pub fn run_task(
        &self,
        task: &str,
        config: &Value,
        host: &impl HostCallbacks,
    ) -> Result<TaskOutcome, PluginError> {
        let config = config.to_string();
        let host = HostCallbacks_TO::from_ptr(host, TD_Opaque);
        decode(
            "run_task",
            (self.module.run_task())(RStr::from_str(task), RStr::from_str(&config), host),
        )
    }
}
