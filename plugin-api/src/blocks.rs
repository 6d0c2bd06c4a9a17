//! Configuration blocks that every plugin would otherwise write again: the timeout of a
//! request, the attempts and delay of its retries, and OAuth2 client credentials.
//!
//! A block is a struct a plugin flattens into its configuration (`#[serde(flatten)]`), so the
//! saved instance and the published schema keep the plugin's flat field names. Its bounds are
//! written once, in a *spec* the plugin implements on a marker type, and serve the schema
//! (`minimum`, `maximum`, `default`), the validation (`problems`, which names the field) and the
//! value used at run time (clamped to the same bounds). Before, each plugin wrote them three
//! times, and they drifted (a schema without bounds next to a check with them).
//!
//! The texts stay the plugin's own: a spec gives the doc text of each field (title, blank line,
//! description, as a doc comment would), its `x-group`, and optionally its `x-order`. The
//! French translations stay in the plugin's `locales/fr.ftl`, keyed by field name as before.
//!
//! ```ignore
//! #[derive(Debug, Clone, Copy)]
//! pub struct Sirene;
//! impl TimeoutSpec for Sirene {
//!     const DOC: &'static str = "Timeout (seconds)\n\nHow long to wait for each answer from INSEE before giving up.";
//!     const GROUP: &'static str = "connection";
//!     const DEFAULT_SECS: u32 = 10;
//!     const SECS: RangeInclusive<u32> = 1..=120;
//! }
//! // in the configuration struct:
//! #[serde(flatten)]
//! pub timeout: Timeout<Sirene>,
//! ```
//!
//! Errors in a block's values name the field ("invalid value for field `timeout_secs`: …"):
//! serde reads a flattened block from a buffer, out of reach of the path tracking that names
//! the fields of the configuration itself.

use crate::config::{check_range, Secret};
use crate::error::PluginError;
use crate::oauth2::OAuth2Client;
use crate::retry::RetryPolicy;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::time::Duration;

/// How a plugin presents and bounds its request timeout (`timeout_secs`).
pub trait TimeoutSpec: 'static {
    /// Title, blank line, description, as the doc comment of the field would say them.
    const DOC: &'static str;
    /// The form section (`x-group`).
    const GROUP: &'static str;
    /// The field's `x-order`, for configurations that number their fields; otherwise the
    /// position of the flattened block.
    const ORDER: Option<u32> = None;
    const DEFAULT_SECS: u32;
    /// Accepted timeouts, in seconds.
    const SECS: RangeInclusive<u32>;
}

/// The timeout of each request, in seconds (`timeout_secs`).
pub struct Timeout<S> {
    secs: u32,
    spec: PhantomData<fn() -> S>,
}

impl<S: TimeoutSpec> Timeout<S> {
    /// The name of the field in the configuration.
    pub const FIELD: &'static str = "timeout_secs";

    pub fn new(secs: u32) -> Self {
        Timeout {
            secs,
            spec: PhantomData,
        }
    }

    /// The configured value, as saved.
    pub fn secs(&self) -> u32 {
        self.secs
    }

    /// The timeout to use, within the spec's bounds.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(u64::from(clamp(self.secs, &S::SECS)))
    }

    /// The timeout to use, in milliseconds (what [`crate::HttpRequest::timeout_ms`] takes).
    pub fn ms(&self) -> u64 {
        u64::from(clamp(self.secs, &S::SECS)) * 1000
    }

    /// The timeout out of bounds, naming `timeout_secs`.
    pub fn problems(&self) -> Option<PluginError> {
        check_range(Self::FIELD, "the timeout", self.secs, S::SECS, "seconds")
    }
}

impl<S: TimeoutSpec> Default for Timeout<S> {
    fn default() -> Self {
        Self::new(S::DEFAULT_SECS)
    }
}

impl<S> Clone for Timeout<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Timeout<S> {}

impl<S> PartialEq for Timeout<S> {
    fn eq(&self, other: &Self) -> bool {
        self.secs == other.secs
    }
}

impl<S> fmt::Debug for Timeout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("timeout_secs", &self.secs)
            .finish()
    }
}

impl<'de, S: TimeoutSpec> Deserialize<'de> for Timeout<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FIELDS: &[&str] = &["timeout_secs"];
        let [secs] = d.deserialize_struct("Timeout", FIELDS, Fields::<u32, 1>::new(FIELDS))?;
        Ok(Self::new(secs.unwrap_or(S::DEFAULT_SECS)))
    }
}

impl<S: TimeoutSpec> JsonSchema for Timeout<S> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Timeout".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        block_schema([(
            Self::FIELD,
            number_property(S::DOC, S::GROUP, S::ORDER, S::DEFAULT_SECS, &S::SECS),
        )])
    }
}

/// How a plugin presents and bounds its retries: the number of attempts and the delay between
/// them (`retry_delay_secs`).
pub trait RetrySpec: 'static {
    /// The name of the attempts field (`attempts` unless the plugin saved it otherwise).
    const ATTEMPTS_FIELD: &'static str = "attempts";
    /// Title, blank line, description of the attempts field.
    const ATTEMPTS_DOC: &'static str;
    /// Title, blank line, description of the delay field (a title alone is fine).
    const DELAY_DOC: &'static str;
    /// The form section (`x-group`) of both fields.
    const GROUP: &'static str;
    /// The `x-order` of the attempts field (the delay follows it), for configurations that
    /// number their fields.
    const ORDER: Option<u32> = None;
    const DEFAULT_ATTEMPTS: u32;
    /// Accepted numbers of attempts (1 means no retry).
    const ATTEMPTS: RangeInclusive<u32>;
    const DEFAULT_DELAY_SECS: u32;
    /// Accepted delays, in seconds.
    const DELAY_SECS: RangeInclusive<u32> = 0..=60;
    /// The longest a call may spend waiting between its attempts, when the plugin bounds it
    /// (the host gives a call a limited time).
    const MAX_TOTAL_WAIT_SECS: Option<u32> = None;
}

/// Attempts and delay of retried requests; [`Retry::policy`] is the [`RetryPolicy`] they make.
pub struct Retry<S> {
    attempts: u32,
    delay_secs: u32,
    spec: PhantomData<fn() -> S>,
}

impl<S: RetrySpec> Retry<S> {
    /// The name of the delay field in the configuration.
    pub const DELAY_FIELD: &'static str = "retry_delay_secs";

    pub fn new(attempts: u32, delay_secs: u32) -> Self {
        Retry {
            attempts,
            delay_secs,
            spec: PhantomData,
        }
    }

    /// The configured number of attempts, as saved.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The configured delay, as saved.
    pub fn delay_secs(&self) -> u32 {
        self.delay_secs
    }

    /// The policy to use, within the spec's bounds.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy::new(
            clamp(self.attempts, &S::ATTEMPTS),
            Duration::from_secs(u64::from(clamp(self.delay_secs, &S::DELAY_SECS))),
        )
    }

    /// Attempts or delay out of bounds, and attempts that together wait longer than the spec
    /// allows; each names its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        problems.extend(check_range(
            S::ATTEMPTS_FIELD,
            "the number of attempts",
            self.attempts,
            S::ATTEMPTS,
            "",
        ));
        let delay = check_range(
            Self::DELAY_FIELD,
            "the delay between attempts",
            self.delay_secs,
            S::DELAY_SECS,
            "seconds",
        );
        let delay_ok = delay.is_none();
        problems.extend(delay);
        let total = self
            .attempts
            .saturating_sub(1)
            .saturating_mul(self.delay_secs);
        match S::MAX_TOTAL_WAIT_SECS {
            Some(max) if delay_ok && total > max => problems.push(PluginError::config(
                Self::DELAY_FIELD,
                format!(
                    "{} attempts {} s apart wait {total} s in all, more than the {max} s a call \
                     may spend waiting: lower the delay or the number of attempts",
                    self.attempts, self.delay_secs
                ),
            )),
            _ => {}
        }
        problems
    }
}

impl<S: RetrySpec> Default for Retry<S> {
    fn default() -> Self {
        Self::new(S::DEFAULT_ATTEMPTS, S::DEFAULT_DELAY_SECS)
    }
}

impl<S> Clone for Retry<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Retry<S> {}

impl<S> PartialEq for Retry<S> {
    fn eq(&self, other: &Self) -> bool {
        (self.attempts, self.delay_secs) == (other.attempts, other.delay_secs)
    }
}

impl<S> fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("attempts", &self.attempts)
            .field("retry_delay_secs", &self.delay_secs)
            .finish()
    }
}

/// The field names a retry block reads, per spec (serde wants them `'static`).
trait RetryFields {
    const FIELDS: &'static [&'static str];
}

impl<S: RetrySpec> RetryFields for S {
    const FIELDS: &'static [&'static str] = &[S::ATTEMPTS_FIELD, "retry_delay_secs"];
}

impl<'de, S: RetrySpec> Deserialize<'de> for Retry<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = <S as RetryFields>::FIELDS;
        let [attempts, delay] =
            d.deserialize_struct("Retry", fields, Fields::<u32, 2>::new(fields))?;
        Ok(Self::new(
            attempts.unwrap_or(S::DEFAULT_ATTEMPTS),
            delay.unwrap_or(S::DEFAULT_DELAY_SECS),
        ))
    }
}

impl<S: RetrySpec> JsonSchema for Retry<S> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Retry".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        block_schema([
            (
                S::ATTEMPTS_FIELD,
                number_property(
                    S::ATTEMPTS_DOC,
                    S::GROUP,
                    S::ORDER,
                    S::DEFAULT_ATTEMPTS,
                    &S::ATTEMPTS,
                ),
            ),
            (
                Self::DELAY_FIELD,
                number_property(
                    S::DELAY_DOC,
                    S::GROUP,
                    S::ORDER.map(|o| o + 1),
                    S::DEFAULT_DELAY_SECS,
                    &S::DELAY_SECS,
                ),
            ),
        ])
    }
}

/// How a plugin presents its OAuth2 client credentials (`client_id`, `client_secret`), both
/// required: a configuration without them is refused when it is read, a blank one by
/// [`OAuth2Credentials::problems`].
pub trait CredentialsSpec: 'static {
    /// Title, blank line, description of `client_id`.
    const CLIENT_ID_DOC: &'static str;
    /// Title, blank line, description of `client_secret`.
    const CLIENT_SECRET_DOC: &'static str;
    /// The form section (`x-group`) of both fields.
    const GROUP: &'static str;
    /// The `x-order` of `client_id` (the secret follows it), for configurations that number
    /// their fields.
    const ORDER: Option<u32> = None;
    /// Whose credentials, in messages: "the {LABEL} id is empty".
    const LABEL: &'static str = "client";
    /// What to do about a blank client id.
    const CLIENT_ID_ADVICE: &'static str;
    /// What to do about a blank client secret.
    const CLIENT_SECRET_ADVICE: &'static str;
}

/// OAuth2 client credentials; [`OAuth2Credentials::client`] is the [`OAuth2Client`] they make.
pub struct OAuth2Credentials<S> {
    client_id: String,
    client_secret: Secret,
    spec: PhantomData<fn() -> S>,
}

impl<S: CredentialsSpec> OAuth2Credentials<S> {
    pub fn new(client_id: impl Into<String>, client_secret: Secret) -> Self {
        OAuth2Credentials {
            client_id: client_id.into(),
            client_secret,
            spec: PhantomData,
        }
    }

    /// The client id, without surrounding spaces (pasted values often have some).
    pub fn client_id(&self) -> &str {
        self.client_id.trim()
    }

    pub fn client_secret(&self) -> &Secret {
        &self.client_secret
    }

    /// A client-credentials client of `token_url` (trimmed) with these credentials.
    pub fn client(&self, token_url: &str) -> OAuth2Client {
        OAuth2Client::new(
            token_url.trim(),
            self.client_id(),
            self.client_secret.expose(),
        )
    }

    /// Blank credentials, each naming its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        if self.client_id.trim().is_empty() {
            problems.push(PluginError::config(
                "client_id",
                format!("the {} id is empty: {}", S::LABEL, S::CLIENT_ID_ADVICE),
            ));
        }
        if self.client_secret.is_blank() {
            problems.push(PluginError::config(
                "client_secret",
                format!(
                    "the {} secret is empty: {}",
                    S::LABEL,
                    S::CLIENT_SECRET_ADVICE
                ),
            ));
        }
        problems
    }
}

impl<S> Clone for OAuth2Credentials<S> {
    fn clone(&self) -> Self {
        OAuth2Credentials {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            spec: PhantomData,
        }
    }
}

impl<S> fmt::Debug for OAuth2Credentials<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish()
    }
}

impl<'de, S: CredentialsSpec> Deserialize<'de> for OAuth2Credentials<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FIELDS: &[&str] = &["client_id", "client_secret"];
        let [id, secret] = d.deserialize_struct(
            "OAuth2Credentials",
            FIELDS,
            Fields::<String, 2>::new(FIELDS),
        )?;
        let id = id.ok_or_else(|| D::Error::missing_field("client_id"))?;
        let secret = secret.ok_or_else(|| D::Error::missing_field("client_secret"))?;
        Ok(Self::new(id, Secret::new(secret)))
    }
}

impl<S: CredentialsSpec> JsonSchema for OAuth2Credentials<S> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "OAuth2Credentials".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // As derive writes a documented `String` and `Secret` field, keys in the same order.
        let mut id =
            json!({ "type": "string", "description": S::CLIENT_ID_DOC, "x-group": S::GROUP });
        let mut secret = json!({
            "type": "string",
            "format": "password",
            "writeOnly": true,
            "description": S::CLIENT_SECRET_DOC,
            "x-group": S::GROUP,
        });
        if let Some(order) = S::ORDER {
            id["x-order"] = Value::from(order);
            secret["x-order"] = Value::from(order + 1);
        }
        let mut schema = block_schema([("client_id", id), ("client_secret", secret)]);
        schema.insert("required".into(), json!(["client_id", "client_secret"]));
        schema
    }
}

fn clamp(value: u32, bounds: &RangeInclusive<u32>) -> u32 {
    value.clamp(*bounds.start(), *bounds.end())
}

/// An object schema with these properties, none required (every field has a default).
fn block_schema<const N: usize>(properties: [(&str, Value); N]) -> Schema {
    let properties: Map<String, Value> = properties
        .into_iter()
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect();
    schemars::json_schema!({ "type": "object", "properties": properties })
}

/// A bounded integer field, written as `#[derive(JsonSchema)]` writes a documented `u32` field
/// with `range`, `default` and `x-` keywords, keys in the same order, so that
/// [`crate::config_schema`] (which splits the title off the doc text and turns the `format`
/// into bounds) publishes the same document, byte for byte, as for a field of the plugin.
fn number_property(
    doc: &str,
    group: &str,
    order: Option<u32>,
    default: u32,
    bounds: &RangeInclusive<u32>,
) -> Value {
    let mut property = json!({
        "type": "integer",
        "format": "uint32",
        "minimum": bounds.start(),
        "description": doc,
        "maximum": bounds.end(),
        "default": default,
        "x-group": group,
    });
    if let Some(order) = order {
        property["x-order"] = Value::from(order);
    }
    property
}

/// Reads the fields `names` of a map (a flattened block gets only those), each as a `T`,
/// each absent one as `None`. An error names its field, since the path tracking of the
/// configuration does not reach inside a flattened block.
struct Fields<T, const N: usize>(&'static [&'static str], PhantomData<T>);

impl<T, const N: usize> Fields<T, N> {
    fn new(names: &'static [&'static str]) -> Self {
        Fields(names, PhantomData)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Fields<T, N> {
    type Value = [Option<T>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with the fields {}", self.0.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values: [Option<T>; N] = std::array::from_fn(|_| None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let Some(index) = self.0.iter().position(|name| *name == key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let name = self.0[index];
            if values[index].is_some() {
                return Err(A::Error::duplicate_field(name));
            }
            let value = map
                .next_value::<T>()
                .map_err(|e| A::Error::custom(format!("invalid value for field `{name}`: {e}")))?;
            values[index] = Some(value);
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::config_schema;

    struct Demo;
    impl TimeoutSpec for Demo {
        const DOC: &'static str = "Timeout (seconds)\n\nHow long to wait for\nthe demo.";
        const GROUP: &'static str = "connection";
        const DEFAULT_SECS: u32 = 30;
        const SECS: RangeInclusive<u32> = 5..=120;
    }
    impl RetrySpec for Demo {
        const ATTEMPTS_FIELD: &'static str = "retry_attempts";
        const ATTEMPTS_DOC: &'static str = "Attempts\n\nHow many times.";
        const DELAY_DOC: &'static str = "Delay between attempts (seconds)";
        const GROUP: &'static str = "retries";
        const ORDER: Option<u32> = Some(21);
        const DEFAULT_ATTEMPTS: u32 = 3;
        const ATTEMPTS: RangeInclusive<u32> = 1..=10;
        const DEFAULT_DELAY_SECS: u32 = 10;
        const MAX_TOTAL_WAIT_SECS: Option<u32> = Some(100);
    }

    impl CredentialsSpec for Demo {
        const CLIENT_ID_DOC: &'static str = "Client id\n\nThe id.";
        const CLIENT_SECRET_DOC: &'static str = "Client secret\n\nThe secret.";
        const GROUP: &'static str = "auth";
        const LABEL: &'static str = "PISTE client";
        const CLIENT_ID_ADVICE: &'static str = "copy it from PISTE";
        const CLIENT_SECRET_ADVICE: &'static str = "copy it from PISTE too";
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct WithCredentials {
        #[serde(flatten)]
        credentials: OAuth2Credentials<Demo>,
        /// Token URL
        token_url: String,
    }

    #[test]
    fn credentials_are_required_trimmed_secret_and_checked_for_blanks() {
        let c: WithCredentials = serde_json::from_value(
            json!({"client_id": " app ", "client_secret": "canary", "token_url": "https://t"}),
        )
        .unwrap();
        assert_eq!(c.credentials.client_id(), "app");
        assert!(!format!("{c:?}").contains("canary"));
        assert!(c.credentials.problems().is_empty());
        let e = serde_json::from_value::<WithCredentials>(
            json!({"client_id": "app", "token_url": "https://t"}),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("missing field `client_secret`"),
            "{e}"
        );
        let blank = OAuth2Credentials::<Demo>::new(" ", Secret::new(""));
        let problems = blank.problems();
        assert_eq!(problems[0].field.as_deref(), Some("client_id"));
        assert_eq!(
            problems[0].message,
            "the PISTE client id is empty: copy it from PISTE"
        );
        assert_eq!(problems[1].field.as_deref(), Some("client_secret"));

        let s = config_schema::<WithCredentials>();
        assert_eq!(
            s["required"],
            json!(["client_id", "client_secret", "token_url"])
        );
        let secret = &s["properties"]["client_secret"];
        assert_eq!(
            (&secret["writeOnly"], &secret["format"]),
            (&json!(true), &json!("password"))
        );
        assert_eq!(secret["title"], "Client secret");
        assert_eq!(s["properties"]["client_id"]["x-order"], 0);
        assert_eq!(s["properties"]["token_url"]["x-order"], 2);
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Config {
        /// Name
        name: String,
        #[serde(flatten)]
        retry: Retry<Demo>,
        #[serde(flatten)]
        timeout: Timeout<Demo>,
        /// Last
        #[serde(default)]
        last: bool,
    }

    fn read(value: Value) -> Result<Config, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn flattened_blocks_read_their_fields_and_default_the_rest() {
        let c = read(json!({"name": "n", "retry_attempts": 5, "timeout_secs": 60})).unwrap();
        assert_eq!((c.retry.attempts(), c.retry.delay_secs()), (5, 10));
        assert_eq!(c.timeout.secs(), 60);
        assert_eq!(c.timeout.ms(), 60_000);
        let c = read(json!({"name": "n"})).unwrap();
        assert_eq!(c.retry, Retry::default());
        assert_eq!(c.timeout, Timeout::default());
        assert_eq!(c.timeout.secs(), 30);
    }

    #[test]
    fn unknown_fields_are_still_refused_by_the_configuration() {
        let e = read(json!({"name": "n", "attempts": 5})).unwrap_err();
        assert!(e.to_string().contains("unknown field `attempts`"), "{e}");
    }

    #[test]
    fn a_bad_value_names_its_field() {
        let e = read(json!({"name": "n", "timeout_secs": "soon"})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid value for field `timeout_secs`: invalid type: string"),
            "{e}"
        );
        let e = read(json!({"name": "n", "retry_delay_secs": -1})).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid value for field `retry_delay_secs`"),
            "{e}"
        );
    }

    #[test]
    fn the_schema_keeps_flat_names_in_declaration_order_with_the_spec_bounds() {
        let s = config_schema::<Config>();
        let props = s["properties"].as_object().unwrap();
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "name",
                "retry_attempts",
                "retry_delay_secs",
                "timeout_secs",
                "last"
            ]
        );
        let t = &props["timeout_secs"];
        assert_eq!(t["title"], "Timeout (seconds)");
        assert_eq!(t["description"], "How long to wait for the demo.");
        assert_eq!((&t["minimum"], &t["maximum"]), (&json!(5), &json!(120)));
        assert_eq!(t["default"], 30);
        assert_eq!(t["x-group"], "connection");
        assert_eq!(t["x-order"], 3);
        let d = &props["retry_delay_secs"];
        assert_eq!(d["title"], "Delay between attempts (seconds)");
        assert!(d.get("description").is_none());
        assert_eq!(d["x-order"], 22);
        assert_eq!(props["retry_attempts"]["x-order"], 21);
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["name"]));
    }

    #[test]
    fn problems_name_the_field_and_the_run_time_values_stay_in_bounds() {
        let t = Timeout::<Demo>::new(300);
        let p = t.problems().unwrap();
        assert_eq!(p.field.as_deref(), Some("timeout_secs"));
        assert_eq!(
            p.message,
            "the timeout must be between 5 and 120 seconds, not 300"
        );
        assert_eq!(t.duration(), Duration::from_secs(120));
        assert!(Timeout::<Demo>::new(5).problems().is_none());

        let fields = |r: Retry<Demo>| {
            r.problems()
                .into_iter()
                .map(|p| p.field.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert!(fields(Retry::new(3, 10)).is_empty());
        assert_eq!(
            fields(Retry::new(0, 90)),
            ["retry_attempts", "retry_delay_secs"]
        );
        // 10 attempts 60 s apart wait 540 s, over the 100 s the spec allows.
        let r = Retry::<Demo>::new(10, 60);
        let p = r.problems();
        assert_eq!(fields(r), ["retry_delay_secs"]);
        assert!(
            p[0].message
                .starts_with("10 attempts 60 s apart wait 540 s"),
            "{}",
            p[0].message
        );
        let policy = Retry::<Demo>::new(50, 90).policy();
        assert_eq!(policy.attempts, 10);
        assert_eq!(policy.delay, Duration::from_secs(60));
    }
}
