//! What `passerelle serve` does besides HTTP: scheduled tasks of enabled instances, and hot
//! add of plugin files dropped into, replaced in or removed from its plugin directory.

use passerelle_e2e::{artifacts, library_file_name, plugin_library, TestEnv};
use passerelle_emulators::probe::{ProbeEmulator, ProbeOptions};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `passerelle serve --log info` on a free port; its stderr goes to a file; killed on drop.
struct Serve {
    child: Child,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(env: &TestEnv) -> Serve {
        let log = env.root.path().join("serve.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&artifacts().bin)
            .arg("--data-dir")
            .arg(&env.data)
            .arg("--plugin-dir")
            .arg(&env.plugins)
            .args(["--plugin-policy", "allow-unsigned", "--log", "info"])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("PASSERELLE_ADMIN_PASSWORD", "serve-test-admin-pw")
            .env_remove("PASSERELLE_SECRET_KEY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Serve { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the server's log contains `needle`, naming the step on timeout.
    fn wait_for(&self, step: &str, needle: &str) {
        self.wait_for_count(step, needle, 1);
    }

    /// Waits until the server's log contains `needle` `count` times.
    fn wait_for_count(&self, step: &str, needle: &str, count: usize) {
        let started = Instant::now();
        while self.log().matches(needle).count() < count {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{step}: {needle:?} not in the server log within 60 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let serve = Serve::start(&env);
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
    let serve = Serve::start(&env);
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
