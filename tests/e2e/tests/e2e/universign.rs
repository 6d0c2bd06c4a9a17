//! The Universign plugin end to end: the real `passerelle` binary and plugin library against
//! the Universign emulator. The test routine (good and bad credentials, an unreachable URL),
//! requests, on-demand status and documents through `passerelle invoke`, and the
//! `poll_signatures` task through `passerelle tasks run`: completed transactions have their
//! signed documents stored once, final states stop the polling, a failing transaction does
//! not stop the others, and an outage loses nothing. Placement, certificate level, SMS and
//! return URLs as `esign.request` options, and `esign.cancel` of a pending then a completed
//! transaction.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.

use base64::Engine as _;
use passerelle_e2e::{Run, TestEnv};
use passerelle_emulators::universign::{
    BadCredentials, SignerAction, TxStatus, UniversignEmulator, UniversignOptions,
};
use serde_json::{json, Value};
use std::io::{Read, Write};

const PASSWORD: &str = "canary-universign-pw-51c2";
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

fn emulator() -> UniversignEmulator {
    emulator_with(BadCredentials::Fault)
}

fn emulator_with(bad_credentials: BadCredentials) -> UniversignEmulator {
    UniversignEmulator::start(UniversignOptions {
        user: "erp@example.com".into(),
        password: PASSWORD.into(),
        bad_credentials,
        ..UniversignOptions::default()
    })
    .unwrap()
}

/// A host with an enabled instance `u` pointing at the emulator, polling every second.
fn configured(emu: &UniversignEmulator, password: &str) -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_universign"]);
    env.ok(&["config", "create", "u", "--plugin", "universign"]);
    env.ok(&["config", "set", "u", "url", &emu.url()]);
    env.ok(&["config", "set", "u", "user", &emu.options().user]);
    env.run_with_stdin(
        &["config", "set", "u", "password", "--stdin"],
        Some(&format!("{password}\n")),
    )
    .expect_code(0);
    env.ok(&["config", "set", "u", "enabled", "true"]);
    env.ok(&["config", "set", "u", "poll_interval_secs", "1"]);
    env.ok(&["config", "set", "u", "poll_start_delay_secs", "0"]);
    env.ok(&["config", "enable", "u"]);
    env
}

fn request_input(custom_id: &str, signers: &[(&str, &str, &str)]) -> String {
    json!({
        "documents": [{
            "name": format!("{custom_id}.pdf"),
            "content_base64": base64::engine::general_purpose::STANDARD.encode(PDF),
        }],
        "signers": signers.iter().map(|(first, last, email)| json!({
            "first_name": first, "last_name": last, "email": email,
        })).collect::<Vec<_>>(),
        "language": "fr",
        "custom_id": custom_id,
        "chaining": "email",
    })
    .to_string()
}

fn request(env: &TestEnv, custom_id: &str) -> Value {
    let input = request_input(custom_id, &[("Jeanne", "Martin", "jeanne@example.com")]);
    env.ok(&["invoke", "esign.request", "--input", &input])
        .json()
}

fn invoke(env: &TestEnv, operation: &str, id: &str, refresh: bool) -> Run {
    let input = json!({"id": id, "refresh": refresh}).to_string();
    env.run(&["invoke", operation, "--input", &input, "--instance", "u"])
}

fn poll(env: &TestEnv) -> Run {
    env.run(&["tasks", "run", "u", "poll_signatures"])
}

/// The emulator's stamped version of [`PDF`] for a transaction signed by Jeanne Martin.
fn signed_pdf(id: &str) -> Vec<u8> {
    let mut bytes = PDF.to_vec();
    bytes.extend_from_slice(
        format!("\n% Universign emulator: transaction {id} signed by Jeanne Martin\n%%EOF\n")
            .as_bytes(),
    );
    bytes
}

/// SHA-256 with the system's `sha256sum`, independent of the plugin's.
fn sha256sum(bytes: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// POSTs to the emulator's control routes over a plain socket.
fn control(emu: &UniversignEmulator, path: &str) -> u16 {
    let root = emu.root_url();
    let authority = root.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer[9..12].parse().unwrap()
}

#[test]
fn test_routine_accepts_the_account_and_flags_a_short_interval() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);
    let report = env.ok(&["test", "u", "--json"]).json();
    assert_eq!(report["status"], "warning", "{report:#}");
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("below the advised 300 s"),
        "{report:#}"
    );
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps[0]["name"], "reach Universign");
    assert_eq!(steps[1]["name"], "authenticate");
    assert_eq!(steps[1]["status"], "ok");
    // Authenticating created nothing.
    assert!(emu.transaction_ids().is_empty());
    assert_eq!(emu.calls("requester.getTransactionInfo", None), 1);

    env.ok(&["config", "set", "u", "poll_interval_secs", "21600"]);
    let r = env.ok(&["test", "u"]);
    assert!(
        r.stdout.contains(&format!(
            "ok — Universign at {} accepted user \"erp@example.com\"",
            emu.url()
        )),
        "{}",
        r.stdout
    );
}

#[test]
fn test_routine_tells_a_bad_password_from_an_unreachable_url() {
    let emu = emulator();
    let env = configured(&emu, "wrong-password");
    let r = env.run(&["test", "u", "--json"]).expect_code(1);
    let report = r.json();
    assert_eq!(report["steps"][0]["status"], "ok", "{report:#}");
    assert_eq!(report["steps"][1]["name"], "authenticate");
    assert_eq!(report["steps"][1]["status"], "failed");
    assert!(
        report["summary"].as_str().unwrap().contains("fault 73010"),
        "{report:#}"
    );

    // Behind a gateway that answers HTTP 401 instead.
    let gateway = emulator_with(BadCredentials::Http401);
    let env = configured(&gateway, "wrong-password");
    let report = env.run(&["test", "u", "--json"]).expect_code(1).json();
    assert_eq!(report["steps"][1]["status"], "failed", "{report:#}");
    assert!(
        report["summary"].as_str().unwrap().contains("HTTP 401"),
        "{report:#}"
    );

    let env = configured(&emu, PASSWORD);
    emu.stop();
    let report = env.run(&["test", "u", "--json"]).expect_code(1).json();
    assert_eq!(report["steps"][0]["name"], "reach Universign");
    assert_eq!(report["steps"][0]["status"], "failed", "{report:#}");
    assert_eq!(report["steps"][1]["status"], "skipped");
    assert!(
        report["summary"].as_str().unwrap().contains("unreachable"),
        "{report:#}"
    );
    assert!(!env.data_dump().contains(PASSWORD));
}

#[test]
fn a_completed_transaction_has_its_documents_stored_once() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);
    let tx = request(&env, "DEV-2024-0042");
    let id = tx["id"].as_str().unwrap().to_owned();
    assert_eq!(tx["status"], "ready");
    assert_eq!(tx["custom_id"], "DEV-2024-0042");
    assert!(
        tx["signing_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/fr/signature/?id=", emu.root_url())),
        "{tx:#}"
    );
    let seen = emu.transaction(&id).unwrap();
    assert_eq!(seen.signers[0].2, "jeanne@example.com");
    assert_eq!(seen.custom_id.as_deref(), Some("DEV-2024-0042"));

    poll(&env).expect_code(0).expect_output("1 still waiting");
    emu.sign_all(&id).unwrap();
    poll(&env)
        .expect_code(0)
        .expect_output("1 completed (1 signed document(s) stored)");
    assert_eq!(emu.calls("requester.getDocuments", Some(&id)), 1);

    // A second poll does nothing: the transaction is done.
    let info_calls = emu.calls("requester.getTransactionInfo", None);
    poll(&env)
        .expect_code(0)
        .expect_output("no pending transaction: nothing to check");
    assert_eq!(emu.calls("requester.getTransactionInfo", None), info_calls);
    assert_eq!(emu.calls("requester.getDocuments", None), 1);

    let status = invoke(&env, "esign.status", &id, false)
        .expect_code(0)
        .json();
    assert_eq!(status["status"], "completed");
    assert_eq!(status["documents_stored"], true);
    assert_eq!(status["signers"][0]["status"], "signed");

    let docs = invoke(&env, "esign.documents", &id, false)
        .expect_code(0)
        .json();
    let doc = &docs["documents"][0];
    assert_eq!(doc["name"], "DEV-2024-0042.pdf");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(doc["content_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, signed_pdf(&id));
    assert_eq!(doc["size"], bytes.len());
    assert_eq!(doc["sha256"], sha256sum(&bytes));
    // Served from the state: Universign was not asked again.
    assert_eq!(emu.calls("requester.getDocuments", None), 1);
    assert!(!env.data_dump().contains(PASSWORD));
}

#[test]
fn expired_and_refused_transactions_are_final() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);
    let expired = request(&env, "EXPIRED")["id"].as_str().unwrap().to_owned();
    let refused = request(&env, "REFUSED")["id"].as_str().unwrap().to_owned();
    emu.expire(&expired).unwrap();
    // The refusal goes through the emulator's HTTP control route.
    assert_eq!(
        control(
            &emu,
            &format!("/_control/transactions/{refused}/signers/0/refuse")
        ),
        204
    );
    assert_eq!(
        emu.transaction(&refused).unwrap().status,
        TxStatus::Canceled
    );

    poll(&env)
        .expect_code(0)
        .expect_output("2 pending transaction(s), 2 checked: 0 completed (0 signed document(s) stored), 1 expired, 1 canceled");
    let status = invoke(&env, "esign.status", &expired, false)
        .expect_code(0)
        .json();
    assert_eq!(status["status"], "expired");
    let r = invoke(&env, "esign.documents", &expired, false).expect_code(3);
    assert!(
        r.stderr.contains("is expired: it has no signed documents"),
        "{}",
        r.stderr
    );
    let status = invoke(&env, "esign.status", &refused, false)
        .expect_code(0)
        .json();
    assert_eq!(status["signers"][0]["status"], "canceled");

    let calls = emu.calls("requester.getTransactionInfo", None);
    poll(&env)
        .expect_code(0)
        .expect_output("no pending transaction");
    assert_eq!(emu.calls("requester.getTransactionInfo", None), calls);
}

#[test]
fn an_outage_during_a_poll_loses_nothing() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);
    let a = request(&env, "A")["id"].as_str().unwrap().to_owned();
    let b = request(&env, "B")["id"].as_str().unwrap().to_owned();
    emu.sign_all(&a).unwrap();
    emu.sign_all(&b).unwrap();

    emu.stop();
    let r = poll(&env).expect_code(1);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    assert!(r.stderr.contains("left for the next round"), "{}", r.stderr);
    emu.restart().unwrap();

    emu.set_unavailable(true);
    let r = poll(&env).expect_code(1);
    assert!(r.stderr.contains("HTTP 503"), "{}", r.stderr);
    emu.set_unavailable(false);

    // Nothing was lost: both are still pending, and are completed now.
    for id in [&a, &b] {
        let status = invoke(&env, "esign.status", id, false)
            .expect_code(0)
            .json();
        assert_eq!(status["status"], "ready", "{status:#}");
    }
    poll(&env)
        .expect_code(0)
        .expect_output("2 completed (2 signed document(s) stored)");
    assert_eq!(emu.calls("requester.getDocuments", Some(&a)), 1);
    assert_eq!(emu.calls("requester.getDocuments", Some(&b)), 1);
    for id in [&a, &b] {
        let status = invoke(&env, "esign.status", id, false)
            .expect_code(0)
            .json();
        assert_eq!(status["status"], "completed");
        assert!(status.get("last_error").is_none(), "{status:#}");
    }
}

#[test]
fn one_failing_transaction_never_stops_the_others() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);
    let broken = request(&env, "BROKEN")["id"].as_str().unwrap().to_owned();
    let fine = request(&env, "FINE")["id"].as_str().unwrap().to_owned();
    emu.set_fault(&broken, Some(73040));
    emu.sign_all(&fine).unwrap();

    poll(&env)
        .expect_code(0)
        .expect_output("1 completed (1 signed document(s) stored)")
        .expect_output("1 error(s) (retried next round)");
    let status = invoke(&env, "esign.status", &broken, false)
        .expect_code(0)
        .json();
    assert_eq!(status["status"], "ready");
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("fault 73040"),
        "{status:#}"
    );

    emu.set_fault(&broken, None);
    emu.sign_all(&broken).unwrap();
    poll(&env)
        .expect_code(0)
        .expect_output("1 pending transaction(s), 1 checked: 1 completed");
    let status = invoke(&env, "esign.status", &broken, false)
        .expect_code(0)
        .json();
    assert!(status.get("last_error").is_none(), "{status:#}");
}

#[test]
fn status_and_documents_refresh_on_demand() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);
    let id = request(&env, "ON-DEMAND")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.signer(&id, 0, SignerAction::Access).unwrap();

    let stored = invoke(&env, "esign.status", &id, false)
        .expect_code(0)
        .json();
    assert_eq!(stored["signers"][0]["status"], "ready");
    assert_eq!(emu.calls("requester.getTransactionInfo", None), 0);
    let fresh = invoke(&env, "esign.status", &id, true)
        .expect_code(0)
        .json();
    assert_eq!(fresh["signers"][0]["status"], "accessed");
    assert_eq!(fresh["signers"][0]["email"], "jeanne@example.com");

    let r = invoke(&env, "esign.documents", &id, false).expect_code(3);
    assert!(
        r.stderr.contains("still waiting for signatures"),
        "{}",
        r.stderr
    );
    emu.sign(&id, 0).unwrap();
    let docs = invoke(&env, "esign.documents", &id, false)
        .expect_code(0)
        .json();
    assert_eq!(docs["documents"].as_array().unwrap().len(), 1);
    invoke(&env, "esign.documents", &id, false).expect_code(0);
    assert_eq!(emu.calls("requester.getDocuments", None), 1);
    // Fetched on demand: the poll has nothing left to do.
    poll(&env)
        .expect_code(0)
        .expect_output("no pending transaction");

    let r = invoke(
        &env,
        "esign.status",
        "5512fd62-8bdc-45a1-9a37-661baeb0bdb0",
        false,
    )
    .expect_code(4);
    assert!(r.stderr.contains("\"refresh\": true"), "{}", r.stderr);
    let r = invoke(
        &env,
        "esign.status",
        "5512fd62-8bdc-45a1-9a37-661baeb0bdb0",
        true,
    )
    .expect_code(4);
    assert!(r.stderr.contains("fault 73025"), "{}", r.stderr);
}

#[test]
fn refused_requests_say_why() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);
    // Checked by the plugin: nothing reaches Universign.
    let not_pdf = json!({
        "documents": [{"name": "a.txt", "content_base64": "aGVsbG8="}],
        "signers": [{"first_name": "J", "last_name": "M", "email": "j@example.com"}],
    })
    .to_string();
    let r = env
        .run(&["invoke", "esign.request", "--input", &not_pdf])
        .expect_code(3);
    assert!(r.stderr.contains("is not a PDF"), "{}", r.stderr);
    assert_eq!(emu.request_count(), 0);

    // Refused by Universign: a language it does not offer.
    let mut input: Value =
        serde_json::from_str(&request_input("X", &[("J", "M", "j@example.com")])).unwrap();
    input["language"] = json!("xx");
    let r = env
        .run(&["invoke", "esign.request", "--input", &input.to_string()])
        .expect_code(3);
    assert!(r.stderr.contains("fault 73020"), "{}", r.stderr);
    assert!(emu.transaction_ids().is_empty());

    // A wrong password on a request.
    let env = configured(&emu, "wrong-password");
    let r = env
        .run(&[
            "invoke",
            "esign.request",
            "--input",
            &request_input("Y", &[("J", "M", "j@example.com")]),
        ])
        .expect_code(1);
    assert!(r.stderr.contains("73010"), "{}", r.stderr);
    assert!(!r.all().contains("wrong-password"), "{}", r.all());
}

#[test]
fn enabling_signature_requires_the_universign_account() {
    let env = TestEnv::with_plugins(&["passerelle_universign"]);
    env.ok(&["config", "create", "u", "--plugin", "universign"]);
    env.ok(&["config", "set", "u", "enabled", "true"]);
    let r = env.run(&["config", "enable", "u"]).expect_code(3);
    assert!(
        r.stderr.contains("user") && r.stderr.contains("password"),
        "{}",
        r.stderr
    );
    // Short intervals are accepted (the test routine flags them).
    env.ok(&["config", "set", "u", "poll_interval_secs", "10"]);
    let r = env
        .run(&["config", "set", "u", "poll_interval_secs", "0"])
        .expect_code(3);
    assert!(r.stderr.contains("poll_interval_secs"), "{}", r.stderr);
}

#[test]
fn the_sign_commands_request_follow_and_fetch_to_files() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);
    let quote = env.root.path().join("quote-42.pdf");
    std::fs::write(&quote, PDF).unwrap();
    let run = env.ok(&[
        "sign",
        "request",
        "--doc",
        quote.to_str().unwrap(),
        "--signer",
        "Jeanne Martin <jeanne@example.com>",
        "--custom-id",
        "Q-42",
    ]);
    let id = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("transaction "))
        .and_then(|l| l.split(':').next())
        .unwrap()
        .to_owned();
    assert!(run.stdout.contains("signing URL: "), "{}", run.stdout);
    env.run(&[
        "sign",
        "request",
        "--doc",
        quote.to_str().unwrap(),
        "--signer",
        "jeanne@example.com",
    ])
    .expect_code(3);
    let out = env.root.path().join("signed");
    let r = env
        .run(&["sign", "fetch", &id, "--out", out.to_str().unwrap()])
        .expect_code(3);
    assert!(!r.stderr.is_empty());
    emu.sign(&id, 0).unwrap();
    env.ok(&["sign", "status", &id, "--refresh"])
        .expect_output("completed")
        .expect_output("Jeanne Martin");
    let fetched = env.ok(&["sign", "fetch", &id, "--out", out.to_str().unwrap()]);
    let file = out.join("quote-42.pdf");
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        bytes.starts_with(b"%PDF") && bytes.len() > PDF.len(),
        "not the signed PDF"
    );
    assert!(
        fetched.stdout.contains(&sha256sum(&bytes)),
        "{}",
        fetched.stdout
    );
    env.run(&["sign", "fetch", &id, "--out", out.to_str().unwrap()])
        .expect_code(3);
    env.ok(&[
        "sign",
        "fetch",
        &id,
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
}

/// Two pages, and a signature field named `Acheteur` on the second.
const FORM_PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Page >> endobj\n2 0 obj << /Type /Page >> endobj\n3 0 obj << /FT /Sig /T (Acheteur) /P 2 0 R >> endobj\n%%EOF\n";

fn placed_request(fields: Value, extra: Value) -> String {
    let mut input = json!({
        "documents": [{
            "name": "bon-de-livraison.pdf",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(FORM_PDF),
            "signature_fields": fields,
        }],
        "signers": [{
            "first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@example.com",
            "phone": "+33 6 12 34 56 78"
        }],
    });
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    input.to_string()
}

#[test]
fn placement_options_and_cancel_end_to_end() {
    let emu = emulator();
    let env = configured(&emu, PASSWORD);

    // Placed by coordinates on the last page and on the PDF's own field, SMS, return URLs.
    let input = placed_request(
        json!([
            {"page": -1, "x": 400, "y": 60, "label": "Lu et approuvé"},
            {"name": "Acheteur", "label": "Acheteur"}
        ]),
        json!({
            "identification": "sms",
            "certificate_level": "simple",
            "success_url": "https://erp.example.com/esign/ok",
            "cancel_url": "https://erp.example.com/esign/cancel",
            "fail_url": "https://erp.example.com/esign/fail"
        }),
    );
    let tx = env
        .ok(&["invoke", "esign.request", "--input", &input])
        .json();
    let id = tx["id"].as_str().unwrap().to_owned();
    let view = emu.transaction(&id).unwrap();
    let p = &view.placements[0];
    assert_eq!(
        (p[0].page, p[0].x, p[0].y, p[0].field.as_deref()),
        (-1, 400, 60, None)
    );
    assert_eq!(p[1].field.as_deref(), Some("Acheteur"));
    assert_eq!(view.certificate_type, "simple");
    assert_eq!(
        view.identification[0],
        (
            "sms".to_owned(),
            Some("https://erp.example.com/esign/ok".to_owned())
        )
    );

    // Refused by Universign (a page the document does not have): fault 73020, verbatim.
    let beyond = placed_request(json!([{"page": 5, "x": 1, "y": 1}]), json!({}));
    let run = env.run(&["invoke", "esign.request", "--input", &beyond]);
    assert_ne!(run.code, Some(0));
    assert!(
        run.all().contains("fault 73020") && run.all().contains("page 5 is out of the document"),
        "{}",
        run.all()
    );
    // Refused before sending: a field name the PDF does not have, a level the account lacks.
    let before = emu.transaction_ids().len();
    let unknown = placed_request(json!([{"name": "Vendeur"}]), json!({}));
    let run = env.run(&["invoke", "esign.request", "--input", &unknown]);
    assert!(
        run.all().contains("its fields are Acheteur"),
        "{}",
        run.all()
    );
    let certified = placed_request(json!([]), json!({"certificate_level": "certified"}));
    let run = env.run(&["invoke", "esign.request", "--input", &certified]);
    assert!(
        run.all().contains("fault 73020") && run.all().contains("not allowed for this account"),
        "{}",
        run.all()
    );
    assert_eq!(emu.transaction_ids().len(), before);

    // Cancel while pending, then a signed one: Universign's own refusal.
    let canceled = invoke(&env, "esign.cancel", &id, false)
        .expect_code(0)
        .json();
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(emu.transaction(&id).unwrap().status, TxStatus::Canceled);
    assert_eq!(emu.calls("requester.cancelTransaction", Some(&id)), 1);
    let signed = request(&env, "DEV-CANCEL-SIGNED");
    let signed_id = signed["id"].as_str().unwrap();
    emu.sign_all(signed_id).unwrap();
    let run = invoke(&env, "esign.cancel", signed_id, false);
    assert_ne!(run.code, Some(0));
    assert!(
        run.all().contains("fault 73027") && run.all().contains("requester.cancelTransaction"),
        "{}",
        run.all()
    );
    assert!(!run.all().contains(PASSWORD));
}
