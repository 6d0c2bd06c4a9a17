//! The plugin's window on the outside world.
//!
//! A plugin does no I/O of its own: it asks the [`Host`] to send HTTP requests, log, tell the
//! time, sleep and keep per-instance state. The host applies its trust store, quotas, timeouts
//! and redaction to every call, for every plugin alike.
//!
//! Each service is a named callback carrying JSON ([`wire`] holds the shapes), so a newer host
//! can add services without breaking older plugins.

use crate::abi::HostRef;
use crate::error::{ErrorKind, PluginError};
use crate::http::{HttpError, HttpErrorKind, HttpRequest, HttpResponse};
use abi_stable::std_types::{RResult, RStr};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

/// Names and JSON shapes of the host callbacks. Part of the plugin API: names are never
/// reused with another meaning.
pub mod wire {
    use serde::{Deserialize, Serialize};

    pub const HTTP_REQUEST: &str = "http.request";
    pub const LOG: &str = "log";
    pub const CLOCK_NOW: &str = "clock.now";
    pub const CLOCK_SLEEP: &str = "clock.sleep";
    pub const STATE_GET: &str = "state.get";
    pub const STATE_PUT: &str = "state.put";
    pub const STATE_DELETE: &str = "state.delete";
    pub const STATE_LIST: &str = "state.list";
    pub const OAUTH2_TOKEN: &str = "oauth2.token";
    /// Since plugin API 1.1: input [`crate::events::EmitEvent`], answer [`crate::events::Emitted`].
    pub const EVENTS_EMIT: &str = "events.emit";

    /// How the client authenticates to the token endpoint.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ClientAuth {
        /// `client_id` and `client_secret` in the form body.
        #[default]
        Form,
        /// HTTP Basic `client_id:client_secret`.
        Basic,
    }

    /// A client-credentials token request; the host caches the token per instance.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct OAuth2Request {
        pub token_url: String,
        pub client_id: String,
        pub client_secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scope: Option<String>,
        #[serde(default)]
        pub client_auth: ClientAuth,
        /// Ignore the cached token (after a 401 with it).
        #[serde(default)]
        pub force_refresh: bool,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct OAuth2Token {
        pub access_token: String,
        /// Milliseconds since the Unix epoch.
        pub expires_at_ms: u64,
        /// Whether the token came from the cache.
        #[serde(default)]
        pub cached: bool,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Log {
        pub level: super::LogLevel,
        pub message: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Now {
        /// Milliseconds since the Unix epoch.
        pub unix_ms: u64,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Sleep {
        pub ms: u64,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct StateKey {
        pub key: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct StatePut {
        pub key: String,
        pub value: serde_json::Value,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct StateList {
        pub prefix: String,
    }

    /// The outcome of `http.request`: a response, or the reason there is none.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum HttpOutcome {
        Response(crate::http::HttpResponse),
        Error(crate::http::HttpError),
    }
}

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Handle on the host's services, valid during one call into the plugin.
pub struct Host<'a> {
    callbacks: HostRef<'a>,
}

impl std::fmt::Debug for Host<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

impl<'a> Host<'a> {
    #[doc(hidden)]
    pub fn from_abi(callbacks: HostRef<'a>) -> Self {
        Host { callbacks }
    }

    /// Calls a host service by name with typed input and output. Prefer the typed methods
    /// below; this is for services newer than this crate.
    pub fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        name: &str,
        input: &I,
    ) -> Result<O, PluginError> {
        let input = serde_json::to_string(input)
            .map_err(|e| PluginError::internal(format!("cannot encode {name} input: {e}")))?;
        match self
            .callbacks
            .call(RStr::from_str(name), RStr::from_str(&input))
        {
            RResult::ROk(out) => serde_json::from_str(out.as_str()).map_err(|e| {
                PluginError::internal(format!("cannot read the host's {name} answer: {e}"))
            }),
            RResult::RErr(err) => Err(PluginError::from_json(err.as_str())),
        }
    }

    /// Sends an HTTP request through the host. Any HTTP status is a response; only the
    /// absence of an answer (connection, TLS, timeout, quota) is an error.
    pub fn http(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        match self.call::<_, wire::HttpOutcome>(wire::HTTP_REQUEST, request) {
            Ok(wire::HttpOutcome::Response(r)) => Ok(r),
            Ok(wire::HttpOutcome::Error(e)) => Err(e),
            Err(e) => Err(HttpError {
                kind: if e.kind == ErrorKind::RateLimited {
                    HttpErrorKind::Quota
                } else {
                    HttpErrorKind::Other
                },
                message: e.message,
            }),
        }
    }

    /// Logs a line under the instance's name; the host redacts secrets.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        let _ = self.call::<_, serde_json::Value>(
            wire::LOG,
            &wire::Log {
                level,
                message: message.into(),
            },
        );
    }

    /// Milliseconds since the Unix epoch, from the host's clock.
    pub fn now_unix_ms(&self) -> u64 {
        self.call::<_, wire::Now>(wire::CLOCK_NOW, &serde_json::Value::Null)
            .map(|n| n.unix_ms)
            .unwrap_or(0)
    }

    /// Sleeps without holding any host resource.
    pub fn sleep(&self, duration: Duration) {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let _ = self.call::<_, serde_json::Value>(wire::CLOCK_SLEEP, &wire::Sleep { ms });
    }

    /// An OAuth2 access token (client credentials grant), cached by the host per instance
    /// until shortly before it expires. Errors of the token endpoint (`invalid_client`, …)
    /// come back as [`ErrorKind::Unauthorized`] with the provider's message.
    pub fn oauth2_token(
        &self,
        request: &wire::OAuth2Request,
    ) -> Result<wire::OAuth2Token, PluginError> {
        self.call(wire::OAUTH2_TOKEN, request)
    }

    /// Emits an event about this instance to the ERP (webhooks, event stream); the host stores
    /// it in its outbox before answering, so it is delivered even if the host stops. `key`,
    /// when given, makes the emission idempotent: one event per instance and key. Returns
    /// the event's id. Hosts older than plugin API 1.1 answer `Unsupported`.
    pub fn emit_event<D: Serialize>(
        &self,
        kind: &str,
        data: &D,
        key: Option<&str>,
    ) -> Result<crate::events::Emitted, PluginError> {
        let data = serde_json::to_value(data)
            .map_err(|e| PluginError::internal(format!("cannot encode the {kind} event: {e}")))?;
        self.call(
            wire::EVENTS_EMIT,
            &crate::events::EmitEvent {
                kind: kind.to_owned(),
                data,
                key: key.map(str::to_owned),
            },
        )
    }

    /// Reads a value of the instance's persistent state.
    pub fn state_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, PluginError> {
        let v: Option<serde_json::Value> = self.call(
            wire::STATE_GET,
            &wire::StateKey {
                key: key.to_owned(),
            },
        )?;
        v.map(serde_json::from_value).transpose().map_err(|e| {
            PluginError::internal(format!("state {key:?} has an unexpected shape: {e}"))
        })
    }

    /// Writes a value of the instance's persistent state (atomically).
    pub fn state_put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), PluginError> {
        let value = serde_json::to_value(value)
            .map_err(|e| PluginError::internal(format!("cannot encode state {key:?}: {e}")))?;
        self.call::<_, serde_json::Value>(
            wire::STATE_PUT,
            &wire::StatePut {
                key: key.to_owned(),
                value,
            },
        )
        .map(|_| ())
    }

    /// Deletes a key of the instance's persistent state.
    pub fn state_delete(&self, key: &str) -> Result<(), PluginError> {
        self.call::<_, serde_json::Value>(
            wire::STATE_DELETE,
            &wire::StateKey {
                key: key.to_owned(),
            },
        )
        .map(|_| ())
    }

    /// Keys and values whose key starts with `prefix`, in key order.
    pub fn state_list<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, PluginError> {
        let rows: Vec<(String, serde_json::Value)> = self.call(
            wire::STATE_LIST,
            &wire::StateList {
                prefix: prefix.to_owned(),
            },
        )?;
        rows.into_iter()
            .map(|(k, v)| {
                serde_json::from_value(v)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| {
                        PluginError::internal(format!("state {k:?} has an unexpected shape: {e}"))
                    })
            })
            .collect()
    }
}
