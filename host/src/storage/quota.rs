//! Quota windows shared by every node of a PostgreSQL cluster.
//!
//! The same sliding-window log as the embedded `quota.sqlite3` ([`crate::services::shared_window`]):
//! a slot is taken when a request is admitted and stamped when its answer arrived, and leaves
//! the window a whole window after the answer. Taking one is a single call of the
//! `passerelle_quota_take` function (migration V3): under a transaction advisory lock of the
//! instance it closes the slots of processes that are gone, counts each window and takes a slot
//! or says how long to wait. One round trip, so N nodes together never admit more than the
//! limit. Times are the database server's clock, the one clock every node shares.
//!
//! A process that dies with requests in flight would hold their slots forever: so each process
//! holds a session advisory lock (its *liveness key*) on a connection of its own for as long
//! as it lives, and its slots record that key. When the process dies its connections close,
//! the lock goes, and the next node taking a slot counts those requests as answered. A lock
//! lost with its connection is taken again by the keeper.

use super::{Pg, PgError};
use crate::services::shared_window::Rule;
use std::sync::Arc;
use std::time::Duration;

/// First key of the liveness advisory locks ("pass"); the second is the holder.
const LIVENESS_CLASS: i32 = 0x7061_7373;
/// Answered slots older than this are deleted (the longest window is one minute).
const KEEP_MS: i64 = 61_000;
/// A slot in flight longer than any call may last is counted as answered, whatever the lock
/// says (the call deadline plus a margin).
const IN_FLIGHT_MAX_MS: i64 = 130_000;
/// How often the keeper checks that its liveness connection is still there.
const KEEPER_PING: Duration = Duration::from_secs(5);

/// The quota windows of a cluster, as one process uses them.
#[derive(Debug)]
pub struct PgWindows {
    pg: Arc<Pg>,
    holder: i32,
}

impl PgWindows {
    /// Starts this process's liveness keeper and waits until its lock is held.
    pub fn open(pg: Arc<Pg>) -> Result<Self, PgError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<i32, PgError>>(1);
        let keeper = pg.clone();
        std::thread::Builder::new()
            .name("passerelle-quota-liveness".into())
            .spawn(move || {
                // Runs until the PostgreSQL runtime stops with the process.
                let _ = keeper.run(move |pool| keep_liveness(pool, ready_tx));
            })
            .map_err(|e| PgError::Query(format!("cannot start the quota liveness keeper: {e}")))?;
        let holder = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| PgError::Pool(Duration::from_secs(30)))??;
        Ok(PgWindows { pg, holder })
    }

    /// Takes a slot of `instance` if every rule has room: `Ok(Ok(slot))`; otherwise
    /// `Ok(Err(wait))`, the time after which to try again.
    pub async fn try_take(
        &self,
        instance: &str,
        rules: &[Rule],
    ) -> Result<Result<i64, Duration>, PgError> {
        let instance = instance.to_owned();
        let holder = self.holder;
        let limits: Vec<i32> = rules
            .iter()
            .map(|r| i32::try_from(r.limit).unwrap_or(i32::MAX))
            .collect();
        let lengths: Vec<i64> = rules
            .iter()
            .map(|r| i64::try_from(r.length.as_millis()).unwrap_or(i64::MAX / 2))
            .collect();
        let (slot, wait_ms, in_flight): (Option<i64>, i64, bool) = self
            .pg
            .run_async(move |pool| async move {
                let client = pool.get().await?;
                let statement = client
                    .prepare_cached("SELECT slot, wait_ms, in_flight FROM passerelle_quota_take($1, $2, $3, $4, $5, $6)")
                    .await?;
                let row = client
                    .query_one(
                        &statement,
                        &[
                            &instance,
                            &holder,
                            &limits,
                            &lengths,
                            &IN_FLIGHT_MAX_MS,
                            &KEEP_MS,
                        ],
                    )
                    .await?;
                Ok((row.get(0), row.get(1), row.get(2)))
            })
            .await?;
        if let Some(slot) = slot {
            return Ok(Ok(slot));
        }
        let mut wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1));
        if in_flight {
            wait = wait.max(crate::services::quota::IN_FLIGHT_POLL);
        }
        Ok(Err(wait.max(Duration::from_micros(100))))
    }

    /// Stamps `slot` with the time its answer arrived.
    pub fn answered(&self, slot: i64) {
        let result = self.pg.run(move |pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached("UPDATE quota_slots SET answered_ms = (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT WHERE id = $1")
                .await?;
            client.execute(&statement, &[&slot]).await?;
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot release a quota slot; other nodes count it as answered when this process exits");
        }
    }

    /// This process's liveness key (for tests).
    pub fn holder(&self) -> i32 {
        self.holder
    }
}

/// Holds this process's liveness lock on a connection of its own, taking it again (same key)
/// if the connection is lost. Reports the key once first held.
async fn keep_liveness(
    pool: deadpool_postgres::Pool,
    ready: std::sync::mpsc::SyncSender<Result<i32, PgError>>,
) -> Result<(), PgError> {
    let mut holder: Option<i32> = None;
    loop {
        let attempt: Result<(), PgError> = async {
            // Detached from the pool: the lock lives as long as this connection.
            let client = deadpool_postgres::Object::take(pool.get().await?);
            let key = loop {
                let candidate = holder.unwrap_or_else(|| rand::random::<i32>().saturating_abs());
                let got: bool = client
                    .query_one(
                        "SELECT pg_try_advisory_lock($1, $2)",
                        &[&LIVENESS_CLASS, &candidate],
                    )
                    .await?
                    .get(0);
                if got {
                    break candidate;
                }
                if holder.is_some() {
                    // Our old session has not ended yet on the server: wait for it.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            if holder.is_none() {
                holder = Some(key);
                let _ = ready.send(Ok(key));
            }
            loop {
                tokio::time::sleep(KEEPER_PING).await;
                client.simple_query("SELECT 1").await?;
            }
        }
        .await;
        if let Err(e) = attempt {
            if holder.is_none() {
                let _ = ready.send(Err(e));
                return Ok(());
            }
            tracing::warn!(error = %e, "the quota liveness connection was lost; taking the lock again");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
