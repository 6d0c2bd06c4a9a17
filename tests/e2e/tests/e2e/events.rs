//! Events to the ERP end to end: the real `passerelle` binary and Universign plugin, the
//! Universign emulator, and a webhook receiver on loopback that checks signatures as the
//! README tells an ERP to. A completed transaction is delivered once, signed; a failing
//! receiver gets the event after its retries, in order; a server killed with SIGKILL
//! delivers what was pending after restart, with the same delivery ids.

use passerelle_e2e::receiver::Receiver;
use passerelle_e2e::serve::Server;
use passerelle_e2e::TestEnv;
use passerelle_emulators::universign::{BadCredentials, UniversignEmulator, UniversignOptions};
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "whsec-e2e-4f1c9a7be2d04c55";
const PASSWORD: &str = "canary-universign-pw-events";
/// Fast retries for the tests (the default starts at 10 s).
const FAST_RETRIES: &[(&str, &str)] = &[("PASSERELLE_WEBHOOK_RETRY_BASE_MS", "100")];
const WAIT: Duration = Duration::from_secs(60);

fn add_webhook(env: &TestEnv, url: &str, events: &str) -> String {
    let out = env
        .run_with_stdin(
            &["webhooks", "add", url, "--events", events, "--json"],
            Some(&format!("{SECRET}\n")),
        )
        .expect_code(0);
    assert!(
        !out.all().contains(SECRET),
        "the secret was echoed: {}",
        out.all()
    );
    out.json()["id"].as_str().unwrap().to_owned()
}

fn history(env: &TestEnv) -> Vec<Value> {
    env.ok(&["webhooks", "history", "--json"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_completed_universign_transaction_is_delivered_once_signed_and_verifiable() {
    let emu = UniversignEmulator::start(UniversignOptions {
        user: "erp@example.com".into(),
        password: PASSWORD.into(),
        bad_credentials: BadCredentials::Fault,
        ..UniversignOptions::default()
    })
    .unwrap();
    let env = TestEnv::with_plugins(&["passerelle_universign"]);
    env.ok(&["config", "create", "u", "--plugin", "universign"]);
    env.ok(&["config", "set", "u", "url", &emu.url()]);
    env.ok(&["config", "set", "u", "user", "erp@example.com"]);
    env.run_with_stdin(
        &["config", "set", "u", "password", "--stdin"],
        Some(PASSWORD),
    )
    .expect_code(0);
    env.ok(&["config", "set", "u", "enabled", "true"]);
    env.ok(&["config", "set", "u", "poll_interval_secs", "1"]);
    env.ok(&["config", "set", "u", "poll_start_delay_secs", "0"]);
    env.ok(&["config", "enable", "u"]);
    let receiver = Receiver::start(&[], 200);
    let hook = add_webhook(&env, &receiver.url(), "esign.completed,esign.refused");

    let input = json!({
        "documents": [{"name": "DEV-42.pdf", "content_base64": "JVBERi0xLjQKJSVFT0YK"}],
        "signers": [{"first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@example.com"}],
        "custom_id": "DEV-42",
    })
    .to_string();
    let tx = env
        .ok(&["invoke", "esign.request", "--input", &input])
        .json();
    let id = tx["id"].as_str().unwrap().to_owned();
    emu.sign_all(&id).unwrap();
    // The poll task run by the command line stores the event; the server delivers it, and
    // its own scheduler polls every second without telling the ERP again.
    env.ok(&["tasks", "run", "u", "poll_signatures"])
        .expect_output("1 completed");
    let server = Server::start(&env, &["--log", "info"]);
    let got = receiver.wait_accepted("esign.completed delivered", 1, WAIT);
    server.wait_for_count("scheduler polled again", "no pending transaction", 1);
    std::thread::sleep(Duration::from_millis(1500));
    let all = receiver.received();
    assert_eq!(all.len(), 1, "exactly one delivery: {all:?}");
    let d = &got[0];
    assert_eq!(d.header("x-passerelle-event"), "esign.completed");
    assert_eq!(d.header("content-type"), "application/json");
    let event = d.json();
    assert_eq!(
        d.header("x-passerelle-delivery"),
        event["id"].as_str().unwrap()
    );
    assert_eq!(event["type"], "esign.completed");
    assert_eq!(event["instance"], "u");
    assert_eq!(event["data"]["transaction_id"], id.as_str());
    assert_eq!(event["data"]["reference"], "DEV-42");
    assert_eq!(event["data"]["previous_status"], "ready");
    d.verify(SECRET).unwrap();

    // A wrong secret, a changed body or a changed timestamp is detected by the receiver.
    assert_eq!(
        d.verify("whsec-someone-else-000000").unwrap_err(),
        "signature mismatch"
    );
    let mut tampered = d.clone();
    tampered.body = String::from_utf8(d.body.clone())
        .unwrap()
        .replace("DEV-42", "DEV-43")
        .into_bytes();
    assert!(tampered.verify(SECRET).is_err());
    let mut replayed = d.clone();
    let ts: i64 = d.header("x-passerelle-timestamp").parse().unwrap();
    replayed
        .headers
        .insert("x-passerelle-timestamp".into(), (ts + 1).to_string());
    assert!(replayed.verify(SECRET).is_err());

    let h = history(&env);
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["webhook"], hook.as_str());
    assert_eq!(h[0]["state"], "delivered");
    assert_eq!(h[0]["attempts"], 1);
    assert!(!server.log().contains(SECRET));
    assert!(!server.log().contains(PASSWORD));
}

#[test]
fn a_receiver_failing_three_times_gets_the_events_in_order_after_retries() {
    let env = TestEnv::new();
    let receiver = Receiver::start(&[500, 500, 500], 200);
    add_webhook(&env, &receiver.url(), "*");
    let first = env
        .ok(&[
            "events",
            "emit",
            "esign.expired",
            "--instance",
            "u",
            "--data",
            r#"{"n":1}"#,
        ])
        .stdout
        .trim()
        .to_owned();
    let second = env
        .ok(&[
            "events",
            "emit",
            "esign.refused",
            "--instance",
            "u",
            "--data",
            r#"{"n":2}"#,
        ])
        .stdout
        .trim()
        .to_owned();
    let _server = Server::start_with_env(&env, &[], FAST_RETRIES);
    receiver.wait_accepted("both events delivered", 2, WAIT);
    let seen: Vec<(String, u16, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            (
                r.header("x-passerelle-delivery").to_owned(),
                r.answered,
                r.header("x-passerelle-attempt").to_owned(),
            )
        })
        .collect();
    // The first event is retried with the same delivery id until accepted; the second,
    // of the same instance, waits for it.
    let expected: Vec<(String, u16, String)> = vec![
        (first.clone(), 500, "1".into()),
        (first.clone(), 500, "2".into()),
        (first.clone(), 500, "3".into()),
        (first.clone(), 200, "4".into()),
        (second.clone(), 200, "1".into()),
    ];
    assert_eq!(seen, expected);
    for r in receiver.received() {
        r.verify(SECRET).unwrap();
    }
    let h = history(&env);
    let attempts: Vec<_> = h
        .iter()
        .map(|d| {
            (
                d["event_id"].as_str().unwrap(),
                d["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [(second.as_str(), 1), (first.as_str(), 4)]);
}

#[test]
fn deliveries_pending_when_serve_is_killed_are_delivered_after_restart_with_the_same_ids() {
    let env = TestEnv::new();
    let receiver = Receiver::start(&[], 503);
    add_webhook(&env, &receiver.url(), "*");
    let ids: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|inst| {
            env.ok(&[
                "events",
                "emit",
                "instance.degraded",
                "--instance",
                inst,
                "--data",
                r#"{"reason":"test"}"#,
            ])
            .stdout
            .trim()
            .to_owned()
        })
        .collect();
    let server = Server::start_with_env(&env, &[], FAST_RETRIES);
    let started = std::time::Instant::now();
    while receiver.received().len() < 3 {
        assert!(started.elapsed() < WAIT, "no attempts: {}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: nothing is flushed or finished.
    drop(server);
    let before_restart = receiver.received().len();
    receiver.answer_from_now(200);
    let _server = Server::start_with_env(&env, &[], FAST_RETRIES);
    let got = receiver.wait_accepted("pending deliveries after restart", 3, WAIT);
    let mut delivered: Vec<String> = got
        .iter()
        .map(|r| r.header("x-passerelle-delivery").to_owned())
        .collect();
    delivered.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(delivered, expected);
    assert!(receiver.received().len() > before_restart);
    let states: Vec<_> = history(&env)
        .iter()
        .map(|d| d["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["delivered", "delivered", "delivered"]);
}
