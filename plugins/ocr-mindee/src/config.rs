//! The configuration of one Mindee instance, and the rules the schema alone cannot enforce.
//!
//! The fields are those of the ERP's former OCR settings (two switches, the web service URL,
//! the Mindee token, the ERP technical user and its password) plus what the API needs
//! (product version, timeout, retries). The schema is generated from this struct and
//! rendered as a form: doc comments are titles and descriptions, `x-group` sorts fields
//! into sections, and the `dependencies` block makes the credentials required only while
//! Mindee is active. [`Config::problems`] repeats those rules in code (blank values
//! included, which a schema's `required` lets through) so that a call with an incomplete
//! configuration fails with a message naming the field before any request leaves the host.

use passerelle_plugin_api::prelude::*;
use std::time::Duration;

/// Mindee's API base (API v1), without the product path.
pub const DEFAULT_URL: &str = "https://api.mindee.net/v1";

/// Settings of a Mindee expense receipts instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("dependencies" = {
    "mindee_enabled": {
        "oneOf": [
            {
                "properties": { "mindee_enabled": { "const": true } },
                "required": ["token", "erp_user", "erp_password"]
            },
            {
                "properties": { "mindee_enabled": { "const": false } }
            }
        ]
    }
}))]
pub struct Config {
    /// OCR active
    ///
    /// Global switch of the OCR capability. When off, the expense portal and the mobile app
    /// do not offer to read receipts and every OCR request is refused.
    #[serde(default = "yes")]
    #[schemars(extend("x-group" = "general"))]
    pub ocr_enabled: bool,

    /// Mindee active
    ///
    /// Whether Mindee reads the receipts sent from the expense portal and the mobile app.
    /// When off, OCR requests to this instance are refused and the credentials below are
    /// not required.
    #[serde(default = "yes")]
    #[schemars(extend("x-group" = "general"))]
    pub mindee_enabled: bool,

    /// Connection URL
    ///
    /// Base URL of Mindee's web service (API v1), without the product path. Change it only
    /// for a proxy or a test server.
    #[serde(default = "default_url")]
    #[schemars(extend("x-group" = "connection"))]
    pub url: String,

    /// Mindee token
    ///
    /// The API key of your Mindee account (platform.mindee.com, API keys), sent in the
    /// Authorization header as `Token …`.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection"))]
    pub token: Option<Secret>,

    /// Product version
    ///
    /// Which version of Mindee's expense receipts model reads the documents. Version 5
    /// reads more fields (supplier address, phone and registrations, receipt number, line
    /// items); version 4 is accepted for accounts that still use it.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection"))]
    pub product_version: ProductVersion,

    /// Timeout (seconds)
    ///
    /// How long to wait for Mindee's answer to one request. Reading a receipt usually takes
    /// one to five seconds. Keep attempts times timeout under two minutes, the time the host
    /// gives one call.
    #[serde(default = "default_timeout_secs")]
    #[schemars(range(min = 5, max = 120))]
    #[schemars(extend("x-group" = "connection"))]
    pub timeout_secs: u32,

    /// Attempts
    ///
    /// How many times a request is sent when Mindee answers that it is overloaded or failed
    /// (HTTP 429 and 5xx) or does not answer in time. 1 means no retry.
    #[serde(default = "default_retry_attempts")]
    #[schemars(range(min = 1, max = 5))]
    #[schemars(extend("x-group" = "connection"))]
    pub retry_attempts: u32,

    /// Delay between attempts (seconds)
    ///
    /// How long to wait before sending a request again. A Retry-After header from Mindee
    /// takes precedence.
    #[serde(default = "default_retry_delay_secs")]
    #[schemars(range(min = 0, max = 60))]
    #[schemars(extend("x-group" = "connection"))]
    pub retry_delay_secs: u32,

    /// ERP technical user
    ///
    /// The ERP user recorded on every expense created through OCR, so that the ERP's
    /// history tells OCR entries from manual ones. Returned with each reading as
    /// `recorded_by`.
    #[serde(default)]
    #[schemars(extend("x-group" = "erp"))]
    pub erp_user: Option<String>,

    /// ERP technical user's password
    ///
    /// The password of the ERP technical user, kept encrypted for the ERP side that creates
    /// the expenses. It is never sent to Mindee nor shown.
    #[serde(default)]
    #[schemars(extend("x-group" = "erp"))]
    pub erp_password: Option<Secret>,
}

/// The version of Mindee's expense receipts product.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProductVersion {
    /// Expense receipts v5 (recommended)
    #[default]
    #[serde(rename = "v5")]
    V5,
    /// Expense receipts v4 (older accounts)
    #[serde(rename = "v4")]
    V4,
}

impl ProductVersion {
    /// The version as it appears in the product URL (`v5`).
    pub fn path(self) -> &'static str {
        match self {
            ProductVersion::V5 => "v5",
            ProductVersion::V4 => "v4",
        }
    }
}

fn yes() -> bool {
    true
}

fn default_url() -> String {
    DEFAULT_URL.to_owned()
}

fn default_timeout_secs() -> u32 {
    30
}

fn default_retry_attempts() -> u32 {
    3
}

fn default_retry_delay_secs() -> u32 {
    2
}

impl Config {
    /// Everything that keeps this configuration from reading receipts, each naming its
    /// field. The switches are not problems: an instance may be saved switched off.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        if self.mindee_enabled {
            if is_blank_secret(self.token.as_ref()) {
                problems.push(PluginError::config(
                    "token",
                    "a Mindee token is required while Mindee is active: copy an API key from \
                     platform.mindee.com (API keys) and paste it here",
                ));
            }
            if self.erp_user.as_deref().is_none_or(|u| u.trim().is_empty()) {
                problems.push(PluginError::config(
                    "erp_user",
                    "the ERP technical user is required while Mindee is active: it is recorded \
                     on every expense created through OCR",
                ));
            }
            if is_blank_secret(self.erp_password.as_ref()) {
                problems.push(PluginError::config(
                    "erp_password",
                    "the password of the ERP technical user is required while Mindee is active",
                ));
            }
        }
        if !is_http_url(&self.url) {
            problems.push(PluginError::config(
                "url",
                format!(
                    "the connection URL {:?} must start with http:// or https://, e.g. {DEFAULT_URL}",
                    self.url
                ),
            ));
        } else if self.url.contains("/products/") {
            problems.push(PluginError::config(
                "url",
                format!(
                    "the connection URL {:?} must be the API base only, without the product \
                     path: e.g. {DEFAULT_URL}",
                    self.url
                ),
            ));
        }
        problems.extend(check_range(
            "timeout_secs",
            "the timeout",
            self.timeout_secs,
            5..=120,
            "seconds",
        ));
        problems.extend(check_range(
            "retry_attempts",
            "the number of attempts",
            self.retry_attempts,
            1..=5,
            "",
        ));
        problems.extend(check_range(
            "retry_delay_secs",
            "the delay between attempts",
            self.retry_delay_secs,
            0..=60,
            "seconds",
        ));
        problems
    }

    /// The API base without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.url.trim().trim_end_matches('/')
    }

    /// The token, trimmed; empty when unset (the caller checked [`Config::problems`]).
    pub fn token(&self) -> &str {
        self.token.as_ref().map(|s| s.expose().trim()).unwrap_or("")
    }

    /// The ERP technical user, trimmed.
    pub fn erp_user(&self) -> &str {
        self.erp_user.as_deref().map(str::trim).unwrap_or("")
    }

    /// The per-request timeout, in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        u64::from(self.timeout_secs.clamp(5, 120)) * 1000
    }

    /// Attempts and delay for requests that may be retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(
            self.retry_attempts.clamp(1, 5),
            Duration::from_secs(u64::from(self.retry_delay_secs.min(60))),
        )
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

    fn complete() -> serde_json::Value {
        json!({"token": "t", "erp_user": "svc-ocr", "erp_password": "p"})
    }

    #[test]
    fn defaults() {
        let c = config(json!({}));
        assert!(c.ocr_enabled);
        assert!(c.mindee_enabled);
        assert_eq!(c.url, DEFAULT_URL);
        assert_eq!(c.product_version, ProductVersion::V5);
        assert_eq!(c.timeout_secs, 30);
        assert_eq!(c.retry_attempts, 3);
        assert_eq!(c.retry_delay_secs, 2);
        assert_eq!(fields(&c), ["token", "erp_user", "erp_password"]);
        assert!(fields(&config(complete())).is_empty());
    }

    #[test]
    fn credentials_are_only_required_while_mindee_is_active() {
        assert!(fields(&config(json!({"mindee_enabled": false}))).is_empty());
        assert_eq!(
            fields(&config(
                json!({"token": " ", "erp_user": "", "erp_password": "p"})
            )),
            ["token", "erp_user"]
        );
    }

    #[test]
    fn url_and_ranges_are_checked() {
        let mut v = complete();
        v["url"] = json!("ftp://api.mindee.net");
        assert_eq!(fields(&config(v.clone())), ["url"]);
        v["url"] = json!("https://api.mindee.net/v1/products/mindee/expense_receipts/v5/predict");
        assert_eq!(fields(&config(v.clone())), ["url"]);
        v["url"] = json!("https://api.mindee.net/v1/");
        assert!(fields(&config(v.clone())).is_empty());
        assert_eq!(config(v.clone()).base_url(), DEFAULT_URL);
        v["timeout_secs"] = json!(2);
        v["retry_attempts"] = json!(0);
        v["retry_delay_secs"] = json!(61);
        assert_eq!(
            fields(&config(v)),
            ["timeout_secs", "retry_attempts", "retry_delay_secs"]
        );
    }

    #[test]
    fn unknown_fields_and_versions_are_refused() {
        assert!(serde_json::from_value::<Config>(json!({"colour": "blue"})).is_err());
        assert!(serde_json::from_value::<Config>(json!({"product_version": "v3"})).is_err());
        assert_eq!(
            config(json!({"product_version": "v4"})).product_version,
            ProductVersion::V4
        );
    }

    #[test]
    fn retry_policy_follows_the_fields_and_allows_no_delay() {
        let mut v = complete();
        v["retry_attempts"] = json!(4);
        v["retry_delay_secs"] = json!(0);
        let p = config(v).retry_policy();
        assert_eq!(p.attempts, 4);
        assert_eq!(p.delay, Duration::ZERO);
    }

    #[test]
    fn schema_follows_the_form_conventions() {
        let s = config_schema::<Config>();
        let props = s["properties"].as_object().unwrap();
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "ocr_enabled",
                "mindee_enabled",
                "url",
                "token",
                "product_version",
                "timeout_secs",
                "retry_attempts",
                "retry_delay_secs",
                "erp_user",
                "erp_password"
            ]
        );
        for (name, prop) in props {
            assert!(prop["title"].is_string(), "{name} has no title");
            assert!(prop["description"].is_string(), "{name} has no description");
            assert!(prop["x-group"].is_string(), "{name} has no group");
        }
        for secret in ["token", "erp_password"] {
            assert_eq!(props[secret]["writeOnly"], true);
            assert_eq!(props[secret]["format"], "password");
        }
        assert_eq!(props["ocr_enabled"]["title"], "OCR active");
        assert_eq!(props["url"]["default"], DEFAULT_URL);
        assert_eq!(props["product_version"]["default"], "v5");
        assert_eq!(props["product_version"]["oneOf"][0]["const"], "v5");
        assert_eq!(
            props["product_version"]["oneOf"][0]["title"],
            "Expense receipts v5 (recommended)"
        );
        assert_eq!(props["product_version"]["oneOf"][1]["const"], "v4");
        assert_eq!(props["retry_delay_secs"]["minimum"], 0);
        assert_eq!(
            s["dependencies"]["mindee_enabled"]["oneOf"][0]["required"],
            json!(["token", "erp_user", "erp_password"])
        );
        assert_eq!(s["additionalProperties"], false);
        assert!(s.get("required").is_none(), "{s:#}");
        assert!(!s.to_string().contains("$ref"));
    }
}
