//! Isolation modes: where a plugin's native code runs.
//!
//! A plugin runs with the host's rights, so the host must survive it misbehaving. Two modes:
//!
//! - **in-process** (the default): the library is mapped into the host. Panics are caught by
//!   `export_plugin!`; a call past its deadline is abandoned (its thread cannot be stopped)
//!   and its instance is marked *degraded* until the thread ends ([`DegradedBook`]). A
//!   segfault, an abort or an exhausted memory takes the host down.
//! - **process**: the host starts workers — the same `passerelle` binary in its hidden
//!   `worker` mode ([`worker`]) — that map the verified library and serve the root module's
//!   calls over their stdin/stdout ([`protocol`]). The plugin's host callbacks travel back
//!   to the host and are answered by the real services, so quotas, trust store, state and
//!   redaction apply unchanged. A worker that crashes, passes its deadline or its memory
//!   limit is killed; the call fails with the reason and the next call starts a fresh
//!   worker ([`child`]). The same plugin file works in both modes.
//!
//! The mode is chosen per plugin in `host.toml` (`[plugins.isolation]`); see
//! [`IsolationSettings`]. A per-instance choice can be added by keying the worker pools of
//! [`child::ProcessPlugin`] by instance and asking [`IsolationSettings::mode_of`] with the
//! instance id.

pub mod child;
pub mod protocol;
pub mod worker;

pub use child::ProcessPlugin;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString};
use passerelle_plugin_api::abi::{HostCallbacks, HostCallbacks_TO, PluginModRef};
use passerelle_plugin_api::PluginError;
use protocol::{Answer, Request};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

/// Where a plugin's code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationMode {
    /// Mapped into the host process.
    #[default]
    InProcess,
    /// In worker processes of its own.
    Process,
}

impl std::fmt::Display for IsolationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IsolationMode::InProcess => "in-process",
            IsolationMode::Process => "process",
        })
    }
}

/// Default address-space limit of a worker process.
pub const DEFAULT_MEMORY_LIMIT_MB: u64 = 1024;

/// Smallest accepted memory limit: below it the worker cannot even map a plugin.
pub const MIN_MEMORY_LIMIT_MB: u64 = 64;

/// How plugins are isolated (from `host.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationSettings {
    /// Mode of plugins not listed in `per_plugin`.
    pub default: IsolationMode,
    /// Mode by plugin id.
    pub per_plugin: BTreeMap<String, IsolationMode>,
    /// Address-space limit of each worker process (unix), in MB.
    pub memory_limit_mb: u64,
    /// The executable started as worker; `None`: this executable. Set by embedders whose
    /// executable is not `passerelle` (tests, benchmarks).
    pub worker_exe: Option<PathBuf>,
}

impl Default for IsolationSettings {
    fn default() -> Self {
        IsolationSettings {
            default: IsolationMode::InProcess,
            per_plugin: BTreeMap::new(),
            memory_limit_mb: DEFAULT_MEMORY_LIMIT_MB,
            worker_exe: None,
        }
    }
}

impl IsolationSettings {
    /// Every plugin in one mode.
    pub fn all(mode: IsolationMode) -> Self {
        IsolationSettings {
            default: mode,
            ..Self::default()
        }
    }

    /// From the `[plugins.isolation]` table: `default` and plugin id → mode.
    pub fn from_table(
        table: &BTreeMap<String, IsolationMode>,
        memory_limit_mb: Option<u64>,
    ) -> Result<Self, String> {
        let mut per_plugin = table.clone();
        let default = per_plugin.remove("default").unwrap_or_default();
        let memory_limit_mb = memory_limit_mb.unwrap_or(DEFAULT_MEMORY_LIMIT_MB);
        if memory_limit_mb < MIN_MEMORY_LIMIT_MB {
            return Err(format!(
                "memory_limit_mb = {memory_limit_mb} is too small for a plugin process; give at least {MIN_MEMORY_LIMIT_MB} (default {DEFAULT_MEMORY_LIMIT_MB})"
            ));
        }
        Ok(IsolationSettings {
            default,
            per_plugin,
            memory_limit_mb,
            worker_exe: None,
        })
    }

    /// The mode of a plugin.
    pub fn mode_of(&self, plugin_id: &str) -> IsolationMode {
        self.per_plugin
            .get(plugin_id)
            .copied()
            .unwrap_or(self.default)
    }

    /// Whether some plugin may run in process mode. Then every library is first opened in
    /// a worker (its id is not known before its manifest is read, and reading the manifest
    /// means running its code); with in-process everywhere, nothing changes.
    pub fn may_use_processes(&self) -> bool {
        self.default == IsolationMode::Process
            || self
                .per_plugin
                .values()
                .any(|m| *m == IsolationMode::Process)
    }

    /// The worker executable.
    pub fn worker_exe(&self) -> Result<PathBuf, String> {
        match &self.worker_exe {
            Some(exe) => Ok(exe.clone()),
            None => std::env::current_exe().map_err(|e| {
                format!("cannot find the passerelle executable to start a plugin process: {e}")
            }),
        }
    }
}

impl From<RResult<RString, RString>> for Answer {
    fn from(r: RResult<RString, RString>) -> Self {
        match r {
            RResult::ROk(s) => Answer::Ok(s.into_string()),
            RResult::RErr(s) => Answer::Err(s.into_string()),
        }
    }
}

impl From<Answer> for RResult<RString, RString> {
    fn from(a: Answer) -> Self {
        match a {
            Answer::Ok(s) => RResult::ROk(RString::from(s)),
            Answer::Err(s) => RResult::RErr(RString::from(s)),
        }
    }
}

/// Runs one call of the root module, in whichever process mapped it: the host (in-process)
/// or a worker (process mode). The answer is the module's, unchanged.
pub(crate) fn call_module<H: HostCallbacks>(
    module: PluginModRef,
    request: &Request,
    host: &H,
) -> Answer {
    let s = RStr::from_str;
    let host = || HostCallbacks_TO::from_ptr(host, TD_Opaque);
    let result = match request {
        Request::Validate { config } => (module.validate())(s(config)),
        Request::Quotas { config } => (module.quotas())(s(config)),
        Request::Test { config } => (module.test())(s(config), host()),
        Request::Invoke {
            operation,
            input,
            config,
        } => (module.invoke())(s(operation), s(input), s(config), host()),
        Request::RunTask { task, config } => (module.run_task())(s(task), s(config), host()),
        Request::Reply { .. } => {
            return Answer::Err(PluginError::internal("a callback reply is not a call").to_json())
        }
    };
    result.into()
}

/// The callbacks of calls that have no host (`validate`, `quotas`): never called by a
/// well-formed plugin, since those entries get no callback object.
pub(crate) struct NoHost;

impl HostCallbacks for NoHost {
    fn call(&self, name: RStr<'_>, _input: RStr<'_>) -> RResult<RString, RString> {
        RResult::RErr(RString::from(
            PluginError::internal(format!("no host service {name} outside a call")).to_json(),
        ))
    }
}

/// Why an instance is degraded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Degraded {
    /// When the first still-running abandoned call was abandoned (ms since the epoch).
    pub since_ms: i64,
    /// Abandoned calls whose threads are still running.
    pub abandoned_calls: usize,
    /// What was abandoned, e.g. "test did not finish within 30 s".
    pub reason: String,
}

/// Instances with in-process calls that passed their deadline and still run on their
/// abandoned threads. In-memory: such threads do not survive the host process.
#[derive(Debug, Default)]
pub struct DegradedBook {
    inner: Mutex<HashMap<String, Degraded>>,
}

impl DegradedBook {
    /// Records an abandoned call of `instance`.
    pub fn mark(&self, instance: &str, reason: String) {
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        let entry = map.entry(instance.to_owned()).or_insert_with(|| Degraded {
            since_ms: crate::services::state::now_ms(),
            abandoned_calls: 0,
            reason: String::new(),
        });
        entry.abandoned_calls += 1;
        entry.reason = reason;
    }

    /// One abandoned call of `instance` finished; the instance is healthy again after the last.
    pub fn release(&self, instance: &str) {
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        if let Some(entry) = map.get_mut(instance) {
            entry.abandoned_calls = entry.abandoned_calls.saturating_sub(1);
            if entry.abandoned_calls == 0 {
                map.remove(instance);
            }
        }
    }

    pub fn get(&self, instance: &str) -> Option<Degraded> {
        self.inner.lock().ok()?.get(instance).cloned()
    }

    /// Every degraded instance, by id.
    pub fn all(&self) -> BTreeMap<String, Degraded> {
        self.inner
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_a_default_and_per_plugin_modes() {
        let table: BTreeMap<String, IsolationMode> =
            toml::from_str("default = \"process\"\nsirene = \"in-process\"").unwrap();
        let s = IsolationSettings::from_table(&table, None).unwrap();
        assert_eq!(s.mode_of("sirene"), IsolationMode::InProcess);
        assert_eq!(s.mode_of("other"), IsolationMode::Process);
        assert_eq!(s.memory_limit_mb, DEFAULT_MEMORY_LIMIT_MB);
        assert!(s.may_use_processes());
        let none = IsolationSettings::from_table(&BTreeMap::new(), Some(128)).unwrap();
        assert_eq!(none.mode_of("x"), IsolationMode::InProcess);
        assert!(!none.may_use_processes());
        let err = IsolationSettings::from_table(&BTreeMap::new(), Some(8)).unwrap_err();
        assert!(err.contains("memory_limit_mb = 8"), "{err}");
        assert!(toml::from_str::<BTreeMap<String, IsolationMode>>("x = \"proces\"").is_err());
    }

    #[test]
    fn an_instance_is_degraded_until_its_last_abandoned_call_ends() {
        let book = DegradedBook::default();
        book.mark("a", "test did not finish".into());
        book.mark("a", "invoke did not finish".into());
        assert_eq!(book.get("a").unwrap().abandoned_calls, 2);
        book.release("a");
        assert!(book.get("a").is_some());
        book.release("a");
        assert!(book.get("a").is_none());
        assert!(book.all().is_empty());
    }
}
