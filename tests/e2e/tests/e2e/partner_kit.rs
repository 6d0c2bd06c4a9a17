//! The partner kit end to end: `passerelle plugin new` scaffolds a plugin crate in a
//! temporary folder outside the workspace, cargo builds it there with its own target
//! directory, the library is dropped into the plugin directory of a running `passerelle
//! serve`, which loads it without a restart (hot add); the API lists it and gives its form
//! schema, the real `passerelle` binary runs its test routine against a small HTTP server
//! standing for the provider, and the ERP's `company.lookup` is answered by it, through the
//! command line and through the running host's API. A second test generates every category and runs each crate's own unit tests.
//!
//! The first build of a scaffolded crate compiles the plugin API's dependencies (about half
//! a minute on two cores); the test prints how long the scaffold-to-loaded path took.

// Test code: a failed unwrap is a failed test, with its location.

use passerelle_e2e::serve::{admin_token, Server};
use passerelle_e2e::{library_file_name, run_to_end, step, TestEnv};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long one cargo command on a scaffolded crate may take.
const CARGO_TIMEOUT: Duration = Duration::from_secs(900);
const KEY: &str = "canary-partner-key-61d4";

/// The plugin API crate of this source tree.
fn api_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugin-api")
}

/// Runs `cargo <args>` in `dir` with `CARGO_TARGET_DIR=target`, failing the test with the
/// output when it fails or takes longer than [`CARGO_TIMEOUT`]. Builds run `--offline`: the
/// scaffold copies the workspace's `Cargo.lock`, whose crates the workspace build has already
/// fetched, so the test needs no network.
fn cargo(dir: &Path, target: &Path, args: &[&str]) -> String {
    let line = format!("cargo {} (in {})", args.join(" "), dir.display());
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS");
    let run = run_to_end(cmd, line.clone(), None, CARGO_TIMEOUT)
        .unwrap_or_else(|| panic!("`{line}` did not finish within {CARGO_TIMEOUT:?}"));
    let (out, err) = (run.stdout, run.stderr);
    assert!(
        run.code == Some(0),
        "`{line}` failed (exit code {:?})\n--- stdout\n{out}\n--- stderr\n{err}",
        run.code
    );
    format!("{out}\n{err}")
}

/// A stand-in for the provider: `GET /v1/status` and `GET /v1/companies/<id>`, answering
/// 401 without the right bearer token. Runs until the test process ends.
fn provider() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut authorized = false;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if lower.starts_with("authorization:")
                    && header.trim_end().ends_with(&format!("Bearer {KEY}"))
                {
                    authorized = true;
                }
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
            let (status, body) = match (authorized, path.as_str()) {
                (false, _) => ("401 Unauthorized", r#"{"error":"invalid key"}"#.to_owned()),
                (true, "/v1/status") => ("200 OK", r#"{"status":"up"}"#.to_owned()),
                (true, p) if p.starts_with("/v1/companies/") => {
                    let id = &p["/v1/companies/".len()..];
                    (
                        "200 OK",
                        format!(
                            r#"{{"siren":"{}","siret":"{id}","name":"ACME REGISTRY TEST","city":"PARIS","active":true}}"#,
                            &id[..9.min(id.len())]
                        ),
                    )
                }
                _ => ("404 Not Found", "{}".to_owned()),
            };
            let mut stream = &stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_scaffolded_plugin_builds_out_of_tree_and_loads_into_a_running_host() {
    let env = TestEnv::new();
    let outside = env.root.path().join("partner");
    std::fs::create_dir_all(&outside).unwrap();
    let target = env.root.path().join("partner-target");
    let api = api_path();
    // The host binary is built before the clock starts: a partner has it already.
    passerelle_e2e::artifacts();

    let started = Instant::now();
    let created = env
        .ok(&[
            "plugin",
            "new",
            "acme-registry",
            "--category",
            "company",
            "--dir",
            outside.to_str().unwrap(),
            "--api-path",
            api.to_str().unwrap(),
        ])
        .expect_output("created");
    let scaffolded = started.elapsed();
    assert!(
        created.stdout.contains("company.lookup"),
        "{}",
        created.stdout
    );
    let crate_dir = outside.join("acme-registry");
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[workspace]"), "{manifest}");
    assert!(
        manifest.contains(&std::fs::canonicalize(&api).unwrap().display().to_string()),
        "{manifest}"
    );
    // Scaffolding again over it is refused rather than overwriting the partner's work.
    env.run(&[
        "plugin",
        "new",
        "acme-registry",
        "--dir",
        outside.to_str().unwrap(),
        "--api-path",
        api.to_str().unwrap(),
    ])
    .expect_code(3)
    .expect_output("already exists");

    // The host is already running: the plugin is added to it without a restart.
    let server = Server::start(&env, &["--log", "info"]);
    let token = admin_token(&env);
    let before = started.elapsed();
    cargo(&crate_dir, &target, &["build", "--quiet", "--offline"]);
    let built = started.elapsed();
    let library = library_file_name("passerelle_acme_registry");
    std::fs::copy(
        target.join("debug").join(&library),
        env.plugins.join(&library),
    )
    .unwrap();
    server.wait_for("hot add", "added acme-registry");
    let loaded = started.elapsed();
    let (code, listing) = server.http("GET", "/api/plugins", Some(&token), None);
    assert_eq!(code, 200, "{listing}");
    let plugin = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "acme-registry")
        .unwrap_or_else(|| panic!("not loaded: {listing:#}"));
    assert_eq!(plugin["category"], "company");
    assert_eq!(plugin["capabilities"][0], "company.lookup");
    assert_eq!(plugin["api_version"], passerelle::HOST_PLUGIN_API_VERSION);
    eprintln!(
        "scaffold-to-loaded: {:.1} s (scaffold {:.1} s, cold cargo build {:.1} s, hot add {:.1} s)",
        (loaded - (before - scaffolded)).as_secs_f64(),
        scaffolded.as_secs_f64(),
        (built - before).as_secs_f64(),
        (loaded - built).as_secs_f64()
    );
    let (code, form) = server.http(
        "GET",
        "/api/plugins/acme-registry/schema",
        Some(&token),
        None,
    );
    assert_eq!(code, 200, "{form}");
    assert_eq!(form["properties"]["api_key"]["writeOnly"], true, "{form}");

    // Its form.
    let schema = env.ok(&["schema", "acme-registry"]).json();
    let props = schema["properties"].as_object().unwrap();
    assert_eq!(props["api_key"]["writeOnly"], true);
    assert_eq!(props["api_key"]["format"], "password");
    assert_eq!(props["environment"]["oneOf"][1]["title"], "Production");
    assert_eq!(props["timeout_secs"]["x-group"], "connection");
    assert_eq!(props["enabled"]["title"], "Active");

    // Its test routine, against the stand-in provider: a wrong key, then the right one.
    let url = provider();
    env.ok(&["config", "create", "acme", "--plugin", "acme-registry"]);
    let refused = env.run(&["config", "enable", "acme"]).expect_code(3);
    assert!(refused.stderr.contains("api_key"), "{}", refused.stderr);
    env.ok(&["config", "set", "acme", "url", &url]);
    env.run_with_stdin(
        &["config", "set", "acme", "api_key", "--stdin"],
        Some("wrong-key"),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "acme"]);
    let failed = env.run(&["test", "acme", "--json"]).expect_code(1).json();
    assert_eq!(step(&failed, "reach API")["status"], "ok");
    assert_eq!(
        step(&failed, "authenticate")["status"],
        "failed",
        "{failed:#}"
    );
    env.run_with_stdin(&["config", "set", "acme", "api_key", "--stdin"], Some(KEY))
        .expect_code(0);
    let report = env.ok(&["test", "acme", "--json"]).json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert!(!env.ok(&["test", "acme"]).all().contains(KEY));

    // The ERP's call, answered by the partner's plugin.
    let company = env.ok(&["company", "732 829 320 00074", "--json"]).json();
    assert_eq!(company["siren"], "732829320");
    assert_eq!(company["legal_name"], "ACME REGISTRY TEST");
    assert!(!env.data_dump().contains(KEY), "the key is stored in clear");

    // And through the running host's API, as the ERP calls it.
    let (code, company) = server.http(
        "POST",
        "/api/capabilities/company.lookup",
        Some(&token),
        Some(r#"{"id": "73282932000074"}"#),
    );
    assert_eq!(code, 200, "{company}\n{}", server.log());
    assert_eq!(company["legal_name"], "ACME REGISTRY TEST");
    assert!(
        !server.log().contains(KEY),
        "the key is in the server's log"
    );
}

#[test]
fn every_category_is_generated_buildable_and_tested() {
    let env = TestEnv::new();
    let outside = env.root.path().join("partner");
    std::fs::create_dir_all(&outside).unwrap();
    // One target directory for the six crates: the dependencies are built once.
    let target = env.root.path().join("partner-target");
    let api = api_path();
    for (category, operation) in [
        ("ocr", "ocr.expense_receipt"),
        ("company", "company.lookup"),
        ("calendar", "calendar.sync"),
        ("einvoice", "einvoice.status"),
        ("esign", "esign.status"),
        ("other", "other.status"),
    ] {
        let name = format!("kit-{category}");
        env.ok(&[
            "plugin",
            "new",
            &name,
            "--category",
            category,
            "--dir",
            outside.to_str().unwrap(),
            "--api-path",
            api.to_str().unwrap(),
        ])
        .expect_output(operation);
        let crate_dir = outside.join(&name);
        // `cargo test` links the tests with the rlib; the host needs the cdylib.
        cargo(&crate_dir, &target, &["build", "--quiet", "--offline"]);
        let tested = cargo(&crate_dir, &target, &["test", "--offline"]);
        assert!(
            tested.contains("test result: ok. 6 passed"),
            "{category}: {tested}"
        );
        let library = library_file_name(&format!("passerelle_kit_{category}"));
        std::fs::copy(
            target.join("debug").join(&library),
            env.plugins.join(&library),
        )
        .unwrap();
    }
    // All six load side by side, each serving its operation.
    let plugins = env.ok(&["plugins", "--json"]).json();
    assert_eq!(
        plugins["plugins"].as_array().unwrap().len(),
        6,
        "{plugins:#}"
    );
    assert_eq!(
        plugins["refused"].as_array().unwrap().len(),
        0,
        "{plugins:#}"
    );
}

#[test]
fn a_wrong_api_path_or_name_is_refused_with_what_to_do() {
    let env = TestEnv::new();
    let out = env.root.path().to_str().unwrap().to_owned();
    env.run(&["plugin", "new", "Acme", "--dir", &out])
        .expect_code(3)
        .expect_output("acme-registry");
    env.run(&["plugin", "new", "acme", "--dir", &out, "--api-path", &out])
        .expect_code(3)
        .expect_output("--api-path <passerelle source tree>/plugin-api");
    env.run(&["plugin", "new", "acme", "--category", "fax"])
        .expect_code(2);
}
