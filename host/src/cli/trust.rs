//! `passerelle trust …`: the extra certificate authorities the host trusts.

use super::exit::refused;
use super::print_json;
use crate::engine::Engine;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
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

pub fn trust(engine: &Engine, cmd: TrustCommand) -> anyhow::Result<ExitCode> {
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
