//! Hot add: `serve` watches its plugin directories and follows what integrators do there.
//!
//! - a new file is verified and loaded, without a restart;
//! - a replaced file is loaded as a new library (its verified bytes are mapped from a
//!   content-addressed copy, so the dynamic linker cannot hand back the old one); instances
//!   switch to it for their next call, calls in flight finish on the old one;
//! - a removed file unloads nothing (libraries stay mapped) but its plugin leaves the
//!   registry and the plugin's instances are disabled.
//!
//! The directories are polled (portable, no platform watcher): a file is acted on once its
//! size and modification time are the same on two consecutive looks, so a copy in progress
//! is never loaded half-written. Every event is logged and kept in the registry's events.

use crate::engine::Engine;
use crate::loader::{self, LoadOptions, Refusal};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the plugin directories are looked at.
pub const POLL: Duration = Duration::from_millis(500);

type Stamp = (u64, Option<SystemTime>);

fn stamps(engine: &Engine) -> HashMap<PathBuf, Stamp> {
    loader::candidates(&engine.settings.plugin_dirs)
        .into_iter()
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            Some((p, (meta.len(), meta.modified().ok())))
        })
        .collect()
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// Watches the plugin directories until the process ends.
pub fn spawn(engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut known = stamps(&engine);
        let mut pending: HashMap<PathBuf, Stamp> = HashMap::new();
        let mut ticker = tokio::time::interval(POLL);
        loop {
            ticker.tick().await;
            let seen = stamps(&engine);
            let mut ready = Vec::new();
            for (path, stamp) in &seen {
                if known.get(path) == Some(stamp) {
                    pending.remove(path);
                    continue;
                }
                if pending.get(path) == Some(stamp) {
                    ready.push(path.clone());
                } else {
                    pending.insert(path.clone(), *stamp);
                }
            }
            let removed: Vec<PathBuf> = known
                .keys()
                .filter(|p| !seen.contains_key(*p))
                .cloned()
                .collect();
            for path in &removed {
                known.remove(path);
                pending.remove(path);
                let engine = engine.clone();
                let path = path.clone();
                let _ = tokio::task::spawn_blocking(move || removed_file(&engine, &path)).await;
            }
            for path in ready {
                if let Some(stamp) = pending.remove(&path) {
                    known.insert(path.clone(), stamp);
                }
                let engine = engine.clone();
                // Mapping a library runs its initialisers: never on an async worker.
                let _ = tokio::task::spawn_blocking(move || new_file(&engine, &path)).await;
            }
        }
    })
}

fn new_file(engine: &Engine, path: &PathBuf) {
    let options = LoadOptions {
        policy: Some(engine.settings.policy.clone()),
        cache_dir: Some(engine.settings.plugin_cache()),
        isolation: engine.settings.isolation.clone(),
    };
    match loader::load_file(path, &options) {
        Ok(plugin) => {
            let plugin = Arc::new(plugin);
            let id = plugin.id().to_owned();
            let current = engine.registry.load();
            if let Some(other) = current.get(&id).filter(|p| &p.path != path) {
                let reason = format!(
                    "plugin id `{id}` is already provided by {}; remove one of the two files",
                    other.path.display()
                );
                tracing::warn!(file = %path.display(), %reason, "plugin refused");
                crate::metrics::plugin_load_failure(crate::metrics::LoadStage::HotReload);
                engine.registry.update(|r| {
                    r.refused.retain(|x| &x.path != path);
                    r.refused.push(Refusal {
                        path: path.clone(),
                        reason: reason.clone(),
                    });
                    r.events
                        .push(format!("{} refused {}: {reason}", now(), path.display()));
                });
                return;
            }
            let event = match current.plugins.iter().find(|p| &p.path == path) {
                Some(old) => format!(
                    "{} replaced {id} {} by {} from {}",
                    now(),
                    old.manifest.version,
                    plugin.manifest.version,
                    path.display()
                ),
                None => format!(
                    "{} added {id} {} from {}",
                    now(),
                    plugin.manifest.version,
                    path.display()
                ),
            };
            tracing::info!(plugin = %id, file = %path.display(), "{event}");
            engine.registry.update(|r| {
                r.plugins.retain(|p| &p.path != path);
                r.plugins.push(plugin.clone());
                r.refused.retain(|x| &x.path != path);
                r.events.push(event.clone());
            });
        }
        Err(reason) => {
            tracing::warn!(file = %path.display(), %reason, "plugin refused");
            crate::metrics::plugin_load_failure(crate::metrics::LoadStage::HotReload);
            engine.registry.update(|r| {
                r.refused.retain(|x| &x.path != path);
                r.refused.push(Refusal {
                    path: path.clone(),
                    reason: reason.clone(),
                });
                r.events
                    .push(format!("{} refused {}: {reason}", now(), path.display()));
            });
        }
    }
}

fn removed_file(engine: &Engine, path: &PathBuf) {
    let Some(plugin) = engine
        .registry
        .load()
        .plugins
        .iter()
        .find(|p| &p.path == path)
        .cloned()
    else {
        engine
            .registry
            .update(|r| r.refused.retain(|x| &x.path != path));
        return;
    };
    let id = plugin.id().to_owned();
    let mut disabled = Vec::new();
    if let Ok(records) = engine.store.list() {
        // Disabling is a change like any other: it goes into the history.
        let audit = crate::server::audit::AuditLog::open(&engine.backend, &engine.settings.data_dir)
            .map_err(|e| tracing::error!(error = %e, "cannot open the audit history; disabling the removed plugin's instances is not audited"))
            .ok();
        for record in records.into_iter().filter(|r| r.plugin == id && r.enabled) {
            let result = engine
                .store
                .update::<crate::store::StoreError>(&record.id, None, |r| {
                    r.enabled = false;
                    Ok(())
                });
            match result {
                Ok(changed) => {
                    if let Some(log) = &audit {
                        let actor = format!("host (plugin file {} removed)", path.display());
                        crate::server::actions::audit_changed(engine, log, &actor, &changed, None);
                    }
                    disabled.push(record.id.to_string())
                }
                Err(e) => {
                    tracing::error!(instance = %record.id, error = %e, "cannot disable the instance of a removed plugin")
                }
            }
        }
    }
    let event = format!(
        "{} removed {id} ({} deleted){}",
        now(),
        path.display(),
        if disabled.is_empty() {
            String::new()
        } else {
            format!("; instances disabled: {}", disabled.join(", "))
        }
    );
    tracing::warn!(plugin = %id, "{event}");
    engine.registry.update(|r| {
        r.plugins.retain(|p| &p.path != path);
        r.events.push(event.clone());
    });
}
