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

use super::actions;
use super::auth::{self, Principal, LOGIN_COOKIE, SESSION_LIFETIME};
use super::error::{ApiError, FieldProblem};
use super::form::{self, FieldContext, FieldState, Kind};
use super::html::{self, attr, esc, page, Section, Viewer};
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

const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

type Pairs = Form<Vec<(String, String)>>;

/// Pages open to everyone: sign-in and static assets.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(stylesheet))
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
}

fn last<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
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
fn error_page(who: &Principal, e: &ApiError) -> Response {
    let (user, csrf) = viewer(who);
    let body = format!(
        "<h1>{}</h1><p class=\"problem\" role=\"alert\">{}</p><p><a href=\"/instances\">Back to the instances</a></p>",
        esc(&status_title(e.status)),
        esc(&e.body.message)
    );
    html_response(
        e.status,
        page(
            "Error",
            Some(Viewer {
                user: &user,
                csrf: &csrf,
            }),
            Section::None,
            &body,
        ),
    )
}

fn status_title(status: StatusCode) -> String {
    status
        .canonical_reason()
        .map(str::to_owned)
        .unwrap_or_else(|| status.to_string())
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

fn login_form(next: &str, token: &str, message: Option<&str>, user: &str) -> String {
    let mut body = String::from("<div class=\"login\"><h1>Sign in</h1>");
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
         <p><label for=\"username\">User name</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{}\"></p>\
         <p><label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <p class=\"hint\">The account <code>admin</code> is created on first start; change its password with <code>passerelle admin set-password</code>.</p></div>",
        attr(token),
        attr(next),
        attr(user)
    );
    page("Sign in", None, Section::None, &body)
}

fn login_response(
    status: StatusCode,
    secure: bool,
    next: &str,
    message: Option<&str>,
    user: &str,
) -> Response {
    let token = auth::random_token(24);
    let mut response = html_response(status, login_form(next, &token, message, user));
    if let Ok(v) = HeaderValue::from_str(&auth::login_cookie(&token, LOGIN_FORM_LIFETIME, secure)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// How long a sign-in form stays usable.
const LOGIN_FORM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    login_response(
        StatusCode::OK,
        app.web.https(&headers),
        &safe_next(q.next.as_deref()),
        None,
        "",
    )
}

async fn login_submit(State(app): State<AppState>, req: Request) -> Response {
    let address = app.web.client_address(&req);
    let headers = req.headers().clone();
    let secure = app.web.https(&headers);
    let login_response = |status, next: &str, message, user: &str| {
        login_response(status, secure, next, message, user)
    };
    let Ok(Form(pairs)) = Form::<Vec<(String, String)>>::from_request(req, &()).await else {
        return login_response(
            StatusCode::BAD_REQUEST,
            "/instances",
            Some("The sign-in form was not understood; try again."),
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
            Some("This sign-in form has expired or did not come from this site; sign in again."),
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
                Some(&format!(
                    "Too many failed sign-ins. Wait {} seconds and try again.",
                    retry_after.as_secs().max(1)
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
            Some("Wrong user name or password."),
            user,
        ),
        Err(e) => {
            let e = ApiError::internal(e);
            login_response(e.status, &next, Some(&e.body.message), user)
        }
    }
}

async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Extension(who): Extension<Principal>,
) -> Response {
    if let Principal::User { session_hash, .. } = &who {
        if let Err(e) = app.auth.logout(session_hash) {
            return error_page(&who, &ApiError::internal(e));
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
) -> Response {
    let (user, csrf) = viewer(&who);
    let registry: &crate::loader::Registry = &app.engine.registry;
    let mut body = String::from("<h1>Plugins</h1>");
    if registry.plugins.is_empty() {
        body.push_str("<p>No plugin is loaded. Put plugin libraries in a plugin directory (see <code>passerelle --help</code>) and restart.</p>");
    } else {
        body.push_str(
            "<table><caption>Loaded plugins</caption><thead><tr><th scope=\"col\">Id</th><th scope=\"col\">Name</th>\
             <th scope=\"col\">Version</th><th scope=\"col\">Category</th><th scope=\"col\">Capabilities</th>\
             <th scope=\"col\">Plugin API</th><th scope=\"col\">File</th><th scope=\"col\">Signed by</th></tr></thead><tbody>",
        );
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
                    None => "<span class=\"badge badge-warning\">Unsigned</span>".to_owned(),
                }
            );
        }
        body.push_str("</tbody></table>");
    }
    if registry.refused.is_empty() {
        body.push_str("<p>No file was refused.</p>");
    } else {
        body.push_str(
            "<table class=\"refused\"><caption>Refused files</caption><thead><tr><th scope=\"col\">File</th>\
             <th scope=\"col\">Reason</th></tr></thead><tbody>",
        );
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
        body.push_str("<h2>Recent plugin changes</h2><ul class=\"events\">");
        for e in registry.events.iter().rev().take(20) {
            let _ = write!(body, "<li>{}</li>", esc(e));
        }
        body.push_str("</ul>");
    }
    Html(page(
        "Plugins",
        Some(Viewer {
            user: &user,
            csrf: &csrf,
        }),
        Section::Plugins,
        &body,
    ))
    .into_response()
}

// ----- instance list -----

fn status_badge(status: Status) -> String {
    let (class, text) = match status {
        Status::Ok => ("ok", "OK"),
        Status::Warning => ("warning", "Warning"),
        Status::Failed => ("failed", "Failed"),
        Status::Skipped => ("skipped", "Skipped"),
    };
    format!("<span class=\"badge badge-{class}\">{text}</span>")
}

async fn instances_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Response {
    render_instances(&app, &who, StatusCode::OK, None, "", "")
}

/// Failed sign-ins against the signed-in account since its previous sign-in, if any.
fn failed_sign_ins_notice(app: &AppState, who: &Principal) -> String {
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
        "<p class=\"problem\" role=\"status\" id=\"failed-sign-ins\">{} failed sign-in attempt{} for <code>{}</code> since the previous sign-in, from {}. \
         If they were not yours, make sure the password is long and unique (<code>passerelle admin set-password</code>).</p>",
        failures.count,
        if failures.count == 1 { "" } else { "s" },
        esc(name),
        esc(&failures.addresses.join(", "))
    )
}

fn render_instances(
    app: &AppState,
    who: &Principal,
    status: StatusCode,
    error: Option<&str>,
    typed_id: &str,
    typed_plugin: &str,
) -> Response {
    let (user, csrf) = viewer(who);
    let records = match app.engine.store.list() {
        Ok(r) => r,
        Err(e) => return error_page(who, &ConfigError::from(e).into()),
    };
    let mut body = String::from("<h1>Instances</h1>");
    body.push_str(&failed_sign_ins_notice(app, who));
    if records.is_empty() {
        body.push_str("<p>No instance yet. Create one below.</p>");
    } else {
        body.push_str(
            "<table><caption>Configured instances</caption><thead><tr><th scope=\"col\">Instance</th>\
             <th scope=\"col\">Plugin</th><th scope=\"col\">Status</th><th scope=\"col\">Last test</th>\
             <th scope=\"col\">Revision</th></tr></thead><tbody>",
        );
        for r in &records {
            let last = match app.last_test(r.id.as_str()) {
                Some((at, report)) => format!(
                    "{} <span class=\"when\">{}</span><br><span class=\"desc\">{}</span>",
                    status_badge(report.status),
                    esc(&html::time(i64::try_from(at).unwrap_or(0))),
                    esc(&report.summary)
                ),
                None => "<span class=\"badge\">Not tested</span>".to_owned(),
            };
            let _ = write!(
                body,
                "<tr><th scope=\"row\"><a href=\"/instances/{}\">{}</a></th><td>{}</td><td>{}</td><td>{last}</td><td>{}</td></tr>",
                attr(r.id.as_str()),
                esc(r.id.as_str()),
                esc(&r.plugin),
                if r.enabled {
                    "<span class=\"badge badge-ok\">Enabled</span>"
                } else {
                    "<span class=\"badge\">Disabled</span>"
                },
                r.revision
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("<section class=\"create\"><h2>Create an instance</h2>");
    if app.engine.registry.plugins.is_empty() {
        body.push_str("<p>No plugin is loaded, so no instance can be created.</p>");
    } else {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/instances\" novalidate>\
             <input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
             <p><label for=\"new-id\">Instance id</label>\
             <input id=\"new-id\" name=\"id\" value=\"{}\" aria-describedby=\"new-id-hint new-error\" spellcheck=\"false\"{}>\
             <span class=\"hint\" id=\"new-id-hint\">Lowercase letters, digits, '-' or '_', e.g. <code>sirene-prod</code>.</span></p>\
             <p><label for=\"new-plugin\">Plugin</label><select id=\"new-plugin\" name=\"plugin\">",
            attr(&csrf),
            attr(typed_id),
            if error.is_some() {
                " aria-invalid=\"true\""
            } else {
                ""
            }
        );
        for p in &app.engine.registry.plugins {
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
             <p><button type=\"submit\">Create</button></p></form>",
            error.map(esc).unwrap_or_default()
        );
    }
    body.push_str("</section>");
    html_response(
        status,
        page(
            "Instances",
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
    Form(pairs): Pairs,
) -> Response {
    let id = last(&pairs, "id").unwrap_or_default().trim().to_owned();
    let plugin = last(&pairs, "plugin").unwrap_or_default().to_owned();
    match actions::create_instance(&app, who.actor(), &id, &plugin).await {
        Ok(record) => Redirect::to(&format!("/instances/{}", record.id)).into_response(),
        Err(e) => render_instances(&app, &who, e.status, Some(&e.body.message), &id, &plugin),
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
    Path(id): Path<String>,
    Query(q): Query<SavedQuery>,
) -> Response {
    let extras = Extras {
        saved: q.saved,
        ..Extras::default()
    };
    match load(&app, &id) {
        Ok(record) => render_instance(&app, &who, StatusCode::OK, &record, &extras),
        Err(e) => error_page(&who, &e),
    }
}

fn load(app: &AppState, id: &str) -> Result<InstanceRecord, ApiError> {
    let id = actions::instance_id(id)?;
    Ok(app.engine.store.get(&id).map_err(ConfigError::from)?)
}

fn render_report(out: &mut String, report: &TestReport, at_ms: Option<u64>, unsaved: bool) {
    let _ = write!(
        out,
        "<div class=\"report report-{}\"><p class=\"report-summary\">{} <strong>{}</strong>",
        report.status,
        status_badge(report.status),
        esc(&report.summary)
    );
    if let Some(at) = at_ms {
        let _ = write!(
            out,
            " <span class=\"when\">{}</span>",
            esc(&html::time(i64::try_from(at).unwrap_or(0)))
        );
    }
    if unsaved {
        out.push_str(" <span class=\"note\">(with unsaved values; not recorded)</span>");
    }
    out.push_str(
        "</p><table class=\"steps\"><caption>Test steps</caption><thead><tr><th scope=\"col\">Step</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Time</th><th scope=\"col\">Detail</th></tr></thead><tbody>",
    );
    for step in &report.steps {
        let _ = write!(
            out,
            "<tr class=\"step step-{}\"><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{} ms</td><td>{}</td></tr>",
            step.status,
            esc(&step.name),
            status_badge(step.status),
            step.duration_ms,
            esc(&step.detail)
        );
    }
    out.push_str("</tbody></table></div>");
}

fn render_instance(
    app: &AppState,
    who: &Principal,
    status: StatusCode,
    record: &InstanceRecord,
    extras: &Extras,
) -> Response {
    let (user, csrf) = viewer(who);
    let Some(plugin) = app.engine.registry.get(&record.plugin) else {
        return error_page(
            who,
            &ApiError::from(ConfigError::UnknownPlugin {
                plugin: record.plugin.clone(),
                loaded: "see the Plugins page".to_owned(),
            }),
        );
    };
    let Some(model) = app.form_model(&record.plugin) else {
        return error_page(
            who,
            &ApiError::internal("no form model for a loaded plugin"),
        );
    };
    let effective = plugin.schema.with_defaults(&record.values);
    let id = record.id.as_str();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\"><a href=\"/instances\">Instances</a> › {}</p>\
         <h1>{} <span class=\"sub\">{} · plugin <code>{}</code></span></h1>",
        esc(id),
        esc(id),
        esc(&plugin.manifest.name),
        esc(plugin.id())
    );
    if let Some(b) = &extras.banner {
        let _ = write!(body, "<p class=\"problem\" role=\"alert\">{}</p>", esc(b));
    }
    if !extras.problems.is_empty() {
        body.push_str("<div class=\"problems\" role=\"alert\"><h2>Fix these first</h2><ul>");
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
                    "<li><a href=\"#in-{}\">{}</a>: {}</li>",
                    attr(&p.field),
                    esc(&title),
                    esc(&p.message)
                );
            }
        }
        body.push_str("</ul></div>");
    }
    // State and actions.
    let _ = write!(
        body,
        "<section class=\"bar\" aria-label=\"Instance state\"><p class=\"status\">{} <span class=\"rev\">revision <span id=\"revision\">{}</span></span></p>",
        if record.enabled {
            "<span class=\"badge badge-ok\">Enabled</span>"
        } else {
            "<span class=\"badge\">Disabled</span>"
        },
        record.revision
    );
    let (toggle, label) = if record.enabled {
        ("disable", "Disable")
    } else {
        ("enable", "Enable")
    };
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/instances/{}/{toggle}\"><input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"revision\" value=\"{}\"><button type=\"submit\"{}>{label}</button></form>\
         <form method=\"post\" action=\"/instances/{}/test\" data-enhance=\"test\"><input type=\"hidden\" name=\"_csrf\" value=\"{}\">\
         <button type=\"submit\" id=\"test-button\">Test</button></form></section>",
        attr(id),
        attr(&csrf),
        record.revision,
        if record.enabled { " class=\"secondary\"" } else { "" },
        attr(id),
        attr(&csrf)
    );
    // Test result: the one just run, else the last recorded.
    body.push_str(
        "<section id=\"test-result\" aria-live=\"polite\" aria-labelledby=\"test-heading\"><h2 id=\"test-heading\">Test</h2>",
    );
    match &extras.report {
        Some((report, unsaved)) => render_report(&mut body, report, None, *unsaved),
        None => match app.last_test(id) {
            Some((at, report)) => render_report(&mut body, &report, Some(at), false),
            None => body.push_str("<p class=\"desc\">Not tested yet. <strong>Test</strong> checks the connection with the values on this page, saved or not.</p>"),
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
    };
    body.push_str("<section class=\"config\" aria-labelledby=\"config-heading\"><h2 id=\"config-heading\">Configuration</h2><p class=\"desc\">Each field is saved on its own with its <strong>Save</strong> button. Secrets are never shown: only whether they are set.</p>");
    form::render_form(&mut body, &ctx, &states);
    body.push_str("</section>");
    // Recent changes.
    body.push_str("<section class=\"history\" aria-labelledby=\"history-heading\"><h2 id=\"history-heading\">Recent changes</h2>");
    match app.audit.list(Some(id), 10) {
        Ok(entries) if entries.is_empty() => {
            body.push_str("<p class=\"desc\">No change recorded yet.</p>")
        }
        Ok(entries) => render_audit_table(&mut body, &entries, false),
        Err(e) => {
            let e = ApiError::internal(e);
            let _ = write!(body, "<p class=\"problem\">{}</p>", esc(&e.body.message));
        }
    }
    let _ = write!(
        body,
        "<p><a href=\"/audit?instance={}\">Full history of {}</a></p></section>",
        attr(id),
        esc(id)
    );
    let _ = write!(
        body,
        "<section class=\"danger\" aria-labelledby=\"delete-heading\"><h2 id=\"delete-heading\">Delete</h2>\
         <form method=\"post\" action=\"/instances/{}/delete\" data-confirm=\"Delete instance {} and its saved values?\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{}\"><input type=\"hidden\" name=\"revision\" value=\"{}\">\
         <button type=\"submit\" class=\"danger\">Delete this instance</button></form></section>",
        attr(id),
        attr(id),
        attr(&csrf),
        record.revision
    );
    html_response(
        status,
        page(
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

/// Shows a refused change on the instance page: next to the field when it names one.
fn render_refusal(
    app: &AppState,
    who: &Principal,
    id: &str,
    e: &ApiError,
    field: Option<(&str, Option<String>)>,
) -> Response {
    let record = match load(app, id) {
        Ok(r) => r,
        Err(other) => return error_page(who, &other),
    };
    let mut extras = Extras::default();
    if e.code() == "invalid_configuration" {
        extras.problems = e.body.errors.clone();
        for p in &e.body.errors {
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
                    .insert(name.to_owned(), (e.body.message.clone(), typed));
            }
        }
    } else if let Some((name, typed)) = field {
        extras
            .errors
            .insert(name.to_owned(), (e.body.message.clone(), typed));
    } else {
        extras.banner = Some(e.body.message.clone());
    }
    render_instance(app, who, e.status, &record, &extras)
}

async fn field_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, field)): Path<(String, String)>,
    headers: HeaderMap,
    Form(pairs): Pairs,
) -> Response {
    let enhanced = is_enhanced(&headers);
    let record = match load(&app, &id) {
        Ok(r) => r,
        Err(e) if enhanced => return e.into_response(),
        Err(e) => return error_page(&who, &e),
    };
    let Some(model) = app.form_model(&record.plugin) else {
        return error_page(
            &who,
            &ApiError::internal("no form model for a loaded plugin"),
        );
    };
    let Some(spec) = model.field(&field) else {
        let e = ApiError::invalid_value(&FieldError::new(&field, "this plugin has no such field"));
        return if enhanced {
            e.into_response()
        } else {
            error_page(&who, &e)
        };
    };
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    let raw = last(&pairs, "value").unwrap_or_default();
    let clear = last(&pairs, "op") == Some("clear");
    let result = if clear {
        actions::clear_field(&app, who.actor(), &id, &field, revision).await
    } else if spec.kind == Kind::Secret && raw.is_empty() {
        Err(ApiError::invalid_value(&FieldError::new(
            &field,
            "type the new value first; to remove the saved one, use Clear",
        )))
    } else {
        match form::parse_input(spec, raw) {
            Ok(value) => actions::set_field(&app, who.actor(), &id, &field, value, revision).await,
            Err(message) => Err(ApiError::invalid_value(&FieldError::new(&field, message))),
        }
    };
    let typed = (spec.kind != Kind::Secret && !clear).then(|| raw.to_owned());
    match (result, enhanced) {
        (Ok(record), true) => Json(field_json(spec, &record)).into_response(),
        (Ok(record), false) => Redirect::to(&format!(
            "/instances/{}?saved={field}#field-{field}",
            record.id
        ))
        .into_response(),
        (Err(e), true) => e.into_response(),
        (Err(e), false) => render_refusal(&app, &who, &id, &e, Some((&field, typed))),
    }
}

/// What the script needs after a field was saved.
fn field_json(spec: &form::FormField, record: &InstanceRecord) -> Value {
    let secret = spec.kind == Kind::Secret;
    let saved = record.values.get(&spec.name);
    let set = saved.is_some() || record.secrets.contains_key(&spec.name);
    let (state, state_text) = if secret {
        if set {
            ("set", "set")
        } else {
            ("unset", "not set")
        }
    } else if saved.is_some() {
        ("saved", "saved")
    } else if spec.default.is_some() {
        ("default", "default")
    } else {
        ("unset", "not set")
    };
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
        "state_text": state_text,
        "can_clear": set,
        "value": value,
        "text": value.map(|v| form::input_text(&spec.kind, v)),
    })
}

async fn set_enabled_submit(
    app: AppState,
    who: Principal,
    id: String,
    pairs: Vec<(String, String)>,
    enabled: bool,
) -> Response {
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    match actions::set_enabled(&app, who.actor(), &id, enabled, revision).await {
        Ok(record) => Redirect::to(&format!("/instances/{}", record.id)).into_response(),
        Err(e) => render_refusal(&app, &who, &id, &e, None),
    }
}

async fn enable_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    set_enabled_submit(app, who, id, pairs, true).await
}

async fn disable_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    set_enabled_submit(app, who, id, pairs, false).await
}

async fn test_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(pairs): Pairs,
) -> Response {
    let enhanced = is_enhanced(&headers);
    let record = match load(&app, &id) {
        Ok(r) => r,
        Err(e) if enhanced => return e.into_response(),
        Err(e) => return error_page(&who, &e),
    };
    let Some(model) = app.form_model(&record.plugin) else {
        return error_page(
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
        match form::parse_input(spec, raw) {
            Ok(v) => {
                overrides.insert(name.to_owned(), v);
            }
            Err(message) => {
                let e = ApiError::invalid_value(&FieldError::new(name, message));
                return if enhanced {
                    e.into_response()
                } else {
                    render_refusal(&app, &who, &id, &e, Some((name, Some(raw.clone()))))
                };
            }
        }
    }
    let unsaved = !overrides.is_empty();
    match actions::test(&app, who.actor(), &id, &overrides).await {
        Ok(report) if enhanced => {
            let mut out = String::from("<h2 id=\"test-heading\">Test</h2>");
            let at =
                (!unsaved).then(|| u64::try_from(crate::services::state::now_ms()).unwrap_or(0));
            render_report(&mut out, &report, at, unsaved);
            Html(out).into_response()
        }
        Ok(report) => {
            let extras = Extras {
                report: Some((report, unsaved)),
                ..Extras::default()
            };
            match load(&app, &id) {
                Ok(record) => render_instance(&app, &who, StatusCode::OK, &record, &extras),
                Err(e) => error_page(&who, &e),
            }
        }
        Err(e) if enhanced => e.into_response(),
        Err(e) => {
            let field = e.body.field.clone();
            render_refusal(&app, &who, &id, &e, field.as_deref().map(|f| (f, None)))
        }
    }
}

async fn delete_submit(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Form(pairs): Pairs,
) -> Response {
    let revision = last(&pairs, "revision").and_then(|r| r.parse().ok());
    match actions::delete_instance(&app, who.actor(), &id, revision).await {
        Ok(()) => Redirect::to("/instances").into_response(),
        Err(e) => render_refusal(&app, &who, &id, &e, None),
    }
}

// ----- audit -----

#[derive(Debug, Deserialize)]
struct AuditPageQuery {
    instance: Option<String>,
}

fn render_audit_table(out: &mut String, entries: &[super::audit::AuditEntry], with_instance: bool) {
    out.push_str("<table class=\"audit\"><caption>Changes, newest first</caption><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th>");
    if with_instance {
        out.push_str("<th scope=\"col\">Instance</th>");
    }
    out.push_str("<th scope=\"col\">What</th><th scope=\"col\">Field</th><th scope=\"col\">Change</th></tr></thead><tbody>");
    for e in entries {
        let _ = write!(
            out,
            "<tr><td class=\"when\">{}</td><td>{}</td>",
            esc(&html::time(e.at_ms)),
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
        let change = match (&e.old, &e.new) {
            (Some(o), Some(n)) => format!(
                "<span class=\"old\">{}</span> → <span class=\"new\">{}</span>",
                esc(o),
                esc(n)
            ),
            (None, Some(n)) => format!("<span class=\"new\">{}</span>", esc(n)),
            (Some(o), None) => format!("<span class=\"old\">{}</span>", esc(o)),
            (None, None) => String::new(),
        };
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td><td class=\"change\">{change}</td></tr>",
            esc(&e.action),
            esc(e.field.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>");
}

async fn audit_page(
    State(app): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<AuditPageQuery>,
) -> Response {
    let (user, csrf) = viewer(&who);
    let instance = q.instance.as_deref().filter(|s| !s.is_empty());
    let entries = match app.audit.list(instance, super::api::AUDIT_MAX) {
        Ok(e) => e,
        Err(e) => return error_page(&who, &ApiError::internal(e)),
    };
    let mut body = String::from("<h1>Audit history</h1><form method=\"get\" action=\"/audit\" class=\"filter\"><label for=\"audit-instance\">Instance</label><select id=\"audit-instance\" name=\"instance\"><option value=\"\">All</option>");
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
    body.push_str("</select> <button type=\"submit\" class=\"secondary\">Show</button></form>");
    if entries.is_empty() {
        body.push_str("<p>No change recorded.</p>");
    } else {
        render_audit_table(&mut body, &entries, true);
    }
    Html(page(
        "Audit history",
        Some(Viewer {
            user: &user,
            csrf: &csrf,
        }),
        Section::Audit,
        &body,
    ))
    .into_response()
}
