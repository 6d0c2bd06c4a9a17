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
use std::ops::RangeInclusive;

/// Mindee's API base (API v1), without the product path.
pub const DEFAULT_URL: &str = "https://api.mindee.net/v1";
/// Mindee's API v2 host (the client libraries' `BASE_URL_DEFAULT`); paths start with `/v2/`.
pub const DEFAULT_URL_V2: &str = "https://api-v2.mindee.net";

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
    },
    "api_version": {
        "oneOf": [
            {
                "properties": { "api_version": { "const": "v2" } },
                "required": ["model_id"]
            },
            {
                "properties": { "api_version": { "const": "v1" } }
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

    /// API version
    ///
    /// Mindee's API generation. New Mindee accounts get API v2 keys (app.mindee.com): choose
    /// v2 and give the model ID. v1 (platform.mindee.com, `Token` keys) is kept for accounts
    /// created before V2; an instance saved without this field is a v1 instance.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection", "x-initial" = "v2"))]
    pub api_version: ApiVersion,

    /// Connection URL
    ///
    /// Base URL of Mindee's web service. Leave empty for Mindee's own:
    /// https://api-v2.mindee.net for API v2, https://api.mindee.net/v1 for API v1 (without
    /// the product path). Change it only for a proxy or a test server.
    // The text above is the schema's description, shown as typed: URLs stay bare.
    #[allow(rustdoc::bare_urls)]
    #[serde(default)]
    #[schemars(extend("x-group" = "connection"))]
    pub url: String,

    /// Mindee API key
    ///
    /// The API key of your Mindee account. API v2: the key from app.mindee.com (API keys),
    /// sent as is in the Authorization header. API v1: the key from platform.mindee.com,
    /// sent as `Token …`. Paste the key alone in both cases.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection"))]
    pub token: Option<Secret>,

    /// Model ID (API v2)
    ///
    /// The ID of your expense receipt or financial document model on app.mindee.com (a UUID
    /// such as 94340559-b994-45e6-8b5c-be626027f1b2, shown on the model's page). Required
    /// with API v2; unused with v1.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection"))]
    pub model_id: Option<String>,

    /// Product version (API v1)
    ///
    /// Which version of Mindee's expense receipts model reads the documents with API v1.
    /// Version 5 reads more fields (supplier address, phone and registrations, receipt
    /// number, line items); version 4 is accepted for accounts that still use it. Unused
    /// with API v2, where the model ID chooses the model.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection"))]
    pub product_version: ProductVersion,

    /// `timeout_secs`, see [`Spec`].
    #[serde(flatten)]
    pub timeout: Timeout<Spec>,

    /// `retry_attempts` and `retry_delay_secs`, see [`Spec`].
    #[serde(flatten)]
    pub retry: Retry<Spec>,

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

/// The bounds and texts of the shared configuration blocks.
pub struct Spec;

impl RetrySpec for Spec {
    const ATTEMPTS_FIELD: &'static str = "retry_attempts";
    const ATTEMPTS_DOC: &'static str = "Attempts\n\n\
        How many times a request is sent when Mindee answers that it is overloaded or failed \
        (HTTP 429 and 5xx) or does not answer in time. 1 means no retry.";
    const DELAY_DOC: &'static str = "Delay between attempts (seconds)\n\n\
        How long to wait before sending a request again. A Retry-After header from Mindee \
        takes precedence.";
    const GROUP: &'static str = "connection";
    const DEFAULT_ATTEMPTS: u32 = 3;
    const ATTEMPTS: RangeInclusive<u32> = 1..=5;
    const DEFAULT_DELAY_SECS: u32 = 2;
    const DELAY_SECS: RangeInclusive<u32> = 0..=60;
}

impl TimeoutSpec for Spec {
    const DOC: &'static str = "Timeout (seconds)\n\n\
        How long to wait for Mindee's answer to one request. Reading a receipt usually takes one \
        to five seconds. Keep attempts times timeout under two minutes, the time the host gives \
        one call.";
    const GROUP: &'static str = "connection";
    const DEFAULT_SECS: u32 = 30;
    const SECS: RangeInclusive<u32> = 5..=120;
}

/// Mindee's API generation.
///
/// The serde default (and so the schema's `default`, which the host applies to fields an
/// instance never saved) is v1: instances saved before this field existed are v1
/// instances and must stay so. New instances start at v2 through `x-initial`, the value
/// the host writes into an instance when it creates it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// API v2 (accounts on app.mindee.com)
    #[serde(rename = "v2")]
    V2,
    /// API v1 (older accounts on platform.mindee.com)
    #[default]
    #[serde(rename = "v1")]
    V1,
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

impl Config {
    /// Everything that keeps this configuration from reading receipts, each naming its
    /// field. The switches are not problems: an instance may be saved switched off.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        if self.mindee_enabled {
            if self.token.as_ref().is_none_or(Secret::is_blank) {
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
            if self.erp_password.as_ref().is_none_or(Secret::is_blank) {
                problems.push(PluginError::config(
                    "erp_password",
                    "the password of the ERP technical user is required while Mindee is active",
                ));
            }
        }
        let url = self.url.trim();
        let example = self.default_url();
        if !url.is_empty() && !is_http_url(url) {
            problems.push(PluginError::config(
                "url",
                format!(
                    "the connection URL {url:?} must start with http:// or https://, e.g. \
                     {example}, or be left empty for Mindee's own"
                ),
            ));
        } else if url.contains("/products/") {
            problems.push(PluginError::config(
                "url",
                format!(
                    "the connection URL {url:?} must be the API base only, without the product \
                     path: e.g. {example}, or leave it empty"
                ),
            ));
        } else if self.api_version == ApiVersion::V2 && url.trim_end_matches('/').ends_with("/v1") {
            problems.push(PluginError::config(
                "url",
                format!(
                    "the connection URL {url:?} is an API v1 address but the API version is v2: \
                     leave the URL empty (Mindee's {DEFAULT_URL_V2}) or choose API version v1"
                ),
            ));
        }
        // Like the schema's `api_version` dependency: the model is part of what v2 means,
        // switched on or not.
        if self.api_version == ApiVersion::V2 {
            match self.model_id.as_deref().map(str::trim) {
                None | Some("") => problems.push(PluginError::config(
                    "model_id",
                    "a model ID is required with API v2: copy your expense receipt or financial \
                     document model's ID from app.mindee.com (e.g. \
                     94340559-b994-45e6-8b5c-be626027f1b2)",
                )),
                Some(id) if !is_uuid(id) => problems.push(PluginError::config(
                    "model_id",
                    format!(
                        "the model ID {id:?} is not a UUID (8-4-4-4-12 hexadecimal digits, e.g. \
                         94340559-b994-45e6-8b5c-be626027f1b2): copy it from the model's page \
                         on app.mindee.com"
                    ),
                )),
                Some(_) => {}
            }
            if self
                .token
                .as_ref()
                .is_some_and(|t| t.expose().trim_start().starts_with("Token "))
            {
                problems.push(PluginError::config(
                    "token",
                    "API v2 keys are sent without the `Token ` prefix of API v1: paste the key \
                     alone, or choose API version v1 for a platform.mindee.com key",
                ));
            }
        }
        problems.extend(self.timeout.problems());
        problems.extend(self.retry.problems());
        problems
    }

    /// Mindee's own base URL for the configured API version.
    pub fn default_url(&self) -> &'static str {
        match self.api_version {
            ApiVersion::V1 => DEFAULT_URL,
            ApiVersion::V2 => DEFAULT_URL_V2,
        }
    }

    /// The API base without a trailing slash: the configured URL, or Mindee's own.
    pub fn base_url(&self) -> &str {
        match self.url.trim().trim_end_matches('/') {
            "" => self.default_url(),
            url => url,
        }
    }

    /// The API v2 model ID, trimmed; empty when unset (the caller checked
    /// [`Config::problems`]).
    pub fn model_id(&self) -> &str {
        self.model_id.as_deref().map(str::trim).unwrap_or("")
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
        self.timeout.ms()
    }

    /// Attempts and delay for requests that may be retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry.policy()
    }
}

/// `8-4-4-4-12` hexadecimal digits, the form of Mindee's model IDs.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_plugin_api::config_schema;
    use serde_json::json;
    use std::time::Duration;

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
        assert_eq!(
            c.api_version,
            ApiVersion::V1,
            "a saved v1 instance stays v1"
        );
        assert_eq!(c.url, "");
        assert_eq!(c.base_url(), DEFAULT_URL);
        assert_eq!(c.product_version, ProductVersion::V5);
        assert_eq!(c.timeout.secs(), 30);
        assert_eq!(c.retry.attempts(), 3);
        assert_eq!(c.retry.delay_secs(), 2);
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
    fn v2_needs_a_model_id_and_a_bare_key() {
        let mut v = complete();
        v["api_version"] = json!("v2");
        assert_eq!(fields(&config(v.clone())), ["model_id"]);
        v["model_id"] = json!("my-model");
        let problems = config(v.clone()).problems();
        assert!(problems[0].message.contains("not a UUID"), "{:?}", problems);
        v["model_id"] = json!(" 94340559-b994-45e6-8b5c-be626027f1b2 ");
        let c = config(v.clone());
        assert!(fields(&c).is_empty());
        assert_eq!(c.model_id(), "94340559-b994-45e6-8b5c-be626027f1b2");
        assert_eq!(c.base_url(), DEFAULT_URL_V2);
        v["token"] = json!("Token abc");
        assert_eq!(fields(&config(v.clone())), ["token"]);
        v["token"] = json!("abc");
        v["url"] = json!("https://api.mindee.net/v1");
        assert_eq!(fields(&config(v.clone())), ["url"]);
        v["url"] = json!("http://127.0.0.1:9/");
        assert_eq!(config(v.clone()).base_url(), "http://127.0.0.1:9");
        v["mindee_enabled"] = json!(false);
        v["model_id"] = json!(null);
        assert_eq!(fields(&config(v.clone())), ["model_id"]);
        v["api_version"] = json!("v1");
        assert!(fields(&config(v)).is_empty());
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
                "api_version",
                "url",
                "token",
                "model_id",
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
        assert_eq!(props["url"]["default"], "");
        assert_eq!(props["api_version"]["default"], "v1");
        assert_eq!(props["api_version"]["x-initial"], "v2");
        assert_eq!(props["api_version"]["oneOf"][0]["const"], "v2");
        let rules = passerelle_plugin_api::config::conditionals(&s);
        let required = |tag: &str, value: serde_json::Value| {
            rules
                .iter()
                .find(|r| r.tag == tag && r.value == value)
                .map(|r| r.required.clone())
                .unwrap_or_default()
        };
        assert_eq!(required("api_version", json!("v2")), ["model_id"]);
        assert_eq!(props["product_version"]["default"], "v5");
        assert_eq!(props["product_version"]["oneOf"][0]["const"], "v5");
        assert_eq!(
            props["product_version"]["oneOf"][0]["title"],
            "Expense receipts v5 (recommended)"
        );
        assert_eq!(props["product_version"]["oneOf"][1]["const"], "v4");
        assert_eq!(props["retry_delay_secs"]["minimum"], 0);
        assert_eq!(
            required("mindee_enabled", json!(true)),
            ["token", "erp_user", "erp_password"]
        );
        assert_eq!(s["additionalProperties"], false);
        assert!(s.get("required").is_none(), "{s:#}");
        assert!(!s.to_string().contains("$ref"));
    }
}
