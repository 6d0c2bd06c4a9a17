//! The audit history: every change made through the API or the console — who, when, which
//! instance and field, old value → new value.
//!
//! Secret values never enter it: a secret field's change is recorded as `changed` (or
//! `cleared`), with no old or new value, not even a length or a hash. Entries are only ever
//! appended.
//!
//! The history lives where the instances live: in the console database with the embedded
//! backend, in PostgreSQL's `audit` table with that backend ([`crate::storage::audit`]), so
//! that every node and every command line (`config set`, `config apply`…) writes to, and
//! the console of every node reads, one history. [`AuditLog::open`] picks it from the backend.

use super::db::{now_ms, ConsoleDb, DbError};
use crate::plugin::LoadedPlugin;
use crate::store::InstanceRecord;
use rusqlite::params;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateInstance,
    SetField,
    ClearField,
    Enable,
    Disable,
    DeleteInstance,
    CreateToken,
    RevokeToken,
    SetPassword,
    /// A test routine was run (or refused), with the fields it overrode.
    Test,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CreateInstance => "instance.create",
            Action::SetField => "field.set",
            Action::ClearField => "field.clear",
            Action::Enable => "instance.enable",
            Action::Disable => "instance.disable",
            Action::DeleteInstance => "instance.delete",
            Action::CreateToken => "token.create",
            Action::RevokeToken => "token.revoke",
            Action::SetPassword => "user.set_password",
            Action::Test => "instance.test",
        }
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who: a user name, or `token:<name>` for an API token, or `cli:<user>`.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `instance.create`, `field.set`, `field.clear`, `instance.enable`, `instance.disable`,
    /// `instance.delete`, `token.create`, `token.revoke`, `user.set_password`,
    /// `instance.test` (new: the outcome and the overridden fields, never their values).
    pub action: String,
    /// The value before, as text (`(unset)`, `(default) 10`); absent for secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The value after, as text; `changed` or `cleared` for secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

/// A change about to be recorded.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub actor: &'a str,
    pub instance: Option<&'a str>,
    pub field: Option<&'a str>,
    pub action: Action,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditLog {
    sink: Sink,
}

/// Where the history is kept.
#[derive(Debug, Clone)]
enum Sink {
    Console(Arc<ConsoleDb>),
    Postgres(Arc<crate::storage::Pg>),
}

/// Why the history could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Console(#[from] DbError),
    #[error("audit history: {0}")]
    Postgres(#[from] crate::storage::PgError),
}

impl AuditLog {
    /// Whether the database of the history answers (for `/readyz`).
    pub fn reachable(&self) -> Result<(), AuditError> {
        match &self.sink {
            Sink::Console(db) => Ok(db.data_version().map(|_| ())?),
            Sink::Postgres(pg) => Ok(pg.ping()?),
        }
    }

    /// The history in a console database (embedded backend).
    pub fn new(db: Arc<ConsoleDb>) -> Self {
        AuditLog {
            sink: Sink::Console(db),
        }
    }

    /// The history of the backend: PostgreSQL's, or the one in `console` (embedded).
    pub fn on(backend: &crate::storage::Backend, console: Arc<ConsoleDb>) -> Self {
        match backend.pg() {
            Some(pg) => AuditLog {
                sink: Sink::Postgres(pg.clone()),
            },
            None => AuditLog::new(console),
        }
    }

    /// The history of the backend, opening the console database of `data_dir` only when it
    /// is the one (embedded backend).
    pub fn open(
        backend: &crate::storage::Backend,
        data_dir: &std::path::Path,
    ) -> Result<Self, AuditError> {
        match backend.pg() {
            Some(pg) => Ok(AuditLog {
                sink: Sink::Postgres(pg.clone()),
            }),
            None => Ok(AuditLog::new(Arc::new(ConsoleDb::open_in(data_dir)?))),
        }
    }

    pub fn record(&self, change: Change<'_>) -> Result<(), AuditError> {
        let db = match &self.sink {
            Sink::Console(db) => db,
            Sink::Postgres(pg) => return Ok(crate::storage::audit::record(pg, now_ms(), &change)?),
        };
        Ok(db.with(|c| {
            c.execute(
                "INSERT INTO audit (at_ms, actor, instance, field, action, old, new) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    now_ms(),
                    change.actor,
                    change.instance,
                    change.field,
                    change.action.as_str(),
                    change.old,
                    change.new
                ],
            )
            .map(|_| ())
        })?)
    }

    /// Records a change; a failure to record is logged, not returned: the change itself
    /// has already happened and must not be reported as failed.
    pub fn record_or_log(&self, change: Change<'_>) {
        let action = change.action.as_str();
        if let Err(e) = self.record(change) {
            tracing::error!(%action, error = %e, "cannot write the audit history");
        }
    }

    /// The most recent entries first, for one instance or for everything.
    pub fn list(&self, instance: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>, AuditError> {
        let db = match &self.sink {
            Sink::Console(db) => db,
            Sink::Postgres(pg) => return Ok(crate::storage::audit::list(pg, instance, limit)?),
        };
        Ok(db.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, at_ms, actor, instance, field, action, old, new FROM audit
                 WHERE ?1 IS NULL OR instance = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![instance, limit], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    actor: r.get(2)?,
                    instance: r.get(3)?,
                    field: r.get(4)?,
                    action: r.get(5)?,
                    old: r.get(6)?,
                    new: r.get(7)?,
                })
            })?;
            rows.collect()
        })?)
    }
}

/// A field's value in a record, as the audit history shows it: the saved value, or
/// `(default) X`, or `(unset)`. `None` for secrets, whose values are never shown.
pub fn shown_value(plugin: &LoadedPlugin, record: &InstanceRecord, field: &str) -> Option<String> {
    if plugin.schema.is_secret(field) {
        return None;
    }
    if let Some(v) = record.values.get(field) {
        return Some(display(v));
    }
    match plugin.schema.field(field).and_then(|p| p.get("default")) {
        Some(d) => Some(format!("(default) {}", display(d))),
        None => Some("(unset)".to_owned()),
    }
}

/// A value as text: strings without quotes, everything else as JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Old and new text of a field change; for a secret: no old value, `changed` or `cleared`.
pub fn field_change(
    plugin: &LoadedPlugin,
    before: &InstanceRecord,
    after: &InstanceRecord,
    field: &str,
) -> (Option<String>, Option<String>) {
    if plugin.schema.is_secret(field) {
        let new = if after.secrets.contains_key(field) {
            "changed"
        } else {
            "cleared"
        };
        (None, Some(new.to_owned()))
    } else {
        (
            shown_value(plugin, before, field),
            shown_value(plugin, after, field),
        )
    }
}
