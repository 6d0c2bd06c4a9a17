//! The web console and HTTP API end to end: the real `passerelle serve` with the real Sirene
//! plugin library, the Sirene emulator, and headless Chromium driven by
//! `tests/console/console.mjs` (playwright-core with Debian's Chromium). One browser session
//! runs the scenario in English, switches to French with the header's switcher and checks the
//! French texts, refusals, script messages and date format; a second browser context set to
//! French gets the sign-in page in French.
//!
//! Nothing is skipped: without Node.js, Chromium or the script's `node_modules`, the test
//! fails and says which install step of `.ci/run` to run.

use passerelle_e2e::serve::{Server, ADMIN_PASSWORD};
use passerelle_e2e::{artifacts, run_to_end, TestEnv};
use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails with the install step to run when a browser-test prerequisite is missing.
fn check_prerequisites(script_dir: &Path) -> PathBuf {
    let hint = "run the install step of .ci/run: `apt-get install -y chromium chromium-driver nodejs npm` and `npm ci --prefix tests/console`";
    let node = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!("Node.js is needed for the console test but `node` cannot run ({e}); {hint}")
        });
    assert!(node.status.success(), "`node --version` failed; {hint}");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "{} not found: the console test needs Debian's Chromium; {hint}",
        chromium.display()
    );
    assert!(
        script_dir
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "{} has no node_modules/playwright-core; {hint}",
        script_dir.display()
    );
    chromium
}

#[test]
fn console_in_a_browser_configures_tests_and_audits_sirene() {
    let script_dir = repo_root().join("tests/console");
    let chromium = check_prerequisites(&script_dir);
    let emulator = SireneEmulator::start(SireneOptions::default()).unwrap();
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    let server = Server::start(&env, &[]);
    let printed = server.stdout_lines();
    assert!(
        printed
            .iter()
            .any(|l| l.contains("Created the administrator account `admin`")),
        "{printed:?}"
    );
    assert!(
        !printed.iter().any(|l| l.contains(ADMIN_PASSWORD)),
        "the password was printed"
    );
    let screenshot = artifacts()
        .dir
        .parent()
        .unwrap()
        .join("console-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let screenshot_fr = screenshot.with_file_name("console-screenshot-fr.png");
    let _ = std::fs::remove_file(&screenshot_fr);

    // The browser scenario.
    let mut node = Command::new("node");
    node.arg(script_dir.join("console.mjs"))
        .current_dir(&script_dir)
        .env("CONSOLE_URL", server.url())
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SIRENE_BASE_URL", emulator.base_url())
        .env("SIRENE_API_KEY", &emulator.options().api_key)
        .env("SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium);
    let run =
        run_to_end(node, "node console.mjs".into(), None, SCRIPT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "the browser scenario did not finish within {SCRIPT_TIMEOUT:?}\n{}",
                server.log()
            )
        });
    let (stdout, stderr) = (run.stdout, run.stderr);
    assert!(
        run.code == Some(0),
        "the browser scenario failed (exit code {:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n{}",
        run.code,
        server.log()
    );
    assert!(stdout.contains("console scenario passed"), "{stdout}");
    for step in [
        "the switcher turns the page into French",
        "the history is in French with French dates",
        "a browser set to French gets the sign-in page and the console in French",
        "the switcher brings English back",
    ] {
        assert!(
            stdout.contains(step),
            "the scenario skipped {step:?}\n{stdout}"
        );
    }
    eprintln!("{stdout}");

    // What the browser did is what the host has.
    let show = env.ok(&["config", "show", "sirene", "--json"]).json();
    assert_eq!(show["enabled"], true);
    let field = |name: &str| {
        show["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(field("base_url")["value"], emulator.base_url());
    assert_eq!(field("timeout_secs")["value"], 17);
    assert_eq!(field("api_key")["state"], "set");
    assert!(!env.data_dump().contains(&emulator.options().api_key));
    for shot in [&screenshot, &screenshot_fr] {
        let png = std::fs::read(shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{}: {} bytes",
            shot.display(),
            png.len()
        );
    }

    // API tokens from the command line, against the running server.
    let token = env
        .ok(&[
            "admin",
            "token",
            "create",
            "--name",
            "erp",
            "--scope",
            "capabilities",
        ])
        .stdout
        .trim()
        .to_owned();
    assert!(token.starts_with("pst_"), "{token}");
    let (code, company) = server.http(
        "POST",
        "/api/capabilities/company.lookup",
        Some(&token),
        Some(r#"{"id": "21920023500014"}"#),
    );
    assert_eq!(code, 200, "{company}");
    assert_eq!(company["legal_name"], "COMMUNE DE CLAMART");
    let (code, body) = server.http("GET", "/api/instances", Some(&token), None);
    assert_eq!((code, body["code"].as_str()), (403, Some("forbidden")));
    let (code, _) = server.http("GET", "/api/openapi.json", None, None);
    assert_eq!(code, 401);
    env.ok(&["admin", "token", "revoke", "erp"]);
    let (code, body) = server.http(
        "POST",
        "/api/capabilities/company.lookup",
        Some(&token),
        Some(r#"{"id": "21920023500014"}"#),
    );
    assert_eq!(
        (code, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let list = env.ok(&["admin", "token", "list", "--json"]).json();
    assert!(list[0]["revoked_ms"].is_i64(), "{list}");
    assert!(!list.to_string().contains(&token));

    // Passwords: too short is refused; a new one is taken from standard input.
    env.run_with_stdin(&["admin", "set-password"], Some("short\n"))
        .expect_code(3)
        .expect_output("at least 12 characters");
    env.run_with_stdin(&["admin", "set-password"], Some("another-long-password\n"))
        .expect_code(0);
    let dump = env.data_dump();
    assert!(!dump.contains("another-long-password") && !dump.contains(ADMIN_PASSWORD));
    drop(server);
}
