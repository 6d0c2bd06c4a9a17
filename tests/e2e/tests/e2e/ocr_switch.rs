//! Replacing a provider is configuration only: the real `passerelle` binary loads the real
//! Mindee and Tesseract plugin files; the ERP's call (`invoke ocr.expense_receipt` or
//! `ocr <file>`, no instance named) is answered by Mindee (its emulator), then, after one
//! instance is disabled and the other enabled, by the local engine, with the same output
//! shape and the same ERP user recorded. Also: the Tesseract plugin's committed schema, its test routine
//! through the host, and its refusals' exit codes.
//!
//! Needs `tesseract` (fra, eng), ImageMagick's `convert` and the DejaVu fonts, as the
//! plugin's own tests.

// Test code: a failed unwrap is a failed test, with its location.

use passerelle_e2e::TestEnv;
use passerelle_emulators::mindee::{receipt_input, MindeeEmulator, MindeeOptions};
use serde_json::{Map, Value};
use std::process::{Command, Stdio};

const KEY: &str = "canary-mindee-key-switch-91f3";
const ERP_PASSWORD: &str = "canary-erp-password-switch-27c0";
const OP: &str = "ocr.expense_receipt";
const ERP_USER: &str = "svc-ocr";

const RECEIPT: &str = "BOULANGERIE DU MARCHE
12 rue de la Paix
75002 Paris
SIRET 732 829 320 00074
Date: 12/03/2026  14:35
Baguette                1,20
Croissant x2            2,40
Cafe                    1,80
TOTAL HT                4,91
TVA 10,00%              0,49
TOTAL TTC               5,40 EUR
Merci de votre visite";

/// The receipt as a phone would send it: a PNG rendered by ImageMagick.
fn receipt_png() -> Vec<u8> {
    let out = Command::new("convert")
        .args(["-size", "900x560", "xc:white", "-font", "DejaVu-Sans-Mono"])
        .args(["-pointsize", "28", "-fill", "black", "-annotate", "+40+50"])
        .arg(RECEIPT.replace('%', "%%"))
        .args(["-colorspace", "Gray", "png:-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("ImageMagick's convert (apt-get install imagemagick fonts-dejavu-core)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Both plugins installed: `mindee` enabled against the emulator, `local` configured but
/// disabled, as an ERP that prepared its switch.
fn host(emu: &MindeeEmulator) -> TestEnv {
    let env = TestEnv::with_plugins(&["passerelle_ocr_mindee", "passerelle_ocr_tesseract"]);
    env.ok(&["config", "create", "mindee", "--plugin", "ocr-mindee"]);
    env.ok(&["config", "set", "mindee", "api_version", "v1"]);
    env.ok(&["config", "set", "mindee", "url", &emu.api_url()]);
    env.run_with_stdin(&["config", "set", "mindee", "token", "--stdin"], Some(KEY))
        .expect_code(0);
    env.ok(&["config", "set", "mindee", "erp_user", ERP_USER]);
    env.run_with_stdin(
        &["config", "set", "mindee", "erp_password", "--stdin"],
        Some(ERP_PASSWORD),
    )
    .expect_code(0);
    env.ok(&["config", "enable", "mindee"]);

    env.ok(&["config", "create", "local", "--plugin", "ocr-tesseract"]);
    env.ok(&["config", "set", "local", "erp_user", ERP_USER]);
    env
}

/// The ERP's call: the capability, never the provider.
fn ocr(env: &TestEnv, input: &Value) -> Value {
    env.ok(&["invoke", OP, "--input", &input.to_string()])
        .json()
}

/// Where `before` and `after` differ in shape: keys of objects, kinds of values. `null`
/// fits any kind (a field one provider could not read); lists compare their items.
fn shape_differences(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(a), Value::Object(b)) => {
            let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            // `confidence` is keyed by the fields each provider found: its keys may differ.
            if keys(a) != keys(b) && path != ".confidence" {
                out.push(format!("{path}: keys {:?} vs {:?}", keys(a), keys(b)));
            }
            for (k, v) in a {
                if let Some(w) = b.get(k) {
                    shape_differences(&format!("{path}.{k}"), v, w, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                shape_differences(&format!("{path}[]"), x, y, out);
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        (a, b) => out.push(format!("{path}: {a} vs {b}")),
    }
}

#[test]
fn switching_from_mindee_to_tesseract_is_configuration_only() {
    let emu = MindeeEmulator::start(MindeeOptions {
        api_key: KEY.to_owned(),
        ..MindeeOptions::default()
    })
    .unwrap();
    let env = host(&emu);
    let png = receipt_png();
    let input = receipt_input("ticket.png", &png);

    // Both serve the capability; only one is enabled.
    let plugins = env.ok(&["plugins", "--json"]).json();
    let serving: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == OP)
        })
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(serving.len(), 2, "{plugins:#}");

    let before = ocr(&env, &input);
    assert_eq!(before["provider"], "mindee");
    assert_eq!(emu.request_count(), 1);
    assert_eq!(emu.uploads()[0].bytes, png, "Mindee got the ERP's file");

    // The switch: two configuration commands, nothing else changes.
    env.ok(&["config", "disable", "mindee"]);
    env.ok(&["config", "enable", "local"]);

    let after = ocr(&env, &input);
    assert_eq!(after["provider"], "tesseract");
    assert_eq!(emu.request_count(), 1, "the local engine called Mindee");
    let mut differences = Vec::new();
    shape_differences("", &before, &after, &mut differences);
    assert!(
        differences.is_empty(),
        "the output changed shape:\n{}\n--- before\n{before:#}\n--- after\n{after:#}",
        differences.join("\n")
    );
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&before), keys(&after));
    assert_eq!(keys(&before["supplier"]), keys(&after["supplier"]));
    // The local engine read this receipt; Mindee's emulator answered its sample.
    assert_eq!(after["date"], "2026-03-12");
    assert_eq!(after["time"], "14:35");
    assert_eq!(after["total_incl_tax"], 5.4);
    assert_eq!(after["total_excl_tax"], 4.91);
    assert_eq!(after["total_tax"], 0.49);
    assert_eq!(after["currency"], "EUR");
    assert_eq!(after["taxes"][0]["rate_percent"], 10.0);
    assert_eq!(
        after["supplier"]["registrations"][0]["value"],
        "73282932000074"
    );
    assert_eq!(before["recorded_by"], ERP_USER);
    assert_eq!(after["recorded_by"], ERP_USER);
    for v in [&before, &after] {
        for c in v["confidence"].as_object().unwrap().values() {
            assert!((0.0..=1.0).contains(&c.as_f64().unwrap()), "{v:#}");
        }
    }

    // The ERP's other door, `passerelle ocr <file>`, is answered by the local engine too.
    let file = env.root.path().join("ticket.png");
    std::fs::write(&file, &png).unwrap();
    let file = file.to_str().unwrap();
    let printed = env.ok(&["ocr", file, "--json"]).json();
    assert_eq!(printed["provider"], "tesseract");
    assert_eq!(printed["total_incl_tax"], after["total_incl_tax"]);
    env.ok(&["ocr", file])
        .expect_output("BOULANGERIE DU MARCHE")
        .expect_output("2026-03-12 14:35")
        .expect_output("5.40 EUR");
    assert_eq!(emu.request_count(), 1);

    // Both enabled: the host refuses to guess, naming both.
    env.ok(&["config", "enable", "mindee"]);
    let ambiguous = env
        .run(&["invoke", OP, "--input", &input.to_string()])
        .expect_code(3);
    assert!(
        ambiguous.stderr.contains("mindee") && ambiguous.stderr.contains("local"),
        "{}",
        ambiguous.stderr
    );
    // And back: disabling the local one returns to Mindee, through both doors.
    env.ok(&["config", "disable", "local"]);
    assert_eq!(ocr(&env, &input)["provider"], "mindee");
    assert_eq!(
        env.ok(&["ocr", file, "--json"]).json()["provider"],
        "mindee"
    );
    assert_eq!(emu.request_count(), 3);
    for secret in [KEY, ERP_PASSWORD] {
        assert!(
            !env.data_dump().contains(secret),
            "a secret is stored in clear"
        );
    }
}

#[test]
fn the_test_routine_runs_the_engine_through_the_host() {
    let env = TestEnv::with_plugins(&["passerelle_ocr_tesseract"]);
    env.ok(&["config", "create", "local", "--plugin", "ocr-tesseract"]);
    // Incomplete: the ERP user is required while OCR is active.
    let refused = env.run(&["config", "enable", "local"]).expect_code(3);
    assert!(refused.stderr.contains("erp_user"), "{}", refused.stderr);
    env.ok(&["config", "set", "local", "erp_user", ERP_USER]);
    env.run(&["config", "set", "local", "page_segmentation", "6"])
        .expect_code(3);
    env.ok(&["config", "set", "local", "page_segmentation", "sparse_text"]);
    env.ok(&["config", "enable", "local"]);

    let report = env.ok(&["test", "local", "--json"]).json();
    assert_eq!(report["status"], "ok", "{report:#}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "configuration",
            "find engine",
            "check version",
            "languages",
            "self-check"
        ]
    );
    env.ok(&["test", "local"]).expect_output("self-check");

    // A language that is not installed fails the routine, with exit code 1.
    env.ok(&["config", "set", "local", "languages", "fra+klingon"]);
    let failed = env.run(&["test", "local", "--json"]).expect_code(1).json();
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["summary"]
            .as_str()
            .unwrap()
            .contains("tesseract-ocr-klingon"),
        "{failed:#}"
    );
}

#[test]
fn documents_the_engine_cannot_read_are_refused_as_invalid_input() {
    let env = TestEnv::with_plugins(&["passerelle_ocr_tesseract"]);
    env.ok(&["config", "create", "local", "--plugin", "ocr-tesseract"]);
    env.ok(&["config", "set", "local", "erp_user", ERP_USER]);
    env.ok(&["config", "enable", "local"]);
    let pdf = receipt_input("ticket.pdf", b"%PDF-1.4\n%%EOF\n");
    let refused = env
        .run(&["invoke", OP, "--input", &pdf.to_string()])
        .expect_code(3);
    assert!(refused.stderr.contains("PDF"), "{}", refused.stderr);
}
