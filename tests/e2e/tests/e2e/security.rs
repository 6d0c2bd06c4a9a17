//! Regression tests of the security review (issue 21), against the real binary: each test is
//! named after the finding it pins.

use passerelle_e2e::serve::{admin_token, Server};
use passerelle_e2e::{artifacts, library_file_name, run_to_end, Run, TestEnv};
use passerelle_emulators::probe::{ProbeEmulator, ProbeOptions};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// `passerelle <args>` with the host's own defaults: no plugin directory and no policy given
/// (TestEnv passes both), run from the test's root directory.
fn with_defaults(env: &TestEnv, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(&artifacts().bin);
    env.storage_env(&mut cmd);
    cmd.arg("--data-dir")
        .arg(&env.data)
        .args(args)
        .env_remove("PASSERELLE_PLUGIN_DIRS")
        .env_remove("PASSERELLE_PLUGIN_POLICY")
        .env_remove("PASSERELLE_SECRET_KEY")
        .env_remove("RUST_LOG")
        .current_dir(env.root.path());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let line = format!("passerelle {}", args.join(" "));
    run_to_end(cmd, line.clone(), None, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("`{line}` did not finish"))
}

fn refusal(listing: &Value, file: &str) -> String {
    listing["refused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with(file))
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{file} not refused: {listing:#}"))
}

#[test]
fn unsigned_code_in_the_current_directory_never_runs() {
    let env = TestEnv::new();
    // A library dropped into ./plugins of the directory the command runs in.
    let cwd_plugins = env.root.path().join("plugins");
    let planted = cwd_plugins.join(library_file_name("fixture_not_a_plugin"));
    std::fs::copy(
        passerelle_e2e::plugin_library("fixture_not_a_plugin"),
        &planted,
    )
    .unwrap();
    std::fs::copy(
        passerelle_e2e::plugin_library("passerelle_sirene"),
        cwd_plugins.join(library_file_name("passerelle_sirene")),
    )
    .unwrap();
    let marker = env.root.path().join("constructor-ran");
    let marker_env = [("FIXTURE_CTOR_MARKER", marker.to_str().unwrap())];

    // Default directories: ./plugins is not one of them.
    let listing = with_defaults(&env, &["plugins", "--json"], &marker_env)
        .expect_code(0)
        .json();
    let mentioned = |l: &Value, key: &str| {
        l[key].as_array().unwrap().iter().any(|p| {
            p["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(cwd_plugins.to_str().unwrap()))
        })
    };
    assert!(
        !mentioned(&listing, "plugins") && !mentioned(&listing, "refused"),
        "{listing:#}"
    );
    with_defaults(&env, &["config", "list"], &marker_env).expect_code(0);
    assert!(!marker.exists(), "the planted library's constructor ran");

    // Named explicitly, the policy is strict for every command (not only serve).
    let dir = cwd_plugins.to_str().unwrap();
    let listing = with_defaults(
        &env,
        &["--plugin-dir", dir, "plugins", "--json"],
        &marker_env,
    )
    .expect_code(0)
    .json();
    assert!(
        listing["plugins"].as_array().unwrap().is_empty(),
        "{listing:#}"
    );
    let r = refusal(&listing, &library_file_name("passerelle_sirene"));
    assert!(r.contains("not signed"), "{r}");

    // Even allowed unsigned, a file that is not a plugin is read as data and never mapped.
    let listing = with_defaults(
        &env,
        &[
            "--plugin-dir",
            dir,
            "--plugin-policy",
            "allow-unsigned",
            "plugins",
            "--json",
        ],
        &marker_env,
    )
    .expect_code(0)
    .json();
    let r = refusal(&listing, &library_file_name("fixture_not_a_plugin"));
    assert!(r.contains("not a Passerelle plugin"), "{r}");
    assert_eq!(listing["plugins"][0]["id"], "sirene", "{listing:#}");
    assert!(
        !marker.exists(),
        "the library was mapped before being refused"
    );

    // A directory every user may write is refused, with the fix.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cwd_plugins, std::fs::Permissions::from_mode(0o777)).unwrap();
        let listing = with_defaults(
            &env,
            &[
                "--plugin-dir",
                dir,
                "--plugin-policy",
                "allow-unsigned",
                "plugins",
                "--json",
            ],
            &marker_env,
        )
        .json();
        std::fs::set_permissions(&cwd_plugins, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = refusal(&listing, &library_file_name("passerelle_sirene"));
        assert!(
            r.contains("writable by every user") && r.contains("chmod o-w"),
            "{r}"
        );
    }
}

fn truncated_copy(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let bytes = std::fs::read(passerelle_e2e::plugin_library("passerelle_sirene")).unwrap();
    assert!(bytes.len() > 300_000);
    let path = env.plugins.join(name);
    std::fs::write(&path, &bytes[..300_000]).unwrap();
    path
}

#[test]
fn a_truncated_library_is_refused_instead_of_killing_the_host_with_sigbus() {
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    truncated_copy(&env, &library_file_name("passerelle_truncated"));
    let run = env.run(&["plugins", "--json"]).expect_code(0);
    let listing = run.json();
    let r = refusal(&listing, &library_file_name("passerelle_truncated"));
    assert!(r.contains("truncated") || r.contains("not a valid"), "{r}");
    assert_eq!(listing["plugins"][0]["id"], "sirene");

    // Hot add in a running serve: refused, and the server keeps answering.
    std::fs::remove_file(env.plugins.join(library_file_name("passerelle_truncated"))).unwrap();
    let token = admin_token(&env);
    let server = Server::start(&env, &[]);
    truncated_copy(&env, &library_file_name("passerelle_late"));
    server.wait_for("hot add of a truncated library", "passerelle_late");
    let (status, plugins) = server.http("GET", "/api/plugins", Some(&token), None);
    assert_eq!(status, 200, "{plugins:#}");
    assert!(plugins.to_string().contains("truncated"), "{plugins:#}");
}

/// One raw HTTP/1.1 exchange: (status, head, body).
fn raw(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// Signs in through the console's form; returns how long the POST took and its status.
fn sign_in(addr: SocketAddr) -> (Duration, u16) {
    let (_, head, _) = raw(
        addr,
        &format!("GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: passerelle_login="))
        .and_then(|v| v.split(';').next())
        .expect("login cookie")
        .to_owned();
    let form = format!(
        "username=admin&password={}&_csrf={cookie}&next=%2Finstances",
        passerelle_e2e::serve::ADMIN_PASSWORD
    );
    let started = Instant::now();
    let (status, _, _) = raw(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nCookie: passerelle_login={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    (started.elapsed(), status)
}

#[test]
fn a_flood_of_over_quota_calls_cannot_freeze_sign_in_or_field_saves() {
    const CALLS: usize = 2_000;
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
    env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
    env.ok(&["config", "set", "p", "base_url", &probe.url()]);
    env.ok(&["config", "set", "p", "per_second", "20"]);
    env.ok(&["config", "enable", "p"]);
    let admin = admin_token(&env);
    let erp = env
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
    let server = Server::start(&env, &[]);
    let addr = server.addr;
    // The host holds decrypted secrets: it never writes a core dump.
    #[cfg(target_os = "linux")]
    {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert_eq!(
            core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
            ["0", "0"],
            "{core}"
        );
    }

    let body = r#"{"path":"/health"}"#;
    let request = format!(
        "POST /api/capabilities/other.fetch HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {erp}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLS)
        .map(|_| {
            let request = request.clone();
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || raw(addr, &request))
                .unwrap()
        })
        .collect();
    // While the flood is on: a sign-in and a field save answer within a second.
    std::thread::sleep(Duration::from_millis(300));
    let (took, status) = sign_in(addr);
    assert_eq!(status, 303, "sign-in during the flood");
    // The review measured a hang of minutes; 1 s is the goal (see the note), 3 s the
    // bound that holds on a loaded 2-core CI machine.
    assert!(took < Duration::from_secs(3), "sign-in took {took:?}");
    let saved_at = Instant::now();
    let (status, doc) = server.http(
        "PUT",
        "/api/instances/p/fields/delay_ms",
        Some(&admin),
        Some(r#"{"value": 5}"#),
    );
    let save_took = saved_at.elapsed();
    // Waiting calls hold no thread: the server's threads stay near the running bound.
    #[cfg(target_os = "linux")]
    let threads: usize = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    #[cfg(not(target_os = "linux"))]
    let threads = 0usize;
    assert!(threads < 200, "{threads} threads during the flood");
    assert_eq!(status, 200, "{doc:#}");
    assert!(
        save_took < Duration::from_secs(3),
        "field save took {save_took:?}"
    );

    let mut ok = 0;
    let mut refused = 0;
    for caller in callers {
        let (status, head, body) = caller.join().unwrap();
        match status {
            200 => ok += 1,
            429 => {
                refused += 1;
                assert!(body.contains("\"quota_exhausted\""), "{body}");
                assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
            }
            other => panic!("a call ended with {other}: {head}\n{body}"),
        }
    }
    eprintln!(
        "{CALLS} calls: {ok} served, {refused} refused at once (429), in {:?}; sign-in {took:?}, field save {save_took:?}, {threads} server threads",
        started.elapsed()
    );
    assert_eq!(ok + refused, CALLS);
    assert!(
        ok >= 8 && refused > CALLS / 2,
        "{ok} served, {refused} refused"
    );
}

const CANARY: &str = "canary+Tok/en=9f3b";

#[test]
fn an_in_process_plugin_cannot_leak_a_secret_through_stderr_or_a_thread_panic() {
    let env = TestEnv::with_plugins(&["fixture_misbehave"]);
    env.write_host_toml(
        "[plugins]\npolicy = \"allow-unsigned\"\n\n[plugins.isolation]\ndefault = \"in-process\"\n",
    );
    env.ok(&["config", "create", "m", "--plugin", "misbehave"]);
    env.run_with_stdin(&["config", "set", "m", "token", "--stdin"], Some(CANARY))
        .expect_code(0);
    env.ok(&["config", "enable", "m"]);
    let encoded = "canary%2BTok%2Fen%3D9f3b";
    for behaviour in ["succeed", "panic", "panic_in_callback"] {
        let input = format!(r#"{{"behaviour":"{behaviour}"}}"#);
        let run = env.run(&["invoke", "other.misbehave", "--input", &input]);
        let all = run.all();
        // The plugin did write it: the masked line proves the capture saw it.
        assert!(
            all.contains("holding token [redacted]"),
            "{behaviour}: {all}"
        );
        for leak in [CANARY, encoded, "canary+Tok\\/en"] {
            assert!(!all.contains(leak), "{behaviour} leaks {leak:?}:\n{all}");
        }
        if behaviour == "panic_in_callback" {
            // The spawned thread's own panic message went to stderr, through the redactor.
            assert!(all.contains("in a callback path"), "{all}");
        }
    }
}

/// `id -un`: the account the tests run as.
fn os_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_test_with_an_unsaved_url_cannot_carry_the_saved_secret_away_and_every_change_is_audited() {
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
    env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
    env.ok(&["config", "set", "p", "base_url", &probe.url()]);
    env.run_with_stdin(
        &["config", "set", "p", "client_secret", "--stdin"],
        Some("probe-secret"),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "p"]);
    let token = admin_token(&env);
    let server = Server::start(&env, &[]);

    // The saved secret would go to this unsaved address: refused, naming what to re-enter.
    let (status, body) = server.http(
        "POST",
        "/api/instances/p/test",
        Some(&token),
        Some(r#"{"values":{"base_url":"http://127.0.0.1:9/collect"}}"#),
    );
    assert_eq!(status, 400, "{body:#}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("base_url")
            && message.contains("client_secret")
            && message.contains("re-enter"),
        "{message}"
    );
    // Re-entered, the test runs (and fails: nothing listens there).
    let (status, report) = server.http(
        "POST",
        "/api/instances/p/test",
        Some(&token),
        Some(
            r#"{"values":{"base_url":"http://127.0.0.1:9/collect","client_secret":"typed-again"}}"#,
        ),
    );
    assert_eq!(status, 200, "{report:#}");
    // The same address as saved is no redirection.
    let same = format!(r#"{{"values":{{"base_url":"{}"}}}}"#, probe.url());
    let (status, report) = server.http("POST", "/api/instances/p/test", Some(&token), Some(&same));
    assert_eq!(status, 200, "{report:#}");

    let (_, audit) = server.http("GET", "/api/audit?instance=p", Some(&token), None);
    let entries = audit.as_array().unwrap();
    let tests: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "instance.test")
        .collect();
    assert_eq!(tests.len(), 3, "{audit:#}");
    assert!(
        tests.iter().all(|e| e["actor"] == "token:tests"),
        "{audit:#}"
    );
    assert!(
        tests
            .iter()
            .any(|e| e["new"].as_str().unwrap().starts_with("refused")),
        "{audit:#}"
    );
    assert!(
        tests.iter().any(|e| e["new"]
            .as_str()
            .unwrap()
            .contains("unsaved values of: base_url, client_secret")),
        "{audit:#}"
    );
    // CLI changes are audited with the operating-system account, not "cli:unknown".
    let cli_actor = format!("cli:{}", os_user());
    let cli: Vec<&Value> = entries.iter().filter(|e| e["actor"] == cli_actor).collect();
    for action in ["instance.create", "field.set", "instance.enable"] {
        assert!(
            cli.iter().any(|e| e["action"] == action),
            "{action}: {audit:#}"
        );
    }
    assert!(
        !audit.to_string().contains("probe-secret"),
        "the audit holds a secret: {audit:#}"
    );
}

#[test]
fn concurrent_writers_without_a_revision_and_identical_provisioning_runs_all_succeed() {
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
    let file = env.root.path().join("provision.toml");
    std::fs::write(
        &file,
        "[instances.q]\nplugin = \"service-probe\"\nenabled = false\n\n[instances.q.values]\nbase_url = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap().to_owned();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| env.run(&["config", "apply", &path])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        assert_eq!(run.code, Some(0), "{}", run.all());
    }
    assert_eq!(
        runs.iter()
            .filter(|r| r.stdout.contains("created q"))
            .count(),
        1,
        "exactly one run creates the instance"
    );

    let token = admin_token(&env);
    let server = Server::start(&env, &[]);
    let addr = server.addr;
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let token = token.clone();
                s.spawn(move || {
                    let body = format!(r#"{{"value": {}}}"#, i % 7);
                    passerelle_e2e::serve::http(
                        addr,
                        "PUT",
                        "/api/instances/q/fields/delay_ms",
                        Some(&token),
                        Some(&body),
                    )
                    .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "{conflicts} spurious conflicts among {statuses:?}"
    );
}

#[test]
fn values_that_slipped_through_are_refused_naming_the_field_or_input() {
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
    env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
    // 1.0 is not a whole number for an integer field.
    let run = env
        .run(&["config", "set", "p", "per_second", "1.0"])
        .expect_code(3);
    assert!(
        run.stderr.contains("per_second") && run.stderr.contains("whole number"),
        "{}",
        run.stderr
    );
    // -1 is a value (refused by the field's bounds), not an unknown option.
    let run = env
        .run(&["config", "set", "p", "delay_ms", "-1"])
        .expect_code(3);
    assert!(run.stderr.contains("delay_ms"), "{}", run.stderr);
    // Text that is not UTF-8, on standard input or in a provisioning file.
    let mut cmd = Command::new(&artifacts().bin);
    env.storage_env(&mut cmd);
    cmd.arg("--data-dir")
        .arg(&env.data)
        .arg("--plugin-dir")
        .arg(&env.plugins)
        .args(["config", "set", "p", "client_id", "--stdin"])
        .env("PASSERELLE_PLUGIN_POLICY", "allow-unsigned")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"abc\xff\xfedef\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("standard input") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    let file = env.root.path().join("bad.toml");
    std::fs::write(&file, b"[instances.p]\nplugin = \"service-probe\xff\"\n").unwrap();
    let run = env
        .run(&["config", "apply", file.to_str().unwrap()])
        .expect_code(3);
    assert!(
        run.stderr.contains("bad.toml") && run.stderr.contains("UTF-8"),
        "{}",
        run.stderr
    );
    // A 100 KB value is refused, naming the field and the limit.
    let huge = "x".repeat(100 * 1024);
    let run = env
        .run_with_stdin(&["config", "set", "p", "client_id", "--stdin"], Some(&huge))
        .expect_code(3);
    assert!(
        run.stderr.contains("client_id") && run.stderr.contains("KiB"),
        "{}",
        &run.stderr[..run.stderr.len().min(500)]
    );
}
