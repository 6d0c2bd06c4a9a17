//! Talking to EWS: authentication, HTTP, SOAP faults and throttling.
//!
//! Every request goes through [`Ews::call`], which authenticates it (basic authentication
//! with the delegated user; Windows authentication, whose connection-bound NTLM handshake the
//! host runs for it; or an app-only OAuth token that the host caches and refreshes once on a
//! 401), adds `X-AnchorMailbox` when the Office 365 mode or OAuth asks for it, and turns
//! what came back into either the operation's response messages or a [`CallError`] that
//! says whether Exchange answered at all. When Exchange throttles (ErrorServerBusy), the
//! call waits the `BackOffMilliseconds` Exchange asks for, through the host's clock, a
//! bounded number of times. When a mailbox lives on an older server than the one answering
//! (ErrorInvalidSchemaVersionForMailboxVersion: the proxy cannot serve the requested schema
//! version), the request is written again with the next older `RequestServerVersion`, and
//! that mailbox keeps the older version for the rest of the call, as exchangelib does.

use crate::config::{AuthMethod, Config, ServerVersion, EWS_SCOPE};
use crate::errors::{describe, Actor};
use crate::response::{read, Answer, EwsError, Soap};
use crate::soap::{Access, Envelope};
use passerelle_plugin_api::oauth2::SendError;
use passerelle_plugin_api::prelude::*;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Attempts and longest accepted wait when Exchange throttles, in the standard mode…
const BUSY_ATTEMPTS: u32 = 3;
const BUSY_MAX_WAIT_MS: u64 = 60_000;
/// …and in the Office 365 mode, whose throttling budgets recover over minutes.
const O365_BUSY_ATTEMPTS: u32 = 5;
const O365_BUSY_MAX_WAIT_MS: u64 = 300_000;
/// Wait when ErrorServerBusy comes without BackOffMilliseconds, times the attempt number.
const DEFAULT_BACK_OFF_MS: u64 = 1_000;

/// Why a call produced no usable answer.
#[derive(Debug, Clone)]
pub enum CallError {
    /// Exchange was not reached, refused the credentials, or answered something that is not
    /// EWS: nothing about the mailbox is known.
    Transport(PluginError),
    /// Exchange answered with an EWS error (a SOAP fault).
    Ews(EwsError),
}

/// An EWS client for one plugin call; shared by the sync threads.
pub struct Ews<'a, 'h> {
    config: &'a Config,
    host: &'a Host<'h>,
    oauth: Option<OAuth2Client>,
    busy_waits: AtomicU64,
    busy_waited_ms: AtomicU64,
    /// Older schema versions that mailboxes asked for, by lower-case address ("" for the
    /// account's own).
    versions: Mutex<HashMap<String, ServerVersion>>,
}

impl<'a, 'h> Ews<'a, 'h> {
    pub fn new(config: &'a Config, host: &'a Host<'h>) -> Self {
        let oauth = config.use_oauth.then(|| {
            OAuth2Client::new(
                &config.token_url(),
                config.client_id.as_deref().unwrap_or_default().trim(),
                config
                    .client_secret
                    .as_ref()
                    .map(Secret::expose)
                    .unwrap_or_default()
                    .trim(),
            )
            .scope(EWS_SCOPE)
        });
        Ews {
            config,
            host,
            oauth,
            busy_waits: AtomicU64::new(0),
            busy_waited_ms: AtomicU64::new(0),
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// Gets an OAuth token (a new one when `fresh`); does nothing with basic authentication.
    pub fn fetch_token(&self, fresh: bool) -> Result<(), PluginError> {
        let Some(oauth) = &self.oauth else {
            return Ok(());
        };
        let result = if fresh {
            oauth.refresh(self.host)
        } else {
            oauth.token(self.host)
        };
        result.map(|_| ()).map_err(|e| self.token_error(e))
    }

    /// The envelope of a request on `mailbox`'s calendar (the account's own without one).
    pub fn envelope<'m>(&self, mailbox: Option<&'m str>) -> Envelope<'m>
    where
        'a: 'm,
    {
        let access = match mailbox {
            Some(m) if self.config.impersonates() => Access::Impersonate(m),
            Some(m) => Access::Delegate(m),
            None => Access::Own,
        };
        Envelope {
            version: self.version_for(access),
            access,
            time_zone: Some(self.config.time_zone.trim()),
        }
    }

    fn version_key(access: Access<'_>) -> String {
        access.mailbox().unwrap_or_default().to_lowercase()
    }

    /// The schema version for a mailbox: the configured one, or an older one it asked for.
    fn version_for(&self, access: Access<'_>) -> ServerVersion {
        self.versions
            .lock()
            .ok()
            .and_then(|v| v.get(&Self::version_key(access)).copied())
            .unwrap_or(self.config.server_version)
    }

    /// Who acts, for error messages.
    pub fn actor(&self) -> Actor<'a> {
        Actor {
            user: self
                .config
                .username
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty()),
            oauth: self.config.use_oauth,
            impersonating: self.config.impersonates(),
        }
    }

    /// The error for a failed call on `mailbox`.
    pub fn error(&self, e: CallError, mailbox: Option<&str>) -> PluginError {
        match e {
            CallError::Transport(p) => p,
            CallError::Ews(e) => describe(&e, mailbox, self.actor()),
        }
    }

    /// How many times, and how long in all, calls waited for ErrorServerBusy.
    pub fn busy_waits(&self) -> (u64, u64) {
        (
            self.busy_waits.load(Ordering::Relaxed),
            self.busy_waited_ms.load(Ordering::Relaxed),
        )
    }

    /// Writes a request with `write` for the mailbox's schema version, sends it and reads its
    /// answer; writes it again with an older version when the mailbox's server asks for one.
    pub fn call(
        &self,
        envelope: &Envelope<'_>,
        write: impl Fn(&Envelope<'_>) -> io::Result<Vec<u8>>,
    ) -> Result<Answer, CallError> {
        let mut envelope = *envelope;
        envelope.version = self.version_for(envelope.access);
        loop {
            let body = write(&envelope).map_err(|e| {
                CallError::Transport(PluginError::internal(format!(
                    "cannot write the SOAP request: {e}"
                )))
            })?;
            match self.send(&envelope, body) {
                Err(CallError::Ews(e))
                    if e.code == "ErrorInvalidSchemaVersionForMailboxVersion" =>
                {
                    let Some(older) = envelope.version.older() else {
                        return Err(CallError::Ews(e));
                    };
                    self.host.log(
                        LogLevel::Warn,
                        format!(
                            "the server of {} does not serve schema version {} \
                             (ErrorInvalidSchemaVersionForMailboxVersion); trying {}",
                            envelope.access.mailbox().unwrap_or("the account"),
                            envelope.version.as_str(),
                            older.as_str()
                        ),
                    );
                    if let Ok(mut versions) = self.versions.lock() {
                        versions.insert(Self::version_key(envelope.access), older);
                    }
                    envelope.version = older;
                }
                other => return other,
            }
        }
    }

    /// Sends one SOAP request and reads its answer, waiting out throttling.
    fn send(&self, envelope: &Envelope<'_>, body: Vec<u8>) -> Result<Answer, CallError> {
        let (attempts, max_wait) = if self.config.office365_mode {
            (O365_BUSY_ATTEMPTS, O365_BUSY_MAX_WAIT_MS)
        } else {
            (BUSY_ATTEMPTS, BUSY_MAX_WAIT_MS)
        };
        let mut request = HttpRequest::post(self.config.ews_url.trim())
            .header("Accept", "text/xml")
            .body("text/xml; charset=utf-8", body)
            .timeout_ms(self.config.timeout_ms());
        if let Some(mailbox) = envelope.access.impersonated() {
            if self.config.sends_anchor_mailbox() {
                request = request.header("X-AnchorMailbox", mailbox);
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let busy = match self.send_once(&request) {
                Ok(answer) => match all_busy(&answer) {
                    Some(busy) => busy,
                    None => return Ok(answer),
                },
                Err(CallError::Ews(e)) if e.code == "ErrorServerBusy" => e,
                Err(e) => return Err(e),
            };
            let wait = busy
                .back_off_ms()
                .unwrap_or(DEFAULT_BACK_OFF_MS * u64::from(attempt));
            if attempt >= attempts || wait > max_wait {
                return Err(CallError::Ews(busy));
            }
            self.host.log(
                LogLevel::Warn,
                format!(
                    "Exchange is busy (ErrorServerBusy) for {}; waiting {wait} ms as asked \
                     (attempt {attempt}/{attempts})",
                    envelope.access.mailbox().unwrap_or("the account")
                ),
            );
            self.busy_waits.fetch_add(1, Ordering::Relaxed);
            self.busy_waited_ms.fetch_add(wait, Ordering::Relaxed);
            self.host.sleep(Duration::from_millis(wait));
        }
    }

    fn send_once(&self, request: &HttpRequest) -> Result<Answer, CallError> {
        let url = self.config.ews_url.trim();
        let response = match &self.oauth {
            Some(oauth) => oauth.send(self.host, request).map_err(|e| match e {
                SendError::Token(t) => CallError::Transport(self.token_error(t)),
                SendError::Http(h) => CallError::Transport(transport_error(h, url)),
            })?,
            None => {
                let user = self.config.username.as_deref().unwrap_or_default().trim();
                let password = self
                    .config
                    .password
                    .as_ref()
                    .map(Secret::expose)
                    .unwrap_or_default();
                let request = match self.config.auth_method {
                    AuthMethod::Basic => request.clone().basic_auth(user, password),
                    // The host runs the handshake on a connection it keeps for these
                    // credentials: NTLM authenticates connections, not requests.
                    AuthMethod::Ntlm => request.clone().auth(HttpAuth::ntlm(user, password)),
                };
                self.host
                    .http(&request)
                    .map_err(|h| CallError::Transport(transport_error(h, url)))?
            }
        };
        self.read_response(&response)
    }

    fn read_response(&self, response: &HttpResponse) -> Result<Answer, CallError> {
        let url = self.config.ews_url.trim();
        let status = response.status;
        match status {
            200 | 500 => match read(&response.body) {
                Ok(Soap::Answer(answer)) => Ok(answer),
                Ok(Soap::Fault(fault)) => Err(CallError::Ews(fault.into())),
                Err(why) if status == 200 => Err(CallError::Transport(PluginError::config(
                    "ews_url",
                    format!(
                        "{url} answered HTTP 200 with something that is not an EWS answer \
                         ({why}): check the EWS URL, which usually ends with /EWS/Exchange.asmx"
                    ),
                ))),
                Err(why) => Err(CallError::Transport(PluginError::new(
                    ErrorKind::Unavailable,
                    format!(
                        "Exchange failed with HTTP 500 without a SOAP fault ({why}); first \
                         bytes: {}",
                        first_bytes(response)
                    ),
                ))),
            },
            401 => Err(CallError::Transport(self.unauthorized(response))),
            403 => Err(CallError::Transport(PluginError::new(
                ErrorKind::Forbidden,
                format!(
                    "{url} refused access (HTTP 403){}: check that EWS is enabled for this \
                     account (Set-CASMailbox -EwsEnabled $true) and not blocked by an access policy",
                    diagnostics(response)
                ),
            ))),
            404 => Err(CallError::Transport(PluginError::config(
                "ews_url",
                format!("{url} does not exist (HTTP 404): check the EWS URL, e.g. https://mail.example.com/EWS/Exchange.asmx"),
            ))),
            301 | 302 | 303 | 307 | 308 => Err(CallError::Transport(PluginError::config(
                "ews_url",
                format!(
                    "{url} redirects (HTTP {status}) to {}: use that address as the EWS URL",
                    response.header("Location").unwrap_or("another address")
                ),
            ))),
            415 => Err(CallError::Transport(PluginError::internal(format!(
                "{url} refused the request's content type (HTTP 415); this is a bug of the \
                 exchange-ews plugin"
            )))),
            429 | 502 | 503 | 504 => Err(CallError::Transport(PluginError::new(
                ErrorKind::Unavailable,
                format!("Exchange is unavailable (HTTP {status}); try again later"),
            ))),
            _ => Err(CallError::Transport(PluginError::new(
                ErrorKind::Upstream,
                format!(
                    "unexpected answer from {url} (HTTP {status}): {}",
                    first_bytes(response)
                ),
            ))),
        }
    }

    fn unauthorized(&self, response: &HttpResponse) -> PluginError {
        let url = self.config.ews_url.trim();
        let why = diagnostics(response);
        if self.config.use_oauth {
            PluginError::new(
                ErrorKind::Unauthorized,
                format!(
                    "{url} refused the OAuth token (HTTP 401{why}) even after getting a new \
                     one: check that the app registration has the Exchange application \
                     permission full_access_as_app with admin consent"
                ),
            )
        } else {
            let offered = offered_schemes(response);
            let offers = |scheme: &str| offered.iter().any(|s| s.eq_ignore_ascii_case(scheme));
            let windows = offers("NTLM") || offers("Negotiate");
            match self.config.auth_method {
                AuthMethod::Basic if !offered.is_empty() && !offers("Basic") && windows => {
                    return PluginError::config(
                        "auth_method",
                        format!(
                            "{url} does not accept basic authentication: it asks for Windows \
                             authentication (WWW-Authenticate: {}). Choose the authentication \
                             method Windows authentication (NTLM) (auth_method = ntlm)",
                            offered.join(", ")
                        ),
                    )
                }
                AuthMethod::Ntlm if !offered.is_empty() && !windows => {
                    return PluginError::config(
                        "auth_method",
                        format!(
                            "{url} does not accept Windows authentication (NTLM): it offers {}. \
                             Choose the authentication method that it offers{}",
                            offered.join(", "),
                            if offers("Basic") {
                                " (auth_method = basic)"
                            } else {
                                ""
                            }
                        ),
                    )
                }
                _ => {}
            }
            PluginError::new(
                ErrorKind::Unauthorized,
                format!(
                    "{url} refused the delegated user or its password ({} authentication, HTTP \
                     401{why}): check them (for Windows authentication, DOMAIN\\user or \
                     user@domain); Exchange Online accepts neither, use OAuth or the \
                     calendar-graph plugin there",
                    self.config.auth_method.as_str()
                ),
            )
            .with_field("password")
        }
    }

    /// A token error with the field to fix, from the identity platform's AADSTS code.
    fn token_error(&self, e: PluginError) -> PluginError {
        let url = self.config.token_url();
        let field = if e.message.contains("AADSTS90002") || e.message.contains("AADSTS900023") {
            Some("tenant_id")
        } else if e.message.contains("AADSTS700016") {
            Some("client_id")
        } else if e.message.contains("AADSTS7000215") || e.message.contains("invalid_client") {
            Some("client_secret")
        } else if e.kind == ErrorKind::Config {
            Some("authority_url")
        } else {
            None
        };
        let mut out = PluginError::new(
            e.kind,
            format!("cannot get an OAuth token from {url}: {}", e.message),
        );
        out.field = field.map(str::to_owned);
        out
    }
}

/// When every response message is ErrorServerBusy, nothing was done: the request may be
/// sent again as a whole.
fn all_busy(answer: &Answer) -> Option<EwsError> {
    let first = answer.messages.first()?;
    answer
        .messages
        .iter()
        .all(|m| m.is_error() && m.code == "ErrorServerBusy")
        .then(|| first.error())
}

/// The schemes of every `WWW-Authenticate` header, in order (`Negotiate`, `NTLM`, `Basic`…).
fn offered_schemes(response: &HttpResponse) -> Vec<String> {
    response
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|part| {
            let word = part.split_whitespace().next()?;
            // Parameters (realm="…") follow a scheme after a comma; schemes have no '='.
            (!word.contains('=')).then(|| word.to_owned())
        })
        .collect()
}

/// Exchange Online's `x-ms-diagnostics` reason, or the `WWW-Authenticate` error.
fn diagnostics(response: &HttpResponse) -> String {
    let reason = response
        .header("x-ms-diagnostics")
        .and_then(|d| d.split_once("reason=\""))
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(reason, _)| reason.to_owned())
        .or_else(|| {
            let auth = response.header("WWW-Authenticate")?;
            let (_, rest) = auth.split_once("error_description=\"")?;
            rest.split_once('"').map(|(d, _)| d.to_owned())
        });
    reason.map(|r| format!(": {r}")).unwrap_or_default()
}

fn first_bytes(response: &HttpResponse) -> String {
    response
        .text()
        .chars()
        .take(200)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The error for a request that got no answer at all.
fn transport_error(error: HttpError, url: &str) -> PluginError {
    match error.kind {
        HttpErrorKind::Connect => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "Exchange is unreachable at {url} ({}): check the EWS URL and the network \
                 (DNS, proxy, firewall)",
                error.message
            ),
        ),
        // The host's message names the certificate's issuer and how to trust it.
        HttpErrorKind::Tls => PluginError::new(ErrorKind::Unavailable, error.message),
        HttpErrorKind::Timeout => PluginError::new(
            ErrorKind::Timeout,
            format!(
                "no answer from {url} in time ({}): Exchange may be slow; try again or raise \
                 the timeout",
                error.message
            ),
        ),
        HttpErrorKind::Quota => PluginError::new(ErrorKind::RateLimited, error.message),
        HttpErrorKind::InvalidUrl => PluginError::config(
            "ews_url",
            format!("{url} is not a usable URL: {}", error.message),
        ),
        HttpErrorKind::Other => PluginError::new(
            ErrorKind::Unavailable,
            format!("the request to {url} failed: {}", error.message),
        ),
    }
}
