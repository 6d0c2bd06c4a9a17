//! API and console tests: the whole router driven with `oneshot`, no socket, against a demo
//! plugin built in-process (its real root module, no dlopen) whose schema has every kind of
//! field the form generator handles.

use super::auth::{LoginLimits, Scope};
use super::*;
use crate::plugin::LoadedPlugin;
use crate::schema::ConfigSchema;
use crate::settings::Settings;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use passerelle_plugin_api::capabilities::{Company, CompanyLookup};
use passerelle_plugin_api::prelude::*;
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;

// ----- the demo plugin -----

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("dependencies" = {
    "mode": {"oneOf": [
        {"properties": {"mode": {"const": "key"}}, "required": ["api_key"]},
        {"properties": {"mode": {"const": "oauth"}}, "required": ["client_id", "client_secret"]}
    ]}
}))]
#[allow(dead_code)] // read through the schema and the test routine's config only
struct DemoConfig {
    /// Authentication
    ///
    /// How to sign in to the demo service.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    mode: Mode,
    /// API key
    ///
    /// The key of the demo account.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    api_key: Option<Secret>,
    /// Client id
    ///
    /// OAuth client id.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    client_id: Option<String>,
    /// Client secret
    ///
    /// OAuth client secret.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    client_secret: Option<Secret>,
    /// Timeout (seconds)
    ///
    /// How long to wait.
    #[serde(default = "ten")]
    #[schemars(range(min = 1, max = 120))]
    #[schemars(extend("x-group" = "connection"))]
    timeout_secs: u32,
    /// Verbose
    ///
    /// Log more.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection"))]
    verbose: bool,
    /// Codes
    ///
    /// Activity codes to accept.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection", "x-order" = 0))]
    codes: Vec<String>,
    /// Label
    ///
    /// Free text shown in reports.
    #[serde(default)]
    label: Option<String>,
}

/// How to sign in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Mode {
    /// API key
    #[default]
    Key,
    /// OAuth client credentials
    Oauth,
}

fn ten() -> u32 {
    10
}

struct Demo;

impl Plugin for Demo {
    type Config = DemoConfig;

    fn manifest() -> Manifest {
        let mut m = Manifest::new("demo", "Demo service", "1.2.3", Category::Company);
        m.capabilities = vec![CompanyLookup::NAME.to_owned()];
        m
    }

    fn test(config: &DemoConfig, _host: &Host<'_>) -> TestReport {
        let mut report = TestReport::new();
        report.step("read settings", || {
            Ok::<_, String>(Check::ok(
                (),
                format!(
                    "timeout {} s, mode {:?}, {} code(s)",
                    config.timeout_secs,
                    config.mode,
                    config.codes.len()
                ),
            ))
        });
        report.step("check key", || match &config.api_key {
            Some(k) if k.expose() == "good-key-123" => Ok(Check::ok((), "key accepted")),
            _ => Err("the demo service refused the key".to_owned()),
        });
        report.finish("")
    }

    fn invoke(call: Call<'_>, config: &DemoConfig, _host: &Host<'_>) -> Result<Reply, PluginError> {
        if call.is::<CompanyLookup>() {
            return call.serve::<CompanyLookup>(|q| {
                Ok(Company {
                    siren: q.id.clone(),
                    legal_name: Some(format!("Demo {}", config.timeout_secs)),
                    active: true,
                    ..Company::default()
                })
            });
        }
        Err(call.unsupported())
    }
}

// ----- harness -----

const PASSWORD: &str = "a long enough password";
/// The `Host` the test requests are sent to, and the `Origin` of this server's pages.
const HOST: &str = "console.test:8080";
const ORIGIN: &str = "http://console.test:8080";

struct Harness {
    _dir: tempfile::TempDir,
    app: Router,
    state: AppState,
    admin_token: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// A browser session: cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

/// The demo plugin as the loader would hand it over, its schema passed through `edit`.
fn demo_plugin(edit: impl FnOnce(&mut Value)) -> Arc<LoadedPlugin> {
    let module = passerelle_plugin_api::__private::root_module::<Demo>();
    let manifest: Manifest = crate::plugin::decode("manifest", (module.manifest())()).unwrap();
    let mut schema_json: Value =
        crate::plugin::decode("config_schema", (module.config_schema())()).unwrap();
    edit(&mut schema_json);
    Arc::new(LoadedPlugin {
        path: "demo.so".into(),
        sha256: String::new(),
        signed_by: None,
        manifest,
        schema: ConfigSchema::new(schema_json).unwrap(),
        backend: crate::plugin::Backend::InProcess(module),
        load_time: Duration::ZERO,
    })
}

fn demo_engine(dir: &std::path::Path) -> Arc<Engine> {
    let settings = Settings::new(
        dir.join("data"),
        vec![dir.join("no-plugins-here")],
        None,
        Duration::from_secs(10),
    );
    let engine = Engine::open(settings).unwrap();
    let plugin = demo_plugin(|_| {});
    engine.registry.update(|r| r.plugins.push(plugin));
    Arc::new(engine)
}

impl Harness {
    fn new() -> Self {
        Self::with_limits(LoginLimits::default())
    }

    fn with_limits(limits: LoginLimits) -> Self {
        Self::with(limits, WebOptions::default())
    }

    fn with_options(web: WebOptions) -> Self {
        Self::with(LoginLimits::default(), web)
    }

    fn with(limits: LoginLimits, web: WebOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = demo_engine(dir.path());
        let state = AppState::with_options(engine, limits, web).unwrap();
        state.auth.ensure_admin(Some(PASSWORD)).unwrap();
        let (_, admin_token) = state
            .auth
            .create_token("tests", Scope::Admin, "tests")
            .unwrap();
        Harness {
            _dir: dir,
            app: app(state.clone()),
            state,
            admin_token,
        }
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A JSON request with a bearer token (or none).
    async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.api(method, path, Some(&self.admin_token.clone()), body)
            .await
    }

    async fn create_demo(&self, id: &str) {
        self.admin(
            "POST",
            "/api/instances",
            Some(json!({"id": id, "plugin": "demo"})),
        )
        .await
        .expect(StatusCode::CREATED);
    }

    async fn set(&self, id: &str, field: &str, value: Value) -> Answer {
        self.admin(
            "PUT",
            &format!("/api/instances/{id}/fields/{field}"),
            Some(json!({ "value": value })),
        )
        .await
    }

    async fn login(&self) -> Session {
        let page = self
            .send(Request::get("/login").body(Body::empty()).unwrap())
            .await
            .expect(StatusCode::OK);
        let login_cookie = cookie_pair(&page.headers, "passerelle_login");
        let token = hidden_value(&page.body, "_csrf");
        let form = format!(
            "_csrf={token}&next=%2Finstances&username=admin&password=a+long+enough+password"
        );
        let answer = self
            .send(
                Request::post("/login")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("cookie", login_cookie)
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await
            .expect(StatusCode::SEE_OTHER);
        assert_eq!(answer.headers["location"], "/instances");
        let set_cookie = answer
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("passerelle_session="))
            .unwrap();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let me = self
            .send(
                Request::get("/api/session")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(me["actor"], "admin");
        Session {
            cookie,
            csrf: me["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A console request under a session.
    async fn page(&self, s: &Session, method: &str, path: &str, form: Option<&str>) -> Answer {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", &s.cookie)
            .header("host", HOST)
            .header("origin", ORIGIN);
        let req = match form {
            Some(f) => req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(f.to_owned())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }
}

fn cookie_pair(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no cookie {name}"))
}

fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The HTML of one field's block.
fn field_block<'a>(html: &'a str, field: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"field-{field}\""))
        .unwrap_or_else(|| panic!("no field {field}"));
    let start = html[..start].rfind("<div").unwrap();
    let end = start + html[start..].find("</form></div>").unwrap();
    &html[start..end]
}

/// Every file under a directory (the console database and its WAL included), as text.
fn data_dump(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push_str(&data_dump(&path));
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn enc(s: &str) -> String {
    url_encode(s).replace('/', "%2F")
}

// ----- authentication -----

#[tokio::test]
async fn nothing_is_open_without_a_session_or_token() {
    let h = Harness::new();
    for path in [
        "/api/plugins",
        "/api/instances",
        "/api/openapi.json",
        "/api/plugins/demo/schema",
        "/api/audit",
    ] {
        let a = h
            .api("GET", path, None, None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
        assert_eq!(a.code(), "unauthenticated", "{path}");
        assert!(a.headers.contains_key("www-authenticate"));
    }
    let a = h
        .api(
            "POST",
            "/api/capabilities/company.lookup",
            None,
            Some(json!({"id": "1"})),
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(a.code(), "unauthenticated");
    let a = h
        .api("GET", "/api/plugins", Some("pst_nope_nope"), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(a.code(), "unauthenticated");
    for path in ["/instances", "/plugins", "/audit", "/instances/x"] {
        let a = h
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await
            .expect(StatusCode::SEE_OTHER);
        assert_eq!(
            a.headers["location"].to_str().unwrap(),
            format!("/login?next={path}")
        );
    }
    // The sign-in page and the assets are the only open routes.
    h.send(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .expect(StatusCode::OK);
    let js = h
        .send(
            Request::get("/assets/console.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect(StatusCode::OK);
    assert!(js.body.contains("applyConditions"));
}

#[tokio::test]
async fn sessions_need_the_csrf_token_on_every_change() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    // JSON API with the session cookie: refused without the header, accepted with it.
    let put = |csrf: Option<String>| {
        let mut req = Request::put("/api/instances/d/fields/timeout_secs")
            .header("cookie", &s.cookie)
            .header("host", HOST)
            .header("origin", ORIGIN)
            .header("content-type", "application/json");
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        req.body(Body::from(r#"{"value": 20}"#)).unwrap()
    };
    let a = h.send(put(None)).await.expect(StatusCode::FORBIDDEN);
    assert_eq!(a.code(), "csrf_failed");
    let a = h
        .send(put(Some("wrong".into())))
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(a.code(), "csrf_failed");
    h.send(put(Some(s.csrf.clone())))
        .await
        .expect(StatusCode::OK);
    // Console forms: the token travels in `_csrf`.
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some("value=30"),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(a.body.contains("expired"), "{}", a.body);
    h.page(
        &s,
        "POST",
        "/instances/d/fields/timeout_secs",
        Some(&format!("_csrf={}&value=30", s.csrf)),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["fields"][field_index(&v, "timeout_secs")]["value"], 30);
    // Reads need no token.
    h.page(&s, "GET", "/instances/d", None)
        .await
        .expect(StatusCode::OK);
    // Sign-out closes the session for good.
    h.page(&s, "POST", "/logout", Some(&format!("_csrf={}", s.csrf)))
        .await
        .expect(StatusCode::SEE_OTHER);
    h.page(&s, "GET", "/api/session", None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
}

fn field_index(instance: &Value, name: &str) -> usize {
    instance["fields"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn sign_in_refuses_a_forged_form_and_wrong_passwords() {
    let h = Harness::new();
    // No login cookie (a form posted from another site).
    let a = h
        .send(
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "_csrf=abc&username=admin&password={}",
                    enc(PASSWORD)
                )))
                .unwrap(),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(!a
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("passerelle_session=")));
    let page = h
        .send(Request::get("/login").body(Body::empty()).unwrap())
        .await;
    let cookie = cookie_pair(&page.headers, "passerelle_login");
    let token = hidden_value(&page.body, "_csrf");
    let a = h
        .send(
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &cookie)
                .body(Body::from(format!(
                    "_csrf={token}&username=admin&password=wrong"
                )))
                .unwrap(),
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("Wrong user name or password"));
    // Open redirects are refused.
    let a = h
        .send(
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &cookie)
                .body(Body::from(format!(
                    "_csrf={token}&next=%2F%2Fevil.example&username=admin&password={}",
                    enc(PASSWORD)
                )))
                .unwrap(),
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/instances");
}

/// A sign-in form and its cookie, as a browser at `address` would post it.
struct LoginForm {
    cookie: String,
    token: String,
}

impl Harness {
    async fn login_form(&self) -> LoginForm {
        let page = self
            .send(Request::get("/login").body(Body::empty()).unwrap())
            .await;
        LoginForm {
            cookie: cookie_pair(&page.headers, "passerelle_login"),
            token: hidden_value(&page.body, "_csrf"),
        }
    }

    /// One sign-in attempt of `admin` from `address`, with extra cookies (a device cookie).
    async fn attempt(
        &self,
        address: [u8; 4],
        password: &str,
        extra_cookie: Option<&str>,
    ) -> Answer {
        let form = self.login_form().await;
        let cookie = match extra_cookie {
            Some(c) => format!("{}; {c}", form.cookie),
            None => form.cookie,
        };
        let mut req = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(Body::from(format!(
                "_csrf={}&username=admin&password={}",
                form.token,
                enc(password)
            )))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                address, 40000,
            ))));
        self.send(req).await
    }
}

fn small_limits() -> LoginLimits {
    LoginLimits {
        free_per_address: 3,
        free_per_user: 6,
        free_per_device: 3,
        first_delay: Duration::from_secs(30),
        max_address_delay: Duration::from_secs(600),
        max_user_delay: Duration::from_secs(60),
        forget_after: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn failed_sign_ins_slow_down_the_address_with_retry_after() {
    let h = Harness::with_limits(small_limits());
    for _ in 0..3 {
        h.attempt([10, 0, 0, 1], "guess", None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    // That address now waits, and is told how long.
    let a = h
        .attempt([10, 0, 0, 1], "guess", None)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(a.body.contains("Too many failed sign-ins"));
    // Another address is not slowed by it.
    h.attempt([10, 0, 0, 2], PASSWORD, None)
        .await
        .expect(StatusCode::SEE_OTHER);
}

/// Regression (security review): five bad attempts from anywhere locked the administrator
/// out for 15 minutes, even with the right password.
#[tokio::test]
async fn failures_from_elsewhere_never_lock_the_administrator_out() {
    let h = Harness::with_limits(small_limits());
    // The administrator signed in once from their browser: it keeps a device cookie.
    let a = h
        .attempt([192, 168, 1, 10], PASSWORD, None)
        .await
        .expect(StatusCode::SEE_OTHER);
    let device = cookie_pair(&a.headers, "passerelle_device");
    let set = a
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("passerelle_device="))
        .unwrap()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("Path=/login"),
        "{set}"
    );
    // An attacker fails from many addresses, far past every limit.
    let mut refused = 0;
    for i in 0..40u8 {
        let a = h.attempt([203, 0, 113, i % 8], "guess", None).await;
        match a.status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert!(refused > 0, "the attacker was never slowed down");
    // A new browser for the account is slowed too (the account's back-off)...
    h.attempt([198, 51, 100, 7], PASSWORD, None)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    // ... but the administrator's own browser signs in at once, with the right password.
    let a = h
        .attempt([192, 168, 1, 10], PASSWORD, Some(&device))
        .await
        .expect(StatusCode::SEE_OTHER);
    let cookie = cookie_pair(&a.headers, "passerelle_session");
    // And is told what happened since the previous sign-in.
    let page = h
        .send(
            Request::get("/instances")
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect(StatusCode::OK);
    let failed = 40 - refused;
    assert!(
        page.body
            .contains(&format!("{failed} failed sign-in attempts")),
        "{}",
        page.body
    );
    assert!(page.body.contains("203.0.113."), "{}", page.body);
    // A device cookie of another account (or a made-up one) is no pass.
    h.attempt(
        [198, 51, 100, 8],
        PASSWORD,
        Some("passerelle_device=made-up"),
    )
    .await
    .expect(StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_known_browser_is_throttled_on_its_own() {
    let h = Harness::with_limits(small_limits());
    let a = h
        .attempt([192, 168, 1, 10], PASSWORD, None)
        .await
        .expect(StatusCode::SEE_OTHER);
    let device = cookie_pair(&a.headers, "passerelle_device");
    for _ in 0..3 {
        h.attempt([192, 168, 1, 10], "guess", Some(&device))
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    h.attempt([192, 168, 1, 10], PASSWORD, Some(&device))
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
}

/// Regression (security review): `/login?next=/%09/evil.example` sent the browser to
/// `//evil.example`, and a newline in `next` gave a 500 with the session cookie set.
#[tokio::test]
async fn sign_in_redirects_only_to_a_path_of_this_server() {
    let h = Harness::new();
    for (next, expected) in [
        ("/instances/d", "/instances/d"),
        ("/audit?instance=d", "/audit?instance=d"),
        ("/%09/evil.example", "/instances"),
        ("/\t/evil.example", "/instances"),
        ("/\n/evil.example", "/instances"),
        ("/\r\nSet-Cookie:x=y", "/instances"),
        ("//evil.example", "/instances"),
        ("///evil.example", "/instances"),
        ("\\evil.example", "/instances"),
        ("/\\evil.example", "/instances"),
        ("https:evil.example", "/instances"),
        ("https://evil.example/", "/instances"),
        ("javascript:alert(1)", "/instances"),
        ("%2F%2Fevil.example", "/instances"),
        ("/%2F/evil.example", "/instances"),
        ("/%5Cevil.example", "/instances"),
        ("/.//evil.example", "/instances"),
        ("evil.example", "/instances"),
        ("", "/instances"),
    ] {
        let form = h.login_form().await;
        let answer = h
            .send(
                Request::post("/login")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("cookie", &form.cookie)
                    .body(Body::from(format!(
                        "_csrf={}&username=admin&password={}&next={}",
                        form.token,
                        enc(PASSWORD),
                        enc(next)
                    )))
                    .unwrap(),
            )
            .await
            .expect(StatusCode::SEE_OTHER);
        assert_eq!(answer.headers["location"], expected, "next = {next:?}");
        // The sign-in page keeps only a safe `next` in its form too.
        let page = h
            .send(
                Request::get(format!("/login?next={}", enc(next)))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            hidden_value(&page.body, "next"),
            html::attr(expected),
            "next = {next:?}"
        );
    }
}

#[tokio::test]
async fn cookies_are_secure_over_https_only() {
    let cookies = |a: &Answer| -> Vec<String> {
        a.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let sign_in = |forwarded: Option<&'static str>| async move {
        let h = Harness::with_options(WebOptions {
            secure_cookies: false,
            trust_proxy: true,
        });
        let form = h.login_form().await;
        let mut req = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &form.cookie);
        if let Some(proto) = forwarded {
            req = req.header("x-forwarded-proto", proto);
        }
        h.send(
            req.body(Body::from(format!(
                "_csrf={}&username=admin&password={}",
                form.token,
                enc(PASSWORD)
            )))
            .unwrap(),
        )
        .await
        .expect(StatusCode::SEE_OTHER)
    };
    // Behind a trusted TLS proxy: every cookie is Secure.
    let a = sign_in(Some("https")).await;
    let all = cookies(&a);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|c| c.ends_with("; Secure")), "{all:?}");
    // Plain HTTP through the proxy: not Secure (the browser would drop them).
    let a = sign_in(Some("http")).await;
    assert!(cookies(&a).iter().all(|c| !c.contains("Secure")));
    // An untrusted X-Forwarded-Proto is ignored; --secure-cookies sets it always.
    for (options, secure) in [
        (
            WebOptions {
                secure_cookies: false,
                trust_proxy: false,
            },
            false,
        ),
        (
            WebOptions {
                secure_cookies: true,
                trust_proxy: false,
            },
            true,
        ),
    ] {
        let h = Harness::with_options(options);
        let page = h
            .send(
                Request::get("/login")
                    .header("x-forwarded-proto", "https")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let c = cookies(&page);
        assert_eq!(
            c.iter().any(|c| c.contains("; Secure")),
            secure,
            "{options:?}: {c:?}"
        );
    }
}

#[tokio::test]
async fn a_trusted_proxy_gives_the_client_address() {
    let h = Harness::with_options(WebOptions {
        secure_cookies: false,
        trust_proxy: true,
    });
    let state = h.state.clone();
    for _ in 0..2 {
        let form = h.login_form().await;
        let mut req = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &form.cookie)
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .body(Body::from(format!(
                "_csrf={}&username=admin&password=guess",
                form.token
            )))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 1],
                1,
            ))));
        h.send(req).await.expect(StatusCode::UNAUTHORIZED);
    }
    h.attempt([127, 0, 0, 1], PASSWORD, None)
        .await
        .expect(StatusCode::SEE_OTHER);
    let failures = state.auth.failures_before_last_sign_in("admin").unwrap();
    assert_eq!(failures.count, 2);
    assert_eq!(failures.addresses, ["203.0.113.9"]);
}

/// Regression (security review): no Origin check on state-changing requests.
#[tokio::test]
async fn a_session_change_from_another_origin_is_refused() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    let put = |origin: Option<&str>, referer: Option<&str>| {
        let mut req = Request::put("/api/instances/d/fields/timeout_secs")
            .header("cookie", &s.cookie)
            .header("host", HOST)
            .header("x-csrf-token", &s.csrf)
            .header("content-type", "application/json");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(r) = referer {
            req = req.header("referer", r);
        }
        req.body(Body::from(r#"{"value": 20}"#)).unwrap()
    };
    for (origin, referer) in [
        (Some("http://evil.example"), None),
        (Some("http://console.test:8081"), None),
        (Some("null"), None),
        (None, Some("http://evil.example/page")),
        (None, None),
    ] {
        let a = h
            .send(put(origin, referer))
            .await
            .expect(StatusCode::FORBIDDEN);
        assert_eq!(a.code(), "origin_mismatch", "{origin:?} {referer:?}");
        assert!(a.json()["message"].as_str().unwrap().contains("API token"));
    }
    h.send(put(Some(ORIGIN), None)).await.expect(StatusCode::OK);
    h.send(put(None, Some("http://console.test:8080/instances/d")))
        .await
        .expect(StatusCode::OK);
    // Behind a trusted proxy that rewrites Host, the browser's host is X-Forwarded-Host.
    let behind = Harness::with_options(WebOptions {
        secure_cookies: false,
        trust_proxy: true,
    });
    behind.create_demo("d").await;
    let s2 = behind.login().await;
    let proxied = |forwarded_host: &str| {
        Request::put("/api/instances/d/fields/timeout_secs")
            .header("cookie", &s2.cookie)
            .header("host", "127.0.0.1:8080")
            .header("x-forwarded-host", forwarded_host)
            .header("origin", "https://console.example.com")
            .header("x-csrf-token", &s2.csrf)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"value": 21}"#))
            .unwrap()
    };
    behind
        .send(proxied("console.example.com"))
        .await
        .expect(StatusCode::OK);
    behind
        .send(proxied("other.example.com"))
        .await
        .expect(StatusCode::FORBIDDEN);
    // Without trust in the proxy, X-Forwarded-Host is ignored.
    let a = h
        .send(
            Request::put("/api/instances/d/fields/timeout_secs")
                .header("cookie", &s.cookie)
                .header("host", HOST)
                .header("x-forwarded-host", "evil.example")
                .header("origin", "http://evil.example")
                .header("x-csrf-token", &s.csrf)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"value": 21}"#))
                .unwrap(),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(a.code(), "origin_mismatch");
    // A console form from another site gets a page, not JSON.
    let a = h
        .send(
            Request::post("/instances/d/disable")
                .header("cookie", &s.cookie)
                .header("host", HOST)
                .header("origin", "http://evil.example")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!("_csrf={}", s.csrf)))
                .unwrap(),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(a.body.contains("Refused"), "{}", a.body);
    // API tokens are not ambient credentials: no Origin needed.
    h.api(
        "PUT",
        "/api/instances/d/fields/timeout_secs",
        Some(&h.admin_token.clone()),
        Some(json!({"value": 25})),
    )
    .await
    .expect(StatusCode::OK);
    // A sign-in posted from another site is refused too.
    let form = h.login_form().await;
    h.send(
        Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &form.cookie)
            .header("host", HOST)
            .header("origin", "http://evil.example")
            .body(Body::from(format!(
                "_csrf={}&username=admin&password={}",
                form.token,
                enc(PASSWORD)
            )))
            .unwrap(),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
}

/// Regression (security review): the capability endpoint ignored `Content-Type`.
#[tokio::test]
async fn api_bodies_must_be_json_and_errors_are_json() {
    let h = Harness::new();
    h.create_demo("d").await;
    let send = |path: &str, method: &str, content_type: Option<&str>, body: &str| {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", h.admin_token));
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        req.body(Body::from(body.to_owned())).unwrap()
    };
    for (path, method) in [
        ("/api/capabilities/company.lookup", "POST"),
        ("/api/instances/d/fields/timeout_secs", "PUT"),
        ("/api/instances/d/test", "POST"),
        ("/api/instances", "POST"),
    ] {
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let a = h
                .send(send(path, method, content_type, r#"{"id": "552100554"}"#))
                .await
                .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(a.code(), "unsupported_media_type");
            assert!(
                a.json()["message"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{}",
                a.body
            );
        }
    }
    // JSON with a charset, and `+json` types, are JSON.
    h.send(send(
        "/api/instances/d/fields/timeout_secs",
        "PUT",
        Some("application/json; charset=utf-8"),
        r#"{"value": 12}"#,
    ))
    .await
    .expect(StatusCode::OK);
    // The framework's own refusals are JSON too.
    let a = h
        .send(send("/api/instances/d", "PATCH", None, ""))
        .await
        .expect(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.code(), "method_not_allowed");
    assert!(a.headers.contains_key("allow"));
    let big = format!(r#"{{"value": "{}"}}"#, "x".repeat(3 * 1024 * 1024));
    let a = h
        .send(send(
            "/api/instances/d/fields/label",
            "PUT",
            Some("application/json"),
            &big,
        ))
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.code(), "payload_too_large");
}

#[tokio::test]
async fn tokens_are_scoped_hashed_and_revocable() {
    let h = Harness::new();
    h.create_demo("d").await;
    h.set("d", "api_key", json!("good-key-123"))
        .await
        .expect(StatusCode::OK);
    h.admin("POST", "/api/instances/d/enable", None)
        .await
        .expect(StatusCode::OK);
    let created = h
        .admin(
            "POST",
            "/api/tokens",
            Some(json!({"name": "erp", "scope": "capabilities"})),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    let erp = created["token"].as_str().unwrap().to_owned();
    // A capabilities token calls capabilities, nothing else.
    let out = h
        .api(
            "POST",
            "/api/capabilities/company.lookup",
            Some(&erp),
            Some(json!({"id": "123456789"})),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(out["legal_name"], "Demo 10");
    assert_eq!(
        h.api("GET", "/api/instances", Some(&erp), None)
            .await
            .expect(StatusCode::FORBIDDEN)
            .code(),
        "forbidden"
    );
    h.api("GET", "/api/capabilities", Some(&erp), None)
        .await
        .expect(StatusCode::OK);
    // Tokens are listed without their values and stored only hashed.
    let list = h.admin("GET", "/api/tokens", None).await.json();
    assert!(!list.to_string().contains(&erp));
    let db_text = data_dump(&h.state.engine.settings.data_dir);
    assert!(
        db_text.contains("erp"),
        "the dump misses the console database"
    );
    assert!(!db_text.contains(&erp) && !db_text.contains(&h.admin_token));
    assert!(!db_text.contains(PASSWORD));
    // Revocation takes effect at once, even though lookups are cached.
    h.admin("DELETE", "/api/tokens/erp", None)
        .await
        .expect(StatusCode::OK);
    h.api("GET", "/api/capabilities", Some(&erp), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // ... also when another process revokes (the CLI writes the database directly).
    let (_, other) = h
        .state
        .auth
        .create_token("other", Scope::Admin, "tests")
        .unwrap();
    h.api("GET", "/api/instances", Some(&other), None)
        .await
        .expect(StatusCode::OK);
    let db = Arc::new(db::ConsoleDb::open_in(&h.state.engine.settings.data_dir).unwrap());
    auth::Auth::new(db, LoginLimits::default())
        .unwrap()
        .revoke_token("other")
        .unwrap();
    h.api("GET", "/api/instances", Some(&other), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let audit = h.admin("GET", "/api/audit", None).await.json().to_string();
    assert!(
        audit.contains("token.create") && audit.contains("token.revoke"),
        "{audit}"
    );
}

// ----- instances -----

#[tokio::test]
async fn a_field_is_validated_on_its_own_with_its_pointer() {
    let h = Harness::new();
    h.create_demo("d").await;
    let a = h
        .set("d", "timeout_secs", json!(500))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["code"], "invalid_value");
    assert_eq!(a["field"], "timeout_secs");
    assert_eq!(a["pointer"], "/timeout_secs");
    assert!(a["message"].as_str().unwrap().contains("120"), "{a}");
    let a = h
        .set("d", "nope", json!(1))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["field"], "nope");
    assert!(
        a["message"].as_str().unwrap().contains("timeout_secs"),
        "{a}"
    );
    // Nothing was written by the refusals.
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["revision"], 1);
    // Stale writes are refused.
    let ok = h
        .set("d", "timeout_secs", json!(20))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ok["revision"], 2);
    let a = h
        .admin(
            "PUT",
            "/api/instances/d/fields/timeout_secs",
            Some(json!({"value": 30, "revision": 1})),
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(a.code(), "stale_revision");
    let a = h
        .admin(
            "PUT",
            "/api/instances/d/fields/timeout_secs",
            Some(json!({"valeur": 30})),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "invalid_request");
    // Clearing goes back to the default.
    let v = h
        .admin("DELETE", "/api/instances/d/fields/timeout_secs", None)
        .await
        .expect(StatusCode::OK)
        .json();
    let f = &v["fields"][field_index(&v, "timeout_secs")];
    assert_eq!(f["state"], "default");
    assert_eq!(f["value"], 10);
    h.admin("GET", "/api/instances/nope", None)
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(
        h.admin("GET", "/api/instances/Bad..Id", None).await.code(),
        "invalid_id"
    );
}

#[tokio::test]
async fn secrets_are_write_only_everywhere() {
    let h = Harness::new();
    h.create_demo("d").await;
    let secret = "s3cret-VALUE-xyz";
    let v = h
        .set("d", "api_key", json!(secret))
        .await
        .expect(StatusCode::OK)
        .json();
    let f = &v["fields"][field_index(&v, "api_key")];
    assert_eq!(f["state"], "set");
    assert!(f.get("value").is_none());
    let s = h.login().await;
    let mut seen = String::new();
    for path in ["/api/instances/d", "/api/instances", "/api/audit"] {
        seen.push_str(&h.admin("GET", path, None).await.body);
    }
    for path in ["/instances/d", "/audit", "/instances"] {
        seen.push_str(&h.page(&s, "GET", path, None).await.body);
    }
    assert!(!seen.contains(secret));
    assert!(!data_dump(&h.state.engine.settings.data_dir).contains(secret));
    // Not even masked characters of it.
    assert!(!seen.contains("****") && !seen.contains("••"));
    let page = h.page(&s, "GET", "/instances/d", None).await.body;
    let block = field_block(&page, "api_key");
    assert!(block.contains("type=\"password\""), "{block}");
    assert!(block.contains("value=\"\""), "{block}");
    assert!(block.contains(">set</span>"), "{block}");
    let audit = h.admin("GET", "/api/instances/d/audit", None).await.json();
    assert_eq!(audit[0]["field"], "api_key");
    assert_eq!(audit[0]["new"], "changed");
    assert!(audit[0].get("old").is_none());
    // A refused secret is not echoed back either.
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&format!("_csrf={}&value=abc", s.csrf)),
        )
        .await;
    assert!(!a.body.contains(secret));
}

#[tokio::test]
async fn enabling_checks_the_whole_configuration() {
    let h = Harness::new();
    h.create_demo("d").await;
    let a = h
        .admin("POST", "/api/instances/d/enable", None)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["code"], "invalid_configuration");
    assert_eq!(a["errors"][0]["field"], "api_key");
    assert_eq!(a["errors"][0]["pointer"], "/api_key");
    h.set("d", "mode", json!("oauth"))
        .await
        .expect(StatusCode::OK);
    let a = h
        .admin(
            "POST",
            "/api/instances/d/enable",
            Some(json!({"revision": 2})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    let fields: Vec<&str> = a["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["client_id", "client_secret"]);
    h.set("d", "client_id", json!("id"))
        .await
        .expect(StatusCode::OK);
    h.set("d", "client_secret", json!("sec"))
        .await
        .expect(StatusCode::OK);
    let v = h
        .admin("POST", "/api/instances/d/enable", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["enabled"], true);
    // An enabled instance refuses a change that would break it.
    let a = h
        .admin("DELETE", "/api/instances/d/fields/client_id", None)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.code(), "invalid_configuration");
    h.admin("POST", "/api/instances/d/disable", None)
        .await
        .expect(StatusCode::OK);
    h.admin("DELETE", "/api/instances/d", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    h.admin("GET", "/api/instances/d", None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn test_runs_with_saved_or_unsaved_values() {
    let h = Harness::new();
    h.create_demo("d").await;
    let a = h
        .admin("GET", "/api/instances/d/test", None)
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "not_tested");
    // Unsaved values are used, not saved, and not recorded as the last test.
    let r = h
        .admin(
            "POST",
            "/api/instances/d/test",
            Some(json!({"values": {"timeout_secs": 42, "api_key": "good-key-123"}})),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["steps"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("timeout 42 s"));
    assert!(r["steps"][1]["duration_ms"].is_u64());
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["revision"], 1);
    assert_eq!(
        h.admin("GET", "/api/instances/d/test", None).await.code(),
        "not_tested"
    );
    // An invalid unsaved value is refused like a save.
    let a = h
        .admin(
            "POST",
            "/api/instances/d/test",
            Some(json!({"values": {"timeout_secs": 0}})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["pointer"], "/timeout_secs");
    // Saved values: the result is recorded and listed.
    let r = h
        .admin("POST", "/api/instances/d/test", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(r["status"], "failed");
    assert_eq!(r["steps"][0]["name"], "check configuration", "{r}");
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("api_key"),
        "{r}"
    );
    let last = h.admin("GET", "/api/instances/d/test", None).await.json();
    assert_eq!(last["report"]["status"], "failed");
    let list = h.admin("GET", "/api/instances", None).await.json();
    assert_eq!(list[0]["last_test"]["status"], "failed");
}

#[tokio::test]
async fn the_audit_history_has_who_when_old_and_new() {
    let h = Harness::new();
    h.create_demo("d").await;
    h.set("d", "timeout_secs", json!(20))
        .await
        .expect(StatusCode::OK);
    h.set("d", "timeout_secs", json!(30))
        .await
        .expect(StatusCode::OK);
    // Saving the same value again changes nothing and records nothing.
    h.set("d", "timeout_secs", json!(30))
        .await
        .expect(StatusCode::OK);
    h.set("d", "codes", json!(["A", "B"]))
        .await
        .expect(StatusCode::OK);
    let s = h.login().await;
    h.page(
        &s,
        "POST",
        "/instances/d/fields/label",
        Some(&format!("_csrf={}&value=hello", s.csrf)),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let audit = h
        .admin("GET", "/api/instances/d/audit", None)
        .await
        .expect(StatusCode::OK)
        .json();
    let rows: Vec<(String, String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["field"].as_str().unwrap_or("").to_owned(),
                e["old"].as_str().unwrap_or("").to_owned(),
                e["new"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let row = |a: &str, f: &str, o: &str, n: &str| {
        (a.to_owned(), f.to_owned(), o.to_owned(), n.to_owned())
    };
    assert_eq!(
        rows,
        vec![
            row("admin", "label", "(unset)", "hello"),
            row("token:tests", "codes", "(default) []", "[\"A\",\"B\"]"),
            row("token:tests", "timeout_secs", "20", "30"),
            row("token:tests", "timeout_secs", "(default) 10", "20"),
            row("token:tests", "", "", "plugin demo"),
        ]
    );
    assert!(audit[0]["at_ms"].as_i64().unwrap() > 1_600_000_000_000);
    let page = h.page(&s, "GET", "/audit?instance=d", None).await.body;
    assert!(page.contains("(default) 10") && page.contains("token:tests"));
}

#[tokio::test]
async fn capabilities_errors_have_stable_codes() {
    let h = Harness::new();
    let a = h
        .admin(
            "POST",
            "/api/capabilities/company.lookup",
            Some(json!({"id": "1"})),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "no_provider");
    h.create_demo("d").await;
    let a = h
        .admin(
            "POST",
            "/api/capabilities/company.lookup?instance=d",
            Some(json!({"id": "1"})),
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(a.code(), "instance_disabled");
    let a = h
        .admin(
            "POST",
            "/api/capabilities/ocr.expense_receipt?instance=d",
            Some(json!({})),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "unsupported_operation");
    let a = h
        .api(
            "POST",
            "/api/capabilities/company.lookup",
            Some(&h.admin_token.clone()),
            None,
        )
        .await;
    assert_eq!(a.code(), "no_provider");
    // The demo plugin declares no task; no CA was added.
    let a = h
        .admin("GET", "/api/tasks", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a.json(), json!([]));
    let a = h
        .admin("GET", "/api/trust", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a.json(), json!([]));
    let a = h
        .admin("POST", "/api/instances/d/tasks/nope/run", None)
        .await;
    assert!(a.status.is_client_error(), "{}", a.body);
    assert!(
        a.json()["message"].as_str().unwrap().contains("nope"),
        "{}",
        a.body
    );
    let a = h
        .admin("GET", "/api/nope", None)
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "not_found");
}

// ----- OpenAPI -----

#[test]
fn openapi_matches_the_committed_copy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = openapi::json();
    if std::env::var_os("PASSERELLE_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "host/openapi.json is out of date with the API; regenerate it with \
         `PASSERELLE_UPDATE_OPENAPI=1 cargo test -p passerelle openapi` and review the diff"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_json() {
    let h = Harness::new();
    h.create_demo("d").await;
    let doc: Value = serde_json::from_str(&openapi::json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{}", paths.len());
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "d")
                .replace("{field}", "timeout_secs")
                .replace("{plugin}", "demo")
                .replace("{operation}", "company.lookup")
                .replace("{token}", "no-such-token")
                .replace("{task}", "no-such-task");
            // Unauthenticated: every documented route is protected.
            let a = h.api(&method.to_uppercase(), &concrete, None, None).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            // Authenticated: routed (never the fallback's "no such endpoint").
            let a = h.admin(&method.to_uppercase(), &concrete, None).await;
            assert_ne!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(
                !a.body.contains("no such endpoint"),
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
    // Every error answer documented is an ErrorBody.
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
}

// ----- console -----

#[tokio::test]
async fn the_form_is_generated_from_the_schema() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    let page = h
        .page(&s, "GET", "/instances/d", None)
        .await
        .expect(StatusCode::OK)
        .body;
    // Groups, in the order of their first field; fields in x-order.
    let auth = page.find("<legend>Authentication</legend>").unwrap();
    let conn = page.find("<legend>Connection</legend>").unwrap();
    assert!(page.find("<legend>Settings</legend>").unwrap() > conn);
    assert!(auth < conn);
    assert!(page.find("id=\"field-mode\"").unwrap() < page.find("id=\"field-api_key\"").unwrap());
    // Every input has a label tied to it, and a description.
    for f in [
        "mode",
        "api_key",
        "client_id",
        "client_secret",
        "timeout_secs",
        "verbose",
        "codes",
        "label",
    ] {
        let block = field_block(&page, f);
        assert!(block.contains(&format!("<label for=\"in-{f}\">")), "{f}");
        assert!(block.contains(&format!("id=\"in-{f}\"")), "{f}");
        assert!(
            block.contains(&format!("aria-describedby=\"desc-{f}")),
            "{f}"
        );
        assert!(
            block.contains(">Save<span class=\"visually-hidden\">"),
            "{f}"
        );
        assert!(block.contains("name=\"_csrf\""), "{f}");
    }
    // Labelled choices with the default selected.
    let mode = field_block(&page, "mode");
    assert!(mode.contains("<select id=\"in-mode\""));
    assert!(
        mode.contains(
            "<option value=\"key\" data-value=\"&quot;key&quot;\" selected>API key</option>"
        ),
        "{mode}"
    );
    assert!(mode.contains(">OAuth client credentials</option>"));
    // Numbers with bounds, booleans, lists.
    let t = field_block(&page, "timeout_secs");
    assert!(
        t.contains("type=\"number\"")
            && t.contains("min=\"1\"")
            && t.contains("max=\"120\"")
            && t.contains("value=\"10\""),
        "{t}"
    );
    assert!(t.contains("Reset to default"));
    assert!(field_block(&page, "verbose").contains("type=\"checkbox\""));
    assert!(field_block(&page, "codes").contains("<textarea"));
    assert!(field_block(&page, "codes").contains("One per line"));
    // Conditional fields: shown and required only when their tag matches.
    let key = field_block(&page, "api_key");
    assert!(
        !key[..key.find('>').unwrap()].contains("hidden") && key.contains("data-show-tag=\"mode\"")
    );
    assert!(
        key.contains("<span class=\"required\">required</span>"),
        "{key}"
    );
    let client = field_block(&page, "client_id");
    assert!(
        client.starts_with("<div") && client[..client.find('>').unwrap()].ends_with(" hidden"),
        "{client}"
    );
    assert!(client.contains("data-show-values=\"[&quot;oauth&quot;]\""));
    assert!(
        client.contains("Used when <em>Authentication</em> is <em>OAuth client credentials</em>")
    );
    h.set("d", "mode", json!("oauth"))
        .await
        .expect(StatusCode::OK);
    let page = h.page(&s, "GET", "/instances/d", None).await.body;
    let client = field_block(&page, "client_id");
    assert!(
        !client[..client.find('>').unwrap()].contains("hidden"),
        "{client}"
    );
    let key = field_block(&page, "api_key");
    assert!(key[..key.find('>').unwrap()].ends_with(" hidden"));
}

#[tokio::test]
async fn a_refused_value_is_shown_next_to_its_field_with_the_typed_text() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    // Without the script: the page again, status 422, error next to the field, value kept.
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&format!("_csrf={}&revision=1&op=save&value=500", s.csrf)),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let block = field_block(&a.body, "timeout_secs");
    assert!(block.contains("value=\"500\""), "{block}");
    assert!(block.contains("aria-invalid=\"true\""));
    assert!(block.contains("id=\"err-timeout_secs\" aria-live=\"assertive\">500 is greater than the maximum of 120</p>"), "{block}");
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&format!("_csrf={}&value=twelve", s.csrf)),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_block(&a.body, "timeout_secs")
        .contains("expected a whole number, got &quot;twelve&quot;"));
    // With the script: JSON.
    let req = Request::post("/instances/d/fields/timeout_secs")
        .header("cookie", &s.cookie)
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("x-requested-with", "passerelle-console")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("_csrf={}&value=500", s.csrf)))
        .unwrap();
    let a = h
        .send(req)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["pointer"], "/timeout_secs");
    let req = Request::post("/instances/d/fields/codes")
        .header("cookie", &s.cookie)
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("x-requested-with", "passerelle-console")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "_csrf={}&value=A%0D%0A%0D%0AB+",
            s.csrf
        )))
        .unwrap();
    let a = h.send(req).await.expect(StatusCode::OK).json();
    assert_eq!(a["value"], json!(["A", "B"]));
    assert_eq!(a["state"], "saved");
    assert_eq!(a["revision"], 2);
    // Booleans from a checkbox (hidden "false" then "true" when ticked).
    h.page(
        &s,
        "POST",
        "/instances/d/fields/verbose",
        Some(&format!("_csrf={}&value=false&value=true", s.csrf)),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["fields"][field_index(&v, "verbose")]["value"], true);
    // Whole-configuration problems when enabling: listed at the top and next to fields.
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/enable",
            Some(&format!("_csrf={}", s.csrf)),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("<div class=\"problems\" role=\"alert\">"));
    assert!(a.body.contains("<a href=\"#in-api_key\">API key</a>"));
    assert!(field_block(&a.body, "api_key").contains("this field is required"));
}

#[tokio::test]
async fn the_console_test_button_shows_the_steps() {
    let h = Harness::new();
    h.create_demo("d").await;
    h.set("d", "api_key", json!("good-key-123"))
        .await
        .expect(StatusCode::OK);
    let s = h.login().await;
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/test",
            Some(&format!("_csrf={}", s.csrf)),
        )
        .await
        .expect(StatusCode::OK);
    assert!(a.body.contains("<th scope=\"row\">read settings</th>"));
    assert!(a.body.contains("<th scope=\"row\">check key</th>"));
    assert!(a.body.contains(" ms</td>"));
    // The script's request: a fragment, with unsaved values.
    let req = Request::post("/instances/d/test")
        .header("cookie", &s.cookie)
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("x-requested-with", "passerelle-console")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "_csrf={}&v.timeout_secs=77&v.api_key=",
            s.csrf
        )))
        .unwrap();
    let a = h.send(req).await.expect(StatusCode::OK);
    assert!(!a.body.contains("<html"));
    assert!(a.body.contains("timeout 77 s"), "{}", a.body);
    assert!(a.body.contains("with unsaved values"));
    assert!(a.body.contains("badge-ok"));
}

#[tokio::test]
async fn pages_escape_what_they_show() {
    let h = Harness::new();
    h.create_demo("d").await;
    h.set(
        "d",
        "label",
        json!("<script>alert(1)</script>\" onmouseover=\"x"),
    )
    .await
    .expect(StatusCode::OK);
    let s = h.login().await;
    let page = h.page(&s, "GET", "/instances/d", None).await;
    assert!(!page.body.contains("<script>alert"));
    assert!(page
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot; onmouseover=&quot;x"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn instances_are_created_listed_and_deleted_from_the_console() {
    let h = Harness::new();
    let s = h.login().await;
    let a = h
        .page(
            &s,
            "POST",
            "/instances",
            Some(&format!("_csrf={}&id=Bad+Id&plugin=demo", s.csrf)),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(a.body.contains("value=\"Bad Id\""));
    assert!(a.body.contains("is not valid"));
    let a = h
        .page(
            &s,
            "POST",
            "/instances",
            Some(&format!("_csrf={}&id=demo-1&plugin=demo", s.csrf)),
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/instances/demo-1");
    let list = h.page(&s, "GET", "/instances", None).await.body;
    assert!(list.contains("<a href=\"/instances/demo-1\">demo-1</a>"));
    assert!(list.contains("Not tested"));
    let plugins = h.page(&s, "GET", "/plugins", None).await.body;
    assert!(plugins.contains("Demo service") && plugins.contains("company.lookup"));
    h.page(
        &s,
        "POST",
        "/instances/demo-1/delete",
        Some(&format!("_csrf={}", s.csrf)),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    h.page(&s, "GET", "/instances/demo-1", None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_new_version_of_a_plugin_is_served_at_once() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    // Everything derived from the plugin is cached...
    let schema = h
        .admin("GET", "/api/plugins/demo/schema", None)
        .await
        .json();
    assert_eq!(
        schema["properties"]["timeout_secs"]["title"],
        "Timeout (seconds)"
    );
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(
        v["fields"][field_index(&v, "timeout_secs")]["title"],
        "Timeout (seconds)"
    );
    assert!(h
        .page(&s, "GET", "/instances/d", None)
        .await
        .body
        .contains("Timeout (seconds)"));
    // ... until hot add loads a new version of it.
    let newer = demo_plugin(|schema| {
        schema["properties"]["timeout_secs"]["title"] = json!("Délai (secondes)");
    });
    h.state.engine.registry.update(|r| r.plugins = vec![newer]);
    let schema = h
        .admin("GET", "/api/plugins/demo/schema", None)
        .await
        .json();
    assert_eq!(
        schema["properties"]["timeout_secs"]["title"],
        "Délai (secondes)"
    );
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(
        v["fields"][field_index(&v, "timeout_secs")]["title"],
        "Délai (secondes)"
    );
    assert!(h
        .page(&s, "GET", "/instances/d", None)
        .await
        .body
        .contains("Délai (secondes)"));
    // A change made by another process (the CLI) shows at once too.
    h.state
        .engine
        .instances()
        .set(
            &crate::ids::InstanceId::new("d").unwrap(),
            "timeout_secs",
            json!(33),
            None,
        )
        .unwrap();
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["fields"][field_index(&v, "timeout_secs")]["value"], 33);
    assert_eq!(v["revision"], 2);
}

// ----- console languages -----

impl Harness {
    /// A console GET with extra headers (language negotiation).
    async fn page_with(&self, s: &Session, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = Request::get(path)
            .header("cookie", &s.cookie)
            .header("host", HOST);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }
}

#[tokio::test]
async fn the_console_speaks_the_browsers_language_and_remembers_a_chosen_one() {
    let h = Harness::new();
    h.create_demo("d").await;
    // The sign-in page follows Accept-Language.
    let login = h
        .send(
            Request::get("/login")
                .header("accept-language", "fr-FR,fr;q=0.9,en;q=0.5")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect(StatusCode::OK);
    assert!(login.body.contains("<html lang=\"fr\">"), "{}", login.body);
    assert!(login
        .body
        .contains("<label for=\"username\">Nom d&#39;utilisateur</label>"));
    assert!(login.body.contains(">Se connecter</button>"));
    let s = h.login().await;
    let fr = h
        .page_with(&s, "/instances/d", &[("accept-language", "fr")])
        .await
        .expect(StatusCode::OK)
        .body;
    assert!(fr.contains("<html lang=\"fr\">"));
    for text in [
        ">Enregistrer<span class=\"visually-hidden\">",
        ">Revenir à la valeur par défaut<",
        "<a href=\"/audit\">Historique</a>",
        ">Désactivée</span>",
        ">Tester</button>",
        "data-t-saved=\"Enregistré.\"",
        "<a href=\"/instances/d?lang=en\" lang=\"en\" hreflang=\"en\">English</a>",
    ] {
        assert!(fr.contains(text), "{text} missing from the French page");
    }
    // Schema titles stay as the schema gives them.
    assert!(fr.contains("<legend>Authentication</legend>"));
    // English when the browser prefers a language the console does not speak.
    let en = h
        .page_with(&s, "/instances/d", &[("accept-language", "de, en;q=0.1")])
        .await
        .expect(StatusCode::OK);
    assert!(en.body.contains("<html lang=\"en\">") && en.body.contains(">Save<span"));
    // `?lang=` wins over the browser and is remembered in a cookie...
    let chosen = h
        .page_with(
            &s,
            "/audit?instance=d&lang=en",
            &[("accept-language", "fr")],
        )
        .await
        .expect(StatusCode::OK);
    assert!(chosen.body.contains("<h1>Audit history</h1>"));
    assert!(chosen
        .body
        .contains("href=\"/audit?instance=d&amp;lang=fr\" lang=\"fr\""));
    let set = chosen.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("passerelle_lang=en;")
            && set.contains("Max-Age=")
            && set.contains("Path=/"),
        "{set}"
    );
    // ...which then wins over the browser.
    let remembered = Session {
        cookie: format!("{}; passerelle_lang=fr", s.cookie),
        csrf: s.csrf.clone(),
    };
    let page = h
        .page_with(&remembered, "/plugins", &[("accept-language", "en")])
        .await
        .expect(StatusCode::OK);
    assert!(
        page.body.contains("<h1>Plugins</h1>")
            && page.body.contains("<caption>Plugins chargés</caption>")
    );
    assert!(page.headers.get("set-cookie").is_none());
    // Pages outside the console's routes follow the cookie too.
    let missing = h
        .page_with(&remembered, "/nowhere", &[])
        .await
        .expect(StatusCode::NOT_FOUND);
    assert!(missing.body.contains("<h1>Page introuvable</h1>"));
}

#[tokio::test]
async fn refusals_dates_and_numbers_are_french_on_a_french_page() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    let s = Session {
        cookie: format!("{}; passerelle_lang=fr", s.cookie),
        csrf: s.csrf,
    };
    let form = |v: &str| format!("_csrf={}&value={v}&op=save", enc(&s.csrf));
    // Without the script: the page again, the message next to the field.
    let page = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&form("500")),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .body;
    let block = field_block(&page, "timeout_secs");
    assert!(
        block.contains("500 est supérieur au maximum de 120"),
        "{block}"
    );
    let page = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&form("abc")),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .body;
    assert!(
        field_block(&page, "timeout_secs")
            .contains("un nombre entier est attendu, reçu &quot;abc&quot;"),
        "{page}"
    );
    // With the script: JSON whose message is French.
    let answer = h
        .send(
            Request::post("/instances/d/fields/timeout_secs")
                .header("cookie", &s.cookie)
                .header("host", HOST)
                .header("origin", ORIGIN)
                .header("x-requested-with", "passerelle-console")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form("0")))
                .unwrap(),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.json()["message"], "0 est inférieur au minimum de 1");
    assert_eq!(answer.json()["code"], "invalid_value");
    // Enabling an incomplete configuration: every problem in French.
    let page = h
        .page(
            &s,
            "POST",
            "/instances/d/enable",
            Some(&format!("_csrf={}", enc(&s.csrf))),
        )
        .await
        .body;
    assert!(page.contains("<h2>À corriger d&#39;abord</h2>"), "{page}");
    assert!(page.contains("ce champ est obligatoire"), "{page}");
    // A saved value and the history, with a French date.
    h.page(
        &s,
        "POST",
        "/instances/d/fields/timeout_secs",
        Some(&form("12")),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let audit = h
        .page(&s, "GET", "/audit", None)
        .await
        .expect(StatusCode::OK)
        .body;
    let now = crate::services::state::now_ms();
    let today = super::l10n::date_time(now, super::i18n::Lang::Fr);
    let day_month_year = today.split(',').next().unwrap();
    assert!(
        [
            "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
            "nov.", "déc."
        ]
        .iter()
        .any(|m| day_month_year.contains(m)),
        "{today}"
    );
    assert!(
        audit.contains(day_month_year),
        "{day_month_year} not in {audit}"
    );
    assert!(audit.contains("<time datetime=\""), "{audit}");
    assert!(audit.contains("<th scope=\"col\">Auteur</th>"));
}

// ----- units -----

#[test]
fn form_values_are_parsed_by_field_type() {
    let dir = tempfile::tempdir().unwrap();
    let engine = demo_engine(dir.path());
    let plugin = engine.registry.get("demo").unwrap();
    let model = form::FormModel::new(&plugin.schema);
    let f = |n: &str| model.field(n).unwrap();
    assert_eq!(
        form::parse_input(f("timeout_secs"), " 12 ").unwrap(),
        json!(12)
    );
    assert!(form::parse_input(f("timeout_secs"), "1.5").is_err());
    assert_eq!(
        form::parse_input(f("verbose"), "true").unwrap(),
        json!(true)
    );
    assert_eq!(
        form::parse_input(f("mode"), "oauth").unwrap(),
        json!("oauth")
    );
    assert!(form::parse_input(f("mode"), "other")
        .unwrap_err()
        .contains("API key, OAuth client credentials"));
    assert_eq!(
        form::parse_input(f("codes"), "a\n\n b \n").unwrap(),
        json!(["a", "b"])
    );
    assert_eq!(
        form::parse_input(f("api_key"), "x y").unwrap(),
        json!("x y")
    );
    assert_eq!(
        model
            .field("client_secret")
            .unwrap()
            .required_when
            .as_ref()
            .unwrap()
            .values,
        vec![json!("oauth")]
    );
    assert!(model.field("label").unwrap().group.is_none());
    assert_eq!(form::humanize("client_secret"), "Client secret");
    assert_eq!(
        auth::parse_form("a=1+2&b=%2Fx%3D&c"),
        vec![
            ("a".to_owned(), "1 2".to_owned()),
            ("b".to_owned(), "/x=".to_owned()),
            ("c".to_owned(), String::new()),
        ]
    );
}

#[tokio::test]
async fn health_probes_answer_without_credentials_and_readiness_follows_plugins() {
    let h = Harness::new();
    let a = h
        .api("GET", "/healthz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a.json()["status"], "ok");
    let a = h
        .api("GET", "/readyz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a.json()["status"], "ready", "{}", a.body);
    assert_eq!(a.json()["checks"]["storage"], "ok");
    assert_eq!(a.json()["checks"]["plugins"]["loaded"], 1);
    assert_eq!(a.json()["backend"], "embedded");

    // An enabled instance whose plugin is gone is a warning, not unreadiness.
    let id = crate::ids::InstanceId::new("orphan").unwrap();
    h.state.engine.store.create(&id, "gone").unwrap();
    h.state
        .engine
        .store
        .update::<crate::store::StoreError>(&id, None, |r| {
            r.enabled = true;
            Ok(())
        })
        .unwrap();
    let a = h
        .api("GET", "/readyz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        a.json()["warnings"]["instances_without_plugin"],
        json!(["orphan"])
    );

    // No plugin loaded: the node must leave the pool.
    h.state.engine.registry.update(|r| r.plugins.clear());
    let a = h
        .api("GET", "/readyz", None, None)
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["status"], "unavailable");
}
#[path = "tests_events.rs"]
mod events;
