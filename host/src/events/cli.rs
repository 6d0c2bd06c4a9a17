//! `passerelle webhooks …` and `passerelle events …`: the same registry, outbox and delivery
//! code as the API and the console, from the command line. A webhook's secret is read from
//! standard input, never from the arguments (which other users see in `ps` and the shell
//! keeps in its history).

use super::outbox::HistoryFilter;
use super::webhooks::{self, WebhookError};
use crate::cli::{EXIT_FAILED, EXIT_INTERNAL, EXIT_NOT_FOUND, EXIT_REFUSED};
use crate::engine::Engine;
use clap::Subcommand;
use passerelle_plugin_api::events::EVENT_TYPES;
use std::io::Read as _;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add a webhook. Its signing secret (16 characters at least, e.g. from
    /// `openssl rand -hex 32`) is read from standard input.
    Add {
        /// The ERP's receiver, http:// or https://.
        url: String,
        /// `*` for every event, or event types separated by commas (e.g.
        /// `esign.completed,esign.refused`).
        #[arg(long, required = true, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List webhooks (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a webhook with its pending deliveries and history.
    Remove { id: String },
    /// Send a `webhook.ping` event to a webhook now and show the receiver's answer.
    Test {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delivery history, newest event first.
    History {
        #[arg(long)]
        webhook: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        /// One event id.
        #[arg(long)]
        event: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Send an event again (with a fresh retry window), to one webhook or to those that had
    /// it. `passerelle serve` delivers it.
    Replay {
        /// The event id (`X-Passerelle-Delivery`).
        event: String,
        #[arg(long)]
        webhook: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Emit an event by hand, e.g. to try the ERP's receiver; `passerelle serve` delivers it.
    Emit {
        /// The event type, e.g. `esign.completed`.
        kind: String,
        /// The instance it is about.
        #[arg(long)]
        instance: String,
        /// Its data, as JSON.
        #[arg(long, default_value = "{}")]
        data: String,
    },
    /// List stored events, oldest first.
    List {
        /// Only those after this event id.
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

fn fail(e: impl std::fmt::Display, code: u8) -> anyhow::Result<ExitCode> {
    eprintln!("error: {}", crate::redact::redact(&e.to_string()));
    Ok(ExitCode::from(code))
}

fn webhook_fail(e: WebhookError) -> anyhow::Result<ExitCode> {
    let code = match e {
        WebhookError::NotFound(_) => EXIT_NOT_FOUND,
        WebhookError::Outbox(_) | WebhookError::Secret { .. } => EXIT_INTERNAL,
        _ => EXIT_REFUSED,
    };
    fail(e, code)
}

fn read_secret() -> anyhow::Result<String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("Type the webhook's secret and press Enter (or pipe it in):");
    }
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("cannot read the secret from standard input: {e}"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn ms_text(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

pub async fn webhooks(engine: &Engine, cmd: WebhooksCommand) -> anyhow::Result<ExitCode> {
    let outbox = &engine.services.events;
    match cmd {
        WebhooksCommand::Add { url, events, json } => {
            let secret = read_secret()?;
            match webhooks::add(outbox, &engine.key, &url, &events, &secret) {
                Ok(view) if json => println!("{}", serde_json::to_string_pretty(&view)?),
                Ok(view) => println!(
                    "{}\nAdded webhook {} → {} for {}. Deliveries are signed with the secret you gave (see README, “Verifying a delivery”); `passerelle serve` sends them.",
                    view.id, view.id, view.url, view.events.join(", ")
                ),
                Err(e) => return webhook_fail(e),
            }
        }
        WebhooksCommand::List { json } => {
            let list = match webhooks::list(outbox) {
                Ok(l) => l,
                Err(e) => return webhook_fail(e),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("No webhook. Add one with `passerelle webhooks add <url> --events '*'` (secret on standard input).");
            } else {
                for w in list {
                    println!("{}  {}  {}", w.id, w.url, w.events.join(","));
                }
            }
        }
        WebhooksCommand::Remove { id } => match webhooks::remove(outbox, &id) {
            Ok(()) => println!("Removed webhook {id} and its deliveries."),
            Err(e) => return webhook_fail(e),
        },
        WebhooksCommand::Test { id, json } => {
            let (event, outcome) = match super::delivery::ping(engine, &id).await {
                Ok(r) => r,
                Err(e) => return webhook_fail(e),
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"event": event, "outcome": outcome})
                    )?
                );
            } else if let Some(error) = &outcome.error {
                println!(
                    "{id}: not delivered in {} ms — {error}",
                    outcome.duration_ms
                );
            } else {
                println!(
                    "{id}: delivered {} in {} ms (HTTP {})",
                    event.id,
                    outcome.duration_ms,
                    outcome.status.unwrap_or(0)
                );
            }
            if !outcome.delivered() {
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        }
        WebhooksCommand::History {
            webhook,
            instance,
            event,
            limit,
            json,
        } => {
            let rows = outbox.history(&HistoryFilter {
                webhook,
                instance,
                event,
                limit: limit.clamp(1, 10_000),
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("No delivery.");
            } else {
                for d in rows {
                    let when = match (d.done_ms, d.next_ms) {
                        (Some(done), _) => format!("at {}", ms_text(done)),
                        (None, Some(next)) => format!("next attempt {}", ms_text(next)),
                        _ => String::new(),
                    };
                    let last = match (&d.last_status, &d.last_error) {
                        (_, Some(e)) => format!(" — {e}"),
                        (Some(s), None) => format!(" — HTTP {s}"),
                        _ => String::new(),
                    };
                    println!(
                        "{}  {}  {}  {}  {:?}  {} attempt(s) {when}{last}",
                        d.event_id, d.event_type, d.instance, d.webhook, d.state, d.attempts
                    );
                }
            }
        }
        WebhooksCommand::Replay { event, webhook } => {
            if let Some(w) = &webhook {
                if outbox.webhook(w)?.is_none() {
                    return webhook_fail(WebhookError::NotFound(w.clone()));
                }
            }
            match outbox.replay(&event, webhook.as_deref())? {
                None => {
                    return fail(
                        format!(
                            "no event {event:?}; `passerelle webhooks history` shows the event ids"
                        ),
                        EXIT_NOT_FOUND,
                    )
                }
                Some(targets) if targets.is_empty() => {
                    return fail(
                        format!("no webhook wants event {event:?}; give one with --webhook"),
                        EXIT_REFUSED,
                    )
                }
                Some(targets) => println!(
                    "Queued {event} again for {}; `passerelle serve` delivers it.",
                    targets.join(", ")
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn events(engine: &Engine, cmd: EventsCommand) -> anyhow::Result<ExitCode> {
    let outbox = &engine.services.events;
    match cmd {
        EventsCommand::Emit {
            kind,
            instance,
            data,
        } => {
            if !EVENT_TYPES.contains(&kind.as_str()) {
                return fail(
                    format!(
                        "unknown event type {kind:?}; one of: {}",
                        EVENT_TYPES.join(", ")
                    ),
                    EXIT_REFUSED,
                );
            }
            let instance = crate::ids::InstanceId::new(&instance)?;
            let data: serde_json::Value = match serde_json::from_str(&data) {
                Ok(d) => d,
                Err(e) => {
                    return fail(
                        format!(
                        "--data is not JSON ({e}); e.g. --data '{{\"transaction_id\":\"t-1\"}}'"
                    ),
                        EXIT_REFUSED,
                    )
                }
            };
            let emitted = outbox.emit(instance.as_str(), &kind, &data, None)?;
            println!("{}", emitted.id);
        }
        EventsCommand::List { after, limit, json } => {
            let seq = match after {
                None => 0,
                Some(id) => match outbox.seq_of(&id)? {
                    Some(s) => s,
                    None => return fail(format!("no event {id:?}"), EXIT_NOT_FOUND),
                },
            };
            let rows = outbox.events_after(seq, limit.clamp(1, 10_000))?;
            if json {
                let events: Vec<_> = rows.into_iter().map(|(_, e)| e).collect();
                println!("{}", serde_json::to_string_pretty(&events)?);
            } else {
                for (_, e) in rows {
                    println!(
                        "{}  {}  {}  {}  {}",
                        e.id, e.time, e.kind, e.instance, e.data
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
