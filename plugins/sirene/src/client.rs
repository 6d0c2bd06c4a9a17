//! Requests to API Sirene through the host: authentication, and the one translation of HTTP
//! outcomes into [`PluginError`]s.
//!
//! The test routine and the lookups share [`status_error`] and [`transport_error`] so that a
//! refused key or a rate limit reads the same wherever it is met. OAuth2 access tokens are
//! cached in the instance's state (the gateway grants about one hour) so that a lookup costs
//! one request, not two; a cached token that the gateway refuses is dropped and replaced once.

use crate::config::{AuthMode, Config};
use crate::siret::CompanyId;
use passerelle_plugin_api::prelude::*;
use serde_json::Value;
use std::cell::{Cell, RefCell};

/// Header carrying the API key on the current portal.
pub const API_KEY_HEADER: &str = "X-INSEE-Api-Key-Integration";
/// State key of the cached OAuth2 token.
const TOKEN_STATE_KEY: &str = "oauth2_token";
/// A token this close to its expiry is not reused.
const TOKEN_MARGIN_MS: u64 = 60_000;

/// What a request was for, so that errors can say what was not found or refused.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The OAuth2 token endpoint.
    Token,
    /// `/informations`, the service's own status.
    Informations,
    /// A `/siret` or `/siren` lookup.
    Company(&'a CompanyId),
}

/// An OAuth2 access token as cached in the instance state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub access_token: String,
    /// Host clock, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// The credentials it was granted for: a changed configuration must not reuse it.
    pub client_id: String,
    pub token_url: String,
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A Sirene client for one call into the plugin.
pub struct Client<'c, 'h> {
    config: &'c Config,
    host: &'c Host<'h>,
    token: RefCell<Option<Token>>,
    /// Whether `token` was granted during this call (then a refusal is not worth a retry).
    fresh_token: Cell<bool>,
}

impl<'c, 'h> Client<'c, 'h> {
    pub fn new(config: &'c Config, host: &'c Host<'h>) -> Self {
        Client {
            config,
            host,
            token: RefCell::new(None),
            fresh_token: Cell::new(false),
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
        let mut response = self.send_get(&url, target)?;
        if response.status == 401
            && self.config.auth_mode == AuthMode::Oauth2
            && !self.fresh_token.get()
        {
            // The cached token may have been revoked or the gateway restarted: try once
            // with a fresh one before blaming the credentials.
            self.forget_token();
            response = self.send_get(&url, target)?;
        }
        if !response.is_success() {
            return Err(status_error(&response, self.config.auth_mode, &url, target));
        }
        response.json()
    }

    fn send_get(&self, url: &str, target: Target<'_>) -> Result<HttpResponse, PluginError> {
        let mut request = HttpRequest::get(url)
            .header("Accept", "application/json")
            .timeout_ms(self.config.timeout_ms());
        request = match self.config.auth_mode {
            AuthMode::ApiKey => {
                let key = self
                    .config
                    .api_key
                    .as_ref()
                    .map(|k| k.expose().trim().to_owned())
                    .unwrap_or_default();
                request.secret_header(API_KEY_HEADER, key)
            }
            AuthMode::Oauth2 => request.bearer(&self.token()?.access_token),
        };
        self.host
            .http(&request)
            .map_err(|e| transport_error(e, url, self.config.timeout_secs, target))
    }

    /// A usable token: the one of this call, else the cached one, else a new one.
    fn token(&self) -> Result<Token, PluginError> {
        if let Some(token) = self.token.borrow().clone() {
            return Ok(token);
        }
        let now = self.host.now_unix_ms();
        let cached = self
            .host
            .state_get::<Token>(TOKEN_STATE_KEY)
            .ok()
            .flatten()
            .filter(|t| {
                t.client_id == self.config.client_id.as_deref().unwrap_or_default()
                    && t.token_url == self.config.token_url
                    && t.expires_at_ms > now.saturating_add(TOKEN_MARGIN_MS)
            });
        let token = match cached {
            Some(token) => token,
            None => self.fetch_token()?,
        };
        *self.token.borrow_mut() = Some(token.clone());
        Ok(token)
    }

    fn forget_token(&self) {
        *self.token.borrow_mut() = None;
        let _ = self.host.state_delete(TOKEN_STATE_KEY);
    }

    /// Asks the token endpoint for a new token (client credentials grant), caches it and
    /// returns it. The test routine calls this directly so that it checks the credentials
    /// rather than a cached token.
    pub fn fetch_token(&self) -> Result<Token, PluginError> {
        let url = self.config.token_url.trim();
        let client_id = self.config.client_id.as_deref().unwrap_or_default().trim();
        let secret = self
            .config
            .client_secret
            .as_ref()
            .map(|s| s.expose().trim())
            .unwrap_or_default();
        let request = HttpRequest::post(url)
            .basic_auth(client_id, secret)
            .header("Accept", "application/json")
            .form(&[("grant_type", "client_credentials")])
            .timeout_ms(self.config.timeout_ms());
        let response = self
            .host
            .http(&request)
            .map_err(|e| transport_error(e, url, self.config.timeout_secs, Target::Token))?;
        if !response.is_success() {
            return Err(status_error(
                &response,
                self.config.auth_mode,
                url,
                Target::Token,
            ));
        }
        let answer: TokenAnswer = response.json()?;
        if let Some(kind) = answer.token_type.as_deref() {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(PluginError::new(
                    ErrorKind::Upstream,
                    format!("{url} granted a {kind:?} token; only Bearer tokens are supported"),
                ));
            }
        }
        if answer.access_token.trim().is_empty() {
            return Err(PluginError::new(
                ErrorKind::Upstream,
                format!("{url} answered without an access token"),
            ));
        }
        let token = Token {
            access_token: answer.access_token,
            expires_at_ms: self
                .host
                .now_unix_ms()
                .saturating_add(answer.expires_in.unwrap_or(3600).saturating_mul(1000)),
            client_id: client_id.to_owned(),
            token_url: self.config.token_url.clone(),
        };
        // A cache that cannot be written only costs a token request next time.
        let _ = self.host.state_put(TOKEN_STATE_KEY, &token);
        *self.token.borrow_mut() = Some(token.clone());
        self.fresh_token.set(true);
        Ok(token)
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
        (400 | 401 | 403, Target::Token) => PluginError::new(
            ErrorKind::Unauthorized,
            format!(
                "the client id or secret was refused (HTTP {status}{quoted}): check the \
                 consumer key and secret of your application on the INSEE gateway"
            ),
        )
        .with_field("client_secret"),
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
        (404, Target::Token) => PluginError::config(
            "token_url",
            format!("{url} does not exist (HTTP 404): check the token URL"),
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
pub fn transport_error(
    error: HttpError,
    url: &str,
    timeout_secs: u32,
    target: Target<'_>,
) -> PluginError {
    let field = match target {
        Target::Token => "token_url",
        _ => "base_url",
    };
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
            field,
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
    fn refused_client_credentials_name_the_oauth_error() {
        let e = status_error(
            &response(401, r#"{"error":"invalid_client"}"#, &[]),
            AuthMode::Oauth2,
            "https://api.insee.fr/token",
            Target::Token,
        );
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(
            e.message.contains("HTTP 401: \"invalid_client\""),
            "{}",
            e.message
        );
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
            Target::Informations,
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
            Target::Informations,
        );
        assert_eq!(e.message, tls);
        let e = transport_error(
            HttpError {
                kind: HttpErrorKind::Timeout,
                message: String::new(),
            },
            URL,
            7,
            Target::Informations,
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
