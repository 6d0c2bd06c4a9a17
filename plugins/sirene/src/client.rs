//! Requests to API Sirene through the host: authentication, and the one translation of HTTP
//! outcomes into [`PluginError`]s.
//!
//! The test routine and the lookups share [`status_error`] and [`transport_error`] so that a
//! refused key or a rate limit reads the same wherever it is met. With OAuth2 (the legacy
//! gateway), tokens are the host's business: [`OAuth2Client`] asks the host, which fetches
//! them with HTTP Basic client authentication, caches them per instance until shortly before
//! they expire (the gateway grants about one hour, so a lookup costs one request, not two) and
//! redacts them; a token the gateway refuses is replaced once before the error is reported.

use crate::config::{AuthMode, Config};
use crate::siret::CompanyId;
use passerelle_plugin_api::oauth2::SendError;
use passerelle_plugin_api::prelude::*;
use serde_json::Value;

/// Header carrying the API key on the current portal.
pub const API_KEY_HEADER: &str = "X-INSEE-Api-Key-Integration";

/// What a request was for, so that errors can say what was not found or refused.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// `/informations`, the service's own status.
    Informations,
    /// A `/siret` or `/siren` lookup.
    Company(&'a CompanyId),
}

/// A Sirene client for one call into the plugin.
pub struct Client<'c, 'h> {
    config: &'c Config,
    host: &'c Host<'h>,
    /// Set in OAuth2 mode only.
    oauth2: Option<OAuth2Client>,
}

impl<'c, 'h> Client<'c, 'h> {
    pub fn new(config: &'c Config, host: &'c Host<'h>) -> Self {
        let oauth2 = (config.auth_mode == AuthMode::Oauth2).then(|| {
            let secret = config
                .client_secret
                .as_ref()
                .map(|s| s.expose().trim())
                .unwrap_or_default();
            OAuth2Client::new(
                config.token_url.trim(),
                config.client_id.as_deref().unwrap_or_default().trim(),
                secret,
            )
            // The legacy gateway authenticates clients with HTTP Basic, not form fields.
            .basic_auth()
        });
        Client {
            config,
            host,
            oauth2,
        }
    }

    /// The full URL of an API path such as `/informations`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.effective_base_url())
    }

    /// GETs an API path and parses its JSON body; any other outcome is an error that says
    /// what to do.
    pub fn get_json(&self, path: &str, target: Target<'_>) -> Result<Value, PluginError> {
        let url = self.url(path);
        let request = HttpRequest::get(&url)
            .header("Accept", "application/json")
            .timeout_ms(self.config.timeout_ms());
        let transport = |e| transport_error(e, &url, self.config.timeout_secs);
        let response = match &self.oauth2 {
            None => {
                let key = self
                    .config
                    .api_key
                    .as_ref()
                    .map(|k| k.expose().trim().to_owned())
                    .unwrap_or_default();
                self.host
                    .http(&request.secret_header(API_KEY_HEADER, key))
                    .map_err(transport)?
            }
            // Adds the bearer; on a 401 (token revoked, gateway restarted) gets a fresh token
            // and sends once more before the refusal is reported below.
            Some(oauth2) => oauth2.send(self.host, &request).map_err(|e| match e {
                SendError::Token(e) => token_error(e),
                SendError::Http(e) => transport(e),
            })?,
        };
        if !response.is_success() {
            return Err(status_error(&response, self.config.auth_mode, &url, target));
        }
        response.json()
    }

    /// Asks the token endpoint for a new token, bypassing the host's cache, so that the test
    /// routine checks the credentials rather than a token granted earlier. The host caches the
    /// new token for the requests that follow. Nothing to do with an API key.
    pub fn fresh_token(&self) -> Result<(), PluginError> {
        match &self.oauth2 {
            Some(oauth2) => oauth2.refresh(self.host).map(|_| ()).map_err(token_error),
            None => Ok(()),
        }
    }
}

/// A token error from the host, which already says what the endpoint answered and what to
/// check (e.g. "… invalid_client …; check the client id and secret"); this only names the
/// field concerned.
fn token_error(error: PluginError) -> PluginError {
    if error.field.is_some() {
        return error;
    }
    match error.kind {
        ErrorKind::Unauthorized => error.with_field("client_secret"),
        ErrorKind::Config => error.with_field("token_url"),
        _ => error,
    }
}

/// The error for an HTTP answer that is not a success. The single place where statuses get a
/// meaning, for the test routine and the lookups alike.
pub fn status_error(
    response: &HttpResponse,
    mode: AuthMode,
    url: &str,
    target: Target<'_>,
) -> PluginError {
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
        (401 | 403, _) => match mode {
            AuthMode::ApiKey => PluginError::new(
                ErrorKind::Unauthorized,
                format!(
                    "the API key was refused (HTTP {status}): check the key in the INSEE portal \
                     (API Sirene subscription)"
                ),
            )
            .with_field("api_key"),
            AuthMode::Oauth2 => PluginError::new(
                ErrorKind::Unauthorized,
                format!(
                    "the access token was refused (HTTP {status}{quoted}): check that your \
                     application is subscribed to API Sirene on the INSEE gateway"
                ),
            ),
        },
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

/// What the provider said in its body: Sirene's `header.message`, or an OAuth2 error.
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
            AuthMode::ApiKey,
            URL,
            lookup,
        );
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            e.message,
            "no establishment with SIRET 21920023500014 in the Sirene register"
        );
        let e = status_error(
            &response(404, "", &[]),
            AuthMode::ApiKey,
            URL,
            Target::Company(&siren),
        );
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
            AuthMode::ApiKey,
            URL,
            lookup,
        );
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert_eq!(
            e.message,
            "SIRET 21920023500014 is not diffusible: INSEE withholds its data at the owner's request"
        );

        for status in [401, 403] {
            let e = status_error(&response(status, "{}", &[]), AuthMode::ApiKey, URL, lookup);
            assert_eq!(e.kind, ErrorKind::Unauthorized);
            assert_eq!(e.field.as_deref(), Some("api_key"));
            assert!(e
                .message
                .starts_with(&format!("the API key was refused (HTTP {status})")));
        }
        let e = status_error(&response(401, "", &[]), AuthMode::Oauth2, URL, lookup);
        assert!(e.message.contains("access token"));

        let e = status_error(
            &response(429, "", &[("retry-after", "17")]),
            AuthMode::ApiKey,
            URL,
            lookup,
        );
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert!(
            e.message.ends_with("retry in 17 s (Retry-After)"),
            "{}",
            e.message
        );

        let e = status_error(
            &response(503, "<html>down</html>", &[]),
            AuthMode::ApiKey,
            URL,
            lookup,
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("HTTP 503)"), "{}", e.message);

        let e = status_error(&response(418, "", &[]), AuthMode::ApiKey, URL, lookup);
        assert_eq!(e.kind, ErrorKind::Upstream);

        let e = status_error(
            &response(404, "", &[]),
            AuthMode::ApiKey,
            URL,
            Target::Informations,
        );
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
    fn host_of_urls() {
        assert_eq!(host_of("https://api.insee.fr/token"), "api.insee.fr");
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(host_of("weird"), "weird");
    }
}
