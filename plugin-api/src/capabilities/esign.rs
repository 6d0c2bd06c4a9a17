//! `esign.*`: electronic signature of documents (quotes, delivery notes) by one or more
//! signers, whatever the provider.
//!
//! The ERP asks for a transaction with [`EsignRequest`], follows it with [`EsignStatus`],
//! collects the signed documents with [`EsignDocuments`] and may withdraw a pending one with
//! [`EsignCancel`]. Providers keep each transaction in
//! the instance's state, so status and documents are answered from there and refreshed from
//! the provider on demand (`refresh: true`) or by the provider's polling task.
//!
//! Binary content travels as standard base64 (`content_base64`), each signed document with
//! its size and SHA-256 so that whoever writes it to disk can check it.

use crate::contract::OperationContract;
use crate::manifest::Category;
use crate::plugin::Operation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Creates a signature transaction for one or more PDF documents and one or more signers.
#[derive(Debug)]
pub struct EsignRequest;

impl Operation for EsignRequest {
    const NAME: &'static str = "esign.request";
    type Input = SignatureRequest;
    type Output = SignatureTransaction;
}

inventory::submit! {
    OperationContract::of::<EsignRequest>(Category::Esign, "Creates a signature transaction for PDF documents and signers")
}

/// The state of a transaction: from the instance's state, or from the provider with
/// `refresh: true`.
#[derive(Debug)]
pub struct EsignStatus;

impl Operation for EsignStatus {
    const NAME: &'static str = "esign.status";
    type Input = SignatureRef;
    type Output = SignatureTransaction;
}

inventory::submit! {
    OperationContract::of::<EsignStatus>(Category::Esign, "The state of a signature transaction")
}

/// The signed documents of a completed transaction. They are fetched from the provider once,
/// kept in the instance's state with their checksum, and answered from there afterwards.
#[derive(Debug)]
pub struct EsignDocuments;

impl Operation for EsignDocuments {
    const NAME: &'static str = "esign.documents";
    type Input = SignatureRef;
    type Output = SignedDocuments;
}

inventory::submit! {
    OperationContract::of::<EsignDocuments>(Category::Esign, "The signed documents of a completed transaction")
}

/// Cancels a transaction still waiting for signatures: its signers can no longer sign.
/// A transaction that is already completed, expired or canceled cannot be canceled; the
/// provider's refusal is returned.
#[derive(Debug)]
pub struct EsignCancel;

impl Operation for EsignCancel {
    const NAME: &'static str = "esign.cancel";
    type Input = SignatureRef;
    type Output = SignatureTransaction;
}

inventory::submit! {
    OperationContract::of::<EsignCancel>(Category::Esign, "Cancels a transaction still waiting for signatures")
}

/// What to have signed, by whom.
///
/// The fields after `chaining` were added in plugin API 1.1; they default to "the provider's
/// default", so requests written before keep their meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignatureRequest {
    /// At least one PDF document.
    pub documents: Vec<DocumentToSign>,
    /// At least one signer, in signing order.
    pub signers: Vec<SignerRequest>,
    /// Language of the signing pages and e-mails, two letters (`fr`, `en`…); the provider's
    /// default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The ERP's own reference (quote or delivery note number), kept with the transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    /// A description shown to the signers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether signers also draw a handwritten signature; the provider's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handwritten_signature: Option<HandwrittenSignature>,
    /// How signers are invited one after the other; the provider's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaining: Option<SignerChaining>,
    /// Level of the signature (and of the certificate behind it); the provider's default
    /// (simple) when absent. Certified and advanced levels need an account that offers them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_level: Option<CertificateLevel>,
    /// How signers prove who they are before signing; the provider's default when absent.
    /// `sms` needs every signer's `phone` and an account that allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identification: Option<SignerIdentification>,
    /// Where signers are sent after signing (`http`/`https` URL); the provider's page when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    /// Where signers are sent when they cancel; `success_url`, then the provider's page,
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    /// Where signers are sent when signing fails; `cancel_url`, then the provider's page,
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_url: Option<String>,
}

/// A PDF document to sign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DocumentToSign {
    /// File name shown to the signers, e.g. `quote-2024-0042.pdf`.
    pub name: String,
    /// The PDF bytes, standard base64.
    pub content_base64: String,
    /// Where the visible signatures go (plugin API 1.1); the provider's placement when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signature_fields: Vec<SignatureField>,
}

/// Where one signer's visible signature goes on a document: a page and coordinates, or
/// the name of a signature field the PDF already has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignatureField {
    /// Which signer signs here: index in `signers`, 0 for the first.
    #[serde(default)]
    pub signer: u32,
    /// Page, from 1 for the first; -1 for the last page. Required with coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i32>,
    /// Horizontal position on the page, in PDF points from the left edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<i32>,
    /// Vertical position on the page, in PDF points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<i32>,
    /// Name of an existing signature field of the PDF, instead of (or before) coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Label printed with the field; needed when a signer has several fields on a document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Level of an electronic signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateLevel {
    /// Simple electronic signature.
    Simple,
    /// Advanced signature with a certificate issued after checking the signer's identity.
    Advanced,
    /// Signature with a certified (qualified) certificate, identity documents checked.
    Certified,
}

/// How a signer is identified before signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignerIdentification {
    /// No code asked.
    None,
    /// A one-time code sent by e-mail.
    Email,
    /// A one-time code sent by SMS to the signer's `phone`.
    Sms,
}

/// A person asked to sign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignerRequest {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// Mobile phone in international form (`+33612345678`), for a code sent by SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Handwritten signature drawn by the signer, in addition to the electronic signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandwrittenSignature {
    /// No handwritten signature.
    Disabled,
    /// Always asked.
    Enabled,
    /// Asked only on touch-screen devices.
    TouchDevices,
}

/// How the signers of a transaction are invited in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignerChaining {
    /// Each signer receives an e-mail invitation when their turn comes.
    Email,
    /// Signers sign one after the other in the same web session (e.g. at the counter).
    Web,
    /// Nobody is invited: the ERP hands out the signing URLs itself.
    None,
}

/// Which transaction, and whether to ask the provider rather than the stored state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignatureRef {
    /// The provider's transaction id, as returned by `esign.request`.
    pub id: String,
    /// Ask the provider now instead of answering from the instance's state.
    #[serde(default)]
    pub refresh: bool,
}

/// Overall state of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureStatus {
    /// Waiting for signatures.
    Ready,
    /// Every signer signed; the signed documents can be fetched.
    Completed,
    /// Not signed in time.
    Expired,
    /// Canceled by the requester or refused by a signer.
    Canceled,
    /// Stopped by an error at the provider.
    Failed,
}

impl SignatureStatus {
    /// Whether the provider will never change this status again.
    pub fn is_final(self) -> bool {
        self != SignatureStatus::Ready
    }
}

impl std::fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureStatus::Ready => "ready",
            SignatureStatus::Completed => "completed",
            SignatureStatus::Expired => "expired",
            SignatureStatus::Canceled => "canceled",
            SignatureStatus::Failed => "failed",
        })
    }
}

/// Where a signer is in the signing process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignerStatus {
    /// Not their turn yet.
    Waiting,
    /// Invited, has not opened the signing page.
    Ready,
    /// Opened the signing page.
    Accessed,
    /// Received the one-time code to sign.
    CodeSent,
    Signed,
    /// Has to upload identity documents.
    PendingIdDocs,
    /// Identity documents under review.
    PendingValidation,
    /// Refused to sign, or the transaction was canceled.
    Canceled,
    Failed,
}

impl std::fmt::Display for SignerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignerStatus::Waiting => "waiting",
            SignerStatus::Ready => "ready",
            SignerStatus::Accessed => "accessed",
            SignerStatus::CodeSent => "code_sent",
            SignerStatus::Signed => "signed",
            SignerStatus::PendingIdDocs => "pending_id_docs",
            SignerStatus::PendingValidation => "pending_validation",
            SignerStatus::Canceled => "canceled",
            SignerStatus::Failed => "failed",
        })
    }
}

/// A transaction as the ERP follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignatureTransaction {
    /// The provider's transaction id.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: SignatureStatus,
    /// Where the first signer signs (each signer's own URL is in `signers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_url: Option<String>,
    pub signers: Vec<SignerState>,
    /// The documents sent for signature.
    pub documents: Vec<SignatureDocument>,
    /// Whether the signed documents are stored and `esign.documents` answers from the state.
    #[serde(default)]
    pub documents_stored: bool,
    /// When the transaction was requested, ms since the Unix epoch (host clock).
    pub created_at_ms: u64,
    /// Last time the provider was asked successfully, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at_ms: Option<u64>,
    /// Why the last refresh failed, if it did; cleared by the next success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One signer of a transaction and where they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignerState {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub status: SignerStatus,
    /// The signer's own signing page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Date of the signer's last action as the provider gives it (`2024-03-01T10:22:05`, the
    /// provider's time zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_date: Option<String>,
}

/// A document of a transaction, without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignatureDocument {
    pub name: String,
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// The signed documents of a completed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignedDocuments {
    /// The provider's transaction id.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    pub documents: Vec<SignedDocument>,
    /// When they were fetched from the provider, ms since the Unix epoch.
    pub fetched_at_ms: u64,
}

/// One signed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignedDocument {
    /// File name given by the provider, e.g. `quote-2024-0042.pdf`. Not a path: check it
    /// before writing a file with it.
    pub name: String,
    /// The signed PDF, standard base64.
    pub content_base64: String,
    /// Size in bytes of the decoded content.
    pub size: u64,
    /// SHA-256 of the decoded content, lowercase hex.
    pub sha256: String,
}
