//! Rolling-window slots shared by every process using one data directory.
//!
//! A provider counts the requests of an account, not of a process: `serve`, a `tasks run` from
//! cron and an administrator's `passerelle test` on the same instance must fit in one window
//! together. The slots of [`super::quota`]'s sliding-window log are therefore kept in a small
//! SQLite database (`quota.sqlite3`), and a slot is taken in one `BEGIN IMMEDIATE` transaction:
//! count the slots in each window, take one if every window has room, else say how long to
//! wait. SQLite serialises the transactions of all processes, so N processes together never
//! admit more than the limit.
//!
//! Nothing here needs to survive a crash (a lost slot only frees capacity early, after a
//! window), so the database runs without fsync. A slot whose process died before its answer
//! arrived is closed when another process notices the process is gone.
//!
//! Times are milliseconds of the system clock, read through the runtime's monotonic clock from
//! an origin taken at start, so that all processes share one time line and the tests can run
//! in paused time.

use rusqlite::{params, Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Slots answered longer ago than this are deleted (the longest window is one minute).
const KEEP_MS: i64 = 61_000;

#[derive(Debug, thiserror::Error)]
#[error(
    "quota database {path}: {source}; delete it to reset the windows (nothing else is kept there)"
)]
pub struct SharedWindowError {
    path: PathBuf,
    source: rusqlite::Error,
}

/// One rolling window: at most `limit` requests in any `length`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub limit: u32,
    pub length: Duration,
}

#[derive(Debug)]
pub struct SharedWindows {
    path: PathBuf,
    conn: Mutex<Connection>,
    origin_ms: i64,
    origin: Instant,
    pid: i64,
}

impl SharedWindows {
    pub fn open(path: &Path) -> Result<Self, SharedWindowError> {
        let err = |source| SharedWindowError {
            path: path.to_owned(),
            source,
        };
        crate::store::prepare_private_database(path);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=OFF;
             CREATE TABLE IF NOT EXISTS quota_slots (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 instance TEXT NOT NULL,
                 pid INTEGER NOT NULL,
                 taken_ms INTEGER NOT NULL,
                 answered_ms INTEGER);
             CREATE INDEX IF NOT EXISTS quota_slots_instance ON quota_slots (instance, answered_ms);",
        )
        .map_err(err)?;
        Ok(SharedWindows {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            origin_ms: super::state::now_ms(),
            origin: Instant::now(),
            pid: i64::from(std::process::id()),
        })
    }

    fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX / 2);
        self.origin_ms + elapsed
    }

    /// Takes a slot of `instance` if every rule has room: `Ok(Ok(slot))`; otherwise
    /// `Ok(Err(wait))`, the time after which to try again.
    pub fn try_take(
        &self,
        instance: &str,
        rules: &[Rule],
    ) -> Result<Result<i64, Duration>, SharedWindowError> {
        let err = |source| SharedWindowError {
            path: self.path.clone(),
            source,
        };
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let now = self.now_ms();
        close_slots_of_dead_processes(&tx, instance, self.pid, now).map_err(err)?;
        tx.execute(
            "DELETE FROM quota_slots WHERE answered_ms < ?1",
            params![now - KEEP_MS],
        )
        .map_err(err)?;
        let mut wait = Duration::ZERO;
        for rule in rules {
            let length = i64::try_from(rule.length.as_millis()).unwrap_or(i64::MAX / 2);
            let (count, oldest): (i64, Option<i64>) = tx
                .query_row(
                    "SELECT COUNT(*), MIN(answered_ms) FROM quota_slots
                     WHERE instance = ?1 AND (answered_ms IS NULL OR answered_ms > ?2)",
                    params![instance, now - length],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(err)?;
            if count >= i64::from(rule.limit.max(1)) {
                // Free one millisecond after the oldest answer leaves the window (times are
                // whole milliseconds); while every slot is in flight, look again shortly.
                let this = match oldest {
                    Some(t) => {
                        Duration::from_millis(u64::try_from(t + length + 1 - now).unwrap_or(1))
                    }
                    None => super::quota::IN_FLIGHT_POLL,
                };
                wait = wait.max(this.max(Duration::from_micros(100)));
            }
        }
        if !wait.is_zero() {
            return Ok(Err(wait));
        }
        tx.execute(
            "INSERT INTO quota_slots (instance, pid, taken_ms) VALUES (?1, ?2, ?3)",
            params![instance, self.pid, now],
        )
        .map_err(err)?;
        let slot = tx.last_insert_rowid();
        tx.commit().map_err(err)?;
        Ok(Ok(slot))
    }

    /// Stamps `slot` with the time its answer arrived: it leaves the window a window later.
    pub fn answered(&self, slot: i64) {
        let now = self.now_ms();
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = conn.execute(
            "UPDATE quota_slots SET answered_ms = ?1 WHERE id = ?2",
            params![now, slot],
        ) {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot release a quota slot; it is freed when this process exits");
        }
    }
}

/// Slots in flight of processes that no longer exist will never be answered: count them as
/// answered now.
fn close_slots_of_dead_processes(
    tx: &rusqlite::Transaction<'_>,
    instance: &str,
    me: i64,
    now: i64,
) -> rusqlite::Result<()> {
    let pids: Vec<i64> = tx
        .prepare_cached(
            "SELECT DISTINCT pid FROM quota_slots WHERE instance = ?1 AND answered_ms IS NULL AND pid != ?2",
        )?
        .query_map(params![instance, me], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for pid in pids {
        if i32::try_from(pid).is_ok_and(super::state::process_is_gone) {
            tx.execute(
                "UPDATE quota_slots SET answered_ms = ?1 WHERE pid = ?2 AND answered_ms IS NULL",
                params![now, pid],
            )?;
        }
    }
    Ok(())
}
