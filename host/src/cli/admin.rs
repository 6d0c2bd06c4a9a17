//! `passerelle admin`: administrator passwords and API tokens, from the command line.
//!
//! These commands work on the console database directly, so they also work while the server
//! runs (it notices the change on its next request) and when it is not running; on
//! PostgreSQL, on the shared database, and every node notices. Each change
//! is written to the audit history with the actor `cli:<login name>`.

use crate::server::audit::{Action, AuditLog, Change};
use crate::server::auth::{Auth, AuthError, LoginLimits, Scope, ADMIN_USER, MIN_PASSWORD_CHARS};
use crate::server::db::ConsoleDb;
use clap::Subcommand;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set an administrator's password (creating the account if needed), read from standard
    /// input. Signs that account out of every browser.
    SetPassword {
        /// Account name.
        #[arg(long, default_value = ADMIN_USER)]
        user: String,
    },
    /// API tokens for the ERP and scripts.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its value is printed once and stored only hashed.
    Create {
        /// A name to recognise it by, e.g. `erp-prod`.
        #[arg(long)]
        name: String,
        /// `capabilities`: call capabilities only (the ERP). `admin`: everything.
        #[arg(long, value_enum)]
        scope: Scope,
    },
    /// Revoke a token, by id or name. Takes effect at once, also on a running server.
    Revoke {
        /// Token id or name.
        token: String,
    },
    /// List tokens (never their values).
    List {
        #[arg(long)]
        json: bool,
    },
}

fn actor() -> String {
    crate::actor::cli_actor()
}

fn refused(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

fn exit_code(e: &AuthError) -> u8 {
    match e {
        AuthError::NoSuchToken(_) => crate::cli::EXIT_NOT_FOUND,
        AuthError::Db(_) | AuthError::Hash(_) => crate::cli::EXIT_INTERNAL,
        _ => crate::cli::EXIT_REFUSED,
    }
}

fn read_password() -> std::io::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let ask = |prompt: &str| -> std::io::Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        let echo_off = set_echo(false);
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        if echo_off {
            set_echo(true);
            eprintln!();
        }
        read?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    let first = ask(&format!(
        "New password (at least {MIN_PASSWORD_CHARS} characters): "
    ))?;
    let second = ask("Again: ")?;
    if first != second {
        return Err(std::io::Error::other("the two passwords differ"));
    }
    Ok(first)
}

/// Turns terminal echo on or off with `stty`; returns whether it worked.
fn set_echo(on: bool) -> bool {
    #[cfg(unix)]
    {
        std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    }
    #[cfg(not(unix))]
    {
        let _ = on;
        false
    }
}

/// Runs an `admin` command on the accounts and tokens of `backend` (the data directory's
/// console database when embedded; the shared database on PostgreSQL, where a revocation
/// reaches every running node at once).
pub fn run(
    data_dir: &Path,
    backend: &crate::storage::Backend,
    cmd: AdminCommand,
) -> anyhow::Result<ExitCode> {
    let db = Arc::new(ConsoleDb::open_on(data_dir, backend)?);
    let auth = Auth::new(db.clone(), LoginLimits::default())?;
    let audit = AuditLog::on(backend, db);
    let who = actor();
    match cmd {
        AdminCommand::SetPassword { user } => {
            let password = match read_password() {
                Ok(p) => p,
                Err(e) => return Ok(refused(format!("cannot read the password: {e}"), 3)),
            };
            if let Err(e) = auth.set_password(&user, &password) {
                return Ok(refused(&e, exit_code(&e)));
            }
            audit.record_or_log(Change {
                actor: &who,
                instance: None,
                field: None,
                action: Action::SetPassword,
                old: None,
                new: Some(format!("password of {user} changed")),
            });
            println!("password of `{user}` set; its browser sessions are closed");
        }
        AdminCommand::Token(TokenCommand::Create { name, scope }) => {
            let (info, token) = match auth.create_token(&name, scope, &who) {
                Ok(t) => t,
                Err(e) => return Ok(refused(&e, exit_code(&e))),
            };
            audit.record_or_log(Change {
                actor: &who,
                instance: None,
                field: None,
                action: Action::CreateToken,
                old: None,
                new: Some(format!("{} ({}, scope {})", info.name, info.id, info.scope)),
            });
            println!("{token}");
            eprintln!(
                "created token `{}` (id {}, scope {}); it is shown only this once: send it as `Authorization: Bearer <token>`",
                info.name, info.id, info.scope
            );
        }
        AdminCommand::Token(TokenCommand::Revoke { token }) => {
            let info = match auth.revoke_token(&token) {
                Ok(i) => i,
                Err(e) => return Ok(refused(&e, exit_code(&e))),
            };
            audit.record_or_log(Change {
                actor: &who,
                instance: None,
                field: None,
                action: Action::RevokeToken,
                old: Some(format!("{} ({}, scope {})", info.name, info.id, info.scope)),
                new: None,
            });
            println!("revoked token `{}` (id {})", info.name, info.id);
        }
        AdminCommand::Token(TokenCommand::List { json }) => {
            let tokens = auth.list_tokens()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else if tokens.is_empty() {
                println!("No API token. Create one with `passerelle admin token create --name <name> --scope capabilities`.");
            } else {
                for t in tokens {
                    println!(
                        "{:<14} {:<20} {:<13} created {} by {}{}",
                        t.id,
                        t.name,
                        t.scope.as_str(),
                        crate::server::html::time(t.created_ms),
                        t.created_by,
                        t.revoked_ms
                            .map(|r| format!(", revoked {}", crate::server::html::time(r)))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
