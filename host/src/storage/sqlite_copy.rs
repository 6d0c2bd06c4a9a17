//! Copying the rows of an embedded SQLite table into its PostgreSQL counterpart, for
//! `passerelle storage migrate`: the stores name their tables and columns, this module moves
//! the values (integers, text and NULLs, which is all the embedded stores hold, converted to
//! the PostgreSQL column's type) and counts them so that the copy can be verified.

use super::{Pg, PgError};
use rusqlite::types::Value;
use std::path::Path;
use tokio_postgres::types::{ToSql, Type};

/// What to do with rows already in PostgreSQL (a second run of the migration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Keep the row there (`ON CONFLICT DO NOTHING` on the table's keys).
    Keep,
    /// The table has no natural key: copy only into an empty table.
    OnlyIntoEmpty,
}

/// One table to copy: the same columns, named in SQLite (`from`) and in PostgreSQL (`to`).
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub conflict: Conflict,
}

/// Copies `tables` of the SQLite database at `path` (nothing when it does not exist), each in
/// one transaction; per table: (name, rows in SQLite, rows in PostgreSQL after the copy).
pub fn copy_tables(
    path: &Path,
    pg: &Pg,
    tables: &[Table],
) -> Result<Vec<(String, u64, u64)>, PgError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let source =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| PgError::Query(format!("cannot read {}: {e}", path.display())))?;
    let mut report = Vec::new();
    for table in tables {
        let rows = read(&source, table).map_err(|e| {
            PgError::Query(format!(
                "cannot read table `{}` of {}: {e}",
                table.name,
                path.display()
            ))
        })?;
        let source_count = rows.len() as u64;
        let placeholders: Vec<String> = (1..=table.to.split(',').count())
            .map(|i| format!("${i}"))
            .collect();
        let insert = format!(
            "INSERT INTO {} ({}) VALUES ({}){}",
            table.name,
            table.to,
            placeholders.join(", "),
            match table.conflict {
                Conflict::Keep => " ON CONFLICT DO NOTHING",
                Conflict::OnlyIntoEmpty => "",
            }
        );
        let count = format!("SELECT count(*) FROM {}", table.name);
        let conflict = table.conflict;
        let copied = pg.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let already: i64 = tx.query_one(&count, &[]).await?.get(0);
            if conflict == Conflict::Keep || already == 0 {
                let statement = tx.prepare(&insert).await?;
                for row in &rows {
                    let values = row
                        .iter()
                        .zip(statement.params())
                        .map(|(v, ty)| param(v, ty))
                        .collect::<Result<Vec<_>, PgError>>()?;
                    let refs: Vec<&(dyn ToSql + Sync)> =
                        values.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
                    tx.execute(&statement, &refs).await?;
                }
            }
            let after: i64 = tx.query_one(&count, &[]).await?.get(0);
            tx.commit().await?;
            Ok(u64::try_from(after).unwrap_or(0))
        })?;
        report.push((table.name.to_owned(), source_count, copied));
    }
    Ok(report)
}

fn read(source: &rusqlite::Connection, table: &Table) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut stmt = source.prepare(&format!("SELECT {} FROM {}", table.from, table.name))?;
    let width = stmt.column_count();
    let rows = stmt.query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())?;
    rows.collect()
}

/// A SQLite value as a parameter of the PostgreSQL column's type (SQLite stores every
/// whole number as a 64-bit integer; PostgreSQL columns may be 32-bit).
fn param(value: &Value, ty: &Type) -> Result<Box<dyn ToSql + Sync + Send>, PgError> {
    let mismatch = || {
        PgError::Query(format!(
            "cannot copy the SQLite value {value:?} into a PostgreSQL {ty} column"
        ))
    };
    Ok(match (value, ty) {
        (Value::Integer(i), &Type::INT8) => Box::new(*i),
        (Value::Integer(i), &Type::INT4) => Box::new(i32::try_from(*i).map_err(|_| mismatch())?),
        (Value::Integer(i), &Type::TEXT) => Box::new(i.to_string()),
        (Value::Text(t), &Type::TEXT) => Box::new(t.clone()),
        (Value::Null, &Type::INT8) => Box::new(Option::<i64>::None),
        (Value::Null, &Type::INT4) => Box::new(Option::<i32>::None),
        (Value::Null, &Type::TEXT) => Box::new(Option::<String>::None),
        _ => return Err(mismatch()),
    })
}
