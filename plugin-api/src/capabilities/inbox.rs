//! `einvoice.inbox`, `einvoice.fetch`, `einvoice.respond`: the invoices a company receives
//! from its suppliers through its e-invoicing platform, and the buyer's answers to them.
//!
//! Since the French reform every company receives its supplier invoices through an approved
//! platform. The provider collects them (a task polls the platform), stores each one once
//! with its checksum, and the ERP lists them ([`EinvoiceInbox`]), downloads one with its
//! metadata ([`EinvoiceFetch`]) and answers for the buyer ([`EinvoiceRespond`]: approved,
//! refused with a reason, disputed, payment transmitted), which the provider sends back to
//! the supplier through the platform.

use super::einvoice::InvoiceFormat;
use super::lifecycle::{LifecycleEvent, LifecycleState};
use crate::contract::OperationContract;
use crate::manifest::Category;
use crate::plugin::Operation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The received invoices this instance collected, most recent first.
#[derive(Debug)]
pub struct EinvoiceInbox;

impl Operation for EinvoiceInbox {
    const NAME: &'static str = "einvoice.inbox";
    type Input = InboxQuery;
    type Output = Inbox;
}

inventory::submit! {
    OperationContract::of::<EinvoiceInbox>(Category::Einvoice, "The received invoices this instance collected, most recent first")
}

/// One received invoice: its original file (base64), metadata and checksum.
#[derive(Debug)]
pub struct EinvoiceFetch;

impl Operation for EinvoiceFetch {
    const NAME: &'static str = "einvoice.fetch";
    type Input = ReceivedRef;
    type Output = ReceivedFile;
}

inventory::submit! {
    OperationContract::of::<EinvoiceFetch>(Category::Einvoice, "One received invoice: its original file (base64), metadata and checksum")
}

/// Sends the buyer's answer to a received invoice back to its supplier.
#[derive(Debug)]
pub struct EinvoiceRespond;

impl Operation for EinvoiceRespond {
    const NAME: &'static str = "einvoice.respond";
    type Input = BuyerResponse;
    type Output = ResponseSent;
}

inventory::submit! {
    OperationContract::of::<EinvoiceRespond>(Category::Einvoice, "Sends the buyer's answer to a received invoice back to its supplier")
}

/// Which received invoices to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InboxQuery {
    /// Ask the platform for new invoices first (otherwise only what was collected).
    #[serde(default)]
    pub collect: bool,
    /// Only invoices the ERP has not answered yet.
    #[serde(default)]
    pub unanswered: bool,
    /// At most this many, most recent first.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Received invoices, most recent first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Inbox {
    pub invoices: Vec<ReceivedInvoice>,
    /// Invoices the collection found but could not store this time (kept for the next one).
    #[serde(default)]
    pub collect_problems: Vec<String>,
}

/// A supplier invoice received through the platform, as the provider stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReceivedInvoice {
    /// The platform's identifier of the received file (AFNOR: `flowId`).
    pub invoice_id: String,
    pub file_name: String,
    #[serde(default)]
    pub format: Option<InvoiceFormat>,
    /// The platform's name for the format (AFNOR: `flowSyntax`).
    #[serde(default)]
    pub provider_format: Option<String>,
    /// The invoice number written in the file (EN 16931 BT-1), when it could be read.
    #[serde(default)]
    pub invoice_number: Option<String>,
    /// The supplier's identifier written in the file (SIREN or SIRET), when it could be read.
    #[serde(default)]
    pub supplier: Option<String>,
    /// When the platform received it, as the platform wrote it.
    #[serde(default)]
    pub received_at: Option<String>,
    pub size_bytes: u64,
    /// SHA-256 of the original file, hex.
    pub content_sha256: String,
    /// When this instance stored it (ms since the Unix epoch).
    pub collected_at_ms: u64,
    /// The buyer's answers sent so far, oldest first.
    #[serde(default)]
    pub lifecycle: Vec<LifecycleEvent>,
}

/// Names a received invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReceivedRef {
    pub invoice_id: String,
}

/// A received invoice with its original file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReceivedFile {
    pub invoice: ReceivedInvoice,
    /// The original file's bytes, base64 (standard alphabet).
    pub content_base64: String,
}

/// What the buyer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuyerAnswer {
    /// The buyer has taken the invoice in charge (optional step).
    TakenInCharge,
    Approved,
    PartiallyApproved,
    /// Needs `reason`.
    Disputed,
    /// Needs `reason`.
    Suspended,
    /// Needs `reason`.
    Refused,
    PaymentTransmitted,
}

impl BuyerAnswer {
    /// The lifecycle state the answer puts the invoice in.
    pub fn state(self) -> LifecycleState {
        match self {
            BuyerAnswer::TakenInCharge => LifecycleState::TakenInCharge,
            BuyerAnswer::Approved => LifecycleState::Approved,
            BuyerAnswer::PartiallyApproved => LifecycleState::PartiallyApproved,
            BuyerAnswer::Disputed => LifecycleState::Disputed,
            BuyerAnswer::Suspended => LifecycleState::Suspended,
            BuyerAnswer::Refused => LifecycleState::Refused,
            BuyerAnswer::PaymentTransmitted => LifecycleState::PaymentTransmitted,
        }
    }

    /// Whether the answer must say why.
    pub fn needs_reason(self) -> bool {
        matches!(
            self,
            BuyerAnswer::Disputed | BuyerAnswer::Suspended | BuyerAnswer::Refused
        )
    }
}

/// The buyer's answer to one received invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BuyerResponse {
    pub invoice_id: String,
    pub answer: BuyerAnswer,
    /// Why (required to refuse, dispute or suspend), in words the supplier reads.
    #[serde(default)]
    pub reason: Option<String>,
    /// The reason code of the platform's list, when the ERP knows it.
    #[serde(default)]
    pub reason_code: Option<String>,
}

/// What was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResponseSent {
    pub invoice_id: String,
    /// The platform's identifier of the answer it accepted.
    pub response_id: String,
    /// The answer as recorded on the invoice.
    pub event: LifecycleEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_defaults() {
        assert_eq!(EinvoiceInbox::NAME, "einvoice.inbox");
        assert_eq!(EinvoiceFetch::NAME, "einvoice.fetch");
        assert_eq!(EinvoiceRespond::NAME, "einvoice.respond");
        let q: InboxQuery = serde_json::from_str("{}").unwrap();
        assert_eq!(q, InboxQuery::default());
        let r: BuyerResponse =
            serde_json::from_str(r#"{"invoice_id":"f1","answer":"refused","reason":"x"}"#).unwrap();
        assert!(r.answer.needs_reason());
        assert_eq!(r.answer.state(), LifecycleState::Refused);
    }
}
