//! The e-invoicing operations: deposit a file, ask where a deposit stands, list and follow
//! the deposits this instance made.
//!
//! Everything a later call needs is kept in the instance state, one record per deposit under
//! `deposit/<numeroFluxDepot>`, plus an index `content/<sha256>` of the files deposited.
//! A deposit is not idempotent — Chorus Pro registers the same file twice if asked twice —
//! so a file whose earlier deposit was not rejected is refused rather than sent again.
//!
//! Checks that cost nothing come before any request: the instance is active and well
//! configured, the dematerialisation code is accepted, the content is base64, at most
//! 10 MB, and a Factur-X, UBL or CII invoice. Then the recipient's requirements (service
//! code, engagement number) are checked against the invoice ([`recipient`]) before the file
//! is sent.
//!
//! Every flow state is handled ([`protocol::deposit_state`]): failed states (`IN_REJETE`,
//! `IN_INCIDENTE`, `QP_IRRECEVABLE`, `QP_RECEVABLE_AVEC_ERREUR`) are final, recorded with their
//! errors, and free the file for a new deposit; a state the plugin does not know is reported
//! as `unknown`, not waited for as pending. Once a flow is integrated, its invoices are
//! followed (`factures/v1/rechercher/fournisseur`) until each is settled (in payment,
//! rejected…).

use crate::client::{Client, Target};
use crate::config::Config;
use crate::format;
use crate::protocol::{self, DetailedReport, FlowDeposit, FlowDepositAnswer, ReportQuery};
use crate::recipient;
use base64::Engine as _;
use passerelle_plugin_api::prelude::*;
use sha2::{Digest, Sha256};

/// Largest file Chorus Pro accepts: 10 MB (binary megabytes).
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// State key prefix of the deposit records.
pub const DEPOSIT_PREFIX: &str = "deposit/";
/// State key prefix of the content index.
pub const CONTENT_PREFIX: &str = "content/";
/// Most deposits one run of the follow-up task asks about; the rest wait for the next run,
/// oldest-checked first, so a backlog drains without one run hogging the quota.
pub const FOLLOW_BATCH: usize = 200;

fn deposit_key(id: &str) -> String {
    format!("{DEPOSIT_PREFIX}{id}")
}

fn content_key(sha256: &str) -> String {
    format!("{CONTENT_PREFIX}{sha256}")
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
            "transmission to Chorus Pro is switched off for this instance: turn `active` on to \
             deposit invoices",
        ));
    }
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let file_name = check_file_name(&input.file_name)?;
    let code = input.dematerialisation_code.trim();
    if !config.accepts(code) {
        return Err(PluginError::invalid_input(format!(
            "the dematerialisation code {code:?} is not one this instance transmits ({}): the \
             invoice was not sent; change its code in the ERP or add the code to \
             accepted_codes",
            config.accepted_codes.join(", ")
        ))
        .with_field("dematerialisation_code"));
    }
    let bytes = decode_base64(&input.content_base64)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(PluginError::invalid_input(format!(
            "{file_name} is {} bytes ({}), more than the 10 MB ({MAX_FILE_BYTES} bytes) Chorus \
             Pro accepts: it was not sent",
            bytes.len(),
            megabytes(bytes.len())
        ))
        .with_field("content_base64"));
    }
    let invoice_format = format::detect(&bytes).map_err(|e| {
        PluginError::invalid_input(format!(
            "{file_name} is not an invoice Chorus Pro accepts: {e}; it was not sent"
        ))
        .with_field("content_base64")
    })?;
    let sha256 = hex(&Sha256::digest(&bytes));
    refuse_duplicate(host, &sha256, file_name)?;
    let client = Client::new(config, host);
    let refs = recipient::references(&bytes, invoice_format);
    recipient::check(&refs, file_name, &client, host)?;

    let syntax = format::chorus_syntax(invoice_format);
    // Base64 again from the bytes: the input may hold line breaks the API would refuse.
    let content = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let body = serde_json::to_vec(&FlowDeposit {
        fichier_flux: &content,
        nom_fichier: file_name,
        syntaxe_flux: syntax,
        avec_signature: false,
    })
    .map_err(|e| PluginError::internal(format!("cannot encode the deposit: {e}")))?;
    drop(content);
    let answer = client.call(
        Method::Post,
        protocol::DEPOSIT_FLOW,
        body,
        Target::Deposit { file_name },
        client.policy(),
        Idempotency::NotIdempotent,
    )?;
    let reply: FlowDepositAnswer = serde_json::from_value(answer.body).map_err(|e| {
        PluginError::new(
            ErrorKind::Upstream,
            format!("the deposit answer of Chorus Pro has an unexpected shape ({e})"),
        )
    })?;
    let Some(deposit_id) = reply
        .numero_flux_depot
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    else {
        return Err(PluginError::new(
            ErrorKind::Upstream,
            format!(
                "Chorus Pro accepted {file_name} but answered without a deposit number \
                 (numeroFluxDepot), so it cannot be followed: look for it in Chorus Pro before \
                 submitting it again"
            ),
        ));
    };
    let deposit = Deposit {
        deposit_id: deposit_id.to_owned(),
        file_name: file_name.to_owned(),
        format: Some(invoice_format),
        provider_format: Some(
            reply
                .syntaxe_flux
                .clone()
                .unwrap_or_else(|| syntax.to_owned()),
        ),
        dematerialisation_code: Some(code.to_owned()),
        company: config
            .erp_company
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        size_bytes: Some(bytes.len() as u64),
        content_sha256: Some(sha256.clone()),
        deposited_on: reply.date_depot.clone(),
        submitted_at_ms: Some(host.now_unix_ms()),
        attempts: Some(answer.attempts),
        state: DepositState::Pending,
        provider_state: None,
        state_changed_at: None,
        provider_message: reply.libelle.clone(),
        errors: Vec::new(),
        checked_at_ms: None,
        invoices: Vec::new(),
        lifecycle: Vec::new(),
    };
    // The deposit is made: failing to record it must not hide its number from the caller.
    let recorded = host
        .state_put(&deposit_key(&deposit.deposit_id), &deposit)
        .and_then(|()| host.state_put(&content_key(&sha256), &deposit.deposit_id));
    if let Err(e) = recorded {
        host.log(
            LogLevel::Error,
            format!(
                "deposit {} of {file_name} was made but could not be recorded ({}); it will \
                 not be followed automatically",
                deposit.deposit_id, e.message
            ),
        );
    }
    host.log(
        LogLevel::Info,
        format!(
            "deposited {file_name} ({invoice_format}, {}) as {} in {} attempt(s)",
            megabytes(bytes.len()),
            deposit.deposit_id,
            answer.attempts
        ),
    );
    Ok(deposit)
}

/// `einvoice.status`: asks Chorus Pro, records and returns the deposit's state.
pub fn status(
    query: &DepositRef,
    config: &Config,
    host: &Host<'_>,
) -> Result<Deposit, PluginError> {
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let id = query.deposit_id.trim();
    if id.is_empty() || id.contains(['/', '\\']) || id.chars().any(char::is_control) {
        return Err(PluginError::invalid_input(format!(
            "{:?} is not a deposit number (numeroFluxDepot)",
            query.deposit_id
        ))
        .with_field("deposit_id"));
    }
    let known: Option<Deposit> = host.state_get(&deposit_key(id))?;
    follow_one(id, known, host, &Client::new(config, host))
}

/// Whether a deposit was integrated (wholly or partly), so that its invoices exist.
fn integrated(deposit: &Deposit) -> bool {
    matches!(
        deposit.state,
        DepositState::Integrated | DepositState::PartiallyIntegrated
    )
}

/// Whether the follow-up still has something to learn about a deposit: its flow is in
/// progress or in a state this plugin does not know, or its invoices are not all settled.
fn to_follow(deposit: &Deposit) -> bool {
    match deposit.state {
        DepositState::Pending | DepositState::Unknown => true,
        DepositState::Rejected => false,
        DepositState::Integrated | DepositState::PartiallyIntegrated => {
            deposit.invoices.is_empty() || deposit.invoices.iter().any(|i| !i.settled)
        }
    }
}

/// Brings one deposit up to date: the flow's report until it is integrated, then the
/// invoices Chorus Pro made of it and their status.
fn follow_one(
    id: &str,
    known: Option<Deposit>,
    host: &Host<'_>,
    client: &Client<'_, '_>,
) -> Result<Deposit, PluginError> {
    let mut deposit = match known {
        // An integrated flow does not change any more: only its invoices do.
        Some(d) if integrated(&d) => d,
        known => report_one(id, known, host, client)?,
    };
    if integrated(&deposit) && to_follow(&deposit) {
        follow_invoices(&mut deposit, host, client)?;
        host.state_put(&deposit_key(id), &deposit)?;
    }
    Ok(deposit)
}

/// Emits `einvoice.status_changed` once per `key` (deposit or invoice, and status); a failure
/// to store it is logged, the follow-up goes on.
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

/// Asks `factures/v1/rechercher/fournisseur` for the invoices of an integrated deposit and
/// records their status, logging each change.
fn follow_invoices(
    deposit: &mut Deposit,
    host: &Host<'_>,
    client: &Client<'_, '_>,
) -> Result<(), PluginError> {
    let id = deposit.deposit_id.clone();
    let body = serde_json::to_vec(&protocol::SupplierInvoiceSearch {
        numero_flux_depot: &id,
    })
    .map_err(|e| PluginError::internal(format!("cannot encode the invoice search: {e}")))?;
    let answer = client.call(
        Method::Post,
        protocol::SUPPLIER_INVOICES,
        body,
        Target::Invoices { deposit_id: &id },
        client.policy(),
        Idempotency::Idempotent,
    )?;
    let found: protocol::SupplierInvoices = serde_json::from_value(answer.body).map_err(|e| {
        PluginError::new(
            ErrorKind::Upstream,
            format!("the invoices of deposit {id} have an unexpected shape ({e})"),
        )
    })?;
    let invoices = protocol::submitted_invoices(&found);
    for invoice in &invoices {
        let before = deposit
            .invoices
            .iter()
            .find(|i| i.invoice_id == invoice.invoice_id)
            .map(|i| i.status.as_str());
        if before != Some(invoice.status.as_str()) {
            tell_erp(
                host,
                events::EinvoiceStatusChanged {
                    deposit_id: id.clone(),
                    invoice: invoice.number.clone(),
                    previous_status: before.unwrap_or_default().to_owned(),
                    status: invoice.status.clone(),
                    detail: None,
                },
                &format!("{id}/{}/{}", invoice.invoice_id, invoice.status),
            );
            let level = match invoice.status.as_str() {
                "REJETEE" | "SUSPENDUE" | "A_RECYCLER" => LogLevel::Warn,
                _ => LogLevel::Info,
            };
            host.log(
                level,
                format!(
                    "invoice {} (identifiantFactureCPP {}) of deposit {id} is now {}",
                    invoice.number.as_deref().unwrap_or("?"),
                    invoice.invoice_id,
                    invoice.status
                ),
            );
        }
    }
    // An answer without invoices (not listed yet) keeps what was known.
    if !invoices.is_empty() {
        deposit.invoices = invoices;
    }
    deposit.checked_at_ms = Some(host.now_unix_ms());
    Ok(())
}

/// Consults the report of one deposit and records what it says.
fn report_one(
    id: &str,
    known: Option<Deposit>,
    host: &Host<'_>,
    client: &Client<'_, '_>,
) -> Result<Deposit, PluginError> {
    let body = serde_json::to_vec(&ReportQuery {
        numero_flux_depot: id,
        syntaxe_flux: known.as_ref().and_then(|d| d.provider_format.as_deref()),
    })
    .map_err(|e| PluginError::internal(format!("cannot encode the report query: {e}")))?;
    let answer = client.call(
        Method::Post,
        protocol::DETAILED_REPORT,
        body,
        Target::Report {
            deposit_id: id,
            known: known.is_some(),
        },
        client.policy(),
        Idempotency::Idempotent,
    )?;
    let report: DetailedReport = serde_json::from_value(answer.body).map_err(|e| {
        PluginError::new(
            ErrorKind::Upstream,
            format!("the report of deposit {id} has an unexpected shape ({e})"),
        )
    })?;
    let Some(provider_state) = report
        .etat_courant_depot_flux
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    else {
        return Err(PluginError::new(
            ErrorKind::Upstream,
            format!(
                "the report of deposit {id} has no state (etatCourantDepotFlux); try again later"
            ),
        ));
    };
    let mut deposit = known.unwrap_or_else(|| Deposit {
        deposit_id: id.to_owned(),
        file_name: report.nom_fichier.clone().unwrap_or_default(),
        format: None,
        provider_format: None,
        dematerialisation_code: None,
        company: None,
        size_bytes: None,
        content_sha256: None,
        deposited_on: None,
        submitted_at_ms: None,
        attempts: None,
        state: DepositState::Pending,
        provider_state: None,
        state_changed_at: None,
        provider_message: None,
        errors: Vec::new(),
        checked_at_ms: None,
        invoices: Vec::new(),
        lifecycle: Vec::new(),
    });
    let previous = deposit.state;
    deposit.state = protocol::deposit_state(&provider_state);
    deposit.provider_state = Some(provider_state);
    deposit.state_changed_at = report.date_heure_etat_courant_flux.clone();
    deposit.provider_message = report.libelle.clone();
    deposit.errors = protocol::report_errors(&report);
    deposit.checked_at_ms = Some(host.now_unix_ms());
    if deposit.deposited_on.is_none() {
        deposit.deposited_on = report.date_depot_flux.clone();
    }
    if deposit.file_name.is_empty() {
        deposit.file_name = report.nom_fichier.clone().unwrap_or_default();
    }
    host.state_put(&deposit_key(id), &deposit)?;
    if previous != deposit.state {
        tell_erp(
            host,
            events::EinvoiceStatusChanged {
                deposit_id: id.to_owned(),
                invoice: None,
                previous_status: previous.to_string(),
                status: deposit.state.to_string(),
                detail: deposit.provider_state.clone(),
            },
            &format!("{id}/{}", deposit.state),
        );
        let level = match deposit.state {
            DepositState::Rejected | DepositState::PartiallyIntegrated | DepositState::Unknown => {
                LogLevel::Warn
            }
            _ => LogLevel::Info,
        };
        host.log(
            level,
            format!(
                "deposit {id} ({}) is now {} ({}){}",
                deposit.file_name,
                deposit.state,
                deposit.provider_state.as_deref().unwrap_or_default(),
                if deposit.errors.is_empty() {
                    String::new()
                } else {
                    format!(" with {} error(s)", deposit.errors.len())
                }
            ),
        );
    }
    Ok(deposit)
}

/// `einvoice.list`: the recorded deposits, most recent first.
pub fn list(filter: &DepositFilter, host: &Host<'_>) -> Result<DepositList, PluginError> {
    let mut deposits: Vec<Deposit> = host
        .state_list::<Deposit>(DEPOSIT_PREFIX)?
        .into_iter()
        .map(|(_, d)| d)
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

/// The `follow_deposits` task: asks about deposits in progress and the invoices of integrated
/// ones until they are settled, oldest-checked first.
pub fn follow(config: &Config, host: &Host<'_>) -> Result<TaskOutcome, PluginError> {
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let mut pending: Vec<Deposit> = host
        .state_list::<Deposit>(DEPOSIT_PREFIX)?
        .into_iter()
        .map(|(_, d)| d)
        .filter(to_follow)
        .collect();
    if pending.is_empty() {
        return Ok(TaskOutcome::new("no deposit in progress"));
    }
    let total = pending.len();
    pending.sort_by_key(|d| (d.checked_at_ms.unwrap_or(0), d.submitted_at_ms.unwrap_or(0)));
    pending.truncate(FOLLOW_BATCH);
    let client = Client::new(config, host);
    let mut counts = [0usize; 5];
    let mut unknown_states: Vec<String> = Vec::new();
    let (mut invoices, mut paid, mut refused) = (0usize, 0usize, 0usize);
    let mut failed = 0usize;
    let mut first_failure = None;
    for deposit in pending {
        let id = deposit.deposit_id.clone();
        match follow_one(&id, Some(deposit), host, &client) {
            Ok(d) => {
                counts[match d.state {
                    DepositState::Pending => 0,
                    DepositState::Integrated => 1,
                    DepositState::PartiallyIntegrated => 2,
                    DepositState::Rejected => 3,
                    DepositState::Unknown => 4,
                }] += 1;
                if d.state == DepositState::Unknown {
                    unknown_states.push(format!(
                        "{id}: {}",
                        d.provider_state.as_deref().unwrap_or("?")
                    ));
                }
                invoices += d.invoices.len();
                paid += d
                    .invoices
                    .iter()
                    .filter(|i| i.status == "MISE_EN_PAIEMENT")
                    .count();
                refused += d
                    .invoices
                    .iter()
                    .filter(|i| matches!(i.status.as_str(), "REJETEE" | "SUSPENDUE"))
                    .count();
            }
            // These will fail the same way for every deposit: stop and say why.
            Err(e)
                if matches!(
                    e.kind,
                    ErrorKind::Unauthorized
                        | ErrorKind::Forbidden
                        | ErrorKind::Config
                        | ErrorKind::RateLimited
                ) =>
            {
                return Err(PluginError {
                    message: format!(
                        "follow-up stopped at deposit {id} after {} checked: {}",
                        counts.iter().sum::<usize>(),
                        e.message
                    ),
                    ..e
                });
            }
            Err(e) => {
                host.log(
                    LogLevel::Warn,
                    format!("cannot follow deposit {id}: {}", e.message),
                );
                failed += 1;
                first_failure.get_or_insert(format!("{id}: {}", e.message));
            }
        }
    }
    let checked = counts.iter().sum::<usize>() + failed;
    let mut summary = format!(
        "checked {checked} of {total} deposit(s) in progress: {} integrated, {} partially \
         integrated, {} rejected, {} still in progress",
        counts[1], counts[2], counts[3], counts[0]
    );
    if !unknown_states.is_empty() {
        summary.push_str(&format!(
            "; {} in a state this plugin does not know ({}): look at them in Chorus Pro",
            unknown_states.len(),
            unknown_states.join(", ")
        ));
    }
    if invoices > 0 {
        summary.push_str(&format!(
            "; {invoices} invoice(s) followed: {paid} in payment, {refused} rejected or \
             suspended"
        ));
    }
    if failed > 0 {
        summary.push_str(&format!(
            "; {failed} could not be checked (first: {})",
            first_failure.unwrap_or_default()
        ));
    }
    Ok(TaskOutcome::new(summary))
}

/// Refuses a second deposit of a file whose earlier deposit was not rejected.
fn refuse_duplicate(host: &Host<'_>, sha256: &str, file_name: &str) -> Result<(), PluginError> {
    let Some(earlier_id) = host.state_get::<String>(&content_key(sha256))? else {
        return Ok(());
    };
    let Some(earlier) = host.state_get::<Deposit>(&deposit_key(&earlier_id))? else {
        return Ok(());
    };
    if earlier.state == DepositState::Rejected {
        return Ok(());
    }
    Err(PluginError::invalid_input(format!(
        "{file_name} was already deposited as {} ({}{}, {}): Chorus Pro would register it a \
         second time, so it was not sent; follow the earlier deposit with its number",
        earlier.deposit_id,
        earlier.file_name,
        earlier
            .deposited_on
            .as_deref()
            .map(|d| format!(", on {d}"))
            .unwrap_or_default(),
        earlier.state
    ))
    .with_field("content_base64"))
}

/// The file name as Chorus Pro will show it: not empty, no path, no control characters.
fn check_file_name(name: &str) -> Result<&str, PluginError> {
    let trimmed = name.trim();
    let problem = if trimmed.is_empty() {
        Some("the file name is empty")
    } else if trimmed.contains(['/', '\\']) {
        Some("the file name contains a path separator; give the name only")
    } else if trimmed.chars().any(char::is_control) {
        Some("the file name contains control characters")
    } else if trimmed.chars().count() > 200 {
        Some("the file name is longer than 200 characters")
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

/// Decodes standard base64, ignoring line breaks and spaces (as MIME writers insert them).
fn decode_base64(text: &str) -> Result<Vec<u8>, PluginError> {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `1.42 MB` (binary megabytes, as the 10 MB limit).
fn megabytes(bytes: usize) -> String {
    format!("{:.2} MB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_names_only() {
        assert_eq!(check_file_name(" a.xml ").unwrap(), "a.xml");
        for bad in ["", "  ", "dir/a.xml", "c:\\a.xml", "a\nb.xml"] {
            let e = check_file_name(bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("file_name"), "{bad:?}");
        }
    }

    #[test]
    fn base64_with_line_breaks_is_fine_and_garbage_is_named() {
        assert_eq!(decode_base64("QUJD\r\nREVG\n").unwrap(), b"ABCDEF");
        let e = decode_base64("not base64!").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert_eq!(e.field.as_deref(), Some("content_base64"));
        assert!(decode_base64("").is_err());
    }

    #[test]
    fn sizes_and_digests_read_well() {
        assert_eq!(megabytes(MAX_FILE_BYTES), "10.00 MB");
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
