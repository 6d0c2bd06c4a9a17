//! The configuration of one approved-platform instance, and the rules the schema alone
//! cannot enforce.
//!
//! XP Z12-013 fixes the API, not the addresses: every platform publishes its own Flow
//! service and Directory service base URLs and its OAuth2 token endpoint, so all three are
//! settings. The company's SIREN is checked (9 digits, Luhn) because every call acts for it.
//! [`Config::problems`] names the field of every mistake, so saving, enabling and every call
//! refuse a wrong configuration before any request leaves the host.

use crate::siren;
use passerelle_plugin_api::prelude::*;
use std::ops::RangeInclusive;

/// Longest total wait between attempts, so that a call with retries still fits in the
/// host's 120 s call deadline with time left for the requests themselves.
pub const MAX_TOTAL_RETRY_WAIT_SECS: u32 = 100;

/// Which of the platform's environments the URLs lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Sandbox: test invoices, no legal value.
    #[schemars(title = "Sandbox")]
    Sandbox,
    /// Production: invoices with legal value, sent to real customers.
    #[schemars(title = "Production")]
    Production,
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        })
    }
}

/// Settings of an approved-platform instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Transmission active
    ///
    /// Whether invoices and buyer answers are sent. Turn it off to pause sending: received
    /// invoices are still collected and sent invoices still followed.
    #[serde(default = "default_true")]
    #[schemars(extend("x-group" = "general", "x-order" = 1))]
    pub active: bool,

    /// Environment
    ///
    /// Whether the URLs below lead to the platform's sandbox or to its production. Production
    /// and sandbox credentials may not be shared between instances.
    #[serde(default = "default_environment")]
    #[schemars(extend("x-group" = "general", "x-order" = 2))]
    pub environment: Environment,

    /// Company SIREN
    ///
    /// The SIREN (9 digits) of the company this instance sends and receives for; it must be
    /// registered in the directory with this platform.
    #[schemars(extend("x-group" = "general", "x-order" = 3))]
    pub siren: String,

    /// Flow service URL
    ///
    /// Base URL of the platform's XP Z12-013 Flow service, without /v1, e.g.
    /// `https://api.flow.example-pa.fr/flow-service`.
    #[schemars(extend("x-group" = "platform", "x-order" = 10))]
    pub flow_url: String,

    /// Directory service URL
    ///
    /// Base URL of the platform's XP Z12-013 Directory service, without /v1.
    #[schemars(extend("x-group" = "platform", "x-order" = 11))]
    pub directory_url: String,

    /// OAuth2 token URL
    ///
    /// The platform's OAuth2 token endpoint (client-credentials grant).
    #[schemars(extend("x-group" = "platform", "x-order" = 12))]
    pub token_url: String,

    /// `client_id` and `client_secret`, see [`Spec`].
    #[serde(flatten)]
    pub credentials: OAuth2Credentials<Spec>,

    /// OAuth2 scope
    ///
    /// Only when the platform asks for one; leave empty otherwise.
    #[serde(default)]
    #[schemars(extend("x-group" = "platform", "x-order" = 15))]
    pub scope: Option<String>,

    /// Requests per second
    ///
    /// Most API requests per second this instance sends (the host queues the others).
    #[serde(default = "default_per_second")]
    #[schemars(extend("x-group" = "limits", "x-order" = 20))]
    pub requests_per_second: u32,

    /// `attempts` and `retry_delay_secs`, see [`Spec`].
    #[serde(flatten)]
    pub retry: Retry<Spec>,

    /// `timeout_secs`, see [`Spec`].
    #[serde(flatten)]
    pub timeout: Timeout<Spec>,

    /// Follow-up interval (seconds)
    ///
    /// How often the lifecycle of sent invoices is read (60 s to 1 day).
    #[serde(default = "default_interval")]
    #[schemars(extend("x-group" = "tasks", "x-order" = 30))]
    pub follow_interval_secs: u32,

    /// Follow-up start delay (seconds)
    #[serde(default)]
    #[schemars(extend("x-group" = "tasks", "x-order" = 31))]
    pub follow_start_delay_secs: u32,

    /// Collection interval (seconds)
    ///
    /// How often received supplier invoices are collected (60 s to 1 day).
    #[serde(default = "default_interval")]
    #[schemars(extend("x-group" = "tasks", "x-order" = 32))]
    pub collect_interval_secs: u32,

    /// Collection start delay (seconds)
    #[serde(default)]
    #[schemars(extend("x-group" = "tasks", "x-order" = 33))]
    pub collect_start_delay_secs: u32,
}

/// The bounds and texts of the shared configuration blocks.
pub struct Spec;

impl CredentialsSpec for Spec {
    const CLIENT_ID_DOC: &'static str = "Client id\n\n\
        The OAuth2 client id the platform gave your company for its API.";
    const CLIENT_SECRET_DOC: &'static str = "Client secret\n\n\
        The OAuth2 client secret of the same client.";
    const GROUP: &'static str = "platform";
    const ORDER: Option<u32> = Some(13);
    const CLIENT_ID_ADVICE: &'static str = "give the OAuth2 client id the platform issued";
    const CLIENT_SECRET_ADVICE: &'static str = "give the OAuth2 client secret the platform issued";
}

impl RetrySpec for Spec {
    const ATTEMPTS_DOC: &'static str = "Attempts\n\n\
        How many times a call is tried when the platform is unavailable (1 to 10). A \
        submission is only sent again when the platform proves it did not take it.";
    const DELAY_DOC: &'static str = "Delay between attempts (seconds)";
    const GROUP: &'static str = "limits";
    const ORDER: Option<u32> = Some(21);
    const DEFAULT_ATTEMPTS: u32 = 3;
    const ATTEMPTS: RangeInclusive<u32> = 1..=10;
    const DEFAULT_DELAY_SECS: u32 = 2;
    const DELAY_SECS: RangeInclusive<u32> = 0..=60;
    const MAX_TOTAL_WAIT_SECS: Option<u32> = Some(MAX_TOTAL_RETRY_WAIT_SECS);
}

impl TimeoutSpec for Spec {
    const DOC: &'static str = "Timeout (seconds)\n\n\
        How long one request may wait for the platform (5 to 300).";
    const GROUP: &'static str = "limits";
    const ORDER: Option<u32> = Some(23);
    const DEFAULT_SECS: u32 = 30;
    const SECS: RangeInclusive<u32> = 5..=300;
}

fn default_true() -> bool {
    true
}
fn default_environment() -> Environment {
    Environment::Sandbox
}
fn default_per_second() -> u32 {
    10
}
fn default_interval() -> u32 {
    300
}

impl Config {
    /// Everything that keeps this configuration from working, each naming its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        if let Err(e) = siren::check_siren(&self.siren) {
            problems.push(PluginError::config(
                "siren",
                format!("{e}: give the SIREN of the company this instance acts for"),
            ));
        }
        for (field, url, what) in [
            ("flow_url", &self.flow_url, "Flow service URL"),
            (
                "directory_url",
                &self.directory_url,
                "Directory service URL",
            ),
            ("token_url", &self.token_url, "OAuth2 token URL"),
        ] {
            if let Some(p) = url_problem(field, url, what, self.environment) {
                problems.push(p);
            }
        }
        problems.extend(self.credentials.problems());
        problems.extend(check_range(
            "requests_per_second",
            "the request rate",
            self.requests_per_second,
            1..=100,
            "per second",
        ));
        problems.extend(self.retry.problems());
        problems.extend(self.timeout.problems());
        for (field, what, value) in [
            (
                "follow_interval_secs",
                "the follow-up interval",
                self.follow_interval_secs,
            ),
            (
                "collect_interval_secs",
                "the collection interval",
                self.collect_interval_secs,
            ),
        ] {
            problems.extend(check_range(field, what, value, 60..=86_400, "seconds"));
        }
        for (field, what, value) in [
            (
                "follow_start_delay_secs",
                "the follow-up start delay",
                self.follow_start_delay_secs,
            ),
            (
                "collect_start_delay_secs",
                "the collection start delay",
                self.collect_start_delay_secs,
            ),
        ] {
            problems.extend(check_range(field, what, value, 0..=86_400, "seconds"));
        }
        problems
    }

    /// The company SIREN without spaces.
    pub fn company(&self) -> String {
        self.siren.chars().filter(|c| !c.is_whitespace()).collect()
    }

    pub fn flow_base(&self) -> &str {
        self.flow_url.trim().trim_end_matches('/')
    }

    pub fn directory_base(&self) -> &str {
        self.directory_url.trim().trim_end_matches('/')
    }

    pub fn timeout_ms(&self) -> u64 {
        self.timeout.ms()
    }

    pub fn quotas(&self) -> Quotas {
        Quotas {
            per_second: Some(self.requests_per_second.max(1)),
            per_minute: None,
            per_day: None,
        }
    }
}

/// A URL must be absolute http(s); production needs https (a sandbox may be local).
fn url_problem(field: &str, url: &str, what: &str, env: Environment) -> Option<PluginError> {
    let url = url.trim();
    if url.is_empty() {
        return Some(PluginError::config(
            field,
            format!("the {what} is empty: give the address the platform publishes"),
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(PluginError::config(
            field,
            format!("{url:?} is not an absolute URL: it must start with https://"),
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Some(PluginError::config(
            field,
            format!("{url:?} has no host: give the full address, e.g. https://api.example-pa.fr/…"),
        ));
    }
    if rest.contains(['?', '#']) {
        return Some(PluginError::config(
            field,
            format!("{url:?} must be a base URL, without query or fragment"),
        ));
    }
    match (scheme, env) {
        ("https", _) | ("http", Environment::Sandbox) => None,
        ("http", Environment::Production) => Some(PluginError::config(
            field,
            format!("{url:?} is plain http: production invoices travel over https only"),
        )),
        _ => Some(PluginError::config(
            field,
            format!("{url:?} is not an http(s) URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn config(changes: Value) -> Config {
        let mut base = json!({
            "siren": "702042755",
            "flow_url": "https://api.flow.pa.example/flow-service",
            "directory_url": "https://api.directory.pa.example/directory-service",
            "token_url": "https://auth.pa.example/token",
            "client_id": "id",
            "client_secret": "secret",
        });
        for (k, v) in changes.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn fields(c: &Config) -> Vec<String> {
        c.problems().into_iter().filter_map(|p| p.field).collect()
    }

    #[test]
    fn a_complete_configuration_has_no_problem() {
        let c = config(json!({}));
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.environment, Environment::Sandbox);
        assert_eq!(c.quotas().per_second, Some(10));
    }

    #[test]
    fn every_mistake_names_its_field() {
        assert_eq!(fields(&config(json!({"siren": "702042756"}))), ["siren"]);
        assert_eq!(
            fields(&config(json!({"flow_url": "ftp://x"}))),
            ["flow_url"]
        );
        assert_eq!(
            fields(&config(
                json!({"environment": "production", "directory_url": "http://x.example"})
            )),
            ["directory_url"]
        );
        assert_eq!(
            fields(&config(json!({"client_secret": " "}))),
            ["client_secret"]
        );
        assert_eq!(fields(&config(json!({"attempts": 0}))), ["attempts"]);
        assert_eq!(
            fields(&config(json!({"attempts": 10, "retry_delay_secs": 60}))),
            ["retry_delay_secs"]
        );
        assert_eq!(
            fields(&config(json!({"collect_interval_secs": 5}))),
            ["collect_interval_secs"]
        );
    }
}
