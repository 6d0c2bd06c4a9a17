//! Instances on PostgreSQL: the same records, revisions and refusals as the embedded TOML
//! files ([`crate::store`]), shared by every node of a cluster.
//!
//! Where the embedded store takes an exclusive lock on its directory for a read-modify-write,
//! this one locks the instance's row (`SELECT … FOR UPDATE`) inside a transaction, so writers
//! on any node serialise on one instance and a revision check (`--if-revision`) holds across
//! nodes. The change itself is plain Rust run by the caller between the locking read and the
//! write, exactly as with the files.
//!
//! Every committed change sends `NOTIFY passerelle_config, '<instance id>'` inside its
//! transaction, so other nodes hear of it when, and only when, it is visible to them.
//! Secret values arrive sealed and are stored sealed (`sealed` column).

use super::{Pg, PgError};
use crate::ids::InstanceId;
use crate::store::{Changed, InstanceRecord, StoreError};
use deadpool_postgres::Object;
use std::path::PathBuf;
use std::sync::Arc;

/// The notification channel of configuration changes; the payload is the instance id.
pub const CHANNEL: &str = "passerelle_config";

const COLUMNS: &str = "id, plugin, enabled, revision, plain::text, sealed::text";

/// The `instances` table of a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgInstances {
    pg: Arc<Pg>,
    /// One read-modify-write at a time in this process. A change may itself read the store
    /// (the whole-configuration check lists the other instances) while its row lock holds a
    /// connection: unbounded, enough such writers would hold every pooled connection and wait
    /// for one more. The embedded store serialises its writers the same way (directory lock);
    /// across processes, the row locks do.
    writers: Arc<std::sync::Mutex<()>>,
}

/// What a row must be read as, before it becomes a record (rows are not `'static`-friendly
/// once the connection returns to the pool, so they are decoded at once).
type RawRow = (String, String, bool, i64, String, String);

fn raw(row: &tokio_postgres::Row) -> Result<RawRow, PgError> {
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
    ))
}

/// Where a bad row is, for [`StoreError::Corrupt`].
fn row_place(id: &str) -> PathBuf {
    PathBuf::from(format!("PostgreSQL table `instances`, row `{id}`"))
}

fn record(row: RawRow) -> Result<InstanceRecord, StoreError> {
    let (id, plugin, enabled, revision, plain, sealed) = row;
    let corrupt = |reason: String| StoreError::Corrupt {
        path: row_place(&id),
        reason,
    };
    Ok(InstanceRecord {
        id: InstanceId::new(&id).map_err(|e| corrupt(e.to_string()))?,
        plugin,
        enabled,
        revision: u64::try_from(revision)
            .map_err(|_| corrupt(format!("its revision {revision} is negative")))?,
        values: serde_json::from_str(&plain)
            .map_err(|e| corrupt(format!("column `plain` is not a JSON object: {e}")))?,
        secrets: serde_json::from_str(&sealed).map_err(|e| {
            corrupt(format!(
                "column `sealed` is not a JSON object of strings: {e}"
            ))
        })?,
    })
}

/// The columns written for a record: (plain, sealed) as JSON text, revision as i64.
fn encoded(record: &InstanceRecord) -> Result<(String, String, i64), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: row_place(record.id.as_str()),
        reason,
    };
    Ok((
        serde_json::to_string(&record.values)
            .map_err(|e| corrupt(format!("cannot encode: {e}")))?,
        serde_json::to_string(&record.secrets)
            .map_err(|e| corrupt(format!("cannot encode: {e}")))?,
        i64::try_from(record.revision)
            .map_err(|_| corrupt(format!("revision {} is too large", record.revision)))?,
    ))
}

/// A transaction holding the lock on one instance's row; rolled back when dropped unfinished.
struct Locked<'a> {
    pg: &'a Pg,
    client: Option<Object>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // The connection goes back to the pool only once its transaction is closed.
            let _ = self.pg.run(|_| async move {
                client.batch_execute("ROLLBACK").await?;
                Ok(())
            });
        }
    }
}

impl PgInstances {
    pub fn new(pg: Arc<Pg>) -> Self {
        PgInstances {
            pg,
            writers: Arc::default(),
        }
    }

    /// All instances, sorted by id.
    pub fn list(&self) -> Result<Vec<InstanceRecord>, StoreError> {
        let rows = self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let rows = client
                .query(&format!("SELECT {COLUMNS} FROM instances ORDER BY id"), &[])
                .await?;
            rows.iter().map(raw).collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter().map(record).collect()
    }

    pub fn get(&self, id: &InstanceId) -> Result<InstanceRecord, StoreError> {
        let key = id.to_string();
        let row = self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM instances WHERE id = $1"),
                    &[&key],
                )
                .await?;
            row.as_ref().map(raw).transpose()
        })?;
        match row {
            Some(row) => record(row),
            None => Err(StoreError::NotFound(id.clone())),
        }
    }

    /// Creates a new, disabled, empty instance at revision 1.
    pub fn create(&self, id: &InstanceId, plugin: &str) -> Result<InstanceRecord, StoreError> {
        let record = InstanceRecord {
            id: id.clone(),
            plugin: plugin.to_owned(),
            enabled: false,
            revision: 1,
            values: serde_json::Map::new(),
            secrets: std::collections::BTreeMap::new(),
        };
        if self.insert(&record, false)? {
            Ok(record)
        } else {
            Err(StoreError::Exists(id.clone()))
        }
    }

    /// Writes `record` as it is (revision included). Without `replace`, an existing row is
    /// left alone and `false` returned. For creation and for `storage migrate`.
    pub(crate) fn insert(
        &self,
        record: &InstanceRecord,
        replace: bool,
    ) -> Result<bool, StoreError> {
        let (plain, sealed, revision) = encoded(record)?;
        let (id, plugin, enabled) = (record.id.to_string(), record.plugin.clone(), record.enabled);
        let sql = if replace {
            "INSERT INTO instances (id, plugin, enabled, revision, plain, sealed)
             VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb)
             ON CONFLICT (id) DO UPDATE SET plugin = EXCLUDED.plugin, enabled = EXCLUDED.enabled,
                 revision = EXCLUDED.revision, plain = EXCLUDED.plain, sealed = EXCLUDED.sealed"
        } else {
            "INSERT INTO instances (id, plugin, enabled, revision, plain, sealed)
             VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb)
             ON CONFLICT (id) DO NOTHING"
        };
        Ok(self.pg.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let n = tx
                .execute(sql, &[&id, &plugin, &enabled, &revision, &plain, &sealed])
                .await?;
            if n == 1 {
                tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id])
                    .await?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })?)
    }

    /// Read-modify-write of one instance with its row locked: [`crate::store::Store::update`].
    pub fn update<E: From<StoreError>>(
        &self,
        id: &InstanceId,
        expected_revision: Option<u64>,
        change: impl FnOnce(&mut InstanceRecord) -> Result<(), E>,
    ) -> Result<Changed, E> {
        let _writer = self
            .writers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = id.to_string();
        let (client, row) = self
            .pg
            .run(|pool| async move {
                let client = pool.get().await?;
                client.batch_execute("BEGIN").await?;
                let found = client
                    .query_opt(
                        &format!("SELECT {COLUMNS} FROM instances WHERE id = $1 FOR UPDATE"),
                        &[&key],
                    )
                    .await
                    .map_err(PgError::from)
                    .and_then(|row| row.as_ref().map(raw).transpose());
                match found {
                    Ok(row) => Ok((client, row)),
                    Err(e) => {
                        let _ = client.batch_execute("ROLLBACK").await;
                        Err(e)
                    }
                }
            })
            .map_err(StoreError::from)?;
        let mut locked = Locked {
            pg: &self.pg,
            client: Some(client),
        };
        let Some(row) = row else {
            return Err(StoreError::NotFound(id.clone()).into());
        };
        let mut record = record(row)?;
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
        // The record's identity is the row's: a change may not move it.
        record.id = before.id.clone();
        let write = if record != before {
            record.revision = before.revision + 1;
            Some(encoded(&record)?)
        } else {
            None
        };
        let client = locked
            .client
            .take()
            .ok_or(StoreError::Database(PgError::Gone))?;
        let (key, enabled, plugin) = (id.to_string(), record.enabled, record.plugin.clone());
        self.pg
            .run(move |_| async move {
                let result = async {
                    if let Some((plain, sealed, revision)) = write {
                        client
                            .execute(
                                "UPDATE instances SET plugin = $2, enabled = $3, revision = $4,
                                     plain = $5::text::jsonb, sealed = $6::text::jsonb
                                 WHERE id = $1",
                                &[&key, &plugin, &enabled, &revision, &plain, &sealed],
                            )
                            .await?;
                        client
                            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &key])
                            .await?;
                    }
                    client.batch_execute("COMMIT").await
                }
                .await;
                if result.is_err() {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                Ok(result?)
            })
            .map_err(StoreError::from)?;
        Ok(Changed {
            before,
            after: record,
        })
    }

    /// Deletes an instance, refused when it moved past `expected_revision`.
    pub fn delete(
        &self,
        id: &InstanceId,
        expected_revision: Option<u64>,
    ) -> Result<(), StoreError> {
        enum Outcome {
            Deleted,
            Missing,
            Stale(i64),
        }
        let key = id.to_string();
        let expected = expected_revision
            .map(i64::try_from)
            .transpose()
            .unwrap_or(Some(i64::MAX));
        let outcome = self.pg.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let Some(row) = tx
                .query_opt(
                    "SELECT revision FROM instances WHERE id = $1 FOR UPDATE",
                    &[&key],
                )
                .await?
            else {
                return Ok(Outcome::Missing);
            };
            let actual: i64 = row.try_get(0)?;
            if expected.is_some_and(|e| e != actual) {
                return Ok(Outcome::Stale(actual));
            }
            tx.execute("DELETE FROM instances WHERE id = $1", &[&key])
                .await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &key])
                .await?;
            tx.commit().await?;
            Ok(Outcome::Deleted)
        })?;
        match outcome {
            Outcome::Deleted => Ok(()),
            Outcome::Missing => Err(StoreError::NotFound(id.clone())),
            Outcome::Stale(actual) => Err(StoreError::Stale {
                id: id.clone(),
                expected: expected_revision.unwrap_or_default(),
                actual: u64::try_from(actual).unwrap_or_default(),
            }),
        }
    }

    /// How many instances the table holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(super::migrate::count_rows(&self.pg, "instances")?)
    }
}

/// Copies the instance files of an embedded data directory into PostgreSQL, sealed values
/// as they are (the same key file must serve both). Returns (table, in the source, copied).
pub fn copy_embedded_to_pg(
    data_dir: &std::path::Path,
    pg: &Arc<Pg>,
) -> Result<Vec<(String, u64, u64)>, StoreError> {
    let source = crate::store::Store::open(data_dir)?.list()?;
    let target = PgInstances::new(pg.clone());
    let mut copied = 0u64;
    for record in &source {
        target.insert(record, true)?;
        // Verified by reading back what PostgreSQL now holds.
        if &target.get(&record.id)? == record {
            copied += 1;
        }
    }
    Ok(vec![("instances".to_owned(), source.len() as u64, copied)])
}
