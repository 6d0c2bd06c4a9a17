//! Running plugin code: on a blocking thread (plugins block on the host's callbacks, which
//! would panic on an async worker), with a deadline, and with every answer redacted.
//!
//! A call that passes its deadline is abandoned: its thread is left to finish on its own
//! (native code cannot be cancelled safely) and the caller gets a clear failure at once.

use crate::ids::InstanceId;
use crate::instances::ConfigError;
use crate::plugin::LoadedPlugin;
use crate::redact;
use crate::services::callbacks::InstanceHost;
use crate::services::Services;
use passerelle_plugin_api::{ErrorKind, PluginError, Status, TaskOutcome, TestReport};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}", redact::redact(&.0.message))]
    Plugin(PluginError),
    #[error("no enabled instance serves {0}; create and enable one (`passerelle config create`, `passerelle config enable`) — `passerelle plugins` lists which plugins serve it")]
    NoProvider(String),
    #[error("several enabled instances serve {operation} ({}); choose one with --instance", .instances.join(", "))]
    Ambiguous {
        operation: String,
        instances: Vec<String>,
    },
    #[error("instance `{0}` is disabled; enable it with `passerelle config enable {0}`")]
    Disabled(String),
}

impl RunError {
    /// The plugin error kind, when the plugin produced the error.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            RunError::Plugin(e) => Some(e.kind),
            _ => None,
        }
    }
}

fn host(
    plugin: &LoadedPlugin,
    instance: &InstanceId,
    config: &Value,
    services: Arc<Services>,
) -> InstanceHost {
    InstanceHost {
        quotas: plugin.quotas(config),
        instance: instance.to_string(),
        plugin: plugin.id().to_owned(),
        services,
        runtime: tokio::runtime::Handle::current(),
    }
}

/// Runs a test routine; failures of every kind become a failed report.
pub async fn test(
    plugin: Arc<LoadedPlugin>,
    instance: InstanceId,
    config: Value,
    services: Arc<Services>,
    deadline: Duration,
) -> TestReport {
    let host = host(&plugin, &instance, &config, services);
    let task = tokio::task::spawn_blocking(move || plugin.test(&config, &host));
    let mut report = match tokio::time::timeout(deadline, task).await {
        Ok(Ok(Ok(report))) => report,
        Ok(Ok(Err(e))) => TestReport::failed(
            if e.kind == ErrorKind::Panic { "run test routine" } else { "test routine" },
            e.message,
        ),
        Ok(Err(join)) => TestReport::failed("run test routine", format!("the test routine crashed: {join}")),
        Err(_) => TestReport::failed(
            "deadline",
            format!(
                "the test routine did not finish within {} s and was abandoned; the provider may be hanging — check it, or raise the deadline with --deadline",
                deadline.as_secs()
            ),
        ),
    };
    redact_report(&mut report);
    if report.steps.is_empty() {
        report.status = Status::Failed;
        report.summary = "the test routine reported no steps".to_owned();
    }
    report
}

/// Serves an operation.
pub async fn invoke(
    plugin: Arc<LoadedPlugin>,
    instance: InstanceId,
    operation: String,
    input: Value,
    config: Value,
    services: Arc<Services>,
    deadline: Duration,
) -> Result<Value, RunError> {
    let host = host(&plugin, &instance, &config, services);
    let task =
        tokio::task::spawn_blocking(move || plugin.invoke(&operation, &input, &config, &host));
    let result = match tokio::time::timeout(deadline, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(PluginError::internal(format!("the call crashed: {join}"))),
        Err(_) => Err(PluginError::new(
            ErrorKind::Timeout,
            format!(
                "the call did not finish within {} s and was abandoned",
                deadline.as_secs()
            ),
        )),
    };
    result.map(|v| redact_value(&v)).map_err(|mut e| {
        e.message = redact::redact(&e.message);
        RunError::Plugin(e)
    })
}

/// Runs a scheduled task.
pub async fn run_task(
    plugin: Arc<LoadedPlugin>,
    instance: InstanceId,
    task: String,
    config: Value,
    services: Arc<Services>,
    deadline: Duration,
) -> Result<TaskOutcome, RunError> {
    let host = host(&plugin, &instance, &config, services);
    let job = tokio::task::spawn_blocking(move || plugin.run_task(&task, &config, &host));
    let result = match tokio::time::timeout(deadline, job).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(PluginError::internal(format!("the task crashed: {join}"))),
        Err(_) => Err(PluginError::new(
            ErrorKind::Timeout,
            format!(
                "the task did not finish within {} s and was abandoned",
                deadline.as_secs()
            ),
        )),
    };
    result
        .map(|mut o| {
            o.summary = redact::redact(&o.summary);
            o
        })
        .map_err(|mut e| {
            e.message = redact::redact(&e.message);
            RunError::Plugin(e)
        })
}

fn redact_report(report: &mut TestReport) {
    report.summary = redact::redact(&report.summary);
    for step in &mut report.steps {
        step.detail = redact::redact(&step.detail);
        step.name = redact::redact(&step.name);
    }
}

fn redact_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(redact::redact(s)),
        Value::Array(a) => Value::Array(a.iter().map(redact_value).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), redact_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
