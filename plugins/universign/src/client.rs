//! Talks to Universign's XML-RPC endpoint through the host, and gives every way a call can
//! end its meaning: the one place where HTTP statuses, transport failures and Universign's
//! fault codes become errors that say what happened and what to do.
//!
//! Calls are POSTs of `text/xml` with HTTP Basic credentials (a secret header, never
//! logged). Reads are sent once: the polling task retries failed transactions at its next
//! round, and the ERP can ask again. `requestTransaction` is never retried, since a lost
//! answer may hide a transaction that was created.

use crate::config::Config;
use crate::xmlrpc::{self, Fault, MethodCall, MethodResponse, Value};
use base64::Engine as _;
use passerelle_plugin_api::prelude::*;

/// Universign's fault codes (public documentation of the signer API).
/// Fault codes from Universign's signature guide 8.8 (appendix "Error codes"), the same
/// codes as the `CapSens/Universign` client's `Universign::Error.match_class`. A code not
/// listed here is shown verbatim with Universign's message.
pub mod faults {
    /// The PDF could not be signed (invalid or protected document, bad signature field).
    pub const PDF_SIGNING: i32 = 73002;
    /// A stored private key could not be retrieved.
    pub const PRIVATE_KEY: i32 = 73004;
    /// The user has no valid signing account (73011), or it is inactive (73013).
    pub const NO_SIGNING_ACCOUNT: i32 = 73011;
    pub const INACTIVE_SIGNING_ACCOUNT: i32 = 73013;
    /// The transaction id is missing or wrong when retrieving a document.
    pub const DOCUMENT_TRANSACTION_ID: i32 = 73014;
    /// The document is being retrieved from archival; asking again later returns it.
    pub const ARCHIVED: i32 = 73070;
    /// Invalid login or password.
    pub const INVALID_LOGIN: i32 = 73010;
    /// The request is malformed (missing or mistyped member).
    pub const MALFORMED_REQUEST: i32 = 73020;
    /// No transaction with this id for this account.
    pub const UNKNOWN_TRANSACTION: i32 = 73025;
    /// The action is not allowed in the transaction's current state.
    pub const NOT_ALLOWED_IN_STATE: i32 = 73027;
    /// Universign's internal error.
    pub const INTERNAL: i32 = 73040;
}

/// How a call ended when it did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No HTTP answer at all.
    Transport(HttpError),
    /// An HTTP status other than 200.
    Status { status: u16, excerpt: String },
    /// A 200 whose body is not an XML-RPC response.
    Garbled { reason: String, excerpt: String },
    /// An XML-RPC fault.
    Fault(Fault),
}

impl Failure {
    /// Whether this failure concerns the service or the account rather than one
    /// transaction: every other call would fail the same way.
    pub fn is_service_wide(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Status { status, .. } => matches!(status, 401 | 403 | 404 | 502..=504),
            Failure::Garbled { .. } => true,
            Failure::Fault(f) => f.code == faults::INVALID_LOGIN,
        }
    }
}

/// What a call was about, for messages.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// The test routine's probe.
    Probe,
    /// Creating a transaction.
    NewTransaction,
    /// One existing transaction.
    Transaction(&'a str),
}

/// A Universign client for one call into the plugin.
pub struct Client<'c, 'h> {
    config: &'c Config,
    host: &'c Host<'h>,
}

impl<'c, 'h> Client<'c, 'h> {
    pub fn new(config: &'c Config, host: &'c Host<'h>) -> Self {
        Client { config, host }
    }

    /// Sends one method call and returns its value, or how it failed.
    pub fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, Failure> {
        let call = MethodCall {
            method: method.to_owned(),
            params,
        };
        let body = xmlrpc::encode_call(&call).map_err(|e| Failure::Garbled {
            reason: format!("cannot encode the request: {e}"),
            excerpt: String::new(),
        })?;
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.config.user(),
            self.config.password()
        ));
        let request = HttpRequest::post(self.config.endpoint())
            .secret_header("Authorization", format!("Basic {credentials}"))
            .header("Accept", "text/xml")
            .body("text/xml; charset=utf-8", body)
            .timeout_ms(self.config.timeout_ms());
        let response = self.host.http(&request).map_err(Failure::Transport)?;
        if response.status != 200 {
            return Err(Failure::Status {
                status: response.status,
                excerpt: excerpt(&response.body),
            });
        }
        match xmlrpc::decode_response(&response.body) {
            Ok(MethodResponse::Success(value)) => Ok(value),
            Ok(MethodResponse::Fault(fault)) => Err(Failure::Fault(fault)),
            Err(e) => Err(Failure::Garbled {
                reason: e.to_string(),
                excerpt: excerpt(&response.body),
            }),
        }
    }

    /// Like [`Client::call`], with failures turned into errors for the caller.
    pub fn call_or_error(
        &self,
        method: &str,
        params: Vec<Value>,
        subject: Subject<'_>,
    ) -> Result<Value, PluginError> {
        self.call(method, params)
            .map_err(|f| self.error(&f, method, subject))
    }

    /// The error for a failed call: what happened, and what to do about it.
    pub fn error(&self, failure: &Failure, method: &str, subject: Subject<'_>) -> PluginError {
        describe(failure, self.config, method, subject)
    }
}

/// See [`Client::error`].
pub fn describe(
    failure: &Failure,
    config: &Config,
    method: &str,
    subject: Subject<'_>,
) -> PluginError {
    let url = config.endpoint();
    match failure {
        Failure::Transport(e) => transport_error(e, url, config.timeout.secs()),
        Failure::Status { status: 401, .. } => PluginError::new(
            ErrorKind::Unauthorized,
            format!(
                "Universign refused the credentials of user {:?} (HTTP 401): check the \
                 Universign user and password",
                config.user()
            ),
        )
        .with_field("password"),
        Failure::Status { status: 403, .. } => PluginError::new(
            ErrorKind::Forbidden,
            format!(
                "Universign refused access to {url} for user {:?} (HTTP 403): check that the \
                 account may use the signer API on this platform",
                config.user()
            ),
        ),
        Failure::Status { status: 404, .. } => PluginError::config(
            "url",
            format!(
                "{url} does not exist (HTTP 404): check the Universign URL, e.g. {}",
                crate::config::PRODUCTION_URL
            ),
        ),
        Failure::Status { status, excerpt } if (500..=599).contains(status) => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "Universign answered {method} with a server error (HTTP {status}{}); try again \
                 later",
                quoted(excerpt)
            ),
        ),
        Failure::Status { status, excerpt } => PluginError::new(
            ErrorKind::Upstream,
            format!(
                "unexpected answer from {url} to {method} (HTTP {status}{})",
                quoted(excerpt)
            ),
        ),
        Failure::Garbled { reason, excerpt } => PluginError::new(
            ErrorKind::Upstream,
            format!(
                "{url} did not answer {method} in XML-RPC ({reason}){}: check that the \
                 Universign URL is the XML-RPC endpoint, e.g. {}",
                if excerpt.is_empty() {
                    String::new()
                } else {
                    format!("; it began with {excerpt:?}")
                },
                crate::config::PRODUCTION_URL
            ),
        ),
        Failure::Fault(fault) => fault_error(fault, config, method, subject),
    }
}

/// Universign's faults, each with its meaning and the next step.
fn fault_error(fault: &Fault, config: &Config, method: &str, subject: Subject<'_>) -> PluginError {
    let said = format!("fault {}: {:?}", fault.code, fault.message);
    match fault.code {
        faults::INVALID_LOGIN => PluginError::new(
            ErrorKind::Unauthorized,
            format!(
                "Universign refused the login or password of user {:?} ({said}): check the \
                 Universign user and password",
                config.user()
            ),
        )
        .with_field("password"),
        faults::MALFORMED_REQUEST => PluginError::new(
            ErrorKind::InvalidInput,
            match subject {
                Subject::NewTransaction => format!(
                    "Universign refused the signature request as malformed ({said}): check the \
                     signers' names, e-mail addresses and phone numbers, the documents and \
                     their signature fields (page within the document, coordinates), and that \
                     the account allows the certificate level and SMS identification asked"
                ),
                _ => format!("Universign refused {method} as malformed ({said})"),
            },
        ),
        faults::UNKNOWN_TRANSACTION => PluginError::new(
            ErrorKind::NotFound,
            match subject {
                Subject::Transaction(id) => format!(
                    "Universign has no transaction {id} for user {:?} ({said})",
                    config.user()
                ),
                _ => format!("Universign knows no such transaction ({said})"),
            },
        ),
        faults::NOT_ALLOWED_IN_STATE => PluginError::new(
            ErrorKind::InvalidInput,
            match subject {
                Subject::Transaction(id) => format!(
                    "Universign does not allow {method} on transaction {id} in its current state \
                     ({said}); check its status first"
                ),
                _ => format!("Universign does not allow {method} now ({said})"),
            },
        ),
        faults::PDF_SIGNING => PluginError::new(
            ErrorKind::InvalidInput,
            format!(
                "Universign cannot sign the PDF ({said}): check that every document is a valid, \
                 unprotected PDF"
            ),
        ),
        faults::NO_SIGNING_ACCOUNT | faults::INACTIVE_SIGNING_ACCOUNT => PluginError::new(
            ErrorKind::Forbidden,
            format!(
                "Universign says user {:?} has no valid signing account, or an inactive one \
                 ({said}): ask Universign to activate the account's signature service",
                config.user()
            ),
        ),
        faults::PRIVATE_KEY => PluginError::new(
            ErrorKind::Unavailable,
            format!("Universign could not retrieve a stored signing key ({said}); try again later"),
        ),
        faults::DOCUMENT_TRANSACTION_ID => PluginError::new(
            ErrorKind::NotFound,
            format!("Universign found no transaction for {method} ({said}): check the id"),
        ),
        faults::ARCHIVED => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "Universign is bringing the documents back from its archive ({said}); this can \
                 take a few hours, ask again later"
            ),
        ),
        _ if fault.message.contains("Not enough tokens") => PluginError::new(
            ErrorKind::Forbidden,
            format!(
                "Universign refused {method}: the account has no signatures left ({said}); buy \
                 more from Universign"
            ),
        ),
        faults::INTERNAL => PluginError::new(
            ErrorKind::Unavailable,
            format!("Universign had an internal error on {method} ({said}); try again later"),
        ),
        _ => PluginError::new(
            ErrorKind::Upstream,
            format!("Universign answered {method} with {said}"),
        ),
    }
}

/// The error for a request that got no answer at all.
pub fn transport_error(error: &HttpError, url: &str, timeout_secs: u32) -> PluginError {
    match error.kind {
        HttpErrorKind::Connect => PluginError::new(
            ErrorKind::Unavailable,
            format!(
                "Universign is unreachable at {url} ({}): check the Universign URL and the \
                 network (DNS, proxy, firewall)",
                error.message
            ),
        ),
        // The host's message names the certificate's issuer and how to trust it.
        HttpErrorKind::Tls => PluginError::new(ErrorKind::Unavailable, error.message.clone()),
        HttpErrorKind::Timeout => PluginError::new(
            ErrorKind::Timeout,
            format!(
                "no answer from {url} within {timeout_secs} s: Universign may be slow; try again \
                 or raise the timeout"
            ),
        ),
        HttpErrorKind::Quota => PluginError::new(ErrorKind::RateLimited, error.message.clone()),
        HttpErrorKind::InvalidUrl => PluginError::config(
            "url",
            format!("{url} is not a usable URL: {}", error.message),
        ),
        HttpErrorKind::Other => PluginError::new(
            ErrorKind::Unavailable,
            format!("the request to {url} failed: {}", error.message),
        ),
    }
}

/// The start of a body, for messages: one line, at most 120 characters.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(120)
        .collect()
}

fn quoted(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        serde_json::from_value(json!({
            "enabled": true,
            "url": "https://sign.test/sign/rpc/",
            "user": "erp@example.com",
            "password": "pw"
        }))
        .unwrap()
    }

    fn fault(code: i32) -> Failure {
        Failure::Fault(Fault {
            code,
            message: "said by Universign".into(),
        })
    }

    #[test]
    fn faults_map_to_kinds_and_advice() {
        let c = config();
        let tx = Subject::Transaction("tx-1");
        let cases = [
            (
                faults::INVALID_LOGIN,
                ErrorKind::Unauthorized,
                "check the Universign user and password",
            ),
            (
                faults::MALFORMED_REQUEST,
                ErrorKind::InvalidInput,
                "as malformed",
            ),
            (
                faults::UNKNOWN_TRANSACTION,
                ErrorKind::NotFound,
                "Universign has no transaction tx-1",
            ),
            (
                faults::NOT_ALLOWED_IN_STATE,
                ErrorKind::InvalidInput,
                "in its current state",
            ),
            (
                faults::PDF_SIGNING,
                ErrorKind::InvalidInput,
                "valid, unprotected PDF",
            ),
            (faults::INTERNAL, ErrorKind::Unavailable, "try again later"),
            (faults::PRIVATE_KEY, ErrorKind::Unavailable, "signing key"),
            (
                faults::NO_SIGNING_ACCOUNT,
                ErrorKind::Forbidden,
                "no valid signing account",
            ),
            (
                faults::INACTIVE_SIGNING_ACCOUNT,
                ErrorKind::Forbidden,
                "activate",
            ),
            (
                faults::DOCUMENT_TRANSACTION_ID,
                ErrorKind::NotFound,
                "check the id",
            ),
            (faults::ARCHIVED, ErrorKind::Unavailable, "archive"),
            (12345, ErrorKind::Upstream, "fault 12345"),
            // Unknown codes are shown as Universign gave them.
            (
                73099,
                ErrorKind::Upstream,
                "fault 73099: \"said by Universign\"",
            ),
        ];
        for (code, kind, needle) in cases {
            let e = describe(&fault(code), &c, "requester.getTransactionInfo", tx);
            assert_eq!(e.kind, kind, "{code}");
            assert!(e.message.contains(needle), "{code}: {}", e.message);
            assert!(e.message.contains("said by Universign"), "{}", e.message);
            assert!(!e.message.contains("pw"), "{}", e.message);
        }
        let e = describe(&fault(faults::INVALID_LOGIN), &c, "m", tx);
        assert_eq!(e.field.as_deref(), Some("password"));
        assert!(e.message.contains("\"erp@example.com\""));
        let e = describe(
            &fault(faults::MALFORMED_REQUEST),
            &c,
            "m",
            Subject::NewTransaction,
        );
        assert!(e.message.contains("e-mail addresses"), "{}", e.message);
        let tokens = Failure::Fault(Fault {
            code: 73000,
            message: "Not enough tokens".into(),
        });
        let e = describe(
            &tokens,
            &c,
            "requester.requestTransaction",
            Subject::NewTransaction,
        );
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(e.message.contains("no signatures left"), "{}", e.message);
    }

    #[test]
    fn statuses_and_transport_failures_name_the_fix() {
        let c = config();
        let status = |status: u16, excerpt: &str| Failure::Status {
            status,
            excerpt: excerpt.into(),
        };
        let e = describe(&status(401, ""), &c, "m", Subject::Probe);
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert_eq!(e.field.as_deref(), Some("password"));
        let e = describe(&status(404, ""), &c, "m", Subject::Probe);
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.field.as_deref(), Some("url"));
        let e = describe(&status(503, "down"), &c, "m", Subject::Probe);
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("HTTP 503: \"down\""), "{}", e.message);
        let e = describe(&status(418, ""), &c, "m", Subject::Probe);
        assert_eq!(e.kind, ErrorKind::Upstream);
        let e = describe(
            &Failure::Garbled {
                reason: "expected <methodResponse>, found <html>".into(),
                excerpt: "<html>".into(),
            },
            &c,
            "m",
            Subject::Probe,
        );
        assert!(
            e.message.contains("did not answer m in XML-RPC"),
            "{}",
            e.message
        );
        let e = describe(
            &Failure::Transport(HttpError {
                kind: HttpErrorKind::Connect,
                message: "connection refused".into(),
            }),
            &c,
            "m",
            Subject::Probe,
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.starts_with(
            "Universign is unreachable at https://sign.test/sign/rpc/ (connection refused)"
        ));
        let e = transport_error(
            &HttpError {
                kind: HttpErrorKind::Timeout,
                message: String::new(),
            },
            "u",
            9,
        );
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("within 9 s"));
    }

    #[test]
    fn service_wide_failures_are_told_apart() {
        assert!(fault(faults::INVALID_LOGIN).is_service_wide());
        assert!(!fault(faults::UNKNOWN_TRANSACTION).is_service_wide());
        assert!(!fault(faults::INTERNAL).is_service_wide());
        assert!(Failure::Status {
            status: 503,
            excerpt: String::new()
        }
        .is_service_wide());
        assert!(!Failure::Status {
            status: 500,
            excerpt: String::new()
        }
        .is_service_wide());
        assert!(Failure::Transport(HttpError {
            kind: HttpErrorKind::Connect,
            message: String::new()
        })
        .is_service_wide());
    }
}
