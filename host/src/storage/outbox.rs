//! The events outbox in PostgreSQL: the statements behind [`crate::events::Outbox`] when the
//! host runs on that backend, so that every node's delivery worker shares one queue.
//!
//! What differs from the embedded outbox, and why:
//! - **Claims.** Several `serve` nodes look at the same deliveries. [`claim_due`] picks the
//!   head of each (webhook, instance) queue with `FOR UPDATE SKIP LOCKED` and gives it a
//!   lease (`lease_until_ms`); other nodes skip a leased delivery, so each is sent once in the
//!   normal case. A node that dies mid-send leaves its lease to expire, and another node
//!   sends the delivery again then: at least once. Recording the attempt ends the lease.
//! - **Order per instance.** Events of one instance are numbered under a transaction-scoped
//!   advisory lock on that instance, so their numbers follow the order in which they commit,
//!   and a queue's head is leased by one node at a time.

use super::{Pg, PgError};
use crate::events::outbox::{Delivery, DeliveryState, Due, HistoryFilter, WebhookRow};
use passerelle_plugin_api::events::{Emitted, Event};
use serde_json::Value;

/// How long a node holds a delivery it is sending (three times an attempt's deadline).
pub const LEASE_MS: i64 = 30_000;

fn event_of(r: &tokio_postgres::Row, at: usize) -> Event {
    let data: String = r.get(at + 4);
    Event {
        id: r.get(at),
        kind: r.get(at + 1),
        instance: r.get(at + 2),
        time: crate::events::outbox::event_time(r.get(at + 3)),
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
    }
}

fn webhook_of(r: &tokio_postgres::Row) -> WebhookRow {
    WebhookRow {
        id: r.get(0),
        url: r.get(1),
        events: r.get(2),
        sealed_secret: r.get(3),
        created_ms: r.get(4),
    }
}

const WEBHOOKS: &str =
    "SELECT id, url, events, secret, created_ms FROM webhooks ORDER BY created_ms, id";

/// Stores an event and its pending deliveries in one transaction (see
/// [`crate::events::Outbox::emit`]).
pub fn emit(
    pg: &Pg,
    id: String,
    instance: &str,
    kind: &str,
    data: &Value,
    key: Option<&str>,
    now: i64,
) -> Result<Emitted, PgError> {
    let (instance, kind, data, key) = (
        instance.to_owned(),
        kind.to_owned(),
        data.to_string(),
        key.map(str::to_owned),
    );
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('passerelle.events:' || $1, 0))",
            &[&instance],
        )
        .await?;
        if let Some(key) = &key {
            let earlier = tx
                .query_opt(
                    "SELECT id FROM events WHERE instance = $1 AND dedupe = $2",
                    &[&instance, key],
                )
                .await?;
            if let Some(row) = earlier {
                return Ok(Emitted {
                    id: row.get(0),
                    duplicate: true,
                });
            }
        }
        let seq: i64 = tx
            .query_one(
                "INSERT INTO events (id, type, instance, time_ms, data, dedupe)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
                &[&id, &kind, &instance, &now, &data, &key],
            )
            .await?
            .get(0);
        let hooks: Vec<WebhookRow> = tx
            .query(WEBHOOKS, &[])
            .await?
            .iter()
            .map(webhook_of)
            .collect();
        for hook in hooks.iter().filter(|h| h.wants(&kind)) {
            tx.execute(
                "INSERT INTO deliveries (webhook, event_seq, instance, state, next_ms, created_ms)
                 VALUES ($1, $2, $3, 'pending', $4, $4)",
                &[&hook.id, &seq, &instance, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Emitted {
            id,
            duplicate: false,
        })
    })
}

pub fn add_webhook(pg: &Pg, row: &WebhookRow) -> Result<(), PgError> {
    let row = row.clone();
    pg.run(|pool| async move {
        pool.get()
            .await?
            .execute(
                "INSERT INTO webhooks (id, url, events, secret, created_ms) VALUES ($1, $2, $3, $4, $5)",
                &[&row.id, &row.url, &row.events, &row.sealed_secret, &row.created_ms],
            )
            .await?;
        Ok(())
    })
}

pub fn webhooks(pg: &Pg) -> Result<Vec<WebhookRow>, PgError> {
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query(WEBHOOKS, &[])
            .await?
            .iter()
            .map(webhook_of)
            .collect())
    })
}

pub fn remove_webhook(pg: &Pg, id: &str) -> Result<bool, PgError> {
    let id = id.to_owned();
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM deliveries WHERE webhook = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM attempts WHERE webhook = $1", &[&id])
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    })
}

/// Leases and returns the deliveries to attempt now: per webhook and instance the oldest
/// pending one, when due and not leased by a node.
pub fn claim_due(pg: &Pg, now: i64, limit: u32) -> Result<Vec<Due>, PgError> {
    let limit = i64::from(limit);
    let until = now.saturating_add(LEASE_MS);
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "WITH heads AS (
                     SELECT d.webhook, d.event_seq FROM deliveries d
                     WHERE d.state = 'pending' AND d.next_ms <= $1
                       AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= $1)
                       AND d.event_seq = (SELECT MIN(d2.event_seq) FROM deliveries d2
                            WHERE d2.state = 'pending' AND d2.webhook = d.webhook
                              AND d2.instance = d.instance)
                     ORDER BY d.event_seq LIMIT $2
                     FOR UPDATE OF d SKIP LOCKED)
                 UPDATE deliveries d SET lease_until_ms = $3
                 FROM heads h, events e
                 WHERE d.webhook = h.webhook AND d.event_seq = h.event_seq AND e.seq = d.event_seq
                 RETURNING d.webhook, d.event_seq, d.attempts, d.created_ms,
                           e.id, e.type, e.instance, e.time_ms, e.data",
                &[&now, &limit, &until],
            )
            .await?;
        tx.commit().await?;
        let mut due: Vec<Due> = rows
            .iter()
            .map(|r| Due {
                webhook: r.get(0),
                seq: r.get(1),
                attempts: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
                created_ms: r.get(3),
                event: event_of(r, 4),
            })
            .collect();
        due.sort_by_key(|d| d.seq);
        Ok(due)
    })
}

/// Gives back a claimed delivery that this node will not attempt now.
pub fn release(pg: &Pg, webhook: &str, seq: i64) -> Result<(), PgError> {
    let webhook = webhook.to_owned();
    pg.run(|pool| async move {
        pool.get()
            .await?
            .execute(
                "UPDATE deliveries SET lease_until_ms = NULL WHERE webhook = $1 AND event_seq = $2",
                &[&webhook, &seq],
            )
            .await?;
        Ok(())
    })
}

/// When the next pending delivery may be attempted (its retry time, or its lease's end).
pub fn next_due_ms(pg: &Pg) -> Result<Option<i64>, PgError> {
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query_one(
                "SELECT MIN(GREATEST(next_ms, COALESCE(lease_until_ms, 0)))
                 FROM deliveries WHERE state = 'pending'",
                &[],
            )
            .await?
            .get(0))
    })
}

pub fn backlog(pg: &Pg) -> Result<u64, PgError> {
    pg.run(|pool| async move {
        let n: i64 = pool
            .get()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'",
                &[],
            )
            .await?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    })
}

/// One attempt's outcome, as [`record_attempt`] stores it.
pub struct Attempt<'a> {
    pub webhook: &'a str,
    pub seq: i64,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    pub state: DeliveryState,
    pub next_ms: i64,
    pub now: i64,
}

/// Records an attempt and the delivery's new state, and ends the lease.
pub fn record_attempt(pg: &Pg, a: &Attempt<'_>) -> Result<(), PgError> {
    let (webhook, error) = (a.webhook.to_owned(), a.error.map(str::to_owned));
    let (seq, status, duration, next, now) = (
        a.seq,
        a.status.map(i32::from),
        a.duration_ms,
        a.next_ms,
        a.now,
    );
    let state = a.state.as_str();
    let done = (a.state != DeliveryState::Pending).then_some(now);
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO attempts (webhook, event_seq, at_ms, status, error, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&webhook, &seq, &now, &status, &error, &duration],
        )
        .await?;
        tx.execute(
            "UPDATE deliveries SET attempts = attempts + 1, state = $3, next_ms = $4,
                 last_status = $5, last_error = $6, done_ms = $7, lease_until_ms = NULL
             WHERE webhook = $1 AND event_seq = $2",
            &[&webhook, &seq, &state, &next, &status, &error, &done],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Queues an event again (see [`crate::events::Outbox::replay`]).
pub fn replay(
    pg: &Pg,
    event_id: &str,
    webhook: Option<&str>,
    now: i64,
) -> Result<Option<Vec<String>>, PgError> {
    let (event_id, webhook) = (event_id.to_owned(), webhook.map(str::to_owned));
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let Some(event) = tx
            .query_opt(
                "SELECT seq, type, instance FROM events WHERE id = $1",
                &[&event_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let (seq, kind, instance): (i64, String, String) =
            (event.get(0), event.get(1), event.get(2));
        let targets: Vec<String> = match webhook {
            Some(w) => vec![w],
            None => {
                let had: Vec<String> = tx
                    .query(
                        "SELECT webhook FROM deliveries WHERE event_seq = $1 ORDER BY webhook",
                        &[&seq],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if had.is_empty() {
                    tx.query(WEBHOOKS, &[])
                        .await?
                        .iter()
                        .map(webhook_of)
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
                 VALUES ($1, $2, $3, 'pending', $4, $4)
                 ON CONFLICT (webhook, event_seq) DO UPDATE SET state = 'pending',
                   attempts = 0, next_ms = $4, created_ms = $4, done_ms = NULL,
                   lease_until_ms = NULL",
                &[target, &seq, &instance, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(targets))
    })
}

pub fn history(pg: &Pg, filter: &HistoryFilter) -> Result<Vec<Delivery>, PgError> {
    let filter = filter.clone();
    pg.run(|pool| async move {
        let rows = pool
            .get()
            .await?
            .query(
                "SELECT d.webhook, e.id, e.type, d.instance, d.state, d.attempts, d.last_status,
                        d.last_error, d.next_ms, d.done_ms, d.created_ms
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE ($1::text IS NULL OR d.webhook = $1) AND ($2::text IS NULL OR d.instance = $2)
                   AND ($3::text IS NULL OR e.id = $3)
                 ORDER BY d.event_seq DESC, d.webhook LIMIT $4",
                &[
                    &filter.webhook,
                    &filter.instance,
                    &filter.event,
                    &i64::from(filter.limit),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let state = DeliveryState::parse(r.get(4));
                Delivery {
                    webhook: r.get(0),
                    event_id: r.get(1),
                    event_type: r.get(2),
                    instance: r.get(3),
                    state,
                    attempts: u32::try_from(r.get::<_, i32>(5)).unwrap_or(0),
                    last_status: r
                        .get::<_, Option<i32>>(6)
                        .and_then(|s| u16::try_from(s).ok()),
                    last_error: r.get(7),
                    next_ms: (state == DeliveryState::Pending).then(|| r.get(8)),
                    done_ms: r.get(9),
                    created_ms: r.get(10),
                }
            })
            .collect())
    })
}

pub fn seq_of(pg: &Pg, event_id: &str) -> Result<Option<i64>, PgError> {
    let id = event_id.to_owned();
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query_opt("SELECT seq FROM events WHERE id = $1", &[&id])
            .await?
            .map(|r| r.get(0)))
    })
}

pub fn last_seq(pg: &Pg) -> Result<i64, PgError> {
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query_one("SELECT COALESCE(MAX(seq), 0)::bigint FROM events", &[])
            .await?
            .get(0))
    })
}

pub fn events_after(pg: &Pg, seq: i64, limit: u32) -> Result<Vec<(i64, Event)>, PgError> {
    let limit = i64::from(limit);
    pg.run(|pool| async move {
        Ok(pool
            .get()
            .await?
            .query(
                "SELECT seq, id, type, instance, time_ms, data FROM events WHERE seq > $1
                 ORDER BY seq LIMIT $2",
                &[&seq, &limit],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), event_of(r, 1)))
            .collect())
    })
}

pub fn prune(pg: &Pg, before_ms: i64) -> Result<usize, PgError> {
    pg.run(|pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let old = "SELECT seq FROM events WHERE time_ms < $1 AND seq NOT IN
                   (SELECT event_seq FROM deliveries WHERE state = 'pending')";
        tx.execute(
            &format!("DELETE FROM attempts WHERE event_seq IN ({old})"),
            &[&before_ms],
        )
        .await?;
        tx.execute(
            &format!("DELETE FROM deliveries WHERE event_seq IN ({old})"),
            &[&before_ms],
        )
        .await?;
        let n = tx
            .execute(
                &format!("DELETE FROM events WHERE seq IN ({old})"),
                &[&before_ms],
            )
            .await?;
        tx.commit().await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    })
}

/// Copies the events, webhooks (secrets stay sealed), deliveries and attempts of an embedded
/// data directory's `events.sqlite3` into PostgreSQL, keeping event numbers (deliveries refer
/// to them) and rows already there: for `passerelle storage migrate`. Per table: (name, rows
/// in the source, rows in PostgreSQL after the copy).
pub fn copy_embedded_to_pg(
    data_dir: &std::path::Path,
    pg: &Pg,
) -> Result<Vec<(String, u64, u64)>, PgError> {
    use super::sqlite_copy::{copy_tables, Conflict, Table};
    let copied = copy_tables(
        &data_dir.join(crate::events::outbox::FILE_NAME),
        pg,
        &[
            Table {
                name: "events",
                from: "seq, id, type, instance, time_ms, data, dedupe",
                to: "seq, id, type, instance, time_ms, data, dedupe",
                conflict: Conflict::Keep,
            },
            Table {
                name: "webhooks",
                from: "id, url, events, secret, created_ms",
                to: "id, url, events, secret, created_ms",
                conflict: Conflict::Keep,
            },
            Table {
                name: "deliveries",
                from: "webhook, event_seq, instance, state, attempts, next_ms, created_ms, last_status, last_error, done_ms",
                to: "webhook, event_seq, instance, state, attempts, next_ms, created_ms, last_status, last_error, done_ms",
                conflict: Conflict::Keep,
            },
            Table {
                name: "attempts",
                from: "webhook, event_seq, at_ms, status, error, duration_ms",
                to: "webhook, event_seq, at_ms, status, error, duration_ms",
                conflict: Conflict::OnlyIntoEmpty,
            },
        ],
    )?;
    // New events are numbered after the copied ones.
    pg.run(|pool| async move {
        pool.get()
            .await?
            .execute(
                "SELECT setval(pg_get_serial_sequence('events', 'seq'),
                               GREATEST((SELECT MAX(seq) FROM events), 1))",
                &[],
            )
            .await?;
        Ok(())
    })?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Outbox;
    use serde_json::json;

    #[test]
    fn an_embedded_outbox_is_copied_with_its_numbers_and_new_events_come_after() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("outbox_copy") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let embedded = Outbox::open(&dir.path().join(crate::events::outbox::FILE_NAME)).unwrap();
        embedded
            .add_webhook(&WebhookRow {
                id: "w".into(),
                url: "http://127.0.0.1:9/".into(),
                events: "*".into(),
                sealed_secret: "enc:v1:sealed".into(),
                created_ms: 1,
            })
            .unwrap();
        let first = embedded.emit("a", "x.y", &json!(1), Some("k1")).unwrap();
        embedded.emit("a", "x.y", &json!(2), None).unwrap();
        let due = embedded.due(i64::MAX, 10).unwrap();
        embedded
            .record_attempt(
                "w",
                due[0].seq,
                Some(500),
                Some("HTTP 500"),
                3,
                DeliveryState::Pending,
                0,
            )
            .unwrap();
        let report = copy_embedded_to_pg(dir.path(), &pg).unwrap();
        let again = copy_embedded_to_pg(dir.path(), &pg).unwrap();
        assert_eq!(
            report,
            [
                ("events".to_owned(), 2, 2),
                ("webhooks".to_owned(), 1, 1),
                ("deliveries".to_owned(), 2, 2),
                ("attempts".to_owned(), 1, 1)
            ]
        );
        assert_eq!(again, report);
        let shared = Outbox::postgres(pg);
        assert_eq!(
            shared.seq_of(&first.id).unwrap(),
            embedded.seq_of(&first.id).unwrap()
        );
        // The dedupe key came along; a new event is numbered after the copied ones.
        assert!(
            shared
                .emit("a", "x.y", &json!(1), Some("k1"))
                .unwrap()
                .duplicate
        );
        let new = shared.emit("a", "x.y", &json!(3), None).unwrap();
        assert_eq!(shared.seq_of(&new.id).unwrap(), Some(3));
        let history = shared
            .history(&HistoryFilter {
                event: Some(first.id),
                limit: 5,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            (history[0].attempts, history[0].last_status),
            (1, Some(500))
        );
    }
}
