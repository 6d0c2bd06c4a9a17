//! API and console tests: the whole router driven with `oneshot`, no socket, against a demo
//! plugin built in-process (its real root module, no dlopen) whose schema has every kind of
//! field the form generator handles.
//!
//! This file holds the demo plugin and the harness; the tests are split like the server, one
//! file per resource or page (`instances`, `tokens`, `capabilities`, `api`, `sign_in`,
//! `console`, `console_i18n`, `health`, `events`).

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

fn field_index(instance: &Value, name: &str) -> usize {
    instance["fields"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["name"] == name)
        .unwrap()
}

mod api;
mod capabilities;
mod console;
mod console_i18n;
mod events;
mod health;
mod instances;
mod sign_in;
mod tokens;
