//! The plugin's entry points (test routine, `ocr.expense_receipt`) run in-process through its
//! real root module, with the real `tesseract` program, on receipt images rendered by the
//! test with ImageMagick: clean ones, whose totals and date must be read exactly, and
//! rotated, noisy ones, on which a value may be missing but never wrong.
//!
//! Needs `tesseract` (with `fra` and `eng`), ImageMagick's `convert` and the DejaVu fonts:
//! `apt-get install -y tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng imagemagick
//! fonts-dejavu-core`. A missing tool fails the test with that command, rather than
//! skipping it.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use passerelle_ocr_tesseract::TesseractOcr;
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::testing::{self, ScriptedHost};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

const INSTALL: &str = "apt-get install -y tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng \
                       imagemagick fonts-dejavu-core";

fn config() -> Value {
    json!({"erp_user": "svc-ocr"})
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// Monospaced, as thermal receipt printers print.
const MONO: &str = "DejaVu-Sans-Mono";
/// Proportional, as laser-printed bills.
const SANS: &str = "DejaVu-Sans";

/// Renders receipt text as an image in `font`, 28 pt, black on white; `noisy` rotates it
/// by 1.5° and adds Gaussian noise, as a phone photo of a flat receipt.
fn render_in(font: &str, text: &str, noisy: bool, format: &str) -> Vec<u8> {
    let lines = text.lines().count();
    let mut cmd = Command::new("convert");
    cmd.arg("-size")
        .arg(format!("900x{}", 60 + 40 * lines))
        .args(["xc:white", "-font", font, "-pointsize", "28"])
        .args(["-fill", "black", "-annotate", "+40+50"])
        // `%` starts an escape in ImageMagick's text.
        .arg(text.replace('%', "%%"));
    if noisy {
        cmd.args(["-background", "white", "-rotate", "1.5"])
            // A fixed seed: the same noise on every run.
            .args(["-seed", "7", "-attenuate", "0.6", "+noise", "Gaussian"]);
    }
    cmd.args(["-colorspace", "Gray", "-quality", "90"])
        .arg(format!("{format}:-"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run ImageMagick's convert ({e}): {INSTALL}"));
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "convert failed: {}\n{INSTALL}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn render(text: &str, noisy: bool, format: &str) -> Vec<u8> {
    render_in(MONO, text, noisy, format)
}

fn input(name: &str, bytes: &[u8]) -> ReceiptDocument {
    ReceiptDocument {
        file_name: Some(name.to_owned()),
        content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

fn read(bytes: &[u8], config: Value) -> Result<ExpenseReceipt, PluginError> {
    let host = ScriptedHost::new();
    let out = testing::invoke::<TesseractOcr, ExpenseReceiptOcr>(
        &input("receipt.png", bytes),
        config,
        &host,
    );
    assert!(
        host.requests().is_empty(),
        "the local engine sent HTTP requests"
    );
    out
}

fn step<'a>(report: &'a TestReport, name: &str) -> &'a Step {
    report
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}: {report:#?}"))
}

const BAKERY: &str = "BOULANGERIE DU MARCHE
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

const BRASSERIE: &str = "Brasserie Le Petit Zinc
8 place du Marché
69002 Lyon
Tél. 04 78 42 11 90
SIRET 552 100 554 00021
TVA intracom. FR 96 552100554
Le 12 mars 2026 à 20h45
Table 7 - 2 couverts
2 Menu du jour        37,00
1 Vin rouge 25cl       6,50
1 Café                 2,20
Taux     HT      TVA     TTC
10,00%   41,55   4,15    45,70
Net à payer           45,70 €
CB sans contact       45,70
Merci et à bientôt";

const GROCERY: &str = "EPICERIE DES LILAS
45 avenue Jean Jaures
75019 Paris
Ticket 0042   Caisse 3
Lait demi-ecreme       1,15
Pommes 1kg             2,90
Pain de mie            1,80
TOTAL                  5,85 EUR
TVA 5,50%  HT 5,55  TVA 0,30
CB EMV                 5,85
07.01.26  18:02:33";

const CAFE: &str = "THE CORNER CAFE
12 High Street, London
2026-01-15 09:05
Flat white          3.20
Croissant           2.10
Total              £5.30
VAT 20%             0.88
Thank you for your visit";

/// What each receipt must give, clean.
struct Expected {
    text: &'static str,
    date: &'static str,
    time: &'static str,
    total_incl: f64,
    total_excl: Option<f64>,
    total_tax: f64,
    currency: &'static str,
}

const RECEIPTS: [Expected; 4] = [
    Expected {
        text: BAKERY,
        date: "2026-03-12",
        time: "14:35",
        total_incl: 5.40,
        total_excl: Some(4.91),
        total_tax: 0.49,
        currency: "EUR",
    },
    Expected {
        text: BRASSERIE,
        date: "2026-03-12",
        time: "20:45",
        total_incl: 45.70,
        total_excl: Some(41.55),
        total_tax: 4.15,
        currency: "EUR",
    },
    Expected {
        text: GROCERY,
        date: "2026-01-07",
        time: "18:02",
        total_incl: 5.85,
        total_excl: Some(5.55),
        total_tax: 0.30,
        currency: "EUR",
    },
    Expected {
        text: CAFE,
        date: "2026-01-15",
        time: "09:05",
        total_incl: 5.30,
        total_excl: None,
        total_tax: 0.88,
        currency: "GBP",
    },
];

#[test]
fn the_test_routine_finds_the_engine_and_reads_its_own_receipt() {
    let report = testing::test::<TesseractOcr>(config(), &ScriptedHost::new());
    testing::assert_report_translated::<TesseractOcr>(&report, "fr");
    assert_eq!(report.status, Status::Ok, "{report:#?}\n{INSTALL}");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "configuration",
            "find engine",
            "check version",
            "languages",
            "self-check"
        ]
    );
    assert!(step(&report, "find engine")
        .detail
        .starts_with("tesseract "));
    assert!(step(&report, "languages")
        .detail
        .contains("fra, eng installed"));
    let check = &step(&report, "self-check").detail;
    assert!(
        check.contains("total 42.50, date 2026-03-12"),
        "{report:#?}"
    );
    assert!(report.summary.contains("reads receipts on this machine"));
}

#[test]
fn the_self_check_holds_in_every_page_segmentation_mode() {
    for mode in ["auto", "single_block", "sparse_text"] {
        let report = testing::test::<TesseractOcr>(
            with(config(), json!({"page_segmentation": mode})),
            &ScriptedHost::new(),
        );
        assert_eq!(report.status, Status::Ok, "{mode}: {report:#?}");
    }
}

#[test]
fn a_missing_language_is_named_with_its_package() {
    let report = testing::test::<TesseractOcr>(
        with(config(), json!({"languages": "fra+klingon"})),
        &ScriptedHost::new(),
    );
    testing::assert_report_translated::<TesseractOcr>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    let languages = step(&report, "languages");
    assert_eq!(languages.status, Status::Failed);
    assert!(
        languages.detail.contains("klingon not installed")
            && languages.detail.contains("tesseract-ocr-klingon"),
        "{}",
        languages.detail
    );
    assert_eq!(step(&report, "self-check").status, Status::Skipped);
    // Reading with it fails too, saying what to install.
    let e = read(
        &render("TOTAL 1,00", false, "png"),
        with(config(), json!({"languages": "klingon"})),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Upstream);
    assert!(e.message.contains("not installed"), "{}", e.message);
}

#[test]
fn an_engine_path_that_does_not_exist_is_reported_on_its_field() {
    let report = testing::test::<TesseractOcr>(
        with(config(), json!({"engine_path": "/opt/nowhere/tesseract"})),
        &ScriptedHost::new(),
    );
    assert_eq!(report.status, Status::Failed);
    let found = step(&report, "find engine");
    assert!(
        found
            .detail
            .contains("/opt/nowhere/tesseract does not exist"),
        "{}",
        found.detail
    );
    for skipped in ["check version", "languages", "self-check"] {
        assert_eq!(step(&report, skipped).status, Status::Skipped);
    }
    let e = read(
        &render("TOTAL 1,00", false, "png"),
        with(config(), json!({"engine_path": "/opt/nowhere/tesseract"})),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("engine_path"));
}

/// A stand-in engine: a shell script in a fresh directory.
#[cfg(unix)]
fn fake_engine(dir: &std::path::Path, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("tesseract");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

#[cfg(unix)]
#[test]
fn an_old_engine_is_refused_and_a_stuck_one_is_stopped() {
    let dir = std::env::temp_dir().join(format!("passerelle-ocr-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let old = fake_engine(&dir, "echo 'tesseract 3.05.02'");
    let report = testing::test::<TesseractOcr>(
        with(config(), json!({"engine_path": old})),
        &ScriptedHost::new(),
    );
    let version = step(&report, "check version");
    assert_eq!(version.status, Status::Failed);
    assert!(version.detail.contains("too old"), "{}", version.detail);

    // Answers its version, then notes the image it was given and hangs.
    let seen = dir.join("image-path");
    let stuck = fake_engine(
        &dir,
        &format!(
            "case \"$1\" in --version) echo 'tesseract 5.3.0';; *) echo \"$1\" > '{}'; exec sleep 30;; esac",
            seen.display()
        ),
    );
    let started = std::time::Instant::now();
    let e = read(
        &render("TOTAL 1,00", false, "png"),
        with(config(), json!({"engine_path": stuck, "timeout_secs": 5})),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e:?}");
    assert!(e.message.contains("5 s"), "{}", e.message);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // The engine was given a private temporary copy, gone once the call ended.
    let image = std::fs::read_to_string(&seen).unwrap();
    let image = std::path::Path::new(image.trim());
    assert!(
        image.starts_with(std::env::temp_dir()),
        "{}",
        image.display()
    );
    assert!(!image.exists(), "{} was left behind", image.display());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn clean_receipts_give_their_totals_and_date_exactly() {
    for expected in &RECEIPTS {
        let r = read(&render(expected.text, false, "png"), config()).unwrap();
        check_clean(expected, &r);
    }
}

#[test]
fn clean_receipts_in_a_proportional_font_too() {
    for expected in &RECEIPTS[..2] {
        let r = read(&render_in(SANS, expected.text, false, "png"), config()).unwrap();
        check_clean(expected, &r);
    }
}

fn check_clean(expected: &Expected, r: &ExpenseReceipt) {
    let first = expected.text.lines().next().unwrap();
    assert_eq!(r.date.as_deref(), Some(expected.date), "{first}: {r:#?}");
    assert_eq!(r.time.as_deref(), Some(expected.time), "{first}: {r:#?}");
    assert_eq!(
        r.total_incl_tax,
        Some(expected.total_incl),
        "{first}: {r:#?}"
    );
    assert_eq!(r.total_excl_tax, expected.total_excl, "{first}: {r:#?}");
    assert_eq!(r.total_tax, Some(expected.total_tax), "{first}: {r:#?}");
    assert_eq!(r.currency.as_deref(), Some(expected.currency), "{first}");
    assert_eq!(r.provider, "tesseract");
    assert!(r.model.starts_with("tesseract ") && r.model.ends_with("(fra+eng, psm 4)"));
    assert_eq!(r.pages, 1);
    assert_eq!(r.recorded_by, "svc-ocr");
    for field in [
        "date",
        "time",
        "total_incl_tax",
        "currency",
        "supplier.name",
    ] {
        let c = r.confidence[field];
        assert!((0.5..=1.0).contains(&c), "{first}: {field} confidence {c}");
    }
}

#[test]
fn the_brasserie_receipt_in_detail() {
    let r = read(&render_in(SANS, BRASSERIE, false, "jpg"), config()).unwrap();
    assert_eq!(r.supplier.name.as_deref(), Some("Brasserie Le Petit Zinc"));
    assert_eq!(
        r.supplier.address.as_deref(),
        Some("8 place du Marché, 69002 Lyon")
    );
    assert_eq!(r.supplier.phone.as_deref(), Some("04 78 42 11 90"));
    let regs: Vec<(&str, &str)> = r
        .supplier
        .registrations
        .iter()
        .map(|g| (g.kind.as_deref().unwrap(), g.value.as_str()))
        .collect();
    assert_eq!(
        regs,
        [("SIRET", "55210055400021"), ("VAT NUMBER", "FR96552100554")]
    );
    assert_eq!(r.taxes.len(), 1);
    let tax = &r.taxes[0];
    assert_eq!(
        (tax.rate_percent, tax.base, tax.amount),
        (Some(10.0), Some(41.55), Some(4.15))
    );
    let items: Vec<(&str, Option<f64>, Option<f64>)> = r
        .line_items
        .iter()
        .map(|i| {
            (
                i.description.as_deref().unwrap(),
                i.quantity,
                i.total_amount,
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            ("Menu du jour", Some(2.0), Some(37.0)),
            ("Vin rouge 25cl", Some(1.0), Some(6.5)),
            ("Café", Some(1.0), Some(2.2))
        ]
    );
    assert_eq!(r.language.as_deref(), Some("fr"));
    assert_eq!(r.country.as_deref(), Some("FR"));
}

#[test]
fn rotated_noisy_receipts_miss_values_but_never_invent_them() {
    let mut read_totals = 0;
    for expected in &RECEIPTS {
        let first = expected.text.lines().next().unwrap();
        let r = read(&render(expected.text, true, "png"), config()).unwrap();
        assert!(
            r.date.is_none() || r.date.as_deref() == Some(expected.date),
            "{first}: {r:#?}"
        );
        assert!(
            r.total_incl_tax.is_none() || r.total_incl_tax == Some(expected.total_incl),
            "{first}: {r:#?}"
        );
        assert!(
            r.total_tax.is_none() || r.total_tax == Some(expected.total_tax),
            "{first}: {r:#?}"
        );
        if r.total_incl_tax.is_some() && r.date.is_some() {
            read_totals += 1;
        }
    }
    // At this level of noise the engine still reads most of them.
    assert!(read_totals >= 3, "only {read_totals} noisy receipts read");
}

#[test]
fn the_minimum_confidence_empties_values_and_keeps_their_confidence() {
    let r = read(
        &render(BAKERY, false, "png"),
        with(config(), json!({"min_confidence": 100})),
    )
    .unwrap();
    assert_eq!(r.total_incl_tax, None);
    assert_eq!(r.date, None);
    assert!(r.confidence["total_incl_tax"] > 0.5);
    assert!(r.taxes.is_empty() && r.line_items.is_empty());
}

#[test]
fn documents_the_engine_cannot_read_are_refused_before_it_runs() {
    let e = read(b"%PDF-1.4\n%...", config()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert_eq!(e.field.as_deref(), Some("content_base64"));
    assert!(e.message.contains("PDF"), "{}", e.message);
    let e = read(b"", config()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    let e = read(
        &render(BAKERY, false, "png"),
        with(config(), json!({"ocr_enabled": false})),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("ocr_enabled"));
    let e = read(&render(BAKERY, false, "png"), json!({})).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("erp_user"));
}

#[test]
fn the_manifest_serves_the_mindee_capability() {
    let host = ScriptedHost::new();
    let manifest = testing::manifest::<TesseractOcr>().expect("the exported manifest");
    assert_eq!(manifest.id, "ocr-tesseract");
    assert_eq!(manifest.category, Category::Ocr);
    assert_eq!(manifest.capabilities, ["ocr.expense_receipt"]);
    assert!(manifest.check().is_ok());
    let schema = testing::schema::<TesseractOcr>();
    assert_eq!(schema["properties"]["erp_user"]["x-group"], "erp");
    let e = testing::invoke::<TesseractOcr, CompanyLookup>(
        &CompanyQuery { id: "1".into() },
        config(),
        &host,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

#[test]
fn the_french_catalog_translates_the_whole_schema() {
    testing::assert_catalog_complete::<TesseractOcr>("fr");
}
