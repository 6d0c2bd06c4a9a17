//! The persistent outbox: events, the webhooks they go to, and every delivery with its
//! attempts, in one SQLite database of the data directory (`events.sqlite3`, owner only).
//!
//! An event is written together with one pending delivery per webhook subscribed to its type,
//! in one transaction, before `emit` returns: once a plugin or the host has emitted an
//! event, it is delivered even if the process is killed the next instant. Every process of
//! the host writes here (a `passerelle tasks run` too) and the delivery worker of
//! `passerelle serve` reads here, so an event emitted anywhere is delivered by the server.
//!
//! Order: events are numbered (`seq`) as they are stored. The worker only ever sends, per
//! webhook and instance, the pending delivery with the lowest number ([`Outbox::due`]), so
//! an event failing its delivery holds back the later events of its instance for that
//! webhook, and nothing else.
//!
//! On the PostgreSQL backend ([`Outbox::postgres`]) the same tables live in the shared
//! database ([`crate::storage::outbox`]), so every node stores events there and every
//! `serve` node's worker delivers from there; [`Outbox::due`] then also leases what it
//! returns, so that two nodes do not send the same delivery ([`Outbox::release`] gives back
//! what a worker will not attempt now).

use crate::storage::outbox as pg_outbox;
use crate::storage::{Pg, PgError};
use passerelle_plugin_api::events::{Emitted, Event};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The file name in the data directory.
pub const FILE_NAME: &str = "events.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("event database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the event database lock was poisoned by a crash; restart the host")]
    Poisoned,
    #[error("event outbox in PostgreSQL: {0}")]
    Pg(#[from] PgError),
}

/// A webhook as stored: its secret stays sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    /// `*` or event types separated by commas.
    pub events: String,
    pub sealed_secret: String,
    pub created_ms: i64,
}

impl WebhookRow {
    /// Whether this webhook wants events of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.split(',').any(|e| e == "*" || e == kind)
    }
}

/// State of one delivery (one event to one webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet; retried until its retry window ends.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the retry window; `replay` sends it again.
    Failed,
}

impl DeliveryState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        }
    }
}

/// One delivery with its event, as the history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub webhook: String,
    /// The event id, also the `X-Passerelle-Delivery` header.
    pub event_id: String,
    pub event_type: String,
    pub instance: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// HTTP status of the last attempt, if the receiver answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only), ms since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_ms: Option<i64>,
    /// When it was delivered or given up, ms since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_ms: Option<i64>,
    /// When the delivery (or its last replay) was queued: its retry window starts here.
    pub created_ms: i64,
}

/// A delivery the worker should attempt now.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub webhook: String,
    pub seq: i64,
    pub attempts: u32,
    pub created_ms: i64,
    pub event: Event,
}

/// Filter of the delivery history.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub webhook: Option<String>,
    pub instance: Option<String>,
    pub event: Option<String>,
    pub limit: u32,
}

#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    /// The SQLite database (embedded backend), or none on PostgreSQL.
    conn: Option<Mutex<Connection>>,
    pg: Option<Arc<Pg>>,
    /// Wakes this process's worker and event streams when an event is stored here.
    pub stored: tokio::sync::Notify,
}

pub(crate) fn event_time(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `evt-` and 32 random hex digits: unique, and a valid id in URLs.
fn new_event_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    format!("evt-{}", super::signature::hex(&bytes))
}

fn row_event(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Event> {
    let data: String = r.get(at + 4)?;
    Ok(Event {
        id: r.get(at)?,
        kind: r.get(at + 1)?,
        instance: r.get(at + 2)?,
        time: event_time(r.get(at + 3)?),
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
    })
}

impl Outbox {
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        let err = |source| OutboxError::Db {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Event data names transactions and invoices of the ERP: owner only.
        crate::store::prepare_private_database(path);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS events (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                 type TEXT NOT NULL, instance TEXT NOT NULL, time_ms INTEGER NOT NULL,
                 data TEXT NOT NULL, dedupe TEXT, UNIQUE (instance, dedupe));
             CREATE TABLE IF NOT EXISTS webhooks (
                 id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL,
                 secret TEXT NOT NULL, created_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS deliveries (
                 webhook TEXT NOT NULL, event_seq INTEGER NOT NULL, instance TEXT NOT NULL,
                 state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                 next_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,
                 last_status INTEGER, last_error TEXT, done_ms INTEGER,
                 PRIMARY KEY (webhook, event_seq));
             CREATE INDEX IF NOT EXISTS deliveries_heads
                 ON deliveries (state, webhook, instance, event_seq);
             CREATE TABLE IF NOT EXISTS attempts (
                 webhook TEXT NOT NULL, event_seq INTEGER NOT NULL, at_ms INTEGER NOT NULL,
                 status INTEGER, error TEXT, duration_ms INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (webhook, event_seq);",
        )
        .map_err(err)?;
        crate::store::prepare_private_database(path);
        Ok(Outbox {
            path: path.to_owned(),
            conn: Some(Mutex::new(conn)),
            pg: None,
            stored: tokio::sync::Notify::new(),
        })
    }

    /// The outbox in the PostgreSQL database shared by the nodes of a cluster.
    pub fn postgres(pg: Arc<Pg>) -> Self {
        Outbox {
            path: PathBuf::from(pg.url()),
            conn: None,
            pg: Some(pg),
            stored: tokio::sync::Notify::new(),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, OutboxError> {
        let conn = self.conn.as_ref().ok_or_else(|| {
            OutboxError::Pg(PgError::Query(
                "internal error: an SQLite statement on the PostgreSQL outbox".into(),
            ))
        })?;
        let mut conn = conn.lock().map_err(|_| OutboxError::Poisoned)?;
        f(&mut conn).map_err(|source| OutboxError::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// Stores an event of `instance` and queues it for every webhook that wants its type.
    /// With a `key`, a second event of the same instance and key is not stored: the first
    /// one's id comes back with `duplicate: true`.
    pub fn emit(
        &self,
        instance: &str,
        kind: &str,
        data: &Value,
        key: Option<&str>,
    ) -> Result<Emitted, OutboxError> {
        let now = crate::services::state::now_ms();
        let emitted = if let Some(pg) = &self.pg {
            pg_outbox::emit(pg, new_event_id(), instance, kind, data, key, now)?
        } else {
            self.with(|c| {
            let tx = c.transaction()?;
            if let Some(key) = key {
                let earlier: Option<String> = tx
                    .query_row(
                        "SELECT id FROM events WHERE instance = ?1 AND dedupe = ?2",
                        params![instance, key],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = earlier {
                    return Ok(Emitted {
                        id,
                        duplicate: true,
                    });
                }
            }
            let id = new_event_id();
            tx.execute(
                "INSERT INTO events (id, type, instance, time_ms, data, dedupe) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, kind, instance, now, data.to_string(), key],
            )?;
            let seq = tx.last_insert_rowid();
            let hooks = webhooks_in(&tx)?;
            for hook in hooks.iter().filter(|h| h.wants(kind)) {
                tx.execute(
                    "INSERT INTO deliveries (webhook, event_seq, instance, state, next_ms, created_ms)
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
                    params![hook.id, seq, instance, now],
                )?;
            }
            tx.commit()?;
            Ok(Emitted {
                id,
                duplicate: false,
            })
        })?
        };
        if !emitted.duplicate {
            self.stored.notify_waiters();
        }
        Ok(emitted)
    }

    // ----- webhooks -----

    pub fn add_webhook(&self, row: &WebhookRow) -> Result<(), OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::add_webhook(pg, row)?);
        }
        self.with(|c| {
            c.execute(
                "INSERT INTO webhooks (id, url, events, secret, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.id, row.url, row.events, row.sealed_secret, row.created_ms],
            )
            .map(|_| ())
        })
    }

    pub fn webhooks(&self) -> Result<Vec<WebhookRow>, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::webhooks(pg)?);
        }
        self.with(|c| webhooks_in(c))
    }

    pub fn webhook(&self, id: &str) -> Result<Option<WebhookRow>, OutboxError> {
        Ok(self.webhooks()?.into_iter().find(|w| w.id == id))
    }

    /// Removes a webhook with its deliveries and their history; whether it existed.
    pub fn remove_webhook(&self, id: &str) -> Result<bool, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::remove_webhook(pg, id)?);
        }
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM webhooks WHERE id = ?1", params![id])?;
            tx.execute("DELETE FROM deliveries WHERE webhook = ?1", params![id])?;
            tx.execute("DELETE FROM attempts WHERE webhook = ?1", params![id])?;
            tx.commit()?;
            Ok(n > 0)
        })
    }

    // ----- delivery -----

    /// The deliveries to attempt now: per webhook and instance, the oldest pending one, if
    /// its next attempt is due. On PostgreSQL, those not leased by another node, leased to
    /// this one now: attempt each, or [`Self::release`] it.
    pub fn due(&self, now_ms: i64, limit: u32) -> Result<Vec<Due>, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::claim_due(pg, now_ms, limit)?);
        }
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.webhook, d.event_seq, d.attempts, d.created_ms,
                        e.id, e.type, e.instance, e.time_ms, e.data
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.state = 'pending' AND d.next_ms <= ?1
                   AND d.event_seq = (SELECT MIN(d2.event_seq) FROM deliveries d2
                        WHERE d2.state = 'pending' AND d2.webhook = d.webhook
                          AND d2.instance = d.instance)
                 ORDER BY d.event_seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_ms, limit], |r| {
                Ok(Due {
                    webhook: r.get(0)?,
                    seq: r.get(1)?,
                    attempts: r.get::<_, u32>(2)?,
                    created_ms: r.get(3)?,
                    event: row_event(r, 4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Gives back a delivery returned by [`Self::due`] that this process will not attempt
    /// now, so that it is due again at once (for any node). Nothing to do when embedded.
    pub fn release(&self, webhook: &str, seq: i64) -> Result<(), OutboxError> {
        if let Some(pg) = &self.pg {
            pg_outbox::release(pg, webhook, seq)?;
        }
        Ok(())
    }

    /// When the next pending delivery is due, if any.
    pub fn next_due_ms(&self) -> Result<Option<i64>, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::next_due_ms(pg)?);
        }
        self.with(|c| {
            c.query_row(
                "SELECT MIN(next_ms) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
        })
    }

    /// Pending deliveries, for the backlog.
    pub fn backlog(&self) -> Result<u64, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::backlog(pg)?);
        }
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
    }

    /// Records one attempt and the delivery's new state: `next_ms` for a retry, or the final
    /// state.
    #[allow(clippy::too_many_arguments)]
    pub fn record_attempt(
        &self,
        webhook: &str,
        seq: i64,
        status: Option<u16>,
        error: Option<&str>,
        duration_ms: i64,
        state: DeliveryState,
        next_ms: i64,
    ) -> Result<(), OutboxError> {
        let now = crate::services::state::now_ms();
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::record_attempt(
                pg,
                &pg_outbox::Attempt {
                    webhook,
                    seq,
                    status,
                    error,
                    duration_ms,
                    state,
                    next_ms,
                    now,
                },
            )?);
        }
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO attempts (webhook, event_seq, at_ms, status, error, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![webhook, seq, now, status, error, duration_ms],
            )?;
            let done = (state != DeliveryState::Pending).then_some(now);
            tx.execute(
                "UPDATE deliveries SET attempts = attempts + 1, state = ?3, next_ms = ?4,
                    last_status = ?5, last_error = ?6, done_ms = ?7
                 WHERE webhook = ?1 AND event_seq = ?2",
                params![webhook, seq, state.as_str(), next_ms, status, error, done],
            )?;
            tx.commit()
        })
    }

    /// Queues an event again, with a fresh retry window: to one webhook (which need not have
    /// had it before), or to every webhook that had it (or, if none, every webhook that
    /// wants it now). Returns the webhooks it was queued for; `None` for an unknown event.
    pub fn replay(
        &self,
        event_id: &str,
        webhook: Option<&str>,
    ) -> Result<Option<Vec<String>>, OutboxError> {
        let now = crate::services::state::now_ms();
        let queued = if let Some(pg) = &self.pg {
            pg_outbox::replay(pg, event_id, webhook, now)?
        } else {
            self.with(|c| {
            let tx = c.transaction()?;
            let event: Option<(i64, String, String)> = tx
                .query_row(
                    "SELECT seq, type, instance FROM events WHERE id = ?1",
                    params![event_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((seq, kind, instance)) = event else {
                return Ok(None);
            };
            let targets: Vec<String> = match webhook {
                Some(w) => vec![w.to_owned()],
                None => {
                    let mut stmt =
                        tx.prepare("SELECT webhook FROM deliveries WHERE event_seq = ?1")?;
                    let had: Vec<String> = stmt
                        .query_map(params![seq], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()?;
                    drop(stmt);
                    if had.is_empty() {
                        webhooks_in(&tx)?
                            .into_iter()
                            .filter(|h| h.wants(&kind))
                            .map(|h| h.id)
                            .collect()
                    } else {
                        had
                    }
                }
            };
            for target in &targets {
                tx.execute(
                    "INSERT INTO deliveries (webhook, event_seq, instance, state, next_ms, created_ms)
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?4)
                     ON CONFLICT (webhook, event_seq) DO UPDATE SET state = 'pending',
                       attempts = 0, next_ms = ?4, created_ms = ?4, done_ms = NULL",
                    params![target, seq, instance, now],
                )?;
            }
            tx.commit()?;
            Ok(Some(targets))
        })?
        };
        self.stored.notify_waiters();
        Ok(queued)
    }

    /// The delivery history, newest event first.
    pub fn history(&self, filter: &HistoryFilter) -> Result<Vec<Delivery>, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::history(pg, filter)?);
        }
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.webhook, e.id, e.type, d.instance, d.state, d.attempts, d.last_status,
                        d.last_error, d.next_ms, d.done_ms, d.created_ms
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE (?1 IS NULL OR d.webhook = ?1) AND (?2 IS NULL OR d.instance = ?2)
                   AND (?3 IS NULL OR e.id = ?3)
                 ORDER BY d.event_seq DESC, d.webhook LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![filter.webhook, filter.instance, filter.event, filter.limit],
                |r| {
                    let state = DeliveryState::parse(&r.get::<_, String>(4)?);
                    Ok(Delivery {
                        webhook: r.get(0)?,
                        event_id: r.get(1)?,
                        event_type: r.get(2)?,
                        instance: r.get(3)?,
                        state,
                        attempts: r.get(5)?,
                        last_status: r.get(6)?,
                        last_error: r.get(7)?,
                        next_ms: if state == DeliveryState::Pending {
                            r.get(8)?
                        } else {
                            None
                        },
                        done_ms: r.get(9)?,
                        created_ms: r.get(10)?,
                    })
                },
            )?;
            rows.collect()
        })
    }

    // ----- the event stream -----

    /// The number of an event, to resume a stream after it.
    pub fn seq_of(&self, event_id: &str) -> Result<Option<i64>, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::seq_of(pg, event_id)?);
        }
        self.with(|c| {
            c.query_row(
                "SELECT seq FROM events WHERE id = ?1",
                params![event_id],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// The last stored event's number (0 when there is none).
    pub fn last_seq(&self) -> Result<i64, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::last_seq(pg)?);
        }
        self.with(|c| c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0)))
    }

    /// Events stored after number `seq`, oldest first, with their numbers.
    pub fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<(i64, Event)>, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::events_after(pg, seq, limit)?);
        }
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, id, type, instance, time_ms, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![seq, limit], |r| Ok((r.get(0)?, row_event(r, 1)?)))?;
            rows.collect()
        })
    }

    /// Forgets events older than `before_ms` that no delivery waits for, with their
    /// deliveries and attempts. Returns how many events went.
    pub fn prune(&self, before_ms: i64) -> Result<usize, OutboxError> {
        if let Some(pg) = &self.pg {
            return Ok(pg_outbox::prune(pg, before_ms)?);
        }
        self.with(|c| {
            let tx = c.transaction()?;
            let old = "SELECT seq FROM events WHERE time_ms < ?1 AND seq NOT IN
                       (SELECT event_seq FROM deliveries WHERE state = 'pending')";
            tx.execute(
                &format!("DELETE FROM attempts WHERE event_seq IN ({old})"),
                params![before_ms],
            )?;
            tx.execute(
                &format!("DELETE FROM deliveries WHERE event_seq IN ({old})"),
                params![before_ms],
            )?;
            let n = tx.execute(
                &format!("DELETE FROM events WHERE seq IN ({old})"),
                params![before_ms],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }
}

fn webhooks_in(c: &Connection) -> rusqlite::Result<Vec<WebhookRow>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, url, events, secret, created_ms FROM webhooks ORDER BY created_ms, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(WebhookRow {
            id: r.get(0)?,
            url: r.get(1)?,
            events: r.get(2)?,
            sealed_secret: r.get(3)?,
            created_ms: r.get(4)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(id: &str, events: &str) -> WebhookRow {
        WebhookRow {
            id: id.into(),
            url: "http://127.0.0.1:9/".into(),
            events: events.into(),
            sealed_secret: "enc:v1:x".into(),
            created_ms: 1,
        }
    }

    fn open() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join(FILE_NAME)).unwrap();
        (dir, outbox)
    }

    /// Runs a behaviour on the embedded outbox, then on a PostgreSQL one (when the test
    /// server is there): each rule is written once for both backends.
    fn on_both_backends(test: impl Fn(&Outbox)) {
        let (_dir, embedded) = open();
        test(&embedded);
        if let Some(pg) = crate::storage::postgres::scratch_for_tests("outbox") {
            test(&Outbox::postgres(pg));
        }
    }

    #[test]
    fn an_event_is_queued_for_the_webhooks_that_want_its_type_once_per_key() {
        on_both_backends(queued_for_the_webhooks_that_want_its_type_once_per_key);
    }

    fn queued_for_the_webhooks_that_want_its_type_once_per_key(o: &Outbox) {
        o.add_webhook(&hook("all", "*")).unwrap();
        o.add_webhook(&hook("esign", "esign.completed,esign.expired"))
            .unwrap();
        let a = o
            .emit(
                "u",
                "esign.completed",
                &json!({"n": 1}),
                Some("t1/completed"),
            )
            .unwrap();
        let again = o
            .emit(
                "u",
                "esign.completed",
                &json!({"n": 1}),
                Some("t1/completed"),
            )
            .unwrap();
        assert!(!a.duplicate && again.duplicate);
        assert_eq!(a.id, again.id);
        o.emit("c", "calendar.sync_failed", &json!({}), None)
            .unwrap();
        let history = o
            .history(&HistoryFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        let pairs: Vec<_> = history
            .iter()
            .map(|d| (d.webhook.as_str(), d.event_type.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("all", "calendar.sync_failed"),
                ("all", "esign.completed"),
                ("esign", "esign.completed")
            ]
        );
        assert_eq!(o.backlog().unwrap(), 3);
    }

    #[test]
    fn a_failing_event_holds_back_its_instance_only() {
        on_both_backends(failing_event_holds_back_its_instance_only);
    }

    fn failing_event_holds_back_its_instance_only(o: &Outbox) {
        o.add_webhook(&hook("w", "*")).unwrap();
        let first = o.emit("a", "x.y", &json!(1), None).unwrap();
        o.emit("a", "x.y", &json!(2), None).unwrap();
        o.emit("b", "x.y", &json!(3), None).unwrap();
        let now = crate::services::state::now_ms();
        let due = o.due(now, 10).unwrap();
        let ids: Vec<_> = due
            .iter()
            .map(|d| (d.event.instance.as_str(), d.event.data.clone()))
            .collect();
        assert_eq!(ids, [("a", json!(1)), ("b", json!(3))]);
        // Not attempted now (as the worker does when it is busy): due again.
        o.release("w", due[1].seq).unwrap();
        // The first of `a` fails and waits a minute: `a`'s second stays behind it, `b` goes.
        let head = &due[0];
        o.record_attempt(
            "w",
            head.seq,
            Some(500),
            Some("HTTP 500"),
            3,
            DeliveryState::Pending,
            now + 60_000,
        )
        .unwrap();
        let due = o.due(now, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].event.instance, "b");
        o.release("w", due[0].seq).unwrap();
        // Delivered at last: the second of `a` is next.
        o.record_attempt(
            "w",
            head.seq,
            Some(200),
            None,
            3,
            DeliveryState::Delivered,
            0,
        )
        .unwrap();
        let due = o.due(now, 10).unwrap();
        assert_eq!(due[0].event.data, json!(2));
        let h = o
            .history(&HistoryFilter {
                event: Some(first.id.clone()),
                limit: 5,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(h[0].attempts, 2);
        assert_eq!(h[0].state, DeliveryState::Delivered);
        // Replay queues it again with a fresh window.
        assert_eq!(o.replay(&first.id, None).unwrap(), Some(vec!["w".into()]));
        assert_eq!(o.replay("evt-none", None).unwrap(), None);
        let h = o
            .history(&HistoryFilter {
                event: Some(first.id),
                limit: 5,
                ..Default::default()
            })
            .unwrap();
        assert_eq!((h[0].state, h[0].attempts), (DeliveryState::Pending, 0));
    }

    #[test]
    fn the_stream_resumes_after_an_event_and_old_delivered_events_are_pruned() {
        on_both_backends(stream_resumes_after_an_event_and_old_events_are_pruned);
    }

    fn stream_resumes_after_an_event_and_old_events_are_pruned(o: &Outbox) {
        let a = o.emit("a", "x.y", &json!(1), None).unwrap();
        let b = o.emit("a", "x.y", &json!(2), None).unwrap();
        let after_a = o.seq_of(&a.id).unwrap().unwrap();
        let rest = o.events_after(after_a, 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1.id, b.id);
        assert!(rest[0].1.time.ends_with('Z'), "{}", rest[0].1.time);
        assert_eq!(o.last_seq().unwrap(), rest[0].0);
        assert_eq!(o.prune(crate::services::state::now_ms() + 1).unwrap(), 2);
        assert!(o.events_after(0, 10).unwrap().is_empty());
    }

    #[test]
    fn two_nodes_never_send_one_delivery_at_once_and_a_dead_nodes_lease_expires() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("outbox_nodes") else {
            return;
        };
        let (a, b) = (Outbox::postgres(pg.clone()), Outbox::postgres(pg));
        a.add_webhook(&hook("w", "*")).unwrap();
        for (instance, n) in [("x", 1), ("x", 2), ("y", 3)] {
            b.emit(instance, "x.y", &json!(n), None).unwrap();
        }
        let now = crate::services::state::now_ms();
        // Node A takes x's head only (limit 1); node B gets y's, not x's second behind it.
        let on_a = a.due(now, 1).unwrap();
        assert_eq!(on_a.len(), 1);
        assert_eq!(on_a[0].event.data, json!(1));
        let on_b = b.due(now, 10).unwrap();
        let data: Vec<_> = on_b.iter().map(|d| d.event.data.clone()).collect();
        assert_eq!(data, [json!(3)]);
        assert!(a.due(now, 10).unwrap().is_empty(), "everything is leased");
        // Many claimers at once: each pending head goes to one of them.
        let c = b.emit("z", "x.y", &json!(4), None).unwrap();
        let now = crate::services::state::now_ms();
        let claimed: Vec<Vec<Due>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let o = if i % 2 == 0 { &a } else { &b };
                    s.spawn(move || o.due(now, 10).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ids: Vec<&str> = claimed
            .iter()
            .flatten()
            .map(|d| d.event.id.as_str())
            .collect();
        assert_eq!(ids, [c.id.as_str()], "claimed once in all");
        // Node A dies without recording: after the lease, B sends x's head again.
        assert!(b.due(now + 1000, 10).unwrap().is_empty());
        let later = now + crate::storage::outbox::LEASE_MS + 1;
        let taken_over = b.due(later, 10).unwrap();
        assert!(
            taken_over.iter().any(|d| d.event.data == json!(1)),
            "{taken_over:?}"
        );
        // Recording ends the lease and moves the queue on: x's second is next.
        b.record_attempt(
            "w",
            on_a[0].seq,
            Some(200),
            None,
            1,
            DeliveryState::Delivered,
            0,
        )
        .unwrap();
        let next: Vec<_> = a
            .due(later, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.event.data)
            .collect();
        assert_eq!(next, [json!(2)]);
    }

    #[cfg(unix)]
    #[test]
    fn the_event_database_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, o) = open();
        o.emit("a", "x.y", &json!(1), None).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
