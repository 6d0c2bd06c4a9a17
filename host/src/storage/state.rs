//! The state database ([`crate::services::state::StateDb`]) on PostgreSQL: plugin state,
//! daily request counts, task runs and leases, shared OAuth2 tokens and test results, one set
//! of tables for every node of a cluster.
//!
//! The methods mirror the SQLite ones statement for statement (same upserts, same "older days
//! are dropped on the way"), so both backends answer alike. Where SQLite relies on one writer
//! at a time, the task lease is taken in a transaction under a transaction-scoped advisory lock
//! of the task, so that two nodes due at once cannot both start it. Across machines a process
//! id says nothing, so a lease is never taken over because its holder "looks dead": nodes keep
//! leases short and renew them while the task runs, and a dead node's lease simply expires.

use super::{Pg, PgError};
use crate::services::state::{LeaseOutcome, TaskRun};
use std::path::Path;
use std::sync::Arc;

/// The state tables of one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgState {
    pg: Arc<Pg>,
}

/// Owned copies of string arguments, for the `'static` futures [`Pg::run`] wants.
fn own(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

impl PgState {
    pub fn new(pg: Arc<Pg>) -> Self {
        PgState { pg }
    }

    /// Runs one statement with owned text parameters `texts` then `ints`, returning the rows
    /// changed.
    fn execute(&self, sql: &'static str, texts: &[&str], ints: Vec<i64>) -> Result<u64, PgError> {
        let texts = own(texts);
        self.pg.run(move |pool| async move {
            let client = pool.get().await?;
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
            for t in &texts {
                params.push(t);
            }
            for i in &ints {
                params.push(i);
            }
            Ok(client.execute(sql, &params).await?)
        })
    }

    pub fn shared_token(&self, key: &str) -> Result<Option<(String, i64)>, PgError> {
        let key = key.to_owned();
        self.pg.run(move |pool| async move {
            let row = pool
                .get()
                .await?
                .query_opt(
                    "SELECT sealed, until_ms FROM oauth2_tokens WHERE key = $1",
                    &[&key],
                )
                .await?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    pub fn put_shared_token(&self, key: &str, sealed: &str, until_ms: i64) -> Result<(), PgError> {
        let (key, sealed) = (key.to_owned(), sealed.to_owned());
        let now = crate::services::state::now_ms();
        self.pg.run(move |pool| async move {
            let client = pool.get().await?;
            client
                .execute("DELETE FROM oauth2_tokens WHERE until_ms < $1", &[&now])
                .await?;
            client
                .execute(
                    "INSERT INTO oauth2_tokens (key, sealed, until_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET sealed = excluded.sealed, until_ms = excluded.until_ms",
                    &[&key, &sealed, &until_ms],
                )
                .await?;
            Ok(())
        })
    }

    pub fn get(&self, instance: &str, key: &str) -> Result<Option<String>, PgError> {
        let (instance, key) = (instance.to_owned(), key.to_owned());
        self.pg.run(move |pool| async move {
            let row = pool
                .get()
                .await?
                .query_opt(
                    "SELECT value FROM plugin_state WHERE instance = $1 AND key = $2",
                    &[&instance, &key],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    pub fn put(&self, instance: &str, key: &str, value: &str, now_ms: i64) -> Result<(), PgError> {
        self.execute(
            "INSERT INTO plugin_state (instance, key, value, updated_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (instance, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
            &[instance, key, value],
            vec![now_ms],
        )
        .map(|_| ())
    }

    pub fn delete(&self, instance: &str, key: &str) -> Result<(), PgError> {
        self.execute(
            "DELETE FROM plugin_state WHERE instance = $1 AND key = $2",
            &[instance, key],
            vec![],
        )
        .map(|_| ())
    }

    pub fn list(&self, instance: &str, prefix: &str) -> Result<Vec<(String, String)>, PgError> {
        let (instance, prefix) = (instance.to_owned(), prefix.to_owned());
        self.pg.run(move |pool| async move {
            // `starts_with`, not LIKE: a prefix may hold `%` or `_`.
            let rows = pool
                .get()
                .await?
                .query(
                    "SELECT key, value FROM plugin_state
                     WHERE instance = $1 AND starts_with(key, $2) ORDER BY key COLLATE \"C\"",
                    &[&instance, &prefix],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    pub fn day_count(&self, instance: &str, day: &str) -> Result<Option<i64>, PgError> {
        let (instance, day) = (instance.to_owned(), day.to_owned());
        self.pg.run(move |pool| async move {
            let row = pool
                .get()
                .await?
                .query_opt(
                    "SELECT count FROM request_counts WHERE instance = $1 AND day = $2",
                    &[&instance, &day],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Counts one request unless `cap` are counted already (one statement, so nodes counting
    /// at once never pass the cap together); older days are dropped on the way.
    pub fn count_request(&self, instance: &str, day: &str, cap: i64) -> Result<bool, PgError> {
        let (instance, day) = (instance.to_owned(), day.to_owned());
        self.pg.run(move |pool| async move {
            let client = pool.get().await?;
            let counted = client
                .execute(
                    "INSERT INTO request_counts (instance, day, count) SELECT $1, $2, 1 WHERE $3::BIGINT > 0
                     ON CONFLICT (instance, day) DO UPDATE SET count = request_counts.count + 1
                     WHERE request_counts.count < $3::BIGINT",
                    &[&instance, &day, &cap],
                )
                .await?;
            client
                .execute(
                    "DELETE FROM request_counts WHERE instance = $1 AND day < $2",
                    &[&instance, &day],
                )
                .await?;
            Ok(counted > 0)
        })
    }

    /// Takes the lease of a task run (see [`crate::services::state::StateDb::take_task`]).
    pub fn take_task(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
        until_ms: i64,
        now_ms: i64,
        ran_since: Option<i64>,
    ) -> Result<LeaseOutcome, PgError> {
        let (instance, task, holder) = (instance.to_owned(), task.to_owned(), holder.to_owned());
        self.pg.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            // One contender per task at a time; released at commit.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 16))",
                &[&instance, &task],
            )
            .await?;
            // The lease first, then the runs: a finished run is recorded before its lease is
            // released, so a free lease means its run is visible below.
            let current = tx
                .query_opt(
                    "SELECT holder, until_ms FROM task_leases WHERE instance = $1 AND task = $2",
                    &[&instance, &task],
                )
                .await?;
            if let Some(row) = current {
                let (current, until): (String, i64) = (row.get(0), row.get(1));
                if current != holder && until >= now_ms {
                    return Ok(LeaseOutcome::Held);
                }
            }
            if let Some(since) = ran_since {
                let last = tx
                    .query_opt(
                        "SELECT started_ms FROM task_runs WHERE instance = $1 AND task = $2 AND started_ms > $3",
                        &[&instance, &task, &since],
                    )
                    .await?;
                if let Some(row) = last {
                    return Ok(LeaseOutcome::RanAt(row.get(0)));
                }
            }
            tx.execute(
                "INSERT INTO task_leases (instance, task, holder, until_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (instance, task) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms",
                &[&instance, &task, &holder, &until_ms],
            )
            .await?;
            tx.commit().await?;
            Ok(LeaseOutcome::Taken)
        })
    }

    /// Extends a lease this holder still has; `false` when it lost it.
    pub fn renew_lease(
        &self,
        instance: &str,
        task: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<bool, PgError> {
        self.execute(
            "UPDATE task_leases SET until_ms = $4 WHERE instance = $1 AND task = $2 AND holder = $3",
            &[instance, task, holder],
            vec![until_ms],
        )
        .map(|n| n > 0)
    }

    pub fn release_lease(&self, instance: &str, task: &str, holder: &str) -> Result<(), PgError> {
        self.execute(
            "DELETE FROM task_leases WHERE instance = $1 AND task = $2 AND holder = $3",
            &[instance, task, holder],
            vec![],
        )
        .map(|_| ())
    }

    pub fn record_task_run(&self, run: &TaskRun) -> Result<(), PgError> {
        let run = run.clone();
        self.pg.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO task_runs (instance, task, started_ms, duration_ms, ok, summary, next_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (instance, task) DO UPDATE SET started_ms = excluded.started_ms,
                       duration_ms = excluded.duration_ms, ok = excluded.ok, summary = excluded.summary,
                       next_ms = COALESCE(excluded.next_ms, task_runs.next_ms)",
                    &[
                        &run.instance,
                        &run.task,
                        &run.started_ms,
                        &run.duration_ms,
                        &run.ok,
                        &run.summary,
                        &run.next_ms,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    pub fn record_next_run(&self, instance: &str, task: &str, next_ms: i64) -> Result<(), PgError> {
        self.execute(
            "UPDATE task_runs SET next_ms = $3 WHERE instance = $1 AND task = $2",
            &[instance, task],
            vec![next_ms],
        )
        .map(|_| ())
    }

    pub fn last_task_run(&self, instance: &str, task: &str) -> Result<Option<TaskRun>, PgError> {
        let (instance, task) = (instance.to_owned(), task.to_owned());
        self.pg.run(move |pool| async move {
            let row = pool
                .get()
                .await?
                .query_opt(
                    "SELECT instance, task, started_ms, duration_ms, ok, summary, next_ms
                     FROM task_runs WHERE instance = $1 AND task = $2",
                    &[&instance, &task],
                )
                .await?;
            Ok(row.map(|r| TaskRun {
                instance: r.get(0),
                task: r.get(1),
                started_ms: r.get(2),
                duration_ms: r.get(3),
                ok: r.get(4),
                summary: r.get(5),
                next_ms: r.get(6),
            }))
        })
    }

    /// Removes everything an instance stored, in one transaction.
    pub fn forget_instance(&self, instance: &str) -> Result<(), PgError> {
        let instance = instance.to_owned();
        self.pg.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            for table in [
                "task_runs",
                "request_counts",
                "plugin_state",
                "test_results",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE instance = $1"),
                    &[&instance],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub fn record_test(&self, instance: &str, at_ms: i64, report: &str) -> Result<(), PgError> {
        self.execute(
            "INSERT INTO test_results (instance, report, at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (instance) DO UPDATE SET at_ms = excluded.at_ms, report = excluded.report",
            &[instance, report],
            vec![at_ms],
        )
        .map(|_| ())
    }

    pub fn last_test(&self, instance: &str) -> Result<Option<(i64, String)>, PgError> {
        let instance = instance.to_owned();
        self.pg.run(move |pool| async move {
            let row = pool
                .get()
                .await?
                .query_opt(
                    "SELECT at_ms, report FROM test_results WHERE instance = $1",
                    &[&instance],
                )
                .await?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }
}

/// Why copying the embedded state database into PostgreSQL failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("cannot read the embedded state database {path}: {source}; check the data directory given to `storage migrate`")]
    Read {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// The tables copied by [`copy_embedded_to_pg`], with their columns (leases and quota slots
/// are not copied: they only mean something to the processes that took them).
const COPIED: &[(&str, &[&str], &str)] = &[
    (
        "plugin_state",
        &["instance", "key", "value", "updated_ms"],
        "instance, key",
    ),
    (
        "request_counts",
        &["instance", "day", "count"],
        "instance, day",
    ),
    (
        "task_runs",
        &[
            "instance",
            "task",
            "started_ms",
            "duration_ms",
            "ok",
            "summary",
            "next_ms",
        ],
        "instance, task",
    ),
    ("oauth2_tokens", &["key", "sealed", "until_ms"], "key"),
    ("test_results", &["instance", "at_ms", "report"], "instance"),
];

/// One value read from SQLite, typed for PostgreSQL.
#[derive(Debug)]
enum Cell {
    Text(String),
    Int(Option<i64>),
    Bool(bool),
}

/// Copies `state.sqlite3` of an embedded data directory into PostgreSQL (rows already there
/// with the same key are replaced) and returns, per table, the rows read and the rows of
/// those keys now in PostgreSQL. A data directory without a state database copies nothing.
pub fn copy_embedded_to_pg(data_dir: &Path, pg: &Pg) -> Result<Vec<(String, u64, u64)>, CopyError> {
    let path = data_dir.join("state.sqlite3");
    let mut report = Vec::new();
    if !path.exists() {
        for (table, _, _) in COPIED {
            report.push(((*table).to_owned(), 0, 0));
        }
        return Ok(report);
    }
    let read = |source| CopyError::Read {
        path: path.clone(),
        source,
    };
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(read)?;
    for (table, columns, key) in COPIED {
        let mut stmt = conn
            .prepare(&format!("SELECT {} FROM {table}", columns.join(", ")))
            .map_err(read)?;
        let rows: Vec<Vec<Cell>> = stmt
            .query_map([], |r| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, column)| {
                        Ok(match *column {
                            "ok" => Cell::Bool(r.get::<_, bool>(i)?),
                            c if c.ends_with("_ms") || c == "count" => Cell::Int(r.get(i)?),
                            _ => Cell::Text(r.get(i)?),
                        })
                    })
                    .collect()
            })
            .map_err(read)?
            .collect::<Result<_, _>>()
            .map_err(read)?;
        let source = rows.len() as u64;
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let updates: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({key}) DO UPDATE SET {}",
            columns.join(", "),
            placeholders.join(", "),
            updates.join(", ")
        );
        let key_columns: Vec<&str> = key.split(", ").collect();
        let key_positions: Vec<usize> = key_columns
            .iter()
            .filter_map(|k| columns.iter().position(|c| c == k))
            .collect();
        let count = format!(
            "SELECT count(*) FROM {table} WHERE ({key}) IN (SELECT * FROM unnest({}))",
            (1..=key_columns.len())
                .map(|i| format!("${i}::text[]"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let copied = pg.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let statement = tx.prepare(&insert).await?;
            let mut keys: Vec<Vec<String>> = vec![Vec::new(); key_positions.len()];
            for row in &rows {
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = row
                    .iter()
                    .map(|cell| match cell {
                        Cell::Text(t) => t as &(dyn tokio_postgres::types::ToSql + Sync),
                        Cell::Int(i) => i as &(dyn tokio_postgres::types::ToSql + Sync),
                        Cell::Bool(b) => b as &(dyn tokio_postgres::types::ToSql + Sync),
                    })
                    .collect();
                tx.execute(&statement, &params).await?;
                for (slot, position) in keys.iter_mut().zip(&key_positions) {
                    if let Some(Cell::Text(t)) = row.get(*position) {
                        slot.push(t.clone());
                    }
                }
            }
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = keys
                .iter()
                .map(|k| k as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let copied: i64 = tx.query_one(&count, &params).await?.get(0);
            tx.commit().await?;
            Ok(u64::try_from(copied).unwrap_or(0))
        })?;
        report.push(((*table).to_owned(), source, copied));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::state::StateDb;
    use serde_json::json;

    #[test]
    fn an_embedded_state_database_is_copied_and_counted() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("state_copy") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let embedded = StateDb::open(&dir.path().join("state.sqlite3")).unwrap();
        embedded
            .put("a", "deposit/1", &json!({"state": "sent"}))
            .unwrap();
        embedded.put("b", "k", &json!(2)).unwrap();
        embedded.count_request("a", "2026-03-01").unwrap();
        embedded
            .record_test("a", 7, &json!({"status": "ok"}))
            .unwrap();
        embedded
            .record_task_run(&TaskRun {
                instance: "a".into(),
                task: "follow".into(),
                started_ms: 1,
                duration_ms: 2,
                ok: true,
                summary: "done".into(),
                next_ms: None,
            })
            .unwrap();
        embedded
            .put_shared_token(
                "t",
                "sealed:v1:xyz",
                crate::services::state::now_ms() + 60_000,
            )
            .unwrap();
        drop(embedded);
        let report = copy_embedded_to_pg(dir.path(), &pg).unwrap();
        let counts: Vec<(&str, u64, u64)> = report
            .iter()
            .map(|(t, s, c)| (t.as_str(), *s, *c))
            .collect();
        assert_eq!(
            counts,
            [
                ("plugin_state", 2, 2),
                ("request_counts", 1, 1),
                ("task_runs", 1, 1),
                ("oauth2_tokens", 1, 1),
                ("test_results", 1, 1)
            ]
        );
        let copied = StateDb::postgres(pg.clone());
        assert_eq!(
            copied.get("a", "deposit/1").unwrap(),
            Some(json!({"state": "sent"}))
        );
        assert_eq!(copied.day_count("a", "2026-03-01").unwrap(), 1);
        assert!(copied.last_task_run("a", "follow").unwrap().unwrap().ok);
        assert_eq!(
            copied.shared_token("t").unwrap().unwrap().0,
            "sealed:v1:xyz"
        );
        // Copying again replaces, never doubles.
        let again = copy_embedded_to_pg(dir.path(), &pg).unwrap();
        assert_eq!(again, report);
        // No state database: nothing to copy.
        let empty = tempfile::tempdir().unwrap();
        assert!(copy_embedded_to_pg(empty.path(), &pg)
            .unwrap()
            .iter()
            .all(|(_, s, c)| (*s, *c) == (0, 0)));
    }
}
