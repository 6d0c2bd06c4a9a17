//! Finding and loading plugin libraries.
//!
//! Every file with the platform's library extension in a plugin directory is a candidate. Each
//! is mapped with `lib_header_from_path(..).init_root_module()` — never abi_stable's
//! `load_from_*` helpers, which cache one module per type and would hand back the first
//! plugin for every later path. A candidate that fails a check is *refused* with a one-line
//! reason that names the file, what was expected and what to do; the others load and the host
//! goes on. Long abi_stable layout reports go to the debug log only.
//!
//! Libraries are never unloaded (abi_stable's rule): a refused file stays mapped if it got
//! that far, which is harmless since none of its code is called again.

use crate::isolation::child::Description;
use crate::isolation::{IsolationMode, IsolationSettings, ProcessPlugin};
use crate::plugin::{decode, Backend, LoadedPlugin};
use crate::schema::ConfigSchema;
use crate::signing::{Policy, Verdict};
use crate::verified::{Stamp, VerifiedFiles};
use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::{RResult, RString};
use passerelle_plugin_api::abi::PluginModRef;
use passerelle_plugin_api::manifest::parse_version;
use passerelle_plugin_api::{Manifest, PLUGIN_API_VERSION};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A directory to scan, and whether only files named like Passerelle plugins are taken
/// (used for the executable's own directory, which holds other libraries too).
#[derive(Debug, Clone)]
pub struct PluginDir {
    pub path: PathBuf,
    pub only_passerelle_files: bool,
}

/// A file that looked like a plugin and was not loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub path: PathBuf,
    pub reason: String,
}

/// The plugins of this host.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub refused: Vec<Refusal>,
    /// What hot add did (newest last), for the plugin list and the log.
    pub events: Vec<String>,
}

/// The registry of a running host, replaced as a whole when plugin files come, change or go.
///
/// Readers take a snapshot ([`LiveRegistry::load`]), an `Arc<Registry>` that stays valid as long
/// as they hold it: a call that started on an older version finishes on it, new calls see the
/// new one. A replaced version is dropped once its last reader lets go (`arc-swap`), so hot
/// reloads do not accumulate registry copies (each with the whole event list). Each plugin
/// version stays, as its library stays mapped (abi_stable never unloads one): the server
/// keys its caches by a plugin version's address (`server::plugin_key`), which must never be
/// reused by a later version.
#[derive(Debug)]
pub struct LiveRegistry {
    current: arc_swap::ArcSwap<Registry>,
    /// Every plugin version ever published (see above); grows with hot adds only.
    published: std::sync::Mutex<Vec<Arc<LoadedPlugin>>>,
    /// Serialises [`LiveRegistry::update`]s so that two read-modify-write changes (two files
    /// hot-added at once) cannot lose each other; readers never take it.
    writer: std::sync::Mutex<()>,
}

impl LiveRegistry {
    pub fn new(registry: Registry) -> Self {
        LiveRegistry {
            published: std::sync::Mutex::new(registry.plugins.clone()),
            current: arc_swap::ArcSwap::from_pointee(registry),
            writer: std::sync::Mutex::new(()),
        }
    }

    /// The current version, kept alive for as long as the caller holds it.
    pub fn load(&self) -> Arc<Registry> {
        self.current.load_full()
    }

    /// The current version of a plugin, by id.
    pub fn get(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.current.load().get(id).cloned()
    }

    /// Publishes a new version.
    pub fn replace(&self, registry: Registry) {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.publish(registry);
    }

    /// Stores `next` as the current version; the caller holds the writer lock.
    fn publish(&self, next: Registry) {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for plugin in &next.plugins {
            if !published.iter().any(|p| Arc::ptr_eq(p, plugin)) {
                published.push(plugin.clone());
            }
        }
        drop(published);
        self.current.store(Arc::new(next));
    }

    /// A new version made from the current one.
    pub fn update(&self, change: impl FnOnce(&mut Registry)) {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = Registry::clone(&self.current.load());
        change(&mut next);
        self.publish(next);
    }
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.iter().find(|p| p.id() == id)
    }

    /// Plugins serving an operation, e.g. `company.lookup`.
    pub fn serving<'a>(
        &'a self,
        operation: &'a str,
    ) -> impl Iterator<Item = &'a Arc<LoadedPlugin>> {
        self.plugins
            .iter()
            .filter(move |p| p.manifest.capabilities.iter().any(|c| c == operation))
    }
}

/// The versions of the plugin API this host accepts, in words, e.g. "1.0.0 to 1.0.x".
pub fn accepted_range() -> String {
    match parse_version(PLUGIN_API_VERSION) {
        Some((major, minor, _)) => format!("{major}.0.0 up to {major}.{minor}.x"),
        None => PLUGIN_API_VERSION.to_owned(),
    }
}

/// Whether a plugin built against API `version` can run in this host: same major, and a
/// minor no newer than ours (a newer plugin may call services this host lacks).
pub fn check_api_version(version: &str) -> Result<(), String> {
    let ours = parse_version(PLUGIN_API_VERSION);
    let theirs = parse_version(version);
    match (ours, theirs) {
        (Some((maj, min, _)), Some((tmaj, tmin, _))) if maj == tmaj && tmin <= min => Ok(()),
        (_, None) => Err(format!(
            "it declares plugin API version {version:?}, which is not a version number; rebuild it against passerelle-plugin-api {PLUGIN_API_VERSION}"
        )),
        _ => Err(format!(
            "it was built for plugin API {version}, but this host accepts {}; rebuild it against passerelle-plugin-api {PLUGIN_API_VERSION} or use a host that supports {version}",
            accepted_range()
        )),
    }
}

/// Whether `path` has this platform's library extension (`.so`, `.dll`, `.dylib`).
pub fn is_library_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(std::env::consts::DLL_EXTENSION))
}

fn is_passerelle_file(path: &Path) -> bool {
    let prefix = format!("{}passerelle_", std::env::consts::DLL_PREFIX);
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(&prefix))
}

/// The candidate files of the given directories, in a stable order, each file once.
pub fn candidates(dirs: &[PluginDir]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir.path) else {
            tracing::debug!(dir = %dir.path.display(), "plugin directory absent or unreadable");
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_library_file(p))
            .filter(|p| !dir.only_passerelle_files || is_passerelle_file(p))
            .collect();
        files.sort();
        for file in files {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen.insert(key) {
                out.push(file);
            }
        }
    }
    out
}

/// How files are checked and where verified copies go.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `None`: no signature check (only for reading a library one is about to sign).
    pub policy: Option<Policy>,
    /// Verified libraries are copied here (named by their SHA-256) and the copy is mapped:
    /// the bytes checked are the bytes loaded, and a replaced file loads as a new library
    /// instead of the one the dynamic linker already has for that path. `None`: map in place.
    pub cache_dir: Option<PathBuf>,
    /// Where each plugin's code runs (see [`crate::isolation`]).
    pub isolation: IsolationSettings,
}

impl LoadOptions {
    /// No signature check, mapped in place: for reading a library one is about to sign.
    pub fn default_unchecked() -> Self {
        LoadOptions {
            policy: None,
            cache_dir: None,
            isolation: IsolationSettings::default(),
        }
    }
}

/// Loads every candidate of `dirs`.
pub fn load_dirs(dirs: &[PluginDir], options: &LoadOptions) -> Registry {
    let verified = options.cache_dir.as_deref().map(VerifiedFiles::open);
    let mut registry = Registry::default();
    for path in candidates(dirs) {
        match load_verified(&path, options, verified.as_ref()) {
            Ok(plugin) => {
                if let Some(existing) = registry.get(plugin.id()) {
                    let reason = format!(
                        "plugin id `{}` is already provided by {}; remove one of the two files",
                        plugin.id(),
                        existing.path.display()
                    );
                    tracing::warn!(file = %path.display(), %reason, "plugin refused");
                    crate::metrics::plugin_load_failure(crate::metrics::LoadStage::Startup);
                    registry.refused.push(Refusal { path, reason });
                    continue;
                }
                tracing::info!(
                    plugin = plugin.id(),
                    version = %plugin.manifest.version,
                    file = %path.display(),
                    load_ms = plugin.load_time.as_secs_f64() * 1000.0,
                    "plugin loaded"
                );
                registry.plugins.push(Arc::new(plugin));
            }
            Err(reason) => {
                tracing::warn!(file = %path.display(), %reason, "plugin refused");
                crate::metrics::plugin_load_failure(crate::metrics::LoadStage::Startup);
                registry.refused.push(Refusal { path, reason });
            }
        }
    }
    if let Some(verified) = verified {
        verified.save();
    }
    registry
}

/// Verifies, maps one library and runs every check. The error is the refusal reason.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<LoadedPlugin, String> {
    let verified = options.cache_dir.as_deref().map(VerifiedFiles::open);
    let loaded = load_verified(path, options, verified.as_ref());
    if let Some(verified) = verified {
        verified.save();
    }
    loaded
}

/// The bytes of a library that passed the checks that need no code of it: permissions,
/// signature and policy, inspection as data. `mapped` is the verified copy to map.
#[derive(Debug)]
pub struct Checked {
    pub sha256: String,
    pub verdict: Option<Verdict>,
    pub mapped: PathBuf,
}

/// Runs the checks of [`Checked`], reading and hashing the file only when `verified` does not
/// already know this version of it (see [`crate::verified`]).
pub fn check_file(
    path: &Path,
    options: &LoadOptions,
    verified: Option<&VerifiedFiles>,
) -> Result<Checked, String> {
    check_permissions(path)?;
    let stamp = Stamp::of(path);
    let known = match (verified, stamp) {
        (Some(v), Some(stamp)) => v.digest(path, stamp),
        _ => None,
    };
    let (sha256, bytes) = match known {
        Some(sha256) => (sha256, None),
        None => {
            let bytes = std::fs::read(path).map_err(|e| format!("it cannot be read: {e}"))?;
            (crate::signing::sha256_hex(&bytes), Some(bytes))
        }
    };
    let verdict = match &options.policy {
        Some(policy) => Some(policy.check_digest(path, &sha256)?),
        None => None,
    };
    if let Some(bytes) = &bytes {
        // Read as data before anything maps it: not a plugin, or truncated, is refused here
        // without running a line of its code.
        crate::inspect::inspect(bytes).map_err(|e| e.0)?;
        if let (Some(v), Some(stamp)) = (verified, stamp) {
            v.remember(path, stamp, &sha256);
        }
    }
    let mapped = match &options.cache_dir {
        Some(dir) => cached_copy(dir, path, &sha256, bytes, verified)?,
        None => path.to_owned(),
    };
    Ok(Checked {
        sha256,
        verdict,
        mapped,
    })
}

fn load_verified(
    path: &Path,
    options: &LoadOptions,
    verified: Option<&VerifiedFiles>,
) -> Result<LoadedPlugin, String> {
    let started = Instant::now();
    let Checked {
        sha256,
        verdict,
        mapped,
    } = check_file(path, options, verified)?;
    // With process isolation in use, the library is first opened in a worker: its id (and
    // so its mode) is only known from its manifest, which is plugin code.
    let (opened, description) = if options.isolation.may_use_processes() {
        let (process, d) = ProcessPlugin::start(path, &mapped, &sha256, &options.isolation)?;
        (Backend::Process(process), d)
    } else {
        let module = map_library(path, &mapped)?;
        let d = Description {
            api_version: (module.api_version())().as_str().to_owned(),
            manifest: (module.manifest())().into(),
            config_schema: (module.config_schema())().into(),
        };
        (Backend::InProcess(module), d)
    };
    let (manifest, schema) = check_description(
        &description.api_version,
        description.manifest.into(),
        description.config_schema.into(),
    )?;
    if let (Some(policy), Some(verdict)) = (&options.policy, &verdict) {
        policy.check_identity(verdict, &manifest.id, &manifest.version)?;
    }
    let backend = match opened {
        Backend::Process(process)
            if options.isolation.mode_of(&manifest.id) == IsolationMode::InProcess =>
        {
            drop(process);
            Backend::InProcess(map_library(path, &mapped)?)
        }
        Backend::Process(process) => {
            process.set_name(&manifest.id);
            Backend::Process(process)
        }
        in_process => in_process,
    };
    Ok(LoadedPlugin {
        path: path.to_owned(),
        sha256,
        signed_by: match verdict {
            Some(Verdict::Signed { key, .. }) => Some(key),
            _ => None,
        },
        manifest,
        schema,
        backend,
        load_time: started.elapsed(),
    })
}

/// Reads and checks what a plugin says about itself (its root module's API version, its
/// manifest and its configuration schema, as the JSON answers of its entry points): plugin
/// code, so untrusted input. The error is the refusal reason, naming what is wrong.
pub fn check_description(
    declared: &str,
    manifest: RResult<RString, RString>,
    config_schema: RResult<RString, RString>,
) -> Result<(Manifest, ConfigSchema), String> {
    check_api_version(declared)?;
    let manifest: Manifest =
        decode("manifest", manifest).map_err(|e| format!("its manifest could not be read: {e}"))?;
    manifest
        .check()
        .map_err(|e| format!("its manifest is invalid: {e}"))?;
    if manifest.api_version != declared {
        return Err(format!(
            "its manifest says plugin API {} but its root module says {declared}; rebuild it with `export_plugin!`",
            manifest.api_version
        ));
    }
    let schema_json = decode("config_schema", config_schema)
        .map_err(|e| format!("its configuration schema could not be read: {e}"))?;
    let schema =
        ConfigSchema::new(schema_json).map_err(|e| format!("plugin `{}`: {e}", manifest.id))?;
    for task in &manifest.tasks {
        for field in [&task.interval_field, &task.start_delay_field] {
            if schema.field(field).is_none() {
                return Err(format!(
                    "its task `{}` names the config field `{field}`, which its schema does not have",
                    task.name
                ));
            }
        }
    }
    Ok((manifest, schema))
}

/// Maps a library (`mapped`, the verified copy of `path`) and initialises its root module,
/// checking the plugin API version of its header first. Used in the host (in-process) and
/// in plugin workers, so both refuse a library with the same reason.
pub(crate) fn map_library(path: &Path, mapped: &Path) -> Result<PluginModRef, String> {
    let header = lib_header_from_path(mapped).map_err(|e| describe_library_error(path, &e))?;
    let header_version = header.version_strings().version.as_str().to_owned();
    check_api_version(&header_version)?;
    header
        .init_root_module::<PluginModRef>()
        .map_err(|e| describe_library_error(path, &e))
}

/// Refuses a plugin file, or its directory, that every user may write.
fn check_permissions(path: &Path) -> Result<(), String> {
    crate::inspect::check_not_world_writable(path, "file").map_err(|e| e.0)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::inspect::check_not_world_writable(dir, "directory").map_err(|e| e.0)?;
    }
    Ok(())
}

/// Returns `<dir>/<sha256>.<ext>`, a read-only copy of the verified bytes in a directory only
/// the host's user can enter, writing it unless a copy with exactly these bytes is already
/// there. An existing copy is re-hashed unless `verified` knows it unchanged: one changed
/// behind the host's back is replaced, never mapped. `bytes` are the source's verified bytes
/// when it was read; otherwise it is read again, and must still hash to `sha256`.
fn cached_copy(
    dir: &Path,
    source: &Path,
    sha256: &str,
    bytes: Option<Vec<u8>>,
    verified: Option<&VerifiedFiles>,
) -> Result<PathBuf, String> {
    let path = dir.join(format!("{sha256}.{}", std::env::consts::DLL_EXTENSION));
    let stamp = Stamp::of(&path);
    let known = match (verified, stamp) {
        (Some(v), Some(stamp)) => v.digest(&path, stamp).is_some_and(|d| d == sha256),
        _ => false,
    };
    if known {
        return Ok(path);
    }
    let intact = std::fs::read(&path).is_ok_and(|b| crate::signing::sha256_hex(&b) == sha256);
    if intact {
        if let (Some(v), Some(stamp)) = (verified, stamp) {
            v.remember(&path, stamp, sha256);
        }
        return Ok(path);
    }
    let bytes = match bytes {
        Some(bytes) => bytes,
        None => {
            let bytes = std::fs::read(source).map_err(|e| format!("it cannot be read: {e}"))?;
            if crate::signing::sha256_hex(&bytes) != sha256 {
                if let Some(v) = verified {
                    v.forget(source);
                }
                return Err(
                    "it changed while it was being loaded; load it again once it is fully written"
                        .to_owned(),
                );
            }
            bytes
        }
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the plugin cache {}: {e}", dir.display()))?;
    set_mode(dir, 0o700);
    if path.exists() {
        tracing::warn!(file = %path.display(), "a cached plugin copy was changed; replacing it");
        let _ = std::fs::remove_file(&path);
    }
    crate::store::write_atomic(&path, &bytes)
        .map_err(|e| format!("cannot copy it into the plugin cache: {e}"))?;
    set_mode(&path, 0o400);
    Ok(path)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(file = %path.display(), error = %e, "cannot restrict permissions");
    }
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) {}

fn describe_library_error(path: &Path, error: &LibraryError) -> String {
    match error {
        LibraryError::OpenError { .. } => format!(
            "it is not a loadable {} library for this platform ({}); remove it from the plugin directory",
            std::env::consts::DLL_EXTENSION,
            first_line(&error.to_string())
        ),
        LibraryError::GetSymbolError { .. } => {
            "it is a library but not a Passerelle plugin (no root module symbol); plugins are built with `export_plugin!` from passerelle-plugin-api — remove it from the plugin directory".to_owned()
        }
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => {
            check_api_version(&actual_version.to_string())
                .err()
                .unwrap_or_else(|| format!("it was built for plugin API {actual_version}"))
        }
        LibraryError::AbiInstability(_) => {
            tracing::debug!(file = %path.display(), report = %error, "layout mismatch");
            format!(
                "its root module layout does not match plugin API {PLUGIN_API_VERSION} (built against an incompatible passerelle-plugin-api); rebuild it against passerelle-plugin-api {PLUGIN_API_VERSION} (run with RUST_LOG=debug for the layout report)"
            )
        }
        LibraryError::RootModule { .. } => format!(
            "its root module failed to initialise: {}",
            first_line(&error.to_string())
        ),
        other => {
            tracing::debug!(file = %path.display(), report = %other, "load error");
            format!(
                "abi_stable refused it: {} (run with RUST_LOG=debug for details)",
                first_line(&other.to_string())
            )
        }
    }
}

fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the leak of one registry copy per hot reload: a replaced version is freed once
    /// its last reader lets go, and a reader holding it keeps it whole until then.
    #[test]
    fn a_replaced_registry_is_dropped_once_its_last_reader_lets_go() {
        let live = LiveRegistry::new(Registry {
            events: vec!["first".into()],
            ..Registry::default()
        });
        let reader = live.load();
        let first = Arc::downgrade(&reader);
        live.update(|r| r.events.push("second".into()));
        assert_eq!(reader.events, ["first"], "a held snapshot does not change");
        assert_eq!(live.load().events, ["first", "second"]);
        assert!(first.upgrade().is_some(), "still held by the reader");
        drop(reader);
        assert!(
            first.upgrade().is_none(),
            "the replaced registry must be freed, not leaked"
        );
        let second = Arc::downgrade(&live.load());
        for i in 0..100 {
            live.replace(Registry {
                events: vec![i.to_string()],
                ..Registry::default()
            });
        }
        assert!(second.upgrade().is_none());
        assert_eq!(
            Arc::strong_count(&live.load()),
            2,
            "only the live copy remains"
        );
    }

    #[test]
    fn api_versions_outside_the_range_are_refused_with_the_fix() {
        assert!(check_api_version(PLUGIN_API_VERSION).is_ok());
        let err = check_api_version("2.0.0").unwrap_err();
        assert!(
            err.contains("rebuild it against passerelle-plugin-api"),
            "{err}"
        );
        assert!(check_api_version("1.99.0").is_err());
        assert!(check_api_version("banana").is_err());
    }

    #[test]
    fn only_library_files_are_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join(format!(
            "{}x.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        ));
        std::fs::write(&lib, b"not really").unwrap();
        std::fs::write(dir.path().join("README.md"), b"hello").unwrap();
        let found = candidates(&[
            PluginDir {
                path: dir.path().to_owned(),
                only_passerelle_files: false,
            },
            PluginDir {
                path: dir.path().to_owned(),
                only_passerelle_files: false,
            },
        ]);
        assert_eq!(found, vec![lib.clone()]);
        let reg = load_dirs(
            &[PluginDir {
                path: dir.path().to_owned(),
                only_passerelle_files: false,
            }],
            &LoadOptions::default_unchecked(),
        );
        assert_eq!(reg.refused.len(), 1);
        assert!(
            reg.refused[0].reason.contains("not a valid"),
            "{}",
            reg.refused[0].reason
        );
    }
}
