//! Test support for plugin authors (feature `testing`): run a plugin in-process, through its
//! real root module (the same JSON boundary the host uses, without dlopen), against a
//! [`ScriptedHost`] whose HTTP answers the test scripts.
//!
//! ```ignore
//! let host = ScriptedHost::new();
//! host.on(Method::Get, "https://api.example/informations", 200, r#"{"etatService":"UP"}"#);
//! let report = testing::test::<MyPlugin>(json!({"api_key": "k"}), &host);
//! assert_eq!(report.status, Status::Ok);
//! ```

pub mod fuzz;

use crate::abi::{HostCallbacks, HostCallbacks_TO};
use crate::error::PluginError;
use crate::host::wire;
use crate::http::{HttpError, HttpErrorKind, HttpRequest, HttpResponse, Method};
use crate::plugin::{Operation, Plugin, TaskOutcome};
use crate::report::TestReport;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

type Responder = Box<dyn Fn(&HttpRequest) -> Result<HttpResponse, HttpError> + Send + Sync>;

struct Route {
    method: Method,
    url_prefix: String,
    respond: Responder,
}

/// A host whose services are in memory and whose HTTP answers are scripted. Later routes win
/// over earlier ones, so a test can override a default answer.
#[derive(Default)]
pub struct ScriptedHost {
    routes: Mutex<Vec<Route>>,
    requests: Mutex<Vec<HttpRequest>>,
    state: Mutex<BTreeMap<String, Value>>,
    logs: Mutex<Vec<String>>,
    now_ms: AtomicU64,
    slept_ms: AtomicU64,
    tokens: Mutex<BTreeMap<String, wire::OAuth2Token>>,
    events: Mutex<Vec<crate::events::EmitEvent>>,
}

impl std::fmt::Debug for ScriptedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScriptedHost")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ScriptedHost {
    pub fn new() -> Self {
        let host = ScriptedHost::default();
        host.now_ms.store(1_800_000_000_000, Ordering::SeqCst);
        host
    }

    /// Answers requests whose URL starts with `url_prefix` with a fixed status and body.
    pub fn on(
        &self,
        method: Method,
        url_prefix: &str,
        status: u16,
        body: impl Into<Vec<u8>>,
    ) -> &Self {
        let body = body.into();
        self.on_fn(method, url_prefix, move |_| {
            Ok(HttpResponse {
                status,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: body.clone(),
            })
        })
    }

    /// Answers with a function of the request.
    pub fn on_fn(
        &self,
        method: Method,
        url_prefix: &str,
        respond: impl Fn(&HttpRequest) -> Result<HttpResponse, HttpError> + Send + Sync + 'static,
    ) -> &Self {
        lock(&self.routes).push(Route {
            method,
            url_prefix: url_prefix.to_owned(),
            respond: Box::new(respond),
        });
        self
    }

    /// Makes requests to `url_prefix` fail without a response.
    pub fn fail(
        &self,
        method: Method,
        url_prefix: &str,
        kind: HttpErrorKind,
        message: &str,
    ) -> &Self {
        let message = message.to_owned();
        self.on_fn(method, url_prefix, move |_| {
            Err(HttpError {
                kind,
                message: message.clone(),
            })
        })
    }

    /// Every request sent so far.
    pub fn requests(&self) -> Vec<HttpRequest> {
        lock(&self.requests).clone()
    }

    /// The instance state as the plugin left it.
    pub fn state(&self) -> BTreeMap<String, Value> {
        lock(&self.state).clone()
    }

    /// Events emitted by the plugin (one per key), in order.
    pub fn events(&self) -> Vec<crate::events::EmitEvent> {
        lock(&self.events).clone()
    }

    /// Log lines written by the plugin.
    pub fn logs(&self) -> Vec<String> {
        lock(&self.logs).clone()
    }

    /// Sets the clock (ms since the Unix epoch). Sleeping advances it.
    pub fn set_now_ms(&self, ms: u64) {
        self.now_ms.store(ms, Ordering::SeqCst);
    }

    /// Total time the plugin asked to sleep, in ms (sleeps are instant here).
    pub fn slept_ms(&self) -> u64 {
        self.slept_ms.load(Ordering::SeqCst)
    }

    fn http(&self, request: HttpRequest) -> wire::HttpOutcome {
        lock(&self.requests).push(request.clone());
        let routes = lock(&self.routes);
        let route = routes
            .iter()
            .rev()
            .find(|r| r.method == request.method && request.url.starts_with(&r.url_prefix));
        match route {
            Some(r) => match (r.respond)(&request) {
                Ok(resp) => wire::HttpOutcome::Response(resp),
                Err(e) => wire::HttpOutcome::Error(e),
            },
            None => wire::HttpOutcome::Error(HttpError {
                kind: HttpErrorKind::Connect,
                message: format!(
                    "no scripted answer for {:?} {}",
                    request.method, request.url
                ),
            }),
        }
    }

    fn dispatch(&self, name: &str, input: &str) -> Result<String, PluginError> {
        let bad = |e: serde_json::Error| PluginError::internal(format!("{name}: {e}"));
        let out = match name {
            wire::HTTP_REQUEST => {
                serde_json::to_value(self.http(serde_json::from_str(input).map_err(bad)?))
            }
            wire::LOG => {
                let log: wire::Log = serde_json::from_str(input).map_err(bad)?;
                lock(&self.logs).push(log.message);
                Ok(Value::Null)
            }
            wire::CLOCK_NOW => serde_json::to_value(wire::Now {
                unix_ms: self.now_ms.load(Ordering::SeqCst),
            }),
            wire::CLOCK_SLEEP => {
                let s: wire::Sleep = serde_json::from_str(input).map_err(bad)?;
                self.now_ms.fetch_add(s.ms, Ordering::SeqCst);
                self.slept_ms.fetch_add(s.ms, Ordering::SeqCst);
                Ok(Value::Null)
            }
            wire::STATE_GET => {
                let k: wire::StateKey = serde_json::from_str(input).map_err(bad)?;
                Ok(lock(&self.state)
                    .get(&k.key)
                    .cloned()
                    .unwrap_or(Value::Null))
            }
            wire::STATE_PUT => {
                let p: wire::StatePut = serde_json::from_str(input).map_err(bad)?;
                lock(&self.state).insert(p.key, p.value);
                Ok(Value::Null)
            }
            wire::STATE_DELETE => {
                let k: wire::StateKey = serde_json::from_str(input).map_err(bad)?;
                lock(&self.state).remove(&k.key);
                Ok(Value::Null)
            }
            wire::STATE_LIST => {
                let l: wire::StateList = serde_json::from_str(input).map_err(bad)?;
                let rows: Vec<(String, Value)> = lock(&self.state)
                    .iter()
                    .filter(|(k, _)| k.starts_with(&l.prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                serde_json::to_value(rows)
            }
            wire::OAUTH2_TOKEN => {
                let r: wire::OAuth2Request = serde_json::from_str(input).map_err(bad)?;
                let key = format!("{}|{}|{:?}", r.token_url, r.client_id, r.scope);
                let now = self.now_ms.load(Ordering::SeqCst);
                let cached = lock(&self.tokens)
                    .get(&key)
                    .filter(|t| !r.force_refresh && t.expires_at_ms > now + 60_000)
                    .cloned();
                if let Some(mut t) = cached {
                    t.cached = true;
                    return serde_json::to_string(&t).map_err(bad);
                }
                let response = match self.http(crate::oauth2::token_http_request(&r)) {
                    wire::HttpOutcome::Response(resp) => resp,
                    wire::HttpOutcome::Error(e) => return Err(e.into()),
                };
                let token = crate::oauth2::parse_token_response(&response, now)?;
                lock(&self.tokens).insert(key, token.clone());
                serde_json::to_value(token)
            }
            wire::EVENTS_EMIT => {
                let e: crate::events::EmitEvent = serde_json::from_str(input).map_err(bad)?;
                let mut events = lock(&self.events);
                let earlier = e
                    .key
                    .as_ref()
                    .and_then(|k| events.iter().position(|x| x.key.as_ref() == Some(k)));
                let emitted = match earlier {
                    Some(i) => crate::events::Emitted {
                        id: format!("evt-{i}"),
                        duplicate: true,
                    },
                    None => {
                        events.push(e);
                        crate::events::Emitted {
                            id: format!("evt-{}", events.len() - 1),
                            duplicate: false,
                        }
                    }
                };
                serde_json::to_value(emitted)
            }
            other => {
                return Err(PluginError::internal(format!(
                    "ScriptedHost has no service {other}"
                )))
            }
        };
        out.map(|v| v.to_string()).map_err(bad)
    }
}

impl HostCallbacks for ScriptedHost {
    fn call(&self, name: RStr<'_>, input: RStr<'_>) -> RResult<RString, RString> {
        match self.dispatch(name.as_str(), input.as_str()) {
            Ok(s) => RResult::ROk(RString::from(s)),
            Err(e) => RResult::RErr(RString::from(e.to_json())),
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(r: RResult<RString, RString>) -> Result<T, PluginError> {
    match r {
        RResult::ROk(s) => serde_json::from_str(s.as_str())
            .map_err(|e| PluginError::internal(format!("undecodable answer: {e}"))),
        RResult::RErr(s) => Err(PluginError::from_json(s.as_str())),
    }
}

/// Plugin `P`'s manifest as the host reads it through the root module: with the capability
/// list derived from [`Plugin::operations`], the API version and the locales filled in.
pub fn manifest<P: Plugin>() -> Result<crate::Manifest, PluginError> {
    let module = crate::export::root_module::<P>();
    decode((module.manifest())())
}

/// Runs plugin `P`'s test routine with `config` through its root module.
pub fn test<P: Plugin>(config: Value, host: &ScriptedHost) -> TestReport {
    let module = crate::export::root_module::<P>();
    let config = config.to_string();
    let host = HostCallbacks_TO::from_ptr(host, TD_Opaque);
    decode((module.test())(RStr::from_str(&config), host))
        .unwrap_or_else(|e| TestReport::failed("run test routine", e.message))
}

/// Calls operation `O` of plugin `P` through its root module.
pub fn invoke<P: Plugin, O: Operation>(
    input: &O::Input,
    config: Value,
    host: &ScriptedHost,
) -> Result<O::Output, PluginError> {
    let module = crate::export::root_module::<P>();
    let config = config.to_string();
    let input = serde_json::to_string(input).map_err(|e| PluginError::internal(e.to_string()))?;
    let host = HostCallbacks_TO::from_ptr(host, TD_Opaque);
    decode((module.invoke())(
        RStr::from_str(O::NAME),
        RStr::from_str(&input),
        RStr::from_str(&config),
        host,
    ))
}

/// Calls operation `operation` of plugin `P` with `input` as given (JSON text, possibly
/// wrong), through its root module: for testing how a plugin refuses what the types would
/// not let [`invoke`] send.
pub fn invoke_raw<P: Plugin>(
    operation: &str,
    input: &str,
    config: Value,
    host: &ScriptedHost,
) -> Result<Value, PluginError> {
    let module = crate::export::root_module::<P>();
    let config = config.to_string();
    let host = HostCallbacks_TO::from_ptr(host, TD_Opaque);
    decode((module.invoke())(
        RStr::from_str(operation),
        RStr::from_str(input),
        RStr::from_str(&config),
        host,
    ))
}

/// Runs task `name` of plugin `P` through its root module.
pub fn run_task<P: Plugin>(
    name: &str,
    config: Value,
    host: &ScriptedHost,
) -> Result<TaskOutcome, PluginError> {
    let module = crate::export::root_module::<P>();
    let config = config.to_string();
    let host = HostCallbacks_TO::from_ptr(host, TD_Opaque);
    decode((module.run_task())(
        RStr::from_str(name),
        RStr::from_str(&config),
        host,
    ))
}

/// Plugin `P`'s configuration schema, as the host will see it.
pub fn schema<P: Plugin>() -> Value {
    crate::config::config_schema::<P::Config>()
}

/// The catalog of plugin `P` for `lang`; panics when the plugin has none or it does not parse.
pub fn catalog<P: Plugin>(lang: &str) -> crate::i18n::Catalog {
    let Some((_, source)) = P::LOCALES.iter().find(|(l, _)| *l == lang) else {
        panic!("the plugin has no `{lang}` catalog: add locales/{lang}.ftl to Plugin::LOCALES");
    };
    crate::i18n::Catalog::parse(lang, source).unwrap_or_else(|e| panic!("{e}"))
}

/// Panics, listing what is missing, unless plugin `P`'s `lang` catalog translates every text
/// of its configuration schema (titles, descriptions, choices) and names no field the schema
/// does not have. Each plugin's tests call it for each language it ships.
pub fn assert_catalog_complete<P: Plugin>(lang: &str) {
    let catalog = catalog::<P>(lang);
    let schema = schema::<P>();
    let missing: Vec<String> = crate::i18n::missing_in_schema(&schema, &catalog)
        .iter()
        .map(|e| format!("  {} = {}", e.key(), e.english))
        .collect();
    assert!(
        missing.is_empty(),
        "locales/{lang}.ftl lacks {} translation(s) (id = English):\n{}",
        missing.len(),
        missing.join("\n")
    );
    let source = P::LOCALES
        .iter()
        .find(|(l, _)| *l == lang)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    let unknown = crate::i18n::unknown_fields(&schema, source);
    assert!(
        unknown.is_empty(),
        "locales/{lang}.ftl translates fields the schema does not have: {unknown:?}"
    );
}

/// Panics, listing what is missing, unless plugin `P`'s `lang` catalog translates every step
/// name and message of `report` (e.g. one a test got from [`test()`]).
pub fn assert_report_translated<P: Plugin>(report: &TestReport, lang: &str) {
    let catalog = catalog::<P>(lang);
    let missing: Vec<String> = crate::i18n::missing_in_report(report, &catalog)
        .iter()
        .map(|e| format!("  {} = {}", e.key(), e.english))
        .collect();
    assert!(
        missing.is_empty(),
        "locales/{lang}.ftl lacks {} translation(s) of the test report (id = English):\n{}",
        missing.len(),
        missing.join("\n")
    );
}
