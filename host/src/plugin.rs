//! A loaded plugin and the safe calls into it.
//!
//! Everything that crosses the boundary is JSON; this module decodes it and turns a plugin's
//! failures (errors, panics caught by `export_plugin!`, undecodable answers) into
//! [`PluginError`]s. It does not decide on which thread a call runs: see [`crate::runner`].
//! The code runs in the host or in a worker process ([`Backend`], [`crate::isolation`]);
//! both give the same answers to the same decoding.

use crate::isolation::child::CallbackHost;
use crate::isolation::protocol::{Answer, Request};
use crate::isolation::{call_module, IsolationMode, NoHost, ProcessPlugin};
use crate::schema::ConfigSchema;
use abi_stable::std_types::{RResult, RString};
use passerelle_plugin_api::abi::{HostCallbacks, PluginModRef};
use passerelle_plugin_api::{ErrorKind, Manifest, PluginError, Quotas, TaskOutcome, TestReport};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Deadline of `validate` and `quotas` in a plugin process (pure functions, no I/O).
const QUICK_CALL_DEADLINE: Duration = Duration::from_secs(10);

/// Where a plugin's code runs.
pub enum Backend {
    /// Mapped into the host.
    InProcess(PluginModRef),
    /// In worker processes; the host never maps the library.
    Process(Arc<ProcessPlugin>),
}

/// A plugin library that passed every check of the loader.
pub struct LoadedPlugin {
    pub path: PathBuf,
    /// SHA-256 of the library file, hex.
    pub sha256: String,
    /// The publisher key that signed it, when signed.
    pub signed_by: Option<String>,
    pub manifest: Manifest,
    pub schema: ConfigSchema,
    pub backend: Backend,
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

    pub fn isolation(&self) -> IsolationMode {
        match self.backend {
            Backend::InProcess(_) => IsolationMode::InProcess,
            Backend::Process(_) => IsolationMode::Process,
        }
    }

    /// The worker pool, in process mode.
    pub fn process(&self) -> Option<&Arc<ProcessPlugin>> {
        match &self.backend {
            Backend::Process(p) => Some(p),
            Backend::InProcess(_) => None,
        }
    }

    /// A call that gets no host callbacks (`validate`, `quotas`).
    fn call_without_host(
        &self,
        what: &str,
        request: &Request,
    ) -> Result<RResult<RString, RString>, PluginError> {
        let answer = match &self.backend {
            Backend::InProcess(module) => call_module(*module, request, &NoHost),
            Backend::Process(process) => process.call(what, request, None, QUICK_CALL_DEADLINE)?,
        };
        Ok(answer.into())
    }

    /// A call with host callbacks. In process mode the worker is killed at `deadline`;
    /// in-process the deadline is the runner's to enforce (by abandoning the thread).
    fn call_with_host<H: HostCallbacks + Clone + 'static>(
        &self,
        what: &str,
        request: &Request,
        host: &H,
        deadline: Duration,
    ) -> Result<RResult<RString, RString>, PluginError> {
        let answer: Answer = match &self.backend {
            Backend::InProcess(module) => call_module(*module, request, host),
            Backend::Process(process) => {
                let host: Arc<dyn CallbackHost> = Arc::new(host.clone());
                process.call(what, request, Some(host), deadline)?
            }
        };
        Ok(answer.into())
    }

    /// The plugin's own cross-field rules.
    pub fn validate(&self, config: &Value) -> Result<Vec<PluginError>, PluginError> {
        let request = Request::Validate {
            config: config.to_string(),
        };
        decode("validate", self.call_without_host("validate", &request)?)
    }

    /// The environment a configuration targets, when the plugin says (see
    /// `Plugin::environment`); `None` for plugins that do not, or older ones.
    pub fn environment(&self, config: &Value) -> Option<String> {
        let request = Request::Invoke {
            operation: passerelle_plugin_api::plugin::ENVIRONMENT_OPERATION.to_owned(),
            input: Value::Null.to_string(),
            config: config.to_string(),
        };
        self.call_without_host("environment", &request)
            .and_then(|answer| decode::<Value>("invoke", answer))
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Quotas for a configuration.
    pub fn quotas(&self, config: &Value) -> Quotas {
        let request = Request::Quotas {
            config: config.to_string(),
        };
        self.call_without_host("quotas", &request)
            .and_then(|answer| decode("quotas", answer))
            .unwrap_or(self.manifest.quotas)
    }

    /// Runs the test routine. Blocking: call it from a blocking thread.
    pub fn test<H: HostCallbacks + Clone + 'static>(
        &self,
        config: &Value,
        host: &H,
        deadline: Duration,
    ) -> Result<TestReport, PluginError> {
        let request = Request::Test {
            config: config.to_string(),
        };
        decode(
            "test",
            self.call_with_host("test", &request, host, deadline)?,
        )
    }

    /// Serves an operation. Blocking: call it from a blocking thread.
    pub fn invoke<H: HostCallbacks + Clone + 'static>(
        &self,
        operation: &str,
        input: &Value,
        config: &Value,
        host: &H,
        deadline: Duration,
    ) -> Result<Value, PluginError> {
        let request = Request::Invoke {
            operation: operation.to_owned(),
            input: input.to_string(),
            config: config.to_string(),
        };
        let what = format!("invoke of `{operation}`");
        decode(
            "invoke",
            self.call_with_host(&what, &request, host, deadline)?,
        )
    }

    /// Runs a scheduled task. Blocking: call it from a blocking thread.
    pub fn run_task<H: HostCallbacks + Clone + 'static>(
        &self,
        task: &str,
        config: &Value,
        host: &H,
        deadline: Duration,
    ) -> Result<TaskOutcome, PluginError> {
        let request = Request::RunTask {
            task: task.to_owned(),
            config: config.to_string(),
        };
        let what = format!("task `{task}`");
        decode(
            "run_task",
            self.call_with_host(&what, &request, host, deadline)?,
        )
    }
}
