//! The plugin's entry points run in-process through the real root module against a scripted
//! host: no dlopen, no network. Each test checks what the plugin sent as well as what it
//! answered.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use passerelle_einvoice_afnor::{EinvoiceAfnor, COLLECT_TASK, FOLLOW_TASK};
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::testing::{self, ScriptedHost};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const TOKEN: &str = "https://auth.pa.example/token";
const FLOW: &str = "https://api.flow.pa.example/flow-service";
const DIR: &str = "https://api.directory.pa.example/directory-service";
const SECRET: &str = "pa-secret-canary-41c7";
const COMPANY: &str = "702042755";
const CUSTOMER: &str = "987654324";

fn config() -> Value {
    json!({
        "siren": COMPANY,
        "flow_url": FLOW,
        "directory_url": DIR,
        "token_url": TOKEN,
        "client_id": "erp-client",
        "client_secret": SECRET,
        "retry_delay_secs": 1,
    })
}

fn respond(status: u16, body: Value) -> Result<HttpResponse, HttpError> {
    Ok(HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    })
}

fn line(siren: &str, platform: &str, status: &str, name: &str) -> Value {
    json!({"addressingIdentifier": siren, "siren": siren, "platformType": platform,
           "directoryLineStatus": status, "legalUnit": {"businessName": name, "entityType": "Private"}})
}

/// A host with a token endpoint, both health checks and a directory where the company and
/// its customer are enabled.
fn host() -> ScriptedHost {
    let host = ScriptedHost::new();
    let tokens = Arc::new(AtomicUsize::new(0));
    host.on_fn(Method::Post, TOKEN, move |_| {
        let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
        respond(
            200,
            json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}),
        )
    });
    host.on(Method::Get, &format!("{FLOW}/v1/healthcheck"), 200, "{}");
    host.on(Method::Get, &format!("{DIR}/v1/healthcheck"), 200, "{}");
    host.on_fn(
        Method::Post,
        &format!("{DIR}/v1/directory-line/search"),
        |req| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let wanted = body["filters"]["siren"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let results: Vec<Value> = [
                line(COMPANY, "WK", "Enabled", "BOULANGERIE PASCALE"),
                line(CUSTOMER, "WK", "Enabled", "CLIENT PRIVE SA"),
                line("219200235", "DFH", "Enabled", "COMMUNE"),
            ]
            .into_iter()
            .filter(|l| l["siren"] == wanted.as_str())
            .collect();
            if results.is_empty() {
                return Ok(HttpResponse {
                    status: 204,
                    headers: Vec::new(),
                    body: Vec::new(),
                });
            }
            respond(200, json!({"results": results}))
        },
    );
    host
}

fn ubl(number: &str, buyer: &str) -> Vec<u8> {
    format!(
        r#"<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"><cbc:ID>{number}</cbc:ID><cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:CompanyID schemeID="0002">{COMPANY}</cbc:CompanyID></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty><cac:AccountingCustomerParty><cac:Party><cbc:EndpointID schemeID="0225">{buyer}</cbc:EndpointID></cac:Party></cac:AccountingCustomerParty></Invoice>"#
    )
    .into_bytes()
}

fn submission(name: &str, bytes: &[u8]) -> InvoiceSubmission {
    InvoiceSubmission {
        file_name: name.to_owned(),
        content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        dematerialisation_code: "B2B".to_owned(),
    }
}

fn cdar(number: &str, code: &str, reason: Option<&str>) -> String {
    let status = reason
        .map(|r| format!("<ram:SpecifiedDocumentStatus><ram:ReasonCode>AUTRE</ram:ReasonCode><ram:Reason>{r}</ram:Reason></ram:SpecifiedDocumentStatus>"))
        .unwrap_or_default();
    format!(
        r#"<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100" xmlns:ram="r" xmlns:udt="u"><rsm:AcknowledgementDocument><ram:IssueDateTime><udt:DateTimeString format="204">20260901120000</udt:DateTimeString></ram:IssueDateTime><ram:ReferenceReferencedDocument><ram:IssuerAssignedID>{number}</ram:IssuerAssignedID><ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>{status}</ram:ReferenceReferencedDocument></rsm:AcknowledgementDocument></rsm:CrossDomainAcknowledgementAndResponse>"#
    )
}

#[test]
fn the_test_routine_checks_token_services_and_company() {
    let host = host();
    let report = testing::test::<EinvoiceAfnor>(config(), &host);
    testing::assert_report_translated::<EinvoiceAfnor>(&report, "fr");
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert!(
        report.summary.contains("BOULANGERIE PASCALE"),
        "{}",
        report.summary
    );

    let mut other = config();
    other["siren"] = json!("552100554");
    let report = testing::test::<EinvoiceAfnor>(other, &host);
    assert_eq!(report.status, Status::Failed);
    let detail = &report.steps.last().unwrap().detail;
    assert!(
        detail.starts_with("siren: the directory has no entry"),
        "{detail}"
    );
    let text = format!("{report:?} {:?}", host.logs());
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
}

#[test]
fn a_submission_checks_the_route_then_sends_the_flow_and_records_it() {
    let host = host();
    host.on_fn(Method::Post, &format!("{FLOW}/v1/flows"), |_| {
        respond(
            202,
            json!({"flowId": "flw-1", "submittedAt": "2026-09-01T10:00:00.000Z"}),
        )
    });
    // A public buyer and an unknown one are refused before the Flow service is called.
    for (buyer, expected) in [("219200235", "Chorus Pro"), ("552100554", "does not know")] {
        let e = testing::invoke::<EinvoiceAfnor, EinvoiceSubmit>(
            &submission("a.xml", &ubl("F-1", buyer)),
            config(),
            &host,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains(expected), "{}", e.message);
    }
    assert!(!host.requests().iter().any(|r| r.url.ends_with("/v1/flows")));

    let bytes = ubl("F-1", CUSTOMER);
    let deposit = testing::invoke::<EinvoiceAfnor, EinvoiceSubmit>(
        &submission("F-1.xml", &bytes),
        config(),
        &host,
    )
    .unwrap();
    assert_eq!(deposit.deposit_id, "flw-1");
    assert_eq!(deposit.state, DepositState::Pending);
    let sent = host
        .requests()
        .into_iter()
        .find(|r| r.url == format!("{FLOW}/v1/flows"))
        .unwrap();
    let content_type = sent
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .unwrap()
        .1
        .clone();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let body = String::from_utf8_lossy(&sent.body).into_owned();
    let sha = deposit.content_sha256.clone().unwrap();
    assert!(body.contains(r#""flowSyntax":"UBL""#), "{body}");
    assert!(body.contains(&format!(r#""sha256":"{sha}""#)), "{body}");
    assert!(body.contains(r#""processingRule":"B2B""#));
    assert!(body.contains(std::str::from_utf8(&bytes).unwrap()));

    let again = testing::invoke::<EinvoiceAfnor, EinvoiceSubmit>(
        &submission("F-1.xml", &bytes),
        config(),
        &host,
    )
    .unwrap_err();
    assert!(
        again.message.contains("already sent as flow flw-1"),
        "{}",
        again.message
    );
}

#[test]
fn lifecycle_messages_become_provider_neutral_states_once() {
    let host = host();
    host.on(
        Method::Post,
        &format!("{FLOW}/v1/flows"),
        202,
        r#"{"flowId":"flw-1"}"#,
    );
    host.on(
        Method::Get,
        &format!("{FLOW}/v1/flows/flw-1?docType=Metadata"),
        200,
        r#"{"flowId":"flw-1","acknowledgement":{"status":"Ok"},"updatedAt":"2026-09-01T10:00:01.000Z"}"#,
    );
    host.on(
        Method::Post,
        &format!("{FLOW}/v1/flows/search"),
        200,
        json!({"results": [
            {"flowId": "lc-2", "flowType": "CustomerInvoiceLC", "updatedAt": "2026-09-01T10:00:03.000Z"},
            {"flowId": "lc-1", "flowType": "CustomerInvoiceLC", "updatedAt": "2026-09-01T10:00:02.000Z"}
        ]})
        .to_string(),
    );
    host.on(
        Method::Get,
        &format!("{FLOW}/v1/flows/lc-1?docType=Original"),
        200,
        cdar("F-9", "202", None),
    );
    host.on(
        Method::Get,
        &format!("{FLOW}/v1/flows/lc-2?docType=Original"),
        200,
        cdar("F-9", "210", Some("Prix faux")),
    );
    let deposit = testing::invoke::<EinvoiceAfnor, EinvoiceSubmit>(
        &submission("F-9.xml", &ubl("F-9", CUSTOMER)),
        config(),
        &host,
    )
    .unwrap();
    let out = testing::run_task::<EinvoiceAfnor>(FOLLOW_TASK, config(), &host).unwrap();
    assert!(
        out.summary
            .contains("1 acknowledgement(s) and 2 lifecycle status(es)"),
        "{}",
        out.summary
    );
    let status = testing::invoke::<EinvoiceAfnor, EinvoiceStatus>(
        &DepositRef {
            deposit_id: deposit.deposit_id,
        },
        config(),
        &host,
    )
    .unwrap();
    assert_eq!(status.state, DepositState::Integrated);
    let states: Vec<(LifecycleState, &str)> = status
        .lifecycle
        .iter()
        .map(|e| (e.state, e.provider_code.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            (LifecycleState::Received, "202"),
            (LifecycleState::Refused, "210")
        ]
    );
    assert_eq!(status.lifecycle[1].reason.as_deref(), Some("Prix faux"));
    // The ERP is told: the flow integrated, then each lifecycle state, in order.
    let told: Vec<(String, String)> = host
        .events()
        .into_iter()
        .map(|e| {
            assert_eq!(e.kind, "einvoice.status_changed");
            assert_eq!(e.data["invoice"], "F-9");
            (
                e.data["previous_status"].as_str().unwrap().to_owned(),
                e.data["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("pending", DepositState::Integrated.to_string()),
        ("", LifecycleState::Received.to_string()),
        (
            &LifecycleState::Received.to_string(),
            LifecycleState::Refused.to_string(),
        ),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b))
    .collect();
    assert_eq!(told, expected);
    // The search resumes after the last message read.
    let searches: Vec<Value> = host
        .requests()
        .into_iter()
        .filter(|r| r.url.ends_with("/v1/flows/search"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        searches[0]["where"]["flowType"],
        json!(["CustomerInvoiceLC"])
    );
    assert_eq!(searches[0]["where"]["flowDirection"], json!(["In"]));
    assert_eq!(
        searches[1]["where"]["updatedAfter"],
        "2026-09-01T10:00:03.000Z"
    );
}

#[test]
fn a_collection_interrupted_by_a_failed_download_stores_nothing_and_resumes() {
    let host = host();
    host.on(
        Method::Post,
        &format!("{FLOW}/v1/flows/search"),
        200,
        json!({"results": [{"flowId": "in-1", "name": "ACME-1.xml", "flowSyntax": "UBL", "flowType": "SupplierInvoice", "updatedAt": "2026-09-01T10:00:00.000Z"}]}).to_string(),
    );
    let fail = Arc::new(AtomicUsize::new(1));
    let f = fail.clone();
    host.on_fn(
        Method::Get,
        &format!("{FLOW}/v1/flows/in-1?docType=Original"),
        move |_| {
            if f.fetch_sub(1, Ordering::SeqCst) > 0 {
                return Err(HttpError {
                    kind: HttpErrorKind::Timeout,
                    message: "stalled".into(),
                });
            }
            Ok(HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: ubl("ACME-1", COMPANY),
            })
        },
    );
    let mut once = config();
    once["attempts"] = json!(1);
    let out = testing::run_task::<EinvoiceAfnor>(COLLECT_TASK, once.clone(), &host).unwrap();
    assert!(
        out.summary.contains("0 new invoice(s)") && out.summary.contains("tried again"),
        "{}",
        out.summary
    );
    assert!(
        !host
            .state()
            .keys()
            .any(|k| k.starts_with("received/") || k.starts_with("cursor/")),
        "{:?}",
        host.state()
    );
    let out = testing::run_task::<EinvoiceAfnor>(COLLECT_TASK, once.clone(), &host).unwrap();
    assert!(
        out.summary.starts_with("1 new invoice(s)"),
        "{}",
        out.summary
    );
    testing::run_task::<EinvoiceAfnor>(COLLECT_TASK, once, &host).unwrap();
    let downloads = host
        .requests()
        .iter()
        .filter(|r| r.url.contains("in-1?docType=Original"))
        .count();
    assert_eq!(downloads, 2);
    let inbox =
        testing::invoke::<EinvoiceAfnor, EinvoiceInbox>(&InboxQuery::default(), config(), &host)
            .unwrap();
    assert_eq!(inbox.invoices.len(), 1);
    assert_eq!(inbox.invoices[0].invoice_number.as_deref(), Some("ACME-1"));
}

#[test]
fn a_buyer_refusal_needs_a_reason_and_travels_as_cdar() {
    let host = host();
    // Registered first: the scripted host answers with the last matching prefix.
    host.on(
        Method::Post,
        &format!("{FLOW}/v1/flows"),
        202,
        r#"{"flowId":"ans-1"}"#,
    );
    host.on(
        Method::Post,
        &format!("{FLOW}/v1/flows/search"),
        200,
        json!({"results": [{"flowId": "in-1", "name": "ACME-1.xml", "flowSyntax": "UBL", "updatedAt": "2026-09-01T10:00:00.000Z"}]}).to_string(),
    );
    host.on(
        Method::Get,
        &format!("{FLOW}/v1/flows/in-1?docType=Original"),
        200,
        ubl("ACME-1", COMPANY),
    );
    testing::invoke::<EinvoiceAfnor, EinvoiceInbox>(
        &InboxQuery {
            collect: true,
            ..Default::default()
        },
        config(),
        &host,
    )
    .unwrap();
    let mut answer = BuyerResponse {
        invoice_id: "in-1".into(),
        answer: BuyerAnswer::Refused,
        reason: None,
        reason_code: None,
    };
    let e =
        testing::invoke::<EinvoiceAfnor, EinvoiceRespond>(&answer, config(), &host).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("reason"));
    answer.reason = Some("Prix non conforme".into());
    let sent = testing::invoke::<EinvoiceAfnor, EinvoiceRespond>(&answer, config(), &host).unwrap();
    assert_eq!(sent.response_id, "ans-1");
    assert_eq!(sent.event.provider_code, "210");
    let request = host
        .requests()
        .into_iter()
        .rfind(|r| r.url == format!("{FLOW}/v1/flows"))
        .unwrap();
    let body = String::from_utf8_lossy(&request.body).into_owned();
    assert!(body.contains(r#""flowSyntax":"CDAR""#), "{body}");
    assert!(
        body.contains("<ram:ProcessConditionCode>210</ram:ProcessConditionCode>"),
        "{body}"
    );
    assert!(
        body.contains("<ram:Reason>Prix non conforme</ram:Reason>"),
        "{body}"
    );
    assert!(
        body.contains("<ram:IssuerAssignedID>ACME-1</ram:IssuerAssignedID>"),
        "{body}"
    );
}

#[test]
fn the_schema_renders_as_a_form() {
    let schema = testing::schema::<EinvoiceAfnor>();
    let secret = &schema["properties"]["client_secret"];
    assert_eq!(secret["writeOnly"], true, "{secret:#}");
    assert_eq!(schema["properties"]["environment"]["default"], "sandbox");
    for (name, field) in schema["properties"].as_object().unwrap() {
        assert!(field.get("title").is_some(), "{name} has no title");
    }
}

#[test]
fn the_french_catalog_translates_the_whole_schema() {
    testing::assert_catalog_complete::<EinvoiceAfnor>("fr");
}
