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
    let db = passerelle::server::db::ConsoleDb::open_in(&env.data).unwrap();
    let entries = passerelle::server::audit::AuditLog::new(std::sync::Arc::new(db))
        .list(Some("s"), 10)
        .unwrap();
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
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
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
