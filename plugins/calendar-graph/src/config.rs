//! The configuration of one Microsoft Graph instance, and the rules the schema alone cannot
//! enforce.
//!
//! Field names that mean the same thing as in `exchange-ews` (`tenant_id`, `client_id`,
//! `client_secret`, `authority_url`, `test_mailbox`, `timeout_secs`) are spelled the same, so
//! that `passerelle config create … --from <exchange-ews instance>` carries them over.
//! [`Config::problems`] names every blank or malformed field before any request is sent.

// Field docs are the form's plain-text titles and descriptions, so URLs stay bare.
#![allow(rustdoc::bare_urls)]

use passerelle_plugin_api::prelude::*;
use std::ops::RangeInclusive;

/// Microsoft identity platform; the token endpoint is `{authority}/{tenant}/oauth2/v2.0/token`.
pub const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Microsoft Graph v1.0 in the global cloud.
pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
/// The only scope an app-only Graph token can have: every application permission granted.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Outlook resources in Graph serve at most 4 concurrent requests per app and mailbox
/// (MailboxConcurrency); a sync sends one request at a time per mailbox, so this bounds the
/// mailboxes worked on together, to stay well within the app's overall budget.
pub const MAX_CONCURRENCY_LIMIT: u32 = 20;

/// Settings of a Microsoft 365 calendar (Microsoft Graph) instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("required" = ["tenant_id", "client_id", "client_secret", "test_mailbox"]))]
pub struct Config {
    /// Tenant id
    ///
    /// Directory (tenant) id of your Microsoft 365 organisation: a GUID or a domain such as
    /// contoso.onmicrosoft.com.
    #[serde(default)]
    #[schemars(extend("x-group" = "application"))]
    pub tenant_id: Option<String>,

    /// Client id
    ///
    /// Application (client) id of the Entra ID app registration. It needs the Microsoft Graph
    /// application permission Calendars.ReadWrite, with admin consent.
    #[serde(default)]
    #[schemars(extend("x-group" = "application"))]
    pub client_id: Option<String>,

    /// Client secret
    ///
    /// A client secret of that app registration (the secret's Value, not its Secret ID).
    #[serde(default)]
    #[schemars(extend("x-group" = "application"))]
    pub client_secret: Option<Secret>,

    /// Authority
    ///
    /// Base of the Microsoft identity platform; tokens are requested at
    /// {authority}/{tenant id}/oauth2/v2.0/token. Change it only for a national cloud
    /// (e.g. https://login.microsoftonline.us) or a test server.
    #[serde(default = "default_authority_url")]
    #[schemars(extend("x-group" = "application"))]
    pub authority_url: String,

    /// Graph URL
    ///
    /// Base address of Microsoft Graph v1.0. Change it only for a national cloud (e.g.
    /// https://graph.microsoft.us/v1.0) or a test server.
    #[serde(default = "default_graph_url")]
    #[schemars(extend("x-group" = "connection"))]
    pub graph_url: String,

    /// Mailbox to test
    ///
    /// The address of an existing mailbox whose calendar the test routine opens; choose one
    /// the synchronisation will write to, so that an application access policy that
    /// excludes it shows up in the test.
    #[serde(default)]
    #[schemars(extend("x-group" = "mailboxes"))]
    pub test_mailbox: Option<String>,

    /// Time zone of all-day appointments
    ///
    /// The time zone whose midnights bound all-day appointments (an appointment from
    /// midnight to midnight, e.g. 2025-03-04T00:00:00+01:00 to 2025-03-05T00:00:00+01:00),
    /// as a Windows name (Romance Standard Time) or an IANA name (Europe/Paris). Other
    /// appointments are written with explicit UTC times, which Outlook shows in each
    /// reader's own time zone.
    #[serde(default = "default_time_zone")]
    #[schemars(extend("x-group" = "synchronisation"))]
    pub time_zone: String,

    /// Mailboxes at a time
    ///
    /// How many mailboxes a synchronisation works on at the same time, from 1 to 20. Each
    /// mailbox gets one request at a time, well under Graph's limit of 4 concurrent
    /// requests per mailbox.
    #[serde(default = "default_max_concurrency")]
    #[schemars(range(min = 1, max = 20))]
    #[schemars(extend("x-group" = "synchronisation"))]
    pub max_concurrency: u32,

    /// `timeout_secs`, see [`Spec`].
    #[serde(flatten)]
    pub timeout: Timeout<Spec>,
}

/// The bounds and texts of the shared configuration blocks.
pub struct Spec;

impl TimeoutSpec for Spec {
    const DOC: &'static str = "Timeout (seconds)\n\n\
        How long to wait for each answer of Microsoft Graph before giving up.";
    const GROUP: &'static str = "connection";
    const DEFAULT_SECS: u32 = 60;
    const SECS: RangeInclusive<u32> = 1..=300;
}

fn default_authority_url() -> String {
    MICROSOFT_AUTHORITY.to_owned()
}

fn default_graph_url() -> String {
    GRAPH_URL.to_owned()
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

fn default_max_concurrency() -> u32 {
    4
}

impl Config {
    /// Everything that keeps this configuration from working, each naming its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        match self.tenant_id.as_deref().map(str::trim) {
            None | Some("") => problems.push(PluginError::config(
                "tenant_id",
                "a tenant id is required: copy the Directory (tenant) id from the overview of \
                 your app registration in the Entra admin center",
            )),
            Some(t) if t.contains(['/', '?', '#', ' ']) => problems.push(PluginError::config(
                "tenant_id",
                "the tenant id must be a GUID or a domain such as contoso.onmicrosoft.com, \
                 without '/', '?', '#' or spaces",
            )),
            Some(_) => {}
        }
        if is_blank(self.client_id.as_deref()) {
            problems.push(PluginError::config(
                "client_id",
                "a client id is required: copy the Application (client) id of your app \
                 registration",
            ));
        }
        if is_blank(self.client_secret.as_ref().map(Secret::expose)) {
            problems.push(PluginError::config(
                "client_secret",
                "a client secret is required: create one under Certificates & secrets of your \
                 app registration and paste its Value here",
            ));
        }
        for (field, url, example) in [
            ("authority_url", &self.authority_url, MICROSOFT_AUTHORITY),
            ("graph_url", &self.graph_url, GRAPH_URL),
        ] {
            if !is_http_url(url) {
                problems.push(PluginError::config(
                    field,
                    format!("{url:?} must start with https:// (or http://), e.g. {example}"),
                ));
            }
        }
        match self.test_mailbox.as_deref().map(str::trim) {
            None | Some("") => problems.push(PluginError::config(
                "test_mailbox",
                "a mailbox to test is required (an application acts on the mailboxes it is \
                 given, it has none of its own): enter the address of an existing mailbox",
            )),
            Some(m) if !is_smtp_address(m) => problems.push(PluginError::config(
                "test_mailbox",
                format!("{m:?} is not a mailbox address; expected e.g. jane.doe@example.com"),
            )),
            Some(_) => {}
        }
        let zone = self.time_zone.trim();
        if zone.is_empty() || zone.len() > 64 || zone.chars().any(|c| c.is_control() || c == '"') {
            problems.push(PluginError::config(
                "time_zone",
                format!(
                    "{:?} is not a time zone name; use a Windows name such as Romance Standard \
                     Time or an IANA name such as Europe/Paris",
                    self.time_zone
                ),
            ));
        }
        problems.extend(check_range(
            "max_concurrency",
            "the number of mailboxes at a time",
            self.max_concurrency,
            1..=MAX_CONCURRENCY_LIMIT,
            "",
        ));
        problems.extend(self.timeout.problems());
        problems
    }

    /// The OAuth token endpoint of the tenant.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_url.trim().trim_end_matches('/'),
            self.tenant_id.as_deref().unwrap_or_default().trim()
        )
    }

    /// Graph's base URL without a trailing slash.
    pub fn graph_base(&self) -> &str {
        self.graph_url.trim().trim_end_matches('/')
    }

    pub fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or_default().trim()
    }

    /// The test mailbox (checked non-blank by [`Config::problems`]).
    pub fn test_mailbox(&self) -> &str {
        self.test_mailbox.as_deref().unwrap_or_default().trim()
    }

    pub fn time_zone(&self) -> &str {
        self.time_zone.trim()
    }

    /// The per-request timeout, in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout.ms()
    }
}

fn is_blank(value: Option<&str>) -> bool {
    value.is_none_or(|s| s.trim().is_empty())
}

/// A plausible SMTP address: one `@` with something on both sides and no spaces. Graph
/// decides whether the mailbox exists.
pub fn is_smtp_address(s: &str) -> bool {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "/?#'\"".contains(c))
        }
        None => false,
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
    fn defaults_and_required_fields() {
        let c = config(json!({}));
        assert_eq!(c.authority_url, MICROSOFT_AUTHORITY);
        assert_eq!(c.graph_url, GRAPH_URL);
        assert_eq!(c.time_zone, "UTC");
        assert_eq!(c.max_concurrency, 4);
        assert_eq!(
            fields(&c),
            ["tenant_id", "client_id", "client_secret", "test_mailbox"]
        );
        let c = config(json!({
            "tenant_id": "contoso.onmicrosoft.com", "client_id": "c", "client_secret": "s",
            "test_mailbox": "jane@contoso.com"
        }));
        assert!(fields(&c).is_empty());
        assert_eq!(
            c.token_url(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn malformed_values_name_their_field() {
        let c = config(json!({
            "tenant_id": "a/b", "client_id": "c", "client_secret": "s",
            "test_mailbox": "jane", "graph_url": "graph.microsoft.com", "time_zone": " ",
            "max_concurrency": 21, "timeout_secs": 0
        }));
        assert_eq!(
            fields(&c),
            [
                "tenant_id",
                "graph_url",
                "test_mailbox",
                "time_zone",
                "max_concurrency",
                "timeout_secs"
            ]
        );
    }

    #[test]
    fn schema_renders_as_a_form() {
        let s = config_schema::<Config>();
        assert_eq!(
            s["required"],
            json!(["tenant_id", "client_id", "client_secret", "test_mailbox"])
        );
        assert_eq!(s["properties"]["client_secret"]["writeOnly"], true);
        assert_eq!(s["properties"]["client_secret"]["format"], "password");
        for (name, prop) in s["properties"].as_object().unwrap() {
            assert!(prop["title"].is_string(), "{name} has no title");
            assert!(prop["description"].is_string(), "{name} has no description");
            assert!(prop["x-group"].is_string(), "{name} has no group");
        }
        assert_eq!(s["properties"]["max_concurrency"]["maximum"], 20);
    }
}
