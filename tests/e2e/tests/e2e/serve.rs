//! What `passerelle serve` does besides HTTP: scheduled tasks of enabled instances, and hot
//! add of plugin files dropped into, replaced in or removed from its plugin directory.

use passerelle_e2e::serve::Server;
use passerelle_e2e::{library_file_name, plugin_library, TestEnv};
use passerelle_emulators::probe::{ProbeEmulator, ProbeOptions};

/// `passerelle serve --log info`.
fn serve(env: &TestEnv) -> Server {
    Server::start(env, &["--log", "info"])
}

#[test]
fn serve_runs_the_tasks_of_enabled_instances_on_schedule() {
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
    env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
    env.ok(&["config", "set", "p", "base_url", &probe.url()]);
    env.ok(&["config", "set", "p", "tick_interval", "1"]);
    env.ok(&["config", "set", "p", "tick_panics", "true"]);
    env.ok(&["config", "enable", "p"]);
    let serve = serve(&env);
    // Tick 2 panics on purpose; the schedule goes on to tick 3.
    serve.wait_for("first run", "tick 1");
    serve.wait_for("panicking run recorded", "tick 2 panicked on purpose");
    serve.wait_for("schedule goes on", "tick 3");
    let tasks = env.ok(&["tasks", "--json"]).json();
    assert!(tasks[0]["last_run"]["next_ms"].is_i64(), "{tasks:#}");
    drop(serve);
}

#[test]
fn plugin_files_are_picked_up_replaced_and_removed_without_restart() {
    let env = TestEnv::new();
    let serve = serve(&env);
    serve.wait_for("server started", "Passerelle");
    // Dropped in: loaded.
    let file = env.plugins.join(library_file_name("passerelle_sirene"));
    std::fs::copy(plugin_library("passerelle_sirene"), &file).unwrap();
    serve.wait_for("hot add", "added sirene");
    env.ok(&["config", "create", "s", "--plugin", "sirene"]);
    env.run_with_stdin(
        &["config", "set", "s", "api_key", "--stdin"],
        Some("k-123456"),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "s"]);
    // Replaced (a different build of the same plugin): loaded as a new library.
    let tmp = env.root.path().join("new.so");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"\0appended to make a new build");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    serve.wait_for("hot replace", "replaced sirene");
    // Removed: its instances are disabled.
    std::fs::remove_file(&file).unwrap();
    serve.wait_for("hot remove", "instances disabled: s");
    let show = env.ok(&["--plugin-dir", "/nonexistent", "config", "list"]);
    assert!(show.stdout.contains("disabled"), "{}", show.stdout);
    // A broken file dropped in is refused and the server goes on.
    std::fs::write(env.plugins.join(library_file_name("junk")), b"junk").unwrap();
    serve.wait_for("refusal", "plugin refused");
    std::fs::copy(plugin_library("passerelle_sirene"), &file).unwrap();
    serve.wait_for_count("after a refusal", "added sirene", 2);
}
