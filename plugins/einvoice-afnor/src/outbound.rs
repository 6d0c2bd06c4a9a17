//! The invoices the company issues: submit (after the routing check), read their
//! acknowledgement and lifecycle, list and follow them.
//!
//! Each submission is recorded under `sent/<flowId>` with the invoice number, which is how
//! lifecycle messages (CDAR flows of type `CustomerInvoiceLC`) find their invoice again, via
//! the index `number/<invoice number>`. A submission is not idempotent, so a file whose
//! earlier submission was not rejected is refused (`content/<sha256>`); the tracking id sent
//! with it is derived from the file's digest, so the platform's own unicity check catches a
//! resubmission the plugin could not see. Lifecycle messages already applied are remembered
//! (`lc-seen/<flowId>`) and the search resumes after the last one read (`cursor/lifecycle`),
//! so a status is never recorded twice.

use crate::cdar;
use crate::client::{Client, Service, Target};
use crate::config::Config;
use crate::directory;
use crate::format;
use crate::protocol::{
    self, Flow, FlowInfo, FullFlowInfo, SearchFlowContent, SearchFlowFilters, SearchFlowParams,
};
use base64::Engine as _;
use passerelle_plugin_api::prelude::*;
use sha2::{Digest, Sha256};

/// Largest file sent: XP Z12-013 leaves the limit to each platform; 100 MB is above what
/// platforms announce, so the platform's own 413 speaks first.
pub const MAX_FILE_BYTES: usize = 100 * 1024 * 1024;
/// Flows asked for per search page (the standard's maximum).
pub const PAGE: u32 = 100;
/// Most pages one run reads, so a backlog drains over several runs.
pub const MAX_PAGES: usize = 20;

pub const SENT_PREFIX: &str = "sent/";
const NUMBER_PREFIX: &str = "number/";
const CONTENT_PREFIX: &str = "content/";
const SEEN_PREFIX: &str = "lc-seen/";
const LIFECYCLE_CURSOR: &str = "cursor/lifecycle";

/// What the plugin keeps of an invoice it sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    pub deposit: Deposit,
    pub invoice_number: String,
    pub recipient: String,
}

fn sent_key(id: &str) -> String {
    format!("{SENT_PREFIX}{id}")
}

/// `einvoice.submit`.
pub fn submit(
    input: &InvoiceSubmission,
    config: &Config,
    host: &Host<'_>,
) -> Result<Deposit, PluginError> {
    if !config.active {
        return Err(PluginError::config(
            "active",
            "sending is switched off for this instance: turn `active` on to send invoices",
        ));
    }
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let file_name = check_file_name(&input.file_name)?;
    let bytes = decode_base64(&input.content_base64)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(PluginError::invalid_input(format!(
            "{file_name} is {} bytes, more than the {MAX_FILE_BYTES} bytes this plugin sends",
            bytes.len()
        ))
        .with_field("content_base64"));
    }
    let (invoice_format, facts) = format::detect(&bytes).map_err(|e| {
        PluginError::invalid_input(format!(
            "{file_name} is not a Factur-X, UBL or CII invoice: {e}; it was not sent"
        ))
        .with_field("content_base64")
    })?;
    let Some(number) = facts.number.clone().filter(|n| !n.trim().is_empty()) else {
        return Err(PluginError::invalid_input(format!(
            "{file_name} has no invoice number (BT-1); it was not sent"
        ))
        .with_field("content_base64"));
    };
    let Some(recipient) = facts.recipient.as_deref().map(format::recipient_identifier) else {
        return Err(PluginError::invalid_input(format!(
            "{file_name} names no buyer identifier (electronic address BT-49 or legal \
             identifier), so it cannot be routed; it was not sent"
        ))
        .with_field("content_base64"));
    };
    let sha256 = hex(&Sha256::digest(&bytes));
    refuse_duplicate(host, &sha256, file_name)?;

    let client = Client::new(config, host);
    let route = directory::check_route(&recipient, file_name, &client)?;

    let tracking_id = format!("pas-{}", &sha256[..32]);
    let flow_info = serde_json::to_vec(&FlowInfo {
        tracking_id: &tracking_id,
        name: file_name,
        processing_rule: "B2B",
        flow_syntax: format::flow_syntax(invoice_format),
        flow_profile: None,
        sha256: &sha256,
    })
    .map_err(|e| PluginError::internal(format!("cannot encode flowInfo: {e}")))?;
    let multipart = protocol::flow_multipart(
        &flow_info,
        file_name,
        format::media_type(invoice_format),
        &bytes,
        &sha256,
    );
    let answer = client.call(
        Service::Flow,
        Method::Post,
        protocol::FLOWS,
        Some((&multipart.content_type, multipart.body)),
        Target::Submit { file_name },
        client.policy(),
        Idempotency::NotIdempotent,
    )?;
    let reply: FullFlowInfo = answer.json("the submission")?;
    let Some(flow_id) = reply
        .flow_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    else {
        return Err(PluginError::new(
            ErrorKind::Upstream,
            format!(
                "the platform took {file_name} but answered without a flowId, so it cannot be \
                 followed: look for the tracking id {tracking_id} on the platform before \
                 submitting it again"
            ),
        ));
    };
    let deposit = Deposit {
        deposit_id: flow_id.to_owned(),
        file_name: file_name.to_owned(),
        format: Some(invoice_format),
        provider_format: Some(format::flow_syntax(invoice_format).to_owned()),
        dematerialisation_code: Some(input.dematerialisation_code.trim().to_owned())
            .filter(|c| !c.is_empty()),
        company: Some(config.company()),
        size_bytes: Some(bytes.len() as u64),
        content_sha256: Some(sha256.clone()),
        deposited_on: reply.submitted_at.clone(),
        submitted_at_ms: Some(host.now_unix_ms()),
        attempts: Some(answer.attempts),
        state: DepositState::Pending,
        provider_state: Some("Pending".to_owned()),
        state_changed_at: reply.submitted_at.clone(),
        provider_message: Some(format!(
            "sent to {} ({})",
            route.addressing_identifier,
            route.name.as_deref().unwrap_or("no name")
        )),
        errors: Vec::new(),
        checked_at_ms: None,
        invoices: Vec::new(),
        lifecycle: Vec::new(),
    };
    let record = Sent {
        deposit: deposit.clone(),
        invoice_number: number.clone(),
        recipient: recipient.clone(),
    };
    // The invoice is sent: failing to record it must not hide its flowId from the caller.
    let recorded = host
        .state_put(&sent_key(flow_id), &record)
        .and_then(|()| host.state_put(&format!("{NUMBER_PREFIX}{number}"), &flow_id))
        .and_then(|()| host.state_put(&format!("{CONTENT_PREFIX}{sha256}"), &flow_id));
    if let Err(e) = recorded {
        host.log(
            LogLevel::Error,
            format!(
                "invoice {number} ({file_name}) was sent as flow {flow_id} but could not be \
                 recorded ({}); its lifecycle will not be followed",
                e.message
            ),
        );
    }
    host.log(
        LogLevel::Info,
        format!(
            "sent invoice {number} ({file_name}, {invoice_format}) to {recipient} as flow \
             {flow_id} in {} attempt(s)",
            answer.attempts
        ),
    );
    Ok(deposit)
}

/// `einvoice.status`: the acknowledgement and the lifecycle read now.
pub fn status(
    query: &DepositRef,
    config: &Config,
    host: &Host<'_>,
) -> Result<Deposit, PluginError> {
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let id = query.deposit_id.trim();
    if id.is_empty() || id.len() > 36 || id.chars().any(char::is_control) {
        return Err(PluginError::invalid_input(format!(
            "{:?} is not a flow identifier (flowId, at most 36 characters)",
            query.deposit_id
        ))
        .with_field("deposit_id"));
    }
    let client = Client::new(config, host);
    let Some(sent) = host.state_get::<Sent>(&sent_key(id))? else {
        return Err(PluginError::new(
            ErrorKind::NotFound,
            format!("this instance sent no flow {id}: einvoice.list shows the ones it sent"),
        ));
    };
    let sent = acknowledge(sent, host, &client)?;
    sync_lifecycle(host, &client)?;
    Ok(host
        .state_get::<Sent>(&sent_key(id))?
        .map(|s| s.deposit)
        .unwrap_or(sent.deposit))
}

/// Reads a flow's acknowledgement (`Pending`, `Ok`, `Error` with details) and records it.
fn acknowledge(
    mut sent: Sent,
    host: &Host<'_>,
    client: &Client<'_, '_>,
) -> Result<Sent, PluginError> {
    let id = sent.deposit.deposit_id.clone();
    let answer = client.call(
        Service::Flow,
        Method::Get,
        &protocol::flow_path(&id, "Metadata"),
        None,
        Target::Flow { flow_id: &id },
        client.policy(),
        Idempotency::Idempotent,
    )?;
    let flow: Flow = answer.json("the flow's metadata")?;
    let ack = flow.acknowledgement.status.clone().unwrap_or_default();
    let previous = sent.deposit.state;
    let d = &mut sent.deposit;
    d.state = match ack.as_str() {
        "Ok" => DepositState::Integrated,
        "Error" => DepositState::Rejected,
        _ => DepositState::Pending,
    };
    d.provider_state = Some(ack.clone()).filter(|a| !a.is_empty());
    d.state_changed_at = flow.updated_at.clone().or(d.state_changed_at.take());
    d.errors = flow
        .acknowledgement
        .details
        .iter()
        .map(|detail| DepositError {
            code: detail.reason_code.clone(),
            message: detail.reason_message.clone().unwrap_or_default(),
            nature: detail.level.clone(),
            invoice: Some(sent.invoice_number.clone()),
            supplier: None,
            recipient: detail.item.clone(),
        })
        .collect();
    d.checked_at_ms = Some(host.now_unix_ms());
    host.state_put(&sent_key(&id), &sent)?;
    if previous != sent.deposit.state {
        tell_erp(
            host,
            events::EinvoiceStatusChanged {
                deposit_id: id.clone(),
                invoice: Some(sent.invoice_number.clone()),
                previous_status: previous.to_string(),
                status: sent.deposit.state.to_string(),
                detail: Some(ack.clone()).filter(|a| !a.is_empty()),
            },
            &format!("{id}/{}", sent.deposit.state),
        );
        let level = if sent.deposit.state == DepositState::Rejected {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        host.log(
            level,
            format!(
                "flow {id} (invoice {}) is now {} ({ack}){}",
                sent.invoice_number,
                sent.deposit.state,
                sent.deposit
                    .errors
                    .first()
                    .map(|e| format!(": {} {}", e.code.as_deref().unwrap_or_default(), e.message))
                    .unwrap_or_default()
            ),
        );
    }
    Ok(sent)
}

/// Searches flows of one type coming in, from a cursor; results sorted by `updatedAt`.
pub fn search_incoming(
    client: &Client<'_, '_>,
    flow_type: &str,
    updated_after: Option<&str>,
) -> Result<Vec<Flow>, PluginError> {
    let body = serde_json::to_vec(&SearchFlowParams {
        limit: PAGE,
        filters: SearchFlowFilters {
            updated_after,
            flow_type: vec![flow_type],
            flow_direction: vec!["In"],
        },
    })
    .map_err(|e| PluginError::internal(format!("cannot encode the search: {e}")))?;
    let answer = client.call(
        Service::Flow,
        Method::Post,
        protocol::FLOWS_SEARCH,
        Some(("application/json", body)),
        Target::Search,
        client.policy(),
        Idempotency::Idempotent,
    )?;
    let mut found: SearchFlowContent = answer.json("the flow search")?;
    found
        .results
        .retain(|f| f.flow_id.as_deref().is_some_and(|id| !id.trim().is_empty()));
    found
        .results
        .sort_by(|a, b| a.updated_at.cmp(&b.updated_at));
    Ok(found.results)
}

/// Downloads a flow's original file.
pub fn download(client: &Client<'_, '_>, flow_id: &str) -> Result<Vec<u8>, PluginError> {
    client
        .call(
            Service::Flow,
            Method::Get,
            &protocol::flow_path(flow_id, "Original"),
            None,
            Target::Flow { flow_id },
            client.policy(),
            Idempotency::Idempotent,
        )
        .map(|a| a.body)
}

/// Reads the lifecycle messages that arrived for the invoices sent, and records each status
/// once on its invoice. Returns how many statuses were recorded.
pub fn sync_lifecycle(host: &Host<'_>, client: &Client<'_, '_>) -> Result<usize, PluginError> {
    let mut recorded = 0;
    for _ in 0..MAX_PAGES {
        let cursor: Option<String> = host.state_get(LIFECYCLE_CURSOR)?;
        let flows = search_incoming(client, "CustomerInvoiceLC", cursor.as_deref())?;
        let full = flows.len() >= PAGE as usize;
        let mut advanced = false;
        for flow in flows {
            let flow_id = flow.flow_id.clone().unwrap_or_default();
            let seen_key = format!("{SEEN_PREFIX}{flow_id}");
            if host.state_get::<bool>(&seen_key)?.is_none() {
                let bytes = download(client, &flow_id)?;
                match cdar::parse(&bytes) {
                    Ok(statuses) => {
                        for (i, status) in statuses.iter().enumerate() {
                            if apply(host, &flow_id, i, status)? {
                                recorded += 1;
                            }
                        }
                    }
                    Err(e) => host.log(
                        LogLevel::Warn,
                        format!("lifecycle flow {flow_id} was skipped: {e}"),
                    ),
                }
                host.state_put(&seen_key, &true)?;
            }
            if let Some(at) = flow.updated_at.as_deref() {
                if cursor.as_deref().is_none_or(|c| at > c) {
                    host.state_put(LIFECYCLE_CURSOR, &at)?;
                    advanced = true;
                }
            }
        }
        if !full || !advanced {
            break;
        }
    }
    Ok(recorded)
}

/// Records one status on the invoice it names; false when it is unknown or already there.
fn apply(
    host: &Host<'_>,
    flow_id: &str,
    index: usize,
    status: &cdar::Status,
) -> Result<bool, PluginError> {
    let Some(sent_id) =
        host.state_get::<String>(&format!("{NUMBER_PREFIX}{}", status.invoice_number))?
    else {
        host.log(
            LogLevel::Info,
            format!(
                "lifecycle flow {flow_id} is about invoice {}, which this instance did not send",
                status.invoice_number
            ),
        );
        return Ok(false);
    };
    let Some(mut sent) = host.state_get::<Sent>(&sent_key(&sent_id))? else {
        return Ok(false);
    };
    let event_id = format!("{flow_id}#{index}");
    if sent
        .deposit
        .lifecycle
        .iter()
        .any(|e| e.provider_event_id.as_deref() == Some(event_id.as_str()))
    {
        return Ok(false);
    }
    let Some((state, label)) = cdar::state_of(&status.code) else {
        return Ok(false);
    };
    let event = LifecycleEvent {
        state,
        provider_code: status.code.clone(),
        label: status.label.clone().or_else(|| Some(label.to_owned())),
        at: status.at.clone(),
        reason_code: status.reason_code.clone(),
        reason: status.reason.clone(),
        provider_event_id: Some(event_id),
    };
    let level = if matches!(
        state,
        LifecycleState::Refused | LifecycleState::Rejected | LifecycleState::Disputed
    ) {
        LogLevel::Warn
    } else {
        LogLevel::Info
    };
    host.log(
        level,
        format!(
            "invoice {} (flow {sent_id}) is {state} ({} {}){}",
            status.invoice_number,
            event.provider_code,
            event.label.as_deref().unwrap_or_default(),
            event
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
    );
    let previous = sent
        .deposit
        .lifecycle
        .last()
        .map(|e| e.state.to_string())
        .unwrap_or_default();
    let change = events::EinvoiceStatusChanged {
        deposit_id: sent_id.clone(),
        invoice: Some(status.invoice_number.clone()),
        previous_status: previous,
        status: state.to_string(),
        detail: event.label.clone(),
    };
    let key = format!(
        "{sent_id}/{}",
        event.provider_event_id.as_deref().unwrap_or_default()
    );
    if state == LifecycleState::Rejected {
        sent.deposit.state = DepositState::Rejected;
    }
    sent.deposit.lifecycle.push(event);
    host.state_put(&sent_key(&sent_id), &sent)?;
    tell_erp(host, change, &key);
    Ok(true)
}

/// Emits `einvoice.status_changed` once per `key` (flow and status or lifecycle event); a
/// failure to store it is logged, the follow-up goes on.
fn tell_erp(host: &Host<'_>, change: events::EinvoiceStatusChanged, key: &str) {
    if let Err(e) = host.emit_event(events::types::EINVOICE_STATUS_CHANGED, &change, Some(key)) {
        host.log(
            LogLevel::Warn,
            format!(
                "the einvoice.status_changed event of {key} could not be stored: {}",
                e.message
            ),
        );
    }
}

/// `einvoice.list`: the recorded invoices sent, most recent first.
pub fn list(filter: &DepositFilter, host: &Host<'_>) -> Result<DepositList, PluginError> {
    let mut deposits: Vec<Deposit> = host
        .state_list::<Sent>(SENT_PREFIX)?
        .into_iter()
        .map(|(_, s)| s.deposit)
        .filter(|d| filter.state.is_none_or(|s| d.state == s))
        .collect();
    deposits.sort_by(|a, b| {
        b.submitted_at_ms
            .cmp(&a.submitted_at_ms)
            .then_with(|| b.deposit_id.cmp(&a.deposit_id))
    });
    if let Some(limit) = filter.limit {
        deposits.truncate(limit as usize);
    }
    Ok(DepositList { deposits })
}

/// The `follow_invoices` task: acknowledgements still pending, then new lifecycle statuses.
pub fn follow(config: &Config, host: &Host<'_>) -> Result<TaskOutcome, PluginError> {
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let client = Client::new(config, host);
    let pending: Vec<Sent> = host
        .state_list::<Sent>(SENT_PREFIX)?
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.deposit.state == DepositState::Pending)
        .collect();
    let mut acknowledged = 0;
    for sent in pending {
        let id = sent.deposit.deposit_id.clone();
        match acknowledge(sent, host, &client) {
            Ok(s) if s.deposit.state != DepositState::Pending => acknowledged += 1,
            Ok(_) => {}
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
            Err(e) => host.log(
                LogLevel::Warn,
                format!(
                    "cannot read the acknowledgement of flow {id}: {}",
                    e.message
                ),
            ),
        }
    }
    let statuses = sync_lifecycle(host, &client)?;
    let mut open = 0;
    let mut ended = 0;
    for (_, s) in host.state_list::<Sent>(SENT_PREFIX)? {
        let done = s.deposit.state == DepositState::Rejected
            || s.deposit
                .current_lifecycle()
                .is_some_and(|e| e.state.is_final());
        if done {
            ended += 1;
        } else {
            open += 1;
        }
    }
    Ok(TaskOutcome::new(format!(
        "{acknowledged} acknowledgement(s) and {statuses} lifecycle status(es) recorded; \
         {open} invoice(s) in progress, {ended} ended"
    )))
}

/// Refuses a second submission of a file whose earlier one was not rejected.
fn refuse_duplicate(host: &Host<'_>, sha256: &str, file_name: &str) -> Result<(), PluginError> {
    let Some(earlier_id) = host.state_get::<String>(&format!("{CONTENT_PREFIX}{sha256}"))? else {
        return Ok(());
    };
    let Some(earlier) = host.state_get::<Sent>(&sent_key(&earlier_id))? else {
        return Ok(());
    };
    if earlier.deposit.state == DepositState::Rejected {
        return Ok(());
    }
    Err(PluginError::invalid_input(format!(
        "{file_name} was already sent as flow {} (invoice {}, {}): the platform would refuse \
         it as a duplicate, so it was not sent again; follow it with einvoice.status",
        earlier.deposit.deposit_id, earlier.invoice_number, earlier.deposit.state
    ))
    .with_field("content_base64"))
}

/// The file name as the platform will show it: not empty, no path, no control characters,
/// at most 255 characters (`FlowInfo.name`).
pub fn check_file_name(name: &str) -> Result<&str, PluginError> {
    let trimmed = name.trim();
    let problem = if trimmed.is_empty() {
        Some("the file name is empty")
    } else if trimmed.contains(['/', '\\']) {
        Some("the file name contains a path separator; give the name only")
    } else if trimmed.chars().any(char::is_control) {
        Some("the file name contains control characters")
    } else if trimmed.chars().count() > 255 {
        Some("the file name is longer than 255 characters")
    } else {
        None
    };
    match problem {
        Some(p) => {
            Err(PluginError::invalid_input(format!("{p}: {name:?}")).with_field("file_name"))
        }
        None => Ok(trimmed),
    }
}

/// Decodes standard base64, ignoring line breaks and spaces.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, PluginError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(
            PluginError::invalid_input("the file content is empty").with_field("content_base64")
        );
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            PluginError::invalid_input(format!(
                "the file content is not valid base64 ({e}); encode the file's bytes with the \
                 standard alphabet"
            ))
            .with_field("content_base64")
        })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
