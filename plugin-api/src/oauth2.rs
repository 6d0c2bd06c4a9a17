//! OAuth2 client credentials for plugins: Chorus Pro (PISTE), Exchange Online and the legacy
//! INSEE gateway use it. The host fetches and caches tokens (one cache, secrets redacted);
//! this helper adds the bearer header and, on a 401, refreshes the token once and retries.

use crate::error::PluginError;
use crate::host::wire::{ClientAuth, OAuth2Request};
use crate::host::Host;
use crate::http::{HttpError, HttpRequest, HttpResponse};

/// A client-credentials client.
#[derive(Debug, Clone)]
pub struct OAuth2Client {
    request: OAuth2Request,
}

impl OAuth2Client {
    pub fn new(token_url: &str, client_id: &str, client_secret: &str) -> Self {
        OAuth2Client {
            request: OAuth2Request {
                token_url: token_url.to_owned(),
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned(),
                scope: None,
                client_auth: ClientAuth::Form,
                force_refresh: false,
            },
        }
    }

    pub fn scope(mut self, scope: &str) -> Self {
        self.request.scope = Some(scope.to_owned());
        self
    }

    /// Authenticate to the token endpoint with HTTP Basic instead of form fields.
    pub fn basic_auth(mut self) -> Self {
        self.request.client_auth = ClientAuth::Basic;
        self
    }

    /// A valid access token (from the host's cache when possible).
    pub fn token(&self, host: &Host<'_>) -> Result<String, PluginError> {
        host.oauth2_token(&self.request).map(|t| t.access_token)
    }

    /// A fresh token, ignoring the cache.
    pub fn refresh(&self, host: &Host<'_>) -> Result<String, PluginError> {
        let mut request = self.request.clone();
        request.force_refresh = true;
        host.oauth2_token(&request).map(|t| t.access_token)
    }

    /// Sends `request` with `Authorization: Bearer`; on a 401, refreshes the token once and
    /// sends again.
    pub fn send(&self, host: &Host<'_>, request: &HttpRequest) -> Result<HttpResponse, SendError> {
        let token = self.token(host).map_err(SendError::Token)?;
        let response = host
            .http(&request.clone().bearer(&token))
            .map_err(SendError::Http)?;
        if response.status != 401 {
            return Ok(response);
        }
        let token = self.refresh(host).map_err(SendError::Token)?;
        host.http(&request.clone().bearer(&token))
            .map_err(SendError::Http)
    }
}

/// Why an authenticated request got no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("cannot get an OAuth2 token: {0}")]
    Token(PluginError),
    #[error(transparent)]
    Http(HttpError),
}

impl From<SendError> for PluginError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Token(p) => p,
            SendError::Http(h) => h.into(),
        }
    }
}

/// The HTTP request of a client-credentials grant (shared by the host and the test host).
#[doc(hidden)]
pub fn token_http_request(request: &OAuth2Request) -> HttpRequest {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if let Some(scope) = &request.scope {
        form.push(("scope", scope));
    }
    let http = HttpRequest::post(&request.token_url).header("Accept", "application/json");
    match request.client_auth {
        ClientAuth::Form => {
            form.push(("client_id", &request.client_id));
            form.push(("client_secret", &request.client_secret));
            http.form(&form)
        }
        ClientAuth::Basic => http
            .basic_auth(&request.client_id, &request.client_secret)
            .form(&form),
    }
}

/// Reads a token endpoint's answer (RFC 6749 §5.1 and §5.2).
#[doc(hidden)]
pub fn parse_token_response(
    response: &HttpResponse,
    now_ms: u64,
) -> Result<crate::host::wire::OAuth2Token, PluginError> {
    use crate::error::ErrorKind;
    #[derive(serde::Deserialize)]
    struct Ok_ {
        access_token: String,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    #[derive(serde::Deserialize)]
    struct Err_ {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    if response.is_success() {
        let ok: Ok_ = response.json()?;
        let expires_in = match ok.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(3600),
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(3600),
            _ => 3600,
        };
        return Ok(crate::host::wire::OAuth2Token {
            access_token: ok.access_token,
            expires_at_ms: now_ms.saturating_add(expires_in.saturating_mul(1000)),
            cached: false,
        });
    }
    if let Ok(e) = serde_json::from_slice::<Err_>(&response.body) {
        let kind = if response.status >= 500 {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Unauthorized
        };
        let hint = match e.error.as_str() {
            "invalid_client" => "; check the client id and secret",
            "unauthorized_client" => "; the application is not allowed this grant — check its permissions with the provider",
            "invalid_scope" => "; check the scope the application is subscribed to",
            _ => "",
        };
        return Err(PluginError::new(
            kind,
            format!(
                "the token endpoint refused the request (HTTP {}): {}{}{hint}",
                response.status,
                e.error,
                e.error_description
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let kind = match response.status {
        401 | 403 => ErrorKind::Unauthorized,
        s if s >= 500 => ErrorKind::Unavailable,
        _ => ErrorKind::Upstream,
    };
    Err(PluginError::new(
        kind,
        format!(
            "the token endpoint answered HTTP {}: {}",
            response.status,
            response.text().chars().take(200).collect::<String>()
        ),
    ))
}
