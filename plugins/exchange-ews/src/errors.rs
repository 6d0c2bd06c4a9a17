//! What EWS error codes mean for the person running Passerelle: the single place where a
//! `ResponseCode` (from a SOAP fault or a response message) becomes a [`PluginError`] with an
//! [`ErrorKind`] the host can act on and a message saying what to do.

use crate::response::EwsError;
use passerelle_plugin_api::prelude::*;

/// Who was acting, for messages that name the missing right.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The delegated user, with basic authentication.
    pub user: Option<&'a str>,
    pub oauth: bool,
    pub impersonating: bool,
}

impl Actor<'_> {
    fn who(&self) -> String {
        match (self.oauth, self.user) {
            (true, _) => "the application".to_owned(),
            (false, Some(user)) => format!("the delegated user {user}"),
            (false, None) => "the connecting account".to_owned(),
        }
    }
}

/// The error for an EWS error code met while working on `mailbox`.
pub fn describe(e: &EwsError, mailbox: Option<&str>, actor: Actor<'_>) -> PluginError {
    let code = e.code.as_str();
    let said = if e.message.trim().is_empty() {
        code.to_owned()
    } else {
        format!("{code}: {}", e.message.trim())
    };
    let target = mailbox
        .map(|m| format!("the mailbox {m}"))
        .unwrap_or_else(|| "its own mailbox".to_owned());
    let who = actor.who();
    match code {
        "ErrorImpersonateUserDenied" | "ErrorImpersonationDenied" => {
            let hint = if actor.oauth {
                "grant the app registration the Office 365 Exchange Online application \
                 permission full_access_as_app with admin consent, and check that no \
                 application access policy leaves this mailbox out"
                    .to_owned()
            } else {
                format!(
                    "on an on-premises server, give {who} the ApplicationImpersonation role \
                     (New-ManagementRoleAssignment -Role ApplicationImpersonation -User <user>, \
                     optionally with a management scope covering these mailboxes); Exchange \
                     Online retired that role in February 2025: use OAuth there"
                )
            };
            PluginError::new(
                ErrorKind::Forbidden,
                format!("{who} may not impersonate {target} ({said}): {hint}"),
            )
            .with_field("use_impersonation")
        }
        "ErrorNonExistentMailbox" => PluginError::new(
            ErrorKind::NotFound,
            format!(
                "Exchange has no mailbox {} ({said}): check the address (the primary SMTP \
                 address of an existing mailbox)",
                mailbox.unwrap_or("with that address")
            ),
        ),
        "ErrorAccessDenied" => {
            let hint = if actor.impersonating {
                "check the impersonation rights and that the mailbox is enabled".to_owned()
            } else {
                format!(
                    "give {who} delegate access (Editor) to that calendar \
                     (Add-MailboxFolderPermission <mailbox>:\\Calendar -User <user> \
                     -AccessRights Editor), or turn impersonation on"
                )
            };
            PluginError::new(
                ErrorKind::Forbidden,
                format!("{who} may not open the calendar of {target} ({said}): {hint}"),
            )
        }
        "ErrorServerBusy" | "ErrorExceededConnectionCount" | "ErrorTooManyObjectsOpened" => {
            let wait = e
                .back_off_ms()
                .map(|ms| format!("; it asked to wait {ms} ms"))
                .unwrap_or_default();
            PluginError::new(
                ErrorKind::RateLimited,
                format!(
                    "Exchange is throttling this account ({said}{wait}): try again later, or \
                     lower the maximum number of threads"
                ),
            )
        }
        "ErrorInvalidServerVersion" => PluginError::config(
            "server_version",
            format!(
                "the server does not support the requested Exchange server version ({said}): \
                 choose your server's version or an older one"
            ),
        ),
        "ErrorInvalidExchangeImpersonationHeaderData" | "ErrorImpersonationFailed" => {
            PluginError::new(
                ErrorKind::Forbidden,
                format!(
                    "Exchange refused to act as {target} ({said}): check the address and, with \
                     OAuth, that the app registration has full_access_as_app"
                ),
            )
        }
        "ErrorIrresolvableConflict" => PluginError::new(
            ErrorKind::Upstream,
            format!(
                "the item was changed in Outlook while the sync ran ({said}); the next sync \
                 applies the ERP's version"
            ),
        ),
        "ErrorItemNotFound" => PluginError::new(
            ErrorKind::NotFound,
            format!("the calendar item no longer exists ({said})"),
        ),
        "ErrorCalendarViewRangeTooBig" | "ErrorCalendarEndDateIsEarlierThanStartDate" => {
            PluginError::invalid_input(format!("Exchange refused the dates ({said})"))
        }
        "ErrorSchemaValidation" | "ErrorInvalidRequest" | "ErrorInvalidIdMalformed" => {
            PluginError::internal(format!(
                "Exchange refused the request as malformed ({said}); this is a bug of the \
                 exchange-ews plugin: please report it with this message"
            ))
        }
        "ErrorMailboxMoveInProgress"
        | "ErrorMailboxStoreUnavailable"
        | "ErrorInternalServerError"
        | "ErrorInternalServerTransientError"
        | "ErrorNoRespondingCASInDestinationSite"
        | "ErrorProxyRequestProcessingFailed"
        | "ErrorConnectionFailed"
        | "ErrorTimeoutExpired" => PluginError::new(
            ErrorKind::Unavailable,
            format!("Exchange could not serve {target} for now ({said}); try again later"),
        ),
        _ => PluginError::new(
            ErrorKind::Upstream,
            format!("Exchange answered an error for {target} ({said})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str) -> EwsError {
        EwsError {
            code: code.into(),
            message: "text".into(),
            values: vec![("BackOffMilliseconds".into(), "1200".into())],
        }
    }

    const BASIC: Actor<'static> = Actor {
        user: Some("svc@example.com"),
        oauth: false,
        impersonating: true,
    };

    #[test]
    fn impersonation_denied_names_the_right_to_grant() {
        let e = describe(
            &err("ErrorImpersonateUserDenied"),
            Some("jane@example.com"),
            BASIC,
        );
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(e.message.starts_with(
            "the delegated user svc@example.com may not impersonate the mailbox jane@example.com"
        ));
        assert!(
            e.message.contains("ApplicationImpersonation"),
            "{}",
            e.message
        );
        let oauth = Actor {
            user: None,
            oauth: true,
            impersonating: true,
        };
        let e = describe(
            &err("ErrorImpersonateUserDenied"),
            Some("jane@example.com"),
            oauth,
        );
        assert!(e.message.contains("full_access_as_app"), "{}", e.message);
    }

    #[test]
    fn codes_map_to_kinds() {
        let m = Some("x@example.com");
        assert_eq!(
            describe(&err("ErrorNonExistentMailbox"), m, BASIC).kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            describe(&err("ErrorAccessDenied"), m, BASIC).kind,
            ErrorKind::Forbidden
        );
        let busy = describe(&err("ErrorServerBusy"), m, BASIC);
        assert_eq!(busy.kind, ErrorKind::RateLimited);
        assert!(busy.message.contains("wait 1200 ms"));
        let version = describe(&err("ErrorInvalidServerVersion"), m, BASIC);
        assert_eq!(version.field.as_deref(), Some("server_version"));
        assert_eq!(
            describe(&err("ErrorSchemaValidation"), m, BASIC).kind,
            ErrorKind::Internal
        );
        assert_eq!(
            describe(&err("ErrorSomethingNew"), m, BASIC).kind,
            ErrorKind::Upstream
        );
    }
}
