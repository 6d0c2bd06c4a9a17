//! Lifecycle statuses (XP Z12-012) and the CDAR messages that carry them.
//!
//! Under XP Z12-013 a lifecycle status is itself a flow: a UN/CEFACT
//! `CrossDomainAcknowledgementAndResponse` (CDAR) document, flow syntax `CDAR`, flow type
//! `CustomerInvoiceLC` for statuses about the invoices the company issued and
//! `SupplierInvoiceLC` for those about invoices it received. Each names the invoice it is
//! about by number (`IssuerAssignedID`) and carries the status code
//! (`ProcessConditionCode`, 200 to 213), its label and, for a refusal, dispute or
//! suspension, the reason (`SpecifiedDocumentStatus/ReasonCode`, `Reason`).
//!
//! The codes and labels are those published with the reform (see the README's sources);
//! the CDAR element names follow public implementations of the DGFiP's CDV profile, since
//! the specification itself is not freely published.

use crate::xml;
use passerelle_plugin_api::capabilities::{BuyerAnswer, LifecycleState};

/// Namespace of the CDAR root.
pub const CDAR_NS: &str =
    "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100";
const RAM_NS: &str =
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100";
const UDT_NS: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100";
/// Guideline of the lifecycle messages exchanged between the parties (BR-FR-CDV-02).
pub const GUIDELINE: &str = "urn.cpro.gouv.fr:1p0:CDV:invoice";

/// The fourteen statuses: code, label, provider-neutral state.
pub const STATUSES: [(&str, &str, LifecycleState); 14] = [
    ("200", "Déposée", LifecycleState::Deposited),
    ("201", "Émise par la plateforme", LifecycleState::Issued),
    ("202", "Reçue par la plateforme", LifecycleState::Received),
    ("203", "Mise à disposition", LifecycleState::MadeAvailable),
    ("204", "Prise en charge", LifecycleState::TakenInCharge),
    ("205", "Approuvée", LifecycleState::Approved),
    (
        "206",
        "Approuvée partiellement",
        LifecycleState::PartiallyApproved,
    ),
    ("207", "En litige", LifecycleState::Disputed),
    ("208", "Suspendue", LifecycleState::Suspended),
    ("209", "Complétée", LifecycleState::Completed),
    ("210", "Refusée", LifecycleState::Refused),
    (
        "211",
        "Paiement transmis",
        LifecycleState::PaymentTransmitted,
    ),
    ("212", "Encaissée", LifecycleState::Cashed),
    ("213", "Rejetée", LifecycleState::Rejected),
];

/// The state and label of a code.
pub fn state_of(code: &str) -> Option<(LifecycleState, &'static str)> {
    STATUSES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, label, state)| (*state, *label))
}

/// The code and label of a state.
pub fn code_of(state: LifecycleState) -> (&'static str, &'static str) {
    STATUSES
        .iter()
        .find(|(_, _, s)| *s == state)
        .map(|(c, l, _)| (*c, *l))
        .unwrap_or(("", ""))
}

/// One status read from a CDAR message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Number of the invoice the status is about.
    pub invoice_number: String,
    pub code: String,
    pub label: Option<String>,
    pub at: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
}

/// The statuses a CDAR document carries, or why it is not one.
pub fn parse(bytes: &[u8]) -> Result<Vec<Status>, String> {
    let doc = xml::read(bytes)
        .map_err(|e| format!("the lifecycle message is not well-formed XML: {e}"))?;
    if doc.root != "CrossDomainAcknowledgementAndResponse" {
        return Err(format!(
            "the lifecycle message's root is {:?}, not a CDAR CrossDomainAcknowledgementAndResponse",
            doc.root
        ));
    }
    // One referenced document per status; values are in document order, so a status ends
    // where the next IssuerAssignedID of a referenced document starts.
    let mut statuses: Vec<Status> = Vec::new();
    let at = doc
        .first("AcknowledgementDocument/IssueDateTime/DateTimeString")
        .or_else(|| doc.first("ExchangedDocument/IssueDateTime/DateTimeString"))
        .map(|v| v.text.clone());
    for v in &doc.values {
        let p = v.path.as_str();
        if p.ends_with("ReferenceReferencedDocument/IssuerAssignedID") {
            statuses.push(Status {
                invoice_number: v.text.clone(),
                code: String::new(),
                label: None,
                at: at.clone(),
                reason_code: None,
                reason: None,
            });
        } else if let Some(s) = statuses.last_mut() {
            if p.ends_with("ReferenceReferencedDocument/ProcessConditionCode") {
                s.code = v.text.clone();
            } else if p.ends_with("ReferenceReferencedDocument/ProcessCondition") {
                s.label = Some(v.text.replace('_', " "));
            } else if p.ends_with("SpecifiedDocumentStatus/ReasonCode") && s.reason_code.is_none() {
                s.reason_code = Some(v.text.clone());
            } else if p.ends_with("SpecifiedDocumentStatus/Reason") && s.reason.is_none() {
                s.reason = Some(v.text.clone());
            }
        }
    }
    if statuses.is_empty() {
        return Err("the lifecycle message references no invoice (IssuerAssignedID)".to_owned());
    }
    if let Some(s) = statuses.iter().find(|s| state_of(&s.code).is_none()) {
        return Err(format!(
            "the lifecycle message gives invoice {} the status code {:?}, not one of 200 to 213",
            s.invoice_number, s.code
        ));
    }
    Ok(statuses)
}

/// What a buyer's answer message says.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub message_id: &'a str,
    pub issued_at: &'a str,
    pub answer: BuyerAnswer,
    pub invoice_number: &'a str,
    pub buyer_siren: &'a str,
    pub seller: &'a str,
    pub reason_code: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// A CDAR message with the buyer's answer to one invoice (`SupplierInvoiceLC`).
pub fn answer(a: &Answer<'_>) -> Vec<u8> {
    let (code, label) = code_of(a.answer.state());
    let e = xml::escape;
    let status = match (a.reason_code, a.reason) {
        (None, None) => String::new(),
        (code, reason) => format!(
            "\n        <ram:SpecifiedDocumentStatus>\n          <ram:SequenceNumeric>1</ram:SequenceNumeric>{}{}\n        </ram:SpecifiedDocumentStatus>",
            code.map(|c| format!("\n          <ram:ReasonCode>{}</ram:ReasonCode>", e(c))).unwrap_or_default(),
            reason.map(|r| format!("\n          <ram:Reason>{}</ram:Reason>", e(r))).unwrap_or_default(),
        ),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{CDAR_NS}" xmlns:ram="{RAM_NS}" xmlns:udt="{UDT_NS}">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{GUIDELINE}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{id}</ram:ID>
    <ram:IssueDateTime><udt:DateTimeString format="204">{at}</udt:DateTimeString></ram:IssueDateTime>
    <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">{buyer}</ram:GlobalID><ram:RoleCode>BY</ram:RoleCode></ram:IssuerTradeParty>
    <ram:RecipientTradeParty><ram:GlobalID schemeID="0002">{seller}</ram:GlobalID><ram:RoleCode>SE</ram:RoleCode></ram:RecipientTradeParty>
  </rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:MultipleReferencesIndicator><udt:Indicator>false</udt:Indicator></ram:MultipleReferencesIndicator>
    <ram:TypeCode>23</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="204">{at}</udt:DateTimeString></ram:IssueDateTime>
    <ram:ReferenceReferencedDocument>
        <ram:IssuerAssignedID>{number}</ram:IssuerAssignedID>
        <ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>
        <ram:ProcessCondition>{label}</ram:ProcessCondition>{status}
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>
"#,
        id = e(a.message_id),
        at = e(a.issued_at),
        buyer = e(a.buyer_siren),
        seller = e(a.seller),
        number = e(a.invoice_number),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_state_and_back() {
        for (code, label, state) in STATUSES {
            assert_eq!(state_of(code), Some((state, label)));
            assert_eq!(code_of(state), (code, label));
        }
        assert_eq!(state_of("214"), None);
    }

    #[test]
    fn an_answer_reads_back() {
        let bytes = answer(&Answer {
            message_id: "m1",
            issued_at: "20260901120000",
            answer: BuyerAnswer::Refused,
            invoice_number: "F<1>",
            buyer_siren: "702042755",
            seller: "987654324",
            reason_code: Some("TX_TVA_ERR"),
            reason: Some("Taux de TVA erroné"),
        });
        let statuses = parse(&bytes).unwrap();
        assert_eq!(
            statuses,
            [Status {
                invoice_number: "F<1>".into(),
                code: "210".into(),
                label: Some("Refusée".into()),
                at: Some("20260901120000".into()),
                reason_code: Some("TX_TVA_ERR".into()),
                reason: Some("Taux de TVA erroné".into()),
            }]
        );
        assert!(parse(b"<Invoice/>").unwrap_err().contains("root"));
    }
}
