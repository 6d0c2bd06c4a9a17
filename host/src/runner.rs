//! Running plugin code: on a blocking thread (plugins block on the host's callbacks, which
//! would panic on an async worker), with a deadline, and with every answer redacted.
//!
//! In-process, a call that passes its deadline is abandoned: its thread is left to finish on
//! its own (native code cannot be cancelled safely), the caller gets a clear failure at once
//! and the instance is marked degraded until the thread ends. In process mode the worker
//! running the call is killed at the deadline, so the call really stops (see
//! [`crate::isolation`]).

use crate::ids::InstanceId;
use crate::instances::ConfigError;
use crate::isolation::IsolationMode;
use crate::plugin::LoadedPlugin;
use crate::redact;
use crate::services::callbacks::InstanceHost;
use crate::services::quota::QuotaDenied;
use crate::services::Services;
use passerelle_plugin_api::{ErrorKind, PluginError, Status, TaskOutcome, TestReport};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    /// Too many calls already wait for this instance or caller.
    #[error(transparent)]
    Busy(crate::services::admission::Busy),
    #[error("the call waited {secs} s for a free slot of instance `{instance}` and was given up; the provider quota is saturated, retry later or raise it")]
    WaitedTooLong { instance: String, secs: u64 },
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

/// Extra wait beyond the deadline in process mode: the worker is killed at the deadline by
/// the call itself; this covers reaping it and host callbacks still finishing.
const KILL_GRACE: Duration = Duration::from_secs(5);

#[allow(clippy::too_many_arguments)]
fn host(
    plugin: &LoadedPlugin,
    instance: &InstanceId,
    config: &Value,
    services: Arc<Services>,
    runtime: tokio::runtime::Handle,
    cancel: CancellationToken,
    call: &Call,
) -> InstanceHost {
    InstanceHost {
        quotas: plugin.quotas(config),
        instance: instance.to_string(),
        plugin: plugin.id().to_owned(),
        services,
        runtime,
        cancel,
        deadline: Some(call.deadline),
        operation: call.operation.clone(),
        quota_denied: call.quota_denied.clone(),
    }
}

/// What the host callbacks of one call share with the code waiting for it.
struct Call {
    operation: String,
    deadline: tokio::time::Instant,
    quota_denied: Arc<std::sync::Mutex<Option<QuotaDenied>>>,
}

impl Call {
    fn new(operation: impl Into<String>, deadline: Duration) -> Self {
        Call {
            operation: operation.into(),
            deadline: tokio::time::Instant::now() + deadline,
            quota_denied: Arc::default(),
        }
    }
}

/// How a call on a blocking thread ended.
enum Outcome<T> {
    Done(Result<T, PluginError>),
    /// The blocking task itself failed (a host bug: plugin panics are caught before).
    Crashed(String),
    /// Past the deadline; the thread was left running.
    Abandoned,
}

/// Runs a plugin call on a blocking thread (plugins block on the host's callbacks) with a
/// deadline; an abandoned call marks its instance degraded until its thread ends.
async fn run_blocking<T: Send + 'static>(
    plugin: &LoadedPlugin,
    instance: &InstanceId,
    services: &Arc<Services>,
    what: &str,
    deadline: Duration,
    call: impl FnOnce() -> Result<T, PluginError> + Send + 'static,
) -> Outcome<T> {
    let limit = match plugin.isolation() {
        IsolationMode::InProcess => deadline,
        IsolationMode::Process => deadline + KILL_GRACE,
    };
    let mut task = tokio::task::spawn_blocking(call);
    match tokio::time::timeout(limit, &mut task).await {
        Ok(Ok(result)) => Outcome::Done(result),
        Ok(Err(join)) => Outcome::Crashed(join.to_string()),
        Err(_) => {
            let reason = format!(
                "{what} of plugin `{}` did not finish within {} s and was abandoned; its thread still runs",
                plugin.id(),
                deadline.as_secs()
            );
            tracing::warn!(instance = %instance, "instance degraded: {reason}");
            let was_healthy = services.degraded.get(instance.as_str()).is_none();
            if was_healthy {
                crate::events::emit_host_event(
                    &services.events,
                    instance.as_str(),
                    passerelle_plugin_api::events::types::INSTANCE_DEGRADED,
                    &passerelle_plugin_api::events::InstanceDegraded {
                        reason: reason.clone(),
                    },
                );
            }
            services.degraded.mark(instance.as_str(), reason);
            let services = services.clone();
            let instance = instance.to_string();
            tokio::spawn(async move {
                let _ = task.await;
                services.degraded.release(&instance);
                tracing::info!(instance, "an abandoned call finished");
            });
            Outcome::Abandoned
        }
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
    let runtime = tokio::runtime::Handle::current();
    let (p, id, s) = (plugin.clone(), instance.clone(), services.clone());
    // Cancelled when this future ends or is dropped (the caller went away, or the deadline
    // passed): the plugin's quota waits and sleeps then end at once.
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let shared = Call::new("test", deadline);
    let call = move || {
        let host = host(&p, &id, &config, s, runtime, cancel, &shared);
        p.test(&config, &host, deadline)
    };
    let outcome = run_blocking(&plugin, &instance, &services, "test", deadline, call).await;
    let mut report = match outcome {
        Outcome::Done(Ok(report)) => report,
        Outcome::Done(Err(e)) => TestReport::failed(
            match e.kind {
                ErrorKind::Panic => "run test routine",
                ErrorKind::Timeout => "deadline",
                _ => "test routine",
            },
            e.message,
        ),
        Outcome::Crashed(join) => TestReport::failed("run test routine", format!("the test routine crashed: {join}")),
        Outcome::Abandoned => TestReport::failed(
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
    let runtime = tokio::runtime::Handle::current();
    let (p, id, s) = (plugin.clone(), instance.clone(), services.clone());
    // Cancelled when this future ends or is dropped (the caller went away, or the deadline
    // passed): the plugin's quota waits and sleeps then end at once.
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let what = format!("invoke of `{operation}`");
    let shared = Call::new(operation.clone(), deadline);
    let denied = shared.quota_denied.clone();
    let call = move || {
        let host = host(&p, &id, &config, s, runtime, cancel, &shared);
        p.invoke(&operation, &input, &config, &host, deadline)
    };
    let result = match run_blocking(&plugin, &instance, &services, &what, deadline, call).await {
        Outcome::Done(result) => result,
        Outcome::Crashed(join) => Err(PluginError::internal(format!("the call crashed: {join}"))),
        Outcome::Abandoned => Err(PluginError::new(
            ErrorKind::Timeout,
            format!(
                "the call did not finish within {} s and was abandoned",
                deadline.as_secs()
            ),
        )),
    };
    let denied = denied
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    result.map(|v| redact_value(&v)).map_err(|mut e| {
        // Refused by the quota (capacity returns after the deadline): the caller is told
        // so and when to retry, whatever the plugin made of the refusal.
        if let Some(denied) = denied {
            return RunError::Busy(crate::services::admission::Busy {
                instance: instance.to_string(),
                reason: denied.message,
                retry_after_secs: denied.retry_after_secs,
            });
        }
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
    let runtime = tokio::runtime::Handle::current();
    let (p, id, s) = (plugin.clone(), instance.clone(), services.clone());
    // Cancelled when this future ends or is dropped (the caller went away, or the deadline
    // passed): the plugin's quota waits and sleeps then end at once.
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let what = format!("task `{task}`");
    let shared = Call::new(format!("task {task}"), deadline);
    let call = move || {
        let host = host(&p, &id, &config, s, runtime, cancel, &shared);
        p.run_task(&task, &config, &host, deadline)
    };
    let result = match run_blocking(&plugin, &instance, &services, &what, deadline, call).await {
        Outcome::Done(result) => result,
        Outcome::Crashed(join) => Err(PluginError::internal(format!("the task crashed: {join}"))),
        Outcome::Abandoned => Err(PluginError::new(
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
