//! `company.lookup`: a French company or establishment from its SIRET or SIREN.

use crate::plugin::Operation;
use serde::{Deserialize, Serialize};

/// Looks up a company by SIRET (14 digits, one establishment) or SIREN (9 digits, the legal
/// unit and its head office).
#[derive(Debug)]
pub struct CompanyLookup;

impl Operation for CompanyLookup {
    const NAME: &'static str = "company.lookup";
    type Input = CompanyQuery;
    type Output = Company;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyQuery {
    /// A SIRET or a SIREN; spaces are ignored.
    pub id: String,
}

/// A company as the ERP needs it, whatever the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub siren: String,
    /// The establishment's SIRET (the head office's for a SIREN lookup).
    pub siret: Option<String>,
    /// Company name, or "First name Last name" for an individual.
    pub legal_name: Option<String>,
    /// Trade name or acronym, when registered.
    pub trade_name: Option<String>,
    /// Street lines, most specific first.
    pub address_lines: Vec<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// NAF/APE activity code, e.g. `84.11Z`.
    pub activity_code: Option<String>,
    /// INSEE legal category code, e.g. `5710` (SAS).
    pub legal_category: Option<String>,
    /// False when the establishment (or the unit) is closed.
    pub active: bool,
    /// Whether the establishment is the head office.
    pub head_office: bool,
    /// False when the unit is only partially public: some fields are then withheld.
    pub fully_public: bool,
}
