//! # passerelle-calendar-graph
//!
//! Passerelle plugin for Microsoft 365 calendars through Microsoft Graph v1.0: serves
//! `calendar.sync` with the same contract as `exchange-ews`, for Exchange Online, where
//! Microsoft retires Exchange Web Services (disabled from October 2026, removed in April
//! 2027) and refuses basic authentication. It authenticates as an Entra ID application
//! (client credentials, application permission `Calendars.ReadWrite`).
//!
//! This file wires the plugin together and holds the test routine; [`config`] holds the
//! settings, [`client`] authenticates, retries and reads errors, [`errors`] turns Microsoft's
//! codes into advice, [`event`] is Graph's event as written and read, and [`sync`] runs the
//! synchronisation. All network access goes through the host.

pub mod client;
pub mod config;
pub mod errors;
pub mod event;
pub mod sync;

use base64::Engine as _;
use client::{encode, query, Graph};
pub use config::Config;
use passerelle_plugin_api::prelude::*;

/// The application permission calendar writes need.
pub const WRITE_PERMISSION: &str = "Calendars.ReadWrite";

/// The Microsoft 365 calendar (Graph) plugin.
#[derive(Debug)]
pub struct CalendarGraph;

impl Plugin for CalendarGraph {
    type Config = Config;

    const LOCALES: &'static [(&'static str, &'static str)] =
        &[("fr", include_str!("../locales/fr.ftl"))];

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "calendar-graph",
            "Microsoft 365 calendars (Graph)",
            env!("CARGO_PKG_VERSION"),
            Category::Calendar,
        );
        m.description = "Synchronises the ERP's appointments with Outlook calendars of \
                         Microsoft 365 (Exchange Online) through Microsoft Graph"
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

/// Get a token, check its application permissions, open the test mailbox's calendar.
fn test_routine(config: &Config, host: &Host<'_>) -> TestReport {
    if let Some(problem) = config.problems().into_iter().next() {
        return TestReport::failed("check configuration", problem.message);
    }
    let graph = Graph::new(config, host);
    let mut report = TestReport::new();
    let url = config.token_url();
    let Some(token) = report.step("get token", || {
        graph
            .token(true)
            .map(|t| Check::ok(t, format!("app-only token granted by {url}")))
            .map_err(|e| e.message)
    }) else {
        report.skip("check permission", "no access token");
        report.skip("open calendar", "no access token");
        return report.finish("");
    };

    report.step("check permission", || {
        let Some(roles) = token_roles(&token) else {
            return Ok(Check::warning(
                (),
                "the token's application permissions cannot be read (not a JWT); the next \
                 step shows whether calendars may be opened",
            ));
        };
        if roles.iter().any(|r| r == WRITE_PERMISSION) {
            return Ok(Check::ok(
                (),
                format!("the application has the permission {WRITE_PERMISSION}"),
            ));
        }
        let granted = if roles.is_empty() {
            "no application permission at all".to_owned()
        } else {
            format!("only {}", roles.join(", "))
        };
        Err(format!(
            "the token carries {granted}: add the Microsoft Graph application permission \
             {WRITE_PERMISSION} to the app registration (API permissions, Application \
             permissions, not Delegated) and grant admin consent"
        ))
    });

    let mailbox = config.test_mailbox();
    let opened = report.step("open calendar", || {
        let request = graph.request(
            Method::Get,
            &format!(
                "/users/{}/calendar{}",
                encode(mailbox),
                query(&[("$select", "id,name,canEdit")])
            ),
        );
        let response = graph
            .send(&request, Idempotency::Idempotent, mailbox)
            .map_err(|f| match f.error.kind {
                ErrorKind::NotFound => format!("{} (field test_mailbox)", f.error.message),
                _ => f.error.message,
            })?;
        #[derive(Deserialize)]
        struct Calendar {
            #[serde(default)]
            name: String,
            #[serde(rename = "canEdit", default)]
            can_edit: bool,
        }
        let calendar: Calendar = response.json().map_err(|e| e.message)?;
        let (waits, ms) = graph.throttling();
        let detail = format!(
            "the calendar {:?} of {mailbox} is readable{}",
            calendar.name,
            if calendar.can_edit {
                " and writable"
            } else {
                ""
            }
        );
        Ok(if waits > 0 {
            Check::warning(
                (),
                format!("{detail}, after {waits} throttled attempt(s), {ms} ms of waiting"),
            )
        } else {
            Check::ok((), detail)
        })
    });
    if opened.is_none() {
        return report.finish("");
    }
    report.finish(
        Text::localized(
            "summary-ok",
            format!(
                "Microsoft Graph answers at {}; the calendar of {mailbox} can be synchronised",
                config.graph_base()
            ),
        )
        .arg("url", config.graph_base().to_string())
        .arg("mailbox", mailbox.to_string()),
    )
}

/// The `roles` claim (application permissions) of a JWT access token; `None` when the token
/// is not a readable JWT. The signature is Graph's business, not ours.
fn token_roles(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(
        claims
            .get("roles")
            .and_then(serde_json::Value::as_array)
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

export_plugin!(CalendarGraph);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_the_jwt_payload() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"typ":"JWT","alg":"RS256"}"#),
            b64(
                r#"{"aud":"https://graph.microsoft.com","roles":["Calendars.ReadWrite","User.Read.All"]}"#
            )
        );
        assert_eq!(
            token_roles(&token).unwrap(),
            ["Calendars.ReadWrite", "User.Read.All"]
        );
        assert_eq!(token_roles("opaque-token"), None);
        let no_roles = format!("x.{}.y", b64(r#"{"aud":"x"}"#));
        assert_eq!(token_roles(&no_roles).unwrap(), Vec::<String>::new());
    }
}
