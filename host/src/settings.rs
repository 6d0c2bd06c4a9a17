//! Where the host finds its plugins, data and key, resolved once from flags, environment and
//! defaults.

use crate::isolation::{IsolationMode, IsolationSettings};
use crate::loader::PluginDir;
use crate::services::admission::Limits;
use crate::signing::{parse_public_key, Policy, PolicyMode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default deadline of a test routine.
pub const DEFAULT_TEST_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub plugin_dirs: Vec<PluginDir>,
    pub key_file: PathBuf,
    pub test_deadline: Duration,
    /// Which plugin libraries may be mapped.
    pub policy: Policy,
    /// Where each plugin's code runs.
    pub isolation: IsolationSettings,
    /// Bounds on capability calls running and waiting (`[limits]`).
    pub limits: Limits,
    /// PostgreSQL instead of the embedded storage (`--database-url`, `PASSERELLE_DATABASE_URL`).
    pub database: Option<crate::storage::DatabaseUrl>,
}

/// `<data-dir>/host.toml`: the host's own configuration (instances live elsewhere).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    #[serde(default)]
    pub plugins: PluginsSection,
    /// `[limits]`: capability calls running and waiting (see `services::admission`).
    #[serde(default)]
    pub limits: Limits,
    /// `[server]`: how browsers reach `passerelle serve` (`secure_cookies`, `trust_proxy`).
    #[serde(default)]
    pub server: crate::server::WebOptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// `strict` (the default of every command) or `allow-unsigned` (development).
    pub policy: Option<PolicyMode>,
    /// Publisher keys (`ed25519:<base64>`) whose signatures are trusted.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Plugin ids allowed to load unsigned in allow-unsigned mode (`*`: all).
    pub allow_unsigned: Option<Vec<String>>,
    /// `[plugins.isolation]`: `default` and plugin id → `in-process` or `process`.
    #[serde(default)]
    pub isolation: BTreeMap<String, IsolationMode>,
    /// Address-space limit of each plugin process, in MB (default 1024).
    pub memory_limit_mb: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: {reason}; fix the file (see README, \"Plugin trust\")")]
    HostFile { path: PathBuf, reason: String },
}

impl HostFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("host.toml")
    }

    pub fn load(data_dir: &Path) -> Result<Self, SettingsError> {
        let path = Self::path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| SettingsError::HostFile {
                path,
                reason: e.to_string().trim().replace('\n', " "),
            }),
            Err(_) => Ok(HostFile::default()),
        }
    }

    /// The admission bounds of `[limits]`, checked.
    pub fn limits(&self, data_dir: &Path) -> Result<Limits, SettingsError> {
        self.limits
            .check()
            .map_err(|reason| SettingsError::HostFile {
                path: Self::path(data_dir),
                reason,
            })?;
        Ok(self.limits)
    }

    /// Where each plugin runs, from `[plugins.isolation]` and `memory_limit_mb`.
    pub fn isolation(&self, data_dir: &Path) -> Result<IsolationSettings, SettingsError> {
        IsolationSettings::from_table(&self.plugins.isolation, self.plugins.memory_limit_mb)
            .map_err(|reason| SettingsError::HostFile {
                path: Self::path(data_dir),
                reason,
            })
    }

    /// The trust policy, given the command's default mode and an optional override.
    pub fn policy(
        &self,
        data_dir: &Path,
        default_mode: PolicyMode,
        forced: Option<PolicyMode>,
    ) -> Result<Policy, SettingsError> {
        let mut trusted = Vec::new();
        for key in &self.plugins.trusted_keys {
            trusted.push(parse_public_key(key).map_err(|e| SettingsError::HostFile {
                path: Self::path(data_dir),
                reason: format!("trusted_keys: {e}"),
            })?);
        }
        let mode = forced.or(self.plugins.policy).unwrap_or(default_mode);
        let allow_unsigned = self.plugins.allow_unsigned.clone().unwrap_or_else(|| {
            // Without a list, development mode allows every unsigned plugin (loudly).
            vec!["*".to_owned()]
        });
        Ok(Policy {
            mode,
            trusted,
            allow_unsigned,
        })
    }
}

impl Settings {
    /// `plugin_dirs` empty means the defaults: `passerelle_*` libraries beside the executable
    /// (where `cargo build` puts them), then `plugins/` beside the executable. Nothing
    /// relative to the current directory.
    pub fn new(
        data_dir: PathBuf,
        plugin_dirs: Vec<PathBuf>,
        key_file: Option<PathBuf>,
        test_deadline: Duration,
    ) -> Self {
        let plugin_dirs = if plugin_dirs.is_empty() {
            default_plugin_dirs()
        } else {
            plugin_dirs
                .into_iter()
                .map(|path| PluginDir {
                    path,
                    only_passerelle_files: false,
                })
                .collect()
        };
        let key_file = key_file.unwrap_or_else(|| data_dir.join("keys").join("secret.key"));
        Settings {
            data_dir,
            plugin_dirs,
            key_file,
            test_deadline,
            policy: Policy {
                mode: PolicyMode::Strict,
                trusted: Vec::new(),
                allow_unsigned: Vec::new(),
            },
            isolation: IsolationSettings::default(),
            limits: Limits::default(),
            database: None,
        }
    }

    /// Replaces the admission bounds.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the isolation settings.
    pub fn with_isolation(mut self, isolation: IsolationSettings) -> Self {
        self.isolation = isolation;
        self
    }

    /// Replaces the plugin trust policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Uses PostgreSQL at `url` instead of the embedded storage.
    pub fn with_database(mut self, url: Option<crate::storage::DatabaseUrl>) -> Self {
        self.database = url;
        self
    }

    /// Where verified plugin libraries are copied before they are mapped.
    pub fn plugin_cache(&self) -> PathBuf {
        self.data_dir.join("plugin-cache")
    }
}

fn default_plugin_dirs() -> Vec<PluginDir> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(PluginDir {
            path: exe_dir.clone(),
            only_passerelle_files: true,
        });
        dirs.push(PluginDir {
            path: exe_dir.join("plugins"),
            only_passerelle_files: false,
        });
    }
    // Never `./plugins` of the current directory: whoever can write where a command happens
    // to run would choose the code it runs.
    dirs
}
