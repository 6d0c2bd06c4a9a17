//! `directory.lookup`: where a company receives its invoices.
//!
//! The French e-invoicing directory (the PPF "annuaire", exposed by every approved platform
//! through the AFNOR XP Z12-013 Directory service) says, for a SIREN, a SIRET or a SIRET
//! with a routing code, which platform receives that company's invoices. The ERP asks
//! before sending, and chooses the channel: a public entity is reached through Chorus Pro,
//! a company through its approved platform.

use crate::contract::OperationContract;
use crate::manifest::Category;
use crate::plugin::Operation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Looks up where a company receives its invoices.
#[derive(Debug)]
pub struct DirectoryLookup;

impl Operation for DirectoryLookup {
    const NAME: &'static str = "directory.lookup";
    type Input = DirectoryQuery;
    type Output = DirectoryAnswer;
}

inventory::submit! {
    OperationContract::of::<DirectoryLookup>(Category::Einvoice, "Looks up where a company receives its invoices")
}

/// A SIREN (9 digits), a SIRET (14 digits), or an addressing identifier such as
/// `SIRET_ROUTINGCODE`; spaces are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DirectoryQuery {
    pub id: String,
}

/// The kind of platform that receives for a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceivingPlatform {
    /// An approved private platform (UNCL 3035 `WK`).
    ApprovedPlatform,
    /// The public invoicing portal (`DFH`), i.e. Chorus Pro for public entities.
    PublicPortal,
    /// The entry names no platform.
    Unknown,
}

/// One way of addressing the company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DirectoryEntry {
    /// The identifier to address invoices to, e.g. `702042755` or `70204275500240_ACHATS`.
    pub addressing_identifier: String,
    pub siren: String,
    #[serde(default)]
    pub siret: Option<String>,
    #[serde(default)]
    pub routing_code: Option<String>,
    pub platform: ReceivingPlatform,
    /// Whether invoices can be sent to it now (the entry is enabled).
    pub active: bool,
    /// The platform's word for the entry's status, e.g. `Enabled`, `Upcoming`.
    #[serde(default)]
    pub provider_status: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The company is a public entity (its invoices go through Chorus Pro).
    #[serde(default)]
    pub public_entity: bool,
}

/// What the directory knows of the identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DirectoryAnswer {
    /// The identifier looked up, normalised.
    pub id: String,
    /// Whether at least one active entry can receive invoices.
    pub reachable: bool,
    /// Every entry found, active ones first.
    pub entries: Vec<DirectoryEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_spelling() {
        assert_eq!(DirectoryLookup::NAME, "directory.lookup");
        assert_eq!(
            serde_json::to_value(ReceivingPlatform::PublicPortal).unwrap(),
            "public_portal"
        );
    }
}
