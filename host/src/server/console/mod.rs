//! The web console: server-rendered pages for administrators.
//!
//! Pages: sign-in; instances (status and last test, create); one instance (its form,
//! generated from the plugin's schema by [`super::form`], with per-field Save, Enable,
//! Test, recent changes, delete); plugins (loaded and refused, with reasons); audit history.
//!
//! Every page is complete without JavaScript: forms post, the server answers with a
//! redirect (success) or the same page with the error next to the field and the typed value
//! kept (failure). `console.js` enhances the instance page when it runs: it saves a field
//! without reloading, shows and hides conditional fields as the choice changes, and runs the
//! test with unsaved values, showing the steps as they come back. It marks its requests with
//! `X-Requested-With: passerelle-console`, and gets JSON (field saves) or an HTML fragment
//! (test results) instead of whole pages.
//!
//! Every page is in the request's language ([`Ui`], chosen by [`i18n::negotiate`]): texts
//! from the console's catalogs, dates and numbers by [`super::l10n`]. What plugins and providers
//! write (schema titles, test step names, details) is shown as they give it.

pub mod audit;
pub mod instance;
pub mod instances;
pub mod plugins;
pub mod signin;
pub mod webhooks;

use super::auth::Principal;
use super::error::{ApiError, ErrorCode};
use super::html::{esc, page_in, Section, Viewer};
use super::i18n::{self, Lang, Ui};
use super::AppState;
use audit::*;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use instance::*;
use instances::*;
use passerelle_plugin_api::TestReport;
use plugins::*;
use signin::*;
use std::fmt::Write as _;

/// Header the console's script sets on its requests.
pub const ENHANCED_HEADER: &str = "x-requested-with";
const ENHANCED_VALUE: &str = "passerelle-console";

const CONSOLE_JS: &str = include_str!("../assets/console.js");
const CONSOLE_CSS: &str = include_str!("../assets/console.css");

type Pairs = Form<Vec<(String, String)>>;

/// Pages open to everyone: sign-in and static assets.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(stylesheet))
        .layer(axum::middleware::from_fn(i18n::negotiate))
}

/// Pages for signed-in administrators.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/instances") }))
        .route("/logout", post(logout))
        .route("/plugins", get(plugins_page))
        .route("/instances", get(instances_page).post(create_submit))
        .route("/instances/{id}", get(instance_page))
        .route("/instances/{id}/fields/{field}", post(field_submit))
        .route("/instances/{id}/enable", post(enable_submit))
        .route("/instances/{id}/disable", post(disable_submit))
        .route("/instances/{id}/test", post(test_submit))
        .route("/instances/{id}/delete", post(delete_submit))
        .route("/audit", get(audit_page))
        .layer(axum::middleware::from_fn(i18n::negotiate))
}

/// The last value of `key` in a posted form.
pub(super) fn last<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn is_enhanced(headers: &HeaderMap) -> bool {
    headers.get(ENHANCED_HEADER).and_then(|v| v.to_str().ok()) == Some(ENHANCED_VALUE)
}

fn viewer(who: &Principal) -> (String, String) {
    (who.actor(), who.csrf().unwrap_or_default().to_owned())
}

fn html_response(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

/// An error as a page.
fn error_page(ui: &Ui, who: &Principal, e: &ApiError) -> Response {
    let (user, csrf) = viewer(who);
    let body = format!(
        "<h1>{}</h1><p class=\"problem\" role=\"alert\">{}</p><p><a href=\"/instances\">{}</a></p>",
        esc(&status_title(ui, e.status)),
        esc(&error_text(ui, e)),
        esc(&ui.t("back-to-instances"))
    );
    html_response(
        e.status,
        page_in(
            ui,
            &ui.t("error-title"),
            Some(Viewer {
                user: &user,
                csrf: &csrf,
            }),
            Section::None,
            &body,
        ),
    )
}

fn status_title(ui: &Ui, status: StatusCode) -> String {
    match status {
        StatusCode::BAD_REQUEST => ui.t("status-bad-request"),
        StatusCode::FORBIDDEN => ui.t("status-forbidden"),
        StatusCode::NOT_FOUND => ui.t("status-not-found"),
        StatusCode::CONFLICT => ui.t("status-conflict"),
        StatusCode::UNPROCESSABLE_ENTITY => ui.t("status-unprocessable"),
        StatusCode::TOO_MANY_REQUESTS => ui.t("status-too-many-requests"),
        s if s.is_server_error() => ui.t("status-server-error"),
        s => s
            .canonical_reason()
            .map(str::to_owned)
            .unwrap_or_else(|| s.to_string()),
    }
}

/// An API error's message in the page's language. The host's messages are English and
/// carry details (ids, revisions, fields); in French a translated lead says what happened,
/// by the error's stable code, and the English details follow.
fn error_text(ui: &Ui, e: &ApiError) -> String {
    if ui.lang == Lang::En {
        return e.body.message.clone();
    }
    let lead = match e.code() {
        ErrorCode::StaleRevision => ui.t("error-stale-revision"),
        ErrorCode::NotFound => ui.t("error-not-found"),
        ErrorCode::AlreadyExists => ui.t("error-already-exists"),
        ErrorCode::InvalidId => ui.t("error-invalid-id"),
        ErrorCode::InvalidValue => ui.t("error-invalid-value"),
        ErrorCode::InvalidConfiguration => ui.t("error-invalid-configuration"),
        ErrorCode::UnknownPlugin => ui.t("error-unknown-plugin"),
        ErrorCode::InstanceDisabled => ui.t("error-instance-disabled"),
        ErrorCode::RateLimited | ErrorCode::QuotaExhausted => ui.t("error-rate-limited"),
        ErrorCode::ProviderTimeout | ErrorCode::ProviderUnavailable | ErrorCode::ProviderError => {
            ui.t("error-provider")
        }
        ErrorCode::Internal => return ui.t("error-internal"),
        _ => ui.t("error-other"),
    };
    ui.ta(
        "error-with-detail",
        &[
            ("lead", lead.into()),
            ("detail", e.body.message.clone().into()),
        ],
    )
}

// ----- assets -----

async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        CONSOLE_JS,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        CONSOLE_CSS,
    )
        .into_response()
}

/// `<th scope="col">` cells, one per catalog id.
fn header_cells(out: &mut String, ui: &Ui, ids: &[&str]) {
    for id in ids {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(&ui.t(id)));
    }
}

/// A test report in the page's language, from the plugin's catalog (English where the plugin
/// has none).
fn report_for(app: &AppState, plugin: &str, report: TestReport, ui: &Ui) -> TestReport {
    match app.engine.registry.get(plugin) {
        Some(p) => crate::i18n::report_in(&p, report, ui.lang.code()),
        None => report,
    }
}
