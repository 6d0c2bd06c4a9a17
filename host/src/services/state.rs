//! Per-instance persistent state for plugins, and the host's own records (last test
//! results), in one SQLite database in the data directory.
//!
//! Each plugin call touches its own instance's keys only: the instance id is part of every
//! query and comes from the host, never from the plugin. Writes are transactional.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the state database lock was poisoned by a crash; restart the host")]
    Poisoned,
}

#[derive(Debug)]
pub struct StateDb {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl StateDb {
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let err = |source| StateError::Db {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = crate::datadir::create_private_dir_all(dir);
        }
        // Plugin state holds cached OAuth tokens and provider records: owner only.
        crate::store::prepare_private_database(path);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        // WAL with synchronous=FULL: each commit is fsync-ed before it returns. NORMAL
        // survives a killed process but may lose the last commits on a power cut or a
        // kernel crash, and what plugins store here (an invoice number already submitted,
        // a signature request already sent) must not be forgotten once acknowledged: the
        // plugin would send it twice.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS plugin_state (
                 instance TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                 updated_ms INTEGER NOT NULL, PRIMARY KEY (instance, key));
             CREATE TABLE IF NOT EXISTS request_counts (
                 instance TEXT NOT NULL, day TEXT NOT NULL, count INTEGER NOT NULL,
                 PRIMARY KEY (instance, day));
             CREATE TABLE IF NOT EXISTS task_runs (
                 instance TEXT NOT NULL, task TEXT NOT NULL, started_ms INTEGER NOT NULL,
                 duration_ms INTEGER NOT NULL, ok INTEGER NOT NULL, summary TEXT NOT NULL,
                 next_ms INTEGER, PRIMARY KEY (instance, task));
             CREATE TABLE IF NOT EXISTS task_leases (
                 instance TEXT NOT NULL, task TEXT NOT NULL, holder TEXT NOT NULL,
                 until_ms INTEGER NOT NULL, PRIMARY KEY (instance, task));
             CREATE TABLE IF NOT EXISTS oauth2_tokens (
                 key TEXT PRIMARY KEY, sealed TEXT NOT NULL, until_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS test_results (
                 instance TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, report TEXT NOT NULL);",
        )
        .map_err(err)?;
        Ok(StateDb {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StateError> {
        let conn = self.conn.lock().map_err(|_| StateError::Poisoned)?;
        f(&conn).map_err(|source| StateError::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// A sealed OAuth2 token shared between processes, with the time it stops being reused.
    pub fn shared_token(&self, key: &str) -> Result<Option<(String, i64)>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT sealed, until_ms FROM oauth2_tokens WHERE key = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
    }

    /// Shares a sealed OAuth2 token; expired ones are dropped on the way.
    pub fn put_shared_token(
        &self,
        key: &str,
        sealed: &str,
        until_ms: i64,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM oauth2_tokens WHERE until_ms < ?1",
                params![now_ms()],
            )?;
            c.execute(
                "INSERT INTO oauth2_tokens (key, sealed, until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET sealed = excluded.sealed, until_ms = excluded.until_ms",
                params![key, sealed, until_ms],
            )
            .map(|_| ())
        })
    }

    pub fn get(&self, instance: &str, key: &str) -> Result<Option<Value>, StateError> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT value FROM plugin_state WHERE instance = ?1 AND key = ?2",
                params![instance, key],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    pub fn put(&self, instance: &str, key: &str, value: &Value) -> Result<(), StateError> {
        let text = value.to_string();
        self.with(|c| {
            c.execute(
                "INSERT INTO plugin_state (instance, key, value, updated_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (instance, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                params![instance, key, text, now_ms()],
            )
            .map(|_| ())
        })
    }

    pub fn delete(&self, instance: &str, key: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM plugin_state WHERE instance = ?1 AND key = ?2",
                params![instance, key],
            )
            .map(|_| ())
        })
    }

    pub fn list(&self, instance: &str, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT key, value FROM plugin_state WHERE instance = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
            )?;
            let rows = stmt.query_map(params![instance, prefix], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (k, v) = row?;
                out.push((k, serde_json::from_str(&v).unwrap_or(Value::Null)));
            }
            Ok(out)
        })
    }

    /// Requests counted for an instance on a day (`YYYY-MM-DD`, UTC).
    pub fn day_count(&self, instance: &str, day: &str) -> Result<u64, StateError> {
        let n: Option<i64> = self.with(|c| {
            c.query_row(
                "SELECT count FROM request_counts WHERE instance = ?1 AND day = ?2",
                params![instance, day],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// Counts one request; older days are dropped on the way.
    pub fn count_request(&self, instance: &str, day: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO request_counts (instance, day, count) VALUES (?1, ?2, 1)
                 ON CONFLICT (instance, day) DO UPDATE SET count = count + 1",
                params![instance, day],
            )?;
            c.execute(
                "DELETE FROM request_counts WHERE instance = ?1 AND day < ?2",
                params![instance, day],
            )?;
            Ok(())
        })
    }

    /// Takes the lease of a task run until `until_ms`, unless another holder has a live one.
    /// This is what keeps two runs of one task apart, across processes too. A lease whose
    /// holder (`<pid>:…`) is a process that no longer exists is taken over at once: a killed
    /// `passerelle tasks run` must not block the task until its lease expires (30 min).
    pub fn take_lease(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<bool, StateError> {
        let now = now_ms();
        self.with(|c| {
            let changed = c.execute(
                "INSERT INTO task_leases (instance, task, holder, until_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (instance, task) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
                 WHERE task_leases.until_ms < ?5 OR task_leases.holder = excluded.holder",
                params![instance, task, holder, until_ms, now],
            )?;
            if changed > 0 {
                return Ok(true);
            }
            let current: Option<String> = c
                .query_row(
                    "SELECT holder FROM task_leases WHERE instance = ?1 AND task = ?2",
                    params![instance, task],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(current) = current.filter(|h| holder_is_gone(h)) else {
                return Ok(false);
            };
            // Compare and swap: only the dead holder's lease is replaced.
            let taken = c.execute(
                "UPDATE task_leases SET holder = ?3, until_ms = ?4
                 WHERE instance = ?1 AND task = ?2 AND holder = ?5",
                params![instance, task, holder, until_ms, current],
            )?;
            if taken > 0 {
                tracing::warn!(instance, task, previous = %current, "took over the lease of a task run whose process is gone");
            }
            Ok(taken > 0)
        })
    }

    pub fn release_lease(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM task_leases WHERE instance = ?1 AND task = ?2 AND holder = ?3",
                params![instance, task, holder],
            )
            .map(|_| ())
        })
    }

    /// Records the last run of a task.
    pub fn record_task_run(&self, run: &TaskRun) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO task_runs (instance, task, started_ms, duration_ms, ok, summary, next_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (instance, task) DO UPDATE SET started_ms = excluded.started_ms,
                   duration_ms = excluded.duration_ms, ok = excluded.ok, summary = excluded.summary,
                   next_ms = COALESCE(excluded.next_ms, task_runs.next_ms)",
                params![run.instance, run.task, run.started_ms, run.duration_ms, run.ok, run.summary, run.next_ms],
            )
            .map(|_| ())
        })
    }

    /// Records when the scheduler will next run a task.
    pub fn record_next_run(
        &self,
        instance: &str,
        task: &str,
        next_ms: i64,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE task_runs SET next_ms = ?3 WHERE instance = ?1 AND task = ?2",
                params![instance, task, next_ms],
            )
            .map(|_| ())
        })
    }

    pub fn last_task_run(&self, instance: &str, task: &str) -> Result<Option<TaskRun>, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT instance, task, started_ms, duration_ms, ok, summary, next_ms FROM task_runs WHERE instance = ?1 AND task = ?2",
                params![instance, task],
                |r| {
                    Ok(TaskRun {
                        instance: r.get(0)?,
                        task: r.get(1)?,
                        started_ms: r.get(2)?,
                        duration_ms: r.get(3)?,
                        ok: r.get(4)?,
                        summary: r.get(5)?,
                        next_ms: r.get(6)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Removes everything an instance stored (when the instance is deleted).
    pub fn forget_instance(&self, instance: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM task_runs WHERE instance = ?1",
                params![instance],
            )?;
            c.execute(
                "DELETE FROM request_counts WHERE instance = ?1",
                params![instance],
            )?;
            c.execute(
                "DELETE FROM plugin_state WHERE instance = ?1",
                params![instance],
            )?;
            c.execute(
                "DELETE FROM test_results WHERE instance = ?1",
                params![instance],
            )?;
            Ok(())
        })
    }

    pub fn record_test(
        &self,
        instance: &str,
        at_ms: u64,
        report: &Value,
    ) -> Result<(), StateError> {
        let text = report.to_string();
        self.with(|c| {
            c.execute(
                "INSERT INTO test_results (instance, at_ms, report) VALUES (?1, ?2, ?3)
                 ON CONFLICT (instance) DO UPDATE SET at_ms = excluded.at_ms, report = excluded.report",
                params![instance, at_ms as i64, text],
            )
            .map(|_| ())
        })
    }

    /// The last test result of an instance: when (ms since epoch) and the report.
    pub fn last_test(&self, instance: &str) -> Result<Option<(u64, Value)>, StateError> {
        let row: Option<(i64, String)> = self.with(|c| {
            c.query_row(
                "SELECT at_ms, report FROM test_results WHERE instance = ?1",
                params![instance],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        Ok(row.and_then(|(at, text)| {
            serde_json::from_str(&text)
                .ok()
                .map(|v| (u64::try_from(at).unwrap_or(0), v))
        }))
    }
}

/// The last run of a scheduled task.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskRun {
    pub instance: String,
    pub task: String,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub ok: bool,
    pub summary: String,
    /// When the scheduler plans the next run, if a server is running it.
    pub next_ms: Option<i64>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether a lease holder (`<pid>:<thread>`) names a process of this machine that no longer
/// runs. Unknown shapes count as alive: their lease then simply expires.
fn holder_is_gone(holder: &str) -> bool {
    let Some(pid) = holder
        .split(':')
        .next()
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        return false;
    };
    if pid == i32::try_from(std::process::id()).unwrap_or(0) {
        return false;
    }
    process_is_gone(pid)
}

/// Whether no process with this id runs on this machine (a positive id only).
#[cfg(unix)]
pub(crate) fn process_is_gone(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[cfg(not(unix))]
pub(crate) fn process_is_gone(_pid: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Regression (found by the AFNOR kill test): a killed `tasks run` kept its task's lease
    /// for the whole task deadline, so the next run was refused as "already running".
    #[cfg(unix)]
    #[test]
    fn the_lease_of_a_killed_process_is_taken_over_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.db")).unwrap();
        let far = now_ms() + 3_600_000;
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert!(db
            .take_lease("i", "t", &format!("{dead}:ThreadId(3)"), far)
            .unwrap());
        // The holder's process is gone: taken over at once, not in an hour.
        assert!(db.take_lease("i", "t", "1:ThreadId(1)", far).unwrap());
        // pid 1 lives: its lease holds until it expires.
        assert!(!db
            .take_lease(
                "i",
                "t",
                &format!("{}:ThreadId(9)", std::process::id()),
                far
            )
            .unwrap());
        // A live holder of this very process is not "gone" either.
        db.release_lease("i", "t", "1:ThreadId(1)").unwrap();
        let me = format!("{}:ThreadId(2)", std::process::id());
        assert!(db.take_lease("i", "t", &me, far).unwrap());
        assert!(!db
            .take_lease(
                "i",
                "t",
                &format!("{}:ThreadId(5)", std::process::id()),
                far
            )
            .unwrap());
    }

    /// Regression (security review): state.sqlite3 was created 0644.
    #[cfg(unix)]
    #[test]
    fn the_state_database_is_private_and_an_old_one_is_fixed() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let db = StateDb::open(&path).unwrap();
        db.put("i", "k", &serde_json::json!(1)).unwrap();
        assert_eq!(mode(&path), 0o600);
        let wal = dir.path().join("state.sqlite3-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600);
        }
        drop(db);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        StateDb::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    /// Issue 19: an acknowledged write must survive a power cut, not only a killed process.
    #[test]
    fn commits_are_synced_before_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.sqlite3")).unwrap();
        let (journal, synchronous): (String, i64) = db
            .with(|c| {
                Ok((
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "synchronous is not FULL");
    }

    #[test]
    fn state_is_per_instance_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        {
            let db = StateDb::open(&path).unwrap();
            db.put("a", "tx/1", &json!({"status": "ready"})).unwrap();
            db.put("a", "tx/2", &json!(2)).unwrap();
            db.put("b", "tx/1", &json!("other")).unwrap();
        }
        let db = StateDb::open(&path).unwrap();
        assert_eq!(
            db.get("a", "tx/1").unwrap(),
            Some(json!({"status": "ready"}))
        );
        assert_eq!(db.list("a", "tx/").unwrap().len(), 2);
        assert_eq!(
            db.list("b", "").unwrap(),
            vec![("tx/1".to_owned(), json!("other"))]
        );
        db.delete("a", "tx/1").unwrap();
        assert_eq!(db.get("a", "tx/1").unwrap(), None);
    }
}
