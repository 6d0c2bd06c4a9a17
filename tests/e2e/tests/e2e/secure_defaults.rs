//! Secure defaults found trying the host as a new user would (issue 19): a secret given on
//! the command line is refused, and the data directory is private to its user.

use passerelle_e2e::TestEnv;
use std::path::Path;

const CANARY: &str = "argv-canary-5c1e";

fn sirene_env() -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    env.ok(&["config", "create", "s", "--plugin", "sirene"]);
    env
}

#[test]
fn a_secret_on_the_command_line_is_refused_with_the_stdin_form_and_insecure_argv_is_audited() {
    let env = sirene_env();
    let r = env
        .run(&["config", "set", "s", "api_key", CANARY])
        .expect_code(3);
    assert!(
        r.stderr.contains("`api_key` is a secret")
            && r.stderr.contains("passerelle config set s api_key --stdin")
            && r.stderr.contains("--insecure-argv"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(CANARY), "the refusal repeats the secret");
    let show = env.ok(&["config", "get", "s", "api_key"]);
    assert!(show.stdout.contains("unset"), "{}", show.stdout);

    // A non-secret field still takes its value as an argument.
    env.ok(&["config", "set", "s", "timeout_secs", "11"]);

    let r = env.ok(&["config", "set", "s", "api_key", CANARY, "--insecure-argv"]);
    assert!(
        r.stderr.contains("INSECURE") && r.stderr.contains("api_key"),
        "no loud warning: {}",
        r.stderr
    );
    assert!(!r.all().contains(CANARY), "the warning repeats the secret");
    assert!(
        !env.data_dump().contains(CANARY),
        "the secret is not sealed"
    );
    let entries = env.audit().list(Some("s"), 10).unwrap();
    let entry = entries
        .iter()
        .find(|e| e.field.as_deref() == Some("api_key"))
        .unwrap_or_else(|| panic!("no audit entry for api_key: {entries:?}"));
    assert!(
        entry.actor.contains("--insecure-argv"),
        "the audit does not say how: {entry:?}"
    );
}

/// Every mode under `dir` that group or others can use, as `path mode`.
#[cfg(unix)]
fn open_to_others(dir: &Path, out: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir).unwrap();
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        out.push(format!("{} {mode:o}", dir.display()));
    }
    if meta.is_dir() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            open_to_others(&e.path(), out);
        }
    }
}

/// Issue 19: `state.sqlite3` was created 0644 while `console.sqlite3` was 0600, and the
/// folders were 0755.
#[cfg(unix)]
#[test]
fn data_directory_files_are_0600_and_folders_0700_and_older_ones_are_tightened_at_start() {
    use std::os::unix::fs::PermissionsExt;
    // The data directory's own files: embedded backend.
    let env = TestEnv::with_plugins(&["fixture_service_probe"]).embedded();
    env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
    env.ok(&["config", "set", "p", "base_url", "http://127.0.0.1:9"]);
    env.ok(&["config", "enable", "p"]);
    // A task run writes plugin state to state.sqlite3; the change above wrote the audit.
    env.ok(&["tasks", "run", "p", "tick"]);
    env.ok(&[
        "admin", "token", "create", "--name", "t", "--scope", "admin",
    ]);
    for file in ["state.sqlite3", "console.sqlite3", "instances/p.toml"] {
        assert!(env.data.join(file).is_file(), "{file} was not created");
    }
    let mut open = Vec::new();
    open_to_others(&env.data, &mut open);
    assert!(open.is_empty(), "readable by others: {open:?}");

    // What an older version (or a `cp -r` with umask 022) left behind.
    let state = env.data.join("state.sqlite3");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(
        env.data.join("instances"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let r = env.ok(&["config", "list"]);
    assert!(
        r.stderr.contains("readable by other users") && r.stderr.contains("state.sqlite3"),
        "the fix is not reported: {}",
        r.stderr
    );
    let mut open = Vec::new();
    open_to_others(&env.data, &mut open);
    assert!(open.is_empty(), "still readable by others: {open:?}");
}

/// `POST path` with extra headers: (status, head in lower case, body as JSON).
fn post_with(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    extra: &str,
    body: &str,
) -> (u16, String, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("chunked") {
        rest.split("\r\n").nth(1).unwrap_or("").to_owned()
    } else {
        rest.to_owned()
    };
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

/// Issue 19: a Sirene lookup over the provider quota (30 per minute) waited silently and
/// answered after seconds; the ERP could not tell waiting from hanging. A caller that says
/// how long it waits (`Prefer: wait`) is now refused at once, told when to retry.
#[test]
fn a_call_over_quota_that_would_wait_past_the_callers_deadline_fails_at_once_with_retry_after() {
    use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
    let sirene = SireneEmulator::start(SireneOptions {
        api_key: CANARY.into(),
        ..SireneOptions::default()
    })
    .unwrap();
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    env.ok(&["config", "create", "registry", "--plugin", "sirene"]);
    env.ok(&["config", "set", "registry", "base_url", &sirene.base_url()]);
    env.run_with_stdin(
        &["config", "set", "registry", "api_key", "--stdin"],
        Some(CANARY),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "registry"]);
    let token = passerelle_e2e::serve::admin_token(&env);
    let server = passerelle_e2e::serve::Server::start(&env, &["--log", "info"]);
    let lookup = "/api/capabilities/company.lookup";
    let body = r#"{"id": "21920023500014"}"#;
    // The quota's 30 requests of the minute: they go at once.
    for _ in 0..30 {
        let (status, _, out) = post_with(server.addr, lookup, &token, "Prefer: wait=5\r\n", body);
        assert_eq!(status, 200, "{out}");
    }
    let asked = std::time::Instant::now();
    let (status, head, out) = post_with(server.addr, lookup, &token, "Prefer: wait=5\r\n", body);
    let took = asked.elapsed();
    assert_eq!(
        (status, out["code"].as_str()),
        (429, Some("quota_exhausted")),
        "{out}"
    );
    assert!(
        took < std::time::Duration::from_secs(3),
        "it waited {took:?}"
    );
    let retry_after: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {head}"));
    assert!(
        (30..=61).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let message = out["message"].as_str().unwrap();
    assert!(
        message.contains("registry")
            && message.contains("30 per minute")
            && message.contains("capacity returns in")
            && message.contains(&format!("retry after {retry_after} s")),
        "{message}"
    );
    assert_eq!(
        sirene.request_count(),
        30,
        "the refused call reached the provider"
    );
    server.wait_for(
        "refusal logged",
        "refused at once: the provider quota frees up",
    );
}

/// Issue 19: the first `./run.sh` printed eight "UNSIGNED plugin loaded" warnings while it
/// signed the bundled plugins, and its host.toml was readable by everyone. The script runs
/// here on a copy of the workspace's layout (the built binary, two bundled plugins), with a
/// `cargo` that does nothing: the build itself is what the rest of the suite already did.
#[cfg(unix)]
#[test]
fn run_sh_is_quiet_on_a_first_run_and_keeps_its_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    let out = repo.join("target/debug");
    std::fs::create_dir_all(&out).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../run.sh");
    std::fs::copy(&script, repo.join("run.sh")).unwrap();
    std::os::unix::fs::symlink(&passerelle_e2e::artifacts().bin, out.join("passerelle")).unwrap();
    for plugin in ["passerelle_sirene", "passerelle_universign"] {
        let name = passerelle_e2e::library_file_name(plugin);
        std::fs::copy(passerelle_e2e::plugin_library(plugin), out.join(&name)).unwrap();
    }
    let shim = root.path().join("bin");
    std::fs::create_dir_all(&shim).unwrap();
    std::fs::write(shim.join("cargo"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(shim.join("cargo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = || {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(repo.join("run.sh"))
            .env("PATH", &path)
            .env("PASSERELLE_RUN_PROFILE", "dev")
            .env("PASSERELLE_PLUGIN_DIRS", &out)
            .env_remove("PASSERELLE_DATA_DIR")
            .env_remove("PASSERELLE_PLUGIN_POLICY")
            .env_remove("PASSERELLE_SECRET_KEY")
            .env_remove("PASSERELLE_KEY_FILE")
            .env_remove("RUST_LOG")
            .current_dir(root.path());
        passerelle_e2e::run_to_end(
            cmd,
            "./run.sh".into(),
            None,
            passerelle_e2e::COMMAND_TIMEOUT,
        )
        .unwrap()
        .expect_code(0)
    };
    for attempt in ["first", "second"] {
        let r = run();
        assert!(
            r.stderr.trim().is_empty(),
            "the {attempt} run is not quiet:\n{}",
            r.stderr
        );
        assert!(
            r.stdout.contains("sirene") && r.stdout.contains("universign"),
            "the signed plugins are not loaded:\n{}",
            r.stdout
        );
    }
    let mut open = Vec::new();
    open_to_others(&repo.join("data"), &mut open);
    assert!(open.is_empty(), "readable by others: {open:?}");
}
