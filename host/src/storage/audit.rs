//! The audit history on PostgreSQL: the `audit` table, one history for every node and every
//! command line of a cluster. The entries and their rules (secret values never recorded,
//! append only) are [`crate::server::audit`]'s; this module only keeps them.

use super::{Pg, PgError};
use crate::server::audit::{AuditEntry, Change};
use std::sync::Arc;

/// Appends one entry.
pub fn record(pg: &Pg, at_ms: i64, change: &Change<'_>) -> Result<(), PgError> {
    let row = (
        at_ms,
        change.actor.to_owned(),
        change.instance.map(str::to_owned),
        change.field.map(str::to_owned),
        change.action.as_str(),
        change.old.clone(),
        change.new.clone(),
    );
    pg.run(move |pool| async move {
        let (at_ms, actor, instance, field, action, old, new) = row;
        pool.get()
            .await?
            .execute(
                "INSERT INTO audit (at_ms, actor, instance, field, action, old, new)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&at_ms, &actor, &instance, &field, &action, &old, &new],
            )
            .await?;
        Ok(())
    })
}

/// The most recent entries first, for one instance or for everything.
pub fn list(pg: &Pg, instance: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>, PgError> {
    let instance = instance.map(str::to_owned);
    let limit = i64::from(limit);
    pg.run(move |pool| async move {
        let rows = pool
            .get()
            .await?
            .query(
                "SELECT id, at_ms, actor, instance, field, action, old, new FROM audit
                 WHERE $1::text IS NULL OR instance = $1 ORDER BY id DESC LIMIT $2",
                &[&instance, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    instance: r.try_get(3)?,
                    field: r.try_get(4)?,
                    action: r.try_get(5)?,
                    old: r.try_get(6)?,
                    new: r.try_get(7)?,
                })
            })
            .collect()
    })
}

/// Why the embedded history could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{path}: {source}")]
    Sqlite {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Postgres(#[from] PgError),
}

/// Appends the audit history of an embedded data directory (`console.sqlite3`) to
/// PostgreSQL's, oldest first, keeping each entry's time and author (ids are PostgreSQL's).
/// Returns (table, in the source, copied). No console database: nothing to copy.
pub fn copy_embedded_to_pg(
    data_dir: &std::path::Path,
    pg: &Arc<Pg>,
) -> Result<Vec<(String, u64, u64)>, CopyError> {
    type Row = (
        i64,
        String,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
    );
    let path = data_dir.join(crate::server::db::FILE_NAME);
    if !path.exists() {
        return Ok(vec![("audit".to_owned(), 0, 0)]);
    }
    let sqlite = |source| CopyError::Sqlite {
        path: path.clone(),
        source,
    };
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sqlite)?;
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'audit'",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite)?;
    if !has_table {
        return Ok(vec![("audit".to_owned(), 0, 0)]);
    }
    let rows: Vec<Row> = conn
        .prepare("SELECT at_ms, actor, instance, field, action, old, new FROM audit ORDER BY id")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect()
        })
        .map_err(sqlite)?;
    let source = rows.len() as u64;
    let copied = pg.run(move |pool| async move {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let insert = tx
            .prepare(
                "INSERT INTO audit (at_ms, actor, instance, field, action, old, new)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await?;
        let mut copied = 0u64;
        for (at_ms, actor, instance, field, action, old, new) in &rows {
            copied += tx
                .execute(&insert, &[at_ms, actor, instance, field, action, old, new])
                .await?;
        }
        tx.commit().await?;
        Ok(copied)
    })?;
    Ok(vec![("audit".to_owned(), source, copied)])
}

#[cfg(test)]
mod tests {
    use crate::server::audit::{Action, AuditLog, Change};

    fn change<'a>(actor: &'a str, instance: &'a str, action: Action) -> Change<'a> {
        Change {
            actor,
            instance: Some(instance),
            field: Some("siret"),
            action,
            old: Some("(unset)".into()),
            new: Some("123".into()),
        }
    }

    /// The same history test on both backends.
    fn history_behaves_alike(log: &AuditLog) {
        log.reachable().unwrap();
        assert!(log.list(None, 10).unwrap().is_empty());
        log.record(change("cli:alice", "a", Action::CreateInstance))
            .unwrap();
        log.record(change("token:erp", "b", Action::SetField))
            .unwrap();
        log.record(change("admin", "a", Action::ClearField))
            .unwrap();
        let all = log.list(None, 10).unwrap();
        let actors: Vec<&str> = all.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(actors, ["admin", "token:erp", "cli:alice"]);
        let of_a = log.list(Some("a"), 10).unwrap();
        assert_eq!(of_a.len(), 2);
        assert_eq!(of_a[0].action, "field.clear");
        assert_eq!(of_a[1].action, "instance.create");
        assert_eq!(of_a[1].field.as_deref(), Some("siret"));
        assert_eq!(of_a[1].old.as_deref(), Some("(unset)"));
        assert!(of_a[1].at_ms > 0);
        assert_eq!(log.list(None, 1).unwrap().len(), 1);
    }

    #[test]
    fn the_history_behaves_alike_on_both_backends() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = crate::storage::Backend::Embedded;
        history_behaves_alike(&AuditLog::open(&embedded, dir.path()).unwrap());
        if let Some(pg) = crate::storage::postgres::scratch_for_tests("audit") {
            let backend = crate::storage::Backend::Postgres(pg);
            let other = tempfile::tempdir().unwrap();
            history_behaves_alike(&AuditLog::open(&backend, other.path()).unwrap());
            // Nothing of it went to a console database.
            assert!(!other.path().join(crate::server::db::FILE_NAME).exists());
        }
    }
}
