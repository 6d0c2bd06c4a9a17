//! `passerelle plugins`, `schema` and `plugin …`: what is loaded, a plugin's schema, and the
//! publisher's tools (keys, signatures, scaffold, translations), which read only the files
//! they are given.

use super::exit::{refused, EXIT_FAILED, EXIT_REFUSED};
use super::print_json;
use crate::engine::Engine;
use crate::settings::Settings;
use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a publisher key pair (`<name>.key`, private, and `<name>.pub`).
    Keygen {
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[arg(long, default_value = "publisher")]
        name: String,
    },
    /// Sign plugin libraries: writes `<file>.sig` covering the file's SHA-256, id and version.
    Sign {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        key: PathBuf,
    },
    /// Check plugin libraries against their signatures and host.toml's trusted keys.
    Verify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Scaffold an out-of-tree plugin crate in `<dir>/<name>`: Cargo.toml, configuration,
    /// test routine, one capability of the category, in-process unit tests.
    New {
        /// Plugin id: lowercase letters, digits and '-', e.g. `acme-registry`.
        name: String,
        /// Decides the capability the plugin is generated with.
        #[arg(long, value_enum, default_value = "other")]
        category: crate::scaffold::Category,
        /// Folder in which the crate's folder is created.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The `plugin-api` folder of a Passerelle source tree (default: the one this
        /// passerelle was built from).
        #[arg(long)]
        api_path: Option<PathBuf>,
    },
    /// Check a plugin's translations: which texts of its schema a language lacks (shown in
    /// English), as Fluent to complete. Exits 1 when some are missing.
    Translations {
        /// A plugin library file, or the id of a plugin in the plugin directories.
        plugin: String,
        /// Language to check, e.g. `fr`.
        #[arg(long)]
        lang: String,
        #[arg(long)]
        json: bool,
    },
}

/// `passerelle schema <plugin>`: its configuration schema, in a language if asked.
pub fn schema(engine: &Engine, plugin: &str, lang: Option<&str>) -> anyhow::Result<ExitCode> {
    let p = engine.instances().plugin(plugin).cloned()?;
    let lang = crate::i18n::choose(&p, lang, None).map_err(refused)?;
    print_json(&crate::i18n::schema_in(&p, &lang))?;
    Ok(ExitCode::SUCCESS)
}

/// `plugin` commands are handled before the engine opens.
pub fn unreachable_plugin_command() -> anyhow::Result<ExitCode> {
    Err(anyhow::anyhow!(
        "internal: plugin commands run without the engine"
    ))
}

pub fn plugin_command(settings: &Settings, cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    use crate::signing;
    match cmd {
        PluginCommand::Keygen { out, name } => {
            let (private, public) = signing::keygen(&out, &name).map_err(refused)?;
            println!("private key: {} (keep it secret)", private.display());
            println!("public key:  {public}");
            println!(
                "\nTo trust it, add to {}:\n[plugins]\ntrusted_keys = [\"{public}\"]",
                crate::settings::HostFile::path(&settings.data_dir).display()
            );
        }
        PluginCommand::Sign { files, key } => {
            for file in files {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let options = crate::loader::LoadOptions::default_unchecked();
                let plugin = crate::loader::load_file(&file, &options).map_err(|reason| {
                    refused(format!("{} cannot be signed: {reason}", file.display()))
                })?;
                let sig = signing::sign(&file, &bytes, plugin.id(), &plugin.manifest.version, &key)
                    .map_err(refused)?;
                println!(
                    "signed {} as {} {} (sha256 {})",
                    file.display(),
                    sig.plugin_id,
                    sig.plugin_version,
                    sig.sha256
                );
            }
        }
        PluginCommand::New {
            name,
            category,
            dir,
            api_path,
        } => {
            let options = crate::scaffold::Options {
                name,
                category,
                dir,
                api_path,
            };
            println!("{}", crate::scaffold::scaffold(&options).map_err(refused)?);
        }
        PluginCommand::Translations { plugin, lang, json } => {
            return translations(settings, &plugin, &lang, json);
        }
        PluginCommand::Verify { files } => {
            let mut policy = settings.policy.clone();
            policy.mode = signing::PolicyMode::Strict;
            let mut all_ok = true;
            for file in files {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                match policy.check(&file, &bytes) {
                    Ok(signing::Verdict::Signed { id, version, key }) => {
                        println!(
                            "{}: signed as {id} {version} by trusted key {key}",
                            file.display()
                        )
                    }
                    Ok(signing::Verdict::Unsigned) => {
                        all_ok = false;
                        println!("{}: not signed", file.display());
                    }
                    Err(reason) => {
                        all_ok = false;
                        println!("{}: refused: {reason}", file.display());
                    }
                }
            }
            if !all_ok {
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `passerelle plugin translations`: the completeness of one language of a plugin.
fn translations(
    settings: &Settings,
    plugin: &str,
    lang: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let file = PathBuf::from(plugin);
    let loaded = if file.is_file() {
        let options = crate::loader::LoadOptions::default_unchecked();
        crate::loader::load_file(&file, &options)
            .map(std::sync::Arc::new)
            .map_err(|reason| refused(format!("{} cannot be loaded: {reason}", file.display())))?
    } else {
        let engine = Engine::open(settings.clone()).context("cannot open the host")?;
        engine.instances().plugin(plugin).cloned()?
    };
    let report = crate::i18n::check(&loaded, lang).map_err(refused)?;
    let complete = report.missing.is_empty() && report.unknown_fields.is_empty();
    if json {
        print_json(&report)?;
    } else {
        println!(
            "{} `{}`: {} of {} schema texts translated, {} messages in locales/{}.ftl",
            report.plugin,
            report.lang,
            report.texts - report.missing.len(),
            report.texts,
            report.messages,
            report.lang
        );
        if !report.unknown_fields.is_empty() {
            println!(
                "messages for fields the schema does not have (typo or renamed field?): {}",
                report.unknown_fields.join(", ")
            );
        }
        if !report.missing.is_empty() {
            println!(
                "shown in English for want of a translation; translate and add to locales/{}.ftl:\n",
                report.lang
            );
            print!("{}", crate::i18n::template(&report.missing));
        }
    }
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

pub fn plugins(engine: &Engine, json: bool) -> anyhow::Result<ExitCode> {
    let registry = engine.registry.load();
    if json {
        let plugins: Vec<Value> = registry
            .plugins
            .iter()
            .map(|p| {
                json!({
                    "id": p.manifest.id,
                    "name": p.manifest.name,
                    "version": p.manifest.version,
                    "api_version": p.manifest.api_version,
                    "languages": crate::i18n::languages(p),
                    "category": p.manifest.category,
                    "capabilities": p.manifest.capabilities,
                    "tasks": p.manifest.tasks,
                    "quotas": p.manifest.quotas,
                    "path": p.path,
                    "sha256": p.sha256,
                    "signed_by": p.signed_by,
                    "load_ms": p.load_time.as_secs_f64() * 1000.0,
                    "isolation": p.isolation(),
                    "process": p.process().map(|w| json!({
                        "memory_limit_mb": w.memory_limit_mb(),
                        "stats": w.stats(),
                    })),
                })
            })
            .collect();
        print_json(&json!({
            "plugins": plugins,
            "refused": registry.refused,
            "events": registry.events,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if registry.plugins.is_empty() {
        println!("No plugins loaded. Searched:");
        for dir in &engine.settings.plugin_dirs {
            println!("  {}", dir.path.display());
        }
    }
    for p in &registry.plugins {
        println!(
            "{:<16} {:<10} {:<9} {}  [{}]",
            p.manifest.id,
            p.manifest.version,
            p.manifest.category.to_string(),
            p.manifest.name,
            p.manifest.capabilities.join(", ")
        );
        println!("{:<16} {}", "", p.path.display());
        if let Some(process) = p.process() {
            let stats = process.stats();
            println!(
                "{:<16} runs in plugin processes (memory limit {} MB; {} started, {} failed)",
                "",
                process.memory_limit_mb(),
                stats.started,
                stats.failures
            );
        }
    }
    if !registry.refused.is_empty() {
        println!("\nRefused files:");
        for r in &registry.refused {
            println!("  {}\n    {}", r.path.display(), r.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}
