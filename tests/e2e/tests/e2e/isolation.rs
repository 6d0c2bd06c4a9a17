//! Isolation modes end to end: the real `passerelle` binary (and its hidden worker mode), the
//! deliberately misbehaving `fixture-misbehave` plugin, the service-probe plugin against the
//! probe emulator.
//!
//! In process mode a segfault, an abort, an infinite loop, an exhausted memory limit and
//! panics (also on a thread while another waits in a host callback) are contained: the call
//! fails with a reason naming the plugin and what happened, the host answers other requests
//! while the misbehaving call runs and after it, and the next call of the same plugin gets a
//! fresh process. In in-process mode panics and deadlines are contained.

use passerelle_e2e::serve::{admin_token, http, Server};
use passerelle_e2e::TestEnv;
use passerelle_emulators::probe::{ProbeEmulator, ProbeOptions};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TOKEN: &str = "tok-Misbehave-5ecret-4242";

/// A host with the misbehave plugin and this `host.toml`.
fn env_with(host_toml: &str, extra: &[&str]) -> TestEnv {
    let env = TestEnv::with_plugins(&["fixture_misbehave"]);
    for p in extra {
        env.add_plugin(p);
    }
    env.write_host_toml(host_toml);
    env
}

fn process_env() -> TestEnv {
    env_with(
        "[plugins]\nmemory_limit_mb = 256\n\n[plugins.isolation]\ndefault = \"process\"\n",
        &[],
    )
}

/// An enabled misbehave instance with the token set.
fn misbehave_instance(env: &TestEnv, id: &str, behaviour: &str) {
    env.ok(&["config", "create", id, "--plugin", "misbehave"]);
    env.run_with_stdin(&["config", "set", id, "token", "--stdin"], Some(TOKEN))
        .expect_code(0);
    env.ok(&["config", "set", id, "behaviour", behaviour]);
    env.ok(&["config", "set", id, "alloc_mb", "4096"]);
    env.ok(&["config", "enable", id]);
}

fn invoke_misbehave(env: &TestEnv, instance: &str, behaviour: &str) -> passerelle_e2e::Run {
    let input = json!({ "behaviour": behaviour }).to_string();
    env.run(&[
        "invoke",
        "other.misbehave",
        "--input",
        &input,
        "--instance",
        instance,
    ])
}

fn assert_no_token(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "{what} leaks the token:\n{text}");
}

#[test]
fn process_mode_turns_each_crash_into_a_clear_failure_of_the_call() {
    let env = process_env();
    misbehave_instance(&env, "bad", "succeed");
    let cases = [
        ("segfault", "crashed (signal 11, SIGSEGV) during invoke of `other.misbehave`"),
        ("abort", "crashed (signal 6, SIGABRT) during invoke of `other.misbehave`"),
        (
            "allocate",
            "ran out of memory during invoke of `other.misbehave`: it passed its limit of 256 MB (memory allocation of",
        ),
    ];
    for (behaviour, expected) in cases {
        let run = invoke_misbehave(&env, "bad", behaviour).expect_code(1);
        let error = run
            .stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("");
        assert!(
            error.starts_with("error: the plugin process of `misbehave` "),
            "{behaviour}: {}",
            run.stderr
        );
        assert!(error.contains(expected), "{behaviour}: {error}");
        assert!(
            error.ends_with("it will be restarted on next use"),
            "{behaviour}: {error}"
        );
        // The plugin's stderr reached the host's log, redacted; its stdout did not break
        // the protocol (the fixture prints on both before misbehaving).
        assert!(
            run.stderr
                .contains("plugin process stderr: misbehave: about to"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("holding token [redacted]"),
            "{}",
            run.stderr
        );
        assert_no_token(behaviour, &run.all());
    }

    // Panics are caught inside the worker by export_plugin!, as in-process: the worker lives.
    let run = invoke_misbehave(&env, "bad", "panic").expect_code(1);
    assert!(
        run.stderr.contains(
            "error: the plugin panicked in invoke: misbehave panicked holding token [redacted]"
        ),
        "{}",
        run.stderr
    );
    assert_no_token("panic", &run.all());
    let run = invoke_misbehave(&env, "bad", "panic_in_callback").expect_code(1);
    assert!(
        run.stderr
            .contains("error: the plugin panicked in invoke: a scoped thread panicked"),
        "{}",
        run.stderr
    );
    // The callbacks made before the panic were served by the host (wrong input refused,
    // unknown service named), and the sleeping callback thread was answered.
    assert!(
        run.stderr
            .contains("host callback state.put: invalid input"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("has no service \"no.such.service\""),
        "{}",
        run.stderr
    );
    assert_no_token("panic_in_callback", &run.all());

    // The infinite loop is killed at the deadline (tests take --deadline).
    env.ok(&["config", "set", "bad", "behaviour", "loop"]);
    let started = Instant::now();
    let run = env.run(&["--deadline", "2", "test", "bad"]).expect_code(1);
    assert!(
        run.stdout.contains(
            "the plugin process of `misbehave` did not finish test within 2 s and was killed; it will be restarted on next use"
        ),
        "{}",
        run.all()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // A healthy call through the same plugin: its host callbacks (state, clock, log) work.
    let out = env
        .ok(&[
            "invoke",
            "other.echo",
            "--input",
            r#"{"n":1}"#,
            "--instance",
            "bad",
        ])
        .json();
    assert_eq!(out["echo"], json!({"n": 1}));
    assert_eq!(out["count"], 1);
    assert!(out["now_ms"].as_u64().unwrap() > 1_600_000_000_000, "{out}");
    assert_no_token("data directory", &env.data_dump());
}

#[test]
fn isolation_is_chosen_per_plugin_and_bad_settings_are_refused() {
    let env = env_with(
        "[plugins.isolation]\ndefault = \"in-process\"\nmisbehave = \"process\"\n",
        &["fixture_service_probe"],
    );
    let list = env.ok(&["plugins", "--json"]).json();
    let mode = |id: &str| {
        list["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{id} not loaded: {list}"))
            .clone()
    };
    assert_eq!(mode("misbehave")["isolation"], "process", "{list}");
    assert_eq!(
        mode("misbehave")["process"]["memory_limit_mb"],
        1024,
        "{list}"
    );
    assert_eq!(mode("service-probe")["isolation"], "in-process", "{list}");
    assert!(mode("service-probe")["process"].is_null(), "{list}");
    env.ok(&["plugins"])
        .expect_output("runs in plugin processes (memory limit 1024 MB");

    env.write_host_toml("[plugins.isolation]\nmisbehave = \"separate\"\n");
    env.run(&["plugins"])
        .expect_code(3)
        .expect_output("host.toml")
        .expect_output("unknown variant `separate`, expected `in-process` or `process`");
    env.write_host_toml("[plugins]\nmemory_limit_mb = 10\n");
    env.run(&["plugins"])
        .expect_code(3)
        .expect_output("memory_limit_mb = 10 is too small for a plugin process");
}

#[test]
fn process_mode_proxies_http_oauth2_state_and_quotas_to_the_host() {
    let probe = ProbeEmulator::start(ProbeOptions {
        strict_per_second: 10,
        ..ProbeOptions::default()
    })
    .unwrap();
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
    env.write_host_toml("[plugins.isolation]\ndefault = \"process\"\n");
    env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
    env.ok(&["config", "set", "p", "base_url", &probe.url()]);
    env.ok(&["config", "set", "p", "client_id", "probe-client"]);
    env.run_with_stdin(
        &["config", "set", "p", "client_secret", "--stdin"],
        Some("probe-secret"),
    )
    .expect_code(0);
    env.ok(&["config", "set", "p", "per_second", "10"]);
    env.ok(&["config", "enable", "p"]);
    let list = env.ok(&["plugins", "--json"]).json();
    assert_eq!(list["plugins"][0]["isolation"], "process", "{list}");

    env.ok(&["test", "p"]).expect_output("get token");
    let out = env.ok(&["invoke", "other.protected"]).json();
    assert!(out.is_object(), "{out}");
    // 30 requests from 4 plugin threads at once, through the host's quota of 10/s: every
    // callback is served (concurrently) and the strict provider refuses none.
    let out = env
        .ok(&[
            "invoke",
            "other.burst",
            "--input",
            r#"{"path":"/strict","count":30,"threads":4}"#,
        ])
        .json();
    let (accepted, refused) = probe.strict_counts();
    assert_eq!(refused, 0, "{out}");
    assert_eq!(out["rejected"], 0, "{out}");
    assert_eq!(out["ok"].as_u64().unwrap() as usize, accepted, "{out}");
    assert!(accepted >= 28, "{out}");
    assert!(out["elapsed_ms"].as_u64().unwrap() >= 1500, "{out}");
    assert!(!env.data_dump().contains("probe-secret"));
}

#[test]
fn in_process_mode_contains_panics_and_deadlines() {
    let env = env_with("", &[]);
    misbehave_instance(&env, "bad", "succeed");
    let list = env.ok(&["plugins", "--json"]).json();
    assert_eq!(list["plugins"][0]["isolation"], "in-process", "{list}");

    let run = invoke_misbehave(&env, "bad", "panic").expect_code(1);
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("");
    assert_eq!(
        error, "error: the plugin panicked in invoke: misbehave panicked holding token [redacted]",
        "{}",
        run.stderr
    );
    // What the plugin writes to stderr itself goes out raw in-process (process mode logs it
    // redacted, see above); the host's own output is redacted.
    assert_no_token("stdout", &run.stdout);
    let run = invoke_misbehave(&env, "bad", "panic_in_callback").expect_code(1);
    assert!(
        run.stderr
            .contains("error: the plugin panicked in invoke: a scoped thread panicked"),
        "{}",
        run.stderr
    );

    env.ok(&["config", "set", "bad", "behaviour", "loop"]);
    let started = Instant::now();
    let run = env.run(&["--deadline", "2", "test", "bad"]).expect_code(1);
    assert!(
        run.stdout
            .contains("the test routine did not finish within 2 s and was abandoned"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("instance degraded: test of plugin `misbehave` did not finish within 2 s and was abandoned; its thread still runs"),
        "{}",
        run.stderr
    );
    // The spinning thread does not keep the command alive.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The ERP is told (events, issue 18): degraded first, then the failed test.
    let events = env.ok(&["events", "list", "--json"]).json();
    let told: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["instance"].as_str().unwrap()))
        .collect();
    assert_eq!(
        told,
        [
            ("instance.degraded", "bad"),
            ("instance.test_failed", "bad")
        ]
    );
    env.ok(&["invoke", "other.echo", "--input", "{}", "--instance", "bad"]);
}

// ----- `passerelle serve`: other requests are answered during and after -----

/// `serve` with this call deadline, logging at `info`.
fn serve(env: &TestEnv, deadline_s: u64) -> Server {
    Server::start(
        env,
        &["--deadline", &deadline_s.to_string(), "--log", "info"],
    )
}

/// POST of a JSON body with a bearer token.
fn post(addr: SocketAddr, path: &str, token: &str, body: &str) -> (u16, Value) {
    http(addr, "POST", path, Some(token), Some(body))
}

fn echo(server: &Server, token: &str, instance: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let (code, body) = post(
        server.addr,
        &format!("/api/capabilities/other.echo?instance={instance}"),
        token,
        r#"{"ping":true}"#,
    );
    (code, body, started.elapsed())
}

/// Calls `echo` on `good` until `busy` ends; returns how many answered, all within 2 s.
fn echo_while<T>(server: &Server, token: &str, busy: &std::thread::JoinHandle<T>) -> usize {
    let mut answered = 0;
    while !busy.is_finished() {
        let (code, body, took) = echo(server, token, "good");
        assert_eq!(code, 200, "{body}\n{}", server.log());
        assert!(took < Duration::from_secs(2), "echo took {took:?}");
        answered += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    answered
}

#[test]
fn serve_with_process_isolation_answers_during_and_after_each_misbehaviour() {
    let env = process_env();
    misbehave_instance(&env, "bad", "loop");
    misbehave_instance(&env, "good", "succeed");
    let token = admin_token(&env);
    let server = serve(&env, 3);
    let (code, first, _) = echo(&server, &token, "good");
    assert_eq!(code, 200, "{first}");

    // An infinite loop: killed at the deadline while `good` keeps answering.
    let (addr, t) = (server.addr, token.clone());
    let looping = std::thread::spawn(move || post(addr, "/api/instances/bad/test", &t, ""));
    let answered = echo_while(&server, &token, &looping);
    let (code, report) = looping.join().unwrap();
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["status"], "failed", "{report}");
    assert!(
        report.to_string().contains(
            "the plugin process of `misbehave` did not finish test within 3 s and was killed"
        ),
        "{report}"
    );
    assert!(
        answered >= 5,
        "only {answered} echoes answered during the loop"
    );
    // The killed worker is gone (reaped), not spinning in the background.
    let log = server.log();
    let pid = log
        .lines()
        .find(|l| l.contains("did not finish test within 3 s and was killed"))
        .and_then(|l| l.split("pid=").nth(1))
        .and_then(|p| p.split_whitespace().next())
        .unwrap_or_else(|| panic!("no kill logged:\n{log}"))
        .to_owned();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "worker {pid} still exists"
    );

    // Each crash, on its own call: the call fails with the reason, `good` answers while the
    // crashed call is handled and after it, and the next call of `bad` gets a new process.
    let cases = [
        ("segfault", "crashed (signal 11, SIGSEGV)"),
        ("abort", "crashed (signal 6, SIGABRT)"),
        (
            "allocate",
            "ran out of memory during invoke of `other.misbehave`",
        ),
        ("panic", "the plugin panicked in invoke"),
        ("panic_in_callback", "a scoped thread panicked"),
    ];
    let mut pids = vec![first["pid"].clone()];
    for (behaviour, expected) in cases {
        let (addr, t) = (server.addr, token.clone());
        let body = json!({ "behaviour": behaviour }).to_string();
        let call = std::thread::spawn(move || {
            post(
                addr,
                "/api/capabilities/other.misbehave?instance=bad",
                &t,
                &body,
            )
        });
        echo_while(&server, &token, &call);
        let (code, error) = call.join().unwrap();
        assert!(code >= 500, "{behaviour}: {code} {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{behaviour}: {error}");
        assert_no_token(behaviour, &error.to_string());

        let (code, body, _) = echo(&server, &token, "bad");
        assert_eq!(code, 200, "{behaviour}: bad does not answer after: {body}");
        let (code, body, _) = echo(&server, &token, "good");
        assert_eq!(code, 200, "{behaviour}: good does not answer after: {body}");
        pids.push(body["pid"].clone());
    }
    // State written through the callbacks survived every crash: `bad` echoed once after
    // each of the five.
    let (_, body, _) = echo(&server, &token, "bad");
    assert_eq!(body["count"], 6, "{body}");
    // Workers are plain child processes of the host, never the host itself.
    let host_pid = server.pid();
    assert!(
        pids.iter().all(|p| p.as_u64() != Some(u64::from(host_pid))),
        "{pids:?}"
    );
    assert_no_token("serve log", &server.log());
}

#[test]
fn serve_in_process_mode_survives_panics_and_abandons_late_calls() {
    let env = env_with("", &[]);
    misbehave_instance(&env, "bad", "loop");
    misbehave_instance(&env, "good", "succeed");
    let token = admin_token(&env);
    let server = serve(&env, 2);
    let host_pid = u64::from(server.pid());

    let (addr, t) = (server.addr, token.clone());
    let looping = std::thread::spawn(move || post(addr, "/api/instances/bad/test", &t, ""));
    let answered = echo_while(&server, &token, &looping);
    let (code, report) = looping.join().unwrap();
    assert_eq!(code, 200, "{report}");
    assert!(
        report
            .to_string()
            .contains("the test routine did not finish within 2 s and was abandoned"),
        "{report}"
    );
    assert!(
        answered >= 3,
        "only {answered} echoes answered during the loop"
    );
    assert!(
        server
            .log()
            .contains("instance degraded: test of plugin `misbehave` did not finish within 2 s"),
        "{}",
        server.log()
    );

    for (behaviour, expected) in [
        ("panic", "the plugin panicked in invoke"),
        ("panic_in_callback", "a scoped thread panicked"),
    ] {
        let body = json!({ "behaviour": behaviour }).to_string();
        let (code, error) = post(
            server.addr,
            "/api/capabilities/other.misbehave?instance=bad",
            &token,
            &body,
        );
        assert!(code >= 500, "{behaviour}: {code} {error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains(expected),
            "{behaviour}: {error}"
        );
        let (code, body, _) = echo(&server, &token, "good");
        assert_eq!(code, 200, "{body}");
        // In-process: the plugin runs inside the host.
        assert_eq!(body["pid"].as_u64(), Some(host_pid), "{body}");
    }
}
