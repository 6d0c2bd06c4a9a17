//! Requests to API Sirene through the host, and the one translation of HTTP outcomes into
//! [`PluginError`]s.
//!
//! Every request carries the portal's API key in `X-INSEE-Api-Key-Integration`. The test
//! routine, the lookups and the search share [`status_error`] and [`transport_error`] so that
//! a refused key or a rate limit reads the same wherever it is met. A refused key gets the
//! likely reason: since INSEE closed its OAuth2 gateway (10 September 2025), the value most
//! often pasted by mistake is the old gateway's access token ("Jeton").

use crate::config::{Config, MIGRATION};
use crate::siret::CompanyId;
use passerelle_plugin_api::prelude::*;
use serde_json::Value;

/// Header carrying the API key on the current portal.
pub const API_KEY_HEADER: &str = "X-INSEE-Api-Key-Integration";

/// What a request was for, so that errors can say what was not found or refused.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// `/informations`, the service's own status.
    Informations,
    /// A lookup of one SIRET or SIREN.
    Company(&'a CompanyId),
    /// A multi-criteria search (`/siret?q=`).
    Search,
}

/// A Sirene client for one call into the plugin.
pub struct Client<'c, 'h> {
    config: &'c Config,
    host: &'c Host<'h>,
}

impl<'c, 'h> Client<'c, 'h> {
    pub fn new(config: &'c Config, host: &'c Host<'h>) -> Self {
        Client { config, host }
    }

    /// The full URL of an API path such as `/informations`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.effective_base_url())
    }

    /// GETs an API path (query string included, already encoded) and parses its JSON body;
    /// any other outcome is an error that says what to do.
    pub fn get_json(&self, path: &str, target: Target<'_>) -> Result<Value, PluginError> {
        self.get(path, target, false)?
            .ok_or_else(|| PluginError::internal("a 404 was taken for an empty search"))
    }

    /// Like [`Client::get_json`], for a search: API Sirene answers 404 when nothing matches,
    /// which is `None` here rather than an error.
    pub fn search_json(&self, path: &str) -> Result<Option<Value>, PluginError> {
        self.get(path, Target::Search, true)
    }

    fn get(
        &self,
        path: &str,
        target: Target<'_>,
        none_if_404: bool,
    ) -> Result<Option<Value>, PluginError> {
        let url = self.url(path);
        let key = self
            .config
            .api_key
            .as_ref()
            .map(|k| k.expose().trim().to_owned())
            .unwrap_or_default();
        let looks_like_token = looks_like_old_token(&key);
        let request = HttpRequest::get(&url)
            .header("Accept", "application/json")
            .timeout_ms(self.config.timeout_ms())
            .secret_header(API_KEY_HEADER, key);
        let response = self
            .host
            .http(&request)
            .map_err(|e| transport_error(e, &url, self.config.timeout.secs()))?;
        if none_if_404 && response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            let mut error = status_error(&response, &url, target);
            if looks_like_token && error.kind == ErrorKind::Unauthorized {
                error.message = format!(
                    "{}. The key looks like an access token of the old gateway (a \"Bearer\" \
                     value or a JWT) rather than a portal API key",
                    error.message
                );
            }
            return Err(error);
        }
        response.json().map(Some)
    }
}

/// Whether a pasted key has the shape of an OAuth2 access token rather than of a portal key:
/// a `Bearer ` prefix, or a JWT (three base64url parts, the first a JSON header).
pub fn looks_like_old_token(key: &str) -> bool {
    let key = key.trim();
    if key
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
    {
        return true;
    }
    let parts: Vec<&str> = key.split('.').collect();
    parts.len() == 3
        && key.starts_with("eyJ")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The error for an HTTP answer that is not a success. The single place where statuses get a
/// meaning, for the test routine and the lookups alike.
pub fn status_error(response: &HttpResponse, url: &str, target: Target<'_>) -> PluginError {
    let status = response.status;
    let said = provider_message(response);
    let quoted = said
        .as_deref()
        .map(|m| format!(": \"{m}\""))
        .unwrap_or_default();
    let not_diffusible = status == 403
        && said.as_deref().is_some_and(|m| {
            let m = m.to_lowercase();
            m.contains("diffusable") || m.contains("diffusible")
        });
    match (status, target) {
        (403, Target::Company(id)) if not_diffusible => PluginError::new(
            ErrorKind::Forbidden,
            format!("{id} is not diffusible: INSEE withholds its data at the owner's request"),
        ),
        (401 | 403, _) => PluginError::new(
            ErrorKind::Unauthorized,
            format!(
                "the API key was refused (HTTP {status}{quoted}): check that `api_key` holds \
                 the key of an application subscribed to API Sirene in the INSEE portal \
                 (portail-api.insee.fr). If it is the access token (\"Jeton\") of the old \
                 gateway, it cannot work any more: {MIGRATION}"
            ),
        )
        .with_field("api_key"),
        (400, Target::Search) => PluginError::invalid_input(format!(
            "API Sirene refused the search (HTTP 400{quoted}): simplify the name (letters, \
             digits and spaces) and check the postal code"
        )),
        (404, Target::Company(id @ CompanyId::Siret(_))) => PluginError::new(
            ErrorKind::NotFound,
            format!("no establishment with {id} in the Sirene register"),
        ),
        (404, Target::Company(id @ CompanyId::Siren(_))) => PluginError::new(
            ErrorKind::NotFound,
            format!("no legal unit with {id} in the Sirene register"),
        ),
        (404, Target::Informations) => PluginError::config(
            "base_url",
            format!(
                "{url} does not exist (HTTP 404): check the API base URL, e.g. {}",
                crate::config::CURRENT_BASE_URL
            ),
        ),
        (429, _) => {
            let wait = response
                .retry_after_secs()
                .map(|s| format!("retry in {s} s (Retry-After)"))
                .unwrap_or_else(|| "retry in a minute".to_owned());
            PluginError::new(
                ErrorKind::RateLimited,
                format!(
                    "INSEE's rate limit is reached (HTTP 429; the public plan allows about 30 \
                     requests per minute): {wait}"
                ),
            )
        }
        (500..=599, _) => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "the Sirene service answered with a server error (HTTP {status}{quoted}); try \
                 again later"
            ),
        ),
        _ => PluginError::new(
            ErrorKind::Upstream,
            format!("unexpected answer from {url} (HTTP {status}{quoted})"),
        ),
    }
}

/// The error for a request that got no answer at all.
pub fn transport_error(error: HttpError, url: &str, timeout_secs: u32) -> PluginError {
    match error.kind {
        HttpErrorKind::Connect => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "the host {} is unreachable ({}): check the URL {url} and the network (DNS, \
                 proxy, firewall)",
                host_of(url),
                error.message
            ),
        ),
        // The host's message names the certificate's issuer and how to trust it.
        HttpErrorKind::Tls => PluginError::new(ErrorKind::Unavailable, error.message),
        HttpErrorKind::Timeout => PluginError::new(
            ErrorKind::Timeout,
            format!(
                "no answer from {url} within {timeout_secs} s: INSEE may be slow; try again or \
                 raise the timeout"
            ),
        ),
        HttpErrorKind::Quota => PluginError::new(ErrorKind::RateLimited, error.message),
        HttpErrorKind::InvalidUrl => PluginError::config(
            "base_url",
            format!("{url} is not a usable URL: {}", error.message),
        ),
        HttpErrorKind::Other => PluginError::new(
            ErrorKind::Unavailable,
            format!("the request to {url} failed: {}", error.message),
        ),
    }
}

/// What the provider said in its body: Sirene's `header.message`, or the gateway's own.
fn provider_message(response: &HttpResponse) -> Option<String> {
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    let message = body
        .pointer("/header/message")
        .or_else(|| body.get("error_description"))
        .or_else(|| body.get("error"))
        .or_else(|| body.get("message"))
        .or_else(|| body.pointer("/fault/message"))?
        .as_str()?
        .trim();
    (!message.is_empty()).then(|| message.chars().take(300).collect())
}

/// `api.insee.fr` out of `https://api.insee.fr/token`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    const URL: &str = "https://api.insee.fr/api-sirene/3.11/siret/21920023500014";

    #[test]
    fn statuses_map_to_kinds_and_advice() {
        let siret = CompanyId::Siret("21920023500014".into());
        let siren = CompanyId::Siren("219200235".into());
        let lookup = Target::Company(&siret);
        let e = status_error(
            &response(
                404,
                r#"{"header":{"statut":404,"message":"Aucun élément trouvé pour le siret 21920023500014"}}"#,
                &[],
            ),
            URL,
            lookup,
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            e.message,
            "no establishment with SIRET 21920023500014 in the Sirene register"
        );
        let e = status_error(&response(404, "", &[]), URL, Target::Company(&siren));
        assert_eq!(
            e.message,
            "no legal unit with SIREN 219200235 in the Sirene register"
        );

        let e = status_error(
            &response(
                403,
                r#"{"header":{"statut":403,"message":"Unité légale non diffusable"}}"#,
                &[],
            ),
            URL,
            lookup,
        );
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert_eq!(
            e.message,
            "SIRET 21920023500014 is not diffusible: INSEE withholds its data at the owner's request"
        );

        for status in [401, 403] {
            let e = status_error(&response(status, "{}", &[]), URL, lookup);
            assert_eq!(e.kind, ErrorKind::Unauthorized);
            assert_eq!(e.field.as_deref(), Some("api_key"));
            assert!(e
                .message
                .starts_with(&format!("the API key was refused (HTTP {status})")));
        }
        let e = status_error(&response(401, "", &[]), URL, lookup);
        assert!(e.message.contains("\"Jeton\""), "{}", e.message);
        assert!(e.message.contains("portail-api.insee.fr"), "{}", e.message);
        let e = status_error(
            &response(
                400,
                r#"{"header":{"statut":400,"message":"Erreur de syntaxe"}}"#,
                &[],
            ),
            URL,
            Target::Search,
        );
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("Erreur de syntaxe"), "{}", e.message);

        let e = status_error(&response(429, "", &[("retry-after", "17")]), URL, lookup);
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert!(
            e.message.ends_with("retry in 17 s (Retry-After)"),
            "{}",
            e.message
        );

        let e = status_error(&response(503, "<html>down</html>", &[]), URL, lookup);
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("HTTP 503)"), "{}", e.message);

        let e = status_error(&response(418, "", &[]), URL, lookup);
        assert_eq!(e.kind, ErrorKind::Upstream);

        let e = status_error(&response(404, "", &[]), URL, Target::Informations);
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.field.as_deref(), Some("base_url"));
    }

    #[test]
    fn transport_errors_name_the_host_and_keep_tls_messages() {
        let e = transport_error(
            HttpError {
                kind: HttpErrorKind::Connect,
                message: "dns error".into(),
            },
            URL,
            10,
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e
            .message
            .starts_with("the host api.insee.fr is unreachable (dns error)"));
        assert!(e.message.contains(URL));
        let tls = "the certificate of api.insee.fr is issued by X, which is not trusted: run `passerelle trust add`";
        let e = transport_error(
            HttpError {
                kind: HttpErrorKind::Tls,
                message: tls.into(),
            },
            URL,
            10,
        );
        assert_eq!(e.message, tls);
        let e = transport_error(
            HttpError {
                kind: HttpErrorKind::Timeout,
                message: String::new(),
            },
            URL,
            7,
        );
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("within 7 s"));
    }

    #[test]
    fn old_tokens_are_told_from_portal_keys() {
        assert!(looks_like_old_token(
            "Bearer 214c0e62-bc3c-4fd6-959f-67e5400bdd41"
        ));
        assert!(looks_like_old_token(
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        ));
        assert!(!looks_like_old_token(
            "f339d307-3eac-42e5-b9d3-073eac62e5fb"
        ));
        assert!(!looks_like_old_token("eyJ.not a jwt.x"));
    }

    #[test]
    fn host_of_urls() {
        assert_eq!(host_of("https://api.insee.fr/token"), "api.insee.fr");
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(host_of("weird"), "weird");
    }
}
