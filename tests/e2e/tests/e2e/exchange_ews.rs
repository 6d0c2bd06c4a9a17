//! The Exchange (EWS) plugin end to end: the real `passerelle` binary and plugin library
//! against the EWS emulator. The test routine with basic authentication (own calendar,
//! delegate access granted or not, a wrong password), with OAuth (a token from the emulated
//! identity platform, a wrong secret), with denied impersonation, with an unknown mailbox and
//! through throttling; `calendar.sync` over 20 mailboxes with at most 3 threads, a second
//! sync that changes nothing, and changes on both sides; and every SOAP request the plugin
//! sent, validated against Microsoft's EWS schemas with `xmllint`. On-premises: Windows
//! authentication (NTLM run by the host on kept-alive connections) against a virtual
//! directory that refuses basic authentication; and passwords against Exchange Online
//! refused when enabling, naming the calendar-graph plugin.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.

use passerelle_e2e::TestEnv;
use passerelle_emulators::ews::{
    soap_parts, EwsEmulator, EwsOptions, PartKind, ServerAuth, DEFAULT_CLIENT_ID, DEFAULT_TENANT,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const USER: &str = "svc@contoso.com";
/// The property set of the plugin's ERP id property (`soap::PROPERTY_SET_ID`).
const ERP_PROPERTY_SET: &str = "7a97642f-a7ec-4a27-a125-8f63444b89aa";
const PASSWORD: &str = "canary-ews-pw-7f3a";
const CLIENT_SECRET: &str = "canary-ews-secret-91b2";
const WINDOW_START: &str = "2025-03-01T00:00:00Z";
const WINDOW_END: &str = "2025-04-01T00:00:00Z";

fn emulator() -> EwsEmulator {
    let mut opts = EwsOptions {
        users: vec![(USER.into(), PASSWORD.into())],
        ..EwsOptions::default()
    };
    opts.apps[0].client_secret = CLIENT_SECRET.into();
    EwsEmulator::start(opts).unwrap()
}

fn set_secret(env: &TestEnv, field: &str, value: &str) {
    env.run_with_stdin(
        &["config", "set", "x", field, "--stdin"],
        Some(&format!("{value}\n")),
    )
    .expect_code(0);
}

/// A host with an instance `x` of the plugin pointing at the emulator with basic
/// authentication, plus the given settings, enabled.
fn basic(emu: &EwsEmulator, password: &str, settings: &[(&str, &str)]) -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_exchange_ews"]);
    env.ok(&["config", "create", "x", "--plugin", "exchange-ews"]);
    env.ok(&["config", "set", "x", "ews_url", &emu.ews_url()]);
    env.ok(&["config", "set", "x", "username", USER]);
    set_secret(&env, "password", password);
    for (field, value) in settings {
        env.ok(&["config", "set", "x", field, value]);
    }
    env.ok(&["config", "enable", "x"]);
    env
}

/// The same with OAuth (app-only token from the emulator's identity platform).
fn oauth(emu: &EwsEmulator, secret: &str, settings: &[(&str, &str)]) -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_exchange_ews"]);
    env.ok(&["config", "create", "x", "--plugin", "exchange-ews"]);
    env.ok(&["config", "set", "x", "ews_url", &emu.ews_url()]);
    env.ok(&["config", "set", "x", "use_oauth", "true"]);
    env.ok(&["config", "set", "x", "tenant_id", DEFAULT_TENANT]);
    env.ok(&["config", "set", "x", "client_id", DEFAULT_CLIENT_ID]);
    set_secret(&env, "client_secret", secret);
    env.ok(&["config", "set", "x", "authority_url", &emu.authority_url()]);
    env.ok(&["config", "set", "x", "test_mailbox", "jane@contoso.com"]);
    for (field, value) in settings {
        env.ok(&["config", "set", "x", field, value]);
    }
    env.ok(&["config", "enable", "x"]);
    env
}

fn test_report(env: &TestEnv, expected_code: i32) -> Value {
    env.run(&["test", "x", "--json"])
        .expect_code(expected_code)
        .json()
}

fn steps(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn step_names(report: &Value) -> Vec<String> {
    steps(report).into_iter().map(|(n, _)| n).collect()
}

fn assert_no_secret(env: &TestEnv, outputs: &[&str]) {
    for text in outputs.iter().copied().chain([env.data_dump().as_str()]) {
        assert!(!text.contains(PASSWORD), "the password leaked");
        assert!(!text.contains(CLIENT_SECRET), "the client secret leaked");
    }
}

#[test]
fn test_routine_with_basic_auth() {
    let emu = emulator();
    // The delegated user's own calendar.
    let env = basic(&emu, PASSWORD, &[]);
    let run = env.run(&["test", "x", "--json"]).expect_code(0);
    let report = run.json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(step_names(&report), ["reach EWS", "open calendar"]);
    assert!(
        report["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("Exchange 15.1"),
        "{report:#}"
    );
    let request = emu.requests().pop().unwrap();
    assert_eq!(request.operation.as_deref(), Some("GetFolder"));
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
    assert!(request
        .header("content-type")
        .unwrap()
        .starts_with("text/xml"));
    assert!(!request.body.contains("ExchangeImpersonation"));
    assert!(request
        .body
        .contains(r#"<t:RequestServerVersion Version="Exchange2013_SP1"/>"#));
    assert_no_secret(&env, &[&run.stdout, &run.stderr]);

    // Another calendar as a delegate: allowed for jane, not for bob.
    emu.grant_delegate(USER, "jane@contoso.com");
    env.ok(&["config", "set", "x", "test_mailbox", "jane@contoso.com"]);
    let report = test_report(&env, 0);
    assert_eq!(report["status"], "ok", "{report:#}");
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("jane@contoso.com (as a delegate)"),
        "{report:#}"
    );
    env.ok(&["config", "set", "x", "test_mailbox", "bob@contoso.com"]);
    let report = test_report(&env, 1);
    assert_eq!(
        steps(&report),
        [
            ("reach EWS".to_owned(), "ok".to_owned()),
            ("open calendar".to_owned(), "failed".to_owned())
        ]
    );
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("ErrorAccessDenied"), "{summary}");
    assert!(summary.contains("delegate access"), "{summary}");

    // A wrong password: HTTP 401, named.
    let env = basic(&emu, "wrong-password", &[]);
    let report = test_report(&env, 1);
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.starts_with("reach EWS:"), "{summary}");
    assert!(summary.contains("HTTP 401"), "{summary}");
    assert_requests_validate(&emu);
}

#[test]
fn windows_authentication_against_an_on_premises_server() {
    let emu = EwsEmulator::start(EwsOptions {
        users: vec![(USER.into(), PASSWORD.into())],
        auth: ServerAuth::windows_only(),
        ..EwsOptions::default()
    })
    .unwrap();
    let env = basic(
        &emu,
        PASSWORD,
        &[("auth_method", "ntlm"), ("username", "CONTOSO\\svc")],
    );
    let run = env.run(&["test", "x", "--json"]).expect_code(0);
    let report = run.json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(emu.ntlm_handshakes(), 1);
    let legs: Vec<(u16, String)> = emu
        .requests()
        .iter()
        .map(|r| {
            let auth = r.header("authorization").unwrap_or_default();
            (
                r.status,
                auth.split(' ').next().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        [(401, "NTLM".to_owned()), (200, "NTLM".to_owned())],
        "negotiate then authenticate"
    );
    assert_no_secret(&env, &[&run.stdout, &run.stderr]);

    // A sync over 6 mailboxes with 2 threads: each thread's connection is authenticated
    // once and then reused, whatever the number of requests.
    env.ok(&["config", "set", "x", "test_mailbox", "jane@contoso.com"]);
    env.ok(&["config", "set", "x", "use_impersonation", "true"]);
    env.ok(&["config", "set", "x", "max_threads", "2"]);
    emu.clear_requests();
    let before = emu.ntlm_handshakes();
    let boxes = mailboxes(6);
    let appointments: Vec<Value> = boxes
        .iter()
        .enumerate()
        .map(|(i, m)| appointment(&format!("W-{i}"), m, 10, "Maintenance"))
        .collect();
    let out = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&out), (6, 0, 0, 0, 0), "{out:#}");
    let requests = emu.requests();
    let served = requests.iter().filter(|r| r.status == 200).count();
    let handshakes = emu.ntlm_handshakes() - before;
    eprintln!("NTLM sync: {served} requests served after {handshakes} handshake(s)");
    assert!(served >= 12, "{served} requests served");
    assert!(
        (1..=2).contains(&handshakes),
        "{handshakes} NTLM handshakes for {served} requests on 2 threads"
    );
    assert_requests_validate(&emu);

    // A wrong password: refused by the server's NTLMv2 check, named.
    let env = basic(
        &emu,
        "wrong-password",
        &[("auth_method", "ntlm"), ("username", "CONTOSO\\svc")],
    );
    let report = test_report(&env, 1);
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("HTTP 401"), "{summary}");
    assert!(summary.contains("ntlm authentication"), "{summary}");

    // Basic authentication against this Windows-only virtual directory: told to choose NTLM.
    let env = basic(&emu, PASSWORD, &[]);
    let report = test_report(&env, 1);
    let summary = report["summary"].as_str().unwrap();
    assert!(
        summary.contains("does not accept basic authentication"),
        "{summary}"
    );
    assert!(summary.contains("Negotiate, NTLM"), "{summary}");
    assert!(summary.contains("auth_method = ntlm"), "{summary}");
}

#[test]
fn windows_authentication_over_tls_with_the_organisation_authority_and_extended_protection() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Contoso Enterprise Root CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let emu = EwsEmulator::start_tls(
        EwsOptions {
            users: vec![(USER.into(), PASSWORD.into())],
            auth: ServerAuth::windows_only(),
            ..EwsOptions::default()
        },
        vec![leaf_cert.der().to_vec()],
        leaf_key.serialize_der(),
    )
    .unwrap();
    assert!(emu.ews_url().starts_with("https://"));
    // Extended Protection is on (Exchange 2019 CU14's default): the handshake only passes
    // with the channel binding of this connection's certificate.
    assert!(emu.options().auth.extended_protection);
    let env = basic(
        &emu,
        PASSWORD,
        &[("auth_method", "ntlm"), ("username", "svc@contoso.com")],
    );
    // The organisation's authority is unknown: named, with the fix.
    let report = test_report(&env, 1);
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("Contoso Enterprise Root CA"), "{summary}");
    assert!(summary.contains("passerelle trust add"), "{summary}");
    assert_eq!(emu.ntlm_handshakes(), 0);

    let ca_file = env.root.path().join("contoso-ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    env.ok(&["trust", "add", ca_file.to_str().unwrap()]);
    let run = env.run(&["test", "x", "--json"]).expect_code(0);
    let report = run.json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(emu.ntlm_handshakes(), 1);
    assert_no_secret(&env, &[&run.stdout, &run.stderr]);
}

#[test]
fn a_password_against_exchange_online_is_refused_when_enabling() {
    let env = TestEnv::with_plugins(&["passerelle_exchange_ews"]);
    env.ok(&["config", "create", "x", "--plugin", "exchange-ews"]);
    env.ok(&["config", "set", "x", "username", USER]);
    set_secret(&env, "password", PASSWORD);
    // The default EWS URL is Exchange Online's.
    let refused = env.run(&["config", "enable", "x"]).expect_code(3);
    let text = refused.all();
    assert!(text.contains("auth_method"), "{text}");
    assert!(text.contains("calendar-graph"), "{text}");
    assert!(text.contains("basic"), "{text}");
    assert_no_secret(&env, &[&text]);
}

#[test]
fn test_routine_with_oauth() {
    let emu = emulator();
    let env = oauth(&emu, CLIENT_SECRET, &[]);
    let run = env.run(&["test", "x", "--json"]).expect_code(0);
    let report = run.json();
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(
        step_names(&report),
        ["get token", "reach EWS", "open calendar"]
    );
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("jane@contoso.com (impersonated)"),
        "{report:#}"
    );
    assert_eq!(emu.tokens_issued(), 1);
    let request = emu.requests().pop().unwrap();
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Bearer "));
    // App-only tokens act through impersonation, anchored on the mailbox.
    assert_eq!(request.header("x-anchormailbox"), Some("jane@contoso.com"));
    assert!(request
        .body
        .contains("<t:PrimarySmtpAddress>jane@contoso.com</t:PrimarySmtpAddress>"));
    assert_no_secret(&env, &[&run.stdout, &run.stderr]);

    // A wrong secret: the identity platform's refusal, with the field to fix.
    let env = oauth(&emu, "not-the-secret", &[]);
    let report = test_report(&env, 1);
    assert_eq!(
        steps(&report),
        [
            ("get token".to_owned(), "failed".to_owned()),
            ("reach EWS".to_owned(), "skipped".to_owned()),
            ("open calendar".to_owned(), "skipped".to_owned())
        ]
    );
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("invalid_client"), "{summary}");
    assert!(summary.contains("AADSTS7000215"), "{summary}");

    // Configuration rules: OAuth needs its three fields, checked when enabling.
    let env = TestEnv::with_plugins(&["passerelle_exchange_ews"]);
    env.ok(&["config", "create", "y", "--plugin", "exchange-ews"]);
    env.ok(&["config", "set", "y", "use_oauth", "true"]);
    let refused = env.run(&["config", "enable", "y"]);
    assert_ne!(refused.code, Some(0), "{}", refused.all());
    for field in ["tenant_id", "client_id", "client_secret"] {
        assert!(refused.all().contains(field), "{}", refused.all());
    }
    assert_requests_validate(&emu);
}

#[test]
fn test_routine_with_denied_impersonation() {
    let emu = emulator();
    emu.deny_impersonation(USER, "ceo@contoso.com");
    let env = basic(
        &emu,
        PASSWORD,
        &[
            ("use_impersonation", "true"),
            ("test_mailbox", "ceo@contoso.com"),
        ],
    );
    let report = test_report(&env, 1);
    assert_eq!(
        steps(&report),
        [
            ("reach EWS".to_owned(), "ok".to_owned()),
            ("open calendar".to_owned(), "failed".to_owned())
        ]
    );
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("ErrorImpersonateUserDenied"), "{summary}");
    assert!(summary.contains("ApplicationImpersonation"), "{summary}");
    let request = emu.requests().pop().unwrap();
    assert_eq!(request.status, 500);
    assert!(request
        .body
        .contains("<t:PrimarySmtpAddress>ceo@contoso.com</t:PrimarySmtpAddress>"));
    // Without the Office 365 mode, no anchor header on basic authentication.
    assert_eq!(request.header("x-anchormailbox"), None);

    // Allowed mailboxes still open, with the anchor in the Office 365 mode.
    env.ok(&["config", "set", "x", "test_mailbox", "jane@contoso.com"]);
    env.ok(&["config", "set", "x", "office365_mode", "true"]);
    let report = test_report(&env, 0);
    assert_eq!(report["status"], "ok", "{report:#}");
    let request = emu.requests().pop().unwrap();
    assert_eq!(request.header("x-anchormailbox"), Some("jane@contoso.com"));
    assert_requests_validate(&emu);
}

#[test]
fn test_routine_with_unknown_mailbox() {
    let emu = emulator();
    let env = basic(
        &emu,
        PASSWORD,
        &[
            ("use_impersonation", "true"),
            ("test_mailbox", "nobody@contoso.com"),
        ],
    );
    let report = test_report(&env, 1);
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.starts_with("open calendar:"), "{summary}");
    assert!(summary.contains("ErrorNonExistentMailbox"), "{summary}");
    assert!(summary.contains("nobody@contoso.com"), "{summary}");
    assert!(summary.contains("test_mailbox"), "{summary}");
    assert_requests_validate(&emu);
}

#[test]
fn test_routine_waits_out_server_busy() {
    let emu = emulator();
    let env = basic(&emu, PASSWORD, &[]);
    emu.inject_server_busy(2, 400);
    let run = env.run(&["test", "x", "--json"]).expect_code(0);
    let report = run.json();
    assert_eq!(report["status"], "warning", "{report:#}");
    let detail = report["steps"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("2 ErrorServerBusy back-off(s), 800 ms"),
        "{detail}"
    );
    assert_eq!(emu.requests().len(), 3);
    assert!(run.elapsed.as_millis() >= 800, "{:?}", run.elapsed);

    // More throttling than the attempts allow: a named failure.
    emu.inject_server_busy(5, 100);
    let report = test_report(&env, 1);
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("ErrorServerBusy"), "{summary}");
    assert!(summary.contains("throttling"), "{summary}");
}

fn mailboxes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("user{i:02}@contoso.com")).collect()
}

fn appointment(id: &str, mailbox: &str, day: u32, subject: &str) -> Value {
    json!({
        "id": id,
        "mailbox": mailbox,
        "subject": subject,
        "start": format!("2025-03-{day:02}T09:00:00+01:00"),
        "end": format!("2025-03-{day:02}T10:30:00+01:00"),
        "location": "Site Lyon-Est",
        "body": "Intervention & contrôle <annuel>\nRef SO-1",
    })
}

fn sync(env: &TestEnv, mailboxes: &[String], appointments: &[Value]) -> Value {
    let input = json!({
        "mailboxes": mailboxes,
        "window": {"start": WINDOW_START, "end": WINDOW_END},
        "appointments": appointments,
    });
    env.ok(&[
        "invoke",
        "calendar.sync",
        "--input",
        &input.to_string(),
        "--instance",
        "x",
    ])
    .json()
}

fn totals(output: &Value) -> (u64, u64, u64, u64, usize) {
    let list = output["mailboxes"].as_array().unwrap();
    let sum = |k: &str| list.iter().map(|m| m[k].as_u64().unwrap()).sum::<u64>();
    let errors = list
        .iter()
        .map(|m| m["errors"].as_array().unwrap().len())
        .sum();
    (
        sum("created"),
        sum("updated"),
        sum("unchanged"),
        sum("deleted"),
        errors,
    )
}

#[test]
fn sync_of_20_mailboxes_with_3_threads_is_bounded_and_idempotent() {
    let emu = emulator();
    emu.set_latency_ms(40);
    let env = basic(
        &emu,
        PASSWORD,
        &[
            ("use_impersonation", "true"),
            ("test_mailbox", "jane@contoso.com"),
            ("max_threads", "3"),
        ],
    );
    let boxes = mailboxes(20);
    let mut appointments = Vec::new();
    for (i, m) in boxes.iter().enumerate() {
        appointments.push(appointment(
            &format!("SO-{i}-a"),
            m,
            3 + (i % 10) as u32,
            "Visite préventive",
        ));
        appointments.push(appointment(&format!("SO-{i}-b"), m, 14, "Réunion chantier"));
    }
    // Something the user put in Outlook: read back, never touched.
    let dentist = emu.add_item(
        "user05@contoso.com",
        "Dentist",
        1_741_248_000,
        1_741_251_600,
    );

    let started = std::time::Instant::now();
    let first = sync(&env, &boxes, &appointments);
    eprintln!(
        "first sync of 20 mailboxes: {:?}, {} requests, at most {} in flight",
        started.elapsed(),
        emu.requests().len(),
        emu.max_concurrent()
    );
    assert_eq!(totals(&first), (40, 0, 0, 0, 0), "{first:#}");
    let max = emu.max_concurrent();
    assert!(
        max <= 3,
        "{max} requests were in flight at once with max_threads 3"
    );
    assert!(
        max >= 2,
        "the mailboxes did not run concurrently (max in flight: {max})"
    );
    let list = first["mailboxes"].as_array().unwrap();
    assert_eq!(list.len(), 20);
    for (m, out) in boxes.iter().zip(list) {
        assert_eq!(out["mailbox"], m.as_str(), "output order follows the input");
    }
    let events = list[4]["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{first:#}");
    assert_eq!(events[0]["id"], dentist.as_str());
    assert_eq!(events[0]["subject"], "Dentist");
    assert_eq!(events[0]["start"], "2025-03-06T08:00:00Z");
    assert!(list[0]["events"].as_array().unwrap().is_empty());
    let stored = emu.items("user01@contoso.com");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].subject, "Visite préventive");
    assert_eq!(stored[0].location.as_deref(), Some("Site Lyon-Est"));
    assert_eq!(
        stored[0].body.as_deref(),
        Some("Intervention & contrôle <annuel>\nRef SO-1")
    );
    assert_eq!(stored[0].start, 1_740_988_800); // 2025-03-03T08:00:00Z

    // The same input again: nothing is written, only one calendar view per mailbox.
    emu.clear_requests();
    emu.reset_max_concurrent();
    let second = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&second), (0, 0, 40, 0, 0), "{second:#}");
    let operations: BTreeSet<String> = emu
        .requests()
        .iter()
        .filter_map(|r| r.operation.clone())
        .collect();
    assert_eq!(operations, BTreeSet::from(["FindItem".to_owned()]));
    assert_eq!(emu.requests().len(), 20);
    assert!(emu.max_concurrent() <= 3);
    assert_eq!(emu.items("user01@contoso.com"), stored);
    assert_requests_validate(&emu);
}

#[test]
fn sync_applies_changes_from_both_sides_and_every_request_validates() {
    let emu = emulator();
    // Delegate access, no impersonation: the other shape of every request.
    for m in ["jane@contoso.com", "bob@contoso.com"] {
        emu.grant_delegate(USER, m);
    }
    let env = basic(&emu, PASSWORD, &[("server_version", "Exchange2010_SP2")]);
    let boxes = vec![
        "jane@contoso.com".to_owned(),
        "bob@contoso.com".to_owned(),
        "ceo@contoso.com".to_owned(),
    ];
    let mut appointments = vec![
        appointment("A1", "jane@contoso.com", 3, "Visite"),
        appointment("A2", "jane@contoso.com", 4, "Audit"),
        appointment("A3", "jane@contoso.com", 5, "Formation"),
        appointment("B1", "bob@contoso.com", 6, "Chantier"),
    ];
    let first = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&first).0, 4, "{first:#}");
    // No delegate right on the CEO's calendar: that mailbox fails alone.
    let ceo = &first["mailboxes"][2];
    assert_eq!(ceo["errors"][0]["kind"], "forbidden", "{first:#}");
    assert!(ceo["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ErrorAccessDenied"));

    // The ERP changes A1, drops A2 and adds A4; in Outlook, someone moves B1 and deletes A3.
    appointments[0]["subject"] = json!("Visite (reportée)");
    appointments.remove(1);
    appointments.push(appointment("A4", "jane@contoso.com", 20, "Nouveau"));
    let jane = emu.items("jane@contoso.com");
    let bob = emu.items("bob@contoso.com");
    emu.edit_item(&bob[0].id, |i| {
        i.start += 3600;
        i.end += 3600;
    })
    .unwrap();
    let a3 = jane.iter().find(|i| i.subject == "Formation").unwrap();
    assert!(emu.remove_item(&a3.id));
    let boxes = boxes[..2].to_vec();
    let second = sync(&env, &boxes, &appointments);
    let jane_out = &second["mailboxes"][0];
    assert_eq!(
        (
            jane_out["created"].as_u64(),
            jane_out["updated"].as_u64(),
            jane_out["deleted"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "A4 and the deleted A3 created, A1 updated, A2 deleted: {second:#}"
    );
    assert_eq!(
        second["mailboxes"][1]["updated"], 1,
        "B1 moved back: {second:#}"
    );
    let subjects: Vec<String> = emu
        .items("jane@contoso.com")
        .into_iter()
        .map(|i| i.subject)
        .collect();
    assert_eq!(subjects, ["Visite (reportée)", "Formation", "Nouveau"]);
    assert_eq!(emu.items("bob@contoso.com")[0].start, bob[0].start);

    // Stable again.
    let third = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&third), (0, 0, 4, 0, 0), "{third:#}");

    // A reminder dismissed in Outlook changes the ChangeKey only: still unchanged; an edit
    // of the subject races the sync: the ERP's version wins with the fresh ChangeKey.
    let visit = emu.items("jane@contoso.com").into_iter().next().unwrap();
    emu.edit_item(&visit.id, |_| {}).unwrap();
    assert_eq!(totals(&sync(&env, &boxes, &appointments)), (0, 0, 4, 0, 0));
    emu.edit_item(&visit.id, |i| i.subject = "changed in Outlook".into())
        .unwrap();
    assert_eq!(totals(&sync(&env, &boxes, &appointments)), (0, 1, 3, 0, 0));
    assert_eq!(
        emu.items("jane@contoso.com")[0].subject,
        "Visite (reportée)"
    );

    // Every operation was sent, and every request validates against the EWS schemas.
    let operations: BTreeSet<String> = emu
        .requests()
        .iter()
        .filter_map(|r| r.operation.clone())
        .collect();
    assert_eq!(
        operations,
        ["CreateItem", "DeleteItem", "FindItem", "UpdateItem"]
            .map(str::to_owned)
            .into(),
    );
    assert!(emu
        .requests()
        .iter()
        .all(|r| r.body.contains("Version=\"Exchange2010_SP2\"")));
    assert_requests_validate(&emu);
}

#[test]
fn sync_with_time_zones_all_day_items_and_lost_state() {
    let emu = emulator();
    let settings = [
        ("test_mailbox", "jane@contoso.com"),
        ("use_impersonation", "true"),
        ("time_zone", "Romance Standard Time"),
    ];
    let env = basic(&emu, PASSWORD, &settings);
    let boxes = vec!["jane@contoso.com".to_owned()];
    let mut all_day = appointment("D1", "jane@contoso.com", 10, "Inventaire");
    all_day["start"] = json!("2025-03-10T00:00:00+01:00");
    all_day["end"] = json!("2025-03-12T00:00:00+01:00");
    all_day["all_day"] = json!(true);
    let appointments = vec![
        appointment("T1", "jane@contoso.com", 4, "Visite"),
        all_day,
        appointment("T2", "jane@contoso.com", 5, "Audit"),
    ];
    // What the user has in Outlook: a private all-day absence, and a cancelled meeting.
    let away = emu.add_item("jane@contoso.com", "Congés", 1_741_564_800, 1_741_651_200);
    emu.edit_item(&away, |i| {
        i.all_day = true;
        i.show_as = "OOF".into();
        i.sensitivity = "Private".into();
    })
    .unwrap();
    let cancelled = emu.add_item("jane@contoso.com", "Comité", 1_741_600_000, 1_741_603_600);
    emu.edit_item(&cancelled, |i| i.cancelled = true).unwrap();

    let first = sync(&env, &boxes, &appointments);
    assert_eq!(totals(&first), (3, 0, 0, 0, 0), "{first:#}");
    let items = emu.items("jane@contoso.com");
    let ours: Vec<_> = items
        .iter()
        .filter(|i| i.id != away && i.id != cancelled)
        .collect();
    assert_eq!(ours.len(), 3);
    for item in &ours {
        assert_eq!(
            item.start_time_zone.as_deref(),
            Some("Romance Standard Time")
        );
        assert_eq!(item.end_time_zone.as_deref(), Some("Romance Standard Time"));
        assert!(!item.reminder_set, "{item:?}");
        assert!(item
            .extended_property(ERP_PROPERTY_SET, "PasserelleErpId")
            .is_some());
    }
    let inventory = ours.iter().find(|i| i.subject == "Inventaire").unwrap();
    assert!(inventory.all_day);
    assert_eq!(
        inventory.extended_property(ERP_PROPERTY_SET, "PasserelleErpId"),
        Some("D1")
    );
    assert_eq!(inventory.start, 1_741_561_200); // 2025-03-09T23:00:00Z
    assert!(emu.requests().iter().all(|r| r
        .body
        .contains(r#"<t:TimeZoneDefinition Id="Romance Standard Time"/>"#)));
    let events = first["mailboxes"][0]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{first:#}");
    let absence = events.iter().find(|e| e["id"] == away.as_str()).unwrap();
    assert_eq!(absence["all_day"], true);
    assert_eq!(absence["show_as"], "OOF");
    assert_eq!(absence["sensitivity"], "Private");
    assert_eq!(absence["cancelled"], false);
    let meeting = events
        .iter()
        .find(|e| e["id"] == cancelled.as_str())
        .unwrap();
    assert_eq!(meeting["cancelled"], true);
    assert_eq!(meeting["show_as"], "Busy");

    // The plugin state is lost (a new data directory): the items are found again by
    // their ERP id, not duplicated; a dropped appointment is still deleted.
    let fresh = basic(&emu, PASSWORD, &settings);
    let again = sync(&fresh, &boxes, &appointments);
    assert_eq!(totals(&again), (0, 0, 3, 0, 0), "{again:#}");
    assert_eq!(again["mailboxes"][0]["events"].as_array().unwrap().len(), 2);
    assert_eq!(emu.items("jane@contoso.com").len(), 5);
    let lost_again = basic(&emu, PASSWORD, &settings);
    let mut changed = appointments[..2].to_vec();
    changed[0]["subject"] = json!("Visite (décalée)");
    let out = sync(&lost_again, &boxes, &changed);
    assert_eq!(totals(&out), (0, 1, 1, 1, 0), "{out:#}");
    let subjects: BTreeSet<String> = emu
        .items("jane@contoso.com")
        .into_iter()
        .map(|i| i.subject)
        .collect();
    assert_eq!(
        subjects,
        ["Comité", "Congés", "Inventaire", "Visite (décalée)"]
            .map(str::to_owned)
            .into()
    );
    assert_requests_validate(&emu);
}

#[test]
fn older_mailbox_servers_get_an_older_schema_version() {
    let mut opts = EwsOptions {
        users: vec![(USER.into(), PASSWORD.into())],
        ..EwsOptions::default()
    };
    // Jane's mailbox is still on an Exchange 2010 SP2 server behind the 2016 front end.
    opts.mailbox_versions = vec![("jane@contoso.com".into(), "Exchange2010_SP2".into())];
    let emu = EwsEmulator::start(opts).unwrap();
    let env = basic(
        &emu,
        PASSWORD,
        &[
            ("test_mailbox", "jane@contoso.com"),
            ("use_impersonation", "true"),
            ("server_version", "Exchange2016"),
            ("time_zone", "W. Europe Standard Time"),
        ],
    );
    let report = test_report(&env, 0);
    assert_eq!(report["status"], "ok", "{report:#}");
    let tried: Vec<(String, u16)> = emu
        .requests()
        .iter()
        .map(|r| {
            let v = r.body.split("Version=\"").nth(1).unwrap();
            (v[..v.find('"').unwrap()].to_owned(), r.status)
        })
        .collect();
    assert_eq!(
        tried,
        [
            ("Exchange2016".to_owned(), 500),
            ("Exchange2013_SP1".to_owned(), 500),
            ("Exchange2013".to_owned(), 500),
            ("Exchange2010_SP2".to_owned(), 200)
        ]
    );

    // A sync of Jane and Bob: Jane's requests step down once, then keep the older version;
    // Bob's mailbox is on the new server and keeps Exchange2016.
    emu.clear_requests();
    let boxes = vec!["jane@contoso.com".to_owned(), "bob@contoso.com".to_owned()];
    let out = sync(
        &env,
        &boxes,
        &[
            appointment("J1", "jane@contoso.com", 3, "Visite"),
            appointment("B1", "bob@contoso.com", 3, "Visite"),
        ],
    );
    assert_eq!(totals(&out), (2, 0, 0, 0, 0), "{out:#}");
    let refused = emu.requests().iter().filter(|r| r.status == 500).count();
    assert_eq!(refused, 3, "one step-down per older version, once per sync");
    for r in emu.requests().iter().filter(|r| r.status == 200) {
        let jane = r.body.contains("jane@contoso.com");
        let expected = if jane {
            "Exchange2010_SP2"
        } else {
            "Exchange2016"
        };
        assert!(
            r.body.contains(&format!("Version=\"{expected}\"")),
            "{}",
            r.body
        );
    }
    assert_eq!(
        emu.items("jane@contoso.com")[0].start_time_zone.as_deref(),
        Some("W. Europe Standard Time")
    );
    assert_requests_validate(&emu);
}

/// Validates every captured request: its operation with `messages.xsd`, its header elements
/// with `types.xsd`, each as a standalone document.
fn assert_requests_validate(emu: &EwsEmulator) {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../emulators/fixtures/ews");
    let dir = tempfile::tempdir().unwrap();
    let mut operations = Vec::new();
    let mut headers = Vec::new();
    for (i, request) in emu.requests().iter().enumerate() {
        let parts = soap_parts(&request.body).unwrap_or_else(|e| {
            panic!(
                "request {i} is not a SOAP envelope ({e}):\n{}",
                request.body
            )
        });
        assert_eq!(
            parts
                .iter()
                .filter(|p| p.kind == PartKind::Operation)
                .count(),
            1,
            "request {i} has no single operation:\n{}",
            request.body
        );
        assert!(
            parts.iter().any(|p| p.name == "RequestServerVersion"),
            "request {i} has no RequestServerVersion:\n{}",
            request.body
        );
        for (j, part) in parts.iter().enumerate() {
            let path = dir.path().join(format!("r{i:03}-{j}-{}.xml", part.name));
            std::fs::write(&path, &part.xml).unwrap();
            match part.kind {
                PartKind::Operation => operations.push(path),
                PartKind::Header => headers.push(path),
            }
        }
    }
    assert!(!operations.is_empty(), "no request was captured");
    for (schema, files) in [("messages.xsd", &operations), ("types.xsd", &headers)] {
        let out = Command::new("xmllint")
            .arg("--nonet")
            .arg("--noout")
            .arg("--schema")
            .arg(schemas.join(schema))
            .args(files.iter())
            .output()
            .unwrap_or_else(|e| panic!("cannot run xmllint ({e}): install libxml2-utils"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "requests do not validate against {schema}:\n{stderr}\nfirst file:\n{}",
            std::fs::read_to_string(&files[0]).unwrap_or_default()
        );
        assert_eq!(
            stderr.matches(" validates").count(),
            files.len(),
            "xmllint did not validate every file against {schema}:\n{stderr}"
        );
    }
}
