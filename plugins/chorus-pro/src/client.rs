//! Talking to Chorus Pro through the PISTE gateway, and giving every outcome its meaning.
//!
//! Two credentials travel with each call: the PISTE access token (`Authorization: Bearer`,
//! the application) and the technical account (`cpro-account: base64(login:password)`, the
//! structure). Both are refused with HTTP 401, so the client tells them apart — the gateway
//! marks a bad token `invalid_token` — and only a refused *token* is renewed and the call sent
//! again. Transient failures are retried by the host's [`RetryPolicy`] with the configured
//! attempts and delay; a deposit is not idempotent, so it is only sent again when the answer
//! proves it was not registered (no connection, 429, 503).
//!
//! This is the single place where HTTP statuses and `codeRetour` refusals become errors
//! that name the field to fix.

use crate::config::Config;
use crate::protocol::{self, Refusal, ACCOUNT_HEADER, CONTENT_TYPE};
use base64::Engine as _;
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::retry::Retried;
use serde_json::Value;
use std::cell::RefCell;
use std::time::Duration;

/// Longest wait accepted from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What a call is for, so that its failures can say what went wrong in those terms.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    HealthCheck,
    Structure,
    Deposit {
        file_name: &'a str,
    },
    Report {
        deposit_id: &'a str,
        known: bool,
    },
    /// The structures the technical account is attached to.
    Attachments,
    /// The recipient (buyer) structure of an invoice, before it is deposited.
    Recipient {
        siret: &'a str,
    },
    /// The invoices Chorus Pro made of an integrated deposit.
    Invoices {
        deposit_id: &'a str,
    },
}

/// A successful answer and how many attempts it took.
#[derive(Debug)]
pub struct Answer {
    pub body: Value,
    pub attempts: u32,
}

/// A Chorus Pro client for one call into the plugin.
pub struct Client<'c, 'h> {
    config: &'c Config,
    host: &'c Host<'h>,
    oauth: OAuth2Client,
}

impl<'c, 'h> Client<'c, 'h> {
    pub fn new(config: &'c Config, host: &'c Host<'h>) -> Self {
        let oauth = config.credentials.client(&config.oauth_url).scope("openid");
        Client {
            config,
            host,
            oauth,
        }
    }

    /// The retry policy of the configuration.
    pub fn policy(&self) -> RetryPolicy {
        let mut policy = self.config.retry.policy();
        policy.max_retry_after = MAX_RETRY_AFTER;
        policy
    }

    /// Asks PISTE for a new token, ignoring any cached one: the test routine checks the
    /// credentials, not the cache.
    pub fn fetch_token(&self) -> Result<(), PluginError> {
        self.oauth
            .refresh(self.host)
            .map(|_| ())
            .map_err(|e| self.token_error(e))
    }

    /// `cpro-account`: base64 of `login:password`.
    fn account(&self) -> String {
        let raw = format!(
            "{}:{}",
            self.config.technical_login.trim(),
            self.config.technical_password.expose()
        );
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    /// Sends one API call with both credentials and the retry policy, and reads the answer.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        target: Target<'_>,
        policy: RetryPolicy,
        idempotency: Idempotency,
    ) -> Result<Answer, PluginError> {
        let url = format!("{}{path}", self.config.api_base());
        let request = HttpRequest::new(method, &url)
            .header("Accept", "application/json")
            .secret_header(ACCOUNT_HEADER, self.account())
            .body(CONTENT_TYPE, body)
            .timeout_ms(self.config.timeout_ms());
        let token = RefCell::new(
            self.oauth
                .token(self.host)
                .map_err(|e| self.token_error(e))?,
        );
        let refresh_failed = RefCell::new(None);
        let retried = policy.run(self.host, idempotency, || {
            let response = self.host.http(&request.clone().bearer(&token.borrow()))?;
            if response.status == 401 && is_token_refusal(&response) {
                // The token expired or was revoked: the call was not processed, so sending
                // it again with a new token is safe even for a deposit.
                match self.oauth.refresh(self.host) {
                    Ok(fresh) => {
                        *token.borrow_mut() = fresh;
                        return self.host.http(&request.clone().bearer(&token.borrow()));
                    }
                    Err(e) => *refresh_failed.borrow_mut() = Some(e),
                }
            }
            Ok(response)
        });
        if let Some(e) = refresh_failed.into_inner() {
            return Err(self.token_error(e));
        }
        let attempts = u32::try_from(retried.attempts.len()).unwrap_or(u32::MAX);
        match &retried.result {
            Ok(response) => self
                .read(response, &url, target, &retried)
                .map(|body| Answer { body, attempts }),
            Err(error) => Err(self.transport_error(error, &url, target, &retried)),
        }
    }

    /// A successful answer's JSON, or the error its status or `codeRetour` means.
    fn read(
        &self,
        response: &HttpResponse,
        url: &str,
        target: Target<'_>,
        retried: &Retried,
    ) -> Result<Value, PluginError> {
        if response.is_success() {
            let body: Value = response.json()?;
            if let Some(refusal) = protocol::refusal(&body) {
                return Err(self.refusal_error(&refusal, response.status, target));
            }
            return Ok(body);
        }
        let body: Option<Value> = serde_json::from_slice(&response.body).ok();
        let refusal = body.as_ref().and_then(protocol::refusal);
        if let Some(refusal) = refusal {
            if matches!(response.status, 400 | 409 | 422) {
                return Err(self.refusal_error(&refusal, response.status, target));
            }
        }
        Err(self.status_error(response, body.as_ref(), url, target, retried))
    }

    /// The error of a `codeRetour` refusal, in the terms of what was asked.
    fn refusal_error(&self, refusal: &Refusal, status: u16, target: Target<'_>) -> PluginError {
        match target {
            Target::HealthCheck => PluginError::new(
                ErrorKind::Upstream,
                format!("the health check answered HTTP {status} with a refusal ({refusal})"),
            ),
            Target::Structure => PluginError::config(
                "structure_id",
                format!(
                    "Chorus Pro found no structure {} {} for the technical account {} \
                     ({refusal}): check the structure identifier and that the technical \
                     account is attached to that structure",
                    self.config.structure_id_type.code(),
                    self.config.structure(),
                    self.config.technical_login.trim()
                ),
            ),
            Target::Deposit { file_name } => PluginError::invalid_input(format!(
                "Chorus Pro refused the deposit of {file_name} (HTTP {status}, {refusal}); \
                 nothing was registered: correct the file and submit it again"
            )),
            Target::Report {
                deposit_id,
                known: false,
            } => PluginError::new(
                ErrorKind::NotFound,
                format!(
                    "Chorus Pro knows no deposit {deposit_id} for the technical account {} \
                     ({refusal}): check the deposit number",
                    self.config.technical_login.trim()
                ),
            ),
            Target::Report {
                deposit_id,
                known: true,
            } => PluginError::new(
                ErrorKind::Upstream,
                format!("Chorus Pro refused to report on deposit {deposit_id} ({refusal})"),
            ),
            Target::Attachments => PluginError::new(
                ErrorKind::Upstream,
                format!(
                    "Chorus Pro refused to list the structures of the technical account {} \
                     ({refusal})",
                    self.config.technical_login.trim()
                ),
            ),
            Target::Recipient { siret } => PluginError::invalid_input(format!(
                "Chorus Pro knows no recipient structure with SIRET {siret} ({refusal}): the \
                 invoice was not sent; check the buyer's SIRET in the invoice"
            ))
            .with_field("content_base64"),
            Target::Invoices { deposit_id } => PluginError::new(
                ErrorKind::Upstream,
                format!(
                    "Chorus Pro refused to list the invoices of deposit {deposit_id} ({refusal})"
                ),
            ),
        }
    }

    /// The error of an HTTP status that is not a success.
    fn status_error(
        &self,
        response: &HttpResponse,
        body: Option<&Value>,
        url: &str,
        target: Target<'_>,
        retried: &Retried,
    ) -> PluginError {
        let status = response.status;
        let said = body
            .and_then(provider_message)
            .map(|m| format!(": \"{m}\""))
            .unwrap_or_default();
        let tries = if retried.attempts.len() > 1 {
            format!(" after {}", retried.describe())
        } else {
            String::new()
        };
        let is_deposit = matches!(target, Target::Deposit { .. });
        match status {
            401 if is_token_refusal(response) => PluginError::new(
                ErrorKind::Unauthorized,
                format!(
                    "the PISTE gateway refused a fresh access token (HTTP 401{said}): check \
                     that the application {} is subscribed to the Chorus Pro API, in the same \
                     environment as the API URL",
                    self.config.credentials.client_id()
                ),
            )
            .with_field("client_id"),
            401 => PluginError::new(
                ErrorKind::Unauthorized,
                format!(
                    "Chorus Pro refused the technical account {} (HTTP 401{said}): check the \
                     technical login and password — the password expires periodically and is \
                     renewed in Chorus Pro",
                    self.config.technical_login.trim()
                ),
            )
            .with_field("technical_password"),
            403 => PluginError::new(
                ErrorKind::Forbidden,
                format!(
                    "access refused (HTTP 403{said}): the PISTE application may not be \
                     subscribed to the Chorus Pro API, or the technical account may lack the \
                     API connection right (Chorus Pro, \"Raccordement EDI / API\")"
                ),
            )
            .with_field("client_id"),
            404 => PluginError::config(
                "api_url",
                format!(
                    "{url} does not exist (HTTP 404): check the API URL, which is the gateway's \
                     base without /cpro, e.g. {}",
                    crate::environment::SANDBOX_API_URL
                ),
            ),
            413 => PluginError::invalid_input(format!(
                "the file is too large for Chorus Pro (HTTP 413{said}); the limit is 10 MB"
            )),
            429 => {
                let wait = response
                    .retry_after_secs()
                    .map(|s| format!("retry in {s} s"))
                    .unwrap_or_else(|| "retry in a moment".to_owned());
                PluginError::new(
                    ErrorKind::RateLimited,
                    format!("the PISTE quota is exhausted (HTTP 429{tries}): {wait}"),
                )
            }
            502 | 504 | 500 if is_deposit => PluginError::new(
                ErrorKind::Unavailable,
                format!(
                    "Chorus Pro answered with a server error (HTTP {status}{said}{tries}) \
                     after receiving the file: the deposit may have been registered, so check \
                     the deposits of the structure in Chorus Pro before submitting it again"
                ),
            ),
            500..=599 => PluginError::new(
                ErrorKind::Unavailable,
                format!(
                    "Chorus Pro answered with a server error (HTTP {status}{said}{tries}); try \
                     again later"
                ),
            ),
            400..=499 if is_deposit => PluginError::invalid_input(format!(
                "Chorus Pro refused the deposit (HTTP {status}{said}); nothing was registered"
            )),
            _ => PluginError::new(
                ErrorKind::Upstream,
                format!("unexpected answer from {url} (HTTP {status}{said})"),
            ),
        }
    }

    /// The error of a call that got no answer.
    fn transport_error(
        &self,
        error: &HttpError,
        url: &str,
        target: Target<'_>,
        retried: &Retried,
    ) -> PluginError {
        let tries = if retried.attempts.len() > 1 {
            format!(" ({})", retried.describe())
        } else {
            String::new()
        };
        let host = crate::environment::host_of(url);
        match error.kind {
            HttpErrorKind::Connect => PluginError::new(
                ErrorKind::Unavailable,
                format!(
                    "the host {host} is unreachable ({}){tries}: check the API URL {} and the \
                     network (DNS, proxy, firewall)",
                    error.message,
                    self.config.api_base()
                ),
            ),
            HttpErrorKind::Timeout if matches!(target, Target::Deposit { .. }) => PluginError::new(
                ErrorKind::Timeout,
                format!(
                    "no answer from {url} within {} s{tries}: the deposit may have been \
                     registered, so check the deposits of the structure in Chorus Pro before \
                     submitting it again (or raise the timeout)",
                    self.config.timeout.secs()
                ),
            ),
            HttpErrorKind::Timeout => PluginError::new(
                ErrorKind::Timeout,
                format!(
                    "no answer from {url} within {} s{tries}: Chorus Pro may be slow; try again \
                     or raise the timeout",
                    self.config.timeout.secs()
                ),
            ),
            HttpErrorKind::Quota => PluginError::new(ErrorKind::RateLimited, error.message.clone()),
            HttpErrorKind::Tls => PluginError::new(ErrorKind::Unavailable, error.message.clone()),
            HttpErrorKind::InvalidUrl => PluginError::config(
                "api_url",
                format!("{url} is not a usable URL: {}", error.message),
            ),
            HttpErrorKind::Other => PluginError::new(
                ErrorKind::Unavailable,
                format!("the request to {url} failed{tries}: {}", error.message),
            ),
        }
    }

    /// A token failure in terms of the configuration.
    fn token_error(&self, e: PluginError) -> PluginError {
        let url = self.config.oauth_url.trim();
        match e.kind {
            ErrorKind::Unauthorized | ErrorKind::Forbidden => PluginError::new(
                ErrorKind::Unauthorized,
                format!(
                    "PISTE refused the application's credentials ({}): check the client id and \
                     secret of your PISTE application, in the environment of {url}",
                    e.message
                ),
            )
            .with_field("client_secret"),
            ErrorKind::RateLimited => e,
            kind => PluginError::new(
                kind,
                format!("cannot get an access token from {url}: {}", e.message),
            )
            .with_field("oauth_url"),
        }
    }
}

/// Whether a 401 is the gateway refusing the access token (rather than Chorus Pro refusing
/// the technical account): `WWW-Authenticate: Bearer … error="invalid_token"` or an OAuth2
/// error body.
pub fn is_token_refusal(response: &HttpResponse) -> bool {
    let header = response
        .header("WWW-Authenticate")
        .is_some_and(|h| h.to_ascii_lowercase().contains("invalid_token"));
    header
        || serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|b| b.get("error").and_then(Value::as_str).map(str::to_owned))
            .is_some_and(|e| e == "invalid_token")
}

/// What the provider said in an error body, whatever its shape.
fn provider_message(body: &Value) -> Option<String> {
    let message = [
        "libelle",
        "error_description",
        "message",
        "moreInformation",
        "error",
    ]
    .iter()
    .find_map(|k| body.get(*k).and_then(Value::as_str))?
    .trim();
    (!message.is_empty()).then(|| message.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn token_refusals_are_told_from_account_refusals() {
        assert!(is_token_refusal(&response(
            401,
            &[(
                "www-authenticate",
                "Bearer realm=\"PISTE\", error=\"invalid_token\""
            )],
            ""
        )));
        assert!(is_token_refusal(&response(
            401,
            &[],
            r#"{"error":"invalid_token"}"#
        )));
        assert!(!is_token_refusal(&response(
            401,
            &[],
            r#"{"codeRetour":1,"libelle":"compte"}"#
        )));
    }

    #[test]
    fn provider_messages_of_every_shape() {
        let m = |s: &str| provider_message(&serde_json::from_str(s).unwrap());
        assert_eq!(m(r#"{"libelle":" x "}"#).as_deref(), Some("x"));
        assert_eq!(
            m(r#"{"error":"e","error_description":"d"}"#).as_deref(),
            Some("d")
        );
        assert_eq!(m(r#"{"error":"e"}"#).as_deref(), Some("e"));
        assert_eq!(m(r#"{"x":1}"#), None);
    }
}
