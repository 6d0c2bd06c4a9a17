//! The audit history page: who changed what, when, with old and new values (secrets never).

use super::*;
use crate::server::auth::Principal;
use crate::server::error::ApiError;
use crate::server::html::{attr, esc, page_in, Section, Viewer};
use crate::server::i18n::{Lang, Ui};
use crate::server::l10n;
use crate::server::AppState;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use std::fmt::Write as _;

#[derive(Debug, Deserialize)]
pub(super) struct AuditPageQuery {
    instance: Option<String>,
}

pub(super) fn render_audit_table(
    ui: &Ui,
    out: &mut String,
    entries: &[crate::server::audit::AuditEntry],
    with_instance: bool,
) {
    let _ = write!(
        out,
        "<table class=\"audit\"><caption>{}</caption><thead><tr>",
        esc(&ui.t("audit-caption"))
    );
    header_cells(out, ui, &["col-when", "col-who"]);
    if with_instance {
        header_cells(out, ui, &["col-instance"]);
    }
    header_cells(out, ui, &["col-what", "col-field", "col-change"]);
    out.push_str("</tr></thead><tbody>");
    for e in entries {
        let _ = write!(
            out,
            "<tr><td class=\"when\">{}</td><td>{}</td>",
            l10n::time_html(e.at_ms, ui.lang),
            esc(&e.actor)
        );
        if with_instance {
            match &e.instance {
                Some(i) => {
                    let _ = write!(
                        out,
                        "<td><a href=\"/instances/{}\">{}</a></td>",
                        attr(i),
                        esc(i)
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        let secret = e.old.is_none();
        let shown = |t: &str| esc(&audit_value(ui, &e.action, t, secret));
        let change = match (&e.old, &e.new) {
            (Some(o), Some(n)) => format!(
                "<span class=\"old\">{}</span> → <span class=\"new\">{}</span>",
                shown(o),
                shown(n)
            ),
            (None, Some(n)) => format!("<span class=\"new\">{}</span>", shown(n)),
            (Some(o), None) => format!("<span class=\"old\">{}</span>", shown(o)),
            (None, None) => String::new(),
        };
        let _ = write!(
            out,
            "<td data-action=\"{}\">{}</td><td>{}</td><td class=\"change\">{change}</td></tr>",
            attr(&e.action),
            esc(&action_label(ui, &e.action)),
            esc(e.field.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>");
}

/// How the history names an action (its stable code stays in `data-action`).
pub(super) fn action_label(ui: &Ui, action: &str) -> String {
    match action {
        "instance.create" => ui.t("action-instance-create"),
        "field.set" => ui.t("action-field-set"),
        "field.clear" => ui.t("action-field-clear"),
        "instance.enable" => ui.t("action-instance-enable"),
        "instance.disable" => ui.t("action-instance-disable"),
        "instance.delete" => ui.t("action-instance-delete"),
        "instance.test" => ui.t("action-instance-test"),
        "token.create" => ui.t("action-token-create"),
        "token.revoke" => ui.t("action-token-revoke"),
        "user.set_password" => ui.t("action-set-password"),
        other => other.to_owned(),
    }
}

/// An audit entry's old or new text in the page's language. The history is stored as the
/// host writes it, in English (the API and the command line return it so); the console
/// translates the forms the host writes and shows anything else as stored.
pub(super) fn audit_value(ui: &Ui, action: &str, text: &str, secret: bool) -> String {
    if ui.lang == Lang::En {
        return text.to_owned();
    }
    if let Some(value) = text.strip_prefix("(default) ") {
        return ui.ta("audit-default", &[("value", value.into())]);
    }
    match (action, text) {
        (_, "(unset)") => ui.t("audit-unset"),
        ("field.set" | "field.clear", "changed") if secret => ui.t("audit-secret-changed"),
        ("field.set" | "field.clear", "cleared") if secret => ui.t("audit-secret-cleared"),
        ("instance.enable" | "instance.disable", "enabled") => ui.t("instance-enabled"),
        ("instance.enable" | "instance.disable", "disabled") => ui.t("instance-disabled"),
        ("instance.create", t) if t.starts_with("plugin ") => {
            ui.ta("audit-created", &[("plugin", t["plugin ".len()..].into())])
        }
        ("instance.delete", t) => match t
            .strip_prefix("plugin ")
            .and_then(|r| r.split_once(", revision "))
        {
            Some((plugin, revision)) => ui.ta(
                "audit-deleted",
                &[("plugin", plugin.into()), ("revision", revision.into())],
            ),
            None => t.to_owned(),
        },
        ("instance.test", t) => match t.split_once("; ") {
            Some((status, what)) if !status.starts_with("refused") => {
                let status = match status {
                    "ok" => ui.t("status-ok"),
                    "warning" => ui.t("status-warning"),
                    "failed" => ui.t("status-failed"),
                    "skipped" => ui.t("status-skipped"),
                    other => other.to_owned(),
                };
                let what = match what.strip_prefix("unsaved values of: ") {
                    Some(fields) => ui.ta("audit-test-unsaved", &[("fields", fields.into())]),
                    None if what == "saved values" => ui.t("audit-test-saved"),
                    None => what.to_owned(),
                };
                ui.ta(
                    "audit-test",
                    &[("status", status.into()), ("what", what.into())],
                )
            }
            _ => t.to_owned(),
        },
        _ => text.to_owned(),
    }
}

pub(super) async fn audit_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<AuditPageQuery>,
) -> Response {
    let (user, csrf) = viewer(&who);
    let instance = q.instance.as_deref().filter(|s| !s.is_empty());
    let entries = match app.audit.list(instance, crate::server::api::AUDIT_MAX) {
        Ok(e) => e,
        Err(e) => return error_page(&ui, &who, &ApiError::internal(e)),
    };
    let mut body = format!(
        "<h1>{}</h1><form method=\"get\" action=\"/audit\" class=\"filter\"><label for=\"audit-instance\">{}</label><select id=\"audit-instance\" name=\"instance\"><option value=\"\">{}</option>",
        esc(&ui.t("audit-title")),
        esc(&ui.t("col-instance")),
        esc(&ui.t("audit-all"))
    );
    let mut ids: Vec<String> = app
        .engine
        .store
        .list()
        .map(|r| r.into_iter().map(|r| r.id.to_string()).collect())
        .unwrap_or_default();
    if let Some(i) = instance {
        if !ids.iter().any(|x| x == i) {
            ids.push(i.to_owned());
        }
    }
    for i in &ids {
        let _ = write!(
            body,
            "<option value=\"{}\"{}>{}</option>",
            attr(i),
            if Some(i.as_str()) == instance {
                " selected"
            } else {
                ""
            },
            esc(i)
        );
    }
    let _ = write!(
        body,
        "</select> <button type=\"submit\" class=\"secondary\">{}</button></form>",
        esc(&ui.t("audit-show"))
    );
    if entries.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(&ui.t("audit-none")));
    } else {
        render_audit_table(&ui, &mut body, &entries, true);
    }
    Html(page_in(
        &ui,
        &ui.t("audit-title"),
        Some(Viewer {
            user: &user,
            csrf: &csrf,
        }),
        Section::Audit,
        &body,
    ))
    .into_response()
}
