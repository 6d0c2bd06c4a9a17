//! # passerelle-ocr-tesseract
//!
//! Passerelle plugin that reads expense receipts on this machine with the Tesseract OCR
//! engine, offline: it serves `ocr.expense_receipt`, the capability the Mindee plugin
//! serves, with the same input and output types, so that an ERP switches from Mindee to
//! local OCR by configuration only (disable one instance, enable the other).
//!
//! This file only wires the plugin together; each concern has its module: [`document`]
//! checks the file (type by content, size), [`engine`] runs the `tesseract` program (the
//! documented exception to "all I/O through the host", see there why a program and not a
//! library), [`tsv`] reads its output, [`text`] reads values out of words, [`extract`]
//! turns lines into an [`ExpenseReceipt`], [`selfcheck`] draws the test routine's image
//! and [`config`] holds the instance settings.

pub mod config;
pub mod document;
pub mod engine;
pub mod extract;
pub mod selfcheck;
pub mod text;
pub mod tsv;

pub use config::Config;
use engine::Engine;
use passerelle_plugin_api::prelude::*;
use std::time::Instant;

/// The oldest Tesseract major version read well: 4 brought the neural (LSTM) recogniser.
pub const MIN_MAJOR_VERSION: u32 = 4;

/// The Tesseract expense receipts plugin.
#[derive(Debug)]
pub struct TesseractOcr;

impl Plugin for TesseractOcr {
    type Config = Config;

    const LOCALES: &'static [(&'static str, &'static str)] =
        &[("fr", include_str!("../locales/fr.ftl"))];

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "ocr-tesseract",
            "Tesseract expense receipts (local OCR)",
            env!("CARGO_PKG_VERSION"),
            Category::Ocr,
        );
        m.description = "Reads expense receipts (JPEG, PNG, WebP, TIFF) on this machine with the \
                         Tesseract OCR engine, without sending them anywhere"
            .to_owned();
        m
    }

    fn validate(config: &Config) -> Vec<PluginError> {
        config.problems()
    }

    fn test(config: &Config, _host: &Host<'_>) -> TestReport {
        test_routine(config)
    }

    fn operations(ops: &mut Operations<Self>) {
        ops.serve::<ExpenseReceiptOcr>(|input, config, host| read_receipt(&input, config, host));
    }
}

fn engine(config: &Config) -> Engine {
    Engine::new(
        config.program(),
        config.engine_path().is_some(),
        config.timeout(),
    )
}

/// `tesseract 5.3.0 (fra+eng, psm 4)`: what read the receipt, for support.
fn model(version: &str, config: &Config) -> String {
    format!(
        "tesseract {version} ({}, psm {})",
        config.languages_arg(),
        config.page_segmentation.psm()
    )
}

/// `ocr.expense_receipt`: checks the switch, the configuration and the document, then
/// runs the engine and reads the fields.
fn read_receipt(
    input: &ReceiptDocument,
    config: &Config,
    host: &Host<'_>,
) -> Result<ExpenseReceipt, PluginError> {
    if !config.ocr_enabled {
        return Err(PluginError::config(
            "ocr_enabled",
            "OCR is switched off for this instance (OCR active): switch it on to read receipts",
        ));
    }
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let document = document::prepare(input)?;
    let engine = engine(config);
    let version = engine.version()?;
    let model = model(&version, config);
    host.log(
        LogLevel::Info,
        format!(
            "reading {} ({}, {} bytes) with {model}",
            document.file_name,
            document.format.name(),
            document.bytes.len()
        ),
    );
    let started = Instant::now();
    let reading = engine.read(
        &document.bytes,
        document.format.extension(),
        &config.languages_arg(),
        config.page_segmentation.psm(),
    )?;
    host.log(
        LogLevel::Debug,
        format!(
            "{} read {} lines on {} page(s) in {} ms",
            document.file_name,
            reading.lines.len(),
            reading.pages.max(1),
            started.elapsed().as_millis()
        ),
    );
    Ok(extract::receipt(
        &reading,
        &extract::Options {
            model,
            min_confidence: config.min_confidence(),
            recorded_by: config.erp_user(),
        },
    ))
}

/// The test routine: the engine is found and recent enough, the configured languages are
/// installed, and a receipt drawn on the spot is read back exactly with this instance's
/// settings.
fn test_routine(config: &Config) -> TestReport {
    let mut report = TestReport::new();
    let ready = report.step("configuration", || {
        if let Some(problem) = config.problems().into_iter().next() {
            return Err(problem.message);
        }
        let what = format!(
            "languages {}, page segmentation {} (psm {}), minimum confidence {} %, expenses \
             recorded as {}",
            config.languages_arg(),
            serde_json::to_value(config.page_segmentation)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            config.page_segmentation.psm(),
            config.min_confidence,
            if config.erp_user().is_empty() {
                "nobody (OCR is off)"
            } else {
                config.erp_user()
            }
        );
        Ok(if config.ocr_enabled {
            Check::ok((), what)
        } else {
            Check::warning(
                (),
                format!(
                    "OCR is switched off (OCR active): receipts will not be read until it is \
                     switched on; {what}"
                ),
            )
        })
    });
    if ready.is_none() {
        return report.finish("");
    }

    let engine = engine(config);
    let where_ = match config.engine_path() {
        Some(path) => path.to_owned(),
        None => "the PATH".to_owned(),
    };
    let Some(version) = report.step("find engine", || {
        engine
            .version()
            .map(|v| Check::ok(v.clone(), format!("tesseract {v} found on {where_}")))
            .map_err(|e| e.message)
    }) else {
        report.skip("check version", "the engine was not found");
        report.skip("languages", "the engine was not found");
        report.skip("self-check", "the engine was not found");
        return report.finish("");
    };

    let recent = report.step("check version", || match engine::major_version(&version) {
        Some(major) if major >= MIN_MAJOR_VERSION => Ok(Check::ok(
            (),
            format!("Tesseract {version} reads with its neural recogniser"),
        )),
        Some(_) => Err(format!(
            "Tesseract {version} is too old: version {MIN_MAJOR_VERSION} or newer is needed \
                 (Debian 10 and later ship it: apt-get install tesseract-ocr)"
        )),
        None => Ok(Check::warning(
            (),
            format!(
                "cannot tell whether Tesseract {version:?} is version {MIN_MAJOR_VERSION} or newer"
            ),
        )),
    });
    if recent.is_none() {
        report.skip("languages", "the engine is too old");
        report.skip("self-check", "the engine is too old");
        return report.finish("");
    }

    let installed = report.step("languages", || {
        let languages = engine.languages().map_err(|e| e.message)?;
        let wanted = config.language_list();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| !languages.codes.iter().any(|c| c == w))
            .collect();
        let place = languages
            .data_dir
            .as_deref()
            .map(|d| format!(" in {d}"))
            .unwrap_or_default();
        if missing.is_empty() {
            Ok(Check::ok(
                (),
                format!(
                    "{} installed{place} (all installed: {})",
                    wanted.join(", "),
                    languages.codes.join(", ")
                ),
            ))
        } else {
            Err(format!(
                "{} not installed{place} (installed: {}): install {} (Debian package names) or \
                 change Languages (languages)",
                missing.join(", "),
                if languages.codes.is_empty() {
                    "none".to_owned()
                } else {
                    languages.codes.join(", ")
                },
                missing
                    .iter()
                    .map(|m| format!("tesseract-ocr-{}", m.to_lowercase().replace('_', "-")))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
        }
    });
    if installed.is_none() {
        report.skip("self-check", "a configured language is missing");
        return report.finish("");
    }

    let checked = report.step("self-check", || self_check(&engine, config));
    if checked.is_none() {
        return report.finish("");
    }
    report.finish(
        Text::localized(
            "summary-ok",
            format!(
                "Tesseract {version} reads receipts on this machine ({}, psm {})",
                config.languages_arg(),
                config.page_segmentation.psm()
            ),
        )
        .arg("version", version.to_string())
        .arg("languages", config.languages_arg().to_string())
        .arg("psm", config.page_segmentation.psm().to_string()),
    )
}

/// Reads the drawn receipt with this instance's settings and compares.
fn self_check(engine: &Engine, config: &Config) -> Result<Check<()>, String> {
    let image = selfcheck::image(&selfcheck::LINES);
    let started = Instant::now();
    let reading = engine
        .read(
            &image,
            "pgm",
            &config.languages_arg(),
            config.page_segmentation.psm(),
        )
        .map_err(|e| e.message)?;
    let elapsed = started.elapsed().as_millis();
    let receipt = extract::receipt(
        &reading,
        &extract::Options {
            model: String::new(),
            min_confidence: 0.0,
            recorded_by: "",
        },
    );
    let text = reading.text().replace('\n', " | ");
    let digits_read = reading
        .lines
        .iter()
        .any(|l| l.text().replace(' ', "") == selfcheck::LINES[2]);
    let total_ok = receipt.total_incl_tax == Some(selfcheck::TOTAL);
    let date_ok = receipt.date.as_deref() == Some(selfcheck::DATE);
    if !(total_ok && date_ok) {
        return Err(format!(
            "the engine misread a generated receipt (expected total 42.50 and date {}; read \
             {:?}): check the language data, or try another page segmentation",
            selfcheck::DATE,
            text
        ));
    }
    let confidence = reading
        .lines
        .iter()
        .flat_map(|l| &l.words)
        .map(|w| w.confidence)
        .fold(1.0, f64::min);
    let detail = format!(
        "read a generated receipt in {elapsed} ms: total 42.50, date {}, lowest word \
         confidence {:.0} %",
        selfcheck::DATE,
        confidence * 100.0
    );
    Ok(if digits_read {
        Check::ok((), detail)
    } else {
        Check::warning(
            (),
            format!("{detail}; but the digits line read {text:?} instead of 0123456789"),
        )
    })
}

export_plugin!(TesseractOcr);
