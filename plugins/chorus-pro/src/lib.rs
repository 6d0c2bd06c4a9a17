//! # passerelle-chorus-pro
//!
//! Passerelle plugin for Chorus Pro, the French public invoicing portal, reached through the
//! PISTE API gateway: deposits the Factur-X, UBL and CII invoices the ERP generates
//! (`einvoice.submit`), asks where each deposit stands (`einvoice.status`), lists them
//! (`einvoice.list`), and follows deposits in progress with the `follow_deposits` task.
//!
//! This file only wires the plugin together; each concern has its module:
//! [`config`] holds the instance settings and the environment guard, [`environment`] knows
//! the PISTE hosts, [`format`](mod@format) recognises invoices from their content, [`protocol`] is the
//! API's JSON, [`client`] talks to the gateway and gives outcomes their meaning,
//! [`recipient`] checks what the buyer's structure requires before a deposit, and
//! [`deposits`] holds the operations, their records and the follow-up of flows and invoices. All network access goes through the
//! host, which enforces the quotas [`Plugin::quotas`] declares for the instance's
//! environment.

pub mod client;
pub mod config;
pub mod deposits;
pub mod environment;
pub mod format;
pub mod protocol;
pub mod recipient;

use client::{Client, Target};
pub use config::Config;
use passerelle_plugin_api::prelude::*;
use protocol::{FoundStructure, StructureCriteria, StructureSearch, StructureSearchAnswer};
use serde_json::Value;

/// Name of the task that follows deposits in progress.
pub const FOLLOW_TASK: &str = "follow_deposits";

/// The Chorus Pro plugin.
#[derive(Debug)]
pub struct ChorusPro;

impl Plugin for ChorusPro {
    type Config = Config;

    const LOCALES: &'static [(&'static str, &'static str)] =
        &[("fr", include_str!("../locales/fr.ftl"))];

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "chorus-pro",
            "Chorus Pro",
            env!("CARGO_PKG_VERSION"),
            Category::Einvoice,
        );
        m.description = "Deposit of Factur-X, UBL and CII invoices to Chorus Pro (PISTE) and \
                         follow-up of their integration"
            .to_owned();
        // The seed requires production and test to use distinct PISTE applications and URLs.
        m.environment_scoped_fields = ["client_id", "client_secret", "oauth_url", "api_url"]
            .map(str::to_owned)
            .to_vec();
        m.tasks = vec![TaskDecl {
            name: FOLLOW_TASK.to_owned(),
            description: "Asks Chorus Pro about deposits still in progress and records their \
                          final state (integrated, partially integrated, rejected with errors)"
                .to_owned(),
            interval_field: "follow_interval_secs".to_owned(),
            start_delay_field: "follow_start_delay_secs".to_owned(),
        }];
        // The sandbox's, the stricter; an instance's own come from `quotas`.
        m.quotas = environment::Environment::Sandbox.quotas();
        m
    }

    fn environment(config: &Config) -> Option<String> {
        config.environment().map(|e| e.to_string())
    }

    fn validate(config: &Config) -> Vec<PluginError> {
        config.problems()
    }

    fn quotas(config: &Config) -> Quotas {
        config.quotas()
    }

    fn test(config: &Config, host: &Host<'_>) -> TestReport {
        test_routine(config, host)
    }

    fn operations(ops: &mut Operations<Self>) {
        ops.serve::<EinvoiceSubmit>(|input, config, host| deposits::submit(&input, config, host))
            .serve::<EinvoiceStatus>(|input, config, host| deposits::status(&input, config, host))
            .serve::<EinvoiceList>(|input, _config, host| deposits::list(&input, host));
    }

    fn run_task(task: &str, config: &Config, host: &Host<'_>) -> Result<TaskOutcome, PluginError> {
        match task {
            FOLLOW_TASK => deposits::follow(config, host),
            other => Err(PluginError::new(
                ErrorKind::Unsupported,
                format!("the Chorus Pro plugin has no task {other:?}; its task is {FOLLOW_TASK}"),
            )),
        }
    }
}

/// Token, gateway, then the technical account and structure: each step names what is wrong.
fn test_routine(config: &Config, host: &Host<'_>) -> TestReport {
    let problems = config.problems();
    if !problems.is_empty() {
        let detail = problems
            .iter()
            .map(|p| match &p.field {
                Some(f) => format!("{f}: {}", p.message),
                None => p.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        return TestReport::failed("check configuration", detail);
    }
    let env = config
        .environment()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let client = Client::new(config, host);
    let mut report = TestReport::new();
    let token = report.step("get token", || {
        client
            .fetch_token()
            .map(|()| {
                Check::ok(
                    (),
                    format!(
                        "PISTE ({env}) granted a token to {}",
                        config.credentials.client_id()
                    ),
                )
            })
            .map_err(|e| describe(&e))
    });
    if token.is_none() {
        report.skip("reach API", "no access token");
        report.skip("check technical account and structure", "no access token");
        report.skip("check attachment", "no access token");
        return report.finish("");
    }
    let reached = report.step("reach API", || {
        let answer = client
            .call(
                Method::Get,
                protocol::HEALTH_CHECK,
                Vec::new(),
                Target::HealthCheck,
                test_step_policy(),
                Idempotency::Idempotent,
            )
            .map_err(|e| describe(&e))?;
        match health(&answer.body) {
            Ok(()) => Ok(Check::ok((), format!("{} is up", config.api_base()))),
            Err(said) => Err(format!(
                "{} answered its health check with {said} instead of a healthy status: Chorus \
                 Pro reports a problem; try again later",
                config.api_base()
            )),
        }
    });
    if reached.is_none() {
        report.skip(
            "check technical account and structure",
            "the API could not be reached",
        );
        report.skip("check attachment", "the API could not be reached");
        return report.finish("");
    }
    let structure = report.step("check technical account and structure", || {
        check_structure(config, &client)
    });
    if structure.is_none() {
        report.skip("check attachment", "the structure could not be found");
        return report.finish("");
    }
    let attached = report.step("check attachment", || check_attachment(config, &client));
    match structure.filter(|_| attached.is_some()) {
        Some(s) => {
            let name = s.designation_structure.as_deref().unwrap_or("no name");
            let summary = Text::localized(
                "summary-ok",
                format!(
                    "Chorus Pro {env} ready: structure {} ({name}) reached with the technical account {}",
                    config.structure(),
                    config.technical_login.trim()
                ),
            )
            .arg("environment", env.to_string())
            .arg("structure", config.structure().to_string())
            .arg("name", name)
            .arg("login", config.technical_login.trim());
            report.finish(summary)
        }
        None => report.finish(""),
    }
}

/// Searches the configured structure: proves the technical account (every call carries it)
/// and the structure identifier.
fn check_structure(
    config: &Config,
    client: &Client<'_, '_>,
) -> Result<Check<FoundStructure>, String> {
    let wanted = config.structure();
    let body = serde_json::to_vec(&StructureSearch {
        restreindre_structures_privees: false,
        structure: StructureCriteria {
            identifiant_structure: &wanted,
            type_identifiant_structure: config.structure_id_type.code(),
        },
    })
    .map_err(|e| e.to_string())?;
    let answer = client
        .call(
            Method::Post,
            protocol::STRUCTURES_SEARCH,
            body,
            Target::Structure,
            test_step_policy(),
            Idempotency::Idempotent,
        )
        .map_err(|e| describe(&e))?;
    let found: StructureSearchAnswer = serde_json::from_value(answer.body)
        .map_err(|e| format!("the structure search answered an unexpected shape ({e})"))?;
    let Some(structure) = found
        .liste_structures
        .iter()
        .find(|s| s.identifiant_structure.as_deref().map(str::trim) == Some(wanted.as_str()))
        .cloned()
    else {
        return Err(format!(
            "structure_id: Chorus Pro found no structure {} {wanted} for the technical account \
             {}: check the structure identifier and that the technical account is attached to \
             it",
            config.structure_id_type.code(),
            config.technical_login.trim()
        ));
    };
    let id_cpp = match &structure.id_structure_cpp {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "?".to_owned(),
    };
    let name = structure
        .designation_structure
        .clone()
        .unwrap_or_else(|| "no name".to_owned());
    let status = structure.statut.clone().unwrap_or_default();
    let detail =
        format!(
        "technical account {} accepted; structure {wanted} is {name} (idStructureCPP {id_cpp}, {})",
        config.technical_login.trim(),
        if status.is_empty() { "no status" } else { &status }
    );
    if !status.is_empty() && !status.eq_ignore_ascii_case("ACTIF") {
        return Ok(Check::warning(
            structure,
            format!(
                "{detail}: the structure is not active, so Chorus Pro will refuse its invoices"
            ),
        ));
    }
    Ok(Check::ok(structure, detail))
}

/// Whether a health-check answer (HTTP 200) says the service is healthy, whatever shape the
/// gateway gives it: `{"statusCode": "200"}`, `{"statusCode": 200}`, or Spring's
/// `{"statusCode": "OK", "statusCodeValue": 200}`. Otherwise, what it said.
pub fn health(body: &Value) -> Result<(), String> {
    let code = body.get("statusCode");
    let value = body.get("statusCodeValue");
    let healthy = match (code, value) {
        (Some(Value::String(s)), _) if s.trim() == "200" => true,
        (Some(Value::Number(n)), _) if n.as_u64() == Some(200) => true,
        (Some(Value::String(s)), Some(v)) if s.trim().eq_ignore_ascii_case("OK") => {
            v.as_u64() == Some(200) || v.as_str().is_some_and(|v| v.trim() == "200")
        }
        _ => false,
    };
    if healthy {
        return Ok(());
    }
    Err(match (code, value) {
        (None, None) => "no statusCode".to_owned(),
        (Some(c), None) => format!("statusCode {c}"),
        (c, Some(v)) => format!(
            "statusCode {} and statusCodeValue {v}",
            c.map_or_else(|| "(none)".to_owned(), Value::to_string)
        ),
    })
}

/// The test routine's steps answer at once, except on a quota refusal (429/503), which they
/// wait out once as the gateway's `Retry-After` says: a test run right after another
/// process's calls must not fail on the shared PISTE window.
fn test_step_policy() -> RetryPolicy {
    RetryPolicy::new(2, std::time::Duration::ZERO)
}

/// Proves that the technical account is attached to the configured structure: the search
/// finds a structure whoever asks, but only an attached account may deposit for it.
fn check_attachment(config: &Config, client: &Client<'_, '_>) -> Result<Check<()>, String> {
    let wanted = config.structure();
    let body = serde_json::to_vec(&protocol::AttachmentsQuery {
        parametres_recherche: protocol::Paging {
            nb_resultats_par_page: 100,
            page_resultat_demandee: 1,
        },
    })
    .map_err(|e| e.to_string())?;
    let answer = client
        .call(
            Method::Post,
            protocol::ATTACHMENTS,
            body,
            Target::Attachments,
            test_step_policy(),
            Idempotency::Idempotent,
        )
        .map_err(|e| describe(&e))?;
    let found: protocol::AttachmentsAnswer = serde_json::from_value(answer.body)
        .map_err(|e| format!("the attachments answered an unexpected shape ({e})"))?;
    let login = config.technical_login.trim();
    let others: Vec<String> = found
        .liste_structure_rattachement
        .iter()
        .filter_map(|a| a.identifiant_structure.as_deref().map(str::trim))
        .filter(|id| *id != wanted)
        .map(str::to_owned)
        .collect();
    let Some(attachment) = found
        .liste_structure_rattachement
        .iter()
        .find(|a| a.identifiant_structure.as_deref().map(str::trim) == Some(wanted.as_str()))
    else {
        let listed = if others.is_empty() {
            "no structure".to_owned()
        } else {
            format!("only {}", others.join(", "))
        };
        return Err(format!(
            "structure_id: the technical account {login} is not attached to structure {wanted} \
             (it is attached to {listed}): in Chorus Pro, have the structure's manager attach \
             the technical account to it (Gestion des utilisateurs > rattachements), or \
             configure the structure it is attached to"
        ));
    };
    let status = attachment
        .statut_rattachement_structure
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if !status.is_empty() && !status.eq_ignore_ascii_case("ACTIF") {
        return Err(format!(
            "structure_id: the attachment of {login} to structure {wanted} is {status}, not \
             ACTIF: ask the structure's manager in Chorus Pro to validate it"
        ));
    }
    Ok(Check::ok(
        (),
        format!("the technical account {login} is attached to structure {wanted}"),
    ))
}

/// An error as a step detail: the field to fix first, then the message.
fn describe(e: &PluginError) -> String {
    match &e.field {
        Some(field) => format!("{field}: {}", e.message),
        None => e.message.clone(),
    }
}

export_plugin!(ChorusPro);
