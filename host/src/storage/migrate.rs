//! `passerelle storage migrate`: copies an embedded data directory into PostgreSQL, one store
//! at a time, and verifies the counts table by table.
//!
//! Each store that keeps something brings its own copy function (it alone knows its files and
//! tables), listed in [`ENTRIES`]: adding a store to the migration is one line here. Sealed
//! secrets are copied sealed: the nodes must use the same key file as the data directory.
//!
//! The target must be empty (every table of every entry), unless the administrator says
//! otherwise (`--allow-non-empty`): a second run into a database already serving would
//! otherwise mix two configurations without anyone noticing.

use super::{Pg, PgError};
use std::path::Path;
use std::sync::Arc;

/// What one copy function reports: (table, rows in the source, rows copied and verified).
pub type Counts = Vec<(String, u64, u64)>;

/// One store of the migration.
pub struct Entry {
    /// What the administrator reads: `instances`, `audit history`…
    pub store: &'static str,
    /// Its PostgreSQL tables (checked empty before copying, counted by `storage status`).
    pub tables: &'static [&'static str],
    /// Copies the store of an embedded data directory into PostgreSQL.
    pub copy: fn(&Path, &Arc<Pg>) -> Result<Counts, String>,
}

/// Every store, in the order they are copied.
pub const ENTRIES: &[Entry] = &[
    Entry {
        store: "instances",
        tables: &["instances"],
        copy: |dir, pg| super::instances::copy_embedded_to_pg(dir, pg).map_err(|e| e.to_string()),
    },
    Entry {
        store: "audit history",
        tables: &["audit"],
        copy: |dir, pg| super::audit::copy_embedded_to_pg(dir, pg).map_err(|e| e.to_string()),
    },
    Entry {
        store: "plugin state, daily counts, task runs, tokens and test results",
        tables: &[
            "plugin_state",
            "request_counts",
            "task_runs",
            "oauth2_tokens",
            "test_results",
        ],
        copy: |dir, pg| super::state::copy_embedded_to_pg(dir, pg).map_err(|e| e.to_string()),
    },
    Entry {
        store: "console accounts, sessions and API tokens",
        tables: &[
            "users",
            "sessions",
            "api_tokens",
            "login_failures",
            "sign_ins",
            "login_devices",
        ],
        copy: |dir, pg| super::console::copy_embedded_to_pg(dir, pg).map_err(|e| e.to_string()),
    },
    Entry {
        store: "events and webhooks",
        tables: &["events", "webhooks", "deliveries", "attempts"],
        copy: |dir, pg| super::outbox::copy_embedded_to_pg(dir, pg).map_err(|e| e.to_string()),
    },
];

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the target database is not empty ({0}); migrate into an empty database, or add --allow-non-empty to copy into it anyway (instances with the same id are replaced, history entries are appended)")]
    NotEmpty(String),
    #[error("{data_dir} is not a data directory (no `instances` folder); give the embedded data directory with --data-dir")]
    NoSource { data_dir: String },
    #[error("cannot copy the {store}: {reason}; nothing after it was copied, fix the cause and run the migration again with --allow-non-empty")]
    Copy { store: &'static str, reason: String },
    #[error("{table}: {source_count} rows in the data directory but {copied} copied; the target holds a partial copy, investigate before serving from it")]
    Mismatch {
        table: String,
        source_count: u64,
        copied: u64,
    },
    #[error(transparent)]
    Postgres(#[from] PgError),
}

/// One line of the migration's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub table: String,
    pub source: u64,
    pub copied: u64,
}

/// Copies `data_dir` into `pg` and verifies every count. Refuses a non-empty target unless
/// `allow_non_empty`.
pub fn migrate(
    data_dir: &Path,
    pg: &Arc<Pg>,
    allow_non_empty: bool,
) -> Result<Vec<Copied>, MigrateError> {
    if !data_dir.join("instances").is_dir() {
        return Err(MigrateError::NoSource {
            data_dir: data_dir.display().to_string(),
        });
    }
    if !allow_non_empty {
        let occupied: Vec<String> = table_counts(pg)?
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t}: {n} rows"))
            .collect();
        if !occupied.is_empty() {
            return Err(MigrateError::NotEmpty(occupied.join(", ")));
        }
    }
    let mut report = Vec::new();
    for entry in ENTRIES {
        let counts = (entry.copy)(data_dir, pg).map_err(|reason| MigrateError::Copy {
            store: entry.store,
            reason,
        })?;
        for (table, source, copied) in counts {
            if source != copied {
                return Err(MigrateError::Mismatch {
                    table,
                    source_count: source,
                    copied,
                });
            }
            report.push(Copied {
                table,
                source,
                copied,
            });
        }
    }
    let from = std::fs::canonicalize(data_dir)
        .unwrap_or_else(|_| data_dir.to_owned())
        .display()
        .to_string();
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    pg.run(move |pool| async move {
        let client = pool.get().await?;
        for (key, value) in [("migrated_from", from), ("migrated_at", at)] {
            client
                .execute(
                    "INSERT INTO storage_info (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    &[&key, &value],
                )
                .await?;
        }
        Ok(())
    })?;
    Ok(report)
}

/// Rows in each table of [`ENTRIES`] that exists in this database (a table of a store this
/// version does not have yet is left out).
pub fn table_counts(pg: &Pg) -> Result<Vec<(String, u64)>, PgError> {
    let mut out = Vec::new();
    for table in ENTRIES.iter().flat_map(|e| e.tables.iter()) {
        let name = (*table).to_owned();
        let exists: bool = pg.run(move |pool| async move {
            let row = pool
                .get()
                .await?
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await?;
            Ok(row.try_get(0)?)
        })?;
        if exists {
            out.push(((*table).to_owned(), count_rows(pg, table)?));
        }
    }
    Ok(out)
}

/// `SELECT count(*)` of one table (a plain identifier).
pub fn count_rows(pg: &Pg, table: &str) -> Result<u64, PgError> {
    if !table
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(PgError::Query(format!("`{table}` is not a table name")));
    }
    let sql = format!("SELECT count(*) FROM {table}");
    pg.run(move |pool| async move {
        let row = pool.get().await?.query_one(&sql, &[]).await?;
        let n: i64 = row.try_get(0)?;
        Ok(u64::try_from(n).unwrap_or_default())
    })
}

/// Every row of one table as JSON text, one per line: for leak checks in tests and for
/// administrators comparing two databases.
pub fn dump_rows(pg: &Pg, table: &str) -> Result<String, PgError> {
    count_rows(pg, table)?; // checks the name
    let sql = format!("SELECT row_to_json(t)::text FROM {table} t");
    pg.run(move |pool| async move {
        let rows = pool.get().await?.query(&sql, &[]).await?;
        let mut out = String::new();
        for row in rows {
            out.push_str(&row.try_get::<_, String>(0)?);
            out.push('\n');
        }
        Ok(out)
    })
}

/// The newest migration applied to the database (`refinery_schema_history`).
pub fn schema_version(pg: &Pg) -> Result<Option<i32>, PgError> {
    pg.run(|pool| async move {
        let row = pool
            .get()
            .await?
            .query_one("SELECT max(version) FROM refinery_schema_history", &[])
            .await?;
        Ok(row.try_get(0)?)
    })
}

/// What `storage migrate` recorded in the database (`migrated_from`, `migrated_at`).
pub fn storage_info(pg: &Pg) -> Result<Vec<(String, String)>, PgError> {
    pg.run(|pool| async move {
        let rows = pool
            .get()
            .await?
            .query("SELECT key, value FROM storage_info ORDER BY key", &[])
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::InstanceId;
    use crate::server::audit::{Action, AuditLog, Change};
    use crate::storage::Backend;
    use crate::store::{Store, StoreError};
    use serde_json::json;

    fn id(s: &str) -> InstanceId {
        InstanceId::new(s).unwrap()
    }

    /// An embedded data directory with two instances (one with a sealed secret) and three
    /// history entries.
    fn populated() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key =
            crate::secrets::SecretKey::load_or_create(&dir.path().join("keys/secret.key")).unwrap();
        store.create(&id("one"), "sirene").unwrap();
        store
            .update::<StoreError>(&id("one"), None, |r| {
                r.values.insert("siret".into(), json!("12345678901234"));
                r.secrets
                    .insert("api_key".into(), key.seal("one", "api_key", "s3cr3t-value"));
                r.enabled = true;
                Ok(())
            })
            .unwrap();
        store.create(&id("two"), "chorus").unwrap();
        let log = AuditLog::open(&Backend::Embedded, dir.path()).unwrap();
        for (actor, instance) in [("cli:a", "one"), ("cli:a", "two"), ("admin", "one")] {
            log.record(Change {
                actor,
                instance: Some(instance),
                field: None,
                action: Action::CreateInstance,
                old: None,
                new: Some("x".into()),
            })
            .unwrap();
        }
        dir
    }

    #[test]
    fn a_data_directory_is_copied_verified_and_a_second_copy_refused() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("migrate") else {
            return;
        };
        let dir = populated();
        let report = migrate(dir.path(), &pg, false).unwrap();
        let counts: Vec<(&str, u64, u64)> = report
            .iter()
            .map(|c| (c.table.as_str(), c.source, c.copied))
            .collect();
        // Every store is reported, each verified; this directory has instances and history.
        assert!(
            counts.iter().all(|(_, source, copied)| source == copied),
            "{counts:?}"
        );
        let copied: Vec<_> = counts.iter().filter(|c| c.1 > 0).copied().collect();
        assert_eq!(copied, [("instances", 2, 2), ("audit", 3, 3)]);
        // The same records, sealed secrets included, and a secret that still opens.
        let backend = Backend::Postgres(pg.clone());
        let served = Store::open_on(dir.path(), &backend).unwrap();
        let embedded = Store::open(dir.path()).unwrap();
        assert_eq!(served.list().unwrap(), embedded.list().unwrap());
        let key =
            crate::secrets::SecretKey::load_or_create(&dir.path().join("keys/secret.key")).unwrap();
        let one = served.get(&id("one")).unwrap();
        assert_eq!(
            key.open("one", "api_key", &one.secrets["api_key"]).unwrap(),
            "s3cr3t-value"
        );
        // The history came too, oldest first kept in order.
        let history = AuditLog::on(
            &backend,
            std::sync::Arc::new(crate::server::db::ConsoleDb::open_in(dir.path()).unwrap()),
        )
        .list(None, 10)
        .unwrap();
        let actors: Vec<&str> = history.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(actors, ["admin", "cli:a", "cli:a"]);
        // Revisions continue from the copied ones.
        let next = served
            .update::<StoreError>(&id("one"), Some(2), |r| {
                r.enabled = false;
                Ok(())
            })
            .unwrap();
        assert_eq!(next.after.revision, 3);
        // A second run is refused, saying what is there and what to do.
        let e = migrate(dir.path(), &pg, false).unwrap_err().to_string();
        assert!(
            e.contains("instances: 2 rows") && e.contains("--allow-non-empty"),
            "{e}"
        );
        // Told to, it copies again: instances replaced, history appended.
        migrate(dir.path(), &pg, true).unwrap();
        assert_eq!(count_rows(&pg, "instances").unwrap(), 2);
        assert_eq!(count_rows(&pg, "audit").unwrap(), 6);
        assert_eq!(served.get(&id("one")).unwrap().revision, 2);
        let info = storage_info(&pg).unwrap();
        assert!(info.iter().any(|(k, _)| k == "migrated_from"), "{info:?}");
        assert!(schema_version(&pg).unwrap().unwrap_or(0) >= 2);
    }

    #[test]
    fn a_directory_without_instances_is_refused() {
        let Some(pg) = crate::storage::postgres::scratch_for_tests("migrate_none") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let e = migrate(&dir.path().join("nope"), &pg, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a data directory") && e.contains("--data-dir"),
            "{e}"
        );
    }
}
