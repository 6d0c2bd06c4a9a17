//! # passerelle-ocr-mindee
//!
//! Passerelle plugin for Mindee's expense receipts OCR: serves `ocr.expense_receipt`, which
//! turns a photo or scan of a receipt into the fields of an expense for the ERP's expense
//! portal and mobile app. Two API generations: v2 (the one Mindee opens accounts on today:
//! an extraction model chosen by its ID, enqueued and polled) and v1 (product
//! `mindee/expense_receipts` v5, v4 accepted, read synchronously) for older accounts.
//!
//! This file only wires the plugin together; each concern has its module: [`document`]
//! checks the file (type by content, size and page limits) before any request, [`multipart`]
//! builds the upload, [`client`] (v1) and [`v2`] talk to Mindee and give HTTP outcomes their
//! meaning, [`mapping`] (v1) and [`v2_mapping`] turn the answer into an [`ExpenseReceipt`],
//! and [`config`] holds the instance settings. All network access goes through the host.

pub mod client;
pub mod config;
pub mod document;
pub mod mapping;
pub mod multipart;
pub mod v2;
pub mod v2_mapping;

use client::{ApiError, Client};
use config::ApiVersion;
pub use config::Config;
use passerelle_plugin_api::prelude::*;

/// The Mindee expense receipts plugin.
#[derive(Debug)]
pub struct MindeeOcr;

impl Plugin for MindeeOcr {
    type Config = Config;

    const LOCALES: &'static [(&'static str, &'static str)] =
        &[("fr", include_str!("../locales/fr.ftl"))];

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "ocr-mindee",
            "Mindee expense receipts",
            env!("CARGO_PKG_VERSION"),
            Category::Ocr,
        );
        m.description =
            "Reads expense receipts (JPEG, PNG, WebP, HEIC, TIFF, PDF) with Mindee's OCR (API v2 or v1)".to_owned();
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

    fn operations(ops: &mut Operations<Self>) {
        ops.serve::<ExpenseReceiptOcr>(|input, config, host| read_receipt(&input, config, host));
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
    let model = match config.api_version {
        ApiVersion::V2 => format!("API v2 model {}", config.model_id()),
        ApiVersion::V1 => format!("expense receipts {}", config.product_version.path()),
    };
    host.log(
        LogLevel::Info,
        format!(
            "reading {} ({}, {} bytes{pages}) with Mindee {model}",
            document.file_name,
            document.format.media_type(),
            document.bytes.len(),
        ),
    );
    if config.api_version == ApiVersion::V2 {
        let answer = v2::ClientV2::new(config, host).read(&document)?;
        return v2_mapping::expense_receipt(&answer, config.erp_user());
    }
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
        let what = match config.api_version {
            ApiVersion::V2 => format!(
                "Mindee API v2 model {} at {}, expenses recorded as {}",
                config.model_id(),
                config.base_url(),
                config.erp_user()
            ),
            ApiVersion::V1 => format!(
                "Mindee expense receipts {} at {}, expenses recorded as {}",
                config.product_version.path(),
                config.base_url(),
                config.erp_user()
            ),
        };
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
    if config.api_version == ApiVersion::V2 {
        return test_routine_v2(config, host, report);
    }

    let client = Client::new(config, host);
    let url = client.predict_url();
    let base = config.base_url().to_owned();
    let Some(response) = report.step("reach API", || match client.probe() {
        Err(e) => Err(client::transport_error(e, &base, config.timeout.secs(), None).message),
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
    report.finish(
        Text::localized(
            "summary-ok-v1",
            format!(
                "Mindee expense receipts {} is reachable at {} and accepts the token (checked \
                 without consuming a prediction)",
                config.product_version.path(),
                config.base_url()
            ),
        )
        .arg("product", config.product_version.path().to_string())
        .arg("url", config.base_url().to_string()),
    )
}

/// The API v2 test routine: `GET /v2/search/models` lists the key's models without reading
/// a document, so it proves the host, the key and the model ID without billing a page.
fn test_routine_v2(config: &Config, host: &Host<'_>, mut report: TestReport) -> TestReport {
    let client = v2::ClientV2::new(config, host);
    let url = client.search_url();
    let base = config.base_url().to_owned();
    let model_id = config.model_id().to_owned();
    let Some(response) = report.step("reach API", || match client.search_models() {
        Err(e) => Err(client::transport_error(e, &base, config.timeout.secs(), None).message),
        Ok(r) => {
            let json: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
            let mindee = json
                .as_ref()
                .is_some_and(|j| j.get("models").is_some() || v2::Problem::from_value(j).is_some());
            if r.status >= 500 {
                Err(v2::status_error(&r, &url, &model_id, None).message)
            } else if mindee {
                Ok(Check::ok(r, format!("{base} answered")))
            } else {
                Err(format!(
                    "{base} answered HTTP {} with something that is not Mindee's API v2{}: check \
                     the connection URL (leave it empty for {})",
                    r.status,
                    client::html_summary(&r.body)
                        .map(|h| format!(" (\"{h}\")"))
                        .unwrap_or_default(),
                    config::DEFAULT_URL_V2
                ))
            }
        }
    }) else {
        return report.finish("");
    };
    let authenticated = report.step("authenticate", || match response.status {
        200..=299 => Ok(Check::ok((), "the Mindee API key is accepted")),
        _ => Err(v2::status_error(&response, &url, &model_id, None).message),
    });
    if authenticated.is_none() {
        report.skip("find model", "the API key was refused");
        return report.finish("");
    }
    let found = report.step("find model", || {
        let json: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("Mindee's list of models is not JSON: {e}"))?;
        let models = json
            .get("models")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let model = models.iter().find(|m| {
            m.get("id")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|id| id.eq_ignore_ascii_case(&model_id))
        });
        let pages = json
            .pointer("/pagination/total_pages")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        match model {
            Some(m) => {
                let name = m
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                let kind = m
                    .get("model_type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                if kind.is_empty() || kind == "extraction" {
                    Ok(Check::ok(
                        (),
                        format!("model {model_id} is \"{name}\" ({kind})"),
                    ))
                } else {
                    Err(format!(
                        "model {model_id} (\"{name}\") is a {kind} model: expense receipts need \
                         an extraction model (expense receipt or financial document)"
                    ))
                }
            }
            None if pages > 1 => Ok(Check::warning(
                (),
                format!(
                    "model {model_id} is not on the first page of this key's {pages} pages of \
                     models; it will be checked by the first reading"
                ),
            )),
            None => {
                let known: Vec<String> = models
                    .iter()
                    .filter_map(|m| {
                        Some(format!(
                            "{} ({})",
                            m.get("name")?.as_str()?,
                            m.get("id")?.as_str()?
                        ))
                    })
                    .collect();
                Err(format!(
                    "this API key has no model {model_id}: copy the model ID from \
                     app.mindee.com; the key's models are: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            }
        }
    });
    if found.is_none() {
        return report.finish("");
    }
    report.finish(
        Text::localized(
            "summary-ok-v2",
            format!(
                "Mindee API v2 is reachable at {base}, accepts the key and knows model \
                 {model_id} (checked by listing the models: no document read, no page billed)"
            ),
        )
        .arg("url", base.to_string())
        .arg("model", model_id.to_string()),
    )
}

export_plugin!(MindeeOcr);
