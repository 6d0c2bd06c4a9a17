//! Talking to the platform's Flow and Directory services, and giving every outcome its
//! meaning.
//!
//! Both services take an OAuth2 Bearer token (client-credentials grant, cached by the host).
//! A 401 means the token expired or was revoked: it is renewed once and the call sent again,
//! which is safe even for a submission since the platform did not process it. Transient
//! failures are retried by the host's [`RetryPolicy`] with the configured attempts and delay;
//! a submission is not idempotent, so it is only sent again when the answer proves it was not
//! taken (no connection, 429, 503). Errors answer in the standard's `Error` shape
//! (`errorCode`, `errorMessage`), which every message quotes.

use crate::config::Config;
use crate::protocol::ApiError;
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::retry::Retried;
use std::cell::RefCell;
use std::time::Duration;

/// Longest wait accepted from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Which of the two services a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Flow,
    Directory,
}

/// What a call is for, so that its failures can say what went wrong in those terms.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Health(Service),
    Submit { file_name: &'a str },
    Flow { flow_id: &'a str },
    Search,
    Directory { id: &'a str },
}

/// A successful answer and how many attempts it took.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub attempts: u32,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            PluginError::new(
                ErrorKind::Upstream,
                format!("the platform answered {what} with an unexpected shape ({e})"),
            )
        })
    }
}

/// A client for one call into the plugin.
pub struct Client<'c, 'h> {
    config: &'c Config,
    host: &'c Host<'h>,
    oauth: OAuth2Client,
}

impl<'c, 'h> Client<'c, 'h> {
    pub fn new(config: &'c Config, host: &'c Host<'h>) -> Self {
        let mut oauth = config.credentials.client(&config.token_url);
        if let Some(scope) = config
            .scope
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            oauth = oauth.scope(scope);
        }
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

    /// A new token, ignoring the cache: the test routine checks the credentials.
    pub fn fetch_token(&self) -> Result<(), PluginError> {
        self.oauth
            .refresh(self.host)
            .map(|_| ())
            .map_err(|e| self.token_error(e))
    }

    fn base(&self, service: Service) -> &str {
        match service {
            Service::Flow => self.config.flow_base(),
            Service::Directory => self.config.directory_base(),
        }
    }

    /// Sends one call with the token and the retry policy; a non-success is an error that
    /// names what to do.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        target: Target<'_>,
        policy: RetryPolicy,
        idempotency: Idempotency,
    ) -> Result<Answer, PluginError> {
        let url = format!("{}{path}", self.base(service));
        let mut request = HttpRequest::new(method, &url)
            .header("Accept", "application/json")
            .timeout_ms(self.config.timeout_ms());
        if let Some((content_type, bytes)) = body {
            request = request.body(content_type, bytes);
        }
        let token = RefCell::new(
            self.oauth
                .token(self.host)
                .map_err(|e| self.token_error(e))?,
        );
        let refresh_failed = RefCell::new(None);
        let retried = policy.run(self.host, idempotency, || {
            let response = self.host.http(&request.clone().bearer(&token.borrow()))?;
            if response.status == 401 {
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
            Ok(response) if response.is_success() => Ok(Answer {
                status: response.status,
                body: response.body.clone(),
                attempts,
            }),
            Ok(response) => Err(self.status_error(response, &url, target, &retried)),
            Err(error) => Err(self.transport_error(error, &url, target, &retried)),
        }
    }

    /// The error of an HTTP status that is not a success.
    fn status_error(
        &self,
        response: &HttpResponse,
        url: &str,
        target: Target<'_>,
        retried: &Retried,
    ) -> PluginError {
        let status = response.status;
        let said = serde_json::from_slice::<ApiError>(&response.body)
            .ok()
            .and_then(|e| e.describe())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let tries = if retried.attempts.len() > 1 {
            format!(" after {}", retried.describe())
        } else {
            String::new()
        };
        let submit = matches!(target, Target::Submit { .. });
        match (status, target) {
            (401, _) => PluginError::new(
                ErrorKind::Unauthorized,
                format!(
                    "the platform refused a fresh access token (HTTP 401{said}): check that the \
                     client {} is allowed to use its API",
                    self.config.credentials.client_id()
                ),
            )
            .with_field("client_id"),
            (403, _) => PluginError::new(
                ErrorKind::Forbidden,
                format!(
                    "the platform refused access (HTTP 403{said}): the client may not act for \
                     SIREN {} — check the SIREN and the rights the platform granted",
                    self.config.company()
                ),
            )
            .with_field("siren"),
            (404, Target::Flow { flow_id }) => PluginError::new(
                ErrorKind::NotFound,
                format!("the platform knows no flow {flow_id} (HTTP 404{said}): check the identifier"),
            ),
            (404, Target::Directory { id }) => PluginError::new(
                ErrorKind::NotFound,
                format!("the directory has no entry for {id} (HTTP 404{said})"),
            ),
            (404, Target::Health(Service::Directory)) => PluginError::config(
                "directory_url",
                format!("{url} does not exist (HTTP 404): check the Directory service URL, its base without /v1"),
            ),
            (404, _) => PluginError::config(
                "flow_url",
                format!("{url} does not exist (HTTP 404): check the Flow service URL, its base without /v1"),
            ),
            (413, _) => PluginError::invalid_input(format!(
                "the file is too large for the platform (HTTP 413{said}); it was not taken"
            )),
            (429, _) => {
                let wait = response
                    .retry_after_secs()
                    .map(|s| format!("retry in {s} s"))
                    .unwrap_or_else(|| "retry in a moment".to_owned());
                PluginError::new(
                    ErrorKind::RateLimited,
                    format!("the platform's rate limit is reached (HTTP 429{tries}): {wait}"),
                )
            }
            (500 | 502 | 504, Target::Submit { file_name }) => PluginError::new(
                ErrorKind::Unavailable,
                format!(
                    "the platform answered with a server error (HTTP {status}{said}{tries}) after \
                     receiving {file_name}: it may have been taken, so look for it with \
                     einvoice.list or on the platform before submitting it again"
                ),
            ),
            (500..=599, _) => PluginError::new(
                ErrorKind::Unavailable,
                format!("the platform answered with a server error (HTTP {status}{said}{tries}); try again later"),
            ),
            (400 | 409 | 422, Target::Submit { file_name }) => PluginError::invalid_input(format!(
                "the platform refused {file_name} (HTTP {status}{said}); nothing was registered: \
                 correct it and submit it again"
            ))
            .with_field("content_base64"),
            (400..=499, _) if submit => PluginError::invalid_input(format!(
                "the platform refused the submission (HTTP {status}{said}); nothing was registered"
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
        let field = match target {
            Target::Health(Service::Directory) | Target::Directory { .. } => "directory_url",
            _ => "flow_url",
        };
        match error.kind {
            HttpErrorKind::Connect => PluginError::new(
                ErrorKind::Unavailable,
                format!(
                    "{url} is unreachable ({}){tries}: check the URL and the network (DNS, \
                     proxy, firewall)",
                    error.message
                ),
            )
            .with_field(field),
            HttpErrorKind::Timeout if matches!(target, Target::Submit { .. }) => PluginError::new(
                ErrorKind::Timeout,
                format!(
                    "no answer from {url} within {} s{tries}: the invoice may have been taken, \
                     so look for it on the platform before submitting it again (or raise the \
                     timeout)",
                    self.config.timeout.secs()
                ),
            ),
            HttpErrorKind::Timeout => PluginError::new(
                ErrorKind::Timeout,
                format!(
                    "no answer from {url} within {} s{tries}: the platform may be slow; try \
                     again or raise the timeout",
                    self.config.timeout.secs()
                ),
            ),
            HttpErrorKind::Quota => PluginError::new(ErrorKind::RateLimited, error.message.clone()),
            HttpErrorKind::Tls => PluginError::new(ErrorKind::Unavailable, error.message.clone()),
            HttpErrorKind::InvalidUrl => PluginError::config(
                field,
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
        let url = self.config.token_url.trim();
        match e.kind {
            ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::InvalidInput => {
                PluginError::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "the platform refused the client credentials ({}): check the client id \
                         and secret, for the environment of {url}",
                        e.message
                    ),
                )
                .with_field("client_secret")
            }
            ErrorKind::RateLimited => e,
            kind => PluginError::new(
                kind,
                format!("cannot get an access token from {url}: {}", e.message),
            )
            .with_field("token_url"),
        }
    }
}

/// An error as a step detail or log line: the field to fix first, then the message.
pub fn describe(e: &PluginError) -> String {
    match &e.field {
        Some(field) => format!("{field}: {}", e.message),
        None => e.message.clone(),
    }
}
