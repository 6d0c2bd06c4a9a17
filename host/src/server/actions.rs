//! What administrators do to instances, shared by the JSON API and the console pages: each
//! change runs off the async threads (the store fsyncs), is protected against lost updates,
//! and is written to the audit history with its old and new values.
//!
//! Lost updates: a caller that sends the revision it read gets `stale_revision` if the
//! instance moved on. A caller that sends none has its change applied to the current
//! revision, read under the store's lock, so concurrent writers serialise instead of failing,
//! and the audit entry's "old" value is exactly the one this change replaced.

use super::audit::{self, Action, Change};
use super::error::ApiError;
use super::AppState;
use crate::engine::Engine;
use crate::ids::InstanceId;
use crate::instances::{ConfigError, Instances};
use crate::store::{Changed, InstanceRecord};
use passerelle_plugin_api::TestReport;
use serde_json::{Map, Value};
use std::sync::Arc;

pub fn instance_id(id: &str) -> Result<InstanceId, ApiError> {
    InstanceId::new(id).map_err(|e| ConfigError::Id(e).into())
}

/// Runs `op` against the instance (with the caller's revision, if any) and audits what
/// changed.
async fn change<F>(
    app: &AppState,
    actor: String,
    field: Option<String>,
    revision: Option<u64>,
    op: F,
) -> Result<InstanceRecord, ApiError>
where
    F: FnOnce(&Instances<'_>, Option<u64>) -> Result<Changed, ConfigError> + Send + 'static,
{
    let engine = app.engine.clone();
    let audit_log = app.audit.clone();
    tokio::task::spawn_blocking(move || {
        let changed = op(&engine.instances(), revision)?;
        audit_changed(&engine, &audit_log, &actor, &changed, field.as_deref());
        Ok(changed.after)
    })
    .await?
}

/// Writes the audit entries of one change (none when nothing changed).
pub fn audit_changed(
    engine: &Engine,
    log: &audit::AuditLog,
    actor: &str,
    changed: &Changed,
    field: Option<&str>,
) {
    if changed.after.revision != changed.before.revision {
        audit_change(engine, log, actor, &changed.before, &changed.after, field);
    }
}

fn audit_change(
    engine: &Engine,
    log: &audit::AuditLog,
    actor: &str,
    before: &InstanceRecord,
    after: &InstanceRecord,
    field: Option<&str>,
) {
    let instance = Some(after.id.as_str());
    if let Some(field) = field {
        let Some(plugin) = engine.registry.get(&after.plugin) else {
            return;
        };
        let (old, new) = audit::field_change(&plugin, before, after, field);
        let action = if after.values.contains_key(field) || after.secrets.contains_key(field) {
            Action::SetField
        } else {
            Action::ClearField
        };
        log.record_or_log(Change {
            actor,
            instance,
            field: Some(field),
            action,
            old,
            new,
        });
    }
    if before.enabled != after.enabled {
        let word = |e: bool| if e { "enabled" } else { "disabled" }.to_owned();
        log.record_or_log(Change {
            actor,
            instance,
            field: None,
            action: if after.enabled {
                Action::Enable
            } else {
                Action::Disable
            },
            old: Some(word(before.enabled)),
            new: Some(word(after.enabled)),
        });
    }
}

pub async fn create_instance(
    app: &AppState,
    actor: String,
    id: &str,
    plugin: &str,
) -> Result<InstanceRecord, ApiError> {
    let id = instance_id(id)?;
    let plugin = plugin.to_owned();
    let engine = app.engine.clone();
    let log = app.audit.clone();
    tokio::task::spawn_blocking(move || {
        let record = engine.instances().create(&id, &plugin)?;
        log.record_or_log(Change {
            actor: &actor,
            instance: Some(id.as_str()),
            field: None,
            action: Action::CreateInstance,
            old: None,
            new: Some(format!("plugin {plugin}")),
        });
        Ok(record)
    })
    .await?
}

pub async fn set_field(
    app: &AppState,
    actor: String,
    id: &str,
    field: &str,
    value: Value,
    revision: Option<u64>,
) -> Result<InstanceRecord, ApiError> {
    let id = instance_id(id)?;
    let name = field.to_owned();
    change(
        app,
        actor,
        Some(field.to_owned()),
        revision,
        move |i, expected| i.set(&id, &name, value, expected),
    )
    .await
}

pub async fn clear_field(
    app: &AppState,
    actor: String,
    id: &str,
    field: &str,
    revision: Option<u64>,
) -> Result<InstanceRecord, ApiError> {
    let id = instance_id(id)?;
    let name = field.to_owned();
    change(
        app,
        actor,
        Some(field.to_owned()),
        revision,
        move |i, expected| i.unset(&id, &name, expected),
    )
    .await
}

pub async fn set_enabled(
    app: &AppState,
    actor: String,
    id: &str,
    enabled: bool,
    revision: Option<u64>,
) -> Result<InstanceRecord, ApiError> {
    let id = instance_id(id)?;
    change(app, actor, None, revision, move |i, expected| {
        i.set_enabled(&id, enabled, expected)
    })
    .await
}

pub async fn delete_instance(
    app: &AppState,
    actor: String,
    id: &str,
    revision: Option<u64>,
) -> Result<(), ApiError> {
    let id = instance_id(id)?;
    let engine = app.engine.clone();
    let log = app.audit.clone();
    tokio::task::spawn_blocking(move || {
        let before = engine.store.get(&id).map_err(ConfigError::from)?;
        engine.instances().delete(&id, revision)?;
        if let Err(e) = engine.services.state.forget_instance(id.as_str()) {
            tracing::warn!(instance = %id, error = %e, "instance deleted but its state remains");
        }
        log.record_or_log(Change {
            actor: &actor,
            instance: Some(id.as_str()),
            field: None,
            action: Action::DeleteInstance,
            old: Some(format!(
                "plugin {}, revision {}",
                before.plugin, before.revision
            )),
            new: None,
        });
        Ok(())
    })
    .await?
}

/// Runs a test with the saved values overlaid with `overrides` (not saved), and audits who
/// ran it with which fields overridden (names only), whether it ran or was refused.
pub async fn test(
    app: &AppState,
    actor: String,
    id: &str,
    overrides: &Map<String, Value>,
) -> Result<TestReport, ApiError> {
    let id = instance_id(id)?;
    let engine: Arc<Engine> = app.engine.clone();
    let result = engine.test(&id, overrides).await;
    let outcome = match &result {
        Ok(report) => format!("{}; {}", report.status, Engine::describe_test(overrides)),
        Err(e) => format!("refused ({e}); {}", Engine::describe_test(overrides)),
    };
    app.audit.record_or_log(Change {
        actor: &actor,
        instance: Some(id.as_str()),
        field: None,
        action: Action::Test,
        old: None,
        new: Some(crate::redact::redact(&outcome)),
    });
    Ok(result?)
}
