//! Instance configuration on disk: one TOML file per instance under `<data-dir>/instances/`.
//!
//! Guarantees:
//! - a write is atomic (temporary file, fsync, rename, fsync of the directory): a crash leaves
//!   the old file or the new one, never half of one;
//! - every file carries a revision; a writer that read revision N and finds N+1 on disk is
//!   refused ([`StoreError::Stale`]) instead of silently overwriting someone else's change;
//! - writers take an exclusive lock on the directory, so read-modify-write is serialised
//!   across processes (CLI and server at once).
//!
//! Secret values are stored sealed (see [`crate::secrets`]) in a separate `[secrets]` table.
//!
//! With the PostgreSQL backend the same methods read and write the `instances` table instead
//! ([`crate::storage::instances`]), with the same revisions and refusals, shared by every node.

use crate::ids::InstanceId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An instance before and after one change (equal when the change changed nothing).
#[derive(Debug, Clone)]
pub struct Changed {
    pub before: InstanceRecord,
    pub after: InstanceRecord,
}

/// One configured instance of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub id: InstanceId,
    pub plugin: String,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub revision: u64,
    /// Plain values by field name.
    #[serde(default)]
    pub values: Map<String, Value>,
    /// Sealed secret values by field name.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("there is no instance `{0}`; list them with `passerelle config list` or create it with `passerelle config create {0} --plugin <plugin-id>`")]
    NotFound(InstanceId),
    #[error("an instance `{0}` already exists; choose another id or delete it first with `passerelle config delete {0}`")]
    Exists(InstanceId),
    #[error("instance `{id}` was changed by someone else (it is at revision {actual}, your change was based on revision {expected}); reload it and apply your change again")]
    Stale {
        id: InstanceId,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid instance file ({reason}); fix it by hand or restore it from a backup")]
    Corrupt { path: PathBuf, reason: String },
    #[error("instances: {0}")]
    Database(#[from] crate::storage::PgError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The instance files of one data directory, or the `instances` table of PostgreSQL.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// Set with the PostgreSQL backend: every method goes there, no file is touched.
    pg: Option<crate::storage::instances::PgInstances>,
}

/// An exclusive lock on the store, released on drop.
struct WriteLock {
    _file: File,
}

impl Store {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.join("instances");
        crate::datadir::create_private_dir_all(&dir).map_err(io(&dir))?;
        // Files written by older versions were readable by everyone: fix them.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                restrict_to_owner(&entry.path());
            }
        }
        remove_orphan_temporaries(&dir);
        Ok(Store { dir, pg: None })
    }

    /// The store of the process's backend: the files of `data_dir`, or PostgreSQL.
    pub fn open_on(data_dir: &Path, backend: &crate::storage::Backend) -> Result<Self, StoreError> {
        match backend.pg() {
            None => Self::open(data_dir),
            Some(pg) => Ok(Store {
                dir: data_dir.join("instances"),
                pg: Some(crate::storage::instances::PgInstances::new(pg.clone())),
            }),
        }
    }

    fn path(&self, id: &InstanceId) -> PathBuf {
        self.dir.join(format!("{id}.toml"))
    }

    /// The file holding an instance, for readers that cache what they derive from its
    /// content (the HTTP API); writers go through [`Store::update`]. `None` on PostgreSQL,
    /// where no file holds it.
    pub fn file_of(&self, id: &InstanceId) -> Option<PathBuf> {
        self.pg.is_none().then(|| self.path(id))
    }

    fn lock(&self) -> Result<WriteLock, StoreError> {
        let path = self.dir.join(".lock");
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(WriteLock { _file: file })
    }

    /// All instances, sorted by id. A corrupt file is an error: it is never skipped silently.
    pub fn list(&self) -> Result<Vec<InstanceRecord>, StoreError> {
        if let Some(pg) = &self.pg {
            return pg.list();
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("toml") {
                out.push(Self::read(&path)?);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub fn get(&self, id: &InstanceId) -> Result<InstanceRecord, StoreError> {
        if let Some(pg) = &self.pg {
            return pg.get(id);
        }
        let path = self.path(id);
        if !path.exists() {
            return Err(StoreError::NotFound(id.clone()));
        }
        let record = Self::read(&path)?;
        if &record.id != id {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("it holds instance `{}`", record.id),
            });
        }
        Ok(record)
    }

    fn read(path: &Path) -> Result<InstanceRecord, StoreError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        toml::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string().trim().replace('\n', " "),
        })
    }

    /// Creates a new, disabled, empty instance.
    pub fn create(&self, id: &InstanceId, plugin: &str) -> Result<InstanceRecord, StoreError> {
        if let Some(pg) = &self.pg {
            return pg.create(id, plugin);
        }
        let _lock = self.lock()?;
        if self.path(id).exists() {
            return Err(StoreError::Exists(id.clone()));
        }
        let record = InstanceRecord {
            id: id.clone(),
            plugin: plugin.to_owned(),
            enabled: false,
            revision: 1,
            values: Map::new(),
            secrets: BTreeMap::new(),
        };
        self.write(&record)?;
        Ok(record)
    }

    /// Read-modify-write of one instance under the store lock. With `expected_revision`, the
    /// change is refused when the instance moved on since the caller read it; without, it
    /// applies to whatever revision is current. `change` may refuse by returning an error;
    /// nothing is written then. Returns the record before and after, both read under the
    /// lock, so an audit entry says exactly what this change replaced.
    pub fn update<E: From<StoreError>>(
        &self,
        id: &InstanceId,
        expected_revision: Option<u64>,
        change: impl FnOnce(&mut InstanceRecord) -> Result<(), E>,
    ) -> Result<Changed, E> {
        if let Some(pg) = &self.pg {
            return pg.update(id, expected_revision, change);
        }
        let _lock = self.lock()?;
        let mut record = self.get(id)?;
        if let Some(expected) = expected_revision {
            if expected != record.revision {
                return Err(StoreError::Stale {
                    id: id.clone(),
                    expected,
                    actual: record.revision,
                }
                .into());
            }
        }
        let before = record.clone();
        change(&mut record)?;
        if record != before {
            record.revision = before.revision + 1;
            self.write(&record)?;
        }
        Ok(Changed {
            before,
            after: record,
        })
    }

    /// Creates the instance, or returns the existing one (`false`): two provisioning runs at
    /// once both succeed instead of one failing with "already exists".
    pub fn create_or_get(
        &self,
        id: &InstanceId,
        plugin: &str,
    ) -> Result<(InstanceRecord, bool), StoreError> {
        match self.create(id, plugin) {
            Ok(record) => Ok((record, true)),
            Err(StoreError::Exists(_)) => Ok((self.get(id)?, false)),
            Err(e) => Err(e),
        }
    }

    pub fn delete(
        &self,
        id: &InstanceId,
        expected_revision: Option<u64>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = &self.pg {
            return pg.delete(id, expected_revision);
        }
        let _lock = self.lock()?;
        let record = self.get(id)?;
        if let Some(expected) = expected_revision {
            if expected != record.revision {
                return Err(StoreError::Stale {
                    id: id.clone(),
                    expected,
                    actual: record.revision,
                });
            }
        }
        let path = self.path(id);
        std::fs::remove_file(&path).map_err(io(&path))?;
        sync_dir(&self.dir);
        Ok(())
    }

    fn write(&self, record: &InstanceRecord) -> Result<(), StoreError> {
        let path = self.path(&record.id);
        let body = toml::to_string(record).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("cannot encode: {e}"),
        })?;
        let text = format!(
            "# Instance `{}` of plugin `{}`. Managed by passerelle: change it with `passerelle config`.\n# Secret values are sealed; they cannot be edited here.\n{body}",
            record.id, record.plugin
        );
        write_atomic(&path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let result = (|| {
        let mut file = create_owner_only(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::Io {
            path: path.to_owned(),
            source,
        });
    }
    sync_dir(dir);
    Ok(())
}

/// Removes the temporary files of writers that were killed between creating and renaming
/// them: each such SIGKILL left one behind, forever (the crash-consistency test checks that
/// none remain). A temporary whose writer still runs is left alone: removing it would fail
/// that writer's rename.
fn remove_orphan_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix('.')?.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit('.').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if crate::services::state::process_is_gone(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates (or truncates) a file readable and writable by its owner only: data files hold
/// configuration and sealed secrets.
fn create_owner_only(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes an existing file of the data directory readable by its owner only (files made by
/// older versions were 0644); a missing file is no error.
pub fn restrict_to_owner(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.is_file() {
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(path = %path.display(), error = %e, "cannot make the file private (mode 0600)");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// An SQLite database of the data directory: created readable by its owner only before
/// SQLite opens it (its journal files take the same mode), and fixed when older versions
/// left it readable by everyone.
pub fn prepare_private_database(path: &Path) {
    if !path.exists() {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let _ = options.open(path);
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        restrict_to_owner(Path::new(&name));
    }
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(s: &str) -> InstanceId {
        InstanceId::new(s).unwrap()
    }

    /// Regression (security review): instance files were created 0644.
    #[cfg(unix)]
    #[test]
    fn instance_files_are_private_and_old_ones_are_fixed() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create(&id("a"), "sirene").unwrap();
        let file = store.file_of(&id("a")).unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::open(dir.path()).unwrap();
        assert_eq!(mode(&file), 0o600);
    }

    /// Regression (issue 19, crash consistency): a writer killed between creating its
    /// temporary file and renaming it left the temporary behind, forever.
    #[cfg(unix)]
    #[test]
    fn temporaries_of_killed_writers_are_removed_and_a_live_writers_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create(&id("a"), "p").unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let orphan = dir.path().join(format!("instances/.a.toml.{dead}.tmp"));
        let live = dir
            .path()
            .join(format!("instances/.a.toml.{}.tmp", std::process::id()));
        std::fs::write(&orphan, "half").unwrap();
        std::fs::write(&live, "half").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(!orphan.exists());
        assert!(live.exists());
        assert_eq!(store.list().unwrap().len(), 1);
    }

    /// The same store test on both backends: the embedded files, and PostgreSQL when a test
    /// server is there (`PASSERELLE_TEST_DATABASE_URL`).
    fn on_both_backends(test: impl Fn(&Store)) {
        let dir = tempfile::tempdir().unwrap();
        test(&Store::open(dir.path()).unwrap());
        if let Some(pg) = crate::storage::postgres::scratch_for_tests("store") {
            let backend = crate::storage::Backend::Postgres(pg);
            let pg_dir = tempfile::tempdir().unwrap();
            let store = Store::open_on(pg_dir.path(), &backend).unwrap();
            test(&store);
            assert!(store.file_of(&id("a")).is_none());
            // No instance file is written on PostgreSQL.
            assert!(!pg_dir.path().join("instances").exists());
        }
    }

    #[test]
    fn stale_revision_is_refused_and_nothing_is_lost() {
        on_both_backends(stale_revision_is_refused);
    }

    #[test]
    fn create_get_list_and_delete_behave_alike() {
        on_both_backends(|store| {
            assert!(matches!(store.get(&id("x")), Err(StoreError::NotFound(_))));
            let created = store.create(&id("x"), "sirene").unwrap();
            assert_eq!(
                (created.revision, created.enabled, created.plugin.as_str()),
                (1, false, "sirene")
            );
            assert!(matches!(
                store.create(&id("x"), "other"),
                Err(StoreError::Exists(_))
            ));
            let (again, fresh) = store.create_or_get(&id("x"), "sirene").unwrap();
            assert!(!fresh);
            assert_eq!(again, created);
            store.create(&id("b"), "p").unwrap();
            // Values, sealed secrets and the enabled flag come back as they were written.
            let changed = store
                .update::<StoreError>(&id("x"), None, |r| {
                    r.values.insert("siret".into(), json!("12345678901234"));
                    r.values
                        .insert("n".into(), json!({"a": [1, 2.5], "b": true}));
                    r.secrets.insert("token".into(), "v1:sealed-bytes".into());
                    r.enabled = true;
                    Ok(())
                })
                .unwrap();
            assert_eq!(changed.before, created);
            assert_eq!(changed.after.revision, 2);
            assert_eq!(store.get(&id("x")).unwrap(), changed.after);
            // A change that changes nothing keeps the revision.
            let same = store
                .update::<StoreError>(&id("x"), Some(2), |_| Ok(()))
                .unwrap();
            assert_eq!(same.after.revision, 2);
            // A refused change writes nothing.
            let refused = store.update::<StoreError>(&id("x"), None, |r| {
                r.enabled = false;
                Err(StoreError::NotFound(id("refused")))
            });
            assert!(refused.is_err());
            assert!(store.get(&id("x")).unwrap().enabled);
            let ids: Vec<String> = store
                .list()
                .unwrap()
                .iter()
                .map(|r| r.id.to_string())
                .collect();
            assert_eq!(ids, ["b", "x"]);
            assert!(matches!(
                store.delete(&id("x"), Some(1)),
                Err(StoreError::Stale {
                    expected: 1,
                    actual: 2,
                    ..
                })
            ));
            store.delete(&id("x"), Some(2)).unwrap();
            assert!(matches!(
                store.delete(&id("x"), None),
                Err(StoreError::NotFound(_))
            ));
            assert_eq!(store.list().unwrap().len(), 1);
        });
    }

    /// A change committed through one PostgreSQL connection is announced to every node
    /// listening, within a second.
    #[test]
    fn postgres_changes_are_announced_to_listeners() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("store_notify") else {
            return;
        };
        let mut rx = pg.subscribe(&[crate::storage::instances::CHANNEL]).unwrap();
        let backend = crate::storage::Backend::Postgres(pg);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_on(dir.path(), &backend).unwrap();
        // The LISTEN is asynchronous: change until one announcement arrives.
        let mut heard = None;
        for i in 0..50 {
            store.create(&id(&format!("n{i}")), "p").unwrap();
            let started = std::time::Instant::now();
            while heard.is_none() && started.elapsed() < std::time::Duration::from_millis(200) {
                heard = rx.try_recv().ok();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if heard.is_some() {
                break;
            }
        }
        let Some(crate::storage::postgres::Notice::Message { channel, payload }) = heard else {
            panic!("no announcement of a change: {heard:?}");
        };
        assert_eq!(channel, crate::storage::instances::CHANNEL);
        assert!(payload.starts_with('n'), "{payload}");
        // Announced within a second of the commit, for updates too.
        while rx.try_recv().is_ok() {}
        let started = std::time::Instant::now();
        store
            .update::<StoreError>(&id("n0"), None, |r| {
                r.enabled = true;
                Ok(())
            })
            .unwrap();
        loop {
            if let Ok(crate::storage::postgres::Notice::Message { payload, .. }) = rx.try_recv() {
                assert_eq!(payload, "n0");
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "the update was not announced within a second"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Two nodes (two connections to one database): a revision read on one node and stale
    /// on the other is refused there, and each sees the other's change at once.
    #[test]
    fn revisions_hold_across_two_postgres_nodes() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("store_nodes") else {
            return;
        };
        let url = crate::storage::DatabaseUrl::parse(&pg.url()).unwrap();
        let other = crate::storage::Pg::connect(&url, &[]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open_on(dir.path(), &crate::storage::Backend::Postgres(pg)).unwrap();
        let b = Store::open_on(dir.path(), &crate::storage::Backend::Postgres(other)).unwrap();
        a.create(&id("shared"), "p").unwrap();
        let read_on_b = b.get(&id("shared")).unwrap().revision;
        a.update::<StoreError>(&id("shared"), Some(read_on_b), |r| {
            r.values.insert("x".into(), json!("from a"));
            Ok(())
        })
        .unwrap();
        let refused = b.update::<StoreError>(&id("shared"), Some(read_on_b), |r| {
            r.values.insert("x".into(), json!("from b"));
            Ok(())
        });
        assert!(
            matches!(
                refused,
                Err(StoreError::Stale {
                    expected: 1,
                    actual: 2,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!(b.get(&id("shared")).unwrap().values["x"], json!("from a"));
        assert!(matches!(
            b.delete(&id("shared"), Some(read_on_b)),
            Err(StoreError::Stale { .. })
        ));
    }

    /// A change that reads the store while its row is locked (as the whole-configuration
    /// check does) does not exhaust the connection pool when more writers than connections
    /// come at once.
    #[test]
    fn more_writers_than_pooled_connections_that_read_while_changing_all_finish() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("store_pool") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_on(dir.path(), &crate::storage::Backend::Postgres(pg)).unwrap();
        store.create(&id("p"), "p").unwrap();
        let started = std::time::Instant::now();
        std::thread::scope(|s| {
            for t in 0..24 {
                let store = store.clone();
                s.spawn(move || {
                    store
                        .update::<StoreError>(&id("p"), None, |r| {
                            let others = store.list()?.len();
                            r.values.insert(format!("t{t}"), json!(others));
                            Ok(())
                        })
                        .unwrap();
                });
            }
        });
        assert_eq!(store.get(&id("p")).unwrap().revision, 25);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    fn stale_revision_is_refused(store: &Store) {
        let rec = store.create(&id("a"), "sirene").unwrap();
        assert_eq!(rec.revision, 1);
        let r2 = store
            .update::<StoreError>(&id("a"), Some(1), |r| {
                r.values.insert("x".into(), json!(1));
                Ok(())
            })
            .unwrap()
            .after;
        assert_eq!(r2.revision, 2);
        let stale = store.update::<StoreError>(&id("a"), Some(1), |r| {
            r.values.insert("x".into(), json!(2));
            Ok(())
        });
        assert!(matches!(stale, Err(StoreError::Stale { actual: 2, .. })));
        assert_eq!(store.get(&id("a")).unwrap().values["x"], json!(1));
    }

    #[test]
    fn corrupt_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("instances/b.toml"), "id = [").unwrap();
        let err = store.get(&id("b")).unwrap_err().to_string();
        assert!(
            err.contains("b.toml") && err.contains("not a valid instance file"),
            "{err}"
        );
    }

    #[test]
    fn concurrent_writers_do_not_lose_updates() {
        on_both_backends(concurrent_writers);
    }

    fn concurrent_writers(store: &Store) {
        store.create(&id("c"), "p").unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = store.clone();
                s.spawn(move || {
                    for i in 0..10 {
                        store
                            .update::<StoreError>(&id("c"), None, |r| {
                                r.values.insert(format!("f{t}_{i}"), json!(i));
                                Ok(())
                            })
                            .unwrap();
                    }
                });
            }
        });
        let rec = store.get(&id("c")).unwrap();
        assert_eq!(rec.values.len(), 40);
        assert_eq!(rec.revision, 41);
    }
}
