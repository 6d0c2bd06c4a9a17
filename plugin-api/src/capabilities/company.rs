//! `company.lookup` and `company.search`: a French company or establishment from its SIRET or
//! SIREN, or the establishments whose name matches, near a postal code or in a city.

use crate::contract::OperationContract;
use crate::manifest::Category;
use crate::plugin::Operation;
use schemars::JsonSchema;
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

inventory::submit! {
    OperationContract::of::<CompanyLookup>(Category::Company, "Looks up a company by SIRET (14 digits) or SIREN (9 digits)")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CompanyQuery {
    /// A SIRET or a SIREN; spaces are ignored.
    pub id: String,
}

/// A company as the ERP needs it, whatever the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// The activity code's label in the registry's nomenclature, e.g. "Administration
    /// publique générale"; absent for codes of an older nomenclature the provider does not
    /// label.
    #[serde(default)]
    pub activity_label: Option<String>,
    /// INSEE legal category code, e.g. `5710` (SAS).
    pub legal_category: Option<String>,
    /// The legal category's label, e.g. "SAS, société par actions simplifiée".
    #[serde(default)]
    pub legal_category_label: Option<String>,
    /// False when the establishment (or the unit) is closed.
    pub active: bool,
    /// Whether the establishment is the head office.
    pub head_office: bool,
    /// False when the unit is only partially public: some fields are then withheld.
    pub fully_public: bool,
}

/// Searches establishments by name, optionally near a postal code or in a city, one page at
/// a time.
#[derive(Debug)]
pub struct CompanySearch;

impl Operation for CompanySearch {
    const NAME: &'static str = "company.search";
    type Input = CompanySearchQuery;
    type Output = CompanySearchPage;
}

inventory::submit! {
    OperationContract::of::<CompanySearch>(Category::Company, "Searches establishments by name, optionally near a postal code or in a city")
}

/// What to search for. At least the name; the postal code and city narrow it down.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CompanySearchQuery {
    /// Company name, trade name or, for an individual, last name; every word must match.
    pub name: String,
    /// Postal code of the establishment (5 digits), e.g. `75001`.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// City of the establishment, e.g. `CLAMART`.
    #[serde(default)]
    pub city: Option<String>,
    /// Only establishments still open (default true).
    #[serde(default)]
    pub active_only: Option<bool>,
    /// Results per page (the provider caps it; default 20).
    #[serde(default)]
    pub per_page: Option<u32>,
    /// The `next_page` of the previous page; absent for the first page.
    #[serde(default)]
    pub page: Option<String>,
}

/// One page of results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CompanySearchPage {
    pub companies: Vec<Company>,
    /// How many establishments match in all, when the registry says.
    #[serde(default)]
    pub total: Option<u64>,
    /// Pass it as `page` to get the next page; absent on the last page.
    #[serde(default)]
    pub next_page: Option<String>,
}
