//! What Microsoft's error codes mean for the administrator, and what to do about them.
//!
//! Two vocabularies: the identity platform's `AADSTS` codes, found in the token endpoint's
//! `error_description`, and Graph's OData errors (`{"error": {"code", "message",
//! "innerError"}}`) with their HTTP status. Each becomes a [`PluginError`] whose kind the
//! ERP can act on and whose message says which setting or which admin action fixes it.

use passerelle_plugin_api::prelude::*;
use serde::Deserialize;

/// AADSTS codes of the client credentials grant: (code, field to fix, explanation).
const AADSTS: &[(&str, &str, &str)] = &[
    (
        "AADSTS90002",
        "tenant_id",
        "the tenant does not exist: check the Directory (tenant) id, and that the authority \
         is the right cloud",
    ),
    (
        "AADSTS900023",
        "tenant_id",
        "the tenant id is malformed: use the Directory (tenant) GUID or a verified domain",
    ),
    (
        "AADSTS700016",
        "client_id",
        "no application with this client id exists in the tenant: check the Application \
         (client) id, and that the app is registered (or consented) in this tenant",
    ),
    (
        "AADSTS7000215",
        "client_secret",
        "the client secret is wrong: paste the secret's Value (shown once when it is \
         created), not its Secret ID",
    ),
    (
        "AADSTS7000222",
        "client_secret",
        "the client secret has expired: create a new one under Certificates & secrets of \
         the app registration and save it here",
    ),
    (
        "AADSTS1002012",
        "authority_url",
        "the scope was refused: the authority must be the Microsoft identity platform of the \
         same cloud as Graph",
    ),
];

/// The token error with its field and an explanation of its AADSTS code.
pub fn token_error(e: PluginError, token_url: &str) -> PluginError {
    let known = AADSTS.iter().find(|(code, _, _)| {
        e.message
            .match_indices(code)
            .any(|(i, _)| !e.message[i + code.len()..].starts_with(|c: char| c.is_ascii_digit()))
    });
    let (field, advice) = match known {
        Some((code, field, why)) => (Some(*field), format!(" — {code}: {why}")),
        None if e.kind == ErrorKind::Config => (Some("authority_url"), String::new()),
        None => (None, String::new()),
    };
    let mut out = PluginError::new(
        e.kind,
        format!(
            "cannot get an app-only token from {token_url}: {}{advice}",
            e.message
        ),
    );
    out.field = field.map(str::to_owned);
    out
}

/// Graph's error body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ODataError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct Envelope {
    error: ODataError,
}

impl ODataError {
    /// The error of a response body, or an empty one when it is not OData.
    pub fn read(body: &[u8]) -> ODataError {
        serde_json::from_slice::<Envelope>(body)
            .map(|e| e.error)
            .unwrap_or_default()
    }
}

/// What failed, for the messages.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub mailbox: &'a str,
    pub client_id: &'a str,
}

/// The error for a Graph answer with a failure status.
pub fn describe(status: u16, e: &ODataError, cx: Context<'_>) -> PluginError {
    let said = if e.code.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {}: {}", e.code, e.message.trim())
    };
    let mailbox = cx.mailbox;
    match (status, e.code.as_str()) {
        (401, _) => PluginError::new(
            ErrorKind::Unauthorized,
            format!(
                "Microsoft Graph refused the app-only token ({said}) even after getting a new \
                 one: check that the token comes from the same cloud as the Graph URL and that \
                 the app registration is enabled"
            ),
        ),
        (403, _) => PluginError::new(
            ErrorKind::Forbidden,
            format!(
                "Microsoft Graph denied access to the calendar of {mailbox} ({said}). Grant \
                 the app registration the Microsoft Graph application permission \
                 Calendars.ReadWrite with admin consent. If it is granted, an Exchange \
                 application access policy (or RBAC for Applications) limits the app to some \
                 mailboxes and leaves this one out: check with Test-ApplicationAccessPolicy \
                 -Identity {mailbox} -AppId {} and add the mailbox to the policy's group",
                cx.client_id
            ),
        ),
        (404, "ErrorInvalidUser" | "ResourceNotFound" | "MailboxNotEnabledForRESTAPI") => {
            PluginError::new(
                ErrorKind::NotFound,
                format!(
                    "{mailbox} has no Exchange Online mailbox that Graph can open ({said}): \
                     check the address, and that the user has an Exchange Online licence \
                     (on-premises mailboxes need the exchange-ews plugin)"
                ),
            )
        }
        (404, _) => PluginError::new(
            ErrorKind::NotFound,
            format!("the item no longer exists in the calendar of {mailbox} ({said})"),
        ),
        (400, _) => PluginError::new(
            ErrorKind::Upstream,
            format!(
                "Microsoft Graph refused the request for {mailbox} ({said}); this is a bug of \
                 the calendar-graph plugin unless the message names a setting such as the \
                 time zone"
            ),
        ),
        (429, _) => PluginError::new(
            ErrorKind::RateLimited,
            format!(
                "Microsoft Graph throttled the requests for {mailbox} ({said}) longer than \
                 the retries allow: synchronise fewer mailboxes at a time or try again later"
            ),
        ),
        (500..=599, _) => PluginError::new(
            ErrorKind::Unavailable,
            format!("Microsoft Graph is unavailable ({said}); try again later"),
        ),
        _ => PluginError::new(
            ErrorKind::Upstream,
            format!("unexpected answer from Microsoft Graph for {mailbox} ({said})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_name_their_field() {
        let cases = [
            ("AADSTS90002: Tenant 'x' not found.", Some("tenant_id")),
            ("AADSTS700016: Application not found", Some("client_id")),
            (
                "AADSTS7000215: Invalid client secret",
                Some("client_secret"),
            ),
            (
                "AADSTS7000222: The provided client secret keys are expired",
                Some("client_secret"),
            ),
            ("AADSTS50000: something else", None),
        ];
        for (message, field) in cases {
            let e = token_error(
                PluginError::new(ErrorKind::Unauthorized, message),
                "https://login/t/oauth2/v2.0/token",
            );
            assert_eq!(e.field.as_deref(), field, "{message}");
            assert!(e.message.contains("https://login/t"), "{}", e.message);
        }
        let expired = token_error(
            PluginError::new(ErrorKind::Unauthorized, "AADSTS7000222: expired"),
            "u",
        );
        assert!(
            expired.message.contains("has expired"),
            "{}",
            expired.message
        );
    }

    #[test]
    fn odata_errors_are_read_and_explained() {
        let body = br#"{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled.","innerError":{"request-id":"r","date":"d"}}}"#;
        let e = ODataError::read(body);
        assert_eq!(e.code, "ErrorAccessDenied");
        let cx = Context {
            mailbox: "ceo@contoso.com",
            client_id: "app",
        };
        let p = describe(403, &e, cx);
        assert_eq!(p.kind, ErrorKind::Forbidden);
        assert!(p.message.contains("Calendars.ReadWrite"));
        assert!(p.message.contains("application access policy"));
        assert!(p.message.contains("Access to OData is disabled."));
        let p = describe(404, &ODataError::read(br#"{"error":{"code":"ErrorInvalidUser","message":"The requested user 'x' is invalid."}}"#), cx);
        assert_eq!(p.kind, ErrorKind::NotFound);
        assert!(p
            .message
            .contains("ceo@contoso.com has no Exchange Online mailbox"));
        assert_eq!(ODataError::read(b"<html>").code, "");
    }
}
