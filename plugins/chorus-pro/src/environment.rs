//! Which Chorus Pro environment (sandbox or production) a URL belongs to.
//!
//! Mixing them is the costly mistake of this integration: a sandbox token sent to the
//! production API fails at best, and a production deposit made while "testing" sends a real
//! invoice to a public buyer. The PISTE gateway's hosts say which environment they serve, so
//! the environment is derived from them; for any other URL (a proxy, a local emulator) the
//! configuration must say it explicitly. [`crate::config::Config::problems`] applies the
//! rules; this module only knows the hosts.

use passerelle_plugin_api::prelude::*;

/// PISTE token endpoint of the sandbox (qualification) environment.
pub const SANDBOX_OAUTH_URL: &str = "https://sandbox-oauth.piste.gouv.fr/api/oauth/token";
/// PISTE API base of the sandbox environment.
pub const SANDBOX_API_URL: &str = "https://sandbox-api.piste.gouv.fr";
/// PISTE token endpoint of the production environment.
pub const PRODUCTION_OAUTH_URL: &str = "https://oauth.piste.gouv.fr/api/oauth/token";
/// PISTE API base of the production environment.
pub const PRODUCTION_API_URL: &str = "https://api.piste.gouv.fr";

/// Hosts of the PISTE gateway, and their names on the administration's network
/// (`*.aife.economie.gouv.fr`, which older manuals cite), with their environment.
const KNOWN_HOSTS: &[(&str, Environment)] = &[
    ("sandbox-oauth.piste.gouv.fr", Environment::Sandbox),
    ("sandbox-api.piste.gouv.fr", Environment::Sandbox),
    ("oauth.piste.gouv.fr", Environment::Production),
    ("api.piste.gouv.fr", Environment::Production),
    ("sandbox-oauth.aife.economie.gouv.fr", Environment::Sandbox),
    ("sandbox-api.aife.economie.gouv.fr", Environment::Sandbox),
    ("oauth.aife.economie.gouv.fr", Environment::Production),
    ("api.aife.economie.gouv.fr", Environment::Production),
];

/// A Chorus Pro environment. Quotas and the isolation rules follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Sandbox (qualification)
    Sandbox,
    /// Production
    Production,
}

impl Environment {
    /// The PISTE quotas of the environment: 5 requests/s and 50 000/day in the sandbox,
    /// 20 requests/s and 1 000 000/day in production.
    pub fn quotas(self) -> Quotas {
        let (per_second, per_day) = match self {
            Environment::Sandbox => (5, 50_000),
            Environment::Production => (20, 1_000_000),
        };
        Quotas {
            per_second: Some(per_second),
            per_minute: None,
            per_day: Some(per_day),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }

    /// The PISTE token endpoint of this environment.
    pub fn oauth_url(self) -> &'static str {
        match self {
            Environment::Sandbox => SANDBOX_OAUTH_URL,
            Environment::Production => PRODUCTION_OAUTH_URL,
        }
    }

    /// The PISTE API base of this environment.
    pub fn api_url(self) -> &'static str {
        match self {
            Environment::Sandbox => SANDBOX_API_URL,
            Environment::Production => PRODUCTION_API_URL,
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The environment a URL's host belongs to, when it is a PISTE (or AIFE) host.
pub fn of_url(url: &str) -> Option<Environment> {
    let host = host_of(url).to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    KNOWN_HOSTS
        .iter()
        .find(|(known, _)| *known == host)
        .map(|(_, env)| *env)
}

/// The host of a URL, without scheme, credentials, port or path: `api.piste.gouv.fr` out of
/// `https://api.piste.gouv.fr:443/cpro`.
pub fn host_of(url: &str) -> &str {
    let rest = url.trim().split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority, |(h, _)| h.trim_start_matches('['));
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piste_and_aife_hosts_name_their_environment() {
        assert_eq!(of_url(SANDBOX_OAUTH_URL), Some(Environment::Sandbox));
        assert_eq!(of_url(SANDBOX_API_URL), Some(Environment::Sandbox));
        assert_eq!(of_url(PRODUCTION_OAUTH_URL), Some(Environment::Production));
        assert_eq!(
            of_url("https://API.piste.gouv.fr:443/cpro/"),
            Some(Environment::Production)
        );
        assert_eq!(
            of_url("https://sandbox-oauth.aife.economie.gouv.fr/api/oauth/token"),
            Some(Environment::Sandbox)
        );
        assert_eq!(
            of_url("https://api.aife.economie.gouv.fr"),
            Some(Environment::Production)
        );
        assert_eq!(of_url("http://127.0.0.1:8080"), None);
        // Look-alikes are not the gateway.
        assert_eq!(of_url("https://api.piste.gouv.fr.example.com"), None);
        assert_eq!(of_url("https://evil.example/api.piste.gouv.fr"), None);
        assert_eq!(of_url("https://api.piste.gouv.fr@evil.example/"), None);
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(host_of("https://a.b:8443/x?y#z"), "a.b");
        assert_eq!(host_of("http://user:pw@a.b/"), "a.b");
        assert_eq!(host_of("http://[::1]:80/"), "::1");
        assert_eq!(host_of("a.b"), "a.b");
    }

    #[test]
    fn quotas_follow_the_environment() {
        assert_eq!(Environment::Sandbox.quotas().per_second, Some(5));
        assert_eq!(Environment::Sandbox.quotas().per_day, Some(50_000));
        assert_eq!(Environment::Production.quotas().per_second, Some(20));
        assert_eq!(Environment::Production.quotas().per_day, Some(1_000_000));
    }
}
