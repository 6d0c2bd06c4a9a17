//! Scheduled tasks of plugins (signature polling, deposit follow-up…).
//!
//! A plugin declares its tasks in its manifest with the config fields holding their interval
//! and start delay. For every enabled instance, the first run comes `start delay` seconds
//! after the scheduler starts, then one every `interval` seconds (counted from the start of
//! the previous run; a run that overruns delays the next, never overlaps it). A config change
//! reschedules from the last run. A lease in the state database keeps two runs of one task
//! apart, across processes too (`passerelle tasks run` while a server runs). A failing or
//! panicking run is logged and recorded, and the schedule goes on.
//!
//! On PostgreSQL every node of a cluster runs this scheduler, and each due time runs once:
//! a node takes the task's lease only if no run of it started, on any node, within the last
//! interval (checked and taken in one transaction), and otherwise follows the schedule of the
//! node that ran it. Leases there are short and renewed while the task runs, so a node that
//! dies mid-run loses its lease within [`CLUSTER_LEASE`], and the others, which look again
//! every `BUSY_RETRY` while the task is held, take the unfinished due time over.

use crate::engine::Engine;
use crate::ids::InstanceId;
use crate::services::state::{now_ms, LeaseOutcome, TaskRun};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the scheduler looks at instances and due tasks.
const TICK: Duration = Duration::from_millis(250);
/// Longest run of a task before it is abandoned.
pub const TASK_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Length of a task lease on PostgreSQL, renewed every third of it while the task runs.
pub const CLUSTER_LEASE: Duration = Duration::from_secs(30);
/// How soon a node looks again at a due task another node holds (to take it over if that
/// node dies).
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// Why a task run did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Another process or node holds the task's lease.
    Running,
    /// A run of this due time started at this time (ms), on some node.
    RanAt(i64),
}

/// The lease holder of the current thread: process id first (the embedded backend takes over
/// leases of dead processes by it), then a key unique to this process, since processes of
/// different machines may share an id.
fn lease_holder() -> String {
    static NODE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    format!(
        "{}:{:?}:{:016x}",
        std::process::id(),
        std::thread::current().id(),
        NODE.get_or_init(rand::random::<u64>)
    )
}

/// Interval and start delay of a task, from an instance's configuration.
pub fn timing(config: &Value, interval_field: &str, delay_field: &str) -> (Duration, Duration) {
    let secs =
        |field: &str, default: u64| config.get(field).and_then(Value::as_u64).unwrap_or(default);
    (
        Duration::from_secs(secs(interval_field, 3600).max(1)),
        Duration::from_secs(secs(delay_field, 0)),
    )
}

#[derive(Debug)]
struct Slot {
    revision: u64,
    next: Instant,
    last_start: Option<Instant>,
    running: bool,
}

/// Runs due tasks until the process ends.
pub fn spawn(engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut slots: HashMap<(String, String), Slot> = HashMap::new();
        let (done_tx, mut done_rx) =
            tokio::sync::mpsc::unbounded_channel::<((String, String), Option<Instant>)>();
        let clustered = engine.services.state.is_clustered();
        let mut ticker = tokio::time::interval(TICK);
        loop {
            ticker.tick().await;
            while let Ok((key, next)) = done_rx.try_recv() {
                if let Some(slot) = slots.get_mut(&key) {
                    slot.running = false;
                    if let Some(next) = next {
                        slot.next = next;
                    }
                }
            }
            let records = match engine.store.list() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler cannot read the instances");
                    continue;
                }
            };
            let mut live = Vec::new();
            for record in records.iter().filter(|r| r.enabled) {
                let Some(plugin) = engine.registry.get(&record.plugin) else {
                    continue;
                };
                if plugin.manifest.tasks.is_empty() {
                    continue;
                }
                let instances = engine.instances();
                let config = match instances.effective_config(&plugin, record) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(instance = %record.id, error = %e, "scheduler cannot read the configuration");
                        continue;
                    }
                };
                for task in &plugin.manifest.tasks {
                    let key = (record.id.to_string(), task.name.clone());
                    live.push(key.clone());
                    let (interval, delay) =
                        timing(&config, &task.interval_field, &task.start_delay_field);
                    let slot = slots.entry(key.clone()).or_insert_with(|| Slot {
                        revision: record.revision,
                        next: started + delay,
                        last_start: None,
                        running: false,
                    });
                    if slot.revision != record.revision {
                        slot.revision = record.revision;
                        slot.next = match slot.last_start {
                            Some(last) => last + interval,
                            None => started + delay,
                        };
                        tracing::info!(instance = %record.id, task = %task.name, "configuration changed; task rescheduled");
                    }
                    let now = Instant::now();
                    if slot.running || now < slot.next {
                        continue;
                    }
                    slot.running = true;
                    slot.last_start = Some(now);
                    slot.next = now + interval;
                    let next_ms =
                        now_ms() + i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
                    let engine = engine.clone();
                    let done = done_tx.clone();
                    let id = record.id.clone();
                    let task_name = task.name.clone();
                    tokio::spawn(async move {
                        let next = if clustered {
                            let interval_ms =
                                i64::try_from(interval.as_millis()).unwrap_or(i64::MAX / 2);
                            // Room for the ticks and clocks of the nodes.
                            let slack = (interval_ms / 4).min(1_000);
                            let ran_since = now_ms() - interval_ms + slack;
                            match engine
                                .run_task_leased(&id, &task_name, Some(next_ms), Some(ran_since))
                                .await
                            {
                                Ok(Err(Skipped::Running)) => Some(Instant::now() + BUSY_RETRY),
                                Ok(Err(Skipped::RanAt(started))) => {
                                    tracing::debug!(instance = %id, task = %task_name, "this due time ran on another node");
                                    let left = started + interval_ms - now_ms();
                                    Some(
                                        Instant::now()
                                            + Duration::from_millis(
                                                u64::try_from(left).unwrap_or(0),
                                            ),
                                    )
                                }
                                _ => None,
                            }
                        } else {
                            let _ = engine.run_task(&id, &task_name, Some(next_ms)).await;
                            None
                        };
                        let _ = done.send(((id.to_string(), task_name), next));
                    });
                }
            }
            slots.retain(|k, s| s.running || live.contains(k));
        }
    })
}

impl Engine {
    /// Runs one task of an instance now, unless a run of it is already in progress; records
    /// the outcome. `next_ms` is when the scheduler plans the following run.
    pub async fn run_task(
        &self,
        id: &InstanceId,
        task: &str,
        next_ms: Option<i64>,
    ) -> Result<TaskRun, crate::runner::RunError> {
        use passerelle_plugin_api::{ErrorKind, PluginError};
        match self.run_task_leased(id, task, next_ms, None).await? {
            Ok(run) => Ok(run),
            Err(_) => Err(crate::runner::RunError::Plugin(PluginError::new(
                ErrorKind::Unavailable,
                format!("task `{task}` of `{id}` is already running; wait for it to finish"),
            ))),
        }
    }

    /// [`Engine::run_task`], saying why it did not start: the lease is held, or (with
    /// `ran_since`, for one due time of the schedule) a run started after `ran_since` (ms).
    pub async fn run_task_leased(
        &self,
        id: &InstanceId,
        task: &str,
        next_ms: Option<i64>,
        ran_since: Option<i64>,
    ) -> Result<Result<TaskRun, Skipped>, crate::runner::RunError> {
        use crate::instances::ConfigError;
        use crate::runner::RunError;
        use passerelle_plugin_api::{ErrorKind, PluginError};
        let record = self.store.get(id).map_err(ConfigError::from)?;
        let instances = self.instances();
        let plugin = instances.plugin(&record.plugin)?.clone();
        if !plugin.manifest.tasks.iter().any(|t| t.name == task) {
            let known: Vec<_> = plugin
                .manifest
                .tasks
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            return Err(RunError::Plugin(PluginError::new(
                ErrorKind::NotFound,
                format!(
                    "plugin `{}` has no task `{task}`; its tasks: {}",
                    plugin.id(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            )));
        }
        if !record.enabled {
            return Err(RunError::Disabled(id.to_string()));
        }
        let holder = lease_holder();
        let state = &self.services.state;
        let lease = if state.is_clustered() {
            CLUSTER_LEASE
        } else {
            TASK_DEADLINE
        };
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        match state.take_task(id.as_str(), task, &holder, now_ms() + lease_ms, ran_since) {
            Ok(LeaseOutcome::Taken) => {}
            Ok(LeaseOutcome::Held) => return Ok(Err(Skipped::Running)),
            Ok(LeaseOutcome::RanAt(started)) => return Ok(Err(Skipped::RanAt(started))),
            Err(e) => {
                tracing::warn!(instance = %id, task, error = %e, "cannot take the task's lease");
                return Ok(Err(Skipped::Running));
            }
        }
        instances.register_secrets(&record);
        let config = instances.effective_config(&plugin, &record)?;
        let started_ms = now_ms();
        let started = Instant::now();
        let running = crate::runner::run_task(
            plugin,
            id.clone(),
            task.to_owned(),
            config,
            self.services.clone(),
            TASK_DEADLINE,
        );
        let result = if state.is_clustered() {
            // Renew the short lease while the task runs; a node that dies stops renewing.
            tokio::pin!(running);
            let mut renew = tokio::time::interval(lease / 3);
            renew.tick().await;
            loop {
                tokio::select! {
                    result = &mut running => break result,
                    _ = renew.tick() => {
                        match state.renew_lease(id.as_str(), task, &holder, now_ms() + lease_ms) {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!(instance = %id, task, "lost the task's lease (this node was too slow to renew it); another node may run the task too"),
                            Err(e) => tracing::warn!(instance = %id, task, error = %e, "cannot renew the task's lease"),
                        }
                    }
                }
            }
        } else {
            running.await
        };
        let run = TaskRun {
            instance: id.to_string(),
            task: task.to_owned(),
            started_ms,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            ok: result.is_ok(),
            summary: match &result {
                Ok(outcome) => outcome.summary.clone(),
                Err(e) => e.to_string(),
            },
            next_ms,
        };
        crate::metrics::task_run(id.as_str(), task, run.ok, started.elapsed());
        if run.ok {
            tracing::info!(instance = %id, task, ms = run.duration_ms, summary = %run.summary, "task run");
        } else {
            tracing::warn!(instance = %id, task, ms = run.duration_ms, error = %run.summary, "task run failed");
        }
        // Recorded before the lease is released: a node that finds the lease free then sees
        // this run, and does not run the same due time again.
        if let Err(e) = state.record_task_run(&run) {
            tracing::warn!(instance = %id, task, error = %e, "cannot record the task run");
        }
        let _ = state.release_lease(id.as_str(), task, &holder);
        result.map(|_| Ok(run))
    }
}
