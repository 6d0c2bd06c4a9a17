//! `einvoice.*`: transmitting structured invoices to an e-invoicing platform (Chorus Pro for
//! French public buyers, later a PDP) and following what became of them.
//!
//! A submission is a file the ERP already generated (Factur-X PDF, UBL or CII XML); the
//! provider detects its format, deposits it and answers with a [`Deposit`]: the platform's
//! deposit number plus what is known so far. The platform processes deposits
//! asynchronously, so [`EinvoiceStatus`] asks again and [`EinvoiceList`] lists what this
//! instance deposited, as the provider recorded it.

use crate::contract::OperationContract;
use crate::manifest::Category;
use crate::plugin::Operation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Deposits one invoice file.
#[derive(Debug)]
pub struct EinvoiceSubmit;

impl Operation for EinvoiceSubmit {
    const NAME: &'static str = "einvoice.submit";
    type Input = InvoiceSubmission;
    type Output = Deposit;
}

inventory::submit! {
    OperationContract::of::<EinvoiceSubmit>(Category::Einvoice, "Deposits one invoice file")
}

/// Asks the platform for the current state of a deposit and records it.
#[derive(Debug)]
pub struct EinvoiceStatus;

impl Operation for EinvoiceStatus {
    const NAME: &'static str = "einvoice.status";
    type Input = DepositRef;
    type Output = Deposit;
}

inventory::submit! {
    OperationContract::of::<EinvoiceStatus>(Category::Einvoice, "Asks the platform for the current state of a deposit and records it")
}

/// The deposits this instance recorded, most recent first (no call to the platform).
#[derive(Debug)]
pub struct EinvoiceList;

impl Operation for EinvoiceList {
    const NAME: &'static str = "einvoice.list";
    type Input = DepositFilter;
    type Output = DepositList;
}

inventory::submit! {
    OperationContract::of::<EinvoiceList>(Category::Einvoice, "The deposits this instance recorded, most recent first")
}

/// An invoice file to transmit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceSubmission {
    /// Name of the file as the platform will show it, e.g. `FA-2025-0042.pdf`.
    pub file_name: String,
    /// The file's bytes, base64 (standard alphabet; line breaks are ignored).
    pub content_base64: String,
    /// The ERP's dematerialisation code of the invoice; only the codes the instance accepts
    /// are transmitted.
    pub dematerialisation_code: String,
}

/// Invoice formats, detected from the content rather than from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceFormat {
    /// A PDF/A-3 with an embedded `factur-x.xml` (CII).
    FacturX,
    /// A UBL 2.1 `Invoice` document.
    Ubl,
    /// A UN/CEFACT `CrossIndustryInvoice` document (D16B).
    Cii,
}

impl std::fmt::Display for InvoiceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvoiceFormat::FacturX => "Factur-X",
            InvoiceFormat::Ubl => "UBL",
            InvoiceFormat::Cii => "CII",
        })
    }
}

/// Where a deposit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DepositState {
    /// Received, not processed yet.
    Pending,
    /// Every invoice of the deposit was integrated.
    Integrated,
    /// Some invoices were integrated, others refused (see the errors).
    PartiallyIntegrated,
    /// Refused as a whole, or failed (see the errors and `provider_state`): final, and the
    /// same file may be deposited again once corrected.
    Rejected,
    /// The platform reported a state the provider does not know (see `provider_state`): not
    /// taken for "in progress", so that it is looked at rather than waited for.
    Unknown,
}

impl DepositState {
    /// Whether the platform will not change this state any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DepositState::Integrated | DepositState::PartiallyIntegrated | DepositState::Rejected
        )
    }
}

impl std::fmt::Display for DepositState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DepositState::Pending => "pending",
            DepositState::Integrated => "integrated",
            DepositState::PartiallyIntegrated => "partially_integrated",
            DepositState::Rejected => "rejected",
            DepositState::Unknown => "unknown",
        })
    }
}

/// One reason the platform gave for refusing a deposit or one of its invoices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DepositError {
    /// The platform's error code, when it gives one.
    #[serde(default)]
    pub code: Option<String>,
    pub message: String,
    /// The platform's classification of the error (e.g. technical, business).
    #[serde(default)]
    pub nature: Option<String>,
    /// The invoice (payment request) number concerned, for per-invoice errors.
    #[serde(default)]
    pub invoice: Option<String>,
    /// Supplier identifier of the invoice concerned.
    #[serde(default)]
    pub supplier: Option<String>,
    /// Recipient identifier of the invoice concerned.
    #[serde(default)]
    pub recipient: Option<String>,
}

/// A deposit as the provider recorded it: what was sent and what the platform said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deposit {
    /// The platform's deposit number (Chorus Pro: `numeroFluxDepot`).
    pub deposit_id: String,
    pub file_name: String,
    /// Unknown for deposits this instance did not make itself.
    #[serde(default)]
    pub format: Option<InvoiceFormat>,
    /// The platform's name for the format (Chorus Pro: `syntaxeFlux`).
    #[serde(default)]
    pub provider_format: Option<String>,
    #[serde(default)]
    pub dematerialisation_code: Option<String>,
    /// The ERP company the invoice belongs to, when the instance knows it.
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub size_bytes: Option<u64>,
    /// SHA-256 of the file, hex: what lets the provider refuse a second deposit of it.
    #[serde(default)]
    pub content_sha256: Option<String>,
    /// Deposit date as the platform gave it.
    #[serde(default)]
    pub deposited_on: Option<String>,
    /// When this instance made the deposit (ms since the Unix epoch).
    #[serde(default)]
    pub submitted_at_ms: Option<u64>,
    /// HTTP attempts the submission took (more than 1 after transient failures).
    #[serde(default)]
    pub attempts: Option<u32>,
    pub state: DepositState,
    /// The platform's own state code, e.g. `IN_INTEGRE`.
    #[serde(default)]
    pub provider_state: Option<String>,
    /// When the platform reached that state, as it wrote it.
    #[serde(default)]
    pub state_changed_at: Option<String>,
    /// The platform's message with its last answer.
    #[serde(default)]
    pub provider_message: Option<String>,
    /// Every error of a rejected or partially integrated deposit.
    #[serde(default)]
    pub errors: Vec<DepositError>,
    /// When the state was last asked for (ms since the Unix epoch).
    #[serde(default)]
    pub checked_at_ms: Option<u64>,
    /// The invoices the platform made of an integrated deposit, with their own life cycle
    /// (made available to the buyer, suspended, rejected, paid…).
    #[serde(default)]
    pub invoices: Vec<SubmittedInvoice>,
    /// The invoice's lifecycle statuses after the deposit (XP Z12-012 for French approved
    /// platforms), oldest first, each with the platform's own code; empty for platforms
    /// without one (Chorus Pro's deposit states are in `state`/`provider_state`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<crate::capabilities::lifecycle::LifecycleEvent>,
}

/// One invoice of an integrated deposit, as the platform follows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubmittedInvoice {
    /// The platform's identifier of the invoice (Chorus Pro: `identifiantFactureCPP`).
    pub invoice_id: String,
    /// The invoice number, as written in the file.
    #[serde(default)]
    pub number: Option<String>,
    /// The platform's status code, e.g. `MISE_A_DISPOSITION`, `MISE_EN_PAIEMENT`.
    pub status: String,
    /// Whether the status will not change any more (paid, rejected, cancelled).
    #[serde(default)]
    pub settled: bool,
}

impl Deposit {
    /// The latest lifecycle status, if the platform gave any.
    pub fn current_lifecycle(&self) -> Option<&crate::capabilities::lifecycle::LifecycleEvent> {
        self.lifecycle.last()
    }
}

/// Names a deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DepositRef {
    pub deposit_id: String,
}

/// Which recorded deposits to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DepositFilter {
    /// Only deposits in this state.
    #[serde(default)]
    pub state: Option<DepositState>,
    /// At most this many, most recent first.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Recorded deposits, most recent first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DepositList {
    pub deposits: Vec<Deposit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_wire_spellings() {
        assert_eq!(EinvoiceSubmit::NAME, "einvoice.submit");
        assert_eq!(EinvoiceStatus::NAME, "einvoice.status");
        assert_eq!(EinvoiceList::NAME, "einvoice.list");
        assert_eq!(
            serde_json::to_value(DepositState::PartiallyIntegrated).unwrap(),
            "partially_integrated"
        );
        assert_eq!(
            serde_json::to_value(InvoiceFormat::FacturX).unwrap(),
            "factur_x"
        );
        assert!(!DepositState::Pending.is_final());
        assert!(!DepositState::Unknown.is_final());
        assert!(DepositState::Rejected.is_final());
        assert_eq!(
            serde_json::to_value(DepositState::Unknown).unwrap(),
            "unknown"
        );
        let f: DepositFilter = serde_json::from_str("{}").unwrap();
        assert_eq!(f, DepositFilter::default());
    }
}
