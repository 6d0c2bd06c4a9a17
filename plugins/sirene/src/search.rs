//! `company.search` and the one-request SIREN lookup, both through API Sirene's multi-criteria
//! search (`GET /siret?q=…`).
//!
//! The `q` parameter is Sirene's own query language (`champ:valeur`, `champ:"une phrase"`,
//! `AND`/`OR`, parentheses, `periode(…)` for an establishment's dated fields). Values typed by
//! a person are reduced to letters, digits and a few separators before they are put between
//! quotes, so that no input can change the query's structure or make INSEE answer 400.
//!
//! Paging uses `debut` (offset) and `nombre` (page size); the page handed back to the ERP
//! carries the next offset as an opaque `next_page`. Each page is one request, counted by the
//! host against the instance's quota (30 a minute on INSEE's public plan).

use crate::client::{Client, Target};
use crate::mapping;
use crate::siret::CompanyId;
use passerelle_plugin_api::http::form_encode;
use passerelle_plugin_api::prelude::*;
use serde_json::Value;

/// Results per page when the caller does not say.
pub const DEFAULT_PER_PAGE: u32 = 20;
/// Most results per page this plugin asks for (INSEE allows up to 1000; an ERP picking a
/// company needs far fewer, and small pages keep answers quick).
pub const MAX_PER_PAGE: u32 = 100;
/// Longest name accepted, in characters.
const MAX_NAME_CHARS: usize = 120;

/// The `q` and paging of one search page, checked and ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub q: String,
    pub debut: u64,
    pub nombre: u32,
}

impl SearchRequest {
    /// The path and query string, e.g. `/siret?q=…&nombre=20&debut=0`.
    pub fn path(&self) -> String {
        format!(
            "/siret?q={}&nombre={}&debut={}",
            form_encode(&self.q),
            self.nombre,
            self.debut
        )
    }
}

/// Builds the request of a search, or says which input is wrong and how.
pub fn request(query: &CompanySearchQuery) -> Result<SearchRequest, PluginError> {
    let name = phrase(&query.name);
    if name.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
        return Err(PluginError::invalid_input(format!(
            "`name` {:?} is too short to search: give at least two letters or digits of the \
             company's name",
            query.name
        ))
        .with_field("name"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(PluginError::invalid_input(format!(
            "`name` is longer than {MAX_NAME_CHARS} characters: give the company's name only"
        ))
        .with_field("name"));
    }
    let mut criteria = vec![format!(
        "(denominationUniteLegale:\"{name}\" OR nomUniteLegale:\"{name}\")"
    )];
    if let Some(postal) = query
        .postal_code
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let compact: String = postal.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() != 5 || !compact.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PluginError::invalid_input(format!(
                "`postal_code` {postal:?} is not a French postal code: give its 5 digits, e.g. \
                 75001, or leave it out"
            ))
            .with_field("postal_code"));
        }
        criteria.push(format!("codePostalEtablissement:{compact}"));
    }
    if let Some(city) = query.city.as_deref().map(phrase).filter(|c| !c.is_empty()) {
        criteria.push(format!("libelleCommuneEtablissement:\"{city}\""));
    }
    if query.active_only.unwrap_or(true) {
        // An establishment's state is dated: Sirene wants it inside periode().
        criteria.push("periode(etatAdministratifEtablissement:A)".to_owned());
    }
    let nombre = match query.per_page {
        None => DEFAULT_PER_PAGE,
        Some(n) if (1..=MAX_PER_PAGE).contains(&n) => n,
        Some(n) => {
            return Err(PluginError::invalid_input(format!(
                "`per_page` is {n}: it must be between 1 and {MAX_PER_PAGE}"
            ))
            .with_field("per_page"))
        }
    };
    let debut = match query.page.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(page) => page.parse::<u64>().map_err(|_| {
            PluginError::invalid_input(format!(
                "`page` {page:?} is not a page this plugin handed out: pass the `next_page` of \
                 the previous answer, or nothing for the first page"
            ))
            .with_field("page")
        })?,
    };
    Ok(SearchRequest {
        q: criteria.join(" AND "),
        debut,
        nombre,
    })
}

/// A person's text as a Sirene phrase: letters and digits kept (accents too; INSEE ignores
/// them), apostrophes, hyphens, `&` and other separators turned into spaces, spaces collapsed.
fn phrase(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `company.search`: one page of establishments.
pub fn search(
    query: &CompanySearchQuery,
    client: &Client<'_, '_>,
) -> Result<CompanySearchPage, PluginError> {
    let request = request(query)?;
    let Some(body) = client.search_json(&request.path())? else {
        return Ok(CompanySearchPage {
            companies: Vec::new(),
            total: Some(0),
            next_page: None,
        });
    };
    let companies = mapping::from_search(&body)?;
    let total = body.pointer("/header/total").and_then(Value::as_u64);
    let seen = request.debut + companies.len() as u64;
    let more = match total {
        Some(total) => seen < total,
        // Without a total, a full page may be followed by another.
        None => companies.len() as u64 == u64::from(request.nombre),
    };
    Ok(CompanySearchPage {
        next_page: (more && !companies.is_empty()).then(|| seen.to_string()),
        companies,
        total,
    })
}

/// The legal unit of a SIREN with its head office, in one request: the head office's
/// establishment carries the unit's current fields.
pub fn siren_with_head_office(
    id: &CompanyId,
    client: &Client<'_, '_>,
) -> Result<Company, PluginError> {
    let path = format!(
        "/siret?q={}&nombre=1",
        form_encode(&format!(
            "siren:{} AND etablissementSiege:true",
            id.as_str()
        ))
    );
    let body = client.get_json(&path, Target::Company(id))?;
    let companies = mapping::from_search(&body)?;
    companies.into_iter().next().ok_or_else(|| {
        PluginError::new(
            ErrorKind::NotFound,
            format!("no head office of {id} in the Sirene register"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> CompanySearchQuery {
        CompanySearchQuery {
            name: name.to_owned(),
            ..CompanySearchQuery::default()
        }
    }

    #[test]
    fn queries_use_sirene_syntax_and_neutralise_input() {
        let r = request(&CompanySearchQuery {
            postal_code: Some("92 140".into()),
            city: Some("Clamart".into()),
            ..query("Commune de \"Clamart\") OR siren:*")
        })
        .unwrap();
        assert_eq!(
            r.q,
            "(denominationUniteLegale:\"Commune de Clamart OR siren\" OR \
             nomUniteLegale:\"Commune de Clamart OR siren\") AND codePostalEtablissement:92140 \
             AND libelleCommuneEtablissement:\"Clamart\" AND \
             periode(etatAdministratifEtablissement:A)"
        );
        assert_eq!((r.debut, r.nombre), (0, DEFAULT_PER_PAGE));
        assert!(r
            .path()
            .starts_with("/siret?q=%28denominationUniteLegale%3A%22Commune+de"));
        assert!(r.path().ends_with("&nombre=20&debut=0"));

        let r = request(&CompanySearchQuery {
            active_only: Some(false),
            per_page: Some(5),
            page: Some("40".into()),
            ..query("L'Oréal")
        })
        .unwrap();
        assert_eq!(
            r.q,
            "(denominationUniteLegale:\"L Oréal\" OR nomUniteLegale:\"L Oréal\")"
        );
        assert_eq!((r.debut, r.nombre), (40, 5));
    }

    #[test]
    fn bad_inputs_name_their_field() {
        let field = |q: CompanySearchQuery| request(&q).unwrap_err().field.unwrap();
        assert_eq!(field(query(" - ")), "name");
        assert_eq!(field(query(&"A".repeat(121))), "name");
        assert_eq!(
            field(CompanySearchQuery {
                postal_code: Some("7500".into()),
                ..query("ACME")
            }),
            "postal_code"
        );
        assert_eq!(
            field(CompanySearchQuery {
                per_page: Some(0),
                ..query("ACME")
            }),
            "per_page"
        );
        assert_eq!(
            field(CompanySearchQuery {
                page: Some("abc".into()),
                ..query("ACME")
            }),
            "page"
        );
    }
}
