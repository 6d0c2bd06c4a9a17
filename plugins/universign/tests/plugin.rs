//! The plugin's entry points (test routine, `esign.*`, `poll_signatures`) run in-process
//! through its real root module against a scripted host: no dlopen, no network. The host's
//! HTTP answers come from a small scripted Universign written on the plugin's XML-RPC codec
//! (the independent emulator under `tests/emulators` is exercised end to end), so each test
//! checks both the outcome and what was sent, and the state the plugin left.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use abi_stable::std_types::RStr;
use base64::Engine as _;
use passerelle_plugin_api::abi::HostCallbacks;
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::testing::{self, ScriptedHost};
use passerelle_universign::xmlrpc::{self, Fault, MethodResponse, Struct, Value};
use passerelle_universign::Universign;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const URL: &str = "https://sign.test/sign/rpc/";
const USER: &str = "erp@example.com";
const PASSWORD: &str = "s3cret-pw";
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";
const STAMP: &[u8] = b"\n%signed by the scripted Universign\n";

/// One scripted transaction.
#[derive(Debug, Clone)]
struct Tx {
    status: &'static str,
    signers: Vec<(String, String, &'static str)>,
    documents: Vec<(String, Vec<u8>)>,
}

/// A scripted Universign: transactions, per-transaction faults, and every call received.
#[derive(Default)]
struct Scripted {
    txs: Mutex<BTreeMap<String, Tx>>,
    faults: Mutex<BTreeMap<String, i32>>,
    calls: Mutex<Vec<(String, Option<String>)>>,
}

impl Scripted {
    fn set_status(&self, id: &str, status: &'static str, signer_status: &'static str) {
        let mut txs = self.txs.lock().unwrap();
        let tx = txs.get_mut(id).unwrap();
        tx.status = status;
        for s in &mut tx.signers {
            s.2 = signer_status;
        }
    }

    fn fail(&self, id: &str, code: Option<i32>) {
        let mut faults = self.faults.lock().unwrap();
        match code {
            Some(code) => faults.insert(id.to_owned(), code),
            None => faults.remove(id),
        };
    }

    /// Calls of `method`, for transaction `id` when given.
    fn count(&self, method: &str, id: Option<&str>) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, t)| m == method && (id.is_none() || t.as_deref() == id))
            .count()
    }

    fn answer(&self, request: &HttpRequest) -> MethodResponse {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        );
        let call = xmlrpc::decode_call(&request.body).unwrap();
        let id = call
            .params
            .first()
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.calls
            .lock()
            .unwrap()
            .push((call.method.clone(), id.clone()));
        let auth = request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.clone());
        if auth.as_deref() != Some(expected.as_str()) {
            return fault(73010, "Invalid login or password");
        }
        if let Some(code) = id
            .as_deref()
            .and_then(|id| self.faults.lock().unwrap().get(id).copied())
        {
            return fault(code, "scripted fault");
        }
        match call.method.as_str() {
            "requester.requestTransaction" => {
                let s = call.params[0].as_struct().unwrap();
                let id = format!("tx-{}", self.txs.lock().unwrap().len() + 1);
                let documents = s
                    .get("documents")
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        let d = d.as_struct().unwrap();
                        (
                            d.get("name").unwrap().as_str().unwrap().to_owned(),
                            d.get("content").unwrap().as_bytes().unwrap().to_vec(),
                        )
                    })
                    .collect();
                let signers = s
                    .get("signers")
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        let v = v.as_struct().unwrap();
                        let text = |k: &str| v.get(k).unwrap().as_str().unwrap().to_owned();
                        (text("firstname"), text("lastname"), "ready")
                    })
                    .collect();
                self.txs.lock().unwrap().insert(
                    id.clone(),
                    Tx {
                        status: "ready",
                        signers,
                        documents,
                    },
                );
                ok(Struct::new()
                    .with("id", id.as_str())
                    .with("url", format!("https://sign.test/fr/signature/?id=s-{id}")))
            }
            "requester.getTransactionInfo" => {
                let Some(tx) = self
                    .txs
                    .lock()
                    .unwrap()
                    .get(id.as_deref().unwrap())
                    .cloned()
                else {
                    return fault(73025, "Invalid transaction id");
                };
                let signers = tx
                    .signers
                    .iter()
                    .enumerate()
                    .map(|(i, (first, last, status))| {
                        Value::Struct(
                            Struct::new()
                                .with("firstName", first.as_str())
                                .with("lastName", last.as_str())
                                .with("url", format!("https://sign.test/fr/signature/?id=s{i}"))
                                .with("status", *status),
                        )
                    })
                    .collect::<Vec<_>>();
                ok(Struct::new()
                    .with("signerInfos", signers)
                    .with("status", tx.status))
            }
            "requester.getDocuments" => {
                let Some(tx) = self
                    .txs
                    .lock()
                    .unwrap()
                    .get(id.as_deref().unwrap())
                    .cloned()
                else {
                    return fault(73025, "Invalid transaction id");
                };
                if tx.status != "completed" {
                    return fault(73027, "Action not allowed in the current state");
                }
                let docs = tx
                    .documents
                    .iter()
                    .map(|(name, bytes)| {
                        let mut signed = bytes.clone();
                        signed.extend_from_slice(STAMP);
                        Value::Struct(
                            Struct::new()
                                .with("fileName", name.as_str())
                                .with("content", Value::Base64(signed)),
                        )
                    })
                    .collect::<Vec<_>>();
                MethodResponse::Success(Value::Array(docs))
            }
            "requester.cancelTransaction" => {
                let mut txs = self.txs.lock().unwrap();
                let Some(tx) = txs.get_mut(id.as_deref().unwrap()) else {
                    return fault(73025, "Invalid transaction id");
                };
                if tx.status != "ready" {
                    return fault(73027, "Action not allowed in the current state");
                }
                tx.status = "canceled";
                for s in &mut tx.signers {
                    s.2 = "canceled";
                }
                MethodResponse::Success(Value::Nil)
            }
            other => fault(-32601, &format!("no method {other}")),
        }
    }
}

fn ok(s: Struct) -> MethodResponse {
    MethodResponse::Success(Value::Struct(s))
}

fn fault(code: i32, message: &str) -> MethodResponse {
    MethodResponse::Fault(Fault {
        code,
        message: message.to_owned(),
    })
}

fn setup() -> (ScriptedHost, Arc<Scripted>) {
    let host = ScriptedHost::new();
    let scripted = Arc::new(Scripted::default());
    let s = scripted.clone();
    host.on_fn(Method::Post, URL, move |request| {
        Ok(HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "text/xml".into())],
            body: xmlrpc::encode_response(&s.answer(request))
                .unwrap()
                .into_bytes(),
        })
    });
    (host, scripted)
}

fn config() -> Json {
    json!({
        "enabled": true,
        "url": URL,
        "user": USER,
        "password": PASSWORD,
        "poll_interval_secs": 3600,
    })
}

fn signature_request(custom_id: &str, signers: usize) -> SignatureRequest {
    SignatureRequest {
        documents: vec![DocumentToSign {
            name: format!("{custom_id}.pdf"),
            content_base64: base64::engine::general_purpose::STANDARD.encode(PDF),
            ..DocumentToSign::default()
        }],
        signers: (0..signers)
            .map(|i| SignerRequest {
                first_name: format!("Jeanne{i}"),
                last_name: "Martin".into(),
                email: format!("jeanne{i}@example.com"),
                phone: None,
            })
            .collect(),
        language: Some("fr".into()),
        custom_id: Some(custom_id.into()),
        description: None,
        handwritten_signature: None,
        chaining: Some(SignerChaining::Email),
        ..SignatureRequest::default()
    }
}

fn request(host: &ScriptedHost, custom_id: &str) -> SignatureTransaction {
    testing::invoke::<Universign, EsignRequest>(&signature_request(custom_id, 1), config(), host)
        .unwrap()
}

fn status(
    host: &ScriptedHost,
    id: &str,
    refresh: bool,
) -> Result<SignatureTransaction, PluginError> {
    testing::invoke::<Universign, EsignStatus>(
        &SignatureRef {
            id: id.into(),
            refresh,
        },
        config(),
        host,
    )
}

fn documents(host: &ScriptedHost, id: &str) -> Result<SignedDocuments, PluginError> {
    testing::invoke::<Universign, EsignDocuments>(
        &SignatureRef {
            id: id.into(),
            refresh: false,
        },
        config(),
        host,
    )
}

fn poll(host: &ScriptedHost) -> Result<TaskOutcome, PluginError> {
    testing::run_task::<Universign>("poll_signatures", config(), host)
}

fn stored(host: &ScriptedHost, id: &str) -> Json {
    host.state().get(&format!("tx/{id}")).cloned().unwrap()
}

fn signed_pdf() -> Vec<u8> {
    let mut signed = PDF.to_vec();
    signed.extend_from_slice(STAMP);
    signed
}

fn sha256_hex(bytes: &[u8]) -> String {
    passerelle_universign::store::sha256_hex(bytes)
}

#[test]
fn manifest_declares_the_capabilities_and_the_task() {
    let m = testing::manifest::<Universign>().expect("the exported manifest");
    assert!(m.check().is_ok());
    assert_eq!(m.id, "universign");
    assert_eq!(m.category, Category::Esign);
    assert_eq!(
        m.capabilities,
        [
            "esign.request",
            "esign.status",
            "esign.documents",
            "esign.cancel"
        ]
    );
    assert_eq!(m.tasks.len(), 1);
    assert_eq!(m.tasks[0].name, "poll_signatures");
    assert_eq!(m.tasks[0].interval_field, "poll_interval_secs");
    assert_eq!(m.tasks[0].start_delay_field, "poll_start_delay_secs");
    let schema = testing::schema::<Universign>();
    assert_eq!(
        schema["properties"]["poll_interval_secs"]["default"],
        21_600
    );
    assert_eq!(schema["properties"]["poll_start_delay_secs"]["default"], 20);
}

#[test]
fn test_routine_authenticates_without_changing_anything() {
    let (host, scripted) = setup();
    let report = testing::test::<Universign>(config(), &host);
    testing::assert_report_translated::<Universign>(&report, "fr");
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    assert_eq!(
        report.summary,
        format!("Universign at {URL} accepted user \"{USER}\"")
    );
    let names: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "reach Universign",
            "authenticate",
            "signature retrieval interval",
            "electronic signature",
            "pending transactions"
        ]
    );
    assert_eq!(scripted.count("requester.getTransactionInfo", None), 1);
    assert!(scripted.txs.lock().unwrap().is_empty());
    let sent = &host.requests()[0];
    assert!(sent.secret_headers.iter().any(|h| h == "Authorization"));
    assert_eq!(sent.url, URL);
    assert!(sent
        .headers
        .iter()
        .any(|(k, v)| k == "Content-Type" && v.starts_with("text/xml")));
}

#[test]
fn test_routine_tells_bad_credentials_from_an_unreachable_url() {
    let (host, _) = setup();
    let mut bad = config();
    bad["password"] = json!("wrong");
    let report = testing::test::<Universign>(bad, &host);
    testing::assert_report_translated::<Universign>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.steps[0].status, Status::Ok);
    assert_eq!(report.steps[1].name, "authenticate");
    assert_eq!(report.steps[1].status, Status::Failed);
    assert!(report.summary.contains("fault 73010"), "{}", report.summary);
    assert!(!serde_json::to_string(&report).unwrap().contains("wrong"));

    // The HTTP gateway's refusal means the same.
    let host = ScriptedHost::new();
    host.on(Method::Post, URL, 401, "Unauthorized");
    let report = testing::test::<Universign>(config(), &host);
    assert_eq!(report.steps[0].status, Status::Ok);
    assert_eq!(report.steps[1].status, Status::Failed);
    assert!(report.summary.contains("HTTP 401"), "{}", report.summary);

    let host = ScriptedHost::new();
    host.fail(
        Method::Post,
        URL,
        HttpErrorKind::Connect,
        "connection refused",
    );
    let report = testing::test::<Universign>(config(), &host);
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.steps[0].status, Status::Failed);
    assert_eq!(report.steps[1].status, Status::Skipped);
    assert!(report.summary.contains("unreachable"), "{}", report.summary);

    let host = ScriptedHost::new();
    host.on(Method::Post, URL, 200, "<html><body>Welcome</body></html>");
    let report = testing::test::<Universign>(config(), &host);
    assert_eq!(report.steps[0].status, Status::Failed);
    assert!(
        report
            .summary
            .contains("did not answer requester.getTransactionInfo in XML-RPC"),
        "{}",
        report.summary
    );

    let report = testing::test::<Universign>(json!({"enabled": false}), &ScriptedHost::new());
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.steps[0].name, "check configuration");
}

#[test]
fn short_interval_and_disabled_signature_are_warnings() {
    let (host, _) = setup();
    let mut c = config();
    c["poll_interval_secs"] = json!(60);
    c["enabled"] = json!(false);
    let report = testing::test::<Universign>(c, &host);
    testing::assert_report_translated::<Universign>(&report, "fr");
    assert_eq!(report.status, Status::Warning, "{report:#?}");
    assert!(
        report.summary.contains("below the advised 300 s"),
        "{}",
        report.summary
    );
    let disabled = report
        .steps
        .iter()
        .find(|s| s.name == "electronic signature")
        .unwrap();
    assert_eq!(disabled.status, Status::Warning);
}

#[test]
fn request_stores_the_transaction_and_sends_universign_members() {
    let (host, scripted) = setup();
    let mut input = signature_request("DEV-42", 2);
    input.signers[0].phone = Some("+33 6 12 34 56 78".into());
    let tx = testing::invoke::<Universign, EsignRequest>(&input, config(), &host).unwrap();
    assert_eq!(tx.id, "tx-1");
    assert_eq!(tx.status, SignatureStatus::Ready);
    assert_eq!(tx.custom_id.as_deref(), Some("DEV-42"));
    assert_eq!(
        tx.signing_url.as_deref(),
        Some("https://sign.test/fr/signature/?id=s-tx-1")
    );
    assert_eq!(tx.signers[0].status, SignerStatus::Ready);
    assert_eq!(tx.signers[1].status, SignerStatus::Waiting);
    assert_eq!(tx.documents[0].sha256, sha256_hex(PDF));
    assert!(!tx.documents_stored);

    let call = xmlrpc::decode_call(&host.requests()[0].body).unwrap();
    assert_eq!(call.method, "requester.requestTransaction");
    let s = call.params[0].as_struct().unwrap();
    assert_eq!(s.get("customId"), Some(&Value::from("DEV-42")));
    assert_eq!(s.get("chainingMode"), Some(&Value::from("email")));
    let signer = s.get("signers").unwrap().as_array().unwrap()[0]
        .as_struct()
        .unwrap();
    assert_eq!(signer.get("phoneNum"), Some(&Value::from("+33612345678")));

    let record = stored(&host, "tx-1");
    assert_eq!(record["transaction"]["status"], "ready");
    assert_eq!(
        record["transaction"]["signers"][0]["email"],
        "jeanne0@example.com"
    );

    // The ERP retrying the same request gets the same transaction, nothing new is created.
    let again = testing::invoke::<Universign, EsignRequest>(&input, config(), &host).unwrap();
    assert_eq!(again.id, "tx-1");
    assert_eq!(scripted.count("requester.requestTransaction", None), 1);
}

#[test]
fn request_is_refused_before_sending_when_disabled_or_invalid() {
    let (host, _) = setup();
    let mut c = config();
    c["enabled"] = json!(false);
    let e = testing::invoke::<Universign, EsignRequest>(&signature_request("A", 1), c, &host)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("enabled"));
    let mut input = signature_request("A", 1);
    input.signers[0].email = "not an address".into();
    let e = testing::invoke::<Universign, EsignRequest>(&input, config(), &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert_eq!(e.field.as_deref(), Some("signers[0].email"));
    assert!(host.requests().is_empty());
}

#[test]
fn bad_credentials_on_request_name_the_password_and_never_show_it() {
    let (host, _) = setup();
    let mut c = config();
    c["password"] = json!("wrong-password-123");
    let e = testing::invoke::<Universign, EsignRequest>(&signature_request("A", 1), c, &host)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(e.field.as_deref(), Some("password"));
    assert!(e.message.contains("73010"));
    assert!(!e.message.contains("wrong-password-123"));
    assert!(host.state().is_empty());
}

#[test]
fn poll_stores_completed_documents_once_and_finalises_the_others() {
    let (host, scripted) = setup();
    let done = request(&host, "DONE").id;
    let expired = request(&host, "EXPIRED").id;
    let broken = request(&host, "BROKEN").id;
    let waiting = request(&host, "WAITING").id;
    scripted.set_status(&done, "completed", "signed");
    scripted.set_status(&expired, "expired", "ready");
    scripted.fail(&broken, Some(73040));

    let outcome = poll(&host).unwrap();
    assert_eq!(
        outcome.summary,
        "4 pending transaction(s), 4 checked: 1 completed (1 signed document(s) stored), \
         1 expired, 0 canceled, 0 failed, 1 still waiting, 1 error(s) (retried next round), \
         0 skipped"
    );
    assert_eq!(scripted.count("requester.getDocuments", Some(&done)), 1);
    // One event per final transaction; the broken and the waiting ones say nothing yet.
    let events: Vec<_> = host
        .events()
        .into_iter()
        .map(|e| {
            (
                e.kind,
                e.data["transaction_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.contains(&("esign.completed".to_owned(), done.clone())));
    assert!(events.contains(&("esign.expired".to_owned(), expired.clone())));
    let record = stored(&host, &done);
    assert_eq!(record["transaction"]["status"], "completed");
    assert_eq!(record["transaction"]["documents_stored"], true);
    assert_eq!(record["signed"][0]["sha256"], sha256_hex(&signed_pdf()));
    assert_eq!(stored(&host, &expired)["transaction"]["status"], "expired");
    let broken_record = stored(&host, &broken);
    assert_eq!(broken_record["transaction"]["status"], "ready");
    assert_eq!(broken_record["failures"], 1);
    assert!(broken_record["transaction"]["last_error"]
        .as_str()
        .unwrap()
        .contains("73040"));

    // The signed document is answered from the state, without asking Universign.
    let docs = documents(&host, &done).unwrap();
    assert_eq!(docs.documents.len(), 1);
    assert_eq!(docs.documents[0].name, "DONE.pdf");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&docs.documents[0].content_base64)
        .unwrap();
    assert_eq!(bytes, signed_pdf());
    assert_eq!(docs.documents[0].sha256, sha256_hex(&bytes));
    assert_eq!(docs.documents[0].size, bytes.len() as u64);
    assert_eq!(scripted.count("requester.getDocuments", None), 1);

    // Next round: the broken transaction recovered; done and expired are not asked again.
    scripted.fail(&broken, None);
    scripted.set_status(&broken, "canceled", "canceled");
    let calls_before = scripted.calls.lock().unwrap().len();
    let outcome = poll(&host).unwrap();
    assert!(
        outcome
            .summary
            .starts_with("2 pending transaction(s), 2 checked"),
        "{}",
        outcome.summary
    );
    assert!(
        outcome.summary.contains("1 canceled"),
        "{}",
        outcome.summary
    );
    let asked: Vec<_> = scripted.calls.lock().unwrap()[calls_before..]
        .iter()
        .map(|(_, id)| id.clone().unwrap())
        .collect();
    assert_eq!(asked.len(), 2);
    assert!(
        asked.contains(&broken) && asked.contains(&waiting),
        "{asked:?}"
    );
    let broken_record = stored(&host, &broken);
    assert_eq!(broken_record["failures"], 0);
    let last = host.events().pop().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.data["transaction_id"].as_str()),
        ("esign.refused", Some(broken.as_str()))
    );
    assert_eq!(last.data["previous_status"], "ready");
    assert_eq!(host.events().len(), 3);
    assert!(broken_record["transaction"].get("last_error").is_none());
    assert_eq!(scripted.count("requester.getDocuments", Some(&done)), 1);

    // Once only the waiting one is left, a round asks about it alone.
    scripted.set_status(&waiting, "completed", "signed");
    poll(&host).unwrap();
    let outcome = poll(&host).unwrap();
    assert_eq!(outcome.summary, "no pending transaction: nothing to check");
    assert_eq!(scripted.count("requester.getDocuments", None), 2);
}

#[test]
fn an_outage_stops_the_round_and_loses_nothing() {
    let (host, scripted) = setup();
    let a = request(&host, "A").id;
    let b = request(&host, "B").id;
    scripted.set_status(&a, "completed", "signed");
    scripted.set_status(&b, "completed", "signed");
    let before = host.state();

    host.fail(
        Method::Post,
        URL,
        HttpErrorKind::Connect,
        "connection refused",
    );
    let e = poll(&host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(
        e.message
            .contains("round stopped, 2 transaction(s) left for the next round"),
        "{}",
        e.message
    );
    assert!(e.message.contains("1 skipped"), "{}", e.message);
    // Only the first transaction was tried; both are still pending.
    let after = host.state();
    for id in [&a, &b] {
        assert_eq!(after[&format!("tx/{id}")]["transaction"]["status"], "ready");
        assert_eq!(
            after[&format!("tx/{id}")]["transaction"]["documents_stored"],
            false
        );
    }
    let failures: Vec<_> = [&a, &b]
        .iter()
        .map(|id| after[&format!("tx/{id}")]["failures"].as_u64().unwrap())
        .collect();
    assert_eq!(failures.iter().sum::<u64>(), 1);
    assert_eq!(before.len(), after.len());

    // Back up: the scripted service answers again (later routes win).
    let s = scripted.clone();
    host.on_fn(Method::Post, URL, move |request| {
        Ok(HttpResponse {
            status: 200,
            headers: vec![],
            body: xmlrpc::encode_response(&s.answer(request))
                .unwrap()
                .into_bytes(),
        })
    });
    let outcome = poll(&host).unwrap();
    assert!(
        outcome
            .summary
            .contains("2 completed (2 signed document(s) stored)"),
        "{}",
        outcome.summary
    );
    assert_eq!(scripted.count("requester.getDocuments", None), 2);
}

#[test]
fn bad_credentials_stop_the_round_at_the_first_transaction() {
    let (host, scripted) = setup();
    request(&host, "A");
    request(&host, "B");
    let mut c = config();
    c["password"] = json!("changed");
    let e = testing::run_task::<Universign>("poll_signatures", c, &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert!(e.message.contains("1 skipped"), "{}", e.message);
    assert_eq!(scripted.count("requester.getTransactionInfo", None), 1);
}

#[test]
fn disabled_instances_poll_nothing_and_unknown_tasks_are_refused() {
    let (host, scripted) = setup();
    request(&host, "A");
    let mut c = config();
    c["enabled"] = json!(false);
    let outcome = testing::run_task::<Universign>("poll_signatures", c, &host).unwrap();
    assert!(outcome.summary.contains("disabled"));
    assert_eq!(scripted.calls.lock().unwrap().len(), 1);
    let e = testing::run_task::<Universign>("poll_everything", config(), &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

#[test]
fn status_answers_from_state_and_refreshes_on_demand() {
    let (host, scripted) = setup();
    let id = request(&host, "A").id;
    scripted.set_status(&id, "ready", "accessed");
    let tx = status(&host, &id, false).unwrap();
    assert_eq!(tx.signers[0].status, SignerStatus::Ready);
    assert_eq!(scripted.count("requester.getTransactionInfo", None), 0);
    let tx = status(&host, &id, true).unwrap();
    assert_eq!(tx.signers[0].status, SignerStatus::Accessed);
    // Universign does not repeat e-mails; the request's are kept.
    assert_eq!(tx.signers[0].email, "jeanne0@example.com");
    assert_eq!(
        tx.signers[0].url.as_deref(),
        Some("https://sign.test/fr/signature/?id=s0")
    );
    assert_eq!(
        stored(&host, &id)["transaction"]["signers"][0]["status"],
        "accessed"
    );

    let e = status(&host, "unknown-id", false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("\"refresh\": true"), "{}", e.message);
    let e = status(&host, "unknown-id", true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("73025"), "{}", e.message);
    let e = status(&host, "../etc", false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
}

#[test]
fn transactions_unknown_to_the_instance_can_be_adopted() {
    let (host, scripted) = setup();
    scripted.txs.lock().unwrap().insert(
        "legacy-1".into(),
        Tx {
            status: "completed",
            signers: vec![("Paul".into(), "Durand".into(), "signed")],
            documents: vec![("bl-7.pdf".into(), PDF.to_vec())],
        },
    );
    let docs = testing::invoke::<Universign, EsignDocuments>(
        &SignatureRef {
            id: "legacy-1".into(),
            refresh: true,
        },
        config(),
        &host,
    )
    .unwrap();
    assert_eq!(docs.documents[0].name, "bl-7.pdf");
    let tx = status(&host, "legacy-1", false).unwrap();
    assert_eq!(tx.status, SignatureStatus::Completed);
    assert!(tx.documents_stored);
    assert_eq!(tx.signers[0].last_name, "Durand");
    assert_eq!(
        poll(&host).unwrap().summary,
        "no pending transaction: nothing to check"
    );
}

#[test]
fn documents_wait_for_completion_and_final_states_have_none() {
    let (host, scripted) = setup();
    let id = request(&host, "A").id;
    let e = documents(&host, &id).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(
        e.message
            .contains("still waiting for signatures (Jeanne0 Martin: ready)"),
        "{}",
        e.message
    );
    scripted.set_status(&id, "canceled", "canceled");
    let e = documents(&host, &id).unwrap_err();
    assert!(
        e.message
            .contains("is canceled: it has no signed documents"),
        "{}",
        e.message
    );
    assert_eq!(scripted.count("requester.getDocuments", None), 0);
}

#[test]
fn documents_fetched_on_demand_are_not_fetched_again_by_the_poll() {
    let (host, scripted) = setup();
    let id = request(&host, "A").id;
    scripted.set_status(&id, "completed", "signed");
    let docs = documents(&host, &id).unwrap();
    assert_eq!(docs.documents[0].sha256, sha256_hex(&signed_pdf()));
    assert_eq!(docs.fetched_at_ms, 1_800_000_000_000);
    assert_eq!(
        poll(&host).unwrap().summary,
        "no pending transaction: nothing to check"
    );
    documents(&host, &id).unwrap();
    assert_eq!(scripted.count("requester.getDocuments", None), 1);
}

#[test]
fn a_damaged_stored_document_is_fetched_again() {
    let (host, scripted) = setup();
    let id = request(&host, "A").id;
    scripted.set_status(&id, "completed", "signed");
    poll(&host).unwrap();
    let key = format!("doc/{id}/000");
    let mut doc = host.state()[&key].clone();
    doc["content_base64"] =
        json!(base64::engine::general_purpose::STANDARD.encode(b"%PDF-tampered"));
    let put = json!({"key": key, "value": doc}).to_string();
    let _ = host.call(RStr::from_str("state.put"), RStr::from_str(&put));

    let docs = documents(&host, &id).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&docs.documents[0].content_base64)
        .unwrap();
    assert_eq!(bytes, signed_pdf());
    assert_eq!(scripted.count("requester.getDocuments", None), 2);
    assert!(
        host.logs()
            .iter()
            .any(|l| l.contains("is damaged (SHA-256")),
        "{:?}",
        host.logs()
    );
}

#[test]
fn secrets_stay_out_of_state_and_logs() {
    let (host, scripted) = setup();
    let id = request(&host, "A").id;
    scripted.set_status(&id, "completed", "signed");
    poll(&host).unwrap();
    let state = serde_json::to_string(&host.state()).unwrap();
    assert!(!state.contains(PASSWORD));
    assert!(!host.logs().join("\n").contains(PASSWORD));
}

fn cancel(host: &ScriptedHost, id: &str) -> Result<SignatureTransaction, PluginError> {
    testing::invoke::<Universign, EsignCancel>(
        &SignatureRef {
            id: id.to_owned(),
            refresh: false,
        },
        config(),
        host,
    )
}

#[test]
fn a_pending_transaction_is_canceled_and_read_back() {
    let (host, scripted) = setup();
    let tx = request(&host, "DEV-CANCEL-1");
    let canceled = cancel(&host, &tx.id).unwrap();
    assert_eq!(canceled.status, SignatureStatus::Canceled);
    assert_eq!(canceled.signers[0].status, SignerStatus::Canceled);
    assert_eq!(
        scripted.count("requester.cancelTransaction", Some(&tx.id)),
        1
    );
    assert_eq!(
        scripted.count("requester.getTransactionInfo", Some(&tx.id)),
        1
    );
    // Stored as canceled: a second cancel is refused here, without asking Universign.
    let e = cancel(&host, &tx.id).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.message.contains("already canceled"), "{}", e.message);
    assert_eq!(
        scripted.count("requester.cancelTransaction", Some(&tx.id)),
        1
    );
}

#[test]
fn universign_refuses_to_cancel_a_completed_transaction() {
    let (host, scripted) = setup();
    let tx = request(&host, "DEV-CANCEL-2");
    // Signed at Universign after the last refresh: the stored record still says ready.
    scripted.set_status(&tx.id, "completed", "signed");
    let e = cancel(&host, &tx.id).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(
        e.message.contains("fault 73027") && e.message.contains("requester.cancelTransaction"),
        "{}",
        e.message
    );
    let e = cancel(&host, "no-such-tx").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
}

#[test]
fn the_french_catalog_translates_the_whole_schema() {
    testing::assert_catalog_complete::<Universign>("fr");
}
