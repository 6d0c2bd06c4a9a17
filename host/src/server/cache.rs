//! Answers derived from an instance file, cached by the file's exact content.
//!
//! `GET /api/instances/{id}` is what the ERP and scripts poll; parsing the TOML file and
//! building the view on every request would cost more than everything else together. The
//! cache keeps, per instance, the file's bytes and the JSON answer made from those very
//! bytes: a request reads the file (one small read, no parsing) and reuses the answer when
//! the bytes are identical and the instance's plugin is still the same loaded version. Any
//! change, by this server or by another process (the CLI), changes the bytes (the revision
//! is in the file), and a new version of the plugin (hot add) changes the plugin, so an
//! answer is never stale.

use crate::loader::Registry;
use crate::plugin::LoadedPlugin;
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Most instances remembered; beyond, the cache starts over (there are rarely more than a
/// few dozen instances).
const MAX_ENTRIES: usize = 4096;

#[derive(Debug)]
struct Entry {
    file: Bytes,
    plugin: String,
    plugin_key: usize,
    answer: Bytes,
}

#[derive(Debug, Default)]
pub struct InstanceCache {
    entries: RwLock<HashMap<String, Entry>>,
}

impl InstanceCache {
    /// The answer made from exactly `file` for instance `id`, if known and its plugin is
    /// still the loaded one.
    pub fn get(&self, id: &str, file: &[u8], registry: &Registry) -> Option<Bytes> {
        let entries = self.entries.read().ok()?;
        let e = entries.get(id)?;
        let current = registry.get(&e.plugin).map(super::plugin_key)?;
        (current == e.plugin_key && e.file.as_ref() == file).then(|| e.answer.clone())
    }

    pub fn put(&self, id: &str, file: Bytes, plugin: &Arc<LoadedPlugin>, answer: Bytes) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(id) {
                entries.clear();
            }
            entries.insert(
                id.to_owned(),
                Entry {
                    file,
                    plugin: plugin.id().to_owned(),
                    plugin_key: super::plugin_key(plugin),
                    answer,
                },
            );
        }
    }
}
