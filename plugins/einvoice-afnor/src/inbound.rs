//! The invoices the company receives: collect them from the platform exactly once, list
//! them, hand one over with its file, and send the buyer's answers back.
//!
//! Collection searches incoming `SupplierInvoice` flows updated after a cursor and
//! downloads each original. Each invoice is stored in two writes of the host's state, each
//! atomic: first the file (`file/<flowId>`), then the record (`received/<flowId>`), which is
//! what makes it exist. A flow whose record exists is never downloaded again, so an
//! interrupted run (the host killed during a download) leaves either nothing or an orphan
//! file that the next run overwrites, and the invoice is listed once. The cursor
//! (`cursor/inbound`) only moves past flows that were stored, so none is skipped.

use crate::cdar;
use crate::client::{Client, Service, Target};
use crate::clock;
use crate::config::Config;
use crate::format;
use crate::outbound::{self, download, hex, search_incoming, MAX_PAGES, PAGE};
use crate::protocol::{self, FlowInfo, FullFlowInfo};
use base64::Engine as _;
use passerelle_plugin_api::prelude::*;
use sha2::{Digest, Sha256};

pub const RECEIVED_PREFIX: &str = "received/";
const FILE_PREFIX: &str = "file/";
const INBOUND_CURSOR: &str = "cursor/inbound";

fn received_key(id: &str) -> String {
    format!("{RECEIVED_PREFIX}{id}")
}

/// What one collection did.
#[derive(Debug, Default)]
pub struct Collected {
    pub stored: Vec<String>,
    pub problems: Vec<String>,
}

/// Collects the invoices received since the last run.
pub fn collect(config: &Config, host: &Host<'_>) -> Result<Collected, PluginError> {
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let client = Client::new(config, host);
    let mut out = Collected::default();
    for _ in 0..MAX_PAGES {
        let cursor: Option<String> = host.state_get(INBOUND_CURSOR)?;
        let flows = search_incoming(&client, "SupplierInvoice", cursor.as_deref())?;
        let full = flows.len() >= PAGE as usize;
        let mut advanced = false;
        for flow in flows {
            let flow_id = flow.flow_id.clone().unwrap_or_default();
            if host
                .state_get::<ReceivedInvoice>(&received_key(&flow_id))?
                .is_none()
            {
                match store(&flow, &flow_id, host, &client) {
                    Ok(invoice) => {
                        host.log(
                            LogLevel::Info,
                            format!(
                                "received invoice {} from {} ({}, {} bytes, sha256 {}) as flow {flow_id}",
                                invoice.invoice_number.as_deref().unwrap_or("without number"),
                                invoice.supplier.as_deref().unwrap_or("an unnamed supplier"),
                                invoice.file_name,
                                invoice.size_bytes,
                                invoice.content_sha256
                            ),
                        );
                        out.stored.push(flow_id.clone());
                    }
                    // The cursor stays before this flow: the next run tries it again.
                    Err(e)
                        if matches!(
                            e.kind,
                            ErrorKind::Unauthorized
                                | ErrorKind::Forbidden
                                | ErrorKind::Config
                                | ErrorKind::RateLimited
                        ) =>
                    {
                        return Err(e)
                    }
                    Err(e) => {
                        out.problems.push(format!("flow {flow_id}: {}", e.message));
                        return Ok(out);
                    }
                }
            }
            if let Some(at) = flow.updated_at.as_deref() {
                if cursor.as_deref().is_none_or(|c| at > c) {
                    host.state_put(INBOUND_CURSOR, &at)?;
                    advanced = true;
                }
            }
        }
        if !full || !advanced {
            break;
        }
    }
    Ok(out)
}

/// Downloads one received flow and stores it: file first, record last.
fn store(
    flow: &protocol::Flow,
    flow_id: &str,
    host: &Host<'_>,
    client: &Client<'_, '_>,
) -> Result<ReceivedInvoice, PluginError> {
    let bytes = download(client, flow_id)?;
    if bytes.is_empty() {
        return Err(PluginError::new(
            ErrorKind::Upstream,
            format!("the platform gave flow {flow_id} an empty original file"),
        ));
    }
    let sha256 = hex(&Sha256::digest(&bytes));
    let (detected, facts) = match format::detect(&bytes) {
        Ok((f, facts)) => (Some(f), facts),
        Err(e) => {
            host.log(
                LogLevel::Warn,
                format!("received flow {flow_id} is stored as is but could not be read: {e}"),
            );
            (None, format::Facts::default())
        }
    };
    let provider_format = flow.flow_syntax.clone();
    let invoice = ReceivedInvoice {
        invoice_id: flow_id.to_owned(),
        file_name: flow
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{flow_id}.bin")),
        format: detected.or_else(|| {
            provider_format
                .as_deref()
                .and_then(format::from_flow_syntax)
        }),
        provider_format,
        invoice_number: facts.number,
        supplier: facts.seller,
        received_at: flow.submitted_at.clone().or(flow.updated_at.clone()),
        size_bytes: bytes.len() as u64,
        content_sha256: sha256,
        collected_at_ms: host.now_unix_ms(),
        lifecycle: Vec::new(),
    };
    host.state_put(
        &format!("{FILE_PREFIX}{flow_id}"),
        &base64::engine::general_purpose::STANDARD.encode(&bytes),
    )?;
    host.state_put(&received_key(flow_id), &invoice)?;
    Ok(invoice)
}

/// The `collect_invoices` task.
pub fn collect_task(config: &Config, host: &Host<'_>) -> Result<TaskOutcome, PluginError> {
    let done = collect(config, host)?;
    let mut summary = format!("{} new invoice(s) received", done.stored.len());
    if let Some(p) = done.problems.first() {
        summary.push_str(&format!("; stopped at {p} (tried again next run)"));
    }
    Ok(TaskOutcome::new(summary))
}

/// `einvoice.inbox`.
pub fn inbox(query: &InboxQuery, config: &Config, host: &Host<'_>) -> Result<Inbox, PluginError> {
    let problems = if query.collect {
        collect(config, host)?.problems
    } else {
        Vec::new()
    };
    let mut invoices: Vec<ReceivedInvoice> = host
        .state_list::<ReceivedInvoice>(RECEIVED_PREFIX)?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| !query.unanswered || r.lifecycle.is_empty())
        .collect();
    invoices.sort_by(|a, b| {
        b.collected_at_ms
            .cmp(&a.collected_at_ms)
            .then_with(|| b.invoice_id.cmp(&a.invoice_id))
    });
    if let Some(limit) = query.limit {
        invoices.truncate(limit as usize);
    }
    Ok(Inbox {
        invoices,
        collect_problems: problems,
    })
}

fn received(host: &Host<'_>, id: &str) -> Result<ReceivedInvoice, PluginError> {
    let id = id.trim();
    host.state_get::<ReceivedInvoice>(&received_key(id))?
        .ok_or_else(|| {
            PluginError::new(
                ErrorKind::NotFound,
                format!(
                "no received invoice {id:?}: einvoice.inbox lists the invoices collected (with \
                 \"collect\": true to ask the platform first)"
            ),
            )
            .with_field("invoice_id")
        })
}

/// `einvoice.fetch`: the stored file, checked against its checksum.
pub fn fetch(query: &ReceivedRef, host: &Host<'_>) -> Result<ReceivedFile, PluginError> {
    let invoice = received(host, &query.invoice_id)?;
    let content: String = host
        .state_get(&format!("{FILE_PREFIX}{}", invoice.invoice_id))?
        .ok_or_else(|| {
            PluginError::internal(format!(
                "the file of received invoice {} is missing from the state",
                invoice.invoice_id
            ))
        })?;
    let bytes = outbound::decode_base64(&content)?;
    if hex(&Sha256::digest(&bytes)) != invoice.content_sha256 {
        return Err(PluginError::internal(format!(
            "the stored file of received invoice {} does not match its checksum: download it \
             again from the platform",
            invoice.invoice_id
        )));
    }
    Ok(ReceivedFile {
        invoice,
        content_base64: content,
    })
}

/// `einvoice.respond`: a CDAR `SupplierInvoiceLC` flow with the buyer's answer.
pub fn respond(
    input: &BuyerResponse,
    config: &Config,
    host: &Host<'_>,
) -> Result<ResponseSent, PluginError> {
    if !config.active {
        return Err(PluginError::config(
            "active",
            "sending is switched off for this instance: turn `active` on to answer invoices",
        ));
    }
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let mut invoice = received(host, &input.invoice_id)?;
    let reason = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if input.answer.needs_reason() && reason.is_none() {
        return Err(PluginError::invalid_input(format!(
            "an answer {:?} must say why: give the reason the supplier will read",
            input.answer
        ))
        .with_field("reason"));
    }
    if let Some(last) = invoice.lifecycle.last() {
        if matches!(
            last.state,
            LifecycleState::Refused | LifecycleState::PaymentTransmitted
        ) {
            return Err(PluginError::invalid_input(format!(
                "invoice {} was already answered {} ({}): no further answer can follow",
                invoice.invoice_id, last.state, last.provider_code
            ))
            .with_field("answer"));
        }
    }
    let (Some(number), Some(seller)) = (invoice.invoice_number.clone(), invoice.supplier.clone())
    else {
        return Err(PluginError::invalid_input(format!(
            "received invoice {} could not be read (no invoice number or supplier), so an \
             answer cannot reference it: answer it on the platform",
            invoice.invoice_id
        ))
        .with_field("invoice_id"));
    };
    let now = host.now_unix_ms();
    let (code, label) = cdar::code_of(input.answer.state());
    let message_id = format!(
        "{}-{code}-{}",
        invoice.invoice_id,
        invoice.lifecycle.len() + 1
    );
    let message_id: String = message_id.chars().take(36).collect();
    let bytes = cdar::answer(&cdar::Answer {
        message_id: &message_id,
        issued_at: &clock::edifact(now),
        answer: input.answer,
        invoice_number: &number,
        buyer_siren: &config.company(),
        seller: &seller,
        reason_code: input
            .reason_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty()),
        reason,
    });
    let sha256 = hex(&Sha256::digest(&bytes));
    let tracking_id = format!("ans-{}", &sha256[..32]);
    let name = format!("CDAR-{code}-{}.xml", invoice.invoice_id);
    let flow_info = serde_json::to_vec(&FlowInfo {
        tracking_id: &tracking_id,
        name: &name,
        processing_rule: "B2B",
        flow_syntax: "CDAR",
        flow_profile: None,
        sha256: &sha256,
    })
    .map_err(|e| PluginError::internal(format!("cannot encode flowInfo: {e}")))?;
    let multipart = protocol::flow_multipart(&flow_info, &name, "application/xml", &bytes, &sha256);
    let client = Client::new(config, host);
    let answer = client.call(
        Service::Flow,
        Method::Post,
        protocol::FLOWS,
        Some((&multipart.content_type, multipart.body)),
        Target::Submit { file_name: &name },
        client.policy(),
        Idempotency::NotIdempotent,
    )?;
    let reply: FullFlowInfo = answer.json("the answer's submission")?;
    let response_id = reply
        .flow_id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            PluginError::new(
                ErrorKind::Upstream,
                format!("the platform took the answer to {number} but gave no flowId"),
            )
        })?;
    let event = LifecycleEvent {
        state: input.answer.state(),
        provider_code: code.to_owned(),
        label: Some(label.to_owned()),
        at: Some(clock::rfc3339(now)),
        reason_code: input.reason_code.clone(),
        reason: reason.map(str::to_owned),
        provider_event_id: Some(response_id.clone()),
    };
    invoice.lifecycle.push(event.clone());
    host.state_put(&received_key(&invoice.invoice_id), &invoice)?;
    host.log(
        LogLevel::Info,
        format!(
            "answered invoice {number} (flow {}) {} ({code} {label}) as flow {response_id}",
            invoice.invoice_id, event.state
        ),
    );
    Ok(ResponseSent {
        invoice_id: invoice.invoice_id,
        response_id,
        event,
    })
}
