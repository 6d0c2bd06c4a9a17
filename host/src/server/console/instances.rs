//! The instances page: each instance with its status and last test, and the form that
//! creates one.

use super::*;
use crate::instances::ConfigError;
use crate::server::actions;
use crate::server::auth::Principal;
use crate::server::html::{attr, esc, page_in, Section, Viewer};
use crate::server::i18n::Ui;
use crate::server::l10n;
use crate::server::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use passerelle_plugin_api::Status;
use std::fmt::Write as _;

pub(super) fn status_badge(ui: &Ui, status: Status) -> String {
    let (class, text) = match status {
        Status::Ok => ("ok", ui.t("status-ok")),
        Status::Warning => ("warning", ui.t("status-warning")),
        Status::Failed => ("failed", ui.t("status-failed")),
        Status::Skipped => ("skipped", ui.t("status-skipped")),
    };
    format!("<span class=\"badge badge-{class}\">{}</span>", esc(&text))
}

pub(super) fn enabled_badge(ui: &Ui, enabled: bool) -> String {
    if enabled {
        format!(
            "<span class=\"badge badge-ok\">{}</span>",
            esc(&ui.t("instance-enabled"))
        )
    } else {
        format!(
            "<span class=\"badge\">{}</span>",
            esc(&ui.t("instance-disabled"))
        )
    }
}

pub(super) async fn instances_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
) -> Response {
    render_instances(&app, &ui, &who, StatusCode::OK, None, "", "")
}

/// Failed sign-ins against the signed-in account since its previous sign-in, if any.
pub(super) fn failed_sign_ins_notice(app: &AppState, ui: &Ui, who: &Principal) -> String {
    let Principal::User { name, .. } = who else {
        return String::new();
    };
    let failures = match app.auth.failures_before_last_sign_in(name) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the failed sign-ins");
            return String::new();
        }
    };
    if failures.count == 0 {
        return String::new();
    }
    format!(
        "<p class=\"problem\" role=\"status\" id=\"failed-sign-ins\">{}</p>",
        ui.html(
            "failed-sign-ins-html",
            &[
                ("count", failures.count.into()),
                ("user", name.as_str().into()),
                ("addresses", failures.addresses.join(", ").into()),
            ],
        )
    )
}

pub(super) fn render_instances(
    app: &AppState,
    ui: &Ui,
    who: &Principal,
    status: StatusCode,
    error: Option<&str>,
    typed_id: &str,
    typed_plugin: &str,
) -> Response {
    let (user, csrf) = viewer(who);
    let records = match app.engine.store.list() {
        Ok(r) => r,
        Err(e) => return error_page(ui, who, &ConfigError::from(e).into()),
    };
    let mut body = format!("<h1>{}</h1>", esc(&ui.t("instances-title")));
    body.push_str(&failed_sign_ins_notice(app, ui, who));
    if records.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(&ui.t("instances-none")));
    } else {
        let _ = write!(
            body,
            "<table><caption>{}</caption><thead><tr>",
            esc(&ui.t("instances-configured"))
        );
        header_cells(
            &mut body,
            ui,
            &[
                "col-instance",
                "col-plugin",
                "col-status",
                "col-last-test",
                "col-revision",
            ],
        );
        body.push_str("</tr></thead><tbody>");
        for r in &records {
            let last = match app
                .last_test(r.id.as_str())
                .map(|(at, report)| (at, report_for(app, &r.plugin, report, ui)))
            {
                Some((at, report)) => format!(
                    "{} <span class=\"when\">{}</span><br><span class=\"desc\">{}</span>",
                    status_badge(ui, report.status),
                    l10n::time_html(i64::try_from(at).unwrap_or(0), ui.lang),
                    esc(&report.summary)
                ),
                None => format!(
                    "<span class=\"badge\">{}</span>",
                    esc(&ui.t("instances-not-tested"))
                ),
            };
            let _ = write!(
                body,
                "<tr><th scope=\"row\"><a href=\"/instances/{}\">{}</a></th><td>{}</td><td>{}</td><td>{last}</td><td class=\"num\">{}</td></tr>",
                attr(r.id.as_str()),
                esc(r.id.as_str()),
                esc(&r.plugin),
                enabled_badge(ui, r.enabled),
                esc(&l10n::integer(r.revision, ui.lang))
            );
        }
        body.push_str("</tbody></table>");
    }
    let _ = write!(
        body,
        "<section class=\"create\"><h2>{}</h2>",
        esc(&ui.t("create-title"))
    );
    let registry = app.engine.registry.load();
    if registry.plugins.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(&ui.t("create-no-plugin")));
    } else {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/instances\" novalidate>\
             <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
             <p><label for=\"new-id\">{}</label>\
             <input id=\"new-id\" name=\"id\" value=\"{}\" aria-describedby=\"new-id-hint new-error\" spellcheck=\"false\"{}>\
             <span class=\"hint\" id=\"new-id-hint\">{}</span></p>\
             <p><label for=\"new-plugin\">{}</label><select id=\"new-plugin\" name=\"plugin\">",
            attr(&csrf),
            esc(&ui.t("create-id")),
            attr(typed_id),
            if error.is_some() {
                " aria-invalid=\"true\""
            } else {
                ""
            },
            ui.html("create-id-hint-html", &[]),
            esc(&ui.t("create-plugin"))
        );
        for p in &registry.plugins {
            let _ = write!(
                body,
                "<option value=\"{}\"{}>{} ({})</option>",
                attr(p.id()),
                if p.id() == typed_plugin {
                    " selected"
                } else {
                    ""
                },
                esc(&p.manifest.name),
                esc(p.id())
            );
        }
        let _ = write!(
            body,
            "</select></p><p class=\"error\" id=\"new-error\" aria-live=\"assertive\">{}</p>\
             <p><button type=\"submit\">{}</button></p></form>",
            error.map(esc).unwrap_or_default(),
            esc(&ui.t("create-submit"))
        );
    }
    body.push_str("</section>");
    html_response(
        status,
        page_in(
            ui,
            &ui.t("instances-title"),
            Some(Viewer {
                user: &user,
                csrf: &csrf,
            }),
            Section::Instances,
            &body,
        ),
    )
}

pub(super) async fn create_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Form(pairs): Pairs,
) -> Response {
    let id = last(&pairs, "id").unwrap_or_default().trim().to_owned();
    let plugin = last(&pairs, "plugin").unwrap_or_default().to_owned();
    match actions::create_instance(&app, who.actor(), &id, &plugin).await {
        Ok(record) => Redirect::to(&format!("/instances/{}", record.id)).into_response(),
        Err(e) => render_instances(
            &app,
            &ui,
            &who,
            e.status,
            Some(&error_text(&ui, &e)),
            &id,
            &plugin,
        ),
    }
}
