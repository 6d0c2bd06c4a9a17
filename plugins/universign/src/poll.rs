//! The `poll_signatures` task: follows every pending transaction of the instance.
//!
//! A transaction is pending while it waits for signatures, or once completed until its signed
//! documents are stored. Each round asks Universign about the pending ones, oldest check
//! first; a completed transaction has its documents fetched and stored once, then is done;
//! expired, canceled and failed ones are final and never asked about again.
//!
//! A transaction whose check fails keeps its state, records the error (shown by
//! `esign.status`) and is retried at the next round; the others go on. Only a failure that
//! concerns the whole service — Universign unreachable, the credentials refused — stops the
//! round, since every other call would fail the same way (and repeated bad logins may lock
//! the account); the round then ends in an error naming what was left for the next one.

use crate::config::Config;
use crate::store::{self, Record};
use crate::transactions::{self, StepError};
use passerelle_plugin_api::prelude::*;

/// The task's name in the manifest.
pub const TASK: &str = "poll_signatures";

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub pending: usize,
    pub checked: usize,
    pub completed: usize,
    pub documents_stored: usize,
    pub expired: usize,
    pub canceled: usize,
    pub failed: usize,
    pub waiting: usize,
    pub errors: usize,
    /// Not attempted because the round stopped.
    pub skipped: usize,
}

impl Round {
    pub fn summary(&self) -> String {
        if self.pending == 0 {
            return "no pending transaction: nothing to check".to_owned();
        }
        format!(
            "{} pending transaction(s), {} checked: {} completed ({} signed document(s) \
             stored), {} expired, {} canceled, {} failed, {} still waiting, {} error(s) \
             (retried next round), {} skipped",
            self.pending,
            self.checked,
            self.completed,
            self.documents_stored,
            self.expired,
            self.canceled,
            self.failed,
            self.waiting,
            self.errors,
            self.skipped
        )
    }
}

/// Runs one round.
pub fn run(config: &Config, host: &Host<'_>) -> Result<TaskOutcome, PluginError> {
    if !config.enabled {
        return Ok(TaskOutcome::new(
            "electronic signature is disabled for this instance: nothing checked",
        ));
    }
    if let Some(problem) = config.connection_problems().into_iter().next() {
        return Err(problem);
    }
    let mut pending: Vec<Record> = store::list(host)?
        .into_iter()
        .filter(Record::is_pending)
        .collect();
    // Oldest check first, so that a round cut short does not starve the same transactions.
    pending.sort_by_key(|r| r.transaction.checked_at_ms.unwrap_or(0));
    let mut round = Round {
        pending: pending.len(),
        ..Round::default()
    };
    let mut stopped: Option<PluginError> = None;
    let total = pending.len();
    for (index, mut record) in pending.into_iter().enumerate() {
        let id = record.transaction.id.clone();
        let before = record.transaction.status;
        round.checked += 1;
        match poll_one(config, host, &mut record) {
            Ok(stored) => {
                round.documents_stored += stored;
                match record.transaction.status {
                    SignatureStatus::Completed => round.completed += 1,
                    SignatureStatus::Expired => round.expired += 1,
                    SignatureStatus::Canceled => round.canceled += 1,
                    SignatureStatus::Failed => round.failed += 1,
                    SignatureStatus::Ready => round.waiting += 1,
                }
                if record.transaction.status.is_final() {
                    emit_final(host, &record, before);
                }
                if record.transaction.status != before {
                    host.log(
                        LogLevel::Info,
                        format!(
                            "transaction {id}: {before} -> {}",
                            record.transaction.status
                        ),
                    );
                }
            }
            Err(e) => {
                round.errors += 1;
                host.log(
                    LogLevel::Warn,
                    format!(
                        "transaction {id} could not be checked (attempt {}), retried next round: {}",
                        record.failures, e.error.message
                    ),
                );
                if e.service_wide {
                    round.skipped = total - index - 1;
                    stopped = Some(e.error);
                    break;
                }
            }
        }
    }
    match stopped {
        None => Ok(TaskOutcome::new(round.summary())),
        Some(e) => Err(PluginError {
            message: format!(
                "{} — round stopped, {} transaction(s) left for the next round ({})",
                e.message,
                round.skipped + 1,
                round.summary()
            ),
            ..e
        }),
    }
}

/// Tells the ERP that a transaction reached its final status (once: the event's key is the
/// transaction and status, so a round run again does not repeat it). A completed transaction
/// is told once its signed documents are stored, so the ERP can fetch them at once.
fn emit_final(host: &Host<'_>, record: &Record, before: SignatureStatus) {
    let t = &record.transaction;
    let kind = match t.status {
        SignatureStatus::Completed => events::types::ESIGN_COMPLETED,
        SignatureStatus::Canceled => events::types::ESIGN_REFUSED,
        SignatureStatus::Expired => events::types::ESIGN_EXPIRED,
        SignatureStatus::Failed => events::types::ESIGN_FAILED,
        SignatureStatus::Ready => return,
    };
    let data = events::EsignEvent {
        transaction_id: t.id.clone(),
        status: t.status.to_string(),
        previous_status: before.to_string(),
        reference: t.custom_id.clone(),
    };
    let key = format!("{}/{}", t.id, t.status);
    if let Err(e) = host.emit_event(kind, &data, Some(&key)) {
        host.log(
            LogLevel::Warn,
            format!(
                "transaction {}: the {kind} event could not be stored: {}",
                t.id, e.message
            ),
        );
    }
}

/// Checks one transaction; returns how many signed documents were stored. Every change is
/// saved before returning, failures included.
fn poll_one(config: &Config, host: &Host<'_>, record: &mut Record) -> Result<usize, StepError> {
    let result = (|| {
        if record.transaction.status == SignatureStatus::Ready {
            transactions::refresh(config, host, record)?;
            store::save(host, record).map_err(|error| StepError {
                error,
                service_wide: false,
            })?;
        }
        if record.transaction.status == SignatureStatus::Completed
            && !record.transaction.documents_stored
        {
            return transactions::fetch_documents(config, host, record).map(|d| d.len());
        }
        Ok(0)
    })();
    if let Err(e) = &result {
        transactions::note_failure(host, record, &e.error);
    }
    result
}
