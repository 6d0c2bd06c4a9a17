//! Every flag and command of the command line, defined once: `--help` comes from these
//! definitions. Each command group's own subcommands are defined beside its body
//! (`config.rs`, `plugins.rs`, …); this file holds the global flags and the command list.
// Doc comments here are `--help` texts, shown as typed: `<email>` is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use super::capability::{CalendarCommand, InvoiceCommand, OcrArgs, SignCommand};
use super::config::ConfigCommand;
use super::plugins::PluginCommand;
use super::tasks::TasksCommand;
use super::trust::TrustCommand;
use crate::settings::DEFAULT_TEST_DEADLINE;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    pub plugin_dirs: Vec<PathBuf>,
    /// Data directory: instance configuration, state, secret key.
    #[arg(
        long,
        global = true,
        env = "PASSERELLE_DATA_DIR",
        default_value = "data"
    )]
    pub data_dir: PathBuf,
    /// Key file sealing secret values (default: <data-dir>/keys/secret.key). The
    /// PASSERELLE_SECRET_KEY environment variable, when set, wins.
    #[arg(long, global = true, env = "PASSERELLE_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// PostgreSQL database shared by the hosts of a cluster, e.g.
    /// `postgres://passerelle@db.example/passerelle` (default: embedded storage in the data
    /// directory). A password goes in PASSERELLE_DATABASE_URL or PGPASSWORD, never here.
    #[arg(
        long,
        global = true,
        env = "PASSERELLE_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Deadline of a test routine, in seconds.
    #[arg(long, global = true, default_value_t = DEFAULT_TEST_DEADLINE.as_secs())]
    pub deadline: u64,
    /// Plugin trust policy, overriding host.toml: `strict` (only signed plugins; the default
    /// of every command) or `allow-unsigned` (development only).
    #[arg(long, global = true, value_enum, env = "PASSERELLE_PLUGIN_POLICY")]
    pub plugin_policy: Option<crate::signing::PolicyMode>,
    /// Log filter (e.g. `info`, `debug`, `passerelle=debug`); RUST_LOG works too.
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    /// Log lines as `text` or as `json` objects, one per line (same redaction).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "PASSERELLE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// List the operations the loaded plugins serve, with the instances able to serve them.
    Capabilities {
        #[arg(long)]
        json: bool,
    },
    /// List scheduled tasks with their last and next run; `tasks run` runs one now.
    Tasks {
        #[command(subcommand)]
        command: Option<TasksCommand>,
        #[arg(long)]
        json: bool,
    },
    /// Read an expense receipt (capability ocr.expense_receipt).
    Ocr(OcrArgs),
    /// Electronic signatures (capabilities esign.*).
    #[command(subcommand)]
    Sign(SignCommand),
    /// E-invoicing (capabilities einvoice.*): submit, follow, list deposits.
    #[command(subcommand)]
    Invoice(InvoiceCommand),
    /// Calendar synchronisation (capability calendar.sync).
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Call any capability operation with a JSON input (what the ERP does over HTTP);
    /// `--help` lists the operations and their inputs.
    #[command(after_long_help = crate::operations::invoke_help())]
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
    Admin(super::admin::AdminCommand),
    /// Serve one plugin library over stdin/stdout (started by the host in process isolation).
    #[command(hide = true)]
    Worker(crate::isolation::worker::WorkerArgs),
    /// Where the host keeps its data: status, and migration to PostgreSQL.
    #[command(subcommand)]
    Storage(crate::storage::cli::StorageCommand),
}

#[derive(Debug, Args)]
pub struct Target {
    /// Instance to use; by default the one enabled instance serving the operation.
    #[arg(long)]
    pub instance: Option<String>,
    #[arg(long)]
    pub json: bool,
}
