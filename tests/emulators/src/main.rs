//! `passerelle-emulators`: runs the provider emulators until Ctrl-C, for trying plugins by
//! hand or from a test that prefers a separate process.
//!
//! Exit codes: 0 after Ctrl-C, 1 when an emulator cannot start, 2 on a bad command line.

use passerelle_emulators::chorus_pro::{ChorusProEmulator, ChorusProOptions};
use passerelle_emulators::ews::{EwsEmulator, EwsOptions};
use passerelle_emulators::graph::{GraphEmulator, GraphOptions};
use passerelle_emulators::mindee::{MindeeEmulator, MindeeOptions};
use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
use passerelle_emulators::universign::{UniversignEmulator, UniversignOptions};
use std::io::Write as _;
use std::process::ExitCode;

const USAGE: &str = "\
Usage: passerelle-emulators [--demo | --base-port N] [--sirene-port N]

Runs the provider emulators (Sirene, Mindee, Chorus Pro, Universign, Exchange, Graph) on 127.0.0.1
until Ctrl-C, and prints one line per emulator with the URL and credentials to give the plugin.

Options:
  --demo            fixed ports 18081-18086, the ones examples/demo.toml points at
  --base-port N     Sirene on N, Mindee on N+1, Chorus Pro N+2, Universign N+3, Exchange N+4,
                    Microsoft Graph N+5
  --sirene-port N   port of the INSEE Sirene emulator only (default 0: the OS picks one)
  -h, --help        print this help";

/// First port of `--demo`, matching examples/demo.toml.
const DEMO_BASE_PORT: u16 = 18081;

struct Args {
    sirene_port: u16,
    /// Ports of Mindee, Chorus Pro, Universign, Exchange, Graph (0: the OS picks).
    others: [u16; 5],
}

fn port(value: &str, flag: &str) -> Result<u16, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} expects a port number (0-65535), not {value:?}"))
}

fn base(parsed: &mut Args, base: u16) -> Result<(), String> {
    if base > u16::MAX - 5 {
        return Err(format!(
            "--base-port {base} leaves no room for six emulators"
        ));
    }
    parsed.sirene_port = base;
    parsed.others = [base + 1, base + 2, base + 3, base + 4, base + 5];
    Ok(())
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        sirene_port: 0,
        others: [0; 5],
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--demo" => base(&mut parsed, DEMO_BASE_PORT)?,
            "--base-port" => {
                let value = args
                    .next()
                    .ok_or("--base-port needs a value, e.g. --base-port 18081")?;
                base(&mut parsed, port(&value, "--base-port")?)?;
            }
            "--sirene-port" => {
                let value = args
                    .next()
                    .ok_or("--sirene-port needs a value, e.g. --sirene-port 8081")?;
                parsed.sirene_port = port(&value, "--sirene-port")?;
            }
            other => {
                if let Some(value) = other.strip_prefix("--sirene-port=") {
                    parsed.sirene_port = port(value, "--sirene-port")?;
                } else {
                    return Err(format!("unknown argument {other:?}; see --help"));
                }
            }
        }
    }
    Ok(Some(parsed))
}

fn started<T>(name: &str, port: u16, result: std::io::Result<T>) -> Result<T, ExitCode> {
    result.map_err(|e| {
        eprintln!("error: cannot start the {name} emulator on 127.0.0.1:{port}: {e}");
        ExitCode::from(1)
    })
}

/// Prints a line of the banner; a reader that went away is no reason to stop serving.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Waits for Ctrl-C (and, on unix, SIGTERM), registered as soon as it is made.
struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    fn listen() -> std::io::Result<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Stop {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    async fn wait(mut self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
            Ok(())
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await
    }
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
    // The stop signal is listened for before anything is printed: whoever reads the first
    // line may send Ctrl-C (SIGINT) at once.
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
    let stop = match runtime.block_on(async { Stop::listen() }) {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("error: cannot listen for Ctrl-C: {e}");
            return ExitCode::from(1);
        }
    };
    let options = SireneOptions::default();
    let sirene = match started(
        "Sirene",
        args.sirene_port,
        SireneEmulator::start_on(options.clone(), args.sirene_port),
    ) {
        Ok(e) => e,
        Err(code) => return code,
    };
    say!("sirene: {} (key: {})", sirene.base_url(), options.api_key);
    let [mp, cp, up, ep, gp] = args.others;
    let emulators = (|| {
        let mindee = started(
            "Mindee",
            mp,
            MindeeEmulator::start_on(MindeeOptions::default(), mp),
        )?;
        let chorus = started(
            "Chorus Pro",
            cp,
            ChorusProEmulator::start_on(ChorusProOptions::default(), cp),
        )?;
        let universign = started(
            "Universign",
            up,
            UniversignEmulator::start_on(UniversignOptions::default(), up),
        )?;
        let ews = started(
            "Exchange",
            ep,
            EwsEmulator::start_on(EwsOptions::default(), ep),
        )?;
        let graph = started(
            "Microsoft Graph",
            gp,
            GraphEmulator::start_on(GraphOptions::default(), gp),
        )?;
        Ok::<_, ExitCode>((mindee, chorus, universign, ews, graph))
    })();
    let (mindee, chorus, universign, ews, graph) = match emulators {
        Ok(e) => e,
        Err(code) => return code,
    };
    say!(
        "mindee: v2 {} (key: {}, model {}), v1 {} (token: {})",
        mindee.v2_url(),
        mindee.options().v2_api_key,
        mindee.options().v2_model_id,
        mindee.api_url(),
        mindee.options().api_key
    );
    let c = chorus.options();
    say!(
        "chorus-pro: api {} oauth {} (client {} / {}, technical login {} / {})",
        chorus.url(),
        chorus.oauth_url(),
        c.client_id,
        c.client_secret,
        c.technical_login,
        c.technical_password
    );
    let u = universign.options();
    say!(
        "universign: {} (user {} / {})",
        universign.url(),
        u.user,
        u.password
    );
    say!(
        "exchange: {} (user svc@contoso.com / S3cret-pass; authority {})",
        ews.ews_url(),
        ews.authority_url()
    );
    let g = &graph.options().apps[0];
    say!(
        "graph: {} (tenant {}, client {} / {}; authority {})",
        graph.graph_url(),
        g.tenant,
        g.client_id,
        g.client_secret,
        graph.authority_url()
    );
    // Tests read these lines from a pipe: do not let them sit in a buffer.
    let _ = std::io::stdout().flush();

    if let Err(e) = runtime.block_on(stop.wait()) {
        eprintln!("error: cannot listen for Ctrl-C: {e}");
        return ExitCode::from(1);
    }
    drop(sirene);
    ExitCode::SUCCESS
}
