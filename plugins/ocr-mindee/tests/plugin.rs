//! The plugin's entry points (test routine, `ocr.expense_receipt`) run in-process through its
//! real root module against a scripted host: no dlopen, no network. Mindee's answers are the
//! real samples of `tests/emulators/fixtures/ocr-mindee/`; each test checks the outcome and
//! what was sent.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use passerelle_ocr_mindee::MindeeOcr;
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::testing::{self, ScriptedHost};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const API: &str = "https://mindee.test/v1";
const V5_URL: &str = "https://mindee.test/v1/products/mindee/expense_receipts/v5/predict";
const V4_URL: &str = "https://mindee.test/v1/products/mindee/expense_receipts/v4/predict";
const TOKEN: &str = "canary-token-5b1e";
const ERP_PASSWORD: &str = "canary-erp-password-93d0";

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            "../../../tests/emulators/fixtures/ocr-mindee/",
            $name
        ))
    };
}

const V5_COMPLETE: &str = fixture!("expense_receipts_v5_complete.json");
const V5_EMPTY: &str = fixture!("expense_receipts_v5_empty.json");
const V4_COMPLETE: &str = fixture!("expense_receipts_v4_complete_reconstructed.json");
const V4_EMPTY: &str = fixture!("expense_receipts_v4_empty.json");
const E400: &str = fixture!("error_400_from_mindeeapi_with_object_response_in_detail.json");
const E401: &str = fixture!("error_401_invalid_token.json");
const E403: &str = fixture!("error_403_sync_disallowed.json");
const E429: &str = fixture!("error_429_from_mindeeapi.json");
const E500: &str = fixture!("error_500_from_mindeeapi.json");
const E50X: &str = fixture!("error_50x.html");

/// The shortest JPEG prefix the plugin accepts (it checks the signature; Mindee the rest).
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xFF\xD9";

fn config() -> Value {
    json!({
        "url": API,
        "token": TOKEN,
        "erp_user": "svc-ocr",
        "erp_password": ERP_PASSWORD,
        "retry_delay_secs": 0
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn document(name: &str, bytes: &[u8]) -> ReceiptDocument {
    ReceiptDocument {
        file_name: Some(name.to_owned()),
        content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

fn ocr(
    config: Value,
    host: &ScriptedHost,
    input: &ReceiptDocument,
) -> Result<ExpenseReceipt, PluginError> {
    testing::invoke::<MindeeOcr, ExpenseReceiptOcr>(input, config, host)
}

fn answers(host: &ScriptedHost, url: &str, replies: Vec<(u16, &'static str)>) -> Arc<AtomicUsize> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    host.on_fn(Method::Post, url, move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let (status, body) = replies[n.min(replies.len() - 1)];
        let html = body.starts_with('<');
        Ok(HttpResponse {
            status,
            headers: vec![(
                "Content-Type".into(),
                if html {
                    "text/html"
                } else {
                    "application/json"
                }
                .into(),
            )],
            body: body.as_bytes().to_vec(),
        })
    });
    calls
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

#[test]
fn the_request_is_a_multipart_upload_with_the_token() {
    let host = ScriptedHost::new();
    answers(&host, V5_URL, vec![(201, V5_COMPLETE)]);
    ocr(config(), &host, &document("photos/ticket.png", JPEG)).unwrap();
    let requests = host.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.url, V5_URL);
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(header("Authorization"), format!("Token {TOKEN}"));
    assert!(r.secret_headers.iter().any(|h| h == "Authorization"));
    assert_eq!(r.timeout_ms, Some(30_000));
    let content_type = header("Content-Type");
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap();
    let expected = [
        format!("--{boundary}\r\n").into_bytes(),
        b"Content-Disposition: form-data; name=\"document\"; filename=\"ticket.jpg\"\r\n".to_vec(),
        b"Content-Type: image/jpeg\r\n\r\n".to_vec(),
        JPEG.to_vec(),
        format!("\r\n--{boundary}--\r\n").into_bytes(),
    ]
    .concat();
    assert_eq!(r.body, expected);
    let logs = host.logs().join("\n");
    assert!(
        logs.contains("reading ticket.jpg (image/jpeg, 22 bytes)"),
        "{logs}"
    );
    assert!(
        !logs.contains(TOKEN) && !logs.contains(ERP_PASSWORD),
        "{logs}"
    );
}

#[test]
fn v5_complete_maps_value_by_value() {
    let host = ScriptedHost::new();
    answers(&host, V5_URL, vec![(201, V5_COMPLETE)]);
    let r = ocr(config(), &host, &document("ticket.jpg", JPEG)).unwrap();
    let sample: Value = serde_json::from_str(V5_COMPLETE).unwrap();
    let p = &sample["document"]["inference"]["prediction"];
    assert_eq!(r.provider, "mindee");
    assert_eq!(r.model, "mindee/expense_receipts 5.2");
    assert_eq!(r.provider_document_id, s(&sample["document"]["id"]));
    assert_eq!(r.pages, 1);
    assert_eq!(r.date, s(&p["date"]["value"]));
    assert_eq!(r.date.as_deref(), Some("2016-02-26"));
    assert_eq!(r.time.as_deref(), Some("15:20"));
    assert_eq!(r.total_incl_tax, f(&p["total_amount"]["value"]));
    assert_eq!(r.total_incl_tax, Some(10.2));
    assert_eq!(r.total_excl_tax, f(&p["total_net"]["value"]));
    assert_eq!(r.total_excl_tax, Some(8.5));
    assert_eq!(r.total_tax, f(&p["total_tax"]["value"]));
    assert_eq!(r.total_tax, Some(1.7));
    assert_eq!(r.tip, None);
    assert_eq!(
        r.taxes,
        vec![ReceiptTaxLine {
            rate_percent: f(&p["taxes"][0]["rate"]),
            base: f(&p["taxes"][0]["base"]),
            amount: f(&p["taxes"][0]["value"]),
            code: s(&p["taxes"][0]["code"]),
            confidence: 0.99,
        }]
    );
    assert_eq!(r.taxes[0].rate_percent, Some(20.0));
    assert_eq!(r.currency.as_deref(), Some("GBP"));
    assert_eq!(r.language.as_deref(), Some("en"));
    assert_eq!(r.country.as_deref(), Some("GB"));
    assert_eq!(r.supplier.name, s(&p["supplier_name"]["value"]));
    assert_eq!(r.supplier.name.as_deref(), Some("Clachan"));
    assert_eq!(
        r.supplier.address.as_deref(),
        Some("34 kingley street w1b 5qh")
    );
    assert_eq!(r.supplier.phone.as_deref(), Some("02074940834"));
    assert_eq!(r.supplier.registrations.len(), 2);
    for (i, reg) in r.supplier.registrations.iter().enumerate() {
        let src = &p["supplier_company_registrations"][i];
        assert_eq!(reg.kind, s(&src["type"]));
        assert_eq!(Some(reg.value.clone()), s(&src["value"]));
        assert_eq!(Some(reg.confidence), f(&src["confidence"]));
    }
    assert_eq!(
        r.supplier.registrations[0].kind.as_deref(),
        Some("VAT NUMBER")
    );
    assert_eq!(r.category.as_deref(), Some("food"));
    assert_eq!(r.subcategory.as_deref(), Some("restaurant"));
    assert_eq!(r.document_type.as_deref(), Some("expense_receipt"));
    assert_eq!(r.receipt_number.as_deref(), Some("54/7500"));
    assert_eq!(
        r.line_items,
        vec![ReceiptLineItem {
            description: Some("Meantime Pale".into()),
            quantity: Some(2.0),
            unit_price: None,
            total_amount: Some(10.2),
            confidence: 0.97,
        }]
    );
    let expected_confidence = [
        ("category", &p["category"]),
        ("country", &p["locale"]),
        ("currency", &p["locale"]),
        ("date", &p["date"]),
        ("document_type", &p["document_type"]),
        ("language", &p["locale"]),
        ("receipt_number", &p["receipt_number"]),
        ("subcategory", &p["subcategory"]),
        ("supplier.address", &p["supplier_address"]),
        ("supplier.name", &p["supplier_name"]),
        ("supplier.phone", &p["supplier_phone_number"]),
        ("time", &p["time"]),
        ("tip", &p["tip"]),
        ("total_excl_tax", &p["total_net"]),
        ("total_incl_tax", &p["total_amount"]),
        ("total_tax", &p["total_tax"]),
    ];
    assert_eq!(
        r.confidence.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_confidence
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
    );
    for (key, field) in expected_confidence {
        assert_eq!(Some(r.confidence[key]), f(&field["confidence"]), "{key}");
    }
    assert_eq!(r.confidence["supplier.phone"], 0.39);
    assert_eq!(r.recorded_by, "svc-ocr");
}

#[test]
fn v5_empty_maps_to_nulls_with_zero_confidence() {
    let host = ScriptedHost::new();
    answers(&host, V5_URL, vec![(201, V5_EMPTY)]);
    let r = ocr(config(), &host, &document("t.jpg", JPEG)).unwrap();
    assert_eq!(r.model, "mindee/expense_receipts 5.0");
    assert_eq!(
        (r.date, r.time, r.total_incl_tax, r.currency),
        (None, None, None, None)
    );
    assert!(r.taxes.is_empty() && r.line_items.is_empty());
    assert_eq!(r.supplier, ReceiptSupplier::default());
    // What was found in that sample: a category, a subcategory and a document type.
    assert_eq!(r.category.as_deref(), Some("transport"));
    assert_eq!(r.subcategory.as_deref(), Some("plane"));
    assert_eq!(r.document_type.as_deref(), Some("expense_receipt"));
    assert_eq!(r.confidence["category"], 0.6);
    assert_eq!(r.confidence["date"], 0.0);
    assert!(!r.confidence.contains_key("receipt_number"));
}

#[test]
fn v4_maps_its_own_layout() {
    let host = ScriptedHost::new();
    answers(&host, V4_URL, vec![(201, V4_COMPLETE)]);
    let v4 = with(config(), json!({"product_version": "v4"}));
    let r = ocr(v4.clone(), &host, &document("t.jpg", JPEG)).unwrap();
    assert_eq!(host.requests()[0].url, V4_URL);
    assert_eq!(r.model, "mindee/expense_receipts 4.1");
    assert_eq!(r.supplier.name.as_deref(), Some("CLACHAN"));
    assert_eq!(r.confidence["supplier.name"], 0.99);
    assert_eq!(r.supplier.address, None);
    assert!(r.supplier.registrations.is_empty());
    assert_eq!(r.date.as_deref(), Some("2016-02-26"));
    assert_eq!(r.time.as_deref(), Some("15:20"));
    assert_eq!(
        (r.total_incl_tax, r.total_excl_tax, r.total_tax, r.tip),
        (Some(10.2), Some(8.5), Some(1.7), None)
    );
    assert_eq!(r.taxes[0].base, Some(8.5));
    assert_eq!(r.taxes[0].code.as_deref(), Some("VAT"));
    assert_eq!(r.currency.as_deref(), Some("GBP"));
    assert_eq!(r.document_type.as_deref(), Some("expense_receipt"));
    assert_eq!(r.receipt_number, None);
    assert!(r.line_items.is_empty());
    for v5_only in ["receipt_number", "supplier.address", "supplier.phone"] {
        assert!(!r.confidence.contains_key(v5_only), "{v5_only}");
    }

    let host = ScriptedHost::new();
    answers(&host, V4_URL, vec![(201, V4_EMPTY)]);
    let r = ocr(v4, &host, &document("t.jpg", JPEG)).unwrap();
    assert_eq!(r.model, "mindee/expense_receipts 4.0");
    assert_eq!(
        r.provider_document_id.as_deref(),
        Some("0fdf5179-d31c-4cc6-9aae-b69cbca2d70d")
    );
    assert_eq!(r.supplier.name, None);
    assert_eq!(r.confidence["supplier.name"], 0.0);
    assert_eq!(r.category, None);
    // The keys the old SDK appended (`document_type: "receipt"`) are not read.
    assert_eq!(r.document_type, None);
}

#[test]
fn documents_are_refused_before_any_request() {
    let host = ScriptedHost::new();
    answers(&host, V5_URL, vec![(201, V5_COMPLETE)]);
    let mut big = JPEG.to_vec();
    big.resize(10 * 1024 * 1024 + 1, 0);
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.extend_from_slice(b"2 0 obj << /Type /Pages /Count 12 >> endobj %%EOF");
    for (bytes, needle) in [
        (&b"GIF89a\x01\x00"[..], "a GIF image"),
        (&big[..], "at most 10 MB"),
        (&pdf[..], "the PDF has 12 pages"),
        (b"", "empty"),
    ] {
        let e = ocr(config(), &host, &document("t.jpg", bytes)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput, "{}", e.message);
        assert_eq!(e.field.as_deref(), Some("content_base64"));
        assert!(e.message.contains(needle), "{needle}: {}", e.message);
    }
    assert!(host.requests().is_empty());
}

#[test]
fn switches_and_missing_settings_refuse_without_a_request() {
    let host = ScriptedHost::new();
    let doc = document("t.jpg", JPEG);
    let e = ocr(with(config(), json!({"ocr_enabled": false})), &host, &doc).unwrap_err();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::Config, Some("ocr_enabled"))
    );
    let e = ocr(
        with(config(), json!({"mindee_enabled": false})),
        &host,
        &doc,
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("mindee_enabled"));
    let e = ocr(with(config(), json!({"token": "  "})), &host, &doc).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("token"));
    assert!(host.requests().is_empty());
}

#[test]
fn server_errors_and_rate_limits_are_retried() {
    // 503, 500 and 429 are retried; the third attempt succeeds.
    let host = ScriptedHost::new();
    let calls = answers(
        &host,
        V5_URL,
        vec![(503, E50X), (500, E500), (201, V5_COMPLETE)],
    );
    let r = ocr(config(), &host, &document("t.jpg", JPEG)).unwrap();
    assert_eq!(r.total_incl_tax, Some(10.2));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(host.slept_ms(), 0);
    let logs = host.logs().join("\n");
    assert!(logs.contains("attempt 1/3 failed (HTTP 503)"), "{logs}");
    assert!(
        logs.contains("attempt 2/3 failed (other: http 500: inference failed"),
        "{logs}"
    );

    // Every attempt fails: the last answer is reported with the attempts.
    let host = ScriptedHost::new();
    let calls = answers(&host, V5_URL, vec![(500, E500)]);
    let e = ocr(
        with(config(), json!({"retry_delay_secs": 2})),
        &host,
        &document("t.jpg", JPEG),
    )
    .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(host.slept_ms(), 4000);
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert!(
        e.message.contains("HTTP 500: Inference failed"),
        "{}",
        e.message
    );
    assert!(e.message.contains("(3 attempts: "), "{}", e.message);

    let host = ScriptedHost::new();
    let calls = answers(&host, V5_URL, vec![(429, E429)]);
    let e = ocr(
        with(config(), json!({"retry_attempts": 2})),
        &host,
        &document("t.jpg", JPEG),
    )
    .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert!(
        e.message.contains("2 attempts: HTTP 429, HTTP 429"),
        "{}",
        e.message
    );

    let host = ScriptedHost::new();
    let calls = answers(&host, V5_URL, vec![(502, E50X)]);
    let e = ocr(config(), &host, &document("t.jpg", JPEG)).unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        e.message
            .contains("an HTML error page saying \"An error occurred.\""),
        "{}",
        e.message
    );
}

#[test]
fn client_errors_are_not_retried() {
    for (status, body, kind) in [
        (400, E400, ErrorKind::InvalidInput),
        (401, E401, ErrorKind::Unauthorized),
        (403, E403, ErrorKind::Forbidden),
        (404, "{}", ErrorKind::Config),
    ] {
        let host = ScriptedHost::new();
        let calls = answers(&host, V5_URL, vec![(status, body)]);
        let e = ocr(config(), &host, &document("t.jpg", JPEG)).unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "HTTP {status}");
        assert_eq!(e.kind, kind, "HTTP {status}: {}", e.message);
        assert!(!e.message.contains(TOKEN));
    }
}

#[test]
fn a_success_that_is_not_a_prediction_is_an_upstream_error() {
    let host = ScriptedHost::new();
    answers(&host, V5_URL, vec![(201, "<html>proxy</html>")]);
    let e = ocr(config(), &host, &document("t.jpg", JPEG)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Upstream);
}

fn step<'a>(report: &'a TestReport, name: &str) -> &'a Step {
    report
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}: {report:#?}"))
}

/// What Mindee answers an upload without a document (Django REST framework's message).
const NO_FILE: &str = r#"{"api_request":{"error":{"details":{"document":["No file was submitted."]}},"resources":[],"status":"failure","status_code":400,"url":"x"}}"#;

#[test]
fn the_test_routine_sends_an_empty_upload_and_reads_the_400() {
    let host = ScriptedHost::new();
    answers(&host, V5_URL, vec![(400, NO_FILE)]);
    let report = testing::test::<MindeeOcr>(config(), &host);
    testing::assert_report_translated::<MindeeOcr>(&report, "fr");
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "configuration",
            "reach API",
            "find product",
            "authenticate",
            "plan and quota"
        ]
    );
    assert!(step(&report, "plan and quota")
        .detail
        .contains("HTTP 400: document: No file was submitted."));
    assert!(report.summary.contains("without consuming a prediction"));
    let requests = host.requests();
    assert_eq!(requests.len(), 1);
    let content_type = &requests[0]
        .headers
        .iter()
        .find(|(k, _)| k == "Content-Type")
        .unwrap()
        .1;
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap();
    assert_eq!(requests[0].body, format!("--{boundary}--\r\n").into_bytes());
}

#[test]
fn the_test_routine_names_each_failure() {
    let cases: [(u16, &'static str, &str, &str); 7] = [
        (401, E401, "authenticate", "Invalid token provided"),
        (403, E403, "plan and quota", "HTTP 403"),
        (
            429,
            E429,
            "plan and quota",
            "Mindee's rate limit is reached (HTTP 429",
        ),
        (
            404,
            r#"{"api_request":{"error":{"code":"NotFound"}}}"#,
            "find product",
            "HTTP 404",
        ),
        (502, E50X, "reach API", "An error occurred."),
        (
            404,
            "<html><title>404 Not Found</title></html>",
            "reach API",
            "not Mindee's API",
        ),
        (
            200,
            "<html><body>It works!</body></html>",
            "reach API",
            "HTTP 200 with something that is not Mindee's API",
        ),
    ];
    for (status, body, failed, needle) in cases {
        let host = ScriptedHost::new();
        answers(&host, V5_URL, vec![(status, body)]);
        let report = testing::test::<MindeeOcr>(config(), &host);
        assert_eq!(report.status, Status::Failed, "{status}: {report:#?}");
        let s = step(&report, failed);
        assert_eq!(s.status, Status::Failed);
        assert!(s.detail.contains(needle), "{status}: {}", s.detail);
        assert!(
            report.summary.starts_with(&format!("{failed}: ")),
            "{}",
            report.summary
        );
        assert_eq!(host.requests().len(), 1, "the test routine never retries");
        assert!(!format!("{report:?}").contains(TOKEN));
    }
}

#[test]
fn the_test_routine_reports_transport_and_configuration_problems() {
    let host = ScriptedHost::new();
    host.fail(
        Method::Post,
        V5_URL,
        HttpErrorKind::Connect,
        "connection refused",
    );
    let report = testing::test::<MindeeOcr>(config(), &host);
    testing::assert_report_translated::<MindeeOcr>(&report, "fr");
    assert_eq!(step(&report, "reach API").status, Status::Failed);
    assert!(
        report.summary.contains("connection refused"),
        "{}",
        report.summary
    );

    let report = testing::test::<MindeeOcr>(with(config(), json!({"erp_user": ""})), &host);
    assert_eq!(report.steps.len(), 1);
    assert_eq!(report.steps[0].name, "configuration");
    assert!(
        report.summary.contains("ERP technical user"),
        "{}",
        report.summary
    );

    // Switched off: a warning, and the connection is still checked.
    let host = ScriptedHost::new();
    answers(&host, V5_URL, vec![(400, E400)]);
    let report = testing::test::<MindeeOcr>(with(config(), json!({"ocr_enabled": false})), &host);
    assert_eq!(report.status, Status::Warning, "{report:#?}");
    assert!(
        report.summary.contains("OCR is switched off"),
        "{}",
        report.summary
    );
    assert_eq!(host.requests().len(), 1);
}

#[test]
fn manifest_declares_the_capability_and_quotas() {
    let m = testing::manifest::<MindeeOcr>().expect("the exported manifest");
    assert_eq!(m.id, "ocr-mindee");
    assert_eq!(m.category, Category::Ocr);
    assert_eq!(m.capabilities, ["ocr.expense_receipt"]);
    assert_eq!(m.quotas.per_second, Some(4));
    assert_eq!(m.quotas.per_minute, Some(75));
    assert!(m.check().is_ok());
}

// ---- API v2 -------------------------------------------------------------------------

const API2: &str = "https://mindee-v2.test";
const MODEL: &str = "94340559-b994-45e6-8b5c-be626027f1b2";
const V2_KEY: &str = "md_canary_v2_key_77aa";
const V2_PROCESSING: &str = fixture!("v2/job_ok_processing.json");
const V2_PROCESSED: &str = fixture!("v2/job_ok_processed_webhooks_ok.json");
const V2_FAILED: &str = fixture!("v2/job_fail_422.json");
const V2_FINDOC: &str = fixture!("v2/financial_document_complete_with_coordinates.json");
const V2_FINDOC_NO_CONFIDENCE: &str = fixture!("v2/financial_document_complete.json");
const V2_BLANK: &str = fixture!("v2/financial_document_blank.json");
const V2_E401: &str = fixture!("v2/error_401_invalid_api_key.json");
const V2_MODELS: &str = fixture!("v2/search_models.json");
/// The job id of the job samples.
const JOB: &str = "12345678-1234-1234-1234-123456789ABC";

fn config_v2() -> Value {
    json!({
        "api_version": "v2",
        "url": API2,
        "model_id": MODEL,
        "token": V2_KEY,
        "erp_user": "svc-ocr",
        "erp_password": ERP_PASSWORD,
        "retry_delay_secs": 0
    })
}

fn reply(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// Scripts enqueue (202 Processing), then `jobs` answers in turn (the last one repeats),
/// and the inference.
fn v2_script(host: &ScriptedHost, jobs: Vec<(u16, &'static str)>, inference: &'static str) {
    host.on(
        Method::Post,
        &format!("{API2}/v2/inferences/enqueue"),
        202,
        V2_PROCESSING,
    );
    let calls = AtomicUsize::new(0);
    host.on_fn(Method::Get, &format!("{API2}/v2/jobs/"), move |_| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let (status, body) = jobs[n.min(jobs.len() - 1)];
        Ok(reply(status, body))
    });
    host.on(
        Method::Get,
        &format!("{API2}/v2/inferences/"),
        200,
        inference,
    );
}

fn header<'a>(r: &'a HttpRequest, name: &str) -> &'a str {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap()
}

#[test]
fn v2_enqueues_polls_follows_the_result_and_maps_the_real_sample() {
    let host = ScriptedHost::new();
    v2_script(
        &host,
        vec![(200, V2_PROCESSING), (302, V2_PROCESSED)],
        V2_FINDOC,
    );
    let r = ocr(
        config_v2(),
        &host,
        &document("scan.tiff", b"II*\0\x08\0\0\0"),
    )
    .unwrap();

    let requests = host.requests();
    let urls: Vec<String> = requests
        .iter()
        .map(|r| format!("{:?} {}", r.method, r.url))
        .collect();
    // The job says its result is on api-v2.mindee.net: the key stays on the configured host.
    assert_eq!(
        urls,
        [
            format!("Post {API2}/v2/inferences/enqueue"),
            format!("Get {API2}/v2/jobs/{JOB}"),
            format!("Get {API2}/v2/jobs/{JOB}"),
            format!("Get {API2}/v2/inferences/{JOB}"),
        ]
    );
    for r in &requests {
        assert_eq!(
            header(r, "Authorization"),
            V2_KEY,
            "no `Token ` prefix on v2"
        );
        assert!(r.secret_headers.iter().any(|h| h == "Authorization"));
    }
    let enqueue = &requests[0];
    let boundary = header(enqueue, "Content-Type")
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap()
        .to_owned();
    let expected = [
        format!("--{boundary}\r\n").into_bytes(),
        format!("Content-Disposition: form-data; name=\"model_id\"\r\n\r\n{MODEL}\r\n")
            .into_bytes(),
        format!("--{boundary}\r\n").into_bytes(),
        b"Content-Disposition: form-data; name=\"file\"; filename=\"scan.tiff\"\r\n".to_vec(),
        b"Content-Type: image/tiff\r\n\r\nII*\0\x08\0\0\0".to_vec(),
        format!("\r\n--{boundary}--\r\n").into_bytes(),
    ]
    .concat();
    assert_eq!(enqueue.body, expected);
    // The clients' intervals: 2 s before the first look, 1.5 s between looks.
    assert_eq!(host.slept_ms(), 3500);

    assert_eq!(r.provider, "mindee");
    assert_eq!(r.model, format!("mindee v2 model {MODEL}"));
    assert_eq!(
        r.provider_document_id.as_deref(),
        Some("b9929e90-1751-4414-8f53-334733afccc0")
    );
    assert_eq!(r.pages, 1);
    assert_eq!(r.date.as_deref(), Some("2019-02-11"));
    assert_eq!(r.total_incl_tax, Some(204.75));
    assert_eq!(r.total_excl_tax, Some(195.0));
    assert_eq!(r.total_tax, Some(9.75));
    assert_eq!(r.tip, None);
    assert_eq!(r.taxes.len(), 1);
    assert_eq!(r.taxes[0].rate_percent, Some(5.0), "0.05 of 195 is 9.75");
    assert_eq!(r.taxes[0].base, Some(195.0));
    assert_eq!(r.taxes[0].amount, Some(9.75));
    assert_eq!(r.taxes[0].confidence, 0.8);
    assert_eq!(r.currency.as_deref(), Some("USD"));
    assert_eq!(r.language.as_deref(), Some("en"));
    assert_eq!(r.country.as_deref(), Some("US"));
    assert_eq!(r.supplier.name.as_deref(), Some("John Smith"));
    assert_eq!(
        r.supplier.address.as_deref(),
        Some("4490 Oak Drive\nAlbany, NY 12210")
    );
    assert_eq!(r.supplier.phone, None);
    assert_eq!(r.document_type.as_deref(), Some("invoice"));
    assert_eq!(r.category.as_deref(), Some("miscellaneous"));
    assert_eq!(r.subcategory.as_deref(), Some("other"));
    assert_eq!(r.line_items.len(), 3);
    assert_eq!(
        r.line_items[0].description.as_deref(),
        Some("Front and rear brake cables")
    );
    assert_eq!(r.line_items[1].quantity, Some(2.0));
    assert_eq!(r.line_items[1].unit_price, Some(25.0));
    assert_eq!(r.line_items[1].total_amount, Some(50.0));
    assert_eq!(r.confidence["date"], 0.5, "Medium");
    assert_eq!(r.confidence["total_incl_tax"], 0.8, "High");
    assert_eq!(r.confidence["supplier.address"], 0.2, "Low");
    assert_eq!(r.recorded_by, "svc-ocr");
    let logs = host.logs().join("\n");
    assert!(logs.contains(&format!("job {JOB} enqueued")), "{logs}");
    assert!(!logs.contains(V2_KEY), "{logs}");
}

#[test]
fn v2_samples_without_confidence_and_blank_map_too() {
    // The host followed the job's redirect itself: the poll answers the inference.
    let host = ScriptedHost::new();
    v2_script(&host, vec![(200, V2_FINDOC_NO_CONFIDENCE)], V2_BLANK);
    let r = ocr(config_v2(), &host, &document("t.jpg", JPEG)).unwrap();
    assert_eq!(host.requests().len(), 2, "enqueue and one poll");
    assert_eq!(r.date.as_deref(), Some("2019-11-02"));
    assert_eq!(r.currency.as_deref(), Some("EUR"));
    assert_eq!(r.language.as_deref(), Some("fr"));
    assert_eq!(
        r.supplier.address.as_deref(),
        Some("1, Fake Street, 00001, Fake City USA")
    );
    assert_eq!(r.supplier.phone.as_deref(), Some("01.11.11.11.11"));
    let registrations: Vec<(Option<&str>, &str)> = r
        .supplier
        .registrations
        .iter()
        .map(|x| (x.kind.as_deref(), x.value.as_str()))
        .collect();
    assert_eq!(
        registrations,
        [
            (Some("VAT"), "FR 11 111 111 111"),
            (Some("SIRET"), "11111111111111")
        ]
    );
    assert_eq!(r.category.as_deref(), Some("food"));
    assert_eq!(r.subcategory.as_deref(), Some("restaurant"));
    assert_eq!(r.confidence["date"], 0.0, "no confidence option: unknown");

    let host = ScriptedHost::new();
    v2_script(&host, vec![(302, V2_PROCESSED)], V2_BLANK);
    let r = ocr(config_v2(), &host, &document("t.pdf", b"%PDF-1.4\n%%EOF")).unwrap();
    assert_eq!(r.date, None);
    assert_eq!(r.total_incl_tax, None);
    assert_eq!(r.supplier.name, None);
    assert!(r.taxes.is_empty() && r.line_items.is_empty());
    assert_eq!(r.currency, None);
}

#[test]
fn v2_failed_jobs_and_refusals_name_what_to_fix() {
    let host = ScriptedHost::new();
    v2_script(&host, vec![(200, V2_FAILED)], V2_BLANK);
    let e = ocr(config_v2(), &host, &document("t.jpg", JPEG)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("model_id"));
    assert!(
        e.message.contains(&format!("job {JOB}"))
            && e.message.contains("Invalid fields in form")
            && e.message.contains("[422-001]"),
        "{}",
        e.message
    );

    let host = ScriptedHost::new();
    host.on(
        Method::Post,
        &format!("{API2}/v2/inferences/enqueue"),
        401,
        V2_E401,
    );
    let e = ocr(config_v2(), &host, &document("t.jpg", JPEG)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(e.field.as_deref(), Some("token"));
    assert!(e.message.contains("Invalid API key"), "{}", e.message);
    assert_eq!(host.requests().len(), 1, "a 401 is not retried");
    assert!(!e.message.contains(V2_KEY));

    // A billed enqueue is not retried after a 500 (it may have been applied)…
    let host = ScriptedHost::new();
    host.on(
        Method::Post,
        &format!("{API2}/v2/inferences/enqueue"),
        500,
        r#"{"status":500,"title":"Internal error","detail":"x","code":"500-001"}"#,
    );
    let e = ocr(config_v2(), &host, &document("t.jpg", JPEG)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert_eq!(host.requests().len(), 1);
}

#[test]
fn v2_polling_stops_before_the_call_deadline() {
    let host = ScriptedHost::new();
    v2_script(&host, vec![(200, V2_PROCESSING)], V2_BLANK);
    let e = ocr(config_v2(), &host, &document("t.jpg", JPEG)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(e.message.contains(JOB), "{}", e.message);
    assert!(host.slept_ms() <= 110_000, "{}", host.slept_ms());
    assert!(host.slept_ms() >= 108_000, "{}", host.slept_ms());
    let polls = host.requests().len() - 1;
    assert_eq!(polls, 73, "2 s, then every 1.5 s, within 110 s");
}

#[test]
fn v2_polling_honours_retry_after() {
    let host = ScriptedHost::new();
    host.on(
        Method::Post,
        &format!("{API2}/v2/inferences/enqueue"),
        202,
        V2_PROCESSING,
    );
    let calls = AtomicUsize::new(0);
    host.on_fn(Method::Get, &format!("{API2}/v2/jobs/"), move |_| {
        let mut r = reply(200, V2_PROCESSING);
        if calls.fetch_add(1, Ordering::SeqCst) > 0 {
            r = reply(302, V2_PROCESSED);
        }
        r.headers.push(("Retry-After".into(), "5".into()));
        Ok(r)
    });
    host.on(
        Method::Get,
        &format!("{API2}/v2/inferences/"),
        200,
        V2_FINDOC,
    );
    ocr(config_v2(), &host, &document("t.jpg", JPEG)).unwrap();
    assert_eq!(host.slept_ms(), 2000 + 5000);
}

#[test]
fn v2_test_routine_lists_models_without_reading_a_document() {
    let ok = |model: &str| {
        let host = ScriptedHost::new();
        host.on(
            Method::Get,
            &format!("{API2}/v2/search/models"),
            200,
            V2_MODELS,
        );
        let report =
            testing::test::<MindeeOcr>(with(config_v2(), json!({"model_id": model})), &host);
        let requests = host.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, Method::Get);
        assert_eq!(requests[0].url, format!("{API2}/v2/search/models"));
        assert_eq!(header(&requests[0], "Authorization"), V2_KEY);
        report
    };
    let report = ok("b3274545-bb22-bb22-991e-9ca0639829a3");
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["configuration", "reach API", "authenticate", "find model"]
    );
    assert!(step(&report, "find model")
        .detail
        .contains("\"Extraction Without Webhooks\" (extraction)"));
    assert!(
        report.summary.contains("no page billed"),
        "{}",
        report.summary
    );

    let report = ok(MODEL);
    assert_eq!(report.status, Status::Failed);
    let detail = &step(&report, "find model").detail;
    assert!(
        detail.contains(&format!("no model {MODEL}"))
            && detail.contains("Split Without Webhooks (c88c19ba-cc33-cc33-ae83-80253fb7c27d)"),
        "{detail}"
    );
    let report = ok("c88c19ba-cc33-cc33-ae83-80253fb7c27d");
    assert_eq!(report.status, Status::Failed);
    assert!(step(&report, "find model")
        .detail
        .contains("is a split model"));

    let host = ScriptedHost::new();
    host.on(
        Method::Get,
        &format!("{API2}/v2/search/models"),
        401,
        V2_E401,
    );
    let report = testing::test::<MindeeOcr>(config_v2(), &host);
    testing::assert_report_translated::<MindeeOcr>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    assert_eq!(step(&report, "authenticate").status, Status::Failed);
    assert!(step(&report, "authenticate")
        .detail
        .contains("Invalid API key: The provided API key is invalid. [401-001]"));
    assert_eq!(step(&report, "find model").status, Status::Skipped);
}

#[test]
fn v2_configuration_is_checked_before_any_request() {
    let host = ScriptedHost::new();
    let e = ocr(
        with(config_v2(), json!({"model_id": null})),
        &host,
        &document("t.jpg", JPEG),
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("model_id"));
    let e = ocr(
        with(config_v2(), json!({"token": format!("Token {V2_KEY}")})),
        &host,
        &document("t.jpg", JPEG),
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("token"));
    assert!(!e.message.contains(V2_KEY));
    assert!(host.requests().is_empty());
}

#[test]
fn the_french_catalog_translates_the_whole_schema() {
    testing::assert_catalog_complete::<MindeeOcr>("fr");
}
