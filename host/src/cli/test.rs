//! `passerelle test <instance>`: an instance's test routine against the real service.

use super::config::CliAudit;
use super::exit::{refused, EXIT_FAILED};
use super::{instance_id, print_json};
use crate::engine::Engine;
use crate::ids::InstanceId;
use passerelle_plugin_api::{Status, TestReport};
use serde_json::Map;
use std::process::ExitCode;

/// Runs the test routine with the saved values; exit 1 when it failed.
pub async fn test(
    engine: &Engine,
    instance: &str,
    json: bool,
    lang: Option<String>,
) -> anyhow::Result<ExitCode> {
    let id = instance_id(instance)?;
    let report = engine.test(&id, &Map::new()).await?;
    let plugin = engine
        .store
        .get(&id)
        .ok()
        .and_then(|r| engine.registry.get(&r.plugin));
    let report = match (plugin, lang) {
        (Some(p), Some(lang)) => {
            let lang = crate::i18n::choose(&p, Some(&lang), None).map_err(refused)?;
            crate::i18n::report_in(&p, report, &lang)
        }
        _ => report,
    };
    CliAudit::open(engine).record(
        crate::server::audit::Action::Test,
        &id,
        None,
        Some(format!("{}; saved values", report.status)),
    );
    if json {
        print_json(&report)?;
    } else {
        print_report(&id, &report);
    }
    Ok(if report.status == Status::Failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(id: &InstanceId, report: &TestReport) {
    println!("Test of {id}: {} — {}", report.status, report.summary);
    for step in &report.steps {
        let mark = match step.status {
            Status::Ok => "ok  ",
            Status::Warning => "warn",
            Status::Failed => "FAIL",
            Status::Skipped => "skip",
        };
        println!(
            "  [{mark}] {:<24} {:>6} ms  {}",
            step.name, step.duration_ms, step.detail
        );
    }
}
