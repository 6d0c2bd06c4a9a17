//! What the host offers and runs, listed once for every surface: the operations the loaded
//! plugins serve (with the instances able to serve them) and the scheduled tasks of every
//! instance with their timing and last run. The command line and the HTTP API only present
//! these lists, so they cannot disagree about what exists.

use crate::engine::Engine;
use crate::ids::InstanceId;
use crate::instances::ConfigError;
use crate::services::state::{StateError, TaskRun};
use std::time::Duration;

/// An operation served by the loaded plugins.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Capability {
    /// E.g. `company.lookup`.
    pub operation: String,
    /// Ids of the loaded plugins serving it.
    pub plugins: Vec<String>,
    /// Instances of those plugins, enabled or not.
    pub instances: Vec<CapabilityInstance>,
}

/// An instance able to serve an operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CapabilityInstance {
    pub id: InstanceId,
    pub plugin: String,
    pub enabled: bool,
}

/// A task a plugin declares, for one instance of that plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledTask {
    pub instance: InstanceId,
    pub task: String,
    pub description: String,
    /// Tasks run only for enabled instances.
    pub enabled: bool,
    pub interval: Duration,
    pub start_delay: Duration,
    pub last_run: Option<TaskRun>,
}

/// A list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read the last runs of the scheduled tasks: {0}")]
    State(#[from] StateError),
}

impl Engine {
    /// Every operation the loaded plugins serve, sorted, with its plugins and instances.
    pub fn capabilities(&self) -> Result<Vec<Capability>, ConfigError> {
        let records = self.store.list()?;
        let registry = self.registry.load();
        let mut operations: Vec<String> = registry
            .plugins
            .iter()
            .flat_map(|p| p.manifest.capabilities.iter().cloned())
            .collect();
        operations.sort();
        operations.dedup();
        Ok(operations
            .into_iter()
            .map(|operation| {
                let plugins: Vec<String> = registry
                    .serving(&operation)
                    .map(|p| p.id().to_owned())
                    .collect();
                let instances = records
                    .iter()
                    .filter(|r| plugins.contains(&r.plugin))
                    .map(|r| CapabilityInstance {
                        id: r.id.clone(),
                        plugin: r.plugin.clone(),
                        enabled: r.enabled,
                    })
                    .collect();
                Capability {
                    operation,
                    plugins,
                    instances,
                }
            })
            .collect())
    }

    /// The scheduled tasks of every instance whose plugin is loaded, in instance order, with
    /// the timing their configuration gives (the defaults when it is incomplete).
    pub fn scheduled_tasks(&self) -> Result<Vec<ScheduledTask>, CatalogError> {
        let registry = self.registry.load();
        let mut rows = Vec::new();
        for record in self.store.list().map_err(ConfigError::from)? {
            let Some(plugin) = registry.get(&record.plugin) else {
                continue;
            };
            let config = self.instances().effective_config(plugin, &record).ok();
            for task in &plugin.manifest.tasks {
                let (interval, start_delay) = config
                    .as_ref()
                    .map(|c| {
                        crate::scheduler::timing(c, &task.interval_field, &task.start_delay_field)
                    })
                    .unwrap_or_default();
                let last_run = self
                    .services
                    .state
                    .last_task_run(record.id.as_str(), &task.name)?;
                rows.push(ScheduledTask {
                    instance: record.id.clone(),
                    task: task.name.clone(),
                    description: task.description.clone(),
                    enabled: record.enabled,
                    interval,
                    start_delay,
                    last_run,
                });
            }
        }
        Ok(rows)
    }
}
