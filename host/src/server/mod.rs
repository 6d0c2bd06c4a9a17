//! `passerelle serve`: the HTTP API (`/api`, described at `/api/openapi.json`) and the web
//! console, on one axum router.
//!
//! - [`app`] builds the router from an [`AppState`] without a socket, so tests drive it with
//!   `tower::ServiceExt::oneshot`; [`serve`] binds it (loopback by default).
//! - Nothing but the sign-in page and the static assets is open: every other route goes
//!   through [`authenticate`], which resolves the caller (API token or browser session),
//!   checks the token's scope, and on a session's changing requests checks that they come
//!   from this server's own pages (`Origin`, else `Referer`) and carry the CSRF token. API
//!   tokens travel in a header a browser never adds by itself, so they need neither.
//! - Under `/api`, a request body must be JSON (`415` otherwise), and every error answer is
//!   JSON, even those made by the framework (`405`, `413`): `api_guard`.
//! - How the server is reached ([`WebOptions`]) decides whether cookies are `Secure` and
//!   where the client address of a sign-in comes from.
//! - The console's own records (accounts, sessions, tokens, audit) live in
//!   `<data-dir>/console.sqlite3` ([`db`]); configuration goes through the engine's
//!   [`crate::instances::Instances`] like the CLI, so both apply the same rules.

pub mod actions;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod console;
pub mod db;
pub mod error;
pub mod form;
pub mod health;
pub mod html;
pub mod i18n;
pub mod l10n;
pub mod metrics;
pub mod openapi;
pub mod throttle;

#[cfg(test)]
mod tests;

use crate::engine::Engine;
use crate::plugin::LoadedPlugin;
use auth::{AdminBootstrap, Auth, LoginLimits, Scope};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use error::ApiError;
use passerelle_plugin_api::TestReport;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

/// Environment variable holding the first administrator password.
pub const ADMIN_PASSWORD_ENV: &str = "PASSERELLE_ADMIN_PASSWORD";
/// Largest form body read to find its CSRF token.
const FORM_LIMIT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("cannot create the administrator account: {0}")]
    Admin(#[from] auth::AuthError),
    #[error("cannot listen on {addr}: {source}; is another server using that port? Choose another with --listen")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// How browsers reach the server: `passerelle serve --secure-cookies --trust-proxy`, or the
/// `[server]` section of `host.toml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebOptions {
    /// Cookies are always `Secure`: browsers reach the console over HTTPS only (through a
    /// TLS-terminating proxy).
    #[serde(default)]
    pub secure_cookies: bool,
    /// A reverse proxy forwards every request: its `X-Forwarded-Proto: https` makes cookies
    /// `Secure`, the last address of `X-Forwarded-For` is the client's (sign-in throttling),
    /// and `X-Forwarded-Host` is the host browsers use (Origin check). Only for a server that nothing but the proxy can reach, since anyone
    /// else could send those headers.
    #[serde(default)]
    pub trust_proxy: bool,
}

impl WebOptions {
    /// Whether this request reached us over HTTPS, as far as we may believe.
    pub fn https(&self, headers: &axum::http::HeaderMap) -> bool {
        self.secure_cookies
            || (self.trust_proxy
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")))
    }

    /// The client's address: the peer, or what a trusted proxy says it is.
    pub fn client_address(&self, req: &Request) -> String {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let forwarded = self
            .trust_proxy
            .then(|| {
                req.headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .next_back()
                    .and_then(|v| v.to_str().ok())
                    // The proxy appends the address it saw; earlier ones are the client's say.
                    .and_then(|v| v.rsplit(',').next())
                    .and_then(|a| a.trim().parse::<std::net::IpAddr>().ok())
            })
            .flatten()
            .map(|ip| ip.to_string());
        forwarded.or(peer).unwrap_or_else(|| "unknown".to_owned())
    }
}

/// What the server derives from one loaded plugin.
#[derive(Debug)]
pub struct PluginViews {
    pub schema: Bytes,
    pub form: Arc<form::FormModel>,
}

/// Identifies one loaded version of a plugin. Plugins are never unloaded (the live registry
/// keeps every plugin version it published), so the address of a loaded plugin is never
/// reused; a plugin file loaded again (hot add of a new version) gets a new one, and with it
/// new views.
pub fn plugin_key(plugin: &Arc<LoadedPlugin>) -> usize {
    Arc::as_ptr(plugin) as usize
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub engine: Arc<Engine>,
    pub auth: Auth,
    pub audit: audit::AuditLog,
    pub instance_cache: cache::InstanceCache,
    pub web: WebOptions,
    /// What the server derives from each loaded plugin, by plugin (see [`plugin_key`]).
    views: std::sync::RwLock<HashMap<usize, Arc<PluginViews>>>,
    openapi: Bytes,
    /// The same views in other languages than English (see [`crate::i18n`]).
    localized: crate::i18n::LocalizedViews,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Opens the console database of the engine's data directory.
    pub fn new(engine: Arc<Engine>) -> Result<Self, db::DbError> {
        Self::with_limits(engine, LoginLimits::default())
    }

    pub fn with_limits(engine: Arc<Engine>, limits: LoginLimits) -> Result<Self, db::DbError> {
        Self::with_options(engine, limits, WebOptions::default())
    }

    pub fn with_options(
        engine: Arc<Engine>,
        limits: LoginLimits,
        web: WebOptions,
    ) -> Result<Self, db::DbError> {
        let db = Arc::new(db::ConsoleDb::open_on(
            &engine.settings.data_dir,
            &engine.backend,
        )?);
        let auth = Auth::new(db.clone(), limits)?;
        let audit = audit::AuditLog::on(&engine.backend, db);
        Ok(AppState(Arc::new(Inner {
            engine,
            auth,
            audit,
            instance_cache: cache::InstanceCache::default(),
            web,
            views: std::sync::RwLock::new(HashMap::new()),
            openapi: Bytes::from(openapi::json()),
            localized: crate::i18n::LocalizedViews::default(),
        })))
    }

    /// What is derived from a plugin once: its schema as JSON bytes and its form model.
    pub fn views(&self, plugin: &Arc<LoadedPlugin>) -> Arc<PluginViews> {
        let key = plugin_key(plugin);
        if let Some(v) = self.views.read().ok().and_then(|m| m.get(&key).cloned()) {
            return v;
        }
        let views = Arc::new(PluginViews {
            schema: Bytes::from(
                serde_json::to_vec_pretty(plugin.schema.json()).unwrap_or_default(),
            ),
            form: Arc::new(form::FormModel::new(&plugin.schema)),
        });
        if let Ok(mut m) = self.views.write() {
            m.insert(key, views.clone());
        }
        views
    }

    /// A loaded plugin's schema as JSON bytes.
    pub fn schema_json(&self, plugin: &str) -> Option<Bytes> {
        let p = self.engine.registry.get(plugin)?.clone();
        Some(self.views(&p).schema.clone())
    }

    /// The form model of a loaded plugin.
    pub fn form_model(&self, plugin: &str) -> Option<Arc<form::FormModel>> {
        let p = self.engine.registry.get(plugin)?.clone();
        Some(self.views(&p).form.clone())
    }

    /// What is derived from a plugin, in language `lang` (English, or one it ships: see
    /// [`crate::i18n::choose`]).
    pub fn views_in(&self, plugin: &Arc<LoadedPlugin>, lang: &str) -> Arc<PluginViews> {
        if lang == crate::i18n::ENGLISH || !plugin.manifest.locales.contains_key(lang) {
            return self.views(plugin);
        }
        self.localized.get(plugin_key(plugin), plugin, lang)
    }

    /// A loaded plugin's schema as JSON bytes, in `lang`.
    pub fn schema_json_in(&self, plugin: &str, lang: &str) -> Option<Bytes> {
        let p = self.engine.registry.get(plugin)?.clone();
        Some(self.views_in(&p, lang).schema.clone())
    }

    /// The form model of a loaded plugin, in `lang`.
    pub fn form_model_in(&self, plugin: &str, lang: &str) -> Option<Arc<form::FormModel>> {
        let p = self.engine.registry.get(plugin)?.clone();
        Some(self.views_in(&p, lang).form.clone())
    }

    /// The last recorded test of an instance.
    pub fn last_test(&self, instance: &str) -> Option<(u64, TestReport)> {
        let (at, value) = self
            .engine
            .services
            .state
            .last_test(instance)
            .ok()
            .flatten()?;
        serde_json::from_value(value).ok().map(|r| (at, r))
    }
}

/// The whole HTTP application: API, OpenAPI document, console pages, assets.
pub fn app(state: AppState) -> Router {
    let (api, _) = api::router().split_for_parts();
    let protected = Router::new()
        .merge(api)
        .route("/api/openapi.json", get(openapi_json))
        .merge(console::router())
        .merge(console::webhooks::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .merge(console::public_router())
        .merge(health::router())
        .merge(protected)
        .fallback(not_found)
        .layer(middleware::from_fn(api_guard))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn openapi_json(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        app.openapi.clone(),
    )
        .into_response()
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/api" {
        ApiError::not_found(format!(
            "no such endpoint: {} {path}; see /api/openapi.json",
            req.method()
        ))
        .into_response()
    } else {
        let ui = i18n::Ui::new(i18n::Lang::from_headers(req.headers()));
        (
            StatusCode::NOT_FOUND,
            axum::response::Html(html::page_in(
                &ui,
                &ui.t("not-found-title"),
                None,
                html::Section::None,
                &ui.html("not-found-body-html", &[]),
            )),
        )
            .into_response()
    }
}

fn wants_json(req: &Request) -> bool {
    let path = req.uri().path();
    path.starts_with("/api/")
        || path == "/metrics"
        || req
            .headers()
            .get(console::ENHANCED_HEADER)
            .is_some_and(|v| v.as_bytes() == b"passerelle-console")
}

/// Resolves the caller, checks scope and CSRF, and hands the [`auth::Principal`] to the handler.
pub async fn authenticate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let json = wants_json(&req);
    let principal = match app.auth.resolve(req.headers()) {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(principal) = principal else {
        if json {
            return ApiError::unauthenticated().into_response();
        }
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        return Redirect::to(&format!("/login?next={}", url_encode(target))).into_response();
    };
    let path = req.uri().path().to_owned();
    let needed = if path.starts_with("/api/capabilities") || path == "/api/session" {
        Scope::Capabilities
    } else if path == "/metrics" {
        Scope::Metrics
    } else {
        Scope::Admin
    };
    if !principal.allows(needed) {
        return ApiError::forbidden(format!(
            "this token's scope does not allow {path}; it needs a token of scope `{needed}`"
        ))
        .into_response();
    }
    let mut req = req;
    let path = path.as_str();
    if let Some(expected) = principal.csrf().map(str::to_owned) {
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            if let Err(e) = check_origin(req.headers(), app.web) {
                tracing::warn!(user = %principal.actor(), %path, "request refused: {}", e.body.message);
                return refusal(json, e, i18n::Lang::from_headers(req.headers()));
            }
            let lang = i18n::Lang::from_headers(req.headers());
            match check_csrf(req, &expected).await {
                Ok(r) => req = r,
                Err(()) => {
                    tracing::warn!(user = %principal.actor(), %path, "request refused: missing or wrong CSRF token");
                    return refusal(json, ApiError::csrf(), lang);
                }
            }
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// A refused changing request: JSON for the API and the console's script, a page otherwise.
fn refusal(json: bool, e: ApiError, lang: i18n::Lang) -> Response {
    if json {
        return e.into_response();
    }
    let ui = i18n::Ui::new(lang);
    (
        e.status,
        axum::response::Html(html::page_in(
            &ui,
            &ui.t("refused-title"),
            None,
            html::Section::None,
            &ui.html("refused-body-html", &[]),
        )),
    )
        .into_response()
}

/// A changing request made with the session cookie must come from this server's own pages:
/// its `Origin` (or, when a browser sends none, its `Referer`) names the host it was sent to.
/// Browsers send `Origin` with every cross-site changing request, so a forged one is refused
/// here even before its CSRF token is looked at. Behind a trusted proxy that rewrites `Host`,
/// the host the browser used is in `X-Forwarded-Host`.
pub fn check_origin(headers: &axum::http::HeaderMap, web: WebOptions) -> Result<(), ApiError> {
    let forwarded_host = web
        .trust_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    let host = forwarded_host
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .map(str::to_ascii_lowercase);
    let (source, origin) = match headers.get(header::ORIGIN) {
        Some(v) => ("Origin", v.to_str().ok().map(str::to_owned)),
        None => match headers.get(header::REFERER) {
            Some(v) => ("Referer", v.to_str().ok().map(str::to_owned)),
            None => {
                return Err(ApiError::origin(
                    "this request changes something with a session cookie but has neither an `Origin` nor a `Referer` header, so it cannot be told from a forged one; send it from the console's pages, or use an API token (`Authorization: Bearer`)".to_owned(),
                ))
            }
        },
    };
    let origin_host = origin
        .as_deref()
        .and_then(|o| url::Url::parse(o).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .map(|h| h.to_ascii_lowercase());
    match (&origin_host, &host) {
        (Some(o), Some(h)) if same_host(o, h) => Ok(()),
        _ => Err(ApiError::origin(format!(
            "this request changes something with a session cookie, but its {source} ({}) is not this server ({}); send it from the console's pages, or use an API token (`Authorization: Bearer`)",
            origin.as_deref().unwrap_or("unreadable"),
            host.as_deref().unwrap_or("no Host header"),
        ))),
    }
}

/// `Host` may omit the default port that the origin's URL omits too.
fn same_host(origin: &str, host: &str) -> bool {
    origin == host
        || host
            .strip_suffix(":80")
            .or_else(|| host.strip_suffix(":443"))
            .is_some_and(|h| h == origin)
}

/// The rules of every `/api` request and answer that no handler should have to repeat:
/// a body is JSON (`415` naming the expected type otherwise), and an error answer is JSON
/// (the framework's own `405` and `413` are plain text or empty).
async fn api_guard(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    if let Some(e) = unsupported_media_type(&req) {
        return e.into_response();
    }
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_type);
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let e = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            crate::failure::ErrorCode::MethodNotAllowed,
            "this endpoint does not take this method; see /api/openapi.json",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            crate::failure::ErrorCode::PayloadTooLarge,
            "the request body is larger than this endpoint accepts; see /api/openapi.json",
        ),
        _ => ApiError::with_status(
            status,
            crate::failure::ErrorCode::InvalidRequest,
            status.canonical_reason().unwrap_or("refused").to_owned(),
        ),
    };
    let mut fixed = e.into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = response.headers().get(&name) {
            fixed.headers_mut().insert(name, v.clone());
        }
    }
    fixed
}

/// `application/json`, or a `+json` type such as `application/merge-patch+json`.
fn is_json_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A request with a body that is not declared JSON.
fn unsupported_media_type(req: &Request) -> Option<ApiError> {
    use axum::body::HttpBody as _;
    let headers = req.headers();
    let body = req.body();
    if body.is_end_stream() || body.size_hint().exact() == Some(0) {
        return None;
    }
    let given = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if given.as_deref().is_some_and(is_json_type) {
        return None;
    }
    Some(ApiError::new(
        crate::failure::ErrorCode::UnsupportedMediaType,
        format!(
            "the request body must be JSON sent with `Content-Type: application/json`, not {}",
            match given {
                Some(t) => format!("`{t}`"),
                None => "a body without Content-Type".to_owned(),
            }
        ),
    ))
}

/// Finds the CSRF token in the header or, for a form, in its `_csrf` field (the body is read
/// and put back).
async fn check_csrf(req: Request, expected: &str) -> Result<Request, ()> {
    if let Some(given) = req.headers().get(auth::CSRF_HEADER) {
        return if given
            .to_str()
            .is_ok_and(|g| auth::constant_time_eq(g, expected))
        {
            Ok(req)
        } else {
            Err(())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| ())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ())?;
    let ok = auth::parse_form(text)
        .iter()
        .any(|(k, v)| k == auth::CSRF_FIELD && auth::constant_time_eq(v, expected));
    if ok {
        Ok(Request::from_parts(parts, Body::from(bytes)))
    } else {
        Err(())
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers every answer carries: no sniffing, no framing, no inline code, no caching of
/// anything but the static assets.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Creates the `admin` account on first start and says so on standard output.
pub fn bootstrap_admin(state: &AppState) -> Result<(), ServeError> {
    let from_env = std::env::var(ADMIN_PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty());
    match state.auth.ensure_admin(from_env.as_deref())? {
        AdminBootstrap::Existing => {}
        AdminBootstrap::FromEnvironment => println!(
            "Created the administrator account `{}` with the password from {ADMIN_PASSWORD_ENV}.",
            auth::ADMIN_USER
        ),
        AdminBootstrap::Generated(password) => println!(
            "Created the administrator account `{}` with the password:\n\n    {password}\n\nIt is shown only this once. Change it with `passerelle admin set-password`.",
            auth::ADMIN_USER
        ),
    }
    Ok(())
}

/// Serves the API and the console on `listen` until Ctrl-C or SIGTERM.
pub async fn serve(
    engine: Arc<Engine>,
    listen: SocketAddr,
    web: WebOptions,
) -> Result<(), ServeError> {
    let state = AppState::with_options(engine, LoginLimits::default(), web)?;
    bootstrap_admin(&state)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && !web.secure_cookies && !web.trust_proxy {
        eprintln!(
            "warning: listening on {addr}, reachable from other machines; put a TLS-terminating proxy in front, since sign-ins and tokens travel in clear over plain HTTP"
        );
    }
    println!("Passerelle console: http://{addr}/ (API: http://{addr}/api, OpenAPI: http://{addr}/api/openapi.json)");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
