//! The configuration of one Sirene instance, and the rules the schema alone cannot enforce.
//!
//! The schema is generated from this struct and rendered as a form by the console: doc
//! comments are titles (first paragraph) and descriptions, `x-group` sorts fields into
//! sections, and the `dependencies` block tells the form that the API key is required.
//! [`Config::problems`] repeats those rules in code so that a lookup with an incomplete
//! configuration fails with a message naming the field, before any request leaves the host.
//!
//! INSEE closed its OAuth2 gateway (`api.insee.fr/token`, consumer key and secret) on
//! 10 September 2025. Instances saved with `auth_mode = "oauth2"` and their client id, secret
//! and token URL still load — the fields stay in the schema so that a saved instance is not
//! a parse error — but every use is refused with the steps of the migration to an API key.

use passerelle_plugin_api::prelude::*;
use std::ops::RangeInclusive;

/// API base of the current INSEE portal (portail-api.insee.fr), authenticated by API key.
pub const CURRENT_BASE_URL: &str = "https://api.insee.fr/api-sirene/3.11";
/// API base of the closed OAuth2 gateway, refused with the migration steps.
pub const LEGACY_BASE_URL: &str = "https://api.insee.fr/entreprises/sirene/V3.11";
/// Token endpoint of the closed OAuth2 gateway.
pub const LEGACY_TOKEN_URL: &str = "https://api.insee.fr/token";
/// What to do when an instance still points at the closed gateway.
pub const MIGRATION: &str = "INSEE closed its OAuth2 gateway (api.insee.fr/token, consumer key \
     and secret) on 10 September 2025, so client id, secret and tokens no longer work: sign in \
     to portail-api.insee.fr, create an application subscribed to API Sirene (public plan), \
     paste its API key in `api_key` and set Authentication to \"API key\"";

/// Settings of an INSEE Sirene instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("dependencies" = {
    "auth_mode": {
        "oneOf": [
            {
                "properties": { "auth_mode": { "const": "api_key" } },
                "required": ["api_key"]
            },
            {
                // The retired fields show only on an instance still saved in this mode,
                // next to the refusal that explains the migration.
                "properties": {
                    "auth_mode": { "const": "oauth2" },
                    "client_id": {},
                    "client_secret": {},
                    "token_url": {}
                }
            }
        ]
    }
}))]
pub struct Config {
    /// Enabled
    ///
    /// Whether this instance answers company lookups. Switch it off to suspend lookups while
    /// keeping the rest of the configuration; the test routine still runs.
    #[serde(default = "default_enabled")]
    #[schemars(extend("x-group" = "general"))]
    pub enabled: bool,

    /// Authentication
    ///
    /// How Passerelle proves its identity to INSEE: an API key from the portal
    /// (portail-api.insee.fr). OAuth2 is only listed so that instances saved with it load:
    /// INSEE closed that gateway on 10 September 2025 and it is refused.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub auth_mode: AuthMode,

    /// API key
    ///
    /// The key of your application subscribed to API Sirene in the INSEE portal
    /// (portail-api.insee.fr), sent in the X-INSEE-Api-Key-Integration header. Not the
    /// access token ("Jeton") of the old gateway: that one is refused.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub api_key: Option<Secret>,

    /// Client id (retired)
    ///
    /// The consumer key of an application on INSEE's closed OAuth2 gateway. No longer used;
    /// kept so that older instances load. Leave it empty.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub client_id: Option<String>,

    /// Client secret (retired)
    ///
    /// The consumer secret of an application on INSEE's closed OAuth2 gateway. No longer
    /// used; kept so that older instances load. Leave it empty.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub client_secret: Option<Secret>,

    /// Token URL (retired)
    ///
    /// The token endpoint of INSEE's closed OAuth2 gateway. No longer used; kept so that
    /// older instances load.
    #[serde(default = "default_token_url")]
    #[schemars(extend("x-group" = "authentication"))]
    pub token_url: String,

    /// API base URL
    ///
    /// Base of the API Sirene 3.11 endpoints of the INSEE portal.
    #[serde(default = "default_base_url")]
    #[schemars(extend("x-group" = "connection"))]
    pub base_url: String,

    /// `timeout_secs`, see [`Spec`].
    #[serde(flatten)]
    pub timeout: Timeout<Spec>,
}

/// The bounds and texts of the shared configuration blocks.
pub struct Spec;

impl TimeoutSpec for Spec {
    const DOC: &'static str = "Timeout (seconds)\n\n\
        How long to wait for each answer from INSEE before giving up.";
    const GROUP: &'static str = "connection";
    const DEFAULT_SECS: u32 = 10;
    const SECS: RangeInclusive<u32> = 1..=120;
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// API key (INSEE portal)
    #[default]
    ApiKey,
    /// OAuth2 client credentials (closed on 10 September 2025, refused)
    Oauth2,
}

fn default_enabled() -> bool {
    true
}

fn default_token_url() -> String {
    LEGACY_TOKEN_URL.to_owned()
}

fn default_base_url() -> String {
    CURRENT_BASE_URL.to_owned()
}

impl Config {
    /// Everything that keeps this configuration from working, each naming its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        match self.auth_mode {
            AuthMode::Oauth2 => problems.push(PluginError::config("auth_mode", MIGRATION)),
            AuthMode::ApiKey if self.api_key.as_ref().is_none_or(Secret::is_blank) => {
                problems.push(PluginError::config(
                    "api_key",
                    "an API key is required: create an application subscribed to API Sirene \
                     in the INSEE portal (portail-api.insee.fr) and paste its key here",
                ));
            }
            AuthMode::ApiKey => {}
        }
        // The closed gateway's path, on INSEE's host or behind a company proxy.
        if self.base_url.contains("/entreprises/sirene/") {
            problems.push(PluginError::config(
                "base_url",
                format!(
                    "{LEGACY_BASE_URL} is the base of the closed OAuth2 gateway: use \
                     {CURRENT_BASE_URL}. {MIGRATION}"
                ),
            ));
        }
        if !is_http_url(&self.base_url) {
            problems.push(PluginError::config(
                "base_url",
                format!(
                    "the API base URL {:?} must start with http:// or https://, e.g. {}",
                    self.base_url, CURRENT_BASE_URL
                ),
            ));
        }
        problems.extend(self.timeout.problems());
        problems
    }

    /// The API base, without a trailing slash.
    pub fn effective_base_url(&self) -> &str {
        self.base_url.trim().trim_end_matches('/')
    }

    /// The per-request timeout, in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout.ms()
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

    fn fields(c: &Config) -> Vec<String> {
        c.problems()
            .into_iter()
            .map(|e| {
                assert_eq!(e.kind, ErrorKind::Config);
                e.field.unwrap()
            })
            .collect()
    }

    #[test]
    fn defaults() {
        let c = config(json!({}));
        assert!(c.enabled);
        assert_eq!(c.auth_mode, AuthMode::ApiKey);
        assert_eq!(c.base_url, CURRENT_BASE_URL);
        assert_eq!(c.token_url, LEGACY_TOKEN_URL);
        assert_eq!(c.timeout.secs(), 10);
        assert_eq!(fields(&c), ["api_key"]);
    }

    #[test]
    fn an_api_key_is_required() {
        assert!(fields(&config(json!({"api_key": "k"}))).is_empty());
        assert_eq!(fields(&config(json!({"api_key": "  "}))), ["api_key"]);
    }

    #[test]
    fn a_saved_oauth2_instance_loads_and_is_refused_with_the_migration() {
        let c = config(json!({
            "auth_mode": "oauth2", "client_id": "id", "client_secret": "s",
            "token_url": LEGACY_TOKEN_URL, "base_url": LEGACY_BASE_URL
        }));
        assert_eq!(fields(&c), ["auth_mode", "base_url"]);
        let message = &c.problems()[0].message;
        assert!(message.contains("10 September 2025"), "{message}");
        assert!(message.contains("portail-api.insee.fr"), "{message}");
        assert!(message.contains("api_key"), "{message}");
    }

    #[test]
    fn urls_must_be_http() {
        let c = config(json!({"api_key": "k", "base_url": "api.insee.fr/api-sirene/3.11"}));
        assert_eq!(fields(&c), ["base_url"]);
        let c = config(json!({"api_key": "k", "base_url": "HTTPS://localhost:8080"}));
        assert!(fields(&c).is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_value::<Config>(json!({"apikey": "k"})).is_err());
    }

    #[test]
    fn schema_renders_as_a_form() {
        let s = config_schema::<Config>();
        let props = s["properties"].as_object().unwrap();
        for (name, prop) in props {
            assert!(prop["title"].is_string(), "{name} has no title");
            assert!(prop["description"].is_string(), "{name} has no description");
            assert!(prop["x-group"].is_string(), "{name} has no group");
        }
        assert_eq!(props["api_key"]["writeOnly"], true);
        assert_eq!(props["client_secret"]["format"], "password");
        assert_eq!(props["client_id"]["type"], "string");
        assert_eq!(props["auth_mode"]["default"], "api_key");
        assert_eq!(props["auth_mode"]["oneOf"][1]["const"], "oauth2");
        assert_eq!(
            props["auth_mode"]["oneOf"][1]["title"],
            "OAuth2 client credentials (closed on 10 September 2025, refused)"
        );
        assert_eq!(props["timeout_secs"]["minimum"], 1);
        assert_eq!(props["timeout_secs"]["maximum"], 120);
        assert_eq!(props["timeout_secs"]["default"], 10);
        assert_eq!(props["base_url"]["x-order"], 6);
        assert_eq!(s["additionalProperties"], false);
        let rules = passerelle_plugin_api::config::conditionals(&s);
        let required = |tag: &str, value: serde_json::Value| {
            rules
                .iter()
                .find(|r| r.tag == tag && r.value == value)
                .map(|r| r.required.clone())
                .unwrap_or_default()
        };
        assert_eq!(required("auth_mode", json!("api_key")), ["api_key"]);
        assert!(required("auth_mode", json!("oauth2")).is_empty());
        assert!(!s.to_string().contains("$ref"));
        assert!(s
            .get("required")
            .is_none_or(|r| r.as_array().unwrap().is_empty()));
    }
}
