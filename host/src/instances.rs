//! What administrators do to instances: create, set or clear one field, enable, disable,
//! delete, provision from a file — with the checks each needs.
//!
//! Rules:
//! - a field is validated against its own sub-schema before it is saved; a field the schema
//!   does not know is refused;
//! - secret fields are sealed before they touch the disk, and reads only say `set`/`unset`;
//! - enabling validates the whole configuration (defaults applied, conditional rules, the
//!   plugin's own cross-field rules); a change to an *enabled* instance must keep it valid;
//! - a refused change writes nothing.

use crate::ids::{InstanceId, InvalidId};
use crate::loader::Registry;
use crate::plugin::LoadedPlugin;
use crate::schema::{ConfigSchema, FieldError};
use crate::secrets::{SecretError, SecretKey};
use crate::store::{Changed, InstanceRecord, Store, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Id(#[from] InvalidId),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("instance `{instance}`: {error}")]
    Field { instance: String, error: FieldError },
    #[error("instance `{instance}` {action}:\n{}", list(.errors))]
    Invalid {
        instance: String,
        action: String,
        errors: Vec<FieldError>,
    },
    #[error("no plugin `{plugin}` is loaded (loaded: {loaded}); check `passerelle plugins` for refused files")]
    UnknownPlugin { plugin: String, loaded: String },
    /// A refused request, already explained.
    #[error("{0}")]
    Refused(String),
    #[error("provisioning file {path}: {reason}")]
    Provisioning { path: String, reason: String },
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The configuration operations of one data directory.
pub struct Instances<'a> {
    pub store: &'a Store,
    pub key: &'a SecretKey,
    pub registry: std::sync::Arc<Registry>,
}

/// An instance as shown to people and scripts: secrets are `set`/`unset`, never values.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstanceView {
    pub id: String,
    pub plugin: String,
    pub enabled: bool,
    pub revision: u64,
    pub fields: Vec<FieldView>,
}

/// What [`Instances::create_from`] took from the source instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarriedOver {
    /// Fields copied, in the source's order (values first, then secrets).
    pub copied: Vec<String>,
    /// Fields both plugins have that were not copied, and why.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldView {
    pub name: String,
    pub title: String,
    pub secret: bool,
    /// `set`, `unset` or `default`.
    pub state: &'static str,
    /// The value, or the default in effect; absent for secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Instances<'_> {
    pub fn plugin(&self, plugin_id: &str) -> Result<&Arc<LoadedPlugin>, ConfigError> {
        self.registry
            .get(plugin_id)
            .ok_or_else(|| ConfigError::UnknownPlugin {
                plugin: plugin_id.to_owned(),
                loaded: if self.registry.plugins.is_empty() {
                    "none".to_owned()
                } else {
                    self.registry
                        .plugins
                        .iter()
                        .map(|p| p.id().to_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// Creates an instance holding the plugin's `x-initial` values (see
    /// [`crate::schema::ConfigSchema::initial_values`]).
    pub fn create(&self, id: &InstanceId, plugin_id: &str) -> Result<InstanceRecord, ConfigError> {
        self.plugin(plugin_id)?;
        let record = self.store.create(id, plugin_id)?;
        self.with_initial_values(record)
    }

    /// Writes the plugin's `x-initial` values into a record just created.
    fn with_initial_values(&self, record: InstanceRecord) -> Result<InstanceRecord, ConfigError> {
        let initial = self.plugin(&record.plugin)?.schema.initial_values();
        if initial.is_empty() {
            return Ok(record);
        }
        Ok(self
            .store
            .update(&record.id, Some(record.revision), |r| {
                r.values.extend(initial);
                Ok::<_, ConfigError>(())
            })?
            .after)
    }

    /// Creates a disabled instance of `plugin_id` carrying over the fields of instance
    /// `source` that the new plugin also has: same name, and a value the new field's schema
    /// accepts. Secrets stay sealed on disk: each is opened with the source instance's
    /// binding and sealed again for the new one, and only into a field that is a secret too.
    /// This moves a customer from one provider to another behind the same capability
    /// (`exchange-ews` to `calendar-graph` keeps tenant, client id and secret) in one step.
    pub fn create_from(
        &self,
        id: &InstanceId,
        plugin_id: &str,
        source: &InstanceId,
    ) -> Result<(InstanceRecord, CarriedOver), ConfigError> {
        let plugin = self.plugin(plugin_id)?.clone();
        let from = self.store.get(source)?;
        let mut carried = CarriedOver::default();
        let mut values = Map::new();
        for (field, value) in &from.values {
            if plugin.schema.field(field).is_none() {
                continue;
            }
            if plugin.schema.is_secret(field) {
                carried
                    .skipped
                    .push((field.clone(), "a secret here, not one there".into()));
            } else if let Err(e) = plugin.schema.validate_field(field, value) {
                carried.skipped.push((field.clone(), e.to_string()));
            } else {
                values.insert(field.clone(), value.clone());
                carried.copied.push(field.clone());
            }
        }
        let mut secrets = BTreeMap::new();
        for (field, sealed) in &from.secrets {
            if plugin.schema.field(field).is_none() {
                continue;
            }
            if !plugin.schema.is_secret(field) {
                carried.skipped.push((
                    field.clone(),
                    "a secret there, which would be stored in clear here".into(),
                ));
                continue;
            }
            let plain = self.key.open(source.as_str(), field, sealed)?;
            crate::redact::register(&plain);
            secrets.insert(field.clone(), self.key.seal(id.as_str(), field, &plain));
            carried.copied.push(field.clone());
        }
        self.store.create(id, plugin_id)?;
        let record = self.store.update(id, None, |record| {
            record.values = values;
            record.secrets = secrets;
            Ok::<(), ConfigError>(())
        })?;
        Ok((record.after, carried))
    }

    /// Saves one field after checking it. Returns the new record.
    pub fn set(
        &self,
        id: &InstanceId,
        field: &str,
        value: Value,
        expected_revision: Option<u64>,
    ) -> Result<Changed, ConfigError> {
        let plugin = self.plugin(&self.store.get(id)?.plugin)?.clone();
        let field_error = |error| ConfigError::Field {
            instance: id.to_string(),
            error,
        };
        plugin
            .schema
            .validate_field(field, &value)
            .map_err(field_error)?;
        let secret = plugin.schema.is_secret(field);
        if secret {
            if let Value::String(s) = &value {
                crate::redact::register(s);
            }
        }
        self.store.update(id, expected_revision, |record| {
            if secret {
                let text = value.as_str().unwrap_or_default();
                record
                    .secrets
                    .insert(field.to_owned(), self.key.seal(id.as_str(), field, text));
                record.values.remove(field);
            } else {
                record.values.insert(field.to_owned(), value.clone());
                record.secrets.remove(field);
            }
            self.keep_enabled_valid(&plugin, record, "cannot take this change while enabled")
        })
    }

    /// Clears one field (back to its default, if any).
    pub fn unset(
        &self,
        id: &InstanceId,
        field: &str,
        expected_revision: Option<u64>,
    ) -> Result<Changed, ConfigError> {
        let plugin = self.plugin(&self.store.get(id)?.plugin)?.clone();
        if plugin.schema.field(field).is_none() {
            return Err(ConfigError::Field {
                instance: id.to_string(),
                error: plugin
                    .schema
                    .validate_field(field, &Value::Null)
                    .err()
                    .unwrap_or_else(|| FieldError::new(field, "unknown field")),
            });
        }
        self.store.update(id, expected_revision, |record| {
            record.values.remove(field);
            record.secrets.remove(field);
            self.keep_enabled_valid(&plugin, record, "cannot take this change while enabled")
        })
    }

    pub fn set_enabled(
        &self,
        id: &InstanceId,
        enabled: bool,
        expected_revision: Option<u64>,
    ) -> Result<Changed, ConfigError> {
        let plugin = self.plugin(&self.store.get(id)?.plugin)?.clone();
        self.store.update(id, expected_revision, |record| {
            record.enabled = enabled;
            self.keep_enabled_valid(&plugin, record, "cannot be enabled")
        })
    }

    pub fn delete(
        &self,
        id: &InstanceId,
        expected_revision: Option<u64>,
    ) -> Result<(), ConfigError> {
        Ok(self.store.delete(id, expected_revision)?)
    }

    fn keep_enabled_valid(
        &self,
        plugin: &LoadedPlugin,
        record: &InstanceRecord,
        action: &str,
    ) -> Result<(), ConfigError> {
        if !record.enabled {
            return Ok(());
        }
        let errors = self.check_whole(plugin, record)?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                instance: record.id.to_string(),
                action: if action == "cannot be enabled" {
                    "cannot be enabled until these are fixed".to_owned()
                } else {
                    format!("{action} (disable it first, or fix these)")
                },
                errors,
            })
        }
    }

    /// Every problem of a configuration: schema (with defaults and conditional rules) and the
    /// plugin's own rules.
    pub fn check_whole(
        &self,
        plugin: &LoadedPlugin,
        record: &InstanceRecord,
    ) -> Result<Vec<FieldError>, ConfigError> {
        let config = self.effective_config(plugin, record)?;
        let Value::Object(map) = &config else {
            return Ok(Vec::new());
        };
        let mut errors = plugin.schema.validate_whole(map);
        if errors.is_empty() {
            errors.extend(self.environment_conflicts(plugin, record, &config)?);
        }
        if errors.is_empty() {
            match plugin.validate(&config) {
                Ok(plugin_errors) => errors.extend(plugin_errors.into_iter().map(|e| {
                    FieldError::new(
                        e.field.as_deref().unwrap_or(""),
                        crate::redact::redact(&e.message),
                    )
                })),
                Err(e) => errors.push(FieldError::new(
                    "",
                    format!(
                        "the plugin's validation failed: {}",
                        crate::redact::redact(&e.message)
                    ),
                )),
            }
        }
        Ok(errors)
    }

    /// Fields an instance shares with an instance of the same plugin in *another* environment,
    /// when the plugin declares them environment-scoped (Chorus Pro: production and sandbox
    /// need distinct PISTE applications and URLs). Secrets are compared decrypted, in memory.
    fn environment_conflicts(
        &self,
        plugin: &LoadedPlugin,
        record: &InstanceRecord,
        config: &Value,
    ) -> Result<Vec<FieldError>, ConfigError> {
        let fields = &plugin.manifest.environment_scoped_fields;
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let Some(env) = plugin.environment(config) else {
            return Ok(Vec::new());
        };
        let mut errors = Vec::new();
        for other in self.store.list()? {
            if other.id == record.id || other.plugin != record.plugin {
                continue;
            }
            let Ok(other_config) = self.effective_config(plugin, &other) else {
                continue;
            };
            let Some(other_env) = plugin.environment(&other_config) else {
                continue;
            };
            if other_env == env {
                continue;
            }
            for field in fields {
                let same = match (config.get(field), other_config.get(field)) {
                    (Some(Value::String(a)), Some(Value::String(b))) => {
                        normalise(a) == normalise(b)
                    }
                    (Some(a), Some(b)) => a == b,
                    _ => false,
                };
                if same {
                    errors.push(FieldError::new(
                        field,
                        format!(
                            "the same value is used by instance `{}`, a {other_env} instance; {env} and {other_env} must use distinct values (the provider requires separate accounts for production and test)",
                            other.id
                        ),
                    ));
                }
            }
        }
        Ok(errors)
    }

    /// The configuration handed to the plugin: defaults, values and decrypted secrets.
    pub fn effective_config(
        &self,
        plugin: &LoadedPlugin,
        record: &InstanceRecord,
    ) -> Result<Value, ConfigError> {
        let mut values = record.values.clone();
        for (field, sealed) in &record.secrets {
            let plain = self.key.open(record.id.as_str(), field, sealed)?;
            values.insert(field.clone(), Value::String(plain));
        }
        Ok(Value::Object(plugin.schema.with_defaults(&values)))
    }

    /// A configuration built from saved values overlaid with unsaved ones (the console's
    /// "Test" before "Save"); nothing is written.
    pub fn config_with_overrides(
        &self,
        plugin: &LoadedPlugin,
        record: &InstanceRecord,
        overrides: &Map<String, Value>,
    ) -> Result<Value, ConfigError> {
        let mut config = self.effective_config(plugin, record)?;
        if let Value::Object(map) = &mut config {
            for (k, v) in overrides {
                plugin
                    .schema
                    .validate_field(k, v)
                    .map_err(|error| ConfigError::Field {
                        instance: record.id.to_string(),
                        error,
                    })?;
                if let Value::String(s) = v {
                    if plugin.schema.is_secret(k) {
                        crate::redact::register(s);
                    }
                }
                map.insert(k.clone(), v.clone());
            }
        }
        Ok(config)
    }

    /// Registers an instance's secrets with the redactor (before anything is logged for it).
    pub fn register_secrets(&self, record: &InstanceRecord) {
        for (field, sealed) in &record.secrets {
            let _ = self.key.open(record.id.as_str(), field, sealed);
        }
    }

    pub fn view(&self, record: &InstanceRecord) -> InstanceView {
        let plugin = self.registry.get(&record.plugin);
        let mut fields = Vec::new();
        if let Some(plugin) = plugin {
            for name in plugin.schema.field_names() {
                let prop = plugin.schema.field(name);
                let title = prop
                    .and_then(|p| p.get("title"))
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .to_owned();
                let secret = plugin.schema.is_secret(name);
                let (state, value) = if secret {
                    (
                        if record.secrets.contains_key(name) {
                            "set"
                        } else {
                            "unset"
                        },
                        None,
                    )
                } else if let Some(v) = record.values.get(name) {
                    ("set", Some(v.clone()))
                } else if let Some(d) = prop.and_then(|p| p.get("default")) {
                    ("default", Some(d.clone()))
                } else {
                    ("unset", None)
                };
                fields.push(FieldView {
                    name: name.clone(),
                    title,
                    secret,
                    state,
                    value,
                });
            }
        }
        InstanceView {
            id: record.id.to_string(),
            plugin: record.plugin.clone(),
            enabled: record.enabled,
            revision: record.revision,
            fields,
        }
    }

    /// Applies a provisioning file. Everything is checked first; then instances are created
    /// or updated field by field and enabled or disabled as the file says. Fields the file
    /// does not mention are left as they are. A secret may be given as `{ env = "NAME" }`.
    pub fn apply(
        &self,
        path: &str,
        text: &str,
        mut on_change: impl FnMut(Applied<'_>),
    ) -> Result<Vec<String>, ConfigError> {
        let bad = |reason: String| ConfigError::Provisioning {
            path: path.to_owned(),
            reason,
        };
        let file = read_provisioning(path, text)?;
        // Check everything before writing anything.
        let mut plan = Vec::new();
        for (name, spec) in &file.instances {
            InstanceId::new(name).map_err(|e| bad(e.to_string()))?;
            let plugin = self
                .plugin(&spec.plugin)
                .map_err(|e| bad(format!("[instances.{name}]: {e}")))?;
            let (id, values) = plan_instance(path, name, spec, &plugin.schema)?;
            plan.push((id, spec, values));
        }
        let mut report = Vec::new();
        for (id, spec, values) in plan {
            match self.store.get(&id) {
                Ok(existing) if existing.plugin != spec.plugin => {
                    return Err(bad(format!(
                    "instance `{id}` exists with plugin `{}`, the file says `{}`; delete it first",
                    existing.plugin, spec.plugin
                )))
                }
                Ok(_) => report.push(format!("updated {id}")),
                Err(StoreError::NotFound(_)) => {
                    // Another run may create it between the read and now: that is fine.
                    let (existing, created) = self.store.create_or_get(&id, &spec.plugin)?;
                    if existing.plugin != spec.plugin {
                        return Err(bad(format!(
                            "instance `{id}` exists with plugin `{}`, the file says `{}`; delete it first",
                            existing.plugin, spec.plugin
                        )));
                    }
                    if created {
                        let existing = self.with_initial_values(existing)?;
                        on_change(Applied::Created(&existing));
                    }
                    report.push(format!(
                        "{} {id}",
                        if created { "created" } else { "updated" }
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            if spec.enabled == Some(false) {
                on_change(Applied::Changed(None, &self.set_enabled(&id, false, None)?));
            }
            for (field, value) in values {
                on_change(Applied::Changed(
                    Some(&field),
                    &self.set(&id, &field, value, None)?,
                ));
            }
            if spec.enabled == Some(true) {
                on_change(Applied::Changed(None, &self.set_enabled(&id, true, None)?));
            }
        }
        Ok(report)
    }
}

/// What applying a provisioning file did, one step at a time (for the audit history).
#[derive(Debug)]
pub enum Applied<'a> {
    Created(&'a InstanceRecord),
    /// A field (or, without one, the enabled flag) changed.
    Changed(Option<&'a str>, &'a Changed),
}

/// A provisioning file (`config apply`), as read, before any check against the plugins.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningFile {
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceSpec>,
}

/// One `[instances.<id>]` table of a provisioning file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    pub plugin: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub values: BTreeMap<String, toml::Value>,
}

/// Reads a provisioning file; a refusal names the file, and TOML's own message gives the
/// line, column and key.
pub fn read_provisioning(path: &str, text: &str) -> Result<ProvisioningFile, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Provisioning {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Checks one instance of a provisioning file against its plugin's schema, writing nothing:
/// its id, and each value (environment references resolved) against its field. A refusal
/// names the file, the instance and the field.
pub fn plan_instance(
    path: &str,
    name: &str,
    spec: &InstanceSpec,
    schema: &ConfigSchema,
) -> Result<(InstanceId, Vec<(String, Value)>), ConfigError> {
    let bad = |reason: String| ConfigError::Provisioning {
        path: path.to_owned(),
        reason,
    };
    let id = InstanceId::new(name).map_err(|e| bad(e.to_string()))?;
    let mut values = Vec::new();
    for (field, raw) in &spec.values {
        let value = resolve_value(raw)
            .map_err(|e| bad(format!("[instances.{name}] field `{field}`: {e}")))?;
        schema
            .validate_field(field, &value)
            .map_err(|e| bad(format!("[instances.{name}] {e}")))?;
        values.push((field.clone(), value));
    }
    Ok((id, values))
}

/// A value as compared across instances: trimmed; URLs without case in scheme and host, a
/// default port or a trailing slash.
fn normalise(value: &str) -> String {
    let v = value.trim();
    match v.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = host.to_lowercase();
            let host = host
                .strip_suffix(":443")
                .or_else(|| host.strip_suffix(":80"))
                .unwrap_or(&host);
            format!(
                "{}://{host}/{}",
                scheme.to_lowercase(),
                path.trim_end_matches('/')
            )
        }
        None => v.to_owned(),
    }
}

/// A TOML value as JSON; `{ env = "NAME" }` reads an environment variable.
fn resolve_value(raw: &toml::Value) -> Result<Value, String> {
    if let toml::Value::Table(t) = raw {
        if let (1, Some(toml::Value::String(var))) = (t.len(), t.get("env")) {
            return std::env::var(var).map(Value::String).map_err(|_| {
                format!(
                    "the environment variable {var} is not set; export it before `config apply`"
                )
            });
        }
    }
    serde_json::to_value(raw).map_err(|e| e.to_string())
}
