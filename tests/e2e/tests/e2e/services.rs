//! Host services end to end, through the `service-probe` test plugin and the Sirene plugin:
//! custom certificate authorities, quotas, retries, OAuth2 tokens, tasks and redaction.

use passerelle_e2e::TestEnv;
use passerelle_emulators::probe::{ProbeEmulator, ProbeOptions};
use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
use serde_json::json;

fn probe_env(probe: &ProbeEmulator) -> TestEnv {
    let env = TestEnv::with_plugins(&["fixture_service_probe"]);
    env.ok(&["config", "create", "p", "--plugin", "service-probe"]);
    env.ok(&["config", "set", "p", "base_url", &probe.url()]);
    env.ok(&["config", "set", "p", "client_id", "probe-client"]);
    env.run_with_stdin(
        &["config", "set", "p", "client_secret", "--stdin"],
        Some("probe-secret"),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "p"]);
    env
}

#[test]
fn retries_transient_failures_and_reports_each_attempt() {
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = probe_env(&probe);
    probe.fail_next(2, 503);
    let report = env.ok(&["test", "p", "--json"]).json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(
        report["steps"][0]["detail"],
        "3 attempts: HTTP 503, HTTP 503, HTTP 200"
    );
    assert_eq!(probe.health_requests(), 3);

    probe.fail_next(5, 503);
    let report = env.run(&["test", "p", "--json"]).expect_code(1).json();
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("HTTP 503 after 3 attempts"),
        "{report:#}"
    );

    // A 502 may mean the request was applied: retried only when idempotent.
    probe.fail_next(1, 502);
    let out = env
        .ok(&[
            "invoke",
            "other.fetch",
            "--input",
            r#"{"path":"/health","idempotent":false}"#,
        ])
        .json();
    assert_eq!(out["status"], 502);
    assert_eq!(out["attempts"].as_array().unwrap().len(), 1);
    probe.fail_next(1, 502);
    let out = env
        .ok(&[
            "invoke",
            "other.fetch",
            "--input",
            r#"{"path":"/health","idempotent":true}"#,
        ])
        .json();
    assert_eq!(out["status"], 200);
    assert_eq!(out["attempts"].as_array().unwrap().len(), 2);
    // A 404 says the request is wrong: never retried.
    let out = env
        .ok(&["invoke", "other.fetch", "--input", r#"{"path":"/nowhere"}"#])
        .json();
    assert_eq!(out["attempts"].as_array().unwrap().len(), 1);
}

#[test]
fn oauth2_tokens_are_fetched_used_and_never_logged() {
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = probe_env(&probe);
    let run = env.ok(&["--log", "trace", "invoke", "other.protected"]);
    assert_eq!(run.json()["status"], 200);
    assert!(!run.all().contains("probe-secret"), "client secret leaked");
    assert!(
        !run.all().contains("probe-token-"),
        "token leaked:\n{}",
        run.stderr
    );
    // Another process (here the next command) reuses that token: it is shared through the
    // state database, sealed, never in clear.
    let fetched = probe.token_requests();
    assert_eq!(fetched, 1);
    let run = env.ok(&["invoke", "other.protected"]);
    assert_eq!(run.json()["status"], 200);
    assert_eq!(
        probe.token_requests(),
        fetched,
        "a second token was fetched"
    );
    assert!(
        !env.data_dump().contains("probe-token-"),
        "token stored in clear"
    );

    env.run_with_stdin(
        &["config", "set", "p", "client_secret", "--stdin"],
        Some("wrong-secret"),
    )
    .expect_code(0);
    let report = env.run(&["test", "p", "--json"]).expect_code(1).json();
    let step = &report["steps"][1];
    assert_eq!(step["name"], "get token");
    assert_eq!(step["status"], "failed");
    let detail = step["detail"].as_str().unwrap();
    assert!(
        detail.contains("invalid_client") && detail.contains("check the client id and secret"),
        "{detail}"
    );
}

#[test]
fn quotas_queue_requests_instead_of_exceeding_them() {
    let probe = ProbeEmulator::start(ProbeOptions {
        strict_per_second: 5,
        ..ProbeOptions::default()
    })
    .unwrap();
    let env = probe_env(&probe);
    env.ok(&["config", "set", "p", "per_second", "5"]);
    let out = env
        .ok(&[
            "invoke",
            "other.burst",
            "--input",
            r#"{"path":"/strict","count":20,"threads":4}"#,
        ])
        .json();
    assert_eq!(out["rejected"], 0, "{out}");
    assert_eq!(out["ok"], 20, "{out}");
    assert!(out["elapsed_ms"].as_u64().unwrap() >= 3000, "{out}");
    assert_eq!(probe.strict_counts(), (20, 0));

    // Without the quota the same burst is refused by the provider.
    env.ok(&["config", "unset", "p", "per_second"]);
    let out = env
        .ok(&[
            "invoke",
            "other.burst",
            "--input",
            r#"{"path":"/strict","count":20,"threads":4}"#,
        ])
        .json();
    assert!(out["rejected"].as_u64().unwrap() > 0, "{out}");
}

#[test]
fn processes_on_one_data_directory_share_the_quota() {
    // Issue 16: two processes each kept their own window and together sent 2N per second.
    let probe = ProbeEmulator::start(ProbeOptions {
        strict_per_second: 5,
        ..ProbeOptions::default()
    })
    .unwrap();
    let env = probe_env(&probe);
    env.ok(&["config", "set", "p", "per_second", "5"]);
    let input = r#"{"path":"/strict","count":10,"threads":2}"#;
    let outs: Vec<serde_json::Value> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| env.ok(&["invoke", "other.burst", "--input", input]).json()))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for out in &outs {
        assert_eq!(out["rejected"], 0, "{out}");
        assert_eq!(out["ok"], 10, "{out}");
    }
    assert_eq!(probe.strict_counts(), (20, 0));
}

#[test]
fn the_daily_quota_survives_restarts_and_says_when_it_resets() {
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = probe_env(&probe);
    env.ok(&["config", "set", "p", "per_day", "2"]);
    env.ok(&["config", "set", "p", "attempts", "1"]);
    for _ in 0..2 {
        env.ok(&["invoke", "other.fetch", "--input", r#"{"path":"/health"}"#]);
    }
    let out = env
        .ok(&["invoke", "other.fetch", "--input", r#"{"path":"/health"}"#])
        .json();
    let error = out["error"].as_str().unwrap();
    assert!(
        error.contains("daily quota of 2 requests") && error.contains("00:00 UTC"),
        "{error}"
    );
    assert_eq!(probe.health_requests(), 2);
}

#[test]
fn tasks_run_on_demand_are_recorded_and_a_panicking_run_does_not_stop_the_next() {
    let probe = ProbeEmulator::start(ProbeOptions::default()).unwrap();
    let env = probe_env(&probe);
    env.ok(&["config", "set", "p", "tick_panics", "true"]);
    env.ok(&["tasks", "run", "p", "tick"])
        .expect_output("tick 1");
    let r = env.run(&["tasks", "run", "p", "tick"]).expect_code(1);
    assert!(
        r.stderr.contains("tick 2 panicked on purpose"),
        "{}",
        r.stderr
    );
    let list = env.ok(&["tasks", "--json"]).json();
    assert_eq!(list[0]["last_run"]["ok"], false, "{list:#}");
    env.ok(&["tasks", "run", "p", "tick"])
        .expect_output("tick 3");
    env.ok(&["tasks"])
        .expect_output("tick 3")
        .expect_output("every 1 s");
    let r = env.run(&["tasks", "run", "p", "tock"]).expect_code(4);
    assert!(r.stderr.contains("its tasks: tick"), "{}", r.stderr);
}

struct Pki {
    ca_pem: String,
    leaf_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Passerelle Test Root CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "Test Authority");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "sirene.test");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        leaf_der: leaf_cert.der().to_vec(),
        key_der: leaf_key.serialize_der(),
    }
}

#[test]
fn an_unknown_authority_is_named_and_trusting_it_fixes_the_test() {
    let pki = pki();
    let sirene = SireneEmulator::start_tls(
        SireneOptions::default(),
        vec![pki.leaf_der.clone()],
        pki.key_der.clone(),
    )
    .unwrap();
    assert!(sirene.base_url().starts_with("https://127.0.0.1:"));
    // Uses an instance file as a file that holds no certificate: embedded backend.
    let env = TestEnv::with_plugins(&["passerelle_sirene"]).embedded();
    env.ok(&["config", "create", "s", "--plugin", "sirene"]);
    env.ok(&["config", "set", "s", "base_url", &sirene.base_url()]);
    env.run_with_stdin(
        &["config", "set", "s", "api_key", "--stdin"],
        Some("test-key"),
    )
    .expect_code(0);

    let report = env.run(&["test", "s", "--json"]).expect_code(1).json();
    let text = report.to_string();
    assert!(
        text.contains("Passerelle Test Root CA"),
        "issuer not named: {report:#}"
    );
    assert!(
        text.contains("passerelle trust add"),
        "fix not given: {report:#}"
    );

    let ca_file = env.root.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let added = env.ok(&["trust", "add", ca_file.to_str().unwrap()]);
    let added = added
        .expect_output("subject:  CN=Passerelle Test Root CA")
        .expect_output("valid:")
        .expect_output("sha256:");
    let fingerprint = added
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("sha256:"))
        .unwrap()
        .trim()
        .to_owned();
    let report = env.ok(&["test", "s", "--json"]).json();
    assert_eq!(report["status"], "ok", "{report:#}");

    let list = env.ok(&["trust", "list", "--json"]).json();
    assert_eq!(list, json!([list[0].clone()]));
    assert_eq!(list[0]["sha256"], fingerprint.as_str());
    env.ok(&["trust", "remove", &fingerprint[..12]]);
    env.run(&["test", "s"]).expect_code(1);
    let r = env
        .run(&["trust", "add", env.instance_file("s").to_str().unwrap()])
        .expect_code(3);
    assert!(r.stderr.contains("holds no certificate"), "{}", r.stderr);
}
