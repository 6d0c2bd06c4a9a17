//! # passerelle-exchange-ews
//!
//! Passerelle plugin for Microsoft Exchange through Exchange Web Services (EWS): serves
//! `calendar.sync`, which pushes the ERP's planning and appointments into Outlook calendars
//! and reads back what those calendars hold, on-premises (Windows authentication through the
//! host's NTLM, or basic authentication; delegate access or RBAC impersonation) or on
//! Exchange Online (app-only OAuth, impersonation, until Microsoft retires EWS there; the
//! `calendar-graph` plugin replaces it).
//!
//! This file only wires the plugin together; each concern has its module: [`config`] holds the
//! instance settings, [`soap`] writes the requests and [`response`] reads the answers (both
//! with quick-xml, through [`xml`]), [`client`] authenticates, sends and waits out
//! throttling, [`errors`] turns EWS codes into advice, [`times`] normalises dates and
//! [`sync`] runs the synchronisation. All network access goes through the host.

pub mod client;
pub mod config;
pub mod errors;
pub mod response;
pub mod soap;
pub mod sync;
pub mod times;
pub mod xml;

use client::{CallError, Ews};
pub use config::Config;
use passerelle_plugin_api::prelude::*;
use soap::Access;
use xml::{MESSAGES_NS, TYPES_NS};

/// The Microsoft Exchange (EWS) plugin.
#[derive(Debug)]
pub struct ExchangeEws;

impl Plugin for ExchangeEws {
    type Config = Config;

    const LOCALES: &'static [(&'static str, &'static str)] =
        &[("fr", include_str!("../locales/fr.ftl"))];

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "exchange-ews",
            "Microsoft Exchange (EWS)",
            env!("CARGO_PKG_VERSION"),
            Category::Calendar,
        );
        m.description = "Synchronises the ERP's appointments with Outlook calendars through \
                         Exchange Web Services (Exchange Server or Exchange Online)"
            .to_owned();
        m
    }

    fn validate(config: &Config) -> Vec<PluginError> {
        config.problems()
    }

    fn test(config: &Config, host: &Host<'_>) -> TestReport {
        test_routine(config, host)
    }

    fn operations(ops: &mut Operations<Self>) {
        ops.serve::<CalendarSync>(|input, config, host| sync::run(&input, config, host));
    }
}

/// Get a token (OAuth), reach EWS, open the test mailbox's calendar with `GetFolder`.
fn test_routine(config: &Config, host: &Host<'_>) -> TestReport {
    if let Some(problem) = config.problems().into_iter().next() {
        return TestReport::failed("check configuration", problem.message);
    }
    let ews = Ews::new(config, host);
    let mut report = TestReport::new();
    if config.use_oauth {
        let url = config.token_url();
        let token = report.step("get token", || {
            ews.fetch_token(true)
                .map(|()| Check::ok((), format!("app-only token granted by {url}")))
                .map_err(|e| e.message)
        });
        if token.is_none() {
            report.skip("reach EWS", "no access token");
            report.skip("open calendar", "no access token");
            return report.finish("");
        }
    }

    let mailbox = config.test_mailbox();
    let envelope = ews.envelope(mailbox);
    let url = config.ews_url.trim();
    let Some(reply) = report.step("reach EWS", || {
        // An EWS error is an answer: the next step says what it means for the calendar.
        let reply = match ews.call(&envelope, |e| e.get_calendar_folder()) {
            Ok(answer) => Ok(answer),
            Err(CallError::Ews(e)) if e.code != "ErrorServerBusy" => Err(e),
            Err(e) => return Err(ews.error(e, mailbox).message),
        };
        let server = reply
            .as_ref()
            .ok()
            .and_then(|a| a.server.as_ref())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let answered = format!("{url} answered{server}");
        let (waits, ms) = ews.busy_waits();
        Ok(if waits == 0 {
            Check::ok(reply, answered)
        } else {
            Check::warning(
                reply,
                format!("{answered} after {waits} ErrorServerBusy back-off(s), {ms} ms in all"),
            )
        })
    }) else {
        report.skip("open calendar", "EWS was not reached");
        return report.finish("");
    };

    let whose = match &envelope.access {
        Access::Own => "the delegated user's own calendar".to_owned(),
        Access::Delegate(m) => format!("the calendar of {m} (as a delegate)"),
        Access::Impersonate(m) => format!("the calendar of {m} (impersonated)"),
    };
    let opened = report.step("open calendar", || {
        let answer = reply.map_err(|e| describe_test_error(&ews, CallError::Ews(e), mailbox))?;
        let message = answer
            .messages
            .first()
            .ok_or("Exchange answered GetFolder without a response message")?;
        if message.is_error() {
            return Err(describe_test_error(
                &ews,
                CallError::Ews(message.error()),
                mailbox,
            ));
        }
        let folder = message
            .element
            .path(&[(MESSAGES_NS, "Folders"), (TYPES_NS, "CalendarFolder")]);
        if folder.is_none() {
            return Err("Exchange answered GetFolder without a calendar folder".to_owned());
        }
        Ok(Check::ok((), format!("{whose} opened with GetFolder")))
    });
    if opened.is_none() {
        return report.finish("");
    }
    let english = format!("Exchange answers at {url}; {whose} can be synchronised");
    let summary = match &envelope.access {
        Access::Own => Text::localized("summary-ok-own", english),
        Access::Delegate(m) => {
            Text::localized("summary-ok-delegate", english).arg("mailbox", m.to_string())
        }
        Access::Impersonate(m) => {
            Text::localized("summary-ok-impersonate", english).arg("mailbox", m.to_string())
        }
    };
    report.finish(summary.arg("url", url))
}

fn describe_test_error(ews: &Ews<'_, '_>, e: CallError, mailbox: Option<&str>) -> String {
    let e = ews.error(e, mailbox);
    match (e.kind, mailbox) {
        (ErrorKind::NotFound, Some(_)) => format!("{} (field test_mailbox)", e.message),
        _ => e.message,
    }
}

export_plugin!(ExchangeEws);
