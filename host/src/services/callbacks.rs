//! The host side of the callback object: what a plugin's `host.call(name, json)` reaches.
//!
//! One [`InstanceHost`] is built per plugin call and carries the instance it acts for, so a
//! plugin can only touch its own state and its requests are logged under its name. Plugin
//! calls run on blocking threads; network and sleeps go back to the async runtime with
//! `Handle::block_on`. Every callback runs inside `catch_unwind`: a bug here must not unwind
//! into plugin code.

use super::Services;
use crate::redact;
use abi_stable::std_types::{RResult, RStr, RString};
use passerelle_plugin_api::abi::HostCallbacks;
use passerelle_plugin_api::host::wire;
use passerelle_plugin_api::{ErrorKind, LogLevel, PluginError, PLUGIN_API_VERSION};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Longest sleep a plugin may ask for in one call.
const MAX_SLEEP: Duration = Duration::from_secs(600);

/// The callback object handed to a plugin for one call on behalf of one instance.
/// Cloned (cheaply) when the plugin runs in a worker process: each of its callbacks is
/// answered on a thread of its own.
#[derive(Clone)]
pub struct InstanceHost {
    pub instance: String,
    pub plugin: String,
    pub services: Arc<Services>,
    pub runtime: tokio::runtime::Handle,
    /// The instance's quotas for this configuration, enforced on every request.
    pub quotas: passerelle_plugin_api::Quotas,
    /// Set when the call's caller went away or its deadline passed: waits end at once.
    pub cancel: tokio_util::sync::CancellationToken,
    /// When the call ends: a request whose quota slot frees up later is refused at once.
    pub deadline: Option<tokio::time::Instant>,
    /// What the call does (`company.lookup`, `test`, `task tick`), for the quota wait log.
    pub operation: String,
    /// The quota refusal of this call, if one happened: whatever error the plugin makes of
    /// it, the caller is told `quota_exhausted` and when to retry.
    pub quota_denied: Arc<std::sync::Mutex<Option<super::quota::QuotaDenied>>>,
}

fn cancelled() -> passerelle_plugin_api::HttpError {
    passerelle_plugin_api::HttpError {
        kind: passerelle_plugin_api::HttpErrorKind::Other,
        message: "cancelled: the caller went away or the call's deadline passed while it waited for the provider quota".to_owned(),
    }
}

fn parse<T: DeserializeOwned>(name: &str, input: &str) -> Result<T, PluginError> {
    serde_json::from_str(input).map_err(|e| {
        PluginError::new(
            ErrorKind::InvalidInput,
            format!("host callback {name}: invalid input ({e})"),
        )
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, PluginError> {
    serde_json::to_string(value).map_err(|e| PluginError::internal(e.to_string()))
}

fn state_error(e: super::state::StateError) -> PluginError {
    PluginError::internal(e.to_string())
}

/// A plugin may emit the published event types only: a receiver subscribes to those names.
fn check_event_type(kind: &str) -> Result<(), PluginError> {
    use passerelle_plugin_api::events::EVENT_TYPES;
    if EVENT_TYPES.contains(&kind) {
        return Ok(());
    }
    Err(PluginError::new(
        ErrorKind::InvalidInput,
        format!(
            "events.emit: unknown event type {kind:?}; this host knows: {}",
            EVENT_TYPES.join(", ")
        ),
    ))
}

impl InstanceHost {
    fn dispatch(&self, name: &str, input: &str) -> Result<String, PluginError> {
        match name {
            wire::HTTP_REQUEST => {
                let request: passerelle_plugin_api::HttpRequest = parse(name, input)?;
                let outcome = self.runtime.block_on(async {
                    let acquire = self.services.quotas.acquire_until(
                        &self.services.state,
                        &self.instance,
                        self.quotas,
                        self.deadline,
                        &self.operation,
                    );
                    let permit = tokio::select! {
                        permit = acquire => permit.map_err(|denied| {
                            let error = passerelle_plugin_api::HttpError::from(denied.clone());
                            *self
                                .quota_denied
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(denied);
                            error
                        }),
                        () = self.cancel.cancelled() => Err(cancelled()),
                    };
                    match permit {
                        Ok(_permit) => self.services.http.send(&self.instance, request).await,
                        Err(e) => wire::HttpOutcome::Error(e),
                    }
                });
                encode(&outcome)
            }
            wire::LOG => {
                let log: wire::Log = parse(name, input)?;
                let message = redact::redact(&log.message);
                let (instance, plugin) = (&self.instance, &self.plugin);
                match log.level {
                    LogLevel::Error => tracing::error!(instance, plugin, "{message}"),
                    LogLevel::Warn => tracing::warn!(instance, plugin, "{message}"),
                    LogLevel::Info => tracing::info!(instance, plugin, "{message}"),
                    LogLevel::Debug => tracing::debug!(instance, plugin, "{message}"),
                    LogLevel::Trace => tracing::trace!(instance, plugin, "{message}"),
                }
                encode(&Value::Null)
            }
            wire::CLOCK_NOW => encode(&wire::Now {
                unix_ms: u64::try_from(super::state::now_ms()).unwrap_or(0),
            }),
            wire::CLOCK_SLEEP => {
                let sleep: wire::Sleep = parse(name, input)?;
                let duration = Duration::from_millis(sleep.ms).min(MAX_SLEEP);
                self.runtime.block_on(async {
                    tokio::select! {
                        () = tokio::time::sleep(duration) => {}
                        () = self.cancel.cancelled() => {}
                    }
                });
                encode(&Value::Null)
            }
            wire::STATE_GET => {
                let k: wire::StateKey = parse(name, input)?;
                encode(&self.services.state.get(&self.instance, &k.key).map_err(state_error)?)
            }
            wire::STATE_PUT => {
                let p: wire::StatePut = parse(name, input)?;
                self.services
                    .state
                    .put(&self.instance, &p.key, &p.value)
                    .map_err(state_error)?;
                encode(&Value::Null)
            }
            wire::STATE_DELETE => {
                let k: wire::StateKey = parse(name, input)?;
                self.services
                    .state
                    .delete(&self.instance, &k.key)
                    .map_err(state_error)?;
                encode(&Value::Null)
            }
            wire::STATE_LIST => {
                let l: wire::StateList = parse(name, input)?;
                encode(&self.services.state.list(&self.instance, &l.prefix).map_err(state_error)?)
            }
            wire::OAUTH2_TOKEN => {
                let request: wire::OAuth2Request = parse(name, input)?;
                let now = u64::try_from(super::state::now_ms()).unwrap_or(0);
                let token = self.runtime.block_on(self.services.tokens.token(
                    &self.services.state,
                    &self.services.http,
                    &self.instance,
                    &request,
                    now,
                ))?;
                encode(&token)
            }
            wire::EVENTS_EMIT => {
                let e: passerelle_plugin_api::events::EmitEvent = parse(name, input)?;
                check_event_type(&e.kind)?;
                let emitted = self
                    .services
                    .events
                    .emit(&self.instance, &e.kind, &e.data, e.key.as_deref())
                    .map_err(|e| PluginError::internal(e.to_string()))?;
                encode(&emitted)
            }
            other => Err(PluginError::new(
                ErrorKind::Unsupported,
                format!("this host (plugin API {PLUGIN_API_VERSION}) has no service {other:?}; the plugin needs a newer host"),
            )),
        }
    }
}

impl HostCallbacks for InstanceHost {
    fn call(&self, name: RStr<'_>, input: RStr<'_>) -> RResult<RString, RString> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.dispatch(name.as_str(), input.as_str())
        }));
        match result {
            Ok(Ok(json)) => RResult::ROk(RString::from(json)),
            Ok(Err(e)) => RResult::RErr(RString::from(e.to_json())),
            Err(_) => RResult::RErr(RString::from(
                PluginError::internal(format!("the host failed while serving {name}")).to_json(),
            )),
        }
    }
}

/// A callback object that refuses every service: for calls that must not do I/O (reading a
/// configuration's environment).
pub struct NoServices;

impl HostCallbacks for NoServices {
    fn call(&self, name: RStr<'_>, _input: RStr<'_>) -> RResult<RString, RString> {
        RResult::RErr(RString::from(
            PluginError::new(
                ErrorKind::Unsupported,
                format!("host service {name} is not available here"),
            )
            .to_json(),
        ))
    }
}
