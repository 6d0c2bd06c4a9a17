//! What administrators do to instances, shared by the JSON API and the console pages: each
//! change runs off the async threads (the store fsyncs), is protected against lost updates,
//! and is written to the audit history with its old and new values.
//!
//! Lost updates: a caller that sends the revision it read gets `stale_revision` if the
//! instance moved on. A caller that sends none still gets an exact audit entry: the change
//! is applied against the revision that was read for the "old" value, and retried if
//! someone else wrote in between.

use super::audit::{self, Action, Change};
use super::error::ApiError;
use super::AppState;
use crate::engine::Engine;
use crate::ids::InstanceId;
use crate::instances::{ConfigError, Instances};
use crate::store::{InstanceRecord, StoreError};
use passerelle_plugin_api::TestReport;
use serde_json::{Map, Value};
use std::sync::Arc;

const ATTEMPTS: usize = 3;

pub fn instance_id(id: &str) -> Result<InstanceId, ApiError> {
    InstanceId::new(id).map_err(|e| ConfigError::Id(e).into())
}

/// Runs `op` against the instance with read-then-write protection, and audits what changed.
async fn change<F>(
    app: &AppState,
    actor: String,
    id: InstanceId,
    field: Option<String>,
    revision: Option<u64>,
    op: F,
) -> Result<InstanceRecord, ApiError>
where
    F: Fn(&Instances<'_>, Option<u64>) -> Result<InstanceRecord, ConfigError> + Send + 'static,
{
    let engine = app.engine.clone();
    let audit_log = app.audit.clone();
    tokio::task::spawn_blocking(move || {
        let mut attempt = 0;
        let (before, after) = loop {
            attempt += 1;
            let before = engine.store.get(&id).map_err(ConfigError::from)?;
            let expected = revision.or(Some(before.revision));
            match op(&engine.instances(), expected) {
                Ok(after) => break (before, after),
                Err(ConfigError::Store(StoreError::Stale { .. }))
                    if revision.is_none() && attempt < ATTEMPTS =>
                {
                    continue
                }
                Err(e) => return Err(ApiError::from(e)),
            }
        };
        if after.revision != before.revision {
            audit_change(
                &engine,
                &audit_log,
                &actor,
                &before,
                &after,
                field.as_deref(),
            );
        }
        Ok(after)
    })
    .await?
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
        let (old, new) = audit::field_change(plugin, before, after, field);
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
        id.clone(),
        Some(field.to_owned()),
        revision,
        move |i, expected| i.set(&id, &name, value.clone(), expected),
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
        id.clone(),
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
    change(
        app,
        actor,
        id.clone(),
        None,
        revision,
        move |i, expected| i.set_enabled(&id, enabled, expected),
    )
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

/// Runs a test with the saved values overlaid with `overrides` (not saved).
pub async fn test(
    app: &AppState,
    id: &str,
    overrides: &Map<String, Value>,
) -> Result<TestReport, ApiError> {
    let id = instance_id(id)?;
    let engine: Arc<Engine> = app.engine.clone();
    Ok(engine.test(&id, overrides).await?)
}
