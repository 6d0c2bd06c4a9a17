//! The Mindee plugin end to end: the real `passerelle` binary loads the real
//! `libpasserelle_ocr_mindee.so` and talks over HTTP to the Mindee emulator. Configuration,
//! the test routine (good token, bad token, plan and rate limits), the OCR of a JPEG made
//! by the test, checked value by value against the sample Mindee answered, v4, documents
//! refused before sending, retries and outages, and secrets that never show. API v2: a new
//! instance is a v2 one; a TIFF is enqueued, polled and mapped from Mindee's real sample;
//! the test routine lists models without billing; a v1 key or header is refused.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.

use passerelle_e2e::{step, Run, TestEnv};
use passerelle_emulators::mindee::FINDOC_COMPLETE;
use passerelle_emulators::mindee::{
    receipt_input, sample_jpeg, sample_pdf, Answer, Failure, MindeeEmulator, MindeeOptions,
    V4_COMPLETE, V4_EMPTY, V5_COMPLETE,
};
use serde_json::Value;

const KEY: &str = "canary-mindee-key-4c2e81";
const ERP_PASSWORD: &str = "canary-erp-password-77ab";
const OP: &str = "ocr.expense_receipt";

fn emulator() -> MindeeEmulator {
    MindeeEmulator::start(MindeeOptions {
        api_key: KEY.to_owned(),
        ..MindeeOptions::default()
    })
    .unwrap()
}

/// A host with one enabled API v1 instance `m` pointed at the emulator, retries without
/// delay. New instances start at v2: clearing `api_version` makes `m` what an instance
/// saved before API v2 existed looks like, which must stay a v1 instance.
fn configured(emu: &MindeeEmulator) -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_ocr_mindee"]);
    env.ok(&["config", "create", "m", "--plugin", "ocr-mindee"]);
    env.ok(&["config", "unset", "m", "api_version"]);
    env.ok(&["config", "set", "m", "url", &emu.api_url()]);
    env.run_with_stdin(
        &["config", "set", "m", "token", "--stdin"],
        Some(&format!("{KEY}\n")),
    )
    .expect_code(0);
    env.ok(&["config", "set", "m", "erp_user", "svc-ocr"]);
    env.run_with_stdin(
        &["config", "set", "m", "erp_password", "--stdin"],
        Some(ERP_PASSWORD),
    )
    .expect_code(0);
    env.ok(&["config", "set", "m", "retry_delay_secs", "0"]);
    env.ok(&["config", "enable", "m"]);
    env
}

fn ocr(env: &TestEnv, input: &Value) -> Run {
    env.run(&[
        "invoke",
        OP,
        "--input",
        &input.to_string(),
        "--instance",
        "m",
    ])
}

fn test_report(env: &TestEnv, code: i32) -> Value {
    env.run(&["test", "m", "--json"]).expect_code(code).json()
}

fn no_secret(run: &Run) {
    for secret in [KEY, ERP_PASSWORD] {
        assert!(
            !run.all().contains(secret),
            "a secret leaked in `{}`:\n{}",
            run.line,
            run.all()
        );
    }
}

#[test]
fn the_manifest_declares_the_capability_and_mindees_quotas() {
    let env = TestEnv::with_plugins(&["passerelle_ocr_mindee"]);
    let plugins = env.ok(&["plugins", "--json"]).json();
    let plugin = &plugins["plugins"][0];
    assert_eq!(plugin["capabilities"][0], OP);
    assert_eq!(plugin["quotas"]["per_second"], 4);
    assert_eq!(plugin["quotas"]["per_minute"], 75);
}

#[test]
fn credentials_are_required_only_while_mindee_is_active() {
    let env = TestEnv::with_plugins(&["passerelle_ocr_mindee"]);
    env.ok(&["config", "create", "m", "--plugin", "ocr-mindee"]);
    let refused = env.run(&["config", "enable", "m"]).expect_code(3);
    for field in ["token", "erp_user", "erp_password", "model_id"] {
        assert!(refused.stderr.contains(field), "{}", refused.stderr);
    }
    assert!(
        refused.stderr.contains("mindee_enabled"),
        "{}",
        refused.stderr
    );
    env.ok(&["config", "set", "m", "product_version", "v4"]);
    env.run(&["config", "set", "m", "product_version", "v3"])
        .expect_code(3);
    env.ok(&["config", "set", "m", "mindee_enabled", "false"]);
    // A new instance is an API v2 one: its model is part of the configuration.
    let refused = env.run(&["config", "enable", "m"]).expect_code(3);
    assert!(refused.stderr.contains("model_id"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("token"), "{}", refused.stderr);
    env.ok(&["config", "set", "m", "api_version", "v1"]);
    env.ok(&["config", "enable", "m"]);
}

#[test]
fn the_test_routine_passes_without_consuming_a_prediction() {
    let emu = emulator();
    let env = configured(&emu);
    let before = emu.request_count();
    let report = test_report(&env, 0);
    assert_eq!(report["status"], "ok", "{report:#}");
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
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
    assert!(
        step(&report, "plan and quota")["detail"]
            .as_str()
            .unwrap()
            .contains("HTTP 400: document: No file was submitted."),
        "{report:#}"
    );
    assert_eq!(emu.request_count() - before, 1);
    assert_eq!(emu.predicted_pages(), 0);
    let human = env.ok(&["test", "m"]);
    no_secret(&human);
}

#[test]
fn a_bad_token_fails_the_authenticate_step_with_mindees_message() {
    let emu = emulator();
    let env = configured(&emu);
    env.run_with_stdin(
        &["config", "set", "m", "token", "--stdin"],
        Some("wrong-key"),
    )
    .expect_code(0);
    let run = env.run(&["test", "m", "--json"]).expect_code(1);
    no_secret(&run);
    let report = run.json();
    assert_eq!(report["status"], "failed");
    let auth = step(&report, "authenticate");
    assert_eq!(auth["status"], "failed");
    assert!(
        auth["detail"]
            .as_str()
            .unwrap()
            .contains("HTTP 401: Authorization required: Invalid token provided"),
        "{auth:#}"
    );
    assert!(report["summary"]
        .as_str()
        .unwrap()
        .starts_with("authenticate: "));
}

#[test]
fn plan_and_rate_limits_are_reported_distinctly() {
    let emu = emulator();
    let env = configured(&emu);
    emu.set_rate_limited(true);
    let report = test_report(&env, 1);
    assert_eq!(step(&report, "authenticate")["status"], "ok");
    let quota = step(&report, "plan and quota");
    assert_eq!(quota["status"], "failed");
    let detail = quota["detail"].as_str().unwrap();
    assert!(
        detail.contains("rate limit is reached (HTTP 429: Too many requests"),
        "{detail}"
    );
    emu.set_rate_limited(false);
    emu.set_plan_limit_reached(true);
    let report = test_report(&env, 1);
    let detail = step(&report, "plan and quota")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("HTTP 403: Plan limit reached"), "{detail}");
    assert!(detail.contains("plan's limit is reached"), "{detail}");
    emu.set_plan_limit_reached(false);
    test_report(&env, 0);
    assert_eq!(emu.predicted_pages(), 0);
}

fn f(v: &Value) -> Value {
    v.clone()
}

#[test]
fn a_generated_jpeg_is_read_and_mapped_value_by_value() {
    let emu = emulator();
    let env = configured(&emu);
    let image = sample_jpeg(96, 128);
    let run = ocr(&env, &receipt_input("IMG_2041.jpeg", &image)).expect_code(0);
    no_secret(&run);
    let out = run.json();

    let uploads = emu.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].file_name, "IMG_2041.jpeg");
    assert_eq!(uploads[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(uploads[0].bytes, image);
    assert_eq!(uploads[0].product_version, "v5");
    assert_eq!(emu.predicted_pages(), 1);

    let sample: Value = serde_json::from_str(V5_COMPLETE).unwrap();
    let p = &sample["document"]["inference"]["prediction"];
    let expected = [
        ("/provider", Value::from("mindee")),
        ("/model", Value::from("mindee/expense_receipts 5.2")),
        ("/provider_document_id", f(&sample["document"]["id"])),
        ("/pages", f(&sample["document"]["n_pages"])),
        ("/document_type", Value::from("expense_receipt")),
        ("/date", f(&p["date"]["value"])),
        ("/time", f(&p["time"]["value"])),
        ("/total_incl_tax", f(&p["total_amount"]["value"])),
        ("/total_excl_tax", f(&p["total_net"]["value"])),
        ("/total_tax", f(&p["total_tax"]["value"])),
        ("/tip", f(&p["tip"]["value"])),
        ("/taxes/0/rate_percent", f(&p["taxes"][0]["rate"])),
        ("/taxes/0/base", f(&p["taxes"][0]["base"])),
        ("/taxes/0/amount", f(&p["taxes"][0]["value"])),
        ("/taxes/0/code", f(&p["taxes"][0]["code"])),
        ("/taxes/0/confidence", f(&p["taxes"][0]["confidence"])),
        ("/currency", f(&p["locale"]["currency"])),
        ("/language", f(&p["locale"]["language"])),
        ("/country", f(&p["locale"]["country"])),
        ("/supplier/name", f(&p["supplier_name"]["value"])),
        ("/supplier/address", f(&p["supplier_address"]["value"])),
        ("/supplier/phone", f(&p["supplier_phone_number"]["value"])),
        (
            "/supplier/registrations/0/kind",
            f(&p["supplier_company_registrations"][0]["type"]),
        ),
        (
            "/supplier/registrations/0/value",
            f(&p["supplier_company_registrations"][0]["value"]),
        ),
        (
            "/supplier/registrations/0/confidence",
            f(&p["supplier_company_registrations"][0]["confidence"]),
        ),
        (
            "/supplier/registrations/1/value",
            f(&p["supplier_company_registrations"][1]["value"]),
        ),
        (
            "/supplier/registrations/1/confidence",
            f(&p["supplier_company_registrations"][1]["confidence"]),
        ),
        ("/category", f(&p["category"]["value"])),
        ("/subcategory", f(&p["subcategory"]["value"])),
        ("/receipt_number", f(&p["receipt_number"]["value"])),
        (
            "/line_items/0/description",
            f(&p["line_items"][0]["description"]),
        ),
        ("/line_items/0/quantity", f(&p["line_items"][0]["quantity"])),
        (
            "/line_items/0/unit_price",
            f(&p["line_items"][0]["unit_price"]),
        ),
        (
            "/line_items/0/total_amount",
            f(&p["line_items"][0]["total_amount"]),
        ),
        (
            "/line_items/0/confidence",
            f(&p["line_items"][0]["confidence"]),
        ),
        ("/confidence/date", f(&p["date"]["confidence"])),
        ("/confidence/time", f(&p["time"]["confidence"])),
        (
            "/confidence/total_incl_tax",
            f(&p["total_amount"]["confidence"]),
        ),
        (
            "/confidence/total_excl_tax",
            f(&p["total_net"]["confidence"]),
        ),
        ("/confidence/total_tax", f(&p["total_tax"]["confidence"])),
        ("/confidence/tip", f(&p["tip"]["confidence"])),
        ("/confidence/currency", f(&p["locale"]["confidence"])),
        (
            "/confidence/supplier.name",
            f(&p["supplier_name"]["confidence"]),
        ),
        (
            "/confidence/supplier.address",
            f(&p["supplier_address"]["confidence"]),
        ),
        (
            "/confidence/supplier.phone",
            f(&p["supplier_phone_number"]["confidence"]),
        ),
        ("/confidence/category", f(&p["category"]["confidence"])),
        (
            "/confidence/subcategory",
            f(&p["subcategory"]["confidence"]),
        ),
        (
            "/confidence/document_type",
            f(&p["document_type"]["confidence"]),
        ),
        (
            "/confidence/receipt_number",
            f(&p["receipt_number"]["confidence"]),
        ),
        ("/recorded_by", Value::from("svc-ocr")),
    ];
    for (pointer, value) in &expected {
        assert_eq!(out.pointer(pointer), Some(value), "{pointer} in {out:#}");
    }
    // Spot values, so that a fixture change cannot make both sides wrong together.
    assert_eq!(out["total_incl_tax"], 10.2);
    assert_eq!(out["supplier"]["name"], "Clachan");
    assert_eq!(out["date"], "2016-02-26");
    assert_eq!(out["taxes"].as_array().unwrap().len(), 1);
    assert_eq!(out["line_items"].as_array().unwrap().len(), 1);
    assert_eq!(
        out["supplier"]["registrations"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn v4_is_read_with_its_own_layout() {
    let emu = emulator();
    let env = configured(&emu);
    env.ok(&["config", "set", "m", "product_version", "v4"]);
    let image = sample_jpeg(64, 64);
    let out = ocr(&env, &receipt_input("r.jpg", &image))
        .expect_code(0)
        .json();
    assert_eq!(emu.uploads()[0].product_version, "v4");
    let sample: Value = serde_json::from_str(V4_COMPLETE).unwrap();
    let p = &sample["document"]["inference"]["prediction"];
    assert_eq!(out["model"], "mindee/expense_receipts 4.1");
    assert_eq!(out["supplier"]["name"], p["supplier"]["value"]);
    assert_eq!(out["supplier"]["name"], "CLACHAN");
    assert_eq!(out["supplier"]["address"], Value::Null);
    assert_eq!(out["total_incl_tax"], p["total_amount"]["value"]);
    assert_eq!(out["total_excl_tax"], p["total_net"]["value"]);
    assert_eq!(out["taxes"][0]["base"], p["taxes"][0]["base"]);
    assert_eq!(out["date"], p["date"]["value"]);
    assert_eq!(out["currency"], "GBP");
    assert_eq!(out["receipt_number"], Value::Null);
    assert_eq!(out["line_items"], serde_json::json!([]));
    assert!(out["confidence"].get("receipt_number").is_none());

    emu.set_answer(Answer::Empty);
    let out = ocr(&env, &receipt_input("r.jpg", &image))
        .expect_code(0)
        .json();
    let empty: Value = serde_json::from_str(V4_EMPTY).unwrap();
    assert_eq!(out["provider_document_id"], empty["document"]["id"]);
    assert_eq!(out["model"], "mindee/expense_receipts 4.0");
    for field in [
        "date",
        "time",
        "total_incl_tax",
        "currency",
        "category",
        "document_type",
    ] {
        assert_eq!(out[field], Value::Null, "{field}");
    }
    assert_eq!(out["confidence"]["supplier.name"], 0.0);
    assert_eq!(out["recorded_by"], "svc-ocr");
}

#[test]
fn documents_mindee_would_refuse_are_refused_before_sending() {
    let emu = emulator();
    let env = configured(&emu);
    let text = ocr(
        &env,
        &receipt_input("receipt.jpg", b"Total 12,50 EUR\nTVA 20%\n"),
    )
    .expect_code(3);
    text.expect_output("the document is text, not a JPEG, PNG, WebP, HEIC, TIFF or PDF file");
    let gif = ocr(
        &env,
        &receipt_input("receipt.jpg", b"GIF89a\x01\x00\x01\x00"),
    )
    .expect_code(3);
    gif.expect_output("a GIF image");
    let pdf = ocr(&env, &receipt_input("scan.pdf", &sample_pdf(11))).expect_code(3);
    pdf.expect_output("the PDF has 11 pages; Mindee reads at most 10 pages");
    assert_eq!(emu.request_count(), 0, "nothing may reach Mindee");

    // A JPEG whose structure is broken passes the signature check; Mindee refuses it.
    let broken = ocr(
        &env,
        &receipt_input("r.jpg", b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"),
    )
    .expect_code(3);
    broken.expect_output(
        "Mindee refused the document (HTTP 400: Invalid file: The file cannot be read",
    );
    assert_eq!(emu.request_count(), 1);

    // A 3-page PDF is read, and billed as 3 pages.
    ocr(&env, &receipt_input("scan.pdf", &sample_pdf(3))).expect_code(0);
    assert_eq!(
        emu.uploads()[0].content_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(emu.predicted_pages(), 3);
}

#[test]
fn outages_are_retried_then_reported() {
    let emu = emulator();
    let env = configured(&emu);
    let input = receipt_input("r.jpg", &sample_jpeg(32, 32));

    emu.fail_next(2, Failure::Unavailable);
    ocr(&env, &input).expect_code(0);
    assert_eq!(emu.request_count(), 3);

    emu.fail_next(3, Failure::InferenceFailed);
    let run = ocr(&env, &input).expect_code(1);
    run.expect_output("Mindee could not read the document now (HTTP 500: Inference failed")
        .expect_output("(3 attempts: ");
    assert_eq!(emu.request_count(), 6);

    emu.set_unavailable(true);
    let run = ocr(&env, &input).expect_code(1);
    no_secret(&run);
    run.expect_output("HTTP 502, an HTML error page saying \"An error occurred.\"");
    assert_eq!(emu.predicted_pages(), 1);
}

#[test]
fn switched_off_ocr_refuses_and_secrets_stay_sealed() {
    let emu = emulator();
    let env = configured(&emu);
    env.ok(&["config", "set", "m", "ocr_enabled", "false"]);
    let run = ocr(&env, &receipt_input("r.jpg", &sample_jpeg(8, 8))).expect_code(3);
    run.expect_output("OCR is switched off");
    let report = test_report(&env, 0);
    assert_eq!(report["status"], "warning", "{report:#}");
    assert_eq!(emu.predicted_pages(), 0);
    let show = env.ok(&["config", "show", "m"]);
    no_secret(&show);
    let dump = env.data_dump();
    assert!(
        !dump.contains(KEY) && !dump.contains(ERP_PASSWORD),
        "a secret is stored in clear"
    );
}

#[test]
fn the_ocr_command_reads_a_file_and_prints_the_expense() {
    let emu = emulator();
    let env = configured(&emu);
    let photo = env.root.path().join("ticket.jpg");
    std::fs::write(&photo, passerelle_emulators::mindee::sample_jpeg(96, 128)).unwrap();
    let run = env.ok(&["ocr", photo.to_str().unwrap()]);
    assert!(run.stdout.contains("Clachan"), "{}", run.stdout);
    assert!(run.stdout.contains("10.20 GBP"), "{}", run.stdout);
    assert!(
        run.stdout.contains("recorded by:   svc-ocr"),
        "{}",
        run.stdout
    );
    let json = env
        .ok(&["ocr", photo.to_str().unwrap(), "--json", "--instance", "m"])
        .json();
    assert_eq!(json["total_incl_tax"], 10.2);
    let text = env.root.path().join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    env.run(&["ocr", text.to_str().unwrap()]).expect_code(3);
    env.run(&["ocr", "/nonexistent/file.jpg"]).expect_code(3);
}

// ---- API v2 -------------------------------------------------------------------------

const V2_KEY: &str = "canary-mindee-v2-key-90f1";
const MODEL: &str = "94340559-b994-45e6-8b5c-be626027f1b2";

fn emulator_v2() -> MindeeEmulator {
    MindeeEmulator::start(MindeeOptions {
        api_key: KEY.to_owned(),
        v2_api_key: V2_KEY.to_owned(),
        v2_model_id: MODEL.to_owned(),
        ..MindeeOptions::default()
    })
    .unwrap()
}

/// A new instance `m` (API v2 from its creation, never set) pointed at the emulator with
/// `key`, not yet enabled.
fn configured_v2(emu: &MindeeEmulator, key: &str) -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_ocr_mindee"]);
    env.ok(&["config", "create", "m", "--plugin", "ocr-mindee"]);
    env.ok(&["config", "set", "m", "url", &emu.v2_url()]);
    env.run_with_stdin(
        &["config", "set", "m", "token", "--stdin"],
        Some(&format!("{key}\n")),
    )
    .expect_code(0);
    env.ok(&["config", "set", "m", "erp_user", "svc-ocr"]);
    env.run_with_stdin(
        &["config", "set", "m", "erp_password", "--stdin"],
        Some(ERP_PASSWORD),
    )
    .expect_code(0);
    env
}

#[test]
fn v2_new_instance_needs_a_model_then_reads_a_tiff_end_to_end() {
    let emu = emulator_v2();
    let env = configured_v2(&emu, V2_KEY);
    assert!(
        env.ok(&["config", "get", "m", "api_version"])
            .stdout
            .contains("v2"),
        "a new instance is an API v2 instance"
    );
    // The host's whole-config check: model_id is required with v2.
    let refused = env.run(&["config", "enable", "m"]);
    assert_ne!(refused.code, Some(0), "{}", refused.all());
    assert!(refused.all().contains("model_id"), "{}", refused.all());
    env.ok(&["config", "set", "m", "model_id", MODEL]);
    env.ok(&["config", "enable", "m"]);

    // The test routine lists the models: no document, nothing billed.
    let report = test_report(&env, 0);
    assert_eq!(report["status"], "ok", "{report:#}");
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["configuration", "reach API", "authenticate", "find model"]
    );
    assert!(
        step(&report, "find model")["detail"]
            .as_str()
            .unwrap()
            .contains("\"Expense Receipts\" (extraction)"),
        "{report:#}"
    );
    assert!(emu.uploads().is_empty());
    assert_eq!(emu.predicted_pages(), 0);

    // A scanner's TIFF: enqueued with the model, polled, redirected, mapped.
    let tiff = b"II*\0\x08\0\0\0\x01\0\0\x01\x03\0\x01\0\0\0\x01\0\0\0\0\0\0\0".to_vec();
    let run = ocr(&env, &receipt_input("scan-0042.tif", &tiff)).expect_code(0);
    no_secret(&run);
    assert!(!run.all().contains(V2_KEY));
    let out = run.json();
    let uploads = emu.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].product_version, "v2");
    assert_eq!(uploads[0].kind, "tiff");
    assert_eq!(uploads[0].content_type.as_deref(), Some("image/tiff"));
    assert_eq!(uploads[0].bytes, tiff);
    assert!(emu.v2_polls() >= 2, "Processing, then Processed");

    let sample: Value = serde_json::from_str(FINDOC_COMPLETE).unwrap();
    let fields = &sample["inference"]["result"]["fields"];
    assert_eq!(out["model"], format!("mindee v2 model {MODEL}"));
    assert_eq!(out["provider_document_id"], sample["inference"]["id"]);
    assert_eq!(out["date"], fields["date"]["value"]);
    assert_eq!(out["total_incl_tax"], fields["total_amount"]["value"]);
    assert_eq!(out["total_excl_tax"], fields["total_net"]["value"]);
    assert_eq!(out["total_tax"], fields["total_tax"]["value"]);
    assert_eq!(out["supplier"]["name"], fields["supplier_name"]["value"]);
    assert_eq!(
        out["currency"],
        fields["locale"]["fields"]["currency"]["value"]
    );
    assert_eq!(out["taxes"][0]["rate_percent"], 5.0);
    assert_eq!(
        out["line_items"].as_array().unwrap().len(),
        fields["line_items"]["items"].as_array().unwrap().len()
    );
    assert_eq!(out["confidence"]["total_incl_tax"], 0.8);
    assert_eq!(out["recorded_by"], "svc-ocr");
}

#[test]
fn v2_refuses_a_v1_key_and_a_v1_header() {
    let emu = emulator_v2();
    // A platform.mindee.com (v1) key on a v2 instance: Mindee's own 401.
    let env = configured_v2(&emu, KEY);
    env.ok(&["config", "set", "m", "model_id", MODEL]);
    env.ok(&["config", "enable", "m"]);
    let report = test_report(&env, 1);
    let auth = step(&report, "authenticate");
    assert_eq!(auth["status"], "failed", "{report:#}");
    let detail = auth["detail"].as_str().unwrap();
    assert!(
        detail.contains("Invalid API key: The provided API key is invalid. [401-001]"),
        "{detail}"
    );
    let run = ocr(&env, &receipt_input("r.jpg", &sample_jpeg(16, 16)));
    assert_ne!(run.code, Some(0));
    assert!(
        run.all().contains("Mindee refused the API key"),
        "{}",
        run.all()
    );
    no_secret(&run);
    assert!(emu.uploads().is_empty());

    // The key pasted with v1's `Token ` prefix is refused when saved, before any request.
    let before = emu.request_count();
    let run = env.run_with_stdin(
        &["config", "set", "m", "token", "--stdin"],
        Some(&format!("Token {V2_KEY}\n")),
    );
    assert_ne!(run.code, Some(0));
    assert!(
        run.all().contains("without the `Token ` prefix"),
        "{}",
        run.all()
    );
    assert!(!run.all().contains(V2_KEY));
    assert_eq!(emu.request_count(), before);
}
