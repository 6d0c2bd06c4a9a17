//! The configuration of one Exchange instance, and the rules the schema alone cannot enforce.
//!
//! The schema is generated from this struct and rendered as a form: doc comments are titles
//! and descriptions, `x-group` sorts fields into sections, and the `dependencies` block tells
//! the form which fields each authentication mode and the impersonation switch need (the host
//! enforces them when the instance is enabled). [`Config::problems`] repeats those rules in
//! code, with blank values counted as missing, so that a sync or a test with an incomplete
//! configuration fails before any request, naming the field.

// Field docs are the form's plain-text titles and descriptions, so URLs stay bare.
#![allow(rustdoc::bare_urls)]

use passerelle_plugin_api::prelude::*;
use std::ops::RangeInclusive;

/// EWS endpoint of Exchange Online.
pub const OFFICE365_EWS_URL: &str = "https://outlook.office365.com/EWS/Exchange.asmx";
/// Microsoft identity platform; the token endpoint is `{authority}/{tenant}/oauth2/v2.0/token`.
pub const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The only scope an app-only EWS token can have.
pub const EWS_SCOPE: &str = "https://outlook.office365.com/.default";
/// Exchange's default throttling policy lets one account hold 27 EWS connections at once
/// (`EWSMaxConcurrency`); more threads would only earn ErrorServerBusy.
pub const MAX_THREADS_LIMIT: u32 = 27;

/// Settings of a Microsoft Exchange (EWS) instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("dependencies" = {
    "use_oauth": {
        "oneOf": [
            {
                "properties": { "use_oauth": { "const": false } },
                "required": ["username", "password"]
            },
            {
                "properties": { "use_oauth": { "const": true } },
                "required": ["tenant_id", "client_id", "client_secret", "test_mailbox"]
            }
        ]
    },
    "use_impersonation": {
        "oneOf": [
            {
                "properties": { "use_impersonation": { "const": false } }
            },
            {
                "properties": { "use_impersonation": { "const": true } },
                "required": ["test_mailbox"]
            }
        ]
    }
}))]
pub struct Config {
    /// Delegated user
    ///
    /// Login of the Exchange technical user (user@domain or DOMAIN\user), used with basic or
    /// Windows (NTLM) authentication when OAuth is off. Without impersonation it needs
    /// delegate access (Editor) to the calendars it synchronises.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub username: Option<String>,

    /// Password
    ///
    /// Password of the delegated user (basic or Windows authentication, when OAuth is off).
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub password: Option<Secret>,

    /// Authentication method
    ///
    /// How the delegated user signs in when OAuth is off. Windows authentication (NTLM) is
    /// what an on-premises EWS virtual directory usually accepts (Negotiate/NTLM, basic
    /// authentication off); basic authentication needs BasicAuthentication enabled on it.
    /// Exchange Online accepts neither: use OAuth or, better, the calendar-graph plugin.
    #[serde(default)]
    #[schemars(extend("x-group" = "authentication"))]
    pub auth_method: AuthMethod,

    /// EWS URL
    ///
    /// Address of the Exchange Web Services endpoint, e.g.
    /// https://outlook.office365.com/EWS/Exchange.asmx for Exchange Online or
    /// https://mail.example.com/EWS/Exchange.asmx for an on-premises server.
    #[serde(default = "default_ews_url")]
    #[schemars(extend("x-group" = "connection"))]
    pub ews_url: String,

    /// Exchange server version
    ///
    /// The schema version requested in RequestServerVersion. Choose your server's version or
    /// an older one: a server refuses a newer version (ErrorInvalidServerVersion). Exchange
    /// 2013 SP1 suits Exchange 2013, 2016, 2019 and Exchange Online; choose Exchange 2010 SP2
    /// or older for an Exchange 2010 server.
    #[serde(default)]
    #[schemars(extend("x-group" = "connection"))]
    pub server_version: ServerVersion,

    /// Maximum number of threads
    ///
    /// How many mailboxes a synchronisation works on at the same time, from 1 to 27
    /// (Exchange lets one account hold 27 EWS connections at once by default).
    #[serde(default = "default_max_threads")]
    #[schemars(range(min = 1, max = 27))]
    #[schemars(extend("x-group" = "synchronisation"))]
    pub max_threads: u32,

    /// Office 365 optimised mode
    ///
    /// For Exchange Online: sends X-AnchorMailbox with every impersonated call, so that the
    /// request goes straight to the server of that mailbox, and waits longer and more often
    /// when Exchange throttles (ErrorServerBusy with BackOffMilliseconds). X-AnchorMailbox is
    /// always sent with OAuth.
    #[serde(default)]
    #[schemars(extend("x-group" = "synchronisation"))]
    pub office365_mode: bool,

    /// Use impersonation
    ///
    /// Act as each mailbox's owner (ExchangeImpersonation header) instead of opening its
    /// calendar as a delegate. Impersonation through the ApplicationImpersonation RBAC role
    /// is for on-premises servers (New-ManagementRoleAssignment -Role
    /// ApplicationImpersonation -User followed by the delegated user): Exchange Online
    /// retired that role in February 2025. With OAuth, every call impersonates its mailbox whatever this
    /// setting says.
    #[serde(default)]
    #[schemars(extend("x-group" = "mailboxes"))]
    pub use_impersonation: bool,

    /// Mailbox to test
    ///
    /// An existing mailbox address whose calendar the test routine opens (required with
    /// impersonation or OAuth; without them, the delegated user's own calendar is opened when
    /// this is empty).
    #[serde(default)]
    #[schemars(extend("x-group" = "mailboxes"))]
    pub test_mailbox: Option<String>,

    /// Use OAuth (Exchange 365 only)
    ///
    /// Authenticate as an Entra ID (Azure AD) application with the client credentials grant
    /// instead of the delegated user's password. The application needs the Office 365
    /// Exchange Online application permission full_access_as_app, with admin consent.
    #[serde(default)]
    #[schemars(extend("x-group" = "oauth"))]
    pub use_oauth: bool,

    /// Tenant id
    ///
    /// Directory (tenant) id of your Microsoft 365 organisation: a GUID or a domain such as
    /// contoso.onmicrosoft.com (OAuth only).
    #[serde(default)]
    #[schemars(extend("x-group" = "oauth"))]
    pub tenant_id: Option<String>,

    /// Client id
    ///
    /// Application (client) id of the Entra ID app registration (OAuth only).
    #[serde(default)]
    #[schemars(extend("x-group" = "oauth"))]
    pub client_id: Option<String>,

    /// Client secret
    ///
    /// A client secret of that app registration (OAuth only).
    #[serde(default)]
    #[schemars(extend("x-group" = "oauth"))]
    pub client_secret: Option<Secret>,

    /// Authority
    ///
    /// Base of the Microsoft identity platform; tokens are requested at
    /// {authority}/{tenant id}/oauth2/v2.0/token. Change it only for a national cloud
    /// (e.g. https://login.microsoftonline.us) or a test server.
    #[serde(default = "default_authority_url")]
    #[schemars(extend("x-group" = "oauth"))]
    pub authority_url: String,

    /// Time zone of the appointments
    ///
    /// Windows time zone id (as Get-TimeZone -ListAvailable shows it, e.g. Romance Standard
    /// Time for Paris, W. Europe Standard Time for Berlin, Eastern Standard Time) written on
    /// created items and sent as the TimeZoneContext of every request, so that Outlook shows
    /// them, their recurrence rules and all-day appointments in that zone. Needs Exchange
    /// 2010 SP1 or later; ignored with older server versions.
    #[serde(default = "default_time_zone")]
    #[schemars(extend("x-group" = "synchronisation"))]
    pub time_zone: String,

    /// `timeout_secs`, see [`Spec`].
    #[serde(flatten)]
    pub timeout: Timeout<Spec>,
}

/// The bounds and texts of the shared configuration blocks.
pub struct Spec;

impl TimeoutSpec for Spec {
    const DOC: &'static str = "Timeout (seconds)\n\n\
        How long to wait for each answer of Exchange before giving up.";
    const GROUP: &'static str = "connection";
    const DEFAULT_SECS: u32 = 60;
    const SECS: RangeInclusive<u32> = 1..=300;
}

/// A value of `RequestServerVersion` that Exchange servers accept. The schema's
/// enumeration also holds internal names (Exchange2009, Exchange2012, Exchange2015,
/// V2015_10_05…) that no product documents; they are left out.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ServerVersion {
    /// Exchange 2007 SP1
    #[serde(rename = "Exchange2007_SP1")]
    Exchange2007Sp1,
    /// Exchange 2010
    #[serde(rename = "Exchange2010")]
    Exchange2010,
    /// Exchange 2010 SP1
    #[serde(rename = "Exchange2010_SP1")]
    Exchange2010Sp1,
    /// Exchange 2010 SP2
    #[serde(rename = "Exchange2010_SP2")]
    Exchange2010Sp2,
    /// Exchange 2013
    #[serde(rename = "Exchange2013")]
    Exchange2013,
    /// Exchange 2013 SP1 (also Exchange 2016, 2019 and Exchange Online)
    #[default]
    #[serde(rename = "Exchange2013_SP1")]
    Exchange2013Sp1,
    /// Exchange 2016 (also Exchange 2019 and Exchange Online)
    #[serde(rename = "Exchange2016")]
    Exchange2016,
}

/// How the delegated user's password is presented to Exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AuthMethod {
    /// Basic authentication
    #[default]
    #[serde(rename = "basic")]
    Basic,
    /// Windows authentication (NTLM)
    #[serde(rename = "ntlm")]
    Ntlm,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "basic",
            AuthMethod::Ntlm => "ntlm",
        }
    }
}

impl ServerVersion {
    /// The next older version, if any.
    pub fn older(self) -> Option<ServerVersion> {
        match self {
            ServerVersion::Exchange2007Sp1 => None,
            ServerVersion::Exchange2010 => Some(ServerVersion::Exchange2007Sp1),
            ServerVersion::Exchange2010Sp1 => Some(ServerVersion::Exchange2010),
            ServerVersion::Exchange2010Sp2 => Some(ServerVersion::Exchange2010Sp1),
            ServerVersion::Exchange2013 => Some(ServerVersion::Exchange2010Sp2),
            ServerVersion::Exchange2013Sp1 => Some(ServerVersion::Exchange2013),
            ServerVersion::Exchange2016 => Some(ServerVersion::Exchange2013Sp1),
        }
    }

    /// The value of `RequestServerVersion/@Version`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerVersion::Exchange2007Sp1 => "Exchange2007_SP1",
            ServerVersion::Exchange2010 => "Exchange2010",
            ServerVersion::Exchange2010Sp1 => "Exchange2010_SP1",
            ServerVersion::Exchange2010Sp2 => "Exchange2010_SP2",
            ServerVersion::Exchange2013 => "Exchange2013",
            ServerVersion::Exchange2013Sp1 => "Exchange2013_SP1",
            ServerVersion::Exchange2016 => "Exchange2016",
        }
    }
}

fn default_ews_url() -> String {
    OFFICE365_EWS_URL.to_owned()
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

fn default_authority_url() -> String {
    MICROSOFT_AUTHORITY.to_owned()
}

fn default_max_threads() -> u32 {
    4
}

impl Config {
    /// Everything that keeps this configuration from working, each naming its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        if !is_http_url(&self.ews_url) {
            problems.push(PluginError::config(
                "ews_url",
                format!(
                    "the EWS URL {:?} must start with https:// (or http://), e.g. {OFFICE365_EWS_URL}",
                    self.ews_url
                ),
            ));
        }
        if self.use_oauth {
            if is_blank(self.tenant_id.as_deref()) {
                problems.push(PluginError::config(
                    "tenant_id",
                    "a tenant id is required with OAuth: copy the Directory (tenant) id from the \
                     overview of your app registration in the Entra admin center",
                ));
            } else if self
                .tenant_id
                .as_deref()
                .is_some_and(|t| t.trim().contains(['/', '?', '#', ' ']))
            {
                problems.push(PluginError::config(
                    "tenant_id",
                    "the tenant id must be a GUID or a domain such as contoso.onmicrosoft.com, \
                     without '/', '?', '#' or spaces",
                ));
            }
            if is_blank(self.client_id.as_deref()) {
                problems.push(PluginError::config(
                    "client_id",
                    "a client id is required with OAuth: copy the Application (client) id of \
                     your app registration",
                ));
            }
            if is_blank(self.client_secret.as_ref().map(Secret::expose)) {
                problems.push(PluginError::config(
                    "client_secret",
                    "a client secret is required with OAuth: create one under Certificates & \
                     secrets of your app registration and paste its value here",
                ));
            }
            if !is_http_url(&self.authority_url) {
                problems.push(PluginError::config(
                    "authority_url",
                    format!(
                        "the authority {:?} must start with https://, e.g. {MICROSOFT_AUTHORITY}",
                        self.authority_url
                    ),
                ));
            }
        } else {
            if is_exchange_online(&self.ews_url) {
                problems.push(PluginError::config(
                    "auth_method",
                    format!(
                        "Exchange Online ({}) refuses {} authentication with a password, and \
                         Microsoft is retiring EWS there (disabled from October 2026, removed in \
                         April 2027): create an instance of the calendar-graph plugin (Microsoft \
                         Graph) for this organisation, or, meanwhile, turn on OAuth here",
                        self.ews_url.trim(),
                        match self.auth_method {
                            AuthMethod::Basic => "basic",
                            AuthMethod::Ntlm => "Windows (NTLM)",
                        }
                    ),
                ));
            }
            if is_blank(self.username.as_deref()) {
                problems.push(PluginError::config(
                    "username",
                    "the delegated user is required when OAuth is off: enter the login of the \
                     Exchange technical user (user@domain or DOMAIN\\user)",
                ));
            }
            if is_blank(self.password.as_ref().map(Secret::expose)) {
                problems.push(PluginError::config(
                    "password",
                    "the password of the delegated user is required when OAuth is off",
                ));
            }
        }
        match self.test_mailbox.as_deref().map(str::trim) {
            None | Some("") if self.use_oauth => problems.push(PluginError::config(
                "test_mailbox",
                "a mailbox to test is required with OAuth (an application only acts as a \
                 mailbox it impersonates): enter the address of an existing mailbox",
            )),
            None | Some("") if self.use_impersonation => problems.push(PluginError::config(
                "test_mailbox",
                "a mailbox to test is required with impersonation: enter the address of an \
                 existing mailbox the delegated user may impersonate",
            )),
            Some(m) if !m.is_empty() && !is_smtp_address(m) => problems.push(PluginError::config(
                "test_mailbox",
                format!("{m:?} is not a mailbox address; expected e.g. jane.doe@example.com"),
            )),
            _ => {}
        }
        if !is_windows_time_zone_id(&self.time_zone) {
            problems.push(PluginError::config(
                "time_zone",
                format!(
                    "{:?} is not a Windows time zone id; expected e.g. Romance Standard Time \
                     or UTC (Get-TimeZone -ListAvailable lists them)",
                    self.time_zone
                ),
            ));
        }
        problems.extend(check_range(
            "max_threads",
            "the maximum number of threads",
            self.max_threads,
            1..=MAX_THREADS_LIMIT,
            "",
        ));
        problems.extend(self.timeout.problems());
        problems
    }

    /// Whether calls act as their mailbox through `ExchangeImpersonation`.
    pub fn impersonates(&self) -> bool {
        self.use_impersonation || self.use_oauth
    }

    /// Whether impersonated calls carry `X-AnchorMailbox`.
    pub fn sends_anchor_mailbox(&self) -> bool {
        self.office365_mode || self.use_oauth
    }

    /// The OAuth token endpoint of the tenant.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_url.trim().trim_end_matches('/'),
            self.tenant_id.as_deref().unwrap_or_default().trim()
        )
    }

    /// The test mailbox, when one is set.
    pub fn test_mailbox(&self) -> Option<&str> {
        self.test_mailbox
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }

    /// The per-request timeout, in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout.ms()
    }
}

/// Whether an EWS URL points at Exchange Online (worldwide or a national cloud).
pub fn is_exchange_online(url: &str) -> bool {
    let url = url.trim().to_ascii_lowercase();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(&url);
    let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
    [
        "outlook.office365.com",
        "outlook.office.com",
        "partner.outlook.cn",
    ]
    .contains(&host)
        || host.ends_with(".office365.com")
        || host.ends_with(".office365.us")
}

/// A plausible Windows time zone id: letters, digits, spaces and the punctuation of ids
/// such as `UTC+12` or `Cape Verde Standard Time`. Exchange decides whether it exists.
fn is_windows_time_zone_id(id: &str) -> bool {
    let id = id.trim();
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '+' | '-' | '.' | '(' | ')'))
}

fn is_blank(value: Option<&str>) -> bool {
    value.is_none_or(|s| s.trim().is_empty())
}

/// A plausible SMTP address: one `@` with something on both sides and no spaces. Exchange
/// decides whether the mailbox exists.
pub fn is_smtp_address(s: &str) -> bool {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
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
    fn defaults() {
        let c = config(json!({}));
        assert_eq!(c.ews_url, OFFICE365_EWS_URL);
        assert_eq!(c.server_version, ServerVersion::Exchange2013Sp1);
        assert_eq!(c.max_threads, 4);
        assert!(!c.use_oauth && !c.use_impersonation && !c.office365_mode);
        assert_eq!(c.authority_url, MICROSOFT_AUTHORITY);
        assert_eq!(c.auth_method, AuthMethod::Basic);
        assert_eq!(c.time_zone, "UTC");
        assert_eq!(fields(&c), ["auth_method", "username", "password"]);
    }

    #[test]
    fn passwords_against_exchange_online_are_refused_naming_calendar_graph() {
        for method in ["basic", "ntlm"] {
            let c = config(json!({
                "username": "svc@contoso.com", "password": "pw", "auth_method": method,
                "ews_url": "https://Outlook.Office365.com/EWS/Exchange.asmx"
            }));
            let problems = c.problems();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].field.as_deref(), Some("auth_method"));
            assert!(
                problems[0].message.contains("calendar-graph"),
                "{}",
                problems[0].message
            );
        }
        let oauth = config(json!({
            "use_oauth": true, "tenant_id": "contoso.onmicrosoft.com", "client_id": "c",
            "client_secret": "s", "test_mailbox": "jane@example.com"
        }));
        assert!(fields(&oauth).is_empty());
        let on_prem = config(json!({
            "username": "CONTOSO\\svc", "password": "pw", "auth_method": "ntlm",
            "ews_url": "https://mail.contoso.com/EWS/Exchange.asmx"
        }));
        assert!(fields(&on_prem).is_empty());
        assert!(is_exchange_online(
            "https://outlook.office365.us/EWS/Exchange.asmx"
        ));
        assert!(!is_exchange_online(
            "https://office365.com.example/EWS/Exchange.asmx"
        ));
    }

    #[test]
    fn time_zones_are_windows_ids() {
        let base = json!({"username": "u", "password": "p", "ews_url": "https://mail.example.com/EWS/Exchange.asmx"});
        for ok in [
            "UTC",
            "Romance Standard Time",
            "UTC+12",
            "Pacific SA Standard Time",
        ] {
            let mut v = base.clone();
            v["time_zone"] = json!(ok);
            assert!(fields(&config(v)).is_empty(), "{ok}");
        }
        for bad in ["", "Europe/Paris", "<x>"] {
            let mut v = base.clone();
            v["time_zone"] = json!(bad);
            assert_eq!(fields(&config(v)), ["time_zone"], "{bad}");
        }
    }

    #[test]
    fn each_mode_requires_its_fields() {
        let basic = json!({"username": "svc@example.com", "password": "pw", "ews_url": "https://mail.example.com/EWS/Exchange.asmx"});
        assert!(fields(&config(basic.clone())).is_empty());
        let mut imp = basic.clone();
        imp["use_impersonation"] = json!(true);
        assert_eq!(fields(&config(imp.clone())), ["test_mailbox"]);
        imp["test_mailbox"] = json!("  ");
        assert_eq!(fields(&config(imp.clone())), ["test_mailbox"]);
        imp["test_mailbox"] = json!("no-at-sign");
        assert_eq!(fields(&config(imp.clone())), ["test_mailbox"]);
        imp["test_mailbox"] = json!("jane@example.com");
        assert!(fields(&config(imp)).is_empty());

        let oauth = config(json!({"use_oauth": true}));
        assert_eq!(
            fields(&oauth),
            ["tenant_id", "client_id", "client_secret", "test_mailbox"]
        );
        let oauth = config(json!({
            "use_oauth": true, "tenant_id": "contoso.onmicrosoft.com", "client_id": "c",
            "client_secret": "s", "test_mailbox": "jane@example.com"
        }));
        assert!(fields(&oauth).is_empty());
        assert!(oauth.impersonates());
        assert!(oauth.sends_anchor_mailbox());
        assert_eq!(
            oauth.token_url(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let bad_tenant = config(json!({
            "use_oauth": true, "tenant_id": "a/b", "client_id": "c",
            "client_secret": "s", "test_mailbox": "jane@example.com"
        }));
        assert_eq!(fields(&bad_tenant), ["tenant_id"]);
    }

    #[test]
    fn ranges_and_urls_are_checked() {
        let c = config(json!({
            "username": "u", "password": "p", "max_threads": 0, "timeout_secs": 0,
            "ews_url": "outlook.office365.com/EWS/Exchange.asmx"
        }));
        assert_eq!(
            fields(&c),
            ["ews_url", "auth_method", "max_threads", "timeout_secs"]
        );
        let c = config(
            json!({"username": "u", "password": "p", "max_threads": 28, "ews_url": "https://mail.example.com/EWS/Exchange.asmx"}),
        );
        assert_eq!(fields(&c), ["max_threads"]);
    }

    #[test]
    fn server_versions_are_the_values_ews_accepts() {
        let s = config_schema::<Config>();
        let choices = s["properties"]["server_version"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["const"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        assert_eq!(
            choices,
            [
                "Exchange2007_SP1",
                "Exchange2010",
                "Exchange2010_SP1",
                "Exchange2010_SP2",
                "Exchange2013",
                "Exchange2013_SP1",
                "Exchange2016"
            ]
        );
        for c in &choices {
            let v: ServerVersion = serde_json::from_value(json!(c)).unwrap();
            assert_eq!(v.as_str(), c);
        }
        assert!(serde_json::from_value::<ServerVersion>(json!("Exchange2019")).is_err());
    }

    #[test]
    fn schema_says_what_each_mode_requires() {
        let s = config_schema::<Config>();
        let rules = passerelle_plugin_api::config::conditionals(&s);
        let required = |tag: &str, value: serde_json::Value| {
            rules
                .iter()
                .find(|r| r.tag == tag && r.value == value)
                .map(|r| r.required.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            required("use_oauth", json!(false)),
            ["username", "password"]
        );
        assert_eq!(
            required("use_oauth", json!(true)),
            ["tenant_id", "client_id", "client_secret", "test_mailbox"]
        );
        assert_eq!(required("use_impersonation", json!(true)), ["test_mailbox"]);
        for secret in ["password", "client_secret"] {
            assert_eq!(s["properties"][secret]["writeOnly"], true);
            assert_eq!(s["properties"][secret]["format"], "password");
        }
        let props = s["properties"].as_object().unwrap();
        for (name, prop) in props {
            assert!(prop["title"].is_string(), "{name} has no title");
            assert!(prop["description"].is_string(), "{name} has no description");
            assert!(prop["x-group"].is_string(), "{name} has no group");
        }
        assert_eq!(s["properties"]["max_threads"]["minimum"], 1);
        let imp_doc = s["properties"]["use_impersonation"]["description"]
            .as_str()
            .unwrap();
        assert!(imp_doc.contains("on-premises"), "{imp_doc}");
        assert!(imp_doc.contains("February 2025"), "{imp_doc}");
        assert!(s
            .get("required")
            .is_none_or(|r| r.as_array().unwrap().is_empty()));
    }
}
