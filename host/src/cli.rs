//! The command line: every flag is defined once here; `--help` comes from these definitions.
//!
//! Exit codes (stable, documented in the README):
//! - 0: success (a test with warnings included)
//! - 1: the operation ran and failed (test failed, provider error)
//! - 2: invalid command line
//! - 3: refused: invalid value, incomplete configuration, stale revision
//! - 4: not found: instance, plugin, company
//! - 70: internal error

use crate::engine::Engine;
use crate::ids::InstanceId;
use crate::instances::ConfigError;
use crate::runner::RunError;
use crate::settings::{Settings, DEFAULT_TEST_DEADLINE};
use crate::store::StoreError;
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use passerelle_plugin_api::capabilities::{Company, CompanyLookup, CompanyQuery};
use passerelle_plugin_api::{ErrorKind, Operation, Status, TestReport};
use serde_json::{json, Map, Value};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_REFUSED: u8 = 3;
pub const EXIT_NOT_FOUND: u8 = 4;
pub const EXIT_INTERNAL: u8 = 70;

/// Runs an ERP's third-party integrations as dynamic plugins.
#[derive(Debug, Parser)]
#[command(name = "passerelle", version, about, propagate_version = true)]
pub struct Cli {
    /// Directory to load plugins from (repeatable). Default: `passerelle_*` libraries beside
    /// the executable and its `plugins/` folder (never the current directory).
    #[arg(
        long = "plugin-dir",
        global = true,
        env = "PASSERELLE_PLUGIN_DIRS",
        value_delimiter = ','
    )]
    plugin_dirs: Vec<PathBuf>,
    /// Data directory: instance configuration, state, secret key.
    #[arg(
        long,
        global = true,
        env = "PASSERELLE_DATA_DIR",
        default_value = "data"
    )]
    data_dir: PathBuf,
    /// Key file sealing secret values (default: <data-dir>/keys/secret.key). The
    /// PASSERELLE_SECRET_KEY environment variable, when set, wins.
    #[arg(long, global = true, env = "PASSERELLE_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// PostgreSQL database shared by the hosts of a cluster, e.g.
    /// `postgres://passerelle@db.example/passerelle` (default: embedded storage in the data
    /// directory). A password goes in PASSERELLE_DATABASE_URL or PGPASSWORD, never here.
    #[arg(
        long,
        global = true,
        env = "PASSERELLE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Deadline of a test routine, in seconds.
    #[arg(long, global = true, default_value_t = DEFAULT_TEST_DEADLINE.as_secs())]
    deadline: u64,
    /// Plugin trust policy, overriding host.toml: `strict` (only signed plugins; the default
    /// of every command) or `allow-unsigned` (development only).
    #[arg(long, global = true, value_enum, env = "PASSERELLE_PLUGIN_POLICY")]
    plugin_policy: Option<crate::signing::PolicyMode>,
    /// Log filter (e.g. `info`, `debug`, `passerelle=debug`); RUST_LOG works too.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    /// Log lines as `text` or as `json` objects, one per line (same redaction).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "PASSERELLE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List loaded plugins and refused files with the reasons.
    Plugins {
        #[arg(long)]
        json: bool,
    },
    /// Print a plugin's configuration schema (JSON Schema, draft-07).
    Schema {
        plugin: String,
        /// Language of titles and descriptions, e.g. `fr` (English when the plugin does not
        /// ship it).
        #[arg(long)]
        lang: Option<String>,
    },
    /// Configure instances.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run an instance's test routine against the real service.
    Test {
        instance: String,
        #[arg(long)]
        json: bool,
        /// Language of the report's steps and messages, e.g. `fr`.
        #[arg(long)]
        lang: Option<String>,
    },
    /// Look up a company by SIRET or SIREN (capability company.lookup).
    Company {
        /// SIRET (14 digits) or SIREN (9 digits).
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Sign and verify plugin libraries; create publisher keys.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage the extra certificate authorities the host trusts.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// List scheduled tasks with their last and next run; `tasks run` runs one now.
    Tasks {
        #[command(subcommand)]
        command: Option<TasksCommand>,
        #[arg(long)]
        json: bool,
    },
    /// Read an expense receipt (capability ocr.expense_receipt).
    Ocr(crate::capability_cli::OcrArgs),
    /// Electronic signatures (capabilities esign.*).
    #[command(subcommand)]
    Sign(crate::capability_cli::SignCommand),
    /// E-invoicing (capabilities einvoice.*): submit, follow, list deposits.
    #[command(subcommand)]
    Invoice(crate::capability_cli::InvoiceCommand),
    /// Calendar synchronisation (capability calendar.sync).
    #[command(subcommand)]
    Calendar(crate::capability_cli::CalendarCommand),
    /// Call any capability operation with a JSON input (what the ERP does over HTTP).
    Invoke {
        /// Operation, e.g. `company.lookup`.
        operation: String,
        /// Input as JSON, e.g. '{"id":"21920023500014"}'.
        #[arg(long, default_value = "{}")]
        input: String,
        #[command(flatten)]
        target: Target,
    },
    /// Serve the HTTP API and the web console (and run scheduled tasks) until Ctrl-C.
    Serve {
        /// Address to listen on. Loopback by default; another address makes the console
        /// reachable from other machines: put a TLS proxy in front.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Mark the console's cookies `Secure`: browsers reach it over HTTPS only, through a
        /// TLS-terminating proxy (also `secure_cookies = true` in `[server]` of host.toml).
        #[arg(long)]
        secure_cookies: bool,
        /// Believe the reverse proxy's `X-Forwarded-Proto`, `-For` and `-Host`; only when
        /// nothing but the proxy can reach the server (also `trust_proxy = true` in
        /// `[server]` of host.toml).
        #[arg(long)]
        trust_proxy: bool,
    },
    /// Webhooks that receive the events (secret from standard input), their deliveries.
    #[command(subcommand)]
    Webhooks(crate::events::cli::WebhooksCommand),
    /// Events for the ERP: list them, emit one by hand.
    #[command(subcommand)]
    Events(crate::events::cli::EventsCommand),
    /// Console administrators and API tokens.
    #[command(subcommand)]
    Admin(crate::server::admin::AdminCommand),
    /// Serve one plugin library over stdin/stdout (started by the host in process isolation).
    #[command(hide = true)]
    Worker(crate::isolation::worker::WorkerArgs),
}

#[derive(Debug, Args)]
struct Target {
    /// Instance to use; by default the one enabled instance serving the operation.
    #[arg(long)]
    instance: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
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

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Trust the certificate authorities of a file (DER or PEM, a bundle too).
    Add { file: PathBuf },
    /// List the added authorities.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting an authority, by SHA-256 fingerprint (8 hex digits at least).
    Remove { fingerprint: String },
}

#[derive(Debug, Subcommand)]
enum TasksCommand {
    /// Run one task of an instance now.
    Run { instance: String, task: String },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
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
    Check(crate::cli_check::CheckArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::hardening::harden_process();
    crate::hardening::install_panic_hook();
    if let Command::Worker(args) = &cli.command {
        return crate::isolation::worker::run(args.clone());
    }
    // Dropped last (declared first): everything written to stderr until then is redacted,
    // including what in-process plugins print there themselves.
    let _stderr = crate::hardening::capture_stderr();
    crate::logging::init(&cli.log, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let result = runtime.block_on(run(cli));
    // Abandoned plugin calls (past their deadline) must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::redact::redact(&format!("{e:#}")));
            ExitCode::from(exit_code_of(&e))
        }
    }
}

fn exit_code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<ConfigError>() {
            return match c {
                ConfigError::Store(StoreError::NotFound(_)) | ConfigError::UnknownPlugin { .. } => {
                    EXIT_NOT_FOUND
                }
                ConfigError::Store(StoreError::Io { .. }) => EXIT_INTERNAL,
                _ => EXIT_REFUSED,
            };
        }
        if let Some(r) = cause.downcast_ref::<RunError>() {
            return match r {
                RunError::Config(ConfigError::Store(StoreError::NotFound(_))) => EXIT_NOT_FOUND,
                RunError::Config(_) | RunError::Disabled(_) | RunError::Ambiguous { .. } => {
                    EXIT_REFUSED
                }
                RunError::NoProvider(_) => EXIT_NOT_FOUND,
                RunError::Busy(_) | RunError::WaitedTooLong { .. } => EXIT_FAILED,
                RunError::Plugin(p) => match p.kind {
                    ErrorKind::NotFound => EXIT_NOT_FOUND,
                    ErrorKind::InvalidInput | ErrorKind::Config => EXIT_REFUSED,
                    _ => EXIT_FAILED,
                },
            };
        }
        if cause.downcast_ref::<crate::ids::InvalidId>().is_some() {
            return EXIT_REFUSED;
        }
    }
    EXIT_INTERNAL
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The PostgreSQL URL, refused when its password was typed on the command line (shell
/// history, process list): it must come from the environment then.
fn database_url(given: Option<&str>) -> anyhow::Result<Option<crate::storage::DatabaseUrl>> {
    let Some(given) = given else { return Ok(None) };
    let url = crate::storage::DatabaseUrl::parse(given).map_err(refused)?;
    let from_env = std::env::var("PASSERELLE_DATABASE_URL").is_ok_and(|v| v == given);
    if url.has_password() && !from_env {
        return Err(refused(format!(
            "--database-url {url}: a password on the command line lands in the shell history and in the process list; \
             put the URL in PASSERELLE_DATABASE_URL, or keep the password in PGPASSWORD"
        )));
    }
    Ok(Some(url))
}

fn instance_id(s: &str) -> anyhow::Result<InstanceId> {
    Ok(InstanceId::new(s)?)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Strict for every command: a plugin runs with the rights of whoever runs the host.
    let default_mode = crate::signing::PolicyMode::Strict;
    let host_file = crate::settings::HostFile::load(&cli.data_dir).map_err(refused)?;
    let policy = host_file
        .policy(&cli.data_dir, default_mode, cli.plugin_policy)
        .map_err(refused)?;
    let settings = Settings::new(
        cli.data_dir.clone(),
        cli.plugin_dirs.clone(),
        cli.key_file.clone(),
        Duration::from_secs(cli.deadline.max(1)),
    )
    .with_policy(policy)
    .with_isolation(host_file.isolation(&cli.data_dir).map_err(refused)?)
    .with_limits(host_file.limits(&cli.data_dir).map_err(refused)?)
    .with_database(database_url(cli.database_url.as_deref())?);
    // Signing tools read only the files they are given: no plugin directory is loaded.
    if let Command::Plugin(cmd) = cli.command {
        return plugin_command(&settings, cmd);
    }
    crate::datadir::secure(&cli.data_dir);
    if matches!(cli.command, Command::Serve { .. }) {
        // Before the plugins load, so that refused files are counted too.
        crate::metrics::handle();
    }
    let engine = Engine::open(settings).context("cannot open the host")?;
    match cli.command {
        Command::Plugins { json } => plugins(&engine, json),
        Command::Schema { plugin, lang } => {
            let p = engine.instances().plugin(&plugin).cloned()?;
            let lang = crate::i18n::choose(&p, lang.as_deref(), None).map_err(refused)?;
            print_json(&crate::i18n::schema_in(&p, &lang))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(cmd) => config(&engine, cmd),
        Command::Test {
            instance,
            json,
            lang,
        } => {
            let id = instance_id(&instance)?;
            let report = engine.test(&id, &Map::new()).await?;
            let plugin = engine
                .store
                .get(&id)
                .ok()
                .and_then(|r| engine.registry.get(&r.plugin).cloned());
            let report = match (plugin, lang) {
                (Some(p), Some(lang)) => {
                    let lang = crate::i18n::choose(&p, Some(&lang), None).map_err(refused)?;
                    crate::i18n::report_in(&p, report, &lang)
                }
                _ => report,
            };
            CliAudit::open(&engine).record(
                crate::server::audit::Action::Test,
                &id,
                None,
                Some(format!("{}; saved values", report.status)),
            );
            if json {
                print_json(&report)?;
            } else {
                print_report(&id, &report);
            }
            Ok(if report.status == Status::Failed {
                ExitCode::from(EXIT_FAILED)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Company { id, target } => {
            let instance = target.instance.as_deref().map(instance_id).transpose()?;
            let input = serde_json::to_value(CompanyQuery { id })?;
            let out = engine
                .invoke(
                    CompanyLookup::NAME,
                    input,
                    instance.as_ref(),
                    &crate::actor::cli_actor(),
                )
                .await?;
            if target.json {
                print_json(&out)?;
            } else {
                let company: Company = serde_json::from_value(out)?;
                print_company(&company);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Trust(cmd) => trust(&engine, cmd),
        Command::Ocr(args) => crate::capability_cli::ocr(&engine, args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Sign(cmd) => crate::capability_cli::sign(&engine, cmd)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Invoice(cmd) => crate::capability_cli::invoice(&engine, cmd).await,
        Command::Calendar(cmd) => crate::capability_cli::calendar(&engine, cmd)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Plugin(_) => unreachable_plugin_command(),
        Command::Tasks {
            command: None,
            json,
        } => tasks(&engine, json),
        Command::Tasks {
            command: Some(TasksCommand::Run { instance, task }),
            ..
        } => {
            let id = instance_id(&instance)?;
            let run = engine.run_task(&id, &task, None).await?;
            println!(
                "{id} {task}: ok in {} ms — {}",
                run.duration_ms, run.summary
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke {
            operation,
            input,
            target,
        } => {
            let instance = target.instance.as_deref().map(instance_id).transpose()?;
            let input: Value = serde_json::from_str(&input)
                .context("--input is not valid JSON")
                .map_err(|e| {
                    anyhow::Error::new(ConfigError::Provisioning {
                        path: "--input".into(),
                        reason: format!("{e:#}"),
                    })
                })?;
            let out = engine
                .invoke(
                    &operation,
                    input,
                    instance.as_ref(),
                    &crate::actor::cli_actor(),
                )
                .await?;
            print_json(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            secure_cookies,
            trust_proxy,
        } => {
            let web = crate::server::WebOptions {
                secure_cookies: secure_cookies || host_file.server.secure_cookies,
                trust_proxy: trust_proxy || host_file.server.trust_proxy,
            };
            let engine = std::sync::Arc::new(engine);
            let _scheduler = crate::scheduler::spawn(engine.clone());
            let _hot_add = crate::hot::spawn(engine.clone());
            let _deliveries = crate::events::delivery::spawn(engine.clone()).map_err(refused)?;
            crate::server::serve(engine, listen, web).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Webhooks(cmd) => crate::events::cli::webhooks(&engine, cmd).await,
        Command::Events(cmd) => crate::events::cli::events(&engine, cmd),
        Command::Admin(cmd) => {
            crate::server::admin::run(&engine.settings.data_dir, &engine.backend, cmd)
        }
        Command::Worker(_) => anyhow::bail!("`passerelle worker` is started by the host itself"),
    }
}

/// `plugin` commands are handled before the engine opens.
fn unreachable_plugin_command() -> anyhow::Result<ExitCode> {
    Err(anyhow::anyhow!(
        "internal: plugin commands run without the engine"
    ))
}

fn plugin_command(settings: &Settings, cmd: PluginCommand) -> anyhow::Result<ExitCode> {
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

fn trust(engine: &Engine, cmd: TrustCommand) -> anyhow::Result<ExitCode> {
    let store = crate::trust::TrustStore::new(&engine.settings.data_dir);
    match cmd {
        TrustCommand::Add { file } => {
            for info in store.add(&file).map_err(refused)? {
                println!("trusted:\n{info}\n");
            }
        }
        TrustCommand::List { json } => {
            let list = store.list().map_err(refused)?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("No extra authorities; the system's roots apply. Add one with `passerelle trust add <file>`.");
            } else {
                for info in list {
                    println!("{info}\n");
                }
            }
        }
        TrustCommand::Remove { fingerprint } => {
            let info = store.remove(&fingerprint).map_err(refused)?;
            println!("no longer trusted: {} ({})", info.subject, info.sha256);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Wraps an error as a refusal (exit code 3).
pub(crate) fn refused(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(ConfigError::Refused(e.to_string()))
}

fn tasks(engine: &Engine, json: bool) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for record in engine.store.list()? {
        let Some(plugin) = engine.registry.get(&record.plugin) else {
            continue;
        };
        let config = engine.instances().effective_config(plugin, &record).ok();
        for task in &plugin.manifest.tasks {
            let (interval, delay) = config
                .as_ref()
                .map(|c| crate::scheduler::timing(c, &task.interval_field, &task.start_delay_field))
                .unwrap_or_default();
            let last = engine
                .services
                .state
                .last_task_run(record.id.as_str(), &task.name)
                .ok()
                .flatten();
            rows.push(json!({
                "instance": record.id,
                "task": task.name,
                "description": task.description,
                "enabled": record.enabled,
                "interval_s": interval.as_secs(),
                "start_delay_s": delay.as_secs(),
                "last_run": last,
            }));
        }
    }
    if json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("No tasks: no instance of a plugin that declares tasks.");
    }
    for r in &rows {
        let last = &r["last_run"];
        let last_text = if last.is_null() {
            "never run".to_owned()
        } else {
            format!(
                "last run {} ({} ms): {} — {}",
                format_ms(last["started_ms"].as_i64().unwrap_or(0)),
                last["duration_ms"],
                if last["ok"] == json!(true) {
                    "ok"
                } else {
                    "FAILED"
                },
                last["summary"].as_str().unwrap_or("")
            )
        };
        let next = last["next_ms"]
            .as_i64()
            .map(|n| format!("next {}", format_ms(n)))
            .unwrap_or_else(|| {
                format!(
                    "runs {} s after `passerelle serve` starts, then every {} s",
                    r["start_delay_s"], r["interval_s"]
                )
            });
        println!(
            "{} {}{}\n    {last_text}\n    {next}",
            r["instance"].as_str().unwrap_or(""),
            r["task"].as_str().unwrap_or(""),
            if r["enabled"] == json!(true) {
                ""
            } else {
                " (instance disabled)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-11-28 12:00:00 UTC` from milliseconds since the epoch.
fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn plugins(engine: &Engine, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let plugins: Vec<Value> = engine
            .registry
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
            "refused": engine.registry.refused,
            "events": engine.registry.events,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if engine.registry.plugins.is_empty() {
        println!("No plugins loaded. Searched:");
        for dir in &engine.settings.plugin_dirs {
            println!("  {}", dir.path.display());
        }
    }
    for p in &engine.registry.plugins {
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
    if !engine.registry.refused.is_empty() {
        println!("\nRefused files:");
        for r in &engine.registry.refused {
            println!("  {}\n    {}", r.path.display(), r.reason);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The audit history as the command line writes it: every change, with the operating-system
/// account that made it (`cli:<login>`).
struct CliAudit {
    data_dir: std::path::PathBuf,
    /// Opened on the first change only: read-only commands (`config list`, `show`) do not
    /// touch the console database.
    log: std::cell::OnceCell<Option<crate::server::audit::AuditLog>>,
    actor: String,
}

impl CliAudit {
    fn open(engine: &Engine) -> Self {
        CliAudit {
            data_dir: engine.settings.data_dir.clone(),
            log: std::cell::OnceCell::new(),
            actor: crate::actor::cli_actor(),
        }
    }

    fn log(&self) -> Option<&crate::server::audit::AuditLog> {
        self.log
            .get_or_init(|| {
                crate::server::db::ConsoleDb::open_in(&self.data_dir)
                    .map(|db| crate::server::audit::AuditLog::new(std::sync::Arc::new(db)))
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

    fn record(
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

fn config(engine: &Engine, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let instances = engine.instances();
    let audit = CliAudit::open(engine);
    match cmd {
        ConfigCommand::Check(args) => return crate::cli_check::run(engine, args),
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

fn print_report(id: &InstanceId, report: &TestReport) {
    println!("Test of {id}: {} — {}", report.status, report.summary);
    for step in &report.steps {
        let mark = match step.status {
            Status::Ok => "ok  ",
            Status::Warning => "warn",
            Status::Failed => "FAIL",
            Status::Skipped => "skip",
        };
        println!(
            "  [{mark}] {:<24} {:>6} ms  {}",
            step.name, step.duration_ms, step.detail
        );
    }
}

fn print_company(c: &Company) {
    let name = c.legal_name.as_deref().unwrap_or("(name withheld)");
    println!("{name}");
    if let Some(t) = &c.trade_name {
        println!("  trade name:   {t}");
    }
    println!("  SIREN:        {}", c.siren);
    if let Some(s) = &c.siret {
        println!(
            "  SIRET:        {s}{}",
            if c.head_office { " (head office)" } else { "" }
        );
    }
    for line in &c.address_lines {
        println!("  address:      {line}");
    }
    let city = [c.postal_code.as_deref(), c.city.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !city.is_empty() {
        println!("                {city}");
    }
    if let Some(a) = &c.activity_code {
        println!("  activity:     {a}");
    }
    if let Some(l) = &c.legal_category {
        println!("  legal form:   {l}");
    }
    println!(
        "  status:       {}",
        if c.active { "active" } else { "closed" }
    );
    if !c.fully_public {
        println!("  note:         partially public: some data is withheld by INSEE");
    }
}
