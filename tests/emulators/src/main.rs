//! `passerelle-emulators`: runs the provider emulators until Ctrl-C, for trying plugins by
//! hand or from a test that prefers a separate process.
//!
//! Exit codes: 0 after Ctrl-C, 1 when an emulator cannot start, 2 on a bad command line.

use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
use std::io::Write as _;
use std::process::ExitCode;

const USAGE: &str = "\
Usage: passerelle-emulators [--sirene-port N]

Runs the provider emulators on 127.0.0.1 until Ctrl-C, and prints one line per emulator
with the URL to give the plugin.

Options:
  --sirene-port N   port of the INSEE Sirene emulator (default 0: the OS picks one)
  -h, --help        print this help";

struct Args {
    sirene_port: u16,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args { sirene_port: 0 };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--sirene-port" => {
                let value = args
                    .next()
                    .ok_or("--sirene-port needs a value, e.g. --sirene-port 8081")?;
                parsed.sirene_port = value.parse().map_err(|_| {
                    format!("--sirene-port expects a port number (0-65535), not {value:?}")
                })?;
            }
            other => {
                if let Some(value) = other.strip_prefix("--sirene-port=") {
                    parsed.sirene_port = value.parse().map_err(|_| {
                        format!("--sirene-port expects a port number (0-65535), not {value:?}")
                    })?;
                } else {
                    return Err(format!("unknown argument {other:?}; see --help"));
                }
            }
        }
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let options = SireneOptions::default();
    let sirene = match SireneEmulator::start_on(options.clone(), args.sirene_port) {
        Ok(sirene) => sirene,
        Err(e) => {
            eprintln!(
                "error: cannot start the Sirene emulator on 127.0.0.1:{}: {e}",
                args.sirene_port
            );
            return ExitCode::from(1);
        }
    };
    println!("sirene: {} (key: {})", sirene.base_url(), options.api_key);
    // Tests read this line from a pipe: do not let it sit in a buffer.
    let _ = std::io::stdout().flush();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start a runtime to wait for Ctrl-C: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = runtime.block_on(tokio::signal::ctrl_c()) {
        eprintln!("error: cannot listen for Ctrl-C: {e}");
        return ExitCode::from(1);
    }
    drop(sirene);
    ExitCode::SUCCESS
}
