//! The configuration of one Chorus Pro instance, and the rules the schema alone cannot
//! enforce.
//!
//! The schema is generated from this struct and rendered as a form by the console: doc
//! comments are titles (first paragraph) and descriptions, `x-group` sorts fields into
//! sections. [`Config::problems`] holds the rules across fields — above all the environment
//! guard (the OAuth URL and the API URL must belong to the same environment, derived from
//! the PISTE hosts or stated explicitly for any other URL) — so that saving, enabling and
//! every call refuse a wrong configuration with a message naming the field, before any
//! request leaves the host.

use crate::environment::{self, Environment, SANDBOX_API_URL, SANDBOX_OAUTH_URL};
use passerelle_plugin_api::prelude::*;
use std::ops::RangeInclusive;

/// The dematerialisation code accepted when none is configured.
pub const DEFAULT_ACCEPTED_CODE: &str = "CHORUS_DEMATERIALIZED";

/// Longest total wait between attempts, so that a call with retries still fits in the
/// host's 120 s call deadline with time left for the requests themselves.
pub const MAX_TOTAL_RETRY_WAIT_SECS: u32 = 100;

/// Fields that two instances of different environments must not share (the host checks
/// them across instances, since one instance cannot see the others).
pub const ISOLATED_FIELDS: &[&str] = &["client_id", "client_secret", "oauth_url", "api_url"];

/// Settings of a Chorus Pro instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Chorus Pro active
    ///
    /// Whether invoices are transmitted. Turn it off to pause transmission: deposits already
    /// made are still followed up.
    #[serde(default = "default_true")]
    #[schemars(extend("x-group" = "general"))]
    pub active: bool,

    /// OAuth URL
    ///
    /// The PISTE token endpoint, /api/oauth/token on sandbox-oauth.piste.gouv.fr for the
    /// sandbox, on oauth.piste.gouv.fr for production.
    #[serde(default = "default_oauth_url")]
    #[schemars(extend("x-group" = "piste"))]
    pub oauth_url: String,

    /// API URL
    ///
    /// Base of the Chorus Pro API on PISTE, without /cpro: the host sandbox-api.piste.gouv.fr
    /// for the sandbox, api.piste.gouv.fr for production. It must belong to the same
    /// environment as the OAuth URL.
    #[serde(default = "default_api_url")]
    #[schemars(extend("x-group" = "piste"))]
    pub api_url: String,

    /// Environment
    ///
    /// Only needed when the URLs are not the PISTE gateway's (a proxy, a local emulator): says
    /// whether they lead to the sandbox or to production, which sets the quotas. With PISTE
    /// URLs leave it empty: the environment is derived from them.
    #[serde(default)]
    #[schemars(extend("x-group" = "piste"))]
    pub environment: Option<Environment>,

    /// `client_id` and `client_secret`, see [`Spec`].
    #[serde(flatten)]
    pub credentials: OAuth2Credentials<Spec>,

    /// Technical login
    ///
    /// Login of the Chorus Pro technical account (Chorus Pro, "Raccordement EDI / API"), sent
    /// with every call in the cpro-account header.
    #[schemars(extend("x-group" = "chorus"))]
    pub technical_login: String,

    /// Technical password
    ///
    /// Password of the Chorus Pro technical account. It expires periodically: renew it in
    /// Chorus Pro and paste the new one here.
    #[schemars(extend("x-group" = "chorus"))]
    pub technical_password: Secret,

    /// Structure identifier
    ///
    /// Identifier of the supplier structure the technical account is attached to, usually
    /// its SIRET (14 digits).
    #[schemars(extend("x-group" = "chorus"))]
    pub structure_id: String,

    /// Structure identifier type
    ///
    /// The kind of identifier above, as Chorus Pro names it.
    #[serde(default)]
    #[schemars(extend("x-group" = "chorus"))]
    pub structure_id_type: StructureIdType,

    /// Accepted dematerialisation codes
    ///
    /// Only invoices carrying one of these codes are transmitted; others are refused before
    /// anything is sent.
    #[serde(default = "default_accepted_codes")]
    #[schemars(length(min = 1))]
    #[schemars(extend("x-group" = "chorus"))]
    pub accepted_codes: Vec<String>,

    /// ERP technical user
    ///
    /// The ERP user the connector acts as when it transmits invoices.
    #[serde(default)]
    #[schemars(extend("x-group" = "erp"))]
    pub erp_user: Option<String>,

    /// ERP technical user's password
    ///
    /// Password of the ERP technical user.
    #[serde(default)]
    #[schemars(extend("x-group" = "erp"))]
    pub erp_password: Option<Secret>,

    /// ERP company code
    ///
    /// Code of the ERP company whose invoices this instance transmits; recorded with each
    /// deposit.
    #[serde(default)]
    #[schemars(extend("x-group" = "erp"))]
    pub erp_company: Option<String>,

    /// `attempts` and `retry_delay_secs`, see [`Spec`].
    #[serde(flatten)]
    pub retry: Retry<Spec>,

    /// `timeout_secs`, see [`Spec`].
    #[serde(flatten)]
    pub timeout: Timeout<Spec>,

    /// Follow-up interval (seconds)
    ///
    /// How often the follow_deposits task asks Chorus Pro about deposits still in progress.
    #[serde(default = "default_follow_interval_secs")]
    #[schemars(range(min = 60, max = 86400))]
    #[schemars(extend("x-group" = "follow_up"))]
    pub follow_interval_secs: u32,

    /// Follow-up start delay (seconds)
    ///
    /// How long after the host starts the follow_deposits task first runs.
    #[serde(default = "default_follow_start_delay_secs")]
    #[schemars(range(min = 0, max = 86400))]
    #[schemars(extend("x-group" = "follow_up"))]
    pub follow_start_delay_secs: u32,
}

/// The bounds and texts of the shared configuration blocks.
pub struct Spec;

impl CredentialsSpec for Spec {
    const CLIENT_ID_DOC: &'static str = "Client id\n\n\
        The client id of your application on PISTE (piste.gouv.fr, \"Applications\"), \
        subscribed to the Chorus Pro API. Sandbox and production applications are distinct.";
    const CLIENT_SECRET_DOC: &'static str = "Client secret\n\n\
        The client secret of the same PISTE application.";
    const GROUP: &'static str = "piste";
    const LABEL: &'static str = "PISTE client";
    const CLIENT_ID_ADVICE: &'static str = PISTE_ADVICE;
    const CLIENT_SECRET_ADVICE: &'static str = PISTE_ADVICE;
}

/// Where PISTE credentials come from.
const PISTE_ADVICE: &str = "copy it from your application on PISTE (piste.gouv.fr, \
     \"Applications\"), in the same environment as the URLs";

impl RetrySpec for Spec {
    const ATTEMPTS_DOC: &'static str = "Attempts\n\n\
        Number of successive attempts of a call that fails for a transient reason (no \
        connection, HTTP 429 or 503). A deposit is only sent again when Chorus Pro's answer \
        proves it was not registered.";
    const DELAY_DOC: &'static str = "Delay between attempts (seconds)\n\n\
        How long to wait before trying again; 0 retries at once. A Retry-After header from the \
        gateway wins.";
    const GROUP: &'static str = "retries";
    const DEFAULT_ATTEMPTS: u32 = 3;
    const ATTEMPTS: RangeInclusive<u32> = 1..=10;
    const DEFAULT_DELAY_SECS: u32 = 10;
    const DELAY_SECS: RangeInclusive<u32> = 0..=60;
    const MAX_TOTAL_WAIT_SECS: Option<u32> = Some(MAX_TOTAL_RETRY_WAIT_SECS);
}

impl TimeoutSpec for Spec {
    const DOC: &'static str = "Timeout (seconds)\n\n\
        How long to wait for each answer from Chorus Pro; deposits of large files need more.";
    const GROUP: &'static str = "retries";
    const DEFAULT_SECS: u32 = 60;
    const SECS: RangeInclusive<u32> = 5..=300;
}

/// Kinds of structure identifiers (`typeIdentifiantStructure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StructureIdType {
    /// SIRET (French establishment)
    #[default]
    Siret,
    /// VAT number (EU, outside France)
    UeHorsFrance,
    /// Outside the EU
    HorsUe,
    /// RIDET (New Caledonia)
    Ridet,
    /// TAHITI number (French Polynesia)
    Tahiti,
    /// Other
    Autre,
    /// Private individual
    Particulier,
}

impl StructureIdType {
    /// The code Chorus Pro uses.
    pub fn code(self) -> &'static str {
        match self {
            StructureIdType::Siret => "SIRET",
            StructureIdType::UeHorsFrance => "UE_HORS_FRANCE",
            StructureIdType::HorsUe => "HORS_UE",
            StructureIdType::Ridet => "RIDET",
            StructureIdType::Tahiti => "TAHITI",
            StructureIdType::Autre => "AUTRE",
            StructureIdType::Particulier => "PARTICULIER",
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_oauth_url() -> String {
    SANDBOX_OAUTH_URL.to_owned()
}

fn default_api_url() -> String {
    SANDBOX_API_URL.to_owned()
}

fn default_accepted_codes() -> Vec<String> {
    vec![DEFAULT_ACCEPTED_CODE.to_owned()]
}

fn default_follow_interval_secs() -> u32 {
    900
}

fn default_follow_start_delay_secs() -> u32 {
    60
}

impl Config {
    /// Everything that keeps this configuration from working, each naming its field.
    pub fn problems(&self) -> Vec<PluginError> {
        let mut problems = self.credentials.problems();
        let mut required = |field: &str, value: &str, what: &str| {
            if value.trim().is_empty() {
                problems.push(PluginError::config(
                    field,
                    format!("the {what} is empty: {}", advice(field)),
                ));
            }
        };
        required(
            "technical_login",
            &self.technical_login,
            "Chorus Pro technical login",
        );
        required(
            "technical_password",
            self.technical_password.expose(),
            "Chorus Pro technical password",
        );
        required("structure_id", &self.structure_id, "structure identifier");
        if self.structure_id_type == StructureIdType::Siret && !self.structure_id.trim().is_empty()
        {
            let digits: String = self
                .structure_id
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(PluginError::config(
                    "structure_id",
                    format!(
                        "the structure identifier {:?} is not a SIRET (14 digits); give the \
                         SIRET of the supplier structure, or choose another identifier type",
                        self.structure_id
                    ),
                ));
            }
        }
        for (field, url) in [("oauth_url", &self.oauth_url), ("api_url", &self.api_url)] {
            if let Some(problem) = url_problem(field, url) {
                problems.push(problem);
            }
        }
        problems.extend(self.environment_problems());
        if self.accepted_codes.iter().all(|c| c.trim().is_empty()) {
            problems.push(PluginError::config(
                "accepted_codes",
                format!(
                    "no dematerialisation code is accepted, so no invoice could be \
                     transmitted: list at least one, e.g. {DEFAULT_ACCEPTED_CODE}"
                ),
            ));
        } else if self.accepted_codes.iter().any(|c| c.trim().is_empty()) {
            problems.push(PluginError::config(
                "accepted_codes",
                "the list of accepted dematerialisation codes has an empty entry: remove it",
            ));
        }
        problems.extend(self.retry.problems());
        problems.extend(self.timeout.problems());
        problems.extend(check_range(
            "follow_interval_secs",
            "the follow-up interval",
            self.follow_interval_secs,
            60..=86_400,
            "seconds",
        ));
        problems.extend(check_range(
            "follow_start_delay_secs",
            "the follow-up start delay",
            self.follow_start_delay_secs,
            0..=86_400,
            "seconds",
        ));
        problems
    }

    /// The environment guard: each URL's environment is its PISTE host's, or the explicit
    /// `environment` for any other host; an explicit value may not contradict a PISTE host;
    /// and the two URLs must end up in the same environment.
    fn environment_problems(&self) -> Vec<PluginError> {
        let mut problems = Vec::new();
        let urls = [
            ("oauth_url", "OAuth URL", self.oauth_url.as_str()),
            ("api_url", "API URL", self.api_url.as_str()),
        ];
        if let Some(explicit) = self.environment {
            let contradicted = urls.iter().find_map(|(_, label, url)| {
                environment::of_url(url)
                    .filter(|derived| *derived != explicit)
                    .map(|derived| (label, url, derived))
            });
            if let Some((label, url, derived)) = contradicted {
                problems.push(PluginError::config(
                    "environment",
                    format!(
                        "the environment is set to {explicit}, but the {label} {url} is the PISTE \
                         {derived} gateway: clear the environment field (PISTE URLs say their \
                         environment), or use the {explicit} URLs {} and {}",
                        explicit.oauth_url(),
                        explicit.api_url()
                    ),
                ));
                return problems;
            }
        } else {
            let unknown: Vec<String> = urls
                .iter()
                .filter(|(_, _, url)| environment::of_url(url).is_none())
                .map(|(_, label, url)| format!("the {label} {url}"))
                .collect();
            if !unknown.is_empty() {
                problems.push(PluginError::config(
                    "environment",
                    format!(
                        "the environment is required because {} {} not on the PISTE gateway: \
                         say whether {} to the sandbox or to production",
                        unknown.join(" and "),
                        if unknown.len() == 1 { "is" } else { "are" },
                        if unknown.len() == 1 {
                            "it leads"
                        } else {
                            "they lead"
                        }
                    ),
                ));
                return problems;
            }
        }
        let oauth = environment::of_url(&self.oauth_url).or(self.environment);
        let api = environment::of_url(&self.api_url).or(self.environment);
        if let (Some(oauth), Some(api)) = (oauth, api) {
            if oauth != api {
                problems.push(PluginError::config(
                    "api_url",
                    format!(
                        "the API URL {} belongs to the {api} environment but the OAuth URL {} to \
                         the {oauth} one; tokens of one environment are refused by the other: use \
                         the API URL {} or the OAuth URL {}",
                        self.api_url,
                        self.oauth_url,
                        oauth.api_url(),
                        api.oauth_url()
                    ),
                ));
            }
        }
        problems
    }

    /// The environment this configuration talks to, when the configuration is consistent.
    pub fn environment(&self) -> Option<Environment> {
        if !self.environment_problems().is_empty() {
            return None;
        }
        environment::of_url(&self.oauth_url)
            .or_else(|| environment::of_url(&self.api_url))
            .or(self.environment)
    }

    /// The quotas of the environment; the sandbox's (the stricter) while it is unknown.
    pub fn quotas(&self) -> Quotas {
        self.environment().unwrap_or(Environment::Sandbox).quotas()
    }

    /// Whether a dematerialisation code is one this instance transmits.
    pub fn accepts(&self, code: &str) -> bool {
        let code = code.trim();
        !code.is_empty() && self.accepted_codes.iter().any(|c| c.trim() == code)
    }

    /// The API base without a trailing slash.
    pub fn api_base(&self) -> &str {
        self.api_url.trim().trim_end_matches('/')
    }

    /// The structure identifier without spaces.
    pub fn structure(&self) -> String {
        self.structure_id
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    }

    /// The per-request timeout, in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout.ms()
    }

    /// The values of [`ISOLATED_FIELDS`] in comparable form (URLs normalised), for the
    /// host's cross-instance check.
    pub fn isolated_values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", self.credentials.client_id().to_owned()),
            (
                "client_secret",
                self.credentials.client_secret().expose().to_owned(),
            ),
            ("oauth_url", normalize_url(&self.oauth_url)),
            ("api_url", normalize_url(&self.api_url)),
        ]
    }
}

/// A URL in comparable form: scheme and host lowercased, default port and trailing slashes
/// removed.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.trim_end_matches('/').to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    if !default_port.is_empty() && authority.ends_with(default_port) {
        authority.truncate(authority.len() - default_port.len());
    }
    format!("{scheme}://{authority}{}", path.trim_end_matches('/'))
}

fn url_problem(field: &str, url: &str) -> Option<PluginError> {
    let trimmed = url.trim();
    let lower = trimmed.to_ascii_lowercase();
    let example = match field {
        "oauth_url" => SANDBOX_OAUTH_URL,
        _ => SANDBOX_API_URL,
    };
    let scheme_ok = (lower.starts_with("https://") && lower.len() > 8)
        || (lower.starts_with("http://") && lower.len() > 7);
    if !scheme_ok || environment::host_of(trimmed).is_empty() {
        return Some(PluginError::config(
            field,
            format!(
                "{url:?} is not a URL: it must start with https:// (or http://), e.g. {example}"
            ),
        ));
    }
    if environment::of_url(trimmed).is_some() && !lower.starts_with("https://") {
        return Some(PluginError::config(
            field,
            format!(
                "{url} must use https://: the PISTE gateway does not accept unencrypted \
                 connections, and the credentials would travel in clear"
            ),
        ));
    }
    if field == "api_url" && lower.trim_end_matches('/').ends_with("/cpro") {
        return Some(PluginError::config(
            field,
            format!(
                "{url} ends with /cpro: give the API base without it, e.g. {SANDBOX_API_URL} \
                 (the plugin adds /cpro/… to each call)"
            ),
        ));
    }
    None
}

fn advice(field: &str) -> &'static str {
    match field {
        "client_id" | "client_secret" => PISTE_ADVICE,
        "technical_login" | "technical_password" => {
            "create a technical account in Chorus Pro (\"Raccordement EDI / API\") and copy its \
             login and password"
        }
        _ => "give the SIRET of the supplier structure the technical account is attached to",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::{PRODUCTION_API_URL, PRODUCTION_OAUTH_URL};
    use serde_json::{json, Value};

    fn base() -> Value {
        json!({
            "client_id": "app-id",
            "client_secret": "app-secret",
            "technical_login": "TECH_LOGIN",
            "technical_password": "tech-password",
            "structure_id": "12345678200010"
        })
    }

    fn config(changes: Value) -> Config {
        let mut v = base();
        for (k, val) in changes.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
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
    fn defaults_are_the_sandbox_with_the_seed_values() {
        let c = config(json!({}));
        assert!(c.active);
        assert_eq!(c.oauth_url, SANDBOX_OAUTH_URL);
        assert_eq!(c.api_url, SANDBOX_API_URL);
        assert_eq!(c.accepted_codes, [DEFAULT_ACCEPTED_CODE]);
        assert_eq!((c.retry.attempts(), c.retry.delay_secs()), (3, 10));
        assert_eq!(c.structure_id_type, StructureIdType::Siret);
        assert!(fields(&c).is_empty(), "{:?}", c.problems());
        assert_eq!(c.environment(), Some(Environment::Sandbox));
        assert_eq!(c.quotas().per_second, Some(5));
        assert!(c.accepts("CHORUS_DEMATERIALIZED"));
        assert!(c.accepts(" CHORUS_DEMATERIALIZED "));
        assert!(!c.accepts("PAPER"));
        assert!(!c.accepts(""));
    }

    #[test]
    fn production_urls_give_production_quotas() {
        let c = config(json!({"oauth_url": PRODUCTION_OAUTH_URL, "api_url": PRODUCTION_API_URL}));
        assert!(fields(&c).is_empty());
        assert_eq!(c.environment(), Some(Environment::Production));
        assert_eq!(c.quotas().per_second, Some(20));
        assert_eq!(c.quotas().per_day, Some(1_000_000));
    }

    #[test]
    fn urls_of_different_environments_are_refused_on_the_api_url() {
        let c = config(json!({"api_url": PRODUCTION_API_URL}));
        let problems = c.problems();
        assert_eq!(fields(&c), ["api_url"]);
        assert!(
            problems[0].message.contains("production environment")
                && problems[0].message.contains(SANDBOX_API_URL),
            "{}",
            problems[0].message
        );
        assert_eq!(c.environment(), None);
        // Unknown environment: the stricter quotas.
        assert_eq!(c.quotas().per_second, Some(5));
        let c = config(json!({"oauth_url": PRODUCTION_OAUTH_URL}));
        assert_eq!(fields(&c), ["api_url"]);
        // The administration's host names count as the gateway's.
        let c = config(json!({
            "oauth_url": "https://oauth.aife.economie.gouv.fr/api/oauth/token",
            "api_url": "https://sandbox-api.aife.economie.gouv.fr"
        }));
        assert_eq!(fields(&c), ["api_url"]);
    }

    #[test]
    fn other_urls_need_an_explicit_environment_that_decides() {
        let local = json!({"oauth_url": "http://127.0.0.1:9/api/oauth/token", "api_url": "http://127.0.0.1:9"});
        let c = config(local.clone());
        assert_eq!(fields(&c), ["environment"]);
        assert!(c.problems()[0]
            .message
            .contains("are not on the PISTE gateway"));
        let mut with_env = local.clone();
        with_env["environment"] = json!("production");
        let c = config(with_env);
        assert!(fields(&c).is_empty());
        assert_eq!(c.environment(), Some(Environment::Production));
        assert_eq!(c.quotas().per_second, Some(20));
        // A proxy for one URL: the explicit value must agree with the PISTE one.
        let c =
            config(json!({"api_url": "https://proxy.example/chorus", "environment": "sandbox"}));
        assert!(fields(&c).is_empty());
        let c =
            config(json!({"api_url": "https://proxy.example/chorus", "environment": "production"}));
        assert_eq!(fields(&c), ["environment"]);
        assert!(c.problems()[0].message.contains("PISTE sandbox gateway"));
        let c = config(json!({"api_url": "https://proxy.example/chorus"}));
        assert_eq!(fields(&c), ["environment"]);
        // An explicit value that contradicts the PISTE URLs.
        let c = config(json!({"environment": "production"}));
        assert_eq!(fields(&c), ["environment"]);
    }

    #[test]
    fn every_required_value_and_bound_names_its_field() {
        let c = config(json!({
            "client_id": " ", "client_secret": "", "technical_login": "",
            "technical_password": "", "structure_id": "", "accepted_codes": [],
            "attempts": 0, "timeout_secs": 1, "follow_interval_secs": 5,
            "follow_start_delay_secs": 100000
        }));
        assert_eq!(
            fields(&c),
            [
                "client_id",
                "client_secret",
                "technical_login",
                "technical_password",
                "structure_id",
                "accepted_codes",
                "attempts",
                "timeout_secs",
                "follow_interval_secs",
                "follow_start_delay_secs"
            ]
        );
        let c = config(json!({"structure_id": "123"}));
        assert_eq!(fields(&c), ["structure_id"]);
        let c = config(json!({"structure_id": "123", "structure_id_type": "AUTRE"}));
        assert!(fields(&c).is_empty());
        let c = config(json!({"structure_id": "123 456 782 00010"}));
        assert!(fields(&c).is_empty());
        assert_eq!(c.structure(), "12345678200010");
        let c = config(json!({"attempts": 10, "retry_delay_secs": 60}));
        assert_eq!(fields(&c), ["retry_delay_secs"]);
        let c = config(json!({"attempts": 3, "retry_delay_secs": 0}));
        assert!(fields(&c).is_empty());
        let c = config(json!({"accepted_codes": ["A", " "]}));
        assert_eq!(fields(&c), ["accepted_codes"]);
    }

    #[test]
    fn urls_must_be_usable() {
        assert_eq!(
            fields(&config(json!({"oauth_url": "piste"}))),
            ["oauth_url", "environment"]
        );
        let c = config(json!({"api_url": "http://sandbox-api.piste.gouv.fr"}));
        assert_eq!(fields(&c), ["api_url"]);
        assert!(c.problems()[0].message.contains("https"));
        let c = config(json!({"api_url": "https://sandbox-api.piste.gouv.fr/cpro/"}));
        assert_eq!(fields(&c), ["api_url"]);
        assert_eq!(
            config(json!({"api_url": "https://sandbox-api.piste.gouv.fr/"})).api_base(),
            SANDBOX_API_URL
        );
    }

    #[test]
    fn isolated_values_compare_urls_loosely() {
        assert_eq!(
            normalize_url("HTTPS://API.Piste.gouv.fr:443/"),
            "https://api.piste.gouv.fr"
        );
        assert_eq!(
            normalize_url("http://127.0.0.1:80/api/oauth/token/"),
            "http://127.0.0.1/api/oauth/token"
        );
        let c = config(json!({}));
        let values = c.isolated_values();
        let names: Vec<_> = values.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ISOLATED_FIELDS);
        assert_eq!(values[1].1, "app-secret");
    }

    #[test]
    fn the_schema_renders_as_a_form() {
        let s = passerelle_plugin_api::config_schema::<Config>();
        let props = &s["properties"];
        assert_eq!(props["client_secret"]["writeOnly"], true);
        assert_eq!(props["technical_password"]["format"], "password");
        assert_eq!(props["erp_password"]["writeOnly"], true);
        assert_eq!(props["environment"]["oneOf"][0]["const"], "sandbox");
        assert_eq!(
            props["environment"]["oneOf"][0]["title"],
            "Sandbox (qualification)"
        );
        assert_eq!(props["accepted_codes"]["minItems"], 1);
        assert_eq!(
            props["accepted_codes"]["default"],
            json!([DEFAULT_ACCEPTED_CODE])
        );
        assert_eq!(props["retry_delay_secs"]["minimum"], 0);
        assert_eq!(props["oauth_url"]["x-group"], "piste");
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in [
            "client_id",
            "client_secret",
            "technical_login",
            "technical_password",
            "structure_id",
        ] {
            assert!(required.contains(&field), "{field} should be required");
        }
        assert!(!required.contains(&"environment"));
        for (name, prop) in props.as_object().unwrap() {
            assert!(prop.get("title").is_some(), "{name} has no title");
            assert!(
                prop.get("description").is_some(),
                "{name} has no description"
            );
        }
        assert!(!s.to_string().contains("$ref"));
    }
}
