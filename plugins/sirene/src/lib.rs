//! # passerelle-sirene
//!
//! Passerelle plugin for the French company register: serves `company.lookup` from INSEE's
//! API Sirene 3.11, with an API key (current portal) or OAuth2 client credentials (legacy
//! gateway; tokens are fetched and cached by the host through
//! [`OAuth2Client`](passerelle_plugin_api::OAuth2Client)).
//!
//! This file only wires the plugin together; each concern has its module:
//! [`siret`] validates identifiers before any request, [`client`] talks to INSEE and gives
//! HTTP outcomes their meaning, [`mapping`] turns the register's JSON into a [`Company`],
//! [`status`] reads the service's own status for the test routine, and [`config`] holds the
//! instance settings. All network access goes through the host.

pub mod client;
pub mod config;
pub mod mapping;
pub mod siret;
pub mod status;

use client::{Client, Target};
use config::AuthMode;
pub use config::Config;
use passerelle_plugin_api::prelude::*;
use siret::CompanyId;

/// The INSEE Sirene plugin.
#[derive(Debug)]
pub struct Sirene;

impl Plugin for Sirene {
    type Config = Config;

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "sirene",
            "INSEE Sirene",
            env!("CARGO_PKG_VERSION"),
            Category::Company,
        );
        m.description =
            "Company and establishment lookup by SIRET or SIREN in the INSEE Sirene register"
                .to_owned();
        m.capabilities = vec![CompanyLookup::NAME.to_owned()];
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

        if config.auth_mode == AuthMode::Oauth2 {
            // A fresh token, not a cached one: this step checks the credentials.
            let token = report.step("get token", || {
                client
                    .fresh_token()
                    .map(|()| Check::ok((), format!("token granted by {}", config.token_url)))
                    .map_err(|e| e.message)
            });
            if token.is_none() {
                report.skip("reach service", "no access token");
                return report.finish("");
            }
        }

        let url = client.url("/informations");
        let Some(info) = report.step("reach service", || {
            client
                .get_json("/informations", Target::Informations)
                .map(|info| Check::ok(info, format!("{url} answered")))
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
            Some(day) => format!("Sirene {version} is UP, data of {day}"),
            None => format!("Sirene {version} is UP"),
        };
        report.finish(summary)
    }

    fn invoke(call: Call<'_>, config: &Config, host: &Host<'_>) -> Result<Reply, PluginError> {
        if call.is::<CompanyLookup>() {
            return call.serve::<CompanyLookup>(|query| lookup(&query, config, host));
        }
        Err(call.unsupported())
    }
}

/// `company.lookup`: validates the identifier, then asks the register.
fn lookup(query: &CompanyQuery, config: &Config, host: &Host<'_>) -> Result<Company, PluginError> {
    if !config.enabled {
        return Err(PluginError::config(
            "enabled",
            "company lookups are switched off for this instance (Enabled): switch it on to \
             answer them",
        ));
    }
    let id = CompanyId::parse(&query.id)?;
    if let Some(problem) = config.problems().into_iter().next() {
        return Err(problem);
    }
    let client = Client::new(config, host);
    match &id {
        CompanyId::Siret(siret) => {
            let body = client.get_json(&format!("/siret/{siret}"), Target::Company(&id))?;
            mapping::from_siret(&body)
        }
        CompanyId::Siren(siren) => {
            let body = client.get_json(&format!("/siren/{siren}"), Target::Company(&id))?;
            let unit = mapping::unit_from_siren(&body)?;
            let head_office = match mapping::head_office_siret(&unit) {
                Some(siret) => head_office(&client, host, CompanyId::Siret(siret))?,
                None => None,
            };
            mapping::from_unit(&unit, head_office.as_ref())
        }
    }
}

/// The `/siret` answer of a unit's head office, for its address. A unit whose head office
/// cannot be read (unknown or withheld) is still answered, from what the unit says.
fn head_office(
    client: &Client<'_, '_>,
    host: &Host<'_>,
    id: CompanyId,
) -> Result<Option<serde_json::Value>, PluginError> {
    match client.get_json(&format!("/siret/{}", id.as_str()), Target::Company(&id)) {
        Ok(body) => Ok(Some(body)),
        Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Forbidden) => {
            host.log(
                LogLevel::Warn,
                format!(
                    "head office {id} not readable ({}); answering without its address",
                    e.message
                ),
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

export_plugin!(Sirene);
