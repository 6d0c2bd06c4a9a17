//! The configuration of one Sirene instance, and the rules the schema alone cannot enforce.
//!
//! The schema is generated from this struct and rendered as a form by the console: doc
//! comments are titles (first paragraph) and descriptions, `x-group` sorts fields into
//! sections, and the `dependencies` block tells the form which credentials each
//! authentication mode needs. [`Config::problems`] repeats those conditional rules in code so
//! that a lookup with an incomplete configuration fails with a message naming the field,
//! before any request leaves the host.

use passerelle_plugin_api::prelude::*;

/// API base of the current INSEE portal (portail-api.insee.fr), authenticated by API key.
pub const CURRENT_BASE_URL: &str = "https://api.insee.fr/api-sirene/3.11";
/// API base of the legacy gateway (api.insee.fr/catalogue), authenticated by OAuth2 tokens.
pub const LEGACY_BASE_URL: &str = "https://api.insee.fr/entreprises/sirene/V3.11";
/// Token endpoint of the legacy gateway.
pub const LEGACY_TOKEN_URL: &str = "https://api.insee.fr/token";

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
                "properties": { "auth_mode": { "const": "oauth2" } },
                "required": ["client_id", "client_secret"]
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
    /// How Passerelle proves its identity to INSEE: an API key from the current portal
    /// (portail-api.insee.fr), or an OAuth2 application of the legacy gateway.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub auth_mode: AuthMode,

    /// API key
    ///
    /// The key of your application subscribed to API Sirene in the INSEE portal
    /// (portail-api.insee.fr), sent in the X-INSEE-Api-Key-Integration header.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub api_key: Option<Secret>,

    /// Client id
    ///
    /// The consumer key of your application on the legacy INSEE gateway (OAuth2 only).
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub client_id: Option<String>,

    /// Client secret
    ///
    /// The consumer secret of your application on the legacy INSEE gateway (OAuth2 only).
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub client_secret: Option<Secret>,

    /// Token URL
    ///
    /// Where OAuth2 access tokens are requested (client credentials grant). Only used with
    /// OAuth2.
    #[serde(default = "default_token_url")]
    #[schemars(extend("x-group" = "authentication"))]
    pub token_url: String,

    /// API base URL
    ///
    /// Base of the API Sirene 3.11 endpoints. With OAuth2 and this default left unchanged,
    /// the legacy gateway's base (api.insee.fr/entreprises/sirene/V3.11) is used instead.
    #[serde(default = "default_base_url")]
    #[schemars(extend("x-group" = "connection"))]
    pub base_url: String,

    /// Timeout (seconds)
    ///
    /// How long to wait for each answer from INSEE before giving up.
    #[serde(default = "default_timeout_secs")]
    #[schemars(range(min = 1, max = 120))]
    #[schemars(extend("x-group" = "connection"))]
    pub timeout_secs: u32,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// API key (current INSEE portal)
    #[default]
    ApiKey,
    /// OAuth2 client credentials (legacy gateway)
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

fn default_timeout_secs() -> u32 {
    10
}

impl Config {
    /// Everything that keeps this configuration from working, each naming its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        match self.auth_mode {
            AuthMode::ApiKey => {
                if is_blank_secret(self.api_key.as_ref()) {
                    problems.push(PluginError::config(
                        "api_key",
                        "an API key is required with API key authentication: create an \
                         application subscribed to API Sirene in the INSEE portal \
                         (portail-api.insee.fr) and paste its key here",
                    ));
                }
            }
            AuthMode::Oauth2 => {
                if self
                    .client_id
                    .as_deref()
                    .is_none_or(|s| s.trim().is_empty())
                {
                    problems.push(PluginError::config(
                        "client_id",
                        "a client id is required with OAuth2 authentication: copy the consumer \
                         key of your application on the INSEE gateway",
                    ));
                }
                if is_blank_secret(self.client_secret.as_ref()) {
                    problems.push(PluginError::config(
                        "client_secret",
                        "a client secret is required with OAuth2 authentication: copy the \
                         consumer secret of your application on the INSEE gateway",
                    ));
                }
                if !is_http_url(&self.token_url) {
                    problems.push(PluginError::config(
                        "token_url",
                        format!(
                            "the token URL {:?} must start with http:// or https://, e.g. {}",
                            self.token_url, LEGACY_TOKEN_URL
                        ),
                    ));
                }
            }
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
        problems.extend(check_range(
            "timeout_secs",
            "the timeout",
            self.timeout_secs,
            1..=120,
            "seconds",
        ));
        problems
    }

    /// The API base actually used: see the description of `base_url`.
    pub fn effective_base_url(&self) -> &str {
        let base = self.base_url.trim_end_matches('/');
        if self.auth_mode == AuthMode::Oauth2 && base == CURRENT_BASE_URL {
            LEGACY_BASE_URL
        } else {
            base
        }
    }

    /// The per-request timeout, in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        u64::from(self.timeout_secs.clamp(1, 120)) * 1000
    }
}

fn is_blank_secret(secret: Option<&Secret>) -> bool {
    secret.is_none_or(|s| s.expose().trim().is_empty())
}

fn is_http_url(url: &str) -> bool {
    let url = url.trim();
    ["http://", "https://"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            && url.len() > scheme.len()
    })
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
        assert_eq!(c.timeout_secs, 10);
        assert_eq!(fields(&c), ["api_key"]);
    }

    #[test]
    fn each_mode_requires_its_credentials() {
        assert!(fields(&config(json!({"api_key": "k"}))).is_empty());
        assert_eq!(fields(&config(json!({"api_key": "  "}))), ["api_key"]);
        assert_eq!(
            fields(&config(json!({"auth_mode": "oauth2", "api_key": "k"}))),
            ["client_id", "client_secret"]
        );
        assert!(fields(&config(json!({
            "auth_mode": "oauth2", "client_id": "id", "client_secret": "s"
        })))
        .is_empty());
    }

    #[test]
    fn urls_must_be_http() {
        let c = config(json!({"api_key": "k", "base_url": "api.insee.fr/api-sirene/3.11"}));
        assert_eq!(fields(&c), ["base_url"]);
        let c = config(json!({"api_key": "k", "base_url": "HTTPS://localhost:8080"}));
        assert!(fields(&c).is_empty());
        let c = config(json!({
            "auth_mode": "oauth2", "client_id": "id", "client_secret": "s", "token_url": "ftp://x"
        }));
        assert_eq!(fields(&c), ["token_url"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_value::<Config>(json!({"apikey": "k"})).is_err());
    }

    #[test]
    fn oauth2_with_the_default_base_uses_the_legacy_gateway() {
        let c = config(json!({"auth_mode": "oauth2", "client_id": "i", "client_secret": "s"}));
        assert_eq!(c.effective_base_url(), LEGACY_BASE_URL);
        let c = config(json!({"api_key": "k", "base_url": "http://127.0.0.1:1/x/"}));
        assert_eq!(c.effective_base_url(), "http://127.0.0.1:1/x");
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
            "OAuth2 client credentials (legacy gateway)"
        );
        assert_eq!(props["timeout_secs"]["minimum"], 1);
        assert_eq!(props["timeout_secs"]["maximum"], 120);
        assert_eq!(props["timeout_secs"]["default"], 10);
        assert_eq!(props["base_url"]["x-order"], 6);
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(
            s["dependencies"]["auth_mode"]["oneOf"][1]["required"],
            json!(["client_id", "client_secret"])
        );
        assert!(!s.to_string().contains("$ref"));
        assert!(s
            .get("required")
            .is_none_or(|r| r.as_array().unwrap().is_empty()));
    }
}
