//! Where the host finds its plugins, data and key, resolved once from flags, environment and
//! defaults.

use crate::loader::PluginDir;
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
}

impl Settings {
    /// `plugin_dirs` empty means the defaults: `passerelle_*` libraries beside the executable
    /// (where `cargo build` puts them), then `plugins/` beside the executable, then
    /// `./plugins`.
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
        }
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
    dirs.push(PluginDir {
        path: PathBuf::from("plugins"),
        only_passerelle_files: false,
    });
    dirs
}
