//! Remembers the plugin files already hashed and inspected, so that a start does not read
//! and hash every library again.
//!
//! Hashing is the bulk of a start: SHA-256 of a 10 MB plugin costs about 5 ms, paid up to three
//! times per plugin (signature check, cache name, cache copy check). An entry records a file's
//! SHA-256 with its *stamp*: device, inode, size, modification and status-change times in
//! nanoseconds. Writing to a file changes its mtime and ctime, replacing it changes its inode
//! and ctime, and ctime cannot be set from user space, so a file whose stamp is unchanged still
//! has the bytes that were hashed. Only what depends on the bytes alone is remembered (digest,
//! "inspected as a plugin"): the signature file, the trusted keys and the policy are checked at
//! every start, against the remembered digest.
//!
//! As git does for its index, an entry is not recorded while the file is *racy*: when its ctime
//! is less than [`SETTLE`] before the hash was taken, a write in the same clock tick could go
//! unseen. Such a file is hashed again at the next start.
//!
//! The index is one JSON file in the plugin cache directory (only the host's user can enter it).
//! A damaged or unreadable index is ignored and rebuilt: it is a cache, never a source of truth.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A file younger than this (by ctime) when hashed is not remembered.
pub const SETTLE: Duration = Duration::from_secs(2);

/// What identifies one version of a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    /// The stamp of `path` (following symbolic links, as loading does). `None` where the
    /// platform gives no inode and ctime: there, files are always hashed.
    #[cfg(unix)]
    pub fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub fn of(_path: &Path) -> Option<Stamp> {
        None
    }

    /// Whether the file changed less than [`SETTLE`] before `now`.
    fn racy(&self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now_ns - self.ctime_ns < SETTLE.as_nanos() as i128
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// Format of this file; an index of another format is ignored.
    version: u32,
    files: BTreeMap<PathBuf, Entry>,
}

const FORMAT: u32 = 1;

/// The index of verified files, loaded once per loading pass and saved at its end.
#[derive(Debug)]
pub struct VerifiedFiles {
    path: PathBuf,
    index: Mutex<(Index, bool)>,
}

impl VerifiedFiles {
    /// Opens the index in `cache_dir` (empty if absent or damaged).
    pub fn open(cache_dir: &Path) -> VerifiedFiles {
        let path = cache_dir.join("verified.json");
        let index = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Index>(&bytes).ok())
            .filter(|index| index.version == FORMAT)
            .unwrap_or(Index {
                version: FORMAT,
                files: BTreeMap::new(),
            });
        VerifiedFiles {
            path,
            index: Mutex::new((index, false)),
        }
    }

    /// The remembered SHA-256 of `file`, if its stamp is still `stamp`.
    pub fn digest(&self, file: &Path, stamp: Stamp) -> Option<String> {
        let guard = self.index.lock().ok()?;
        let entry = guard.0.files.get(file)?;
        (entry.stamp == stamp).then(|| entry.sha256.clone())
    }

    /// Remembers that `file`, as of `stamp`, hashed to `sha256` (and, for a source library,
    /// passed inspection). Not recorded while the file is racy.
    pub fn remember(&self, file: &Path, stamp: Stamp, sha256: &str) {
        if stamp.racy(SystemTime::now()) {
            return;
        }
        if let Ok(mut guard) = self.index.lock() {
            let entry = Entry {
                stamp,
                sha256: sha256.to_owned(),
            };
            guard.0.files.insert(file.to_owned(), entry);
            guard.1 = true;
        }
    }

    /// Forgets `file` (it failed a check, or was replaced).
    pub fn forget(&self, file: &Path) {
        if let Ok(mut guard) = self.index.lock() {
            if guard.0.files.remove(file).is_some() {
                guard.1 = true;
            }
        }
    }

    /// Writes the index if it changed. Entries of files that no longer exist are dropped.
    /// A failure is logged, never fatal: the next start hashes again.
    pub fn save(&self) {
        let Ok(mut guard) = self.index.lock() else {
            return;
        };
        let (index, dirty) = &mut *guard;
        let before = index.files.len();
        index.files.retain(|file, _| file.exists());
        if !*dirty && index.files.len() == before {
            return;
        }
        let written = match serde_json::to_vec(index) {
            Ok(bytes) => crate::store::write_atomic(&self.path, &bytes).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match written {
            Ok(()) => *dirty = false,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot save the index of verified plugins")
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_settled_file_is_remembered_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib.so");
        std::fs::write(&lib, b"one").unwrap();
        let stamp = Stamp::of(&lib).unwrap();
        assert!(stamp.racy(SystemTime::now()));
        assert!(!stamp.racy(SystemTime::now() + SETTLE + Duration::from_millis(10)));

        let index = VerifiedFiles::open(dir.path());
        // Racy: not remembered.
        index.remember(&lib, stamp, "aa");
        assert_eq!(index.digest(&lib, stamp), None);

        // Settled (inserted as if hashed later): remembered, and survives a save/open.
        index.index.lock().unwrap().0.files.insert(
            lib.clone(),
            Entry {
                stamp,
                sha256: "aa".into(),
            },
        );
        index.index.lock().unwrap().1 = true;
        index.save();
        let reopened = VerifiedFiles::open(dir.path());
        assert_eq!(reopened.digest(&lib, stamp).as_deref(), Some("aa"));

        // Same size, new content: the stamp differs (ctime/mtime), so nothing is reused.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&lib, b"two").unwrap();
        let changed = Stamp::of(&lib).unwrap();
        assert_ne!(changed, stamp);
        assert_eq!(reopened.digest(&lib, changed), None);

        // Replaced by rename: new inode.
        let other = dir.path().join("other.so");
        std::fs::write(&other, b"two").unwrap();
        std::fs::rename(&other, &lib).unwrap();
        assert_ne!(Stamp::of(&lib).unwrap(), stamp);
    }

    #[test]
    fn a_damaged_index_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("verified.json"), b"{not json").unwrap();
        let index = VerifiedFiles::open(dir.path());
        assert!(index.index.lock().unwrap().0.files.is_empty());
    }
}
