//! The command line: flag definitions (`flags.rs`), one file per command group, exit codes
//! (`exit.rs`). This file is the entry point: it parses the flags, opens the host and hands
//! each command to its group.
//!
//! Exit codes are stable and documented in the README and in [`exit`].

pub mod admin;
pub mod capability;
pub mod check;
pub mod config;
pub mod exit;
pub mod flags;
pub mod plugins;
pub mod serve;
pub mod tasks;
pub mod test;
pub mod trust;

pub use exit::{refused, EXIT_FAILED, EXIT_INTERNAL, EXIT_NOT_FOUND, EXIT_REFUSED};
pub use flags::Cli;

use crate::engine::Engine;
use crate::ids::InstanceId;
use crate::settings::Settings;
use anyhow::Context as _;
use clap::Parser;
use flags::Command;
use std::process::ExitCode;
use std::time::Duration;
use tasks::TasksCommand;

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
            ExitCode::from(exit::exit_code_of(&e))
        }
    }
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The PostgreSQL URL, refused when its password was typed on the command line (shell
/// history, process list): it must come from the environment then.
pub(crate) fn database_url(
    given: Option<&str>,
) -> anyhow::Result<Option<crate::storage::DatabaseUrl>> {
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

pub(crate) fn instance_id(s: &str) -> anyhow::Result<InstanceId> {
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
    // Storage tools read and copy stores only: no plugin is loaded.
    if let Command::Storage(cmd) = cli.command {
        return crate::storage::cli::run(&settings, cmd, |url| database_url(Some(url)));
    }
    if let Command::Plugin(cmd) = cli.command {
        return plugins::plugin_command(&settings, cmd);
    }
    crate::datadir::secure(&cli.data_dir);
    if matches!(cli.command, Command::Serve { .. }) {
        // Before the plugins load, so that refused files are counted too.
        crate::metrics::handle();
    }
    let engine = Engine::open(settings).context("cannot open the host")?;
    match cli.command {
        Command::Plugins { json } => plugins::plugins(&engine, json),
        Command::Schema { plugin, lang } => plugins::schema(&engine, &plugin, lang.as_deref()),
        Command::Config(cmd) => config::config(&engine, cmd),
        Command::Test {
            instance,
            json,
            lang,
        } => test::test(&engine, &instance, json, lang).await,
        Command::Company { id, target } => capability::company(&engine, id, &target).await,
        Command::Trust(cmd) => trust::trust(&engine, cmd),
        Command::Capabilities { json } => capability::capabilities(&engine, json),
        Command::Ocr(args) => capability::ocr(&engine, args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Sign(cmd) => capability::sign(&engine, cmd)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Invoice(cmd) => capability::invoice(&engine, cmd).await,
        Command::Calendar(cmd) => capability::calendar(&engine, cmd)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Plugin(_) => plugins::unreachable_plugin_command(),
        Command::Tasks {
            command: None,
            json,
        } => tasks::tasks(&engine, json),
        Command::Tasks {
            command: Some(TasksCommand::Run { instance, task }),
            ..
        } => tasks::run(&engine, &instance, &task).await,
        Command::Invoke {
            operation,
            input,
            target,
        } => capability::invoke(&engine, &operation, &input, &target).await,
        Command::Serve {
            listen,
            secure_cookies,
            trust_proxy,
        } => serve::serve(engine, &host_file, listen, secure_cookies, trust_proxy).await,
        Command::Webhooks(cmd) => crate::events::cli::webhooks(&engine, cmd).await,
        Command::Events(cmd) => crate::events::cli::events(&engine, cmd),
        Command::Admin(cmd) => admin::run(&engine.settings.data_dir, &engine.backend, cmd),
        Command::Worker(_) => anyhow::bail!("`passerelle worker` is started by the host itself"),
        Command::Storage(_) => anyhow::bail!("`passerelle storage` runs before the host opens"),
    }
}
