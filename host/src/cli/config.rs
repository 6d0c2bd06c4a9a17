//! `passerelle config …`: create, show, change and delete instances, each change audited
//! with the operating-system account that made it.

use super::{instance_id, print_json};
use crate::engine::Engine;
use crate::ids::InstanceId;
use crate::instances::ConfigError;
use anyhow::Context as _;
use clap::Subcommand;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Create a disabled instance of a plugin.
    Create {
        instance: String,
        #[arg(long)]
        plugin: String,
        /// Carry over the fields of this instance that the plugin also has (same name;
        /// secrets stay sealed), e.g. to move from exchange-ews to calendar-graph.
        #[arg(long, value_name = "INSTANCE")]
        from: Option<String>,
    },
    /// List instances.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show an instance's fields (secrets only as set/unset).
    Show {
        instance: String,
        #[arg(long)]
        json: bool,
    },
    /// Print one field's value (secrets only as set/unset).
    Get {
        instance: String,
        field: String,
        #[arg(long)]
        json: bool,
    },
    /// Save one field, validated against its schema. Give the value as an argument or, for
    /// secrets, with --stdin (a secret argument is refused: it would land in the shell
    /// history and the process list).
    Set {
        instance: String,
        field: String,
        /// The value; one starting with `-` (e.g. `-1`) is a value, not an option.
        #[arg(allow_hyphen_values = true)]
        value: Option<String>,
        /// Read the value from standard input (trailing newline removed).
        #[arg(long, conflicts_with = "value")]
        stdin: bool,
        /// Refuse the change unless the instance is still at this revision.
        #[arg(long)]
        if_revision: Option<u64>,
        /// Accept a secret value given as an argument (for scripts that cannot use --stdin);
        /// logged as a warning and recorded in the audit history.
        #[arg(long)]
        insecure_argv: bool,
    },
    /// Clear one field (back to its default).
    Unset {
        instance: String,
        field: String,
        #[arg(long)]
        if_revision: Option<u64>,
    },
    /// Enable an instance after checking its whole configuration.
    Enable { instance: String },
    /// Disable an instance.
    Disable { instance: String },
    /// Delete an instance, its saved values and its state.
    Delete { instance: String },
    /// Create or update instances from a provisioning file (TOML).
    Apply { file: PathBuf },
    /// Check a configuration document (JSON) against a plugin's schema without saving it.
    Check(super::check::CheckArgs),
}

/// The audit history as the command line writes it: every change, with the operating-system
/// account that made it (`cli:<login>`).
pub(super) struct CliAudit {
    data_dir: std::path::PathBuf,
    backend: crate::storage::Backend,
    /// Opened on the first change only: read-only commands (`config list`, `show`) do not
    /// touch the console database.
    log: std::cell::OnceCell<Option<crate::server::audit::AuditLog>>,
    actor: String,
}

impl CliAudit {
    pub(super) fn open(engine: &Engine) -> Self {
        CliAudit {
            data_dir: engine.settings.data_dir.clone(),
            backend: engine.backend.clone(),
            log: std::cell::OnceCell::new(),
            actor: crate::actor::cli_actor(),
        }
    }

    fn log(&self) -> Option<&crate::server::audit::AuditLog> {
        self.log
            .get_or_init(|| {
                crate::server::audit::AuditLog::open(&self.backend, &self.data_dir)
                    .map_err(|e| tracing::error!(error = %e, "cannot open the audit history; this change is not audited"))
                    .ok()
            })
            .as_ref()
    }

    fn changed(&self, engine: &Engine, changed: &crate::store::Changed, field: Option<&str>) {
        if let Some(log) = self.log() {
            crate::server::actions::audit_changed(engine, log, &self.actor, changed, field);
        }
    }

    /// A field change whose audit entry carries how it was made (its actor gets the note).
    fn changed_noted(
        &self,
        engine: &Engine,
        changed: &crate::store::Changed,
        field: &str,
        note: &str,
    ) {
        if let Some(log) = self.log() {
            let actor = format!("{} ({note})", self.actor);
            crate::server::actions::audit_changed(engine, log, &actor, changed, Some(field));
        }
    }

    pub(super) fn record(
        &self,
        action: crate::server::audit::Action,
        id: &InstanceId,
        old: Option<String>,
        new: Option<String>,
    ) {
        if let Some(log) = self.log() {
            log.record_or_log(crate::server::audit::Change {
                actor: &self.actor,
                instance: Some(id.as_str()),
                field: None,
                action,
                old,
                new,
            });
        }
    }
}

pub fn config(engine: &Engine, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let instances = engine.instances();
    let audit = CliAudit::open(engine);
    match cmd {
        ConfigCommand::Check(args) => return super::check::run(engine, args),
        ConfigCommand::Create {
            instance,
            plugin,
            from: None,
        } => {
            let id = instance_id(&instance)?;
            instances.create(&id, &plugin)?;
            audit.record(
                crate::server::audit::Action::CreateInstance,
                &id,
                None,
                Some(format!("plugin {plugin}")),
            );
            println!("created instance {id} of plugin {plugin} (disabled); set its fields with `passerelle config set {id} <field> <value>`");
        }
        ConfigCommand::Create {
            instance,
            plugin,
            from: Some(source),
        } => {
            let id = instance_id(&instance)?;
            let (_, carried) = instances.create_from(&id, &plugin, &instance_id(&source)?)?;
            audit.record(
                crate::server::audit::Action::CreateInstance,
                &id,
                None,
                Some(format!(
                    "plugin {plugin}, from `{source}`: {}",
                    carried.copied.join(", ")
                )),
            );
            let copied = if carried.copied.is_empty() {
                "nothing (no field in common)".to_owned()
            } else {
                carried.copied.join(", ")
            };
            println!("created instance {id} of plugin {plugin} (disabled) from `{source}`; copied: {copied}");
            for (field, why) in &carried.skipped {
                println!("  not copied: {field} ({why})");
            }
            println!("check it with `passerelle config show {id}`, set what is missing, then `passerelle config enable {id}`");
        }
        ConfigCommand::List { json } => {
            let records = engine.store.list()?;
            if json {
                let views: Vec<_> = records.iter().map(|r| instances.view(r)).collect();
                print_json(&views)?;
            } else if records.is_empty() {
                println!("No instances. Create one with `passerelle config create <id> --plugin <plugin-id>`.");
            } else {
                for r in records {
                    let last = engine
                        .services
                        .state
                        .last_test(r.id.as_str())
                        .ok()
                        .flatten()
                        .and_then(|(_, v)| {
                            v.get("status").and_then(Value::as_str).map(str::to_owned)
                        })
                        .unwrap_or_else(|| "not tested".into());
                    let degraded = engine
                        .services
                        .degraded
                        .get(r.id.as_str())
                        .map(|d| format!("  DEGRADED: {}", d.reason))
                        .unwrap_or_default();
                    println!(
                        "{:<20} {:<14} {:<9} rev {:<4} last test: {last}{degraded}",
                        r.id.as_str(),
                        r.plugin,
                        if r.enabled { "enabled" } else { "disabled" },
                        r.revision
                    );
                }
            }
        }
        ConfigCommand::Show { instance, json } => {
            let record = engine
                .store
                .get(&instance_id(&instance)?)
                .map_err(ConfigError::from)?;
            let view = instances.view(&record);
            if json {
                print_json(&view)?;
            } else {
                println!(
                    "{} (plugin {}, {}, revision {})",
                    view.id,
                    view.plugin,
                    if view.enabled { "enabled" } else { "disabled" },
                    view.revision
                );
                for f in &view.fields {
                    let shown = match (&f.value, f.state) {
                        (_, "unset") => "(unset)".to_owned(),
                        (None, state) => state.to_owned(),
                        (Some(v), "default") => format!("{} (default)", display_value(v)),
                        (Some(v), _) => display_value(v),
                    };
                    println!("  {:<22} {shown}", f.name);
                }
            }
        }
        ConfigCommand::Get {
            instance,
            field,
            json,
        } => {
            let record = engine
                .store
                .get(&instance_id(&instance)?)
                .map_err(ConfigError::from)?;
            let view = instances.view(&record);
            let Some(f) = view.fields.iter().find(|f| f.name == field) else {
                let plugin = instances.plugin(&record.plugin)?;
                let e = plugin.schema.validate_field(&field, &Value::Null).err();
                return Err(ConfigError::Field {
                    instance: instance.clone(),
                    error: e
                        .unwrap_or_else(|| crate::schema::FieldError::new(&field, "unknown field")),
                }
                .into());
            };
            if json {
                print_json(f)?;
            } else {
                match (&f.value, f.secret) {
                    (_, true) => println!("{}", f.state),
                    (Some(v), _) => println!("{}", display_value(v)),
                    (None, _) => println!("(unset)"),
                }
            }
        }
        ConfigCommand::Set {
            instance,
            field,
            value,
            stdin,
            if_revision,
            insecure_argv,
        } => {
            let id = instance_id(&instance)?;
            let on_argv = value.is_some();
            let raw = match (value, stdin) {
                (Some(v), _) => v,
                (None, true) => {
                    let mut bytes = Vec::new();
                    std::io::stdin().read_to_end(&mut bytes)?;
                    let text = String::from_utf8(bytes).map_err(|e| ConfigError::Provisioning {
                        path: "standard input".into(),
                        reason: format!("the value of `{field}` is not valid UTF-8 text (invalid byte at offset {}); send it as UTF-8", e.utf8_error().valid_up_to()),
                    })?;
                    text.trim_end_matches(['\n', '\r']).to_owned()
                }
                (None, false) => anyhow::bail!(ConfigError::Provisioning {
                    path: "command line".into(),
                    reason: format!(
                        "give a value for `{field}`, or --stdin to read it from standard input"
                    ),
                }),
            };
            let record = engine.store.get(&id).map_err(ConfigError::from)?;
            let plugin = instances.plugin(&record.plugin)?.clone();
            let secret_on_argv = on_argv && plugin.schema.is_secret(&field);
            if secret_on_argv {
                crate::argv::check_secret_argument(&instance, &field, insecure_argv)?;
            }
            let value = plugin
                .schema
                .parse_cli_value(&field, &raw)
                .map_err(|error| ConfigError::Field {
                    instance: id.to_string(),
                    error,
                })?;
            let record = instances.set(&id, &field, value, if_revision)?;
            let shown = if plugin.schema.is_secret(&field) {
                "(secret, set)".to_owned()
            } else {
                raw
            };
            if secret_on_argv {
                audit.changed_noted(engine, &record, &field, crate::argv::AUDIT_NOTE);
            } else {
                audit.changed(engine, &record, Some(&field));
            }
            println!(
                "{id}.{field} = {shown} (revision {})",
                record.after.revision
            );
        }
        ConfigCommand::Unset {
            instance,
            field,
            if_revision,
        } => {
            let id = instance_id(&instance)?;
            let record = instances.unset(&id, &field, if_revision)?;
            audit.changed(engine, &record, Some(&field));
            println!("{id}.{field} cleared (revision {})", record.after.revision);
        }
        ConfigCommand::Enable { instance } => {
            let id = instance_id(&instance)?;
            let changed = instances.set_enabled(&id, true, None)?;
            audit.changed(engine, &changed, None);
            println!("{id} enabled");
        }
        ConfigCommand::Disable { instance } => {
            let id = instance_id(&instance)?;
            let changed = instances.set_enabled(&id, false, None)?;
            audit.changed(engine, &changed, None);
            println!("{id} disabled");
        }
        ConfigCommand::Delete { instance } => {
            let id = instance_id(&instance)?;
            let before = engine.store.get(&id).map_err(ConfigError::from)?;
            instances.delete(&id, None)?;
            audit.record(
                crate::server::audit::Action::DeleteInstance,
                &id,
                Some(format!(
                    "plugin {}, revision {}",
                    before.plugin, before.revision
                )),
                None,
            );
            if let Err(e) = engine.services.state.forget_instance(id.as_str()) {
                tracing::warn!(instance = %id, error = %e, "instance deleted but its state remains");
            }
            println!("{id} deleted");
        }
        ConfigCommand::Apply { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let text = String::from_utf8(bytes).map_err(|e| ConfigError::Provisioning {
                path: file.display().to_string(),
                reason: format!(
                    "it is not valid UTF-8 text (invalid byte at offset {}); save it as UTF-8",
                    e.utf8_error().valid_up_to()
                ),
            })?;
            let lines = instances.apply(
                &file.display().to_string(),
                &text,
                |applied| match applied {
                    crate::instances::Applied::Created(record) => audit.record(
                        crate::server::audit::Action::CreateInstance,
                        &record.id,
                        None,
                        Some(format!("plugin {}", record.plugin)),
                    ),
                    crate::instances::Applied::Changed(field, changed) => {
                        audit.changed(engine, changed, field)
                    }
                },
            )?;
            for line in lines {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
