//! `passerelle storage status` and `passerelle storage migrate --to postgres://…`: what an
//! administrator needs to see and do to move a host from its data directory to PostgreSQL.
//! Neither loads a plugin: they touch storage only.

use super::migrate;
use super::{Backend, DatabaseUrl};
use crate::settings::Settings;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum StorageCommand {
    /// Show the storage backend, its URL (password hidden), the schema version and counts.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Copy the embedded data directory (--data-dir) into a PostgreSQL database and verify
    /// the counts table by table. The key file must stay the same: secrets are copied sealed.
    Migrate {
        /// The target database, `postgres://user@host:5432/database`. A password goes in
        /// PASSERELLE_DATABASE_URL (used when --to is left out) or PGPASSWORD, never here.
        #[arg(long, env = "PASSERELLE_DATABASE_URL", hide_env_values = true)]
        to: String,
        /// Copy even when the target already holds data (instances with the same id are
        /// replaced, history entries are appended).
        #[arg(long)]
        allow_non_empty: bool,
    },
}

/// Runs a `storage` command. `to` is parsed by the caller's rules for URLs on the command
/// line ([`crate::cli`]: a password only from the environment).
pub fn run(
    settings: &Settings,
    cmd: StorageCommand,
    parse_url: impl Fn(&str) -> anyhow::Result<Option<DatabaseUrl>>,
) -> anyhow::Result<ExitCode> {
    match cmd {
        StorageCommand::Status { json } => {
            let backend = Backend::open(settings.database.as_ref(), &settings.data_dir)?;
            let status = status(settings, &backend)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("backend: {}", status.backend);
                println!("location: {}", status.location);
                if let Some(v) = status.schema_version {
                    println!("schema version: {v}");
                }
                for (key, value) in &status.info {
                    println!("{}: {value}", key.replace('_', " "));
                }
                for (table, n) in &status.counts {
                    println!("  {table:<16} {n}");
                }
            }
        }
        StorageCommand::Migrate {
            to,
            allow_non_empty,
        } => {
            let url = parse_url(&to)?
                .ok_or_else(|| anyhow::anyhow!("give the target database with --to"))?;
            let Backend::Postgres(pg) = Backend::open(Some(&url), &settings.data_dir)? else {
                anyhow::bail!("--to must name a PostgreSQL database");
            };
            let report = migrate::migrate(&settings.data_dir, &pg, allow_non_empty).map_err(
                |e| match e {
                    // The administrator's call to make: exit code 3, like other refusals.
                    migrate::MigrateError::NotEmpty(_) | migrate::MigrateError::NoSource { .. } => {
                        crate::cli::refused(e)
                    }
                    other => anyhow::Error::new(other),
                },
            )?;
            println!(
                "copied {} into {}:",
                settings.data_dir.display(),
                url.redacted()
            );
            for c in &report {
                println!(
                    "  {:<16} {} in the data directory, {} in PostgreSQL: ok",
                    c.table, c.source, c.copied
                );
            }
            println!(
                "serve from it with PASSERELLE_DATABASE_URL={} and the same key file ({})",
                url.redacted(),
                settings.key_file.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `storage status` shows.
#[derive(Debug, serde::Serialize)]
pub struct Status {
    pub backend: &'static str,
    /// The database URL (password hidden), or the data directory.
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i32>,
    /// What `storage migrate` recorded (`migrated_from`, `migrated_at`).
    pub info: Vec<(String, String)>,
    /// Rows (PostgreSQL) or records (embedded) per table.
    pub counts: Vec<(String, u64)>,
}

pub fn status(settings: &Settings, backend: &Backend) -> anyhow::Result<Status> {
    Ok(match backend.pg() {
        Some(pg) => Status {
            backend: backend.name(),
            location: pg.url(),
            schema_version: migrate::schema_version(pg)?,
            info: migrate::storage_info(pg)?,
            counts: migrate::table_counts(pg)?,
        },
        None => {
            let instances = crate::store::Store::open(&settings.data_dir)?.list()?.len() as u64;
            let audit = crate::server::audit::AuditLog::open(backend, &settings.data_dir)?
                .list(None, u32::MAX)?
                .len() as u64;
            Status {
                backend: backend.name(),
                location: settings.data_dir.display().to_string(),
                schema_version: None,
                info: Vec::new(),
                counts: vec![("instances".into(), instances), ("audit".into(), audit)],
            }
        }
    })
}
