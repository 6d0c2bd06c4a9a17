//! # passerelle-sirene
//!
//! Passerelle plugin for the French company register: serves `company.lookup` and
//! `company.search` from INSEE's API Sirene 3.11, with an API key of the INSEE portal
//! (portail-api.insee.fr). The OAuth2 gateway INSEE closed in September 2025 is refused with
//! the migration steps (see [`config`]).
//!
//! This file only wires the plugin together; each concern has its module:
//! [`siret`] validates identifiers before any request, [`client`] talks to INSEE and gives
//! HTTP outcomes their meaning, [`search`] builds Sirene's `q=` queries (the name search and
//! the one-request SIREN lookup), [`mapping`] turns the register's JSON into a [`Company`],
//! [`nomenclature`] labels its activity and legal category from tables shipped with the
//! plugin, [`status`] reads the service's own status for the test routine, and [`config`]
//! holds the instance settings. All network access goes through the host.

pub mod client;
pub mod config;
pub mod mapping;
pub mod nomenclature;
pub mod search;
pub mod siret;
pub mod status;

use client::{Client, Target};
pub use config::Config;
use passerelle_plugin_api::prelude::*;
use siret::CompanyId;

/// The INSEE Sirene plugin.
#[derive(Debug)]
pub struct Sirene;

impl Plugin for Sirene {
    type Config = Config;

    const LOCALES: &'static [(&'static str, &'static str)] =
        &[("fr", include_str!("../locales/fr.ftl"))];

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "sirene",
            "INSEE Sirene",
            env!("CARGO_PKG_VERSION"),
            Category::Company,
        );
        m.description =
            "Company and establishment lookup by SIRET or SIREN, and search by name, in the \
             INSEE Sirene register"
                .to_owned();
        m.quotas = Quotas {
            per_minute: Some(30),
            ..Quotas::default()
        };
        m
    }

    fn validate(config: &Config) -> Vec<PluginError> {
        config.problems()
    }

    fn test(config: &Config, host: &Host<'_>) -> TestReport {
        if let Some(problem) = config.problems().into_iter().next() {
            return TestReport::failed("check configuration", problem.message);
        }
        let client = Client::new(config, host);
        let mut report = TestReport::new();

        let url = client.url("/informations");
        let Some(info) = report.step("reach service", || {
            client
                .get_json("/informations", Target::Informations)
                .map(|info| {
                    let detail = Text::localized("reach-service-ok", format!("{url} answered"))
                        .arg("url", url.as_str());
                    Check::ok(info, detail)
                })
                .map_err(|e| e.message)
        }) else {
            return report.finish("");
        };
        let Some(version) = report.step("service state", || status::service_state(&info)) else {
            return report.finish("");
        };
        let now = host.now_unix_ms();
        let day = report
            .step("data freshness", || status::freshness(&info, now))
            .flatten();
        let summary = match day {
            Some(day) => Text::localized(
                "summary-up-with-data",
                format!("Sirene {version} is UP, data of {day}"),
            )
            .arg("version", version.as_str())
            .arg("day", day.as_str()),
            None => Text::localized("summary-up", format!("Sirene {version} is UP"))
                .arg("version", version.as_str()),
        };
        report.finish(summary)
    }

    fn operations(ops: &mut Operations<Self>) {
        ops.serve::<CompanyLookup>(|query, config, host| lookup(&query, config, host))
            .serve::<CompanySearch>(|query, config, host| {
                ready(config)?;
                search::search(&query, &Client::new(config, host))
            });
    }
}

/// Refuses a call on a switched-off or incomplete instance before any request.
fn ready(config: &Config) -> Result<(), PluginError> {
    if !config.enabled {
        return Err(switched_off());
    }
    match config.problems().into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

fn switched_off() -> PluginError {
    PluginError::config(
        "enabled",
        "company lookups are switched off for this instance (Enabled): switch it on to answer \
         them",
    )
}

/// `company.lookup`: validates the identifier, then asks the register once: `/siret/{siret}`
/// for an establishment, the search of the unit's head office for a SIREN.
fn lookup(query: &CompanyQuery, config: &Config, host: &Host<'_>) -> Result<Company, PluginError> {
    if !config.enabled {
        return Err(switched_off());
    }
    let id = CompanyId::parse(&query.id)?;
    ready(config)?;
    let client = Client::new(config, host);
    match &id {
        CompanyId::Siret(siret) => {
            let body = client.get_json(&format!("/siret/{siret}"), Target::Company(&id))?;
            mapping::from_siret(&body)
        }
        CompanyId::Siren(_) => search::siren_with_head_office(&id, &client),
    }
}

export_plugin!(Sirene);
