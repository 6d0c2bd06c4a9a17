//! The plugins page: loaded plugins with their capabilities, refused files with the reason,
//! and what hot add did.

use super::*;
use crate::server::auth::Principal;
use crate::server::html::{esc, page_in, Section, Viewer};
use crate::server::i18n::Ui;
use crate::server::AppState;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use std::fmt::Write as _;

pub(super) async fn plugins_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
) -> Response {
    let (user, csrf) = viewer(&who);
    let registry = app.engine.registry.load();
    let mut body = format!("<h1>{}</h1>", esc(&ui.t("plugins-title")));
    if registry.plugins.is_empty() {
        let _ = write!(body, "<p>{}</p>", ui.html("plugins-none-html", &[]));
    } else {
        let _ = write!(
            body,
            "<table><caption>{}</caption><thead><tr>",
            esc(&ui.t("plugins-loaded"))
        );
        header_cells(
            &mut body,
            &ui,
            &[
                "col-id",
                "col-name",
                "col-version",
                "col-category",
                "col-capabilities",
                "col-plugin-api",
                "col-file",
                "col-signed-by",
            ],
        );
        body.push_str("</tr></thead><tbody>");
        for p in &registry.plugins {
            let m = &p.manifest;
            let _ = write!(
                body,
                "<tr><th scope=\"row\">{}</th><td>{}<br><span class=\"desc\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&m.id),
                esc(&m.name),
                esc(&m.description),
                esc(&m.version),
                esc(&m.category.to_string()),
                esc(&m.capabilities.join(", ")),
                esc(&m.api_version),
                esc(&p.path.display().to_string()),
                match &p.signed_by {
                    Some(key) => format!("<code>{}</code>", esc(key)),
                    None => format!(
                        "<span class=\"badge badge-warning\">{}</span>",
                        esc(&ui.t("plugins-unsigned"))
                    ),
                }
            );
        }
        body.push_str("</tbody></table>");
    }
    if registry.refused.is_empty() {
        let _ = write!(body, "<p>{}</p>", esc(&ui.t("plugins-none-refused")));
    } else {
        let _ = write!(
            body,
            "<table class=\"refused\"><caption>{}</caption><thead><tr>",
            esc(&ui.t("plugins-refused"))
        );
        header_cells(&mut body, &ui, &["col-file", "col-reason"]);
        body.push_str("</tr></thead><tbody>");
        for r in &registry.refused {
            let _ = write!(
                body,
                "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td></tr>",
                esc(&r.path.display().to_string()),
                esc(&r.reason)
            );
        }
        body.push_str("</tbody></table>");
    }
    if !registry.events.is_empty() {
        let _ = write!(
            body,
            "<h2>{}</h2><ul class=\"events\">",
            esc(&ui.t("plugins-recent-changes"))
        );
        for e in registry.events.iter().rev().take(20) {
            let _ = write!(body, "<li>{}</li>", esc(e));
        }
        body.push_str("</ul>");
    }
    Html(page_in(
        &ui,
        &ui.t("plugins-title"),
        Some(Viewer {
            user: &user,
            csrf: &csrf,
        }),
        Section::Plugins,
        &body,
    ))
    .into_response()
}
