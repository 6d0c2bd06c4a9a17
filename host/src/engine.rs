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
}

pub struct Engine {
    pub settings: Settings,
    pub registry: LiveRegistry,
    pub store: Store,
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
        let store = Store::open(&settings.data_dir)?;
        let key = SecretKey::load_or_create(&settings.key_file)?;
        let services = Arc::new(Services::open(&settings.data_dir)?);
        Ok(Engine {
            settings,
            registry: LiveRegistry::new(registry),
            store,
            key,
            services,
        })
    }

    pub fn instances(&self) -> Instances<'_> {
        Instances {
            store: &self.store,
            key: &self.key,
            registry: &self.registry,
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
        }
        Ok(report)
    }

    /// Calls an operation on a given instance, or on the one enabled instance serving it.
    pub async fn invoke(
        &self,
        operation: &str,
        input: Value,
        instance: Option<&InstanceId>,
    ) -> Result<Value, RunError> {
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
        instances.register_secrets(&record);
        let config = instances.effective_config(&plugin, &record)?;
        runner::invoke(
            plugin,
            record.id.clone(),
            operation.to_owned(),
            input,
            config,
            self.services.clone(),
            CALL_DEADLINE,
        )
        .await
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
