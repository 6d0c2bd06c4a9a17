//! What an operator watches, end to end through `passerelle serve`: `/metrics` behind a token
//! of scope `metrics`, parsed with a Prometheus text parser, its counters moving with the
//! capability calls, provider HTTP statuses and task runs made; and JSON log lines that
//! never carry a secret.

use passerelle_e2e::serve::{admin_token, Server};
use passerelle_e2e::{library_file_name, TestEnv};
use passerelle_emulators::probe::{ProbeEmulator, ProbeOptions};
use prometheus_parse::{Scrape, Value};

/// A `service-probe` instance `p` against `probe`, with a daily quota of 100 and a task
/// that the scheduler leaves alone (an hour away), so that only the test runs it.
fn probe_env(probe: &ProbeEmulator, secret: &str) -> TestEnv {
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
    env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
    env.ok(&["config", "set", "p", "base_url", &probe.url()]);
    env.ok(&["config", "set", "p", "per_day", "100"]);
    env.ok(&["config", "set", "p", "tick_interval", "3600"]);
    env.ok(&["config", "set", "p", "tick_delay", "3600"]);
    env.run_with_stdin(
        &["config", "set", "p", "client_secret", "--stdin"],
        Some(secret),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "p"]);
    env
}

fn token(env: &TestEnv, name: &str, scope: &str) -> String {
    env.ok(&["admin", "token", "create", "--name", name, "--scope", scope])
        .stdout
        .trim()
        .to_owned()
}

/// `GET /metrics` with `token`, parsed.
fn scrape(serve: &Server, token: &str) -> Scrape {
    let (status, body) = serve.http("GET", "/metrics", Some(token), None);
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    let text = body.as_str().expect("the exposition is text, not JSON");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{text}"))
}

/// The value of the sample `metric` whose labels include `labels` (0 when absent: a counter
/// that has not moved yet is not exposed).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map(|b| b.count).unwrap_or(0.0),
            Value::Summary(_) => panic!("{metric} is a summary, expected a histogram"),
        })
        .sum()
}

fn fetch(serve: &Server, token: &str, path: &str) -> serde_json::Value {
    let body = serde_json::json!({ "path": path }).to_string();
    let (status, out) = serve.http(
        "POST",
        "/api/capabilities/other.fetch",
        Some(token),
        Some(&body),
    );
    assert_eq!(status, 200, "{out}\n{}", serve.log());
    out
}

#[test]
fn metrics_need_a_metrics_token_and_move_with_calls_provider_statuses_and_task_runs() {
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = probe_env(&probe, "probe-secret");
    // A file the loader refuses at start.
    std::fs::write(
        env.plugins.join(library_file_name("junk")),
        b"not a library",
    )
    .unwrap();
    let metrics = token(&env, "prometheus", "metrics");
    let erp = token(&env, "erp", "capabilities");
    let admin = admin_token(&env);
    let serve = Server::start(&env, &[]);

    // Refused anonymously, with a token of another scope; a metrics token reads nothing else.
    let (status, body) = serve.http("GET", "/metrics", None, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "unauthenticated", "{body}");
    let (status, body) = serve.http("GET", "/metrics", Some(&erp), None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`metrics`"),
        "{body}"
    );
    let (status, _) = serve.http("GET", "/api/instances", Some(&metrics), None);
    assert_eq!(status, 403);
    let (status, _) = serve.http("GET", "/metrics", Some(&admin), None);
    assert_eq!(status, 200);

    let before = scrape(&serve, &metrics);
    let calls = [
        ("instance", "p"),
        ("operation", "other.fetch"),
        ("outcome", "ok"),
    ];
    assert_eq!(
        value(&before, "passerelle_capability_calls_total", &calls),
        0.0
    );
    assert_eq!(
        value(
            &before,
            "passerelle_plugin_load_failures_total",
            &[("stage", "startup")]
        ),
        1.0
    );
    assert_eq!(
        value(&before, "passerelle_build_info", &[]),
        1.0,
        "build info"
    );

    // 200; 404 (no such path at the provider); 503 then 200 (retried).
    assert_eq!(fetch(&serve, &erp, "/health")["status"], 200);
    assert_eq!(fetch(&serve, &erp, "/no-such-path")["status"], 404);
    probe.fail_next(1, 503);
    assert_eq!(fetch(&serve, &erp, "/health")["status"], 200);
    let (status, run) = serve.http(
        "POST",
        "/api/instances/p/tasks/tick/run",
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{run}");

    let after = scrape(&serve, &metrics);
    assert_eq!(
        value(&after, "passerelle_capability_calls_total", &calls),
        3.0
    );
    let duration = "passerelle_capability_call_duration_seconds";
    let observed =
        value(&after, &format!("{duration}_count"), &calls).max(value(&after, duration, &calls));
    assert_eq!(observed, 3.0, "three calls in the latency histogram");
    for (status, n) in [("200", 2.0), ("404", 1.0), ("503", 1.0)] {
        assert_eq!(
            value(
                &after,
                "passerelle_provider_http_requests_total",
                &[("instance", "p"), ("status", status)]
            ),
            n,
            "provider HTTP {status}"
        );
    }
    assert_eq!(
        value(
            &after,
            "passerelle_task_runs_total",
            &[("instance", "p"), ("task", "tick"), ("outcome", "ok")]
        ),
        1.0
    );
    // Four provider requests counted against the daily quota of 100.
    assert_eq!(
        value(
            &after,
            "passerelle_quota_daily_remaining",
            &[("instance", "p")]
        ),
        96.0
    );
}

#[test]
fn json_logs_are_one_object_per_line_and_never_carry_a_secret() {
    // Quotes and a backslash are written differently inside a JSON string.
    let secret = "Json-\"Log\"\\Secret-7731";
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = probe_env(&probe, secret);
    let erp = token(&env, "erp", "capabilities");
    let serve = Server::start(&env, &["--log", "info", "--log-format", "json"]);
    // The request line logs the URL's path, which here carries the secret.
    fetch(&serve, &erp, &format!("/echo/{secret}"));
    serve.wait_for("request logged", "[redacted]");
    drop(serve);
    let stderr = std::fs::read_to_string(env.root.path().join("serve.stderr")).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["message"] == "http" && l["instance"] == "p")
        .unwrap_or_else(|| panic!("no request line in\n{stderr}"));
    assert_eq!(request["level"], "INFO");
    assert!(request["timestamp"].is_string(), "{request}");
    assert_eq!(request["status"], 404);
    assert!(
        request["url"]
            .as_str()
            .unwrap()
            .ends_with("/echo/[redacted]"),
        "{request}"
    );
    let escaped = serde_json::to_string(secret).unwrap();
    for form in [secret, escaped.trim_matches('"'), "Secret-7731"] {
        assert!(
            !stderr.contains(form),
            "{form:?} in the JSON logs:\n{stderr}"
        );
    }
}
