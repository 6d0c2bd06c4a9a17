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
//! from the console's catalogs, dates and numbers by [`l10n`]. What plugins and providers
//! write (schema titles, test step names, details) is shown as they give it.

pub mod webhooks;

use super::actions;
use super::auth::{self, Principal, LOGIN_COOKIE, SESSION_LIFETIME};
use super::error::{ApiError, ErrorCode, FieldProblem};
use super::form::{self, FieldContext, FieldState, Kind};
use super::html::{attr, esc, page_in, Section, Viewer};
use super::i18n::{self, Lang, Ui};
use super::l10n;
use super::AppState;
use crate::instances::ConfigError;
use crate::schema::FieldError;
use crate::store::InstanceRecord;
use axum::extract::{FromRequest as _, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use passerelle_plugin_api::{Status, TestReport};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
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

// ----- sign-in -----

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Where to go after sign-in: `next` when it is a path of this server, else the console's
/// home. Parsed, not pattern-matched, as a browser would resolve it: control characters
/// (a tab or newline is dropped by browsers, turning `/\t/evil` into `//evil`) and
/// backslashes (read as `/`) are refused outright, and the path must resolve to this origin
/// and keep a single leading `/`. The answer is the parsed URL's own serialisation, so the
/// `Location` header holds nothing the parser did not vouch for.
fn safe_next(next: Option<&str>) -> String {
    next.and_then(same_origin_path)
        .unwrap_or_else(|| "/instances".to_owned())
}

fn same_origin_path(raw: &str) -> Option<String> {
    const BASE: &str = "http://console.invalid/";
    let suspicious = |s: &str| s.chars().any(|c| c.is_control() || c == '\\');
    let decoded = percent_decode_lossy(raw);
    if raw.len() > 2048
        || suspicious(raw)
        || suspicious(&decoded)
        || !raw.starts_with('/')
        || raw.starts_with("//")
        || decoded.starts_with("//")
    {
        return None;
    }
    let base = url::Url::parse(BASE).ok()?;
    let resolved = base.join(raw).ok()?;
    if resolved.origin() != base.origin() {
        return None;
    }
    let mut out = resolved.path().to_owned();
    if let Some(q) = resolved.query() {
        out.push('?');
        out.push_str(q);
    }
    // Dot segments can collapse into a leading `//` (`/.//evil`), which a browser would read
    // as another host.
    (out.starts_with('/') && !out.starts_with("//")).then_some(out)
}

/// `%XX` decoded once, for the checks only.
fn percent_decode_lossy(s: &str) -> String {
    auth::parse_form(&format!("x={}", s.replace('+', "%2B")))
        .pop()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn login_form(ui: &Ui, next: &str, token: &str, message: Option<&str>, user: &str) -> String {
    let mut body = format!(
        "<div class=\"login\"><h1>{}</h1>",
        esc(&ui.t("login-title"))
    );
    if let Some(m) = message {
        let _ = write!(
            body,
            "<p class=\"problem\" role=\"alert\" id=\"login-error\">{}</p>",
            esc(m)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <p><label for=\"username\">{}</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{}\"></p>\
         <p><label for=\"password\">{}</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <p class=\"hint\">{}</p></div>",
        attr(token),
        attr(next),
        esc(&ui.t("login-user-name")),
        attr(user),
        esc(&ui.t("login-password")),
        esc(&ui.t("login-submit")),
        ui.html("login-hint-html", &[])
    );
    page_in(ui, &ui.t("login-title"), None, Section::None, &body)
}

fn login_response(
    ui: &Ui,
    status: StatusCode,
    secure: bool,
    next: &str,
    message: Option<&str>,
    user: &str,
) -> Response {
    let token = auth::random_token(24);
    let mut response = html_response(status, login_form(ui, next, &token, message, user));
    if let Ok(v) = HeaderValue::from_str(&auth::login_cookie(&token, LOGIN_FORM_LIFETIME, secure)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// How long a sign-in form stays usable.
const LOGIN_FORM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

async fn login_page(
    State(app): State<AppState>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    login_response(
        &ui,
        StatusCode::OK,
        app.web.https(&headers),
        &safe_next(q.next.as_deref()),
        None,
        "",
    )
}

async fn login_submit(
    State(app): State<AppState>,
    Extension(ui): Extension<Ui>,
    req: Request,
) -> Response {
    let address = app.web.client_address(&req);
    let headers = req.headers().clone();
    let secure = app.web.https(&headers);
    let login_response = |status, next: &str, message: Option<&str>, user: &str| {
        login_response(&ui, status, secure, next, message, user)
    };
    let Ok(Form(pairs)) = Form::<Vec<(String, String)>>::from_request(req, &()).await else {
        return login_response(
            StatusCode::BAD_REQUEST,
            "/instances",
            Some(&ui.t("login-not-understood")),
            "",
        );
    };
    let next = safe_next(last(&pairs, "next"));
    let user = last(&pairs, "username").unwrap_or_default();
    let password = last(&pairs, "password").unwrap_or_default();
    let form_token = last(&pairs, auth::CSRF_FIELD).unwrap_or_default();
    let cookie_token = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    // A browser posting from another site sends its Origin: refuse that outright.
    let foreign_origin =
        headers.contains_key(header::ORIGIN) && super::check_origin(&headers, app.web).is_err();
    if foreign_origin || form_token.is_empty() || !auth::constant_time_eq(form_token, cookie_token)
    {
        return login_response(
            StatusCode::FORBIDDEN,
            &next,
            Some(&ui.t("login-expired")),
            user,
        );
    }
    let device = auth::cookie(&headers, auth::DEVICE_COOKIE);
    match app.auth.login(user, password, &address, device).await {
        Ok(session) => {
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            for cookie in [
                auth::session_cookie(&session.token, SESSION_LIFETIME, secure),
                auth::login_cookie("", std::time::Duration::ZERO, secure),
                auth::device_cookie(&session.device, secure),
            ] {
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    headers.append(header::SET_COOKIE, v);
                }
            }
            response
        }
        Err(auth::LoginError::RateLimited { retry_after }) => {
            let mut response = login_response(
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                Some(&ui.ta(
                    "login-rate-limited",
                    &[("seconds", retry_after.as_secs().max(1).into())],
                )),
                user,
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Err(auth::LoginError::Invalid) => login_response(
            StatusCode::UNAUTHORIZED,
            &next,
            Some(&ui.t("login-wrong")),
            user,
        ),
        Err(e) => {
            let e = ApiError::internal(e);
            login_response(e.status, &next, Some(&error_text(&ui, &e)), user)
        }
    }
}

async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
) -> Response {
    if let Principal::User { session_hash, .. } = &who {
        if let Err(e) = app.auth.logout(session_hash) {
            return error_page(&ui, &who, &ApiError::internal(e));
        }
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(
        "",
        std::time::Duration::ZERO,
        app.web.https(&headers),
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

// ----- plugins -----

async fn plugins_page(
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

/// `<th scope="col">` cells, one per catalog id.
fn header_cells(out: &mut String, ui: &Ui, ids: &[&str]) {
    for id in ids {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(&ui.t(id)));
    }
}

// ----- instance list -----

fn status_badge(ui: &Ui, status: Status) -> String {
    let (class, text) = match status {
        Status::Ok => ("ok", ui.t("status-ok")),
        Status::Warning => ("warning", ui.t("status-warning")),
        Status::Failed => ("failed", ui.t("status-failed")),
        Status::Skipped => ("skipped", ui.t("status-skipped")),
    };
    format!("<span class=\"badge badge-{class}\">{}</span>", esc(&text))
}

fn enabled_badge(ui: &Ui, enabled: bool) -> String {
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

async fn instances_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
) -> Response {
    render_instances(&app, &ui, &who, StatusCode::OK, None, "", "")
}

/// Failed sign-ins against the signed-in account since its previous sign-in, if any.
fn failed_sign_ins_notice(app: &AppState, ui: &Ui, who: &Principal) -> String {
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

fn render_instances(
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

async fn create_submit(
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

// ----- one instance -----

/// What an instance page shows besides the saved configuration.
#[derive(Debug, Default)]
struct Extras {
    /// Per field: error message and typed text.
    errors: HashMap<String, (String, Option<String>)>,
    /// Problems of the whole configuration (enable refused).
    problems: Vec<FieldProblem>,
    /// A message at the top.
    banner: Option<String>,
    /// A test just run, and whether it used unsaved values.
    report: Option<(TestReport, bool)>,
    saved: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

async fn instance_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Query(q): Query<SavedQuery>,
) -> Response {
    let extras = Extras {
        saved: q.saved,
        ..Extras::default()
    };
    match load(&app, &id) {
        Ok(record) => render_instance(&app, &ui, &who, StatusCode::OK, &record, &extras),
        Err(e) => error_page(&ui, &who, &e),
    }
}

fn load(app: &AppState, id: &str) -> Result<InstanceRecord, ApiError> {
    let id = actions::instance_id(id)?;
    Ok(app.engine.store.get(&id).map_err(ConfigError::from)?)
}

/// The error with its message in the page's language (see [`error_text`]).
fn localized(ui: &Ui, mut e: ApiError) -> ApiError {
    e.body.message = error_text(ui, &e);
    e
}

/// A refused field value with its message in the page's language: the validator's
/// verdicts through [`form::explain`], anything else through [`error_text`].
fn localized_field(
    ui: &Ui,
    spec: &form::FormField,
    value: Option<&Value>,
    mut e: ApiError,
) -> ApiError {
    if e.code() == ErrorCode::InvalidValue && e.body.field.as_deref().is_none_or(|f| f == spec.name)
    {
        e.body.message = form::explain(ui, spec, value, &e.body.message);
        e
    } else {
        localized(ui, e)
    }
}

fn render_report(
    ui: &Ui,
    out: &mut String,
    report: &TestReport,
    at_ms: Option<u64>,
    unsaved: bool,
) {
    let _ = write!(
        out,
        "<div class=\"report report-{}\"><p class=\"report-summary\">{} <strong>{}</strong>",
        report.status,
        status_badge(ui, report.status),
        esc(&report.summary)
    );
    if let Some(at) = at_ms {
        let _ = write!(
            out,
            " <span class=\"when\">{}</span>",
            l10n::time_html(i64::try_from(at).unwrap_or(0), ui.lang)
        );
    }
    if unsaved {
        let _ = write!(
            out,
            " <span class=\"note\">{}</span>",
            esc(&ui.t("test-unsaved-note"))
        );
    }
    let _ = write!(
        out,
        "</p><table class=\"steps\"><caption>{}</caption><thead><tr>",
        esc(&ui.t("test-steps"))
    );
    header_cells(
        out,
        ui,
        &["col-step", "col-status", "col-time", "col-detail"],
    );
    out.push_str("</tr></thead><tbody>");
    for step in &report.steps {
        let _ = write!(
            out,
            "<tr class=\"step step-{}\"><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            step.status,
            esc(&step.name),
            status_badge(ui, step.status),
            esc(&l10n::milliseconds(step.duration_ms, ui.lang)),
            esc(&step.detail)
        );
    }
    out.push_str("</tbody></table></div>");
}

fn render_instance(
    app: &AppState,
    ui: &Ui,
    who: &Principal,
    status: StatusCode,
    record: &InstanceRecord,
    extras: &Extras,
) -> Response {
    let (user, csrf) = viewer(who);
    let Some(plugin) = app.engine.registry.get(&record.plugin) else {
        return error_page(
            ui,
            who,
            &localized(
                ui,
                ApiError::from(ConfigError::UnknownPlugin {
                    plugin: record.plugin.clone(),
                    loaded: "see the Plugins page".to_owned(),
                }),
            ),
        );
    };
    let Some(model) = app.form_model_in(&record.plugin, ui.lang.code()) else {
        return error_page(
            ui,
            who,
            &ApiError::internal("no form model for a loaded plugin"),
        );
    };
    let effective = plugin.schema.with_defaults(&record.values);
    let id = record.id.as_str();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\">{}</p><h1>{} <span class=\"sub\">{}</span></h1>",
        ui.html("instance-crumbs-html", &[("id", id.into())]),
        esc(id),
        ui.html(
            "instance-subtitle-html",
            &[
                ("name", plugin.manifest.name.as_str().into()),
                ("plugin", plugin.id().into()),
            ]
        )
    );
    if let Some(b) = &extras.banner {
        let _ = write!(body, "<p class=\"problem\" role=\"alert\">{}</p>", esc(b));
    }
    if !extras.problems.is_empty() {
        let _ = write!(
            body,
            "<div class=\"problems\" role=\"alert\"><h2>{}</h2><ul>",
            esc(&ui.t("instance-fix-first"))
        );
        for p in &extras.problems {
            let title = model
                .field(&p.field)
                .map(|f| f.title.clone())
                .unwrap_or_else(|| p.field.clone());
            if p.field.is_empty() {
                let _ = write!(body, "<li>{}</li>", esc(&p.message));
            } else {
                let _ = write!(
                    body,
                    "<li><a href=\"#in-{}\">{}</a>{} {}</li>",
                    attr(&p.field),
                    esc(&title),
                    esc(&ui.t("colon")),
                    esc(&p.message)
                );
            }
        }
        body.push_str("</ul></div>");
    }
    // State and actions.
    let _ = write!(
        body,
        "<section class=\"bar\" aria-label=\"{}\"><p class=\"status\">{} <span class=\"rev\">{}</span></p>",
        attr(&ui.t("instance-state")),
        enabled_badge(ui, record.enabled),
        ui.html(
            "instance-revision-html",
            &[("revision", l10n::integer(record.revision, ui.lang).into())]
        )
    );
    let (toggle, label) = if record.enabled {
        ("disable", ui.t("instance-disable"))
    } else {
        ("enable", ui.t("instance-enable"))
    };
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/instances/{}/{toggle}\"><input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"revision\" value=\"{}\"><button type=\"submit\"{}>{}</button></form>\
         <form method=\"post\" action=\"/instances/{}/test\" data-enhance=\"test\"><input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <button type=\"submit\" id=\"test-button\">{}</button></form></section>",
        attr(id),
        attr(&csrf),
        record.revision,
        if record.enabled { " class=\"secondary\"" } else { "" },
        esc(&label),
        attr(id),
        attr(&csrf),
        esc(&ui.t("test-button"))
    );
    // Test result: the one just run, else the last recorded.
    let _ = write!(
        body,
        "<section id=\"test-result\" aria-live=\"polite\" aria-labelledby=\"test-heading\"><h2 id=\"test-heading\">{}</h2>",
        esc(&ui.t("test-heading"))
    );
    match &extras.report {
        Some((report, unsaved)) => render_report(ui, &mut body, report, None, *unsaved),
        None => match app
            .last_test(id)
            .map(|(at, report)| (at, report_for(app, &record.plugin, report, ui)))
        {
            Some((at, report)) => render_report(ui, &mut body, &report, Some(at), false),
            None => {
                let _ = write!(
                    body,
                    "<p class=\"desc\">{}</p>",
                    ui.html("test-never-html", &[])
                );
            }
        },
    }
    body.push_str("</section>");
    // The form.
    let mut states: HashMap<String, FieldState<'_>> = HashMap::new();
    for (name, (message, typed)) in &extras.errors {
        states.insert(
            name.clone(),
            FieldState {
                error: Some(message),
                typed: typed.as_deref(),
                saved: false,
            },
        );
    }
    if let Some(saved) = &extras.saved {
        states.entry(saved.clone()).or_default().saved = true;
    }
    let ctx = FieldContext {
        instance: id,
        record,
        effective: &effective,
        model: &model,
        csrf: &csrf,
        ui,
    };
    let _ = write!(
        body,
        "<section class=\"config\" aria-labelledby=\"config-heading\"><h2 id=\"config-heading\">{}</h2><p class=\"desc\">{}</p>",
        esc(&ui.t("config-heading")),
        ui.html("config-intro-html", &[])
    );
    form::render_form(&mut body, &ctx, &states);
    body.push_str("</section>");
    // Recent changes.
    let _ = write!(
        body,
        "<section class=\"history\" aria-labelledby=\"history-heading\"><h2 id=\"history-heading\">{}</h2>",
        esc(&ui.t("history-heading"))
    );
    match app.audit.list(Some(id), 10) {
        Ok(entries) if entries.is_empty() => {
            let _ = write!(body, "<p class=\"desc\">{}</p>", esc(&ui.t("history-none")));
        }
        Ok(entries) => render_audit_table(ui, &mut body, &entries, false),
        Err(e) => {
            let e = ApiError::internal(e);
            let _ = write!(
                body,
                "<p class=\"problem\">{}</p>",
                esc(&error_text(ui, &e))
            );
        }
    }
    let _ = write!(
        body,
        "<p><a href=\"/audit?instance={}\">{}</a></p></section>",
        attr(id),
        esc(&ui.ta("history-full", &[("id", id.into())]))
    );
    let _ = write!(
        body,
        "<section class=\"danger\" aria-labelledby=\"delete-heading\"><h2 id=\"delete-heading\">{}</h2>\
         <form method=\"post\" action=\"/instances/{}/delete\" data-confirm=\"{}\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\"><input type=\"hidden\" name=\"revision\" value=\"{}\">\
         <button type=\"submit\" class=\"danger\">{}</button></form></section>",
        esc(&ui.t("delete-heading")),
        attr(id),
        attr(&ui.ta("delete-confirm", &[("id", id.into())])),
        attr(&csrf),
        record.revision,
        esc(&ui.t("delete-button"))
    );
    html_response(
        status,
        page_in(
            ui,
            id,
            Some(Viewer {
                user: &user,
                csrf: &csrf,
            }),
            Section::Instances,
            &body,
        ),
    )
}

/// Shows a refused change on the instance page: next to the field when it names one. The
/// error's message is already in the page's language, except the problems of a whole
/// configuration, which are explained here field by field.
fn render_refusal(
    app: &AppState,
    ui: &Ui,
    who: &Principal,
    id: &str,
    e: &ApiError,
    field: Option<(&str, Option<String>)>,
) -> Response {
    let record = match load(app, id) {
        Ok(r) => r,
        Err(other) => return error_page(ui, who, &localized(ui, other)),
    };
    let mut extras = Extras::default();
    if e.code() == ErrorCode::InvalidConfiguration {
        let model = app.form_model_in(&record.plugin, ui.lang.code());
        let effective = app
            .engine
            .registry
            .get(&record.plugin)
            .map(|p| p.schema.with_defaults(&record.values))
            .unwrap_or_default();
        extras.problems = e
            .body
            .errors
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if let Some(spec) = model.as_ref().and_then(|m| m.field(&p.field)) {
                    p.message = form::explain(ui, spec, effective.get(&p.field), &p.message);
                } else if ui.lang != Lang::En {
                    p.message = ui.ta("field-error-other", &[("detail", p.message.into())]);
                }
                p
            })
            .collect();
        for p in &extras.problems {
            if !p.field.is_empty() {
                extras
                    .errors
                    .insert(p.field.clone(), (p.message.clone(), None));
            }
        }
        if let Some((name, typed)) = field {
            if let Some(entry) = extras.errors.get_mut(name) {
                entry.1 = typed;
            } else {
                extras
                    .errors
                    .insert(name.to_owned(), (error_text(ui, e), typed));
            }
        }
    } else if let Some((name, typed)) = field {
        extras
            .errors
            .insert(name.to_owned(), (e.body.message.clone(), typed));
    } else {
        extras.banner = Some(e.body.message.clone());
    }
    render_instance(app, ui, who, e.status, &record, &extras)
}

async fn field_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path((id, field)): Path<(String, String)>,
    headers: HeaderMap,
    Form(pairs): Pairs,
) -> Response {
    let enhanced = is_enhanced(&headers);
    let record = match load(&app, &id) {
        Ok(r) => r,
        Err(e) if enhanced => return localized(&ui, e).into_response(),
        Err(e) => return error_page(&ui, &who, &localized(&ui, e)),
    };
    let Some(model) = app.form_model_in(&record.plugin, ui.lang.code()) else {
        return error_page(
            &ui,
            &who,
            &ApiError::internal("no form model for a loaded plugin"),
        );
    };
    let Some(spec) = model.field(&field) else {
        let e = ApiError::invalid_value(&FieldError::new(&field, ui.t("field-unknown")));
        return if enhanced {
            e.into_response()
        } else {
            error_page(&ui, &who, &e)
        };
    };
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    let raw = last(&pairs, "value").unwrap_or_default();
    let clear = last(&pairs, "op") == Some("clear");
    let result = if clear {
        actions::clear_field(&app, who.actor(), &id, &field, revision)
            .await
            .map_err(|e| localized_field(&ui, spec, None, e))
    } else if spec.kind == Kind::Secret && raw.is_empty() {
        Err(ApiError::invalid_value(&FieldError::new(
            &field,
            ui.t("field-secret-empty"),
        )))
    } else {
        match form::check_input(spec, raw) {
            Ok(value) => {
                actions::set_field(&app, who.actor(), &id, &field, value.clone(), revision)
                    .await
                    .map_err(|e| localized_field(&ui, spec, Some(&value), e))
            }
            Err(problem) => Err(ApiError::invalid_value(&FieldError::new(
                &field,
                problem.message(&ui),
            ))),
        }
    };
    let typed = (spec.kind != Kind::Secret && !clear).then(|| raw.to_owned());
    match (result, enhanced) {
        (Ok(record), true) => Json(field_json(&ui, spec, &record)).into_response(),
        (Ok(record), false) => Redirect::to(&format!(
            "/instances/{}?saved={field}#field-{field}",
            record.id
        ))
        .into_response(),
        (Err(e), true) => e.into_response(),
        (Err(e), false) => render_refusal(&app, &ui, &who, &id, &e, Some((&field, typed))),
    }
}

/// What the script needs after a field was saved.
fn field_json(ui: &Ui, spec: &form::FormField, record: &InstanceRecord) -> Value {
    let secret = spec.kind == Kind::Secret;
    let saved = record.values.get(&spec.name);
    let secret_set = record.secrets.contains_key(&spec.name);
    let set = saved.is_some() || secret_set;
    let state = form::field_state(spec, saved.is_some(), secret_set);
    let value = if secret {
        None
    } else {
        saved.or(spec.default.as_ref())
    };
    json!({
        "revision": record.revision,
        "enabled": record.enabled,
        "field": spec.name,
        "state": state,
        "state_text": form::state_text(ui, state),
        "can_clear": set,
        "value": value,
        "text": value.map(|v| form::input_text(&spec.kind, v)),
    })
}

async fn set_enabled_submit(
    app: AppState,
    ui: Ui,
    who: Principal,
    id: String,
    pairs: Vec<(String, String)>,
    enabled: bool,
) -> Response {
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    match actions::set_enabled(&app, who.actor(), &id, enabled, revision).await {
        Ok(record) => Redirect::to(&format!("/instances/{}", record.id)).into_response(),
        Err(e) if e.code() == ErrorCode::InvalidConfiguration => {
            render_refusal(&app, &ui, &who, &id, &e, None)
        }
        Err(e) => render_refusal(&app, &ui, &who, &id, &localized(&ui, e), None),
    }
}

async fn enable_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    set_enabled_submit(app, ui, who, id, pairs, true).await
}

async fn disable_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    set_enabled_submit(app, ui, who, id, pairs, false).await
}

async fn test_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(pairs): Pairs,
) -> Response {
    let enhanced = is_enhanced(&headers);
    let record = match load(&app, &id) {
        Ok(r) => r,
        Err(e) if enhanced => return localized(&ui, e).into_response(),
        Err(e) => return error_page(&ui, &who, &localized(&ui, e)),
    };
    let Some(model) = app.form_model_in(&record.plugin, ui.lang.code()) else {
        return error_page(
            &ui,
            &who,
            &ApiError::internal("no form model for a loaded plugin"),
        );
    };
    // Unsaved values, sent by the script as `v.<field>`.
    let mut overrides = Map::new();
    for (key, raw) in &pairs {
        let Some(name) = key.strip_prefix("v.") else {
            continue;
        };
        let Some(spec) = model.field(name) else {
            continue;
        };
        if spec.kind == Kind::Secret && raw.is_empty() {
            continue;
        }
        match form::check_input(spec, raw) {
            Ok(v) => {
                overrides.insert(name.to_owned(), v);
            }
            Err(problem) => {
                let e = ApiError::invalid_value(&FieldError::new(name, problem.message(&ui)));
                return if enhanced {
                    e.into_response()
                } else {
                    render_refusal(&app, &ui, &who, &id, &e, Some((name, Some(raw.clone()))))
                };
            }
        }
    }
    let unsaved = !overrides.is_empty();
    let tested = actions::test(&app, who.actor(), &id, &overrides)
        .await
        .map(|report| match load(&app, &id) {
            Ok(record) => report_for(&app, &record.plugin, report, &ui),
            Err(_) => report,
        });
    match tested {
        Ok(report) if enhanced => {
            let mut out = format!(
                "<h2 id=\"test-heading\">{}</h2>",
                esc(&ui.t("test-heading"))
            );
            let at =
                (!unsaved).then(|| u64::try_from(crate::services::state::now_ms()).unwrap_or(0));
            render_report(&ui, &mut out, &report, at, unsaved);
            Html(out).into_response()
        }
        Ok(report) => {
            let extras = Extras {
                report: Some((report, unsaved)),
                ..Extras::default()
            };
            match load(&app, &id) {
                Ok(record) => render_instance(&app, &ui, &who, StatusCode::OK, &record, &extras),
                Err(e) => error_page(&ui, &who, &localized(&ui, e)),
            }
        }
        Err(e) if enhanced => localized(&ui, e).into_response(),
        Err(e) if e.code() == ErrorCode::InvalidConfiguration => {
            let field = e.body.field.clone();
            render_refusal(
                &app,
                &ui,
                &who,
                &id,
                &e,
                field.as_deref().map(|f| (f, None)),
            )
        }
        Err(e) => {
            let field = e.body.field.clone();
            let e = localized(&ui, e);
            render_refusal(
                &app,
                &ui,
                &who,
                &id,
                &e,
                field.as_deref().map(|f| (f, None)),
            )
        }
    }
}

async fn delete_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    match actions::delete_instance(&app, who.actor(), &id, revision).await {
        Ok(()) => Redirect::to("/instances").into_response(),
        Err(e) => render_refusal(&app, &ui, &who, &id, &localized(&ui, e), None),
    }
}

// ----- audit -----

#[derive(Debug, Deserialize)]
struct AuditPageQuery {
    instance: Option<String>,
}

fn render_audit_table(
    ui: &Ui,
    out: &mut String,
    entries: &[super::audit::AuditEntry],
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
fn action_label(ui: &Ui, action: &str) -> String {
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
fn audit_value(ui: &Ui, action: &str, text: &str, secret: bool) -> String {
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

async fn audit_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(ui): Extension<Ui>,
    Query(q): Query<AuditPageQuery>,
) -> Response {
    let (user, csrf) = viewer(&who);
    let instance = q.instance.as_deref().filter(|s| !s.is_empty());
    let entries = match app.audit.list(instance, super::api::AUDIT_MAX) {
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

/// A test report in the page's language, from the plugin's catalog (English where the plugin
/// has none).
fn report_for(app: &AppState, plugin: &str, report: TestReport, ui: &Ui) -> TestReport {
    match app.engine.registry.get(plugin) {
        Some(p) => crate::i18n::report_in(&p, report, ui.lang.code()),
        None => report,
    }
}
