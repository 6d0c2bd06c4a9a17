//! An opened host: settings, loaded plugins, instance store, secret key and services, built
//! once per process and shared by the CLI commands and (later) the server.

use crate::ids::InstanceId;
use crate::instances::{ConfigError, Instances};
use crate::loader::{self, LiveRegistry};
use crate::runner::{self, RunError};
use crate::secrets::{SecretError, SecretKey};
use crate::services::{ServiceError, Services};
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use passerelle_plugin_api::{PluginError, TestReport};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Deadline of a capability call.
pub const CALL_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Services(#[from] ServiceError),
    #[error(transparent)]
    Storage(#[from] crate::storage::PgError),
}

pub struct Engine {
    pub settings: Settings,
    pub registry: LiveRegistry,
    pub store: Store,
    /// Embedded files and SQLite, or the PostgreSQL database of a cluster.
    pub backend: crate::storage::Backend,
    pub key: SecretKey,
    pub services: Arc<Services>,
}

impl Engine {
    /// Loads the plugins and opens the data directory.
    pub fn open(settings: Settings) -> Result<Self, OpenError> {
        let registry = loader::load_dirs(
            &settings.plugin_dirs,
            &loader::LoadOptions {
                policy: Some(settings.policy.clone()),
                cache_dir: Some(settings.plugin_cache()),
                isolation: settings.isolation.clone(),
            },
        );
        let backend =
            crate::storage::Backend::open(settings.database.as_ref(), &settings.data_dir)?;
        let store = Store::open_on(&settings.data_dir, &backend)?;
        let key = SecretKey::load_or_create(&settings.key_file)?;
        let mut services = Services::open_on(&settings.data_dir, settings.limits, &backend)?;
        if let Some(pg) = backend.pg() {
            // Events and webhooks are shared by the nodes of the cluster.
            services.events = crate::events::Outbox::postgres(pg.clone());
        }
        // OAuth2 tokens are shared with the other processes of the data directory, sealed.
        services.tokens = crate::services::oauth2::TokenCache::shared(key.clone());
        let services = Arc::new(services);
        Ok(Engine {
            settings,
            registry: LiveRegistry::new(registry),
            store,
            backend,
            key,
            services,
        })
    }

    pub fn instances(&self) -> Instances<'_> {
        Instances {
            store: &self.store,
            key: &self.key,
            registry: self.registry.load(),
        }
    }

    /// Runs an instance's test routine with the saved values, overlaid with `overrides`
    /// (unsaved values, not written), and records the result when nothing was overridden.
    pub async fn test(
        &self,
        id: &InstanceId,
        overrides: &Map<String, Value>,
    ) -> Result<TestReport, ConfigError> {
        let instances = self.instances();
        let record = self.store.get(id)?;
        let plugin = instances.plugin(&record.plugin)?.clone();
        instances.register_secrets(&record);
        if !overrides.is_empty() {
            let saved = instances.effective_config(&plugin, &record)?;
            check_secrets_stay_home(&plugin, &record, &saved, overrides)?;
        }
        let config = instances.config_with_overrides(&plugin, &record, overrides)?;
        let errors = match &config {
            Value::Object(map) => plugin.schema.validate_whole(map),
            _ => Vec::new(),
        };
        let report = if errors.is_empty() {
            runner::test(
                plugin,
                id.clone(),
                config,
                self.services.clone(),
                self.settings.test_deadline,
            )
            .await
        } else {
            let detail = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            TestReport::failed("check configuration", detail)
        };
        if overrides.is_empty() {
            let json = serde_json::to_value(&report).unwrap_or(Value::Null);
            let now = u64::try_from(crate::services::state::now_ms()).unwrap_or(0);
            if let Err(e) = self.services.state.record_test(id.as_str(), now, &json) {
                tracing::warn!(instance = %id, error = %e, "cannot record the test result");
            }
            if report.status == passerelle_plugin_api::Status::Failed {
                crate::events::emit_host_event(
                    &self.services.events,
                    id.as_str(),
                    passerelle_plugin_api::events::types::INSTANCE_TEST_FAILED,
                    &passerelle_plugin_api::events::InstanceTestFailed {
                        summary: report.summary.clone(),
                        failed_steps: report
                            .steps
                            .iter()
                            .filter(|s| s.status == passerelle_plugin_api::Status::Failed)
                            .map(|s| s.name.clone())
                            .collect(),
                    },
                );
            }
        }
        Ok(report)
    }

    /// Calls an operation on a given instance, or on the one enabled instance serving it, on
    /// behalf of `caller` (`token:erp`, `cli:alice`…, for the per-caller admission bound).
    ///
    /// The call is admitted first (see [`crate::services::admission`]): it waits without a
    /// thread while the instance's running calls are at their bound, and is refused with
    /// [`RunError::Busy`] when too many already wait. The deadline covers the wait too.
    pub async fn invoke(
        &self,
        operation: &str,
        input: Value,
        instance: Option<&InstanceId>,
        caller: &str,
    ) -> Result<Value, RunError> {
        self.invoke_within(operation, input, instance, caller, CALL_DEADLINE)
            .await
    }

    /// [`Engine::invoke`] for a caller that waits at most `deadline` (at most
    /// [`CALL_DEADLINE`]): a request whose provider quota frees up later is refused at once
    /// with [`RunError::Busy`] saying when to retry, instead of answering after the caller
    /// gave up.
    pub async fn invoke_within(
        &self,
        operation: &str,
        input: Value,
        instance: Option<&InstanceId>,
        caller: &str,
        deadline: Duration,
    ) -> Result<Value, RunError> {
        let deadline = deadline.min(CALL_DEADLINE);
        let instances = self.instances();
        let record = match instance {
            Some(id) => self.store.get(id).map_err(ConfigError::from)?,
            None => self.pick_instance(operation)?,
        };
        let plugin = instances.plugin(&record.plugin)?.clone();
        if !plugin.manifest.capabilities.iter().any(|c| c == operation) {
            return Err(RunError::Plugin(PluginError::new(
                passerelle_plugin_api::ErrorKind::Unsupported,
                format!(
                    "instance `{}` (plugin `{}`) does not serve {operation}; it serves: {}",
                    record.id,
                    plugin.id(),
                    plugin.manifest.capabilities.join(", ")
                ),
            )));
        }
        if !record.enabled {
            return Err(RunError::Disabled(record.id.to_string()));
        }
        // Before any quota is taken or any plugin code runs.
        crate::operations::check_input(operation, &input).map_err(RunError::Plugin)?;
        instances.register_secrets(&record);
        let started = tokio::time::Instant::now();
        let result = async {
            let config = instances.effective_config(&plugin, &record)?;
            let ticket = tokio::time::timeout(
                deadline,
                self.services
                    .admission
                    .admit(record.id.as_str(), caller, plugin.quotas(&config)),
            )
            .await
            .map_err(|_| RunError::WaitedTooLong {
                instance: record.id.to_string(),
                secs: deadline.as_secs(),
            })?
            .map_err(RunError::Busy)?;
            crate::metrics::admission_wait(record.id.as_str(), started.elapsed());
            let result = runner::invoke(
                plugin,
                record.id.clone(),
                operation.to_owned(),
                input,
                config,
                self.services.clone(),
                deadline.saturating_sub(started.elapsed()),
            )
            .await;
            drop(ticket);
            result
        }
        .await;
        crate::metrics::capability_call(
            record.id.as_str(),
            operation,
            crate::metrics::CallOutcome::of(&result),
            started.elapsed(),
        );
        use passerelle_plugin_api::{capabilities::CalendarSync, Operation as _};
        if let (Err(e), true) = (&result, operation == CalendarSync::NAME) {
            crate::events::emit_host_event(
                &self.services.events,
                record.id.as_str(),
                passerelle_plugin_api::events::types::CALENDAR_SYNC_FAILED,
                &passerelle_plugin_api::events::CalendarSyncFailed {
                    error_kind: e
                        .kind()
                        .and_then(|k| serde_json::to_value(k).ok())
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_else(|| "internal".to_owned()),
                    message: crate::redact::redact(&e.to_string()),
                },
            );
        }
        result
    }

    /// The fields a test may change, and the audit's words for a test run.
    pub fn describe_test(overrides: &Map<String, Value>) -> String {
        if overrides.is_empty() {
            "saved values".to_owned()
        } else {
            let names: Vec<&str> = overrides.keys().map(String::as_str).collect();
            format!("unsaved values of: {}", names.join(", "))
        }
    }

    fn pick_instance(&self, operation: &str) -> Result<crate::store::InstanceRecord, RunError> {
        let serving: Vec<_> = self
            .store
            .list()
            .map_err(ConfigError::from)?
            .into_iter()
            .filter(|r| r.enabled)
            .filter(|r| {
                self.registry
                    .get(&r.plugin)
                    .is_some_and(|p| p.manifest.capabilities.iter().any(|c| c == operation))
            })
            .collect();
        match serving.len() {
            0 => Err(RunError::NoProvider(operation.to_owned())),
            1 => Ok(serving
                .into_iter()
                .next()
                .ok_or_else(|| RunError::NoProvider(operation.to_owned()))?),
            _ => Err(RunError::Ambiguous {
                operation: operation.to_owned(),
                instances: serving.iter().map(|r| r.id.to_string()).collect(),
            }),
        }
    }
}

/// A test with an unsaved endpoint (URL, host) must not send the saved secrets there: whoever
/// can run a test could otherwise collect them on a server of their own. Such a test must
/// carry every secret it will use, re-entered.
fn check_secrets_stay_home(
    plugin: &crate::plugin::LoadedPlugin,
    record: &crate::store::InstanceRecord,
    saved: &Value,
    overrides: &Map<String, Value>,
) -> Result<(), ConfigError> {
    let moved: Vec<&str> = overrides
        .iter()
        .filter(|(k, v)| plugin.schema.is_endpoint(k) && saved.get(k.as_str()) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let missing: Vec<&str> = record
        .secrets
        .keys()
        .map(String::as_str)
        .filter(|s| !overrides.contains_key(*s))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Refused(format!(
        "this test changes {} without saving it, so it would send the saved secret{} {} to an address nobody saved; re-enter {} for this test, or save the new address first",
        moved.join(", "),
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        if missing.len() > 1 { "them" } else { "it" }
    )))
}
