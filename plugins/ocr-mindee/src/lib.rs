//! # passerelle-ocr-mindee
//!
//! Passerelle plugin for Mindee's expense receipts OCR (API v1, product
//! `mindee/expense_receipts` v5, v4 accepted): serves `ocr.expense_receipt`, which turns a
//! photo or scan of a receipt into the fields of an expense for the ERP's expense portal and
//! mobile app.
//!
//! This file only wires the plugin together; each concern has its module: [`document`]
//! checks the file (type by content, size and page limits) before any request, [`multipart`]
//! builds the upload, [`client`] talks to Mindee and gives HTTP outcomes their meaning,
//! [`mapping`] turns the prediction into an [`ExpenseReceipt`], and [`config`] holds the
//! instance settings. All network access goes through the host.

pub mod client;
pub mod config;
pub mod document;
pub mod mapping;
pub mod multipart;

use client::{ApiError, Client};
pub use config::Config;
use passerelle_plugin_api::prelude::*;

/// The Mindee expense receipts plugin.
#[derive(Debug)]
pub struct MindeeOcr;

impl Plugin for MindeeOcr {
    type Config = Config;

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "ocr-mindee",
            "Mindee expense receipts",
            env!("CARGO_PKG_VERSION"),
            Category::Ocr,
        );
        m.description =
            "Reads expense receipts (JPEG, PNG, WebP, HEIC, PDF) with Mindee's OCR".to_owned();
        m.capabilities = vec![ExpenseReceiptOcr::NAME.to_owned()];
        // Mindee API v1's documented limits: 4 requests per second, 75 per minute.
        m.quotas = Quotas {
            per_second: Some(4),
            per_minute: Some(75),
            ..Quotas::default()
        };
        m
    }

    fn validate(config: &Config) -> Vec<PluginError> {
        config.problems()
    }

    fn test(config: &Config, host: &Host<'_>) -> TestReport {
        test_routine(config, host)
    }

    fn invoke(call: Call<'_>, config: &Config, host: &Host<'_>) -> Result<Reply, PluginError> {
        if call.is::<ExpenseReceiptOcr>() {
            return call.serve::<ExpenseReceiptOcr>(|input| read_receipt(&input, config, host));
        }
        Err(call.unsupported())
    }
}

/// `ocr.expense_receipt`: checks the switches, the configuration and the document, then
/// asks Mindee.
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
    if !config.mindee_enabled {
        return Err(PluginError::config(
            "mindee_enabled",
            "Mindee is switched off for this instance (Mindee active): switch it on to read \
             receipts with Mindee",
        ));
    }
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let document = document::prepare(input)?;
    let pages = document
        .pages
        .map(|n| format!(", {n} page{}", if n == 1 { "" } else { "s" }))
        .unwrap_or_default();
    host.log(
        LogLevel::Info,
        format!(
            "reading {} ({}, {} bytes{pages}) with Mindee expense receipts {}",
            document.file_name,
            document.format.media_type(),
            document.bytes.len(),
            config.product_version.path()
        ),
    );
    let client = Client::new(config, host);
    let answer = client.predict(&document)?;
    mapping::expense_receipt(&answer, config.erp_user())
}

/// The test routine: one upload without a document. Mindee routes it to the product,
/// checks the token, the plan and the rate limit, and then refuses the empty form with
/// HTTP 400: every step is proven without consuming a prediction.
fn test_routine(config: &Config, host: &Host<'_>) -> TestReport {
    let mut report = TestReport::new();
    let ready = report.step("configuration", || {
        if let Some(problem) = config.problems().into_iter().next() {
            return Err(problem.message);
        }
        let what = format!(
            "Mindee expense receipts {} at {}, expenses recorded as {}",
            config.product_version.path(),
            config.base_url(),
            config.erp_user()
        );
        let off = match (config.ocr_enabled, config.mindee_enabled) {
            (false, _) => Some("OCR is switched off (OCR active)"),
            (true, false) => Some("Mindee is switched off (Mindee active)"),
            (true, true) => None,
        };
        Ok(match off {
            Some(off) => Check::warning(
                (),
                format!("{off}: receipts will not be read until it is switched on; {what}"),
            ),
            None => Check::ok((), what),
        })
    });
    if ready.is_none() {
        return report.finish("");
    }

    let client = Client::new(config, host);
    let url = client.predict_url();
    let base = config.base_url().to_owned();
    let Some(response) = report.step("reach API", || match client.probe() {
        Err(e) => Err(client::transport_error(e, &base, config.timeout_secs, None).message),
        Ok(r) => {
            let mindee = ApiError::from_body(&r.body).is_some();
            if r.status >= 500 {
                Err(client::status_error(&r, &url, None).message)
            } else if mindee {
                Ok(Check::ok(r, format!("{base} answered")))
            } else {
                Err(format!(
                    "{base} answered HTTP {} with something that is not Mindee's API{}: check the \
                     connection URL, e.g. {}",
                    r.status,
                    client::html_summary(&r.body)
                        .map(|h| format!(" (\"{h}\")"))
                        .unwrap_or_default(),
                    config::DEFAULT_URL
                ))
            }
        }
    }) else {
        return report.finish("");
    };

    let product = format!("mindee/expense_receipts {}", config.product_version.path());
    let found = report.step("find product", || match response.status {
        404 => Err(client::status_error(&response, &url, None).message),
        _ => Ok(Check::ok((), format!("{product} exists"))),
    });
    if found.is_none() {
        report.skip("authenticate", "the product was not found");
        return report.finish("");
    }
    let authenticated = report.step("authenticate", || match response.status {
        401 => Err(client::status_error(&response, &url, None).message),
        _ => Ok(Check::ok((), "the Mindee token is accepted")),
    });
    if authenticated.is_none() {
        return report.finish("");
    }
    let allowed = report.step("plan and quota", || match response.status {
        402 | 403 | 429 => Err(client::status_error(&response, &url, None).message),
        400 => Ok(Check::ok(
            (),
            format!(
                "requests are accepted: an upload without a document was refused as expected \
                 (HTTP 400{}), so no prediction was consumed",
                ApiError::from_body(&response.body)
                    .and_then(|e| e.sentence())
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            ),
        )),
        200 | 201 => Ok(Check::ok((), "requests are accepted")),
        other => Ok(Check::warning(
            (),
            format!(
                "unexpected answer to an upload without a document (HTTP {other}): {}",
                client::status_error(&response, &url, None).message
            ),
        )),
    });
    if allowed.is_none() {
        return report.finish("");
    }
    report.finish(format!(
        "Mindee expense receipts {} is reachable at {} and accepts the token (checked without \
         consuming a prediction)",
        config.product_version.path(),
        config.base_url()
    ))
}

export_plugin!(MindeeOcr);
