//! Answers derived from an instance file, cached by the file's exact content.
//!
//! `GET /api/instances/{id}` is what the ERP and scripts poll; parsing the TOML file and
//! building the view on every request would cost more than everything else together. The
//! cache keeps, per instance, the file's bytes and the JSON answer made from those very
//! bytes: a request reads the file (one small read, no parsing) and reuses the answer when
//! the bytes are identical. Any change, by this server or by another process (the CLI),
//! changes the bytes (the revision is in the file), so an answer is never stale.

use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::RwLock;

/// Most instances remembered; beyond, the cache starts over (there are rarely more than a
/// few dozen instances).
const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Default)]
pub struct InstanceCache {
    entries: RwLock<HashMap<String, (Bytes, Bytes)>>,
}

impl InstanceCache {
    /// The answer made from exactly `file` for instance `id`, if known.
    pub fn get(&self, id: &str, file: &[u8]) -> Option<Bytes> {
        let entries = self.entries.read().ok()?;
        let (bytes, answer) = entries.get(id)?;
        (bytes.as_ref() == file).then(|| answer.clone())
    }

    pub fn put(&self, id: &str, file: Bytes, answer: Bytes) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(id) {
                entries.clear();
            }
            entries.insert(id.to_owned(), (file, answer));
        }
    }
}
