//! The configuration of one Universign instance (every field of the ERP's former settings
//! page), and the rules the schema alone cannot enforce.
//!
//! The schema is generated from this struct and rendered as a form by the console: doc
//! comments are titles (first paragraph) and descriptions, `x-group` sorts fields into
//! sections, and the `dependencies` block asks for the Universign credentials once electronic
//! signature is enabled. [`Config::problems`] repeats those rules in code, so that a request
//! with an incomplete configuration fails with a message naming the field before anything
//! is sent.

use passerelle_plugin_api::prelude::*;
use std::ops::RangeInclusive;

/// Universign's production XML-RPC endpoint.
pub const PRODUCTION_URL: &str = "https://ws.universign.eu/sign/rpc/";
/// Universign's test platform endpoint, as recorded in the reference samples.
pub const TEST_URL: &str = "https://sign.test.cryptolog.com/sign/rpc/";
/// The seed's default polling interval: 6 hours.
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 21_600;
/// Below this interval the test routine warns: Universign asks integrators not to poll hard.
pub const ADVISED_MIN_POLL_INTERVAL_SECS: u64 = 300;

/// Settings of a Universign instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("dependencies" = {
    "enabled": {
        "oneOf": [
            {
                "properties": { "enabled": { "const": true } },
                "required": ["user", "password"]
            },
            {
                "properties": { "enabled": { "const": false } }
            }
        ]
    }
}))]
pub struct Config {
    /// Enable electronic signature
    ///
    /// Whether quotes and delivery notes can be sent for signature through this instance.
    /// While off, new requests are refused and the polling task does nothing; transactions
    /// already stored can still be read.
    #[serde(default)]
    #[schemars(extend("x-group" = "general"))]
    pub enabled: bool,

    /// Universign URL
    ///
    /// The XML-RPC endpoint of Universign's signer API: production
    /// `https://ws.universign.eu/sign/rpc/` or the test platform
    /// `https://sign.test.cryptolog.com/sign/rpc/`.
    #[serde(default = "default_url")]
    #[schemars(extend("x-group" = "universign", "format" = "uri"))]
    pub url: String,

    /// Universign user
    ///
    /// The login (e-mail address) of the Universign account that requests the signatures.
    #[serde(default)]
    #[schemars(extend("x-group" = "universign"))]
    pub user: Option<String>,

    /// Universign password
    ///
    /// The password of that Universign account, sent with HTTP Basic authentication.
    #[serde(default)]
    #[schemars(extend("x-group" = "universign"))]
    pub password: Option<Secret>,

    /// ERP technical user
    ///
    /// The ERP account under which the signed documents are written back to the ERP. Used by
    /// the ERP side of the integration, not to call Universign.
    #[serde(default)]
    #[schemars(extend("x-group" = "erp"))]
    pub erp_user: Option<String>,

    /// ERP technical user's password
    ///
    /// The password of the ERP technical user.
    #[serde(default)]
    #[schemars(extend("x-group" = "erp"))]
    pub erp_password: Option<Secret>,

    /// Signature retrieval interval (seconds)
    ///
    /// How often pending transactions are checked and completed documents collected. Default
    /// 21600 (6 hours); values below 300 are accepted but flagged by the test routine, as
    /// they load Universign's service for little benefit.
    #[serde(default = "default_poll_interval_secs")]
    #[schemars(range(min = 1, max = 604_800))]
    #[schemars(extend("x-group" = "polling"))]
    pub poll_interval_secs: u64,

    /// Start delay (seconds)
    ///
    /// How long after the host starts the first check runs.
    #[serde(default = "default_poll_start_delay_secs")]
    #[schemars(range(min = 0, max = 86_400))]
    #[schemars(extend("x-group" = "polling"))]
    pub poll_start_delay_secs: u64,

    /// `timeout_secs`, see [`Spec`].
    #[serde(flatten)]
    pub timeout: Timeout<Spec>,
}

/// The bounds and texts of the shared configuration blocks.
pub struct Spec;

impl TimeoutSpec for Spec {
    const DOC: &'static str = "Timeout (seconds)\n\n\
        How long to wait for each answer from Universign. Signed documents can take a while to \
        download.";
    const GROUP: &'static str = "universign";
    const DEFAULT_SECS: u32 = 60;
    const SECS: RangeInclusive<u32> = 1..=300;
}

fn default_url() -> String {
    PRODUCTION_URL.to_owned()
}

fn default_poll_interval_secs() -> u64 {
    DEFAULT_POLL_INTERVAL_SECS
}

fn default_poll_start_delay_secs() -> u64 {
    20
}

impl Config {
    /// Everything that keeps this configuration from working, each naming its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        if !is_http_url(&self.url) {
            problems.push(PluginError::config(
                "url",
                format!(
                    "the Universign URL {:?} must start with https:// (or http:// for a local \
                     service), e.g. {PRODUCTION_URL}",
                    self.url
                ),
            ));
        }
        if self.enabled {
            if self.user().is_empty() {
                problems.push(PluginError::config(
                    "user",
                    "the Universign user is required once electronic signature is enabled: \
                     enter the login (e-mail) of the Universign account",
                ));
            }
            if self.password().is_empty() {
                problems.push(PluginError::config(
                    "password",
                    "the Universign password is required once electronic signature is \
                     enabled: enter the password of the Universign account",
                ));
            }
        }
        if self.poll_interval_secs == 0 {
            problems.push(PluginError::config(
                "poll_interval_secs",
                "the signature retrieval interval must be at least 1 second (default 21600)",
            ));
        }
        problems.extend(self.timeout.problems());
        problems
    }

    /// The problems that stop a call to Universign, whatever `enabled` says: the URL and the
    /// credentials.
    pub fn connection_problems(&self) -> Vec<PluginError> {
        let mut problems: Vec<PluginError> = self
            .problems()
            .into_iter()
            .filter(|p| matches!(p.field.as_deref(), Some("url" | "timeout_secs")))
            .collect();
        if self.user().is_empty() {
            problems.push(PluginError::config(
                "user",
                "the Universign user is not set: enter the login (e-mail) of the Universign \
                 account",
            ));
        }
        if self.password().is_empty() {
            problems.push(PluginError::config(
                "password",
                "the Universign password is not set: enter the password of the Universign \
                 account",
            ));
        }
        problems
    }

    /// The Universign login, trimmed ("" when unset).
    pub fn user(&self) -> &str {
        self.user.as_deref().map(str::trim).unwrap_or_default()
    }

    /// The Universign password ("" when unset). Not trimmed: spaces may be part of it.
    pub fn password(&self) -> &str {
        self.password
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default()
    }

    /// The endpoint, trimmed.
    pub fn endpoint(&self) -> &str {
        self.url.trim()
    }

    /// The per-request timeout, in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout.ms()
    }

    /// Whether the polling interval is below what the seed advises.
    pub fn polls_too_often(&self) -> bool {
        self.poll_interval_secs < ADVISED_MIN_POLL_INTERVAL_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_plugin_api::config_schema;
    use serde_json::json;

    fn config(value: serde_json::Value) -> Config {
        serde_json::from_value(value).unwrap()
    }

    fn fields(problems: Vec<PluginError>) -> Vec<String> {
        problems
            .into_iter()
            .map(|e| {
                assert_eq!(e.kind, ErrorKind::Config);
                e.field.unwrap()
            })
            .collect()
    }

    #[test]
    fn defaults_follow_the_seed() {
        let c = config(json!({}));
        assert!(!c.enabled);
        assert_eq!(c.url, PRODUCTION_URL);
        assert_eq!(c.poll_interval_secs, 21_600);
        assert_eq!(c.poll_start_delay_secs, 20);
        assert_eq!(c.timeout.secs(), 60);
        assert!(fields(c.problems()).is_empty());
        assert_eq!(fields(c.connection_problems()), ["user", "password"]);
    }

    #[test]
    fn enabling_requires_the_credentials() {
        let c = config(json!({"enabled": true}));
        assert_eq!(fields(c.problems()), ["user", "password"]);
        let c = config(json!({"enabled": true, "user": "  ", "password": "p"}));
        assert_eq!(fields(c.problems()), ["user"]);
        let c = config(json!({"enabled": true, "user": "u@example.com", "password": "p"}));
        assert!(c.problems().is_empty());
        assert!(c.connection_problems().is_empty());
    }

    #[test]
    fn url_interval_and_timeout_are_checked() {
        let c = config(json!({"url": "ftp://x", "poll_interval_secs": 0, "timeout_secs": 0}));
        assert_eq!(
            fields(c.problems()),
            ["url", "poll_interval_secs", "timeout_secs"]
        );
    }

    #[test]
    fn short_intervals_are_accepted_but_flagged() {
        let c = config(json!({"poll_interval_secs": 60}));
        assert!(c.problems().is_empty());
        assert!(c.polls_too_often());
        assert!(!config(json!({"poll_interval_secs": 300})).polls_too_often());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_value::<Config>(json!({"colour": "blue"})).unwrap_err();
        assert!(e.to_string().contains("colour"));
    }

    #[test]
    fn schema_renders_as_a_form() {
        let s = config_schema::<Config>();
        let props = &s["properties"];
        assert_eq!(props["enabled"]["title"], "Enable electronic signature");
        assert_eq!(props["url"]["default"], PRODUCTION_URL);
        assert_eq!(props["password"]["writeOnly"], true);
        assert_eq!(props["erp_password"]["format"], "password");
        assert_eq!(props["poll_interval_secs"]["default"], 21_600);
        assert_eq!(props["poll_interval_secs"]["minimum"], 1);
        assert_eq!(props["poll_start_delay_secs"]["default"], 20);
        for (name, prop) in props.as_object().unwrap() {
            assert!(prop["title"].is_string(), "{name} has no title");
            assert!(prop["description"].is_string(), "{name} has no description");
            assert!(prop["x-group"].is_string(), "{name} has no group");
        }
        let rules = passerelle_plugin_api::config::conditionals(&s);
        let required = |tag: &str, value: serde_json::Value| {
            rules
                .iter()
                .find(|r| r.tag == tag && r.value == value)
                .map(|r| r.required.clone())
                .unwrap_or_default()
        };
        assert_eq!(required("enabled", json!(true)), ["user", "password"]);
        assert!(!s.to_string().contains("$ref"));
    }
}
