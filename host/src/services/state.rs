//! Per-instance persistent state for plugins, and the host's own records (last test
//! results, task runs and leases, daily request counts, shared OAuth2 tokens): one SQLite
//! database in the data directory with the embedded backend, or the same tables in
//! PostgreSQL ([`crate::storage::state`]) shared by every node of a cluster.
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
    #[error("state database: {0}")]
    Pg(#[from] crate::storage::PgError),
}

/// What [`StateDb::take_task`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The lease is this holder's until the given time.
    Taken,
    /// Another holder has a live lease: the task is running elsewhere.
    Held,
    /// A run started at this time (ms), after the asked bound: this due time is done.
    RanAt(i64),
}

#[derive(Debug)]
pub struct StateDb {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Sqlite(SqliteState),
    Postgres(crate::storage::state::PgState),
}

#[derive(Debug)]
struct SqliteState {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl StateDb {
    /// The state tables of a PostgreSQL database (created by its migrations).
    pub fn postgres(pg: std::sync::Arc<crate::storage::Pg>) -> Self {
        StateDb {
            inner: Inner::Postgres(crate::storage::state::PgState::new(pg)),
        }
    }

    /// The embedded state database at `path`, or the backend's tables.
    pub fn open_on(path: &Path, backend: &crate::storage::Backend) -> Result<Self, StateError> {
        match backend.pg() {
            Some(pg) => Ok(Self::postgres(pg.clone())),
            None => Self::open(path),
        }
    }

    /// Whether the tables are shared by the nodes of a cluster (PostgreSQL).
    pub fn is_clustered(&self) -> bool {
        matches!(self.inner, Inner::Postgres(_))
    }

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
            inner: Inner::Sqlite(SqliteState {
                path: path.to_owned(),
                conn: Mutex::new(conn),
            }),
        })
    }
}

/// The embedded implementation; [`StateDb`] documents each method.
impl SqliteState {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StateError> {
        let conn = self.conn.lock().map_err(|_| StateError::Poisoned)?;
        f(&conn).map_err(|source| StateError::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// A sealed OAuth2 token shared between processes, with the time it stops being reused.
    fn shared_token(&self, key: &str) -> Result<Option<(String, i64)>, StateError> {
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
    fn put_shared_token(&self, key: &str, sealed: &str, until_ms: i64) -> Result<(), StateError> {
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

    fn get(&self, instance: &str, key: &str) -> Result<Option<Value>, StateError> {
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

    fn put(&self, instance: &str, key: &str, value: &Value) -> Result<(), StateError> {
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

    fn delete(&self, instance: &str, key: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM plugin_state WHERE instance = ?1 AND key = ?2",
                params![instance, key],
            )
            .map(|_| ())
        })
    }

    fn list(&self, instance: &str, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
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
    fn day_count(&self, instance: &str, day: &str) -> Result<u64, StateError> {
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

    fn count_request(&self, instance: &str, day: &str, cap: i64) -> Result<bool, StateError> {
        self.with(|c| {
            let counted = c.execute(
                "INSERT INTO request_counts (instance, day, count) SELECT ?1, ?2, 1 WHERE ?3 > 0
                 ON CONFLICT (instance, day) DO UPDATE SET count = count + 1 WHERE count < ?3",
                params![instance, day, cap],
            )?;
            c.execute(
                "DELETE FROM request_counts WHERE instance = ?1 AND day < ?2",
                params![instance, day],
            )?;
            Ok(counted > 0)
        })
    }

    /// Takes the lease of a task run until `until_ms`, unless another holder has a live one.
    /// This is what keeps two runs of one task apart, across processes too. A lease whose
    /// holder (`<pid>:…`) is a process that no longer exists is taken over at once: a killed
    /// `passerelle tasks run` must not block the task until its lease expires (30 min).
    fn take_task(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
        until_ms: i64,
        ran_since: Option<i64>,
    ) -> Result<LeaseOutcome, StateError> {
        let now = now_ms();
        let taken = |yes: bool| {
            if yes {
                LeaseOutcome::Taken
            } else {
                LeaseOutcome::Held
            }
        };
        self.with(|c| {
            if let Some(since) = ran_since {
                let last: Option<i64> = c
                    .query_row(
                        "SELECT started_ms FROM task_runs WHERE instance = ?1 AND task = ?2 AND started_ms > ?3",
                        params![instance, task, since],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(last) = last {
                    return Ok(LeaseOutcome::RanAt(last));
                }
            }
            let changed = c.execute(
                "INSERT INTO task_leases (instance, task, holder, until_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (instance, task) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
                 WHERE task_leases.until_ms < ?5 OR task_leases.holder = excluded.holder",
                params![instance, task, holder, until_ms, now],
            )?;
            if changed > 0 {
                return Ok(LeaseOutcome::Taken);
            }
            let current: Option<String> = c
                .query_row(
                    "SELECT holder FROM task_leases WHERE instance = ?1 AND task = ?2",
                    params![instance, task],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(current) = current.filter(|h| holder_is_gone(h)) else {
                return Ok(LeaseOutcome::Held);
            };
            // Compare and swap: only the dead holder's lease is replaced.
            let taken_rows = c.execute(
                "UPDATE task_leases SET holder = ?3, until_ms = ?4
                 WHERE instance = ?1 AND task = ?2 AND holder = ?5",
                params![instance, task, holder, until_ms, current],
            )?;
            if taken_rows > 0 {
                tracing::warn!(instance, task, previous = %current, "took over the lease of a task run whose process is gone");
            }
            Ok(taken(taken_rows > 0))
        })
    }

    fn renew_lease(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<bool, StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE task_leases SET until_ms = ?4 WHERE instance = ?1 AND task = ?2 AND holder = ?3",
                params![instance, task, holder, until_ms],
            )
            .map(|n| n > 0)
        })
    }

    fn release_lease(&self, instance: &str, task: &str, holder: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM task_leases WHERE instance = ?1 AND task = ?2 AND holder = ?3",
                params![instance, task, holder],
            )
            .map(|_| ())
        })
    }

    /// Records the last run of a task.
    fn record_task_run(&self, run: &TaskRun) -> Result<(), StateError> {
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
    fn record_next_run(&self, instance: &str, task: &str, next_ms: i64) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE task_runs SET next_ms = ?3 WHERE instance = ?1 AND task = ?2",
                params![instance, task, next_ms],
            )
            .map(|_| ())
        })
    }

    fn last_task_run(&self, instance: &str, task: &str) -> Result<Option<TaskRun>, StateError> {
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
    fn forget_instance(&self, instance: &str) -> Result<(), StateError> {
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

    fn record_test(&self, instance: &str, at_ms: u64, report: &Value) -> Result<(), StateError> {
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
    fn last_test(&self, instance: &str) -> Result<Option<(u64, Value)>, StateError> {
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

impl StateDb {
    /// A sealed OAuth2 token shared between processes, with the time it stops being reused.
    pub fn shared_token(&self, key: &str) -> Result<Option<(String, i64)>, StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.shared_token(key),
            Inner::Postgres(p) => Ok(p.shared_token(key)?),
        }
    }

    /// Shares a sealed OAuth2 token; expired ones are dropped on the way.
    pub fn put_shared_token(
        &self,
        key: &str,
        sealed: &str,
        until_ms: i64,
    ) -> Result<(), StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.put_shared_token(key, sealed, until_ms),
            Inner::Postgres(p) => Ok(p.put_shared_token(key, sealed, until_ms)?),
        }
    }

    pub fn get(&self, instance: &str, key: &str) -> Result<Option<Value>, StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.get(instance, key),
            Inner::Postgres(p) => Ok(p
                .get(instance, key)?
                .and_then(|t| serde_json::from_str(&t).ok())),
        }
    }

    pub fn put(&self, instance: &str, key: &str, value: &Value) -> Result<(), StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.put(instance, key, value),
            Inner::Postgres(p) => Ok(p.put(instance, key, &value.to_string(), now_ms())?),
        }
    }

    pub fn delete(&self, instance: &str, key: &str) -> Result<(), StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.delete(instance, key),
            Inner::Postgres(p) => Ok(p.delete(instance, key)?),
        }
    }

    /// The keys of an instance starting with `prefix`, in byte order, with their values.
    pub fn list(&self, instance: &str, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.list(instance, prefix),
            Inner::Postgres(p) => Ok(p
                .list(instance, prefix)?
                .into_iter()
                .map(|(k, v)| (k, serde_json::from_str(&v).unwrap_or(Value::Null)))
                .collect()),
        }
    }

    /// Requests counted for an instance on a day (`YYYY-MM-DD`, UTC).
    pub fn day_count(&self, instance: &str, day: &str) -> Result<u64, StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.day_count(instance, day),
            Inner::Postgres(p) => Ok(p
                .day_count(instance, day)?
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0)),
        }
    }

    /// Counts one request; older days are dropped on the way.
    pub fn count_request(&self, instance: &str, day: &str) -> Result<(), StateError> {
        self.count_request_within(instance, day, u64::MAX)
            .map(|_| ())
    }

    /// Counts one request unless `cap` requests are counted already that day, in one
    /// statement (so processes and nodes counting at once never pass the cap together):
    /// whether it was counted. Older days are dropped on the way.
    pub fn count_request_within(
        &self,
        instance: &str,
        day: &str,
        cap: u64,
    ) -> Result<bool, StateError> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        match &self.inner {
            Inner::Sqlite(s) => s.count_request(instance, day, cap),
            Inner::Postgres(p) => Ok(p.count_request(instance, day, cap)?),
        }
    }

    /// Takes the lease of a task run until `until_ms`, unless another holder has a live one.
    /// This is what keeps two runs of one task apart, across processes and nodes. With the
    /// embedded backend, a lease whose holder (`<pid>:…`) is a process of this machine that no
    /// longer exists is taken over at once; on PostgreSQL (several machines) leases are short,
    /// renewed while the task runs ([`StateDb::renew_lease`]) and simply expire.
    pub fn take_lease(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<bool, StateError> {
        Ok(self.take_task(instance, task, holder, until_ms, None)? == LeaseOutcome::Taken)
    }

    /// [`StateDb::take_lease`] for one due time of a scheduled task: when a run of the task
    /// started after `ran_since` (ms), on any node, this due time is done and the lease is not
    /// taken ([`LeaseOutcome::RanAt`]). Checked and taken atomically.
    pub fn take_task(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
        until_ms: i64,
        ran_since: Option<i64>,
    ) -> Result<LeaseOutcome, StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.take_task(instance, task, holder, until_ms, ran_since),
            Inner::Postgres(p) => {
                Ok(p.take_task(instance, task, holder, until_ms, now_ms(), ran_since)?)
            }
        }
    }

    /// Extends the lease `holder` has: `false` when it is not (or no longer) its.
    pub fn renew_lease(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<bool, StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.renew_lease(instance, task, holder, until_ms),
            Inner::Postgres(p) => Ok(p.renew_lease(instance, task, holder, until_ms)?),
        }
    }

    pub fn release_lease(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
    ) -> Result<(), StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.release_lease(instance, task, holder),
            Inner::Postgres(p) => Ok(p.release_lease(instance, task, holder)?),
        }
    }

    /// Records the last run of a task.
    pub fn record_task_run(&self, run: &TaskRun) -> Result<(), StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.record_task_run(run),
            Inner::Postgres(p) => Ok(p.record_task_run(run)?),
        }
    }

    /// Records when the scheduler will next run a task.
    pub fn record_next_run(
        &self,
        instance: &str,
        task: &str,
        next_ms: i64,
    ) -> Result<(), StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.record_next_run(instance, task, next_ms),
            Inner::Postgres(p) => Ok(p.record_next_run(instance, task, next_ms)?),
        }
    }

    pub fn last_task_run(&self, instance: &str, task: &str) -> Result<Option<TaskRun>, StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.last_task_run(instance, task),
            Inner::Postgres(p) => Ok(p.last_task_run(instance, task)?),
        }
    }

    /// Removes everything an instance stored (when the instance is deleted).
    pub fn forget_instance(&self, instance: &str) -> Result<(), StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.forget_instance(instance),
            Inner::Postgres(p) => Ok(p.forget_instance(instance)?),
        }
    }

    pub fn record_test(
        &self,
        instance: &str,
        at_ms: u64,
        report: &Value,
    ) -> Result<(), StateError> {
        match &self.inner {
            Inner::Sqlite(s) => s.record_test(instance, at_ms, report),
            Inner::Postgres(p) => Ok(p.record_test(
                instance,
                i64::try_from(at_ms).unwrap_or(i64::MAX),
                &report.to_string(),
            )?),
        }
    }

    /// The last test result of an instance: when (ms since epoch) and the report.
    pub fn last_test(&self, instance: &str) -> Result<Option<(u64, Value)>, StateError> {
        let row = match &self.inner {
            Inner::Sqlite(s) => return s.last_test(instance),
            Inner::Postgres(p) => p.last_test(instance)?,
        };
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
        let Inner::Sqlite(db) = &db.inner else {
            unreachable!("opened as SQLite")
        };
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

    /// The embedded database and, when a test server is there, a PostgreSQL one: each
    /// behaviour below runs on both.
    fn backends(prefix: &str) -> (Vec<StateDb>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut dbs = vec![StateDb::open(&dir.path().join("state.sqlite3")).unwrap()];
        if let Some(pg) = crate::storage::postgres::scratch_for_tests(prefix) {
            dbs.push(StateDb::postgres(pg));
        }
        (dbs, dir)
    }

    #[test]
    fn every_record_reads_back_the_same_on_both_backends() {
        let (dbs, _dir) = backends("state_records");
        for db in &dbs {
            let name = if db.is_clustered() {
                "postgres"
            } else {
                "sqlite"
            };
            db.put("a", "tx/1", &json!({"status": "ready"})).unwrap();
            db.put("a", "tx/1", &json!({"status": "sent"})).unwrap();
            db.put("a", "tx/2", &json!(2)).unwrap();
            db.put("a", "tx%/_", &json!("odd")).unwrap();
            db.put("a", "ty/1", &json!(null)).unwrap();
            db.put("b", "tx/1", &json!("other")).unwrap();
            assert_eq!(
                db.get("a", "tx/1").unwrap(),
                Some(json!({"status": "sent"})),
                "{name}"
            );
            assert_eq!(db.get("a", "nope").unwrap(), None, "{name}");
            let keys: Vec<String> = db
                .list("a", "tx")
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            assert_eq!(
                keys,
                ["tx%/_", "tx/1", "tx/2"],
                "{name}: byte order, prefix taken literally"
            );
            assert_eq!(db.list("a", "tx%").unwrap().len(), 1, "{name}");
            db.delete("a", "tx/2").unwrap();
            assert_eq!(db.get("a", "tx/2").unwrap(), None, "{name}");

            // Daily counts: older days dropped; the cap holds.
            db.count_request("a", "2026-01-01").unwrap();
            db.count_request("a", "2026-01-02").unwrap();
            assert_eq!(db.day_count("a", "2026-01-01").unwrap(), 0, "{name}");
            assert!(
                db.count_request_within("a", "2026-01-02", 2).unwrap(),
                "{name}"
            );
            assert!(
                !db.count_request_within("a", "2026-01-02", 2).unwrap(),
                "{name}"
            );
            assert_eq!(db.day_count("a", "2026-01-02").unwrap(), 2, "{name}");
            assert!(
                !db.count_request_within("c", "2026-01-02", 0).unwrap(),
                "{name}"
            );

            // Sealed tokens: upsert, expired ones dropped on the next share.
            db.put_shared_token("k1", "sealed-1", 1).unwrap();
            db.put_shared_token("k2", "sealed-2", now_ms() + 60_000)
                .unwrap();
            db.put_shared_token("k2", "sealed-3", now_ms() + 90_000)
                .unwrap();
            assert_eq!(db.shared_token("k1").unwrap(), None, "{name}");
            assert_eq!(
                db.shared_token("k2").unwrap().unwrap().0,
                "sealed-3",
                "{name}"
            );

            // Task runs: next_ms kept when a run does not say.
            let mut run = TaskRun {
                instance: "a".into(),
                task: "poll".into(),
                started_ms: 10,
                duration_ms: 5,
                ok: true,
                summary: "3 updated".into(),
                next_ms: Some(100),
            };
            db.record_task_run(&run).unwrap();
            run.next_ms = None;
            run.ok = false;
            db.record_task_run(&run).unwrap();
            db.record_next_run("a", "poll", 200).unwrap();
            let last = db.last_task_run("a", "poll").unwrap().unwrap();
            assert_eq!((last.ok, last.next_ms), (false, Some(200)), "{name}");

            db.record_test("a", 42, &json!({"status": "ok"})).unwrap();
            assert_eq!(
                db.last_test("a").unwrap(),
                Some((42, json!({"status": "ok"}))),
                "{name}"
            );

            db.forget_instance("a").unwrap();
            assert!(db.list("a", "").unwrap().is_empty(), "{name}");
            assert_eq!(db.last_test("a").unwrap(), None, "{name}");
            assert_eq!(db.last_task_run("a", "poll").unwrap(), None, "{name}");
            assert_eq!(db.get("b", "tx/1").unwrap(), Some(json!("other")), "{name}");
        }
    }

    #[test]
    fn leases_keep_runs_apart_expire_and_mark_a_due_time_done_on_both_backends() {
        let (dbs, _dir) = backends("state_leases");
        for db in &dbs {
            let name = if db.is_clustered() {
                "postgres"
            } else {
                "sqlite"
            };
            let far = now_ms() + 60_000;
            let (a, b) = ("1:ThreadId(1):node-a", "1:ThreadId(1):node-b");
            assert!(db.take_lease("i", "t", a, far).unwrap(), "{name}");
            assert!(
                !db.take_lease("i", "t", b, far).unwrap(),
                "{name}: held by a"
            );
            assert!(db.take_lease("i", "t", a, far).unwrap(), "{name}: a again");
            assert!(db.renew_lease("i", "t", a, now_ms() - 1).unwrap(), "{name}");
            assert!(
                !db.renew_lease("i", "t", b, far).unwrap(),
                "{name}: not b's"
            );
            // a's lease has expired (its node died without renewing it): b takes over.
            assert_eq!(
                db.take_task("i", "t", b, far, None).unwrap(),
                LeaseOutcome::Taken,
                "{name}"
            );
            assert!(
                !db.renew_lease("i", "t", a, far).unwrap(),
                "{name}: a lost it"
            );
            // b's run is recorded, then its lease released: that due time is done for a.
            let started = now_ms() - 10;
            db.record_task_run(&TaskRun {
                instance: "i".into(),
                task: "t".into(),
                started_ms: started,
                duration_ms: 10,
                ok: true,
                summary: String::new(),
                next_ms: None,
            })
            .unwrap();
            db.release_lease("i", "t", b).unwrap();
            assert_eq!(
                db.take_task("i", "t", a, far, Some(started - 1_000))
                    .unwrap(),
                LeaseOutcome::RanAt(started),
                "{name}"
            );
            // The next due time (the run is older than the bound) is a's to take.
            assert_eq!(
                db.take_task("i", "t", a, far, Some(started)).unwrap(),
                LeaseOutcome::Taken,
                "{name}"
            );
        }
    }

    #[test]
    fn contenders_at_once_take_one_lease_and_never_pass_a_daily_cap_on_both_backends() {
        let (dbs, _dir) = backends("state_race");
        for db in dbs {
            let db = std::sync::Arc::new(db);
            let threads: Vec<_> = (0..8)
                .map(|n| {
                    let db = db.clone();
                    std::thread::spawn(move || {
                        let holder = format!("{}:ThreadId({n}):node-{n}", std::process::id());
                        let took = db
                            .take_task("i", "t", &holder, now_ms() + 60_000, Some(0))
                            .unwrap()
                            == LeaseOutcome::Taken;
                        let counted = (0..5)
                            .filter(|_| db.count_request_within("i", "2026-02-02", 12).unwrap())
                            .count();
                        (took, counted)
                    })
                })
                .collect();
            let results: Vec<(bool, usize)> =
                threads.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(results.iter().filter(|(took, _)| *took).count(), 1);
            assert_eq!(results.iter().map(|(_, n)| n).sum::<usize>(), 12);
            assert_eq!(db.day_count("i", "2026-02-02").unwrap(), 12);
        }
    }
}
