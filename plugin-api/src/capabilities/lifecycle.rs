//! The lifecycle of an invoice after its transmission, provider-neutral.
//!
//! The French e-invoicing reform (standard XP Z12-012) gives every invoice exchanged between
//! companies a lifecycle of statuses, coded 200 to 213, that the platforms and the two
//! parties exchange: deposited, issued, received, made available, taken in charge, approved
//! (partially), disputed, suspended, completed, refused, payment transmitted, cashed,
//! rejected. [`LifecycleState`] names them for the ERP; [`LifecycleEvent`] keeps the
//! platform's own code and label beside it, so nothing the platform said is lost when a
//! provider is replaced. They ride on [`Deposit`](super::Deposit) (outgoing invoices) and on
//! [`ReceivedInvoice`](super::ReceivedInvoice) (incoming ones) as optional fields, so older
//! callers and plugins keep working.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an invoice stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// Deposited on the issuer's platform (XP Z12-012: 200 Déposée).
    Deposited,
    /// Issued by the issuer's platform (201 Émise par la plateforme).
    Issued,
    /// Received by the recipient's platform (202 Reçue).
    Received,
    /// Made available to the recipient (203 Mise à disposition).
    MadeAvailable,
    /// Taken in charge by the recipient (204 Prise en charge).
    TakenInCharge,
    /// Approved by the recipient (205 Approuvée).
    Approved,
    /// Partially approved (206 Approuvée partiellement).
    PartiallyApproved,
    /// Disputed by the recipient (207 En litige).
    Disputed,
    /// Suspended, waiting for something from the issuer (208 Suspendue).
    Suspended,
    /// Completed by the issuer after a suspension (209 Complétée).
    Completed,
    /// Refused by the recipient, with a reason (210 Refusée).
    Refused,
    /// The recipient says the payment was sent (211 Paiement transmis).
    PaymentTransmitted,
    /// The issuer says the payment was received (212 Encaissée).
    Cashed,
    /// Rejected by a platform for a non-compliance (213 Rejetée).
    Rejected,
}

impl LifecycleState {
    /// Whether no later status is expected: cashed, refused or rejected.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            LifecycleState::Cashed | LifecycleState::Refused | LifecycleState::Rejected
        )
    }
}

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(value.as_str().unwrap_or_default())
    }
}

/// One lifecycle status as the platform reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LifecycleEvent {
    pub state: LifecycleState,
    /// The platform's own code, e.g. `212`.
    pub provider_code: String,
    /// The platform's label, e.g. `Encaissée`.
    #[serde(default)]
    pub label: Option<String>,
    /// When the status was issued, as the platform wrote it.
    #[serde(default)]
    pub at: Option<String>,
    /// The reason code given with a refusal, dispute or suspension.
    #[serde(default)]
    pub reason_code: Option<String>,
    /// The reason in words.
    #[serde(default)]
    pub reason: Option<String>,
    /// The platform's identifier of the message that carried the status, so that the same
    /// status is never recorded twice.
    #[serde(default)]
    pub provider_event_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_spell_and_end() {
        assert_eq!(
            serde_json::to_value(LifecycleState::PaymentTransmitted).unwrap(),
            "payment_transmitted"
        );
        assert_eq!(LifecycleState::MadeAvailable.to_string(), "made_available");
        assert!(LifecycleState::Cashed.is_final());
        assert!(!LifecycleState::Approved.is_final());
    }
}
