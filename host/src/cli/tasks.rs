//! `passerelle tasks` and `tasks run`: scheduled tasks, their last and next run.

use super::{instance_id, print_json};
use crate::engine::Engine;
use clap::Subcommand;
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Run one task of an instance now.
    Run { instance: String, task: String },
}

/// `passerelle tasks run <instance> <task>`.
pub async fn run(engine: &Engine, instance: &str, task: &str) -> anyhow::Result<ExitCode> {
    let id = instance_id(instance)?;
    let run = engine.run_task(&id, task, None).await?;
    println!(
        "{id} {task}: ok in {} ms — {}",
        run.duration_ms, run.summary
    );
    Ok(ExitCode::SUCCESS)
}

pub fn tasks(engine: &Engine, json: bool) -> anyhow::Result<ExitCode> {
    let rows: Vec<_> = engine
        .scheduled_tasks()?
        .into_iter()
        .map(|t| {
            json!({
                "instance": t.instance,
                "task": t.task,
                "description": t.description,
                "enabled": t.enabled,
                "interval_s": t.interval.as_secs(),
                "start_delay_s": t.start_delay.as_secs(),
                "last_run": t.last_run,
            })
        })
        .collect();
    if json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("No tasks: no instance of a plugin that declares tasks.");
    }
    for r in &rows {
        let last = &r["last_run"];
        let last_text = if last.is_null() {
            "never run".to_owned()
        } else {
            format!(
                "last run {} ({} ms): {} — {}",
                format_ms(last["started_ms"].as_i64().unwrap_or(0)),
                last["duration_ms"],
                if last["ok"] == json!(true) {
                    "ok"
                } else {
                    "FAILED"
                },
                last["summary"].as_str().unwrap_or("")
            )
        };
        let next = last["next_ms"]
            .as_i64()
            .map(|n| format!("next {}", format_ms(n)))
            .unwrap_or_else(|| {
                format!(
                    "runs {} s after `passerelle serve` starts, then every {} s",
                    r["start_delay_s"], r["interval_s"]
                )
            });
        println!(
            "{} {}{}\n    {last_text}\n    {next}",
            r["instance"].as_str().unwrap_or(""),
            r["task"].as_str().unwrap_or(""),
            if r["enabled"] == json!(true) {
                ""
            } else {
                " (instance disabled)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-11-28 12:00:00 UTC` from milliseconds since the epoch.
fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
