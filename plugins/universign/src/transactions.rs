//! The `esign.*` operations, and the two steps they share with the polling task: refreshing
//! a transaction from Universign and fetching its signed documents.
//!
//! Everything the ERP asks is answered from the instance's state when it can be, so that
//! following a transaction costs Universign nothing; `refresh: true` asks Universign. The
//! signed documents are fetched once, when the transaction is completed, and served from the
//! state afterwards.

use crate::client::{self, Client, Failure, Subject};
use crate::config::Config;
use crate::mapping;
use crate::store::{self, Record};
use crate::xmlrpc::Value;
use passerelle_plugin_api::prelude::*;

pub const GET_TRANSACTION_INFO: &str = "requester.getTransactionInfo";
pub const GET_DOCUMENTS: &str = "requester.getDocuments";
pub const REQUEST_TRANSACTION: &str = "requester.requestTransaction";
/// `requester.cancelTransaction(String transactionId)`, `void` (signature guide 8.8).
pub const CANCEL_TRANSACTION: &str = "requester.cancelTransaction";

/// A step that failed, and whether every other transaction would fail the same way.
#[derive(Debug, Clone)]
pub struct StepError {
    pub error: PluginError,
    pub service_wide: bool,
}

impl StepError {
    fn call(config: &Config, failure: &Failure, method: &str, id: &str) -> Self {
        StepError {
            error: client::describe(failure, config, method, Subject::Transaction(id)),
            service_wide: failure.is_service_wide(),
        }
    }

    fn answer(error: PluginError) -> Self {
        StepError {
            error,
            service_wide: false,
        }
    }
}

/// Asks Universign for the transaction's state and merges it into the record (not saved).
pub fn refresh(config: &Config, host: &Host<'_>, record: &mut Record) -> Result<(), StepError> {
    let id = record.transaction.id.clone();
    let value = Client::new(config, host)
        .call(GET_TRANSACTION_INFO, vec![Value::from(id.as_str())])
        .map_err(|f| StepError::call(config, &f, GET_TRANSACTION_INFO, &id))?;
    let info = mapping::transaction_info(&value).map_err(StepError::answer)?;
    merge(record, info, host.now_unix_ms());
    Ok(())
}

/// Fetches the signed documents of a completed transaction and stores them with the record.
pub fn fetch_documents(
    config: &Config,
    host: &Host<'_>,
    record: &mut Record,
) -> Result<Vec<(String, Vec<u8>)>, StepError> {
    let id = record.transaction.id.clone();
    let value = Client::new(config, host)
        .call(GET_DOCUMENTS, vec![Value::from(id.as_str())])
        .map_err(|f| StepError::call(config, &f, GET_DOCUMENTS, &id))?;
    let documents = mapping::documents(&value).map_err(StepError::answer)?;
    store::store_documents(host, record, &documents, host.now_unix_ms())
        .map_err(StepError::answer)?;
    host.log(
        LogLevel::Info,
        format!(
            "transaction {id}: {} signed document(s) stored: {}",
            documents.len(),
            record
                .signed
                .iter()
                .map(|d| format!("{} ({} bytes, sha256 {})", d.name, d.size, d.sha256))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    Ok(documents)
}

/// Records a failed refresh or fetch on the transaction, so that `esign.status` shows it.
pub fn note_failure(host: &Host<'_>, record: &mut Record, error: &PluginError) {
    record.failures = record.failures.saturating_add(1);
    record.transaction.last_error = Some(error.message.clone());
    if let Err(e) = store::save(host, record) {
        host.log(
            LogLevel::Error,
            format!(
                "transaction {}: the failure could not be recorded: {}",
                record.transaction.id, e.message
            ),
        );
    }
}

/// Merges Universign's view into the record: statuses, URLs and dates from Universign;
/// e-mail and phone from the request when Universign does not repeat them.
fn merge(record: &mut Record, info: mapping::TransactionInfo, now_ms: u64) {
    let tx = &mut record.transaction;
    tx.status = info.status;
    if !info.signers.is_empty() {
        let previous = std::mem::take(&mut tx.signers);
        tx.signers = info
            .signers
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let known = previous.get(i);
                let or_known = |value: String, pick: fn(&SignerState) -> &String| {
                    if value.is_empty() {
                        known.map(pick).cloned().unwrap_or_default()
                    } else {
                        value
                    }
                };
                SignerState {
                    first_name: or_known(s.first_name, |k| &k.first_name),
                    last_name: or_known(s.last_name, |k| &k.last_name),
                    email: or_known(s.email.unwrap_or_default(), |k| &k.email),
                    phone: known.and_then(|k| k.phone.clone()),
                    status: s.status,
                    url: s.url.or_else(|| known.and_then(|k| k.url.clone())),
                    action_date: s.action_date,
                }
            })
            .collect();
    }
    if tx.custom_id.is_none() {
        tx.custom_id = info.custom_id;
    }
    if tx.description.is_none() {
        tx.description = info.description;
    }
    if tx.signing_url.is_none() {
        tx.signing_url = tx.signers.first().and_then(|s| s.url.clone());
    }
    tx.checked_at_ms = Some(now_ms);
    tx.last_error = None;
    record.failures = 0;
}

fn require_connection(config: &Config) -> Result<(), PluginError> {
    match config.connection_problems().into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// `esign.request`.
pub fn request(
    input: &SignatureRequest,
    config: &Config,
    host: &Host<'_>,
) -> Result<SignatureTransaction, PluginError> {
    if !config.enabled {
        return Err(PluginError::config(
            "enabled",
            "electronic signature is disabled for this instance: set `enabled` to true to send \
             documents for signature",
        ));
    }
    require_connection(config)?;
    let prepared = mapping::prepare(input)?;
    if let Some(custom_id) = input
        .custom_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        if let Some(existing) = store::find_by_custom_id(host, custom_id)? {
            host.log(
                LogLevel::Info,
                format!(
                    "custom id {custom_id} already has transaction {} ({}); answering it instead \
                     of creating another",
                    existing.transaction.id, existing.transaction.status
                ),
            );
            return Ok(existing.transaction);
        }
    }
    let value = Client::new(config, host).call_or_error(
        REQUEST_TRANSACTION,
        vec![Value::Struct(prepared.params)],
        Subject::NewTransaction,
    )?;
    let (id, url) = mapping::created(&value)?;
    let now = host.now_unix_ms();
    let signers = prepared
        .signers
        .into_iter()
        .enumerate()
        .map(|(i, s)| SignerState {
            first_name: s.first_name,
            last_name: s.last_name,
            email: s.email,
            phone: s.phone,
            status: if i == 0 {
                SignerStatus::Ready
            } else {
                SignerStatus::Waiting
            },
            url: (i == 0).then(|| url.clone()),
            action_date: None,
        })
        .collect();
    let trimmed = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let record = Record {
        transaction: SignatureTransaction {
            id: id.clone(),
            custom_id: trimmed(&input.custom_id),
            description: trimmed(&input.description),
            status: SignatureStatus::Ready,
            signing_url: Some(url),
            signers,
            documents: prepared
                .documents
                .iter()
                .map(|(name, bytes)| SignatureDocument {
                    name: name.clone(),
                    size: bytes.len() as u64,
                    sha256: store::sha256_hex(bytes),
                })
                .collect(),
            documents_stored: false,
            created_at_ms: now,
            checked_at_ms: Some(now),
            last_error: None,
        },
        signed: Vec::new(),
        fetched_at_ms: None,
        failures: 0,
    };
    store::save(host, &record).map_err(|e| {
        PluginError::internal(format!(
            "Universign created transaction {id}, but it could not be stored ({}); follow it \
             with esign.status {{\"id\": \"{id}\", \"refresh\": true}}",
            e.message
        ))
    })?;
    host.log(
        LogLevel::Info,
        format!(
            "transaction {id} requested: {} document(s), {} signer(s)",
            record.transaction.documents.len(),
            record.transaction.signers.len()
        ),
    );
    Ok(record.transaction)
}

/// `esign.cancel`: asks Universign to cancel, then reads the transaction back so that the
/// answer (and the stored record) is what Universign now says. Universign refuses to cancel
/// a transaction that is no longer pending (fault 73027), and that refusal is returned.
pub fn cancel(
    input: &SignatureRef,
    config: &Config,
    host: &Host<'_>,
) -> Result<SignatureTransaction, PluginError> {
    if !config.enabled {
        return Err(PluginError::config(
            "enabled",
            "electronic signature is disabled for this instance: set `enabled` to true to \
             cancel transactions",
        ));
    }
    require_connection(config)?;
    let id = store::check_id(&input.id)?;
    let stored = store::load(host, id)?;
    if let Some(record) = &stored {
        if record.transaction.status.is_final() {
            return Err(PluginError::invalid_input(format!(
                "transaction {id} is already {} and cannot be canceled",
                record.transaction.status
            ))
            .with_field("id"));
        }
    }
    Client::new(config, host).call_or_error(
        CANCEL_TRANSACTION,
        vec![Value::from(id)],
        Subject::Transaction(id),
    )?;
    host.log(LogLevel::Info, format!("transaction {id} canceled"));
    let record = match stored {
        Some(record) => refreshed(record, config, host)?,
        None => adopt(id, config, host)?,
    };
    Ok(record.transaction)
}

/// `esign.status`.
pub fn status(
    input: &SignatureRef,
    config: &Config,
    host: &Host<'_>,
) -> Result<SignatureTransaction, PluginError> {
    let id = store::check_id(&input.id)?;
    let record = match store::load(host, id)? {
        Some(record) if !input.refresh => return Ok(record.transaction),
        Some(record) => record,
        None if input.refresh => return adopt(id, config, host).map(|r| r.transaction),
        None => return Err(not_stored(id)),
    };
    refreshed(record, config, host).map(|r| r.transaction)
}

/// Refreshes a stored record and saves it; a failure is recorded on it and returned.
fn refreshed(mut record: Record, config: &Config, host: &Host<'_>) -> Result<Record, PluginError> {
    require_connection(config)?;
    match refresh(config, host, &mut record) {
        Ok(()) => {
            store::save(host, &record)?;
            Ok(record)
        }
        Err(e) => {
            note_failure(host, &mut record, &e.error);
            Err(e.error)
        }
    }
}

/// A transaction Universign knows but this instance does not (created before Passerelle, or
/// by another instance): stored from what Universign says, then followed like the others.
fn adopt(id: &str, config: &Config, host: &Host<'_>) -> Result<Record, PluginError> {
    require_connection(config)?;
    let now = host.now_unix_ms();
    let mut record = Record {
        transaction: SignatureTransaction {
            id: id.to_owned(),
            custom_id: None,
            description: None,
            status: SignatureStatus::Ready,
            signing_url: None,
            signers: Vec::new(),
            documents: Vec::new(),
            documents_stored: false,
            created_at_ms: now,
            checked_at_ms: None,
            last_error: None,
        },
        signed: Vec::new(),
        fetched_at_ms: None,
        failures: 0,
    };
    refresh(config, host, &mut record).map_err(|e| e.error)?;
    store::save(host, &record)?;
    host.log(
        LogLevel::Info,
        format!(
            "transaction {id} adopted from Universign ({})",
            record.transaction.status
        ),
    );
    Ok(record)
}

/// `esign.documents`.
pub fn documents(
    input: &SignatureRef,
    config: &Config,
    host: &Host<'_>,
) -> Result<SignedDocuments, PluginError> {
    let id = store::check_id(&input.id)?;
    let mut record = match store::load(host, id)? {
        Some(record) => record,
        None if input.refresh => adopt(id, config, host)?,
        None => return Err(not_stored(id)),
    };
    if record.transaction.documents_stored {
        match store::load_documents(host, &record) {
            Ok(documents) => return Ok(answer(&record, documents)),
            Err(e) => host.log(
                LogLevel::Error,
                format!("{}; fetching them again from Universign", e.message),
            ),
        }
        record.transaction.documents_stored = false;
    } else if record.transaction.status == SignatureStatus::Ready || input.refresh {
        record = refreshed(record, config, host)?;
    }
    match record.transaction.status {
        SignatureStatus::Completed => {}
        SignatureStatus::Ready => {
            let waiting = record
                .transaction
                .signers
                .iter()
                .map(|s| format!("{} {}: {}", s.first_name, s.last_name, s.status))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(PluginError::invalid_input(format!(
                "transaction {id} is still waiting for signatures ({waiting}): its signed \
                 documents can be fetched once every signer has signed"
            ))
            .with_field("id"));
        }
        other => {
            return Err(PluginError::invalid_input(format!(
                "transaction {id} is {other}: it has no signed documents"
            ))
            .with_field("id"))
        }
    }
    require_connection(config)?;
    match fetch_documents(config, host, &mut record) {
        Ok(_) => {
            let documents = store::load_documents(host, &record)?;
            Ok(answer(&record, documents))
        }
        Err(e) => {
            note_failure(host, &mut record, &e.error);
            Err(e.error)
        }
    }
}

fn answer(record: &Record, documents: Vec<SignedDocument>) -> SignedDocuments {
    SignedDocuments {
        id: record.transaction.id.clone(),
        custom_id: record.transaction.custom_id.clone(),
        documents,
        fetched_at_ms: record.fetched_at_ms.unwrap_or_default(),
    }
}

fn not_stored(id: &str) -> PluginError {
    PluginError::new(
        ErrorKind::NotFound,
        format!(
            "this instance has no transaction {id}; to look it up at Universign (and follow it \
             from now on), ask again with \"refresh\": true"
        ),
    )
    .with_field("id")
}
