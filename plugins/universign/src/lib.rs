//! # passerelle-universign
//!
//! Passerelle plugin for electronic signature with Universign: the ERP sends quotes and
//! delivery notes for signature (`esign.request`), follows them (`esign.status`) and collects
//! the signed PDFs (`esign.documents`), may withdraw a pending request (`esign.cancel`);
//! signature placement, certificate level, SMS identification and return URLs are options
//! of `esign.request`. The `poll_signatures` task follows every pending
//! transaction in the background and stores the signed documents once.
//!
//! This file only wires the plugin together; each concern has its module: [`xmlrpc`] is the
//! protocol codec, [`client`] sends calls and gives failures and fault codes their meaning,
//! [`mapping`] converts between the `esign.*` types and Universign's members, [`store`] keeps
//! transactions and signed documents in the instance's state, [`transactions`] serves the
//! operations, [`poll`] runs the task, and [`config`] holds the instance settings. All
//! network access goes through the host.

pub mod client;
pub mod config;
pub mod mapping;
pub mod pdf_fields;
pub mod poll;
pub mod store;
pub mod transactions;
pub mod xmlrpc;

use client::{Client, Failure};
pub use config::Config;
use passerelle_plugin_api::prelude::*;

/// A transaction id Universign cannot know: asking for it authenticates without reading or
/// changing anything (the answer is fault 73025 once the credentials are accepted).
pub const PROBE_TRANSACTION_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The Universign plugin.
#[derive(Debug)]
pub struct Universign;

impl Plugin for Universign {
    type Config = Config;

    const LOCALES: &'static [(&'static str, &'static str)] =
        &[("fr", include_str!("../locales/fr.ftl"))];

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "universign",
            "Universign",
            env!("CARGO_PKG_VERSION"),
            Category::Esign,
        );
        m.description =
            "Electronic signature of quotes and delivery notes with Universign (XML-RPC)"
                .to_owned();
        m.tasks = vec![TaskDecl {
            name: poll::TASK.to_owned(),
            description: "Checks pending signature transactions and stores the signed \
                          documents of completed ones"
                .to_owned(),
            interval_field: "poll_interval_secs".to_owned(),
            start_delay_field: "poll_start_delay_secs".to_owned(),
        }];
        m
    }

    fn validate(config: &Config) -> Vec<PluginError> {
        config.problems()
    }

    fn test(config: &Config, host: &Host<'_>) -> TestReport {
        test_routine(config, host)
    }

    fn operations(ops: &mut Operations<Self>) {
        ops.serve::<EsignRequest>(|input, config, host| {
            transactions::request(&input, config, host)
        })
        .serve::<EsignStatus>(|input, config, host| transactions::status(&input, config, host))
        .serve::<EsignDocuments>(|input, config, host| {
            transactions::documents(&input, config, host)
        })
        .serve::<EsignCancel>(|input, config, host| transactions::cancel(&input, config, host));
    }

    fn run_task(task: &str, config: &Config, host: &Host<'_>) -> Result<TaskOutcome, PluginError> {
        if task == poll::TASK {
            return poll::run(config, host);
        }
        Err(PluginError::new(
            ErrorKind::Unsupported,
            format!(
                "the Universign plugin has no task {task:?}; its task is {}",
                poll::TASK
            ),
        ))
    }
}

/// Checks the configuration, then authenticates with a call that changes nothing, telling
/// an unreachable URL, refused credentials and a healthy service apart.
fn test_routine(config: &Config, host: &Host<'_>) -> TestReport {
    if let Some(problem) = config.connection_problems().into_iter().next() {
        return TestReport::failed("check configuration", problem.message);
    }
    let url = config.endpoint();
    let method = transactions::GET_TRANSACTION_INFO;
    let mut report = TestReport::new();
    let outcome = Client::new(config, host).call(method, vec![PROBE_TRANSACTION_ID.into()]);
    let describe =
        |f: &Failure| client::describe(f, config, method, client::Subject::Probe).message;
    let reached = report.step("reach Universign", || match &outcome {
        Ok(_) | Err(Failure::Fault(_)) | Err(Failure::Status { status: 401, .. }) => {
            Ok(Check::ok((), format!("{url} answered in XML-RPC")))
        }
        Err(f) => Err(describe(f)),
    });
    if reached.is_none() {
        report.skip("authenticate", "Universign was not reached");
    } else {
        report.step("authenticate", || match &outcome {
            Ok(_) => Ok(Check::ok((), format!("user {:?} accepted", config.user()))),
            Err(Failure::Fault(f)) if f.code == client::faults::UNKNOWN_TRANSACTION => {
                Ok(Check::ok((), format!("user {:?} accepted", config.user())))
            }
            Err(f) => Err(describe(f)),
        });
    }
    report.step("signature retrieval interval", || {
        let every = config.poll_interval_secs;
        let detail = format!(
            "every {every} s, first check {} s after the host starts",
            config.poll_start_delay_secs
        );
        if config.polls_too_often() {
            Ok(Check::warning(
                (),
                format!(
                    "{detail}: below the advised {} s (default {}), this loads Universign's \
                     service for little benefit",
                    config::ADVISED_MIN_POLL_INTERVAL_SECS,
                    config::DEFAULT_POLL_INTERVAL_SECS
                ),
            ))
        } else {
            Ok(Check::ok((), detail))
        }
    });
    report.step("electronic signature", || {
        if config.enabled {
            Ok(Check::ok((), "enabled".to_owned()))
        } else {
            Ok(Check::warning(
                (),
                "disabled: signature requests are refused and nothing is polled until \
                 `enabled` is set to true"
                    .to_owned(),
            ))
        }
    });
    report.step("pending transactions", || {
        let records = store::list(host).map_err(|e| e.message)?;
        let pending: Vec<_> = records.iter().filter(|r| r.is_pending()).collect();
        let stuck: Vec<_> = pending.iter().filter(|r| r.failures >= 3).collect();
        let detail = format!("{} stored, {} pending", records.len(), pending.len());
        match stuck.first() {
            Some(r) => Ok(Check::warning(
                (),
                format!(
                    "{detail}; {} failed 3 checks or more in a row, e.g. {}: {}",
                    stuck.len(),
                    r.transaction.id,
                    r.transaction
                        .last_error
                        .as_deref()
                        .unwrap_or("unknown error")
                ),
            )),
            None => Ok(Check::ok((), detail)),
        }
    });
    report.finish(
        Text::localized(
            "summary-ok",
            format!("Universign at {url} accepted user {:?}", config.user()),
        )
        .arg("url", url.to_string())
        .arg("user", config.user().to_string()),
    )
}

export_plugin!(Universign);
