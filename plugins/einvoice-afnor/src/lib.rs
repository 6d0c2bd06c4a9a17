//! # passerelle-einvoice-afnor
//!
//! Passerelle plugin for the French e-invoicing reform: one company's approved platform
//! ("plateforme agréée", PA) reached through the standard API of AFNOR XP Z12-013 — its Flow
//! service (submit invoice and lifecycle flows, search them, download them) and its
//! Directory service (where a company receives its invoices) — with the lifecycle statuses
//! of XP Z12-012.
//!
//! - Outbound: `einvoice.submit` (Factur-X, UBL, CII; the recipient's directory entry is
//!   checked first), `einvoice.status`, `einvoice.list`, and the `follow_invoices` task that
//!   reads acknowledgements and lifecycle statuses (200 to 213) into provider-neutral states.
//! - Inbound: the `collect_invoices` task and `einvoice.inbox` / `einvoice.fetch` hand the
//!   supplier invoices received over to the ERP, stored once each; `einvoice.respond` sends
//!   the buyer's answers back.
//! - `directory.lookup`.
//!
//! Each concern has its module: [`config`], [`siren`], [`protocol`] (the standard's JSON),
//! [`client`] (HTTP, tokens, retries, errors), [`format`](mod@format) (invoices), [`cdar`]
//! (lifecycle messages), [`directory`], [`outbound`], [`inbound`]. All network access goes
//! through the host, which enforces the quotas of [`Plugin::quotas`].

pub mod cdar;
pub mod client;
pub mod clock;
pub mod config;
pub mod directory;
pub mod format;
pub mod inbound;
pub mod outbound;
pub mod protocol;
pub mod siren;
pub mod xml;

use client::{describe, Client, Service, Target};
pub use config::Config;
use passerelle_plugin_api::prelude::*;

/// Name of the task that follows the invoices sent.
pub const FOLLOW_TASK: &str = "follow_invoices";
/// Name of the task that collects the invoices received.
pub const COLLECT_TASK: &str = "collect_invoices";

/// The approved-platform plugin.
#[derive(Debug)]
pub struct EinvoiceAfnor;

impl Plugin for EinvoiceAfnor {
    type Config = Config;

    const LOCALES: &'static [(&'static str, &'static str)] =
        &[("fr", include_str!("../locales/fr.ftl"))];

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "einvoice-afnor",
            "Approved platform (AFNOR XP Z12-013)",
            env!("CARGO_PKG_VERSION"),
            Category::Einvoice,
        );
        m.description = "French e-invoicing through an approved platform (PA) speaking the \
                         AFNOR XP Z12-013 API: sends Factur-X, UBL and CII invoices after a \
                         directory check, follows their XP Z12-012 lifecycle, collects the \
                         supplier invoices received and sends the buyer's answers"
            .to_owned();
        m.environment_scoped_fields = [
            "client_id",
            "client_secret",
            "token_url",
            "flow_url",
            "directory_url",
        ]
        .map(str::to_owned)
        .to_vec();
        m.tasks = vec![
            TaskDecl {
                name: FOLLOW_TASK.to_owned(),
                description: "Reads the acknowledgement of the invoices sent and their \
                              lifecycle statuses (received, approved, refused, cashed…)"
                    .to_owned(),
                interval_field: "follow_interval_secs".to_owned(),
                start_delay_field: "follow_start_delay_secs".to_owned(),
            },
            TaskDecl {
                name: COLLECT_TASK.to_owned(),
                description: "Collects the supplier invoices the platform received, each stored \
                              once with its checksum"
                    .to_owned(),
                interval_field: "collect_interval_secs".to_owned(),
                start_delay_field: "collect_start_delay_secs".to_owned(),
            },
        ];
        m.quotas = Quotas {
            per_second: Some(10),
            per_minute: None,
            per_day: None,
        };
        m
    }

    fn environment(config: &Config) -> Option<String> {
        Some(config.environment.to_string())
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
        ops.serve::<EinvoiceSubmit>(|i, config, host| outbound::submit(&i, config, host))
            .serve::<EinvoiceStatus>(|i, config, host| outbound::status(&i, config, host))
            .serve::<EinvoiceList>(|i, _config, host| outbound::list(&i, host))
            .serve::<EinvoiceInbox>(|i, config, host| inbound::inbox(&i, config, host))
            .serve::<EinvoiceFetch>(|i, _config, host| inbound::fetch(&i, host))
            .serve::<EinvoiceRespond>(|i, config, host| inbound::respond(&i, config, host))
            .serve::<DirectoryLookup>(|i, config, host| directory::lookup(&i, config, host));
    }

    fn run_task(task: &str, config: &Config, host: &Host<'_>) -> Result<TaskOutcome, PluginError> {
        match task {
            FOLLOW_TASK => outbound::follow(config, host),
            COLLECT_TASK => inbound::collect_task(config, host),
            other => Err(PluginError::new(
                ErrorKind::Unsupported,
                format!(
                    "the approved-platform plugin has no task {other:?}; its tasks are \
                     {FOLLOW_TASK} and {COLLECT_TASK}"
                ),
            )),
        }
    }
}

/// Token, both services, then the company in the directory: each step names what is wrong.
fn test_routine(config: &Config, host: &Host<'_>) -> TestReport {
    let problems = config.problems();
    if !problems.is_empty() {
        let detail = problems.iter().map(describe).collect::<Vec<_>>().join("; ");
        return TestReport::failed("check configuration", detail);
    }
    let client = Client::new(config, host);
    let mut report = TestReport::new();
    let token = report.step("get token", || {
        client
            .fetch_token()
            .map(|()| {
                Check::ok(
                    (),
                    format!(
                        "the platform ({}) granted a token to {}",
                        config.environment,
                        config.credentials.client_id()
                    ),
                )
            })
            .map_err(|e| describe(&e))
    });
    if token.is_none() {
        for step in [
            "reach Flow service",
            "reach Directory service",
            "find the company in the directory",
        ] {
            report.skip(step, "no access token");
        }
        return report.finish("");
    }
    let flow = report.step("reach Flow service", || {
        health(&client, Service::Flow, config.flow_base())
    });
    let dir = report.step("reach Directory service", || {
        health(&client, Service::Directory, config.directory_base())
    });
    if dir.is_none() {
        report.skip(
            "find the company in the directory",
            "the Directory service could not be reached",
        );
        return report.finish("");
    }
    let company = report.step("find the company in the directory", || {
        let siren = config.company();
        let answer = directory::find(&siren::Identifier::Siren(siren.clone()), &client)
            .map_err(|e| describe(&e))?;
        let name = answer
            .entries
            .iter()
            .find_map(|e| e.name.clone())
            .unwrap_or_else(|| "no name".to_owned());
        if answer.entries.is_empty() {
            return Err(format!(
                "siren: the directory has no entry for {siren}: check the SIREN, and that the \
                 company chose this platform to receive its invoices"
            ));
        }
        if !answer.reachable {
            return Ok(Check::warning(
                name,
                format!("{siren} is in the directory but none of its entries is enabled: suppliers cannot send to it yet"),
            ));
        }
        Ok(Check::ok(
            name.clone(),
            format!("{siren} ({name}) receives its invoices through {} entr(ies)", answer.entries.len()),
        ))
    });
    match (flow, company) {
        (Some(()), Some(name)) => report.finish(
            Text::localized(
                "summary-ok",
                format!(
                    "approved platform ({}) ready for {} ({name})",
                    config.environment,
                    config.company()
                ),
            )
            .arg("environment", config.environment.to_string())
            .arg("siren", config.company().to_string())
            .arg("name", name.to_string()),
        ),
        _ => report.finish(""),
    }
}

fn health(client: &Client<'_, '_>, service: Service, base: &str) -> Result<Check<()>, String> {
    client
        .call(
            service,
            Method::Get,
            protocol::FLOW_HEALTH,
            None,
            Target::Health(service),
            RetryPolicy::once(),
            Idempotency::Idempotent,
        )
        .map(|_| Check::ok((), format!("{base} is up")))
        .map_err(|e| describe(&e))
}

export_plugin!(EinvoiceAfnor);
