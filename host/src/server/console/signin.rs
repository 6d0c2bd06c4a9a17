//! Signing in and out: the sign-in form (its own CSRF token, slowed down after failures),
//! the session cookie, and a `next` that only ever points back into this server.

use super::*;
use crate::server::auth::{self, Principal, LOGIN_COOKIE, SESSION_LIFETIME};
use crate::server::error::ApiError;
use crate::server::html::{attr, esc, page_in, Section};
use crate::server::i18n::Ui;
use crate::server::AppState;
use axum::extract::{FromRequest as _, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use std::fmt::Write as _;

#[derive(Debug, Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// Where to go after sign-in: `next` when it is a path of this server, else the console's
/// home. Parsed, not pattern-matched, as a browser would resolve it: control characters
/// (a tab or newline is dropped by browsers, turning `/\t/evil` into `//evil`) and
/// backslashes (read as `/`) are refused outright, and the path must resolve to this origin
/// and keep a single leading `/`. The answer is the parsed URL's own serialisation, so the
/// `Location` header holds nothing the parser did not vouch for.
pub(super) fn safe_next(next: Option<&str>) -> String {
    next.and_then(same_origin_path)
        .unwrap_or_else(|| "/instances".to_owned())
}

pub(super) fn same_origin_path(raw: &str) -> Option<String> {
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
pub(super) fn percent_decode_lossy(s: &str) -> String {
    auth::parse_form(&format!("x={}", s.replace('+', "%2B")))
        .pop()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

pub(super) fn login_form(
    ui: &Ui,
    next: &str,
    token: &str,
    message: Option<&str>,
    user: &str,
) -> String {
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

pub(super) fn login_response(
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
pub(super) const LOGIN_FORM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

pub(super) async fn login_page(
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

pub(super) async fn login_submit(
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
    let foreign_origin = headers.contains_key(header::ORIGIN)
        && crate::server::check_origin(&headers, app.web).is_err();
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

pub(super) async fn logout(
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
