//! The SOAP envelope: version, impersonation and time zone headers, schema checks, and
//! dispatch to the operations, with the answer's `ServerVersionInfo`.

use super::*;

impl Shared {
    pub(super) fn handle(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        body: &str,
    ) -> (Option<String>, Reply) {
        let principal = match self.authenticate(peer, headers) {
            Ok(p) => p,
            Err(reply) => return (None, reply),
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.starts_with("text/xml") {
            return (
                None,
                Reply {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    body: String::new(),
                    headers: Vec::new(),
                },
            );
        }
        let doc = match parse(body) {
            Ok(doc) => doc,
            Err(e) => {
                return (
                    None,
                    fault(
                        "ErrorSchemaValidation",
                        &format!("The request failed schema validation: {e}"),
                        &[],
                    ),
                )
            }
        };
        if !doc.is(SOAP_NS, "Envelope") {
            return (
                None,
                fault(
                    "ErrorSchemaValidation",
                    "The request failed schema validation: the root element is not a SOAP 1.1 Envelope.",
                    &[],
                ),
            );
        }
        let Some(operation) = doc.child(SOAP_NS, "Body").and_then(|b| b.children.first()) else {
            return (
                None,
                fault(
                    "ErrorSchemaValidation",
                    "The request failed schema validation: the SOAP Body holds no operation.",
                    &[],
                ),
            );
        };
        let op_name = Some(operation.name.clone());
        let soap_header = doc.child(SOAP_NS, "Header");
        let requested_rank = soap_header
            .and_then(|h| h.child(TYPES_NS, "RequestServerVersion"))
            .and_then(|v| version_rank(v.attr("Version").unwrap_or_default()))
            .unwrap_or(0);
        if let Some(zone) = soap_header.and_then(|h| h.child(TYPES_NS, "TimeZoneContext")) {
            let id = zone
                .child(TYPES_NS, "TimeZoneDefinition")
                .and_then(|d| d.attr("Id"));
            if id.is_none_or(|i| i.trim().is_empty()) {
                return (
                    op_name,
                    schema_fault("TimeZoneContext needs a TimeZoneDefinition with an Id"),
                );
            }
        }
        if let Some(version) = soap_header.and_then(|h| h.child(TYPES_NS, "RequestServerVersion")) {
            let value = version.attr("Version").unwrap_or_default();
            match version_rank(value) {
                None => {
                    return (
                        op_name,
                        fault(
                            "ErrorSchemaValidation",
                            &format!(
                                "The request failed schema validation: The 'Version' attribute is invalid - The value '{value}' is invalid according to its datatype 'http://schemas.microsoft.com/exchange/services/2006/types:ExchangeVersionType' - The Enumeration constraint failed."
                            ),
                            &[],
                        ),
                    )
                }
                Some(rank) if rank > self.server_rank() => {
                    return (
                        op_name,
                        fault(
                            "ErrorInvalidServerVersion",
                            "The specified server version is invalid.",
                            &[],
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        if operation.ns.as_deref() != Some(MESSAGES_NS) {
            return (
                op_name,
                fault(
                    "ErrorSchemaValidation",
                    &format!(
                        "The request failed schema validation: the element '{}' is not an EWS operation.",
                        operation.name
                    ),
                    &[],
                ),
            );
        }
        {
            let mut busy = lock(&self.busy);
            if busy.0 > 0 {
                busy.0 -= 1;
                let back_off = busy.1.to_string();
                return (
                    op_name,
                    fault(
                        "ErrorServerBusy",
                        "The server cannot service this request right now. Try again later.",
                        &[("BackOffMilliseconds", &back_off)],
                    ),
                );
            }
        }
        let impersonation = soap_header.and_then(|h| h.child(TYPES_NS, "ExchangeImpersonation"));
        let acting = match (impersonation, &principal) {
            (Some(imp), _) => {
                let sid = imp.child(TYPES_NS, "ConnectingSID");
                let address = sid
                    .and_then(|s| {
                        s.child_text(TYPES_NS, "PrimarySmtpAddress")
                            .or_else(|| s.child_text(TYPES_NS, "SmtpAddress"))
                    })
                    .map(str::to_lowercase);
                let Some(address) = address else {
                    return (
                        op_name,
                        fault(
                            "ErrorInvalidExchangeImpersonationHeaderData",
                            "The impersonation header must name the mailbox by PrimarySmtpAddress or SmtpAddress in this emulator.",
                            &[],
                        ),
                    );
                };
                if !self.mailboxes.contains(&address) {
                    return (
                        op_name,
                        fault(
                            "ErrorNonExistentMailbox",
                            "The SMTP address has no mailbox associated with it.",
                            &[("SmtpAddress", &address)],
                        ),
                    );
                }
                if !self.may_impersonate(&principal, &address) {
                    return (
                        op_name,
                        fault(
                            "ErrorImpersonateUserDenied",
                            "The account does not have permission to impersonate the requested user.",
                            &[],
                        ),
                    );
                }
                address
            }
            (None, Principal::User(login)) => login.clone(),
            (None, Principal::App(_)) => {
                return (
                    op_name,
                    fault(
                        "ErrorInvalidExchangeImpersonationHeaderData",
                        "ExchangeImpersonation SOAP header must be present for this type of OAuth token.",
                        &[],
                    ),
                )
            }
        };
        let older_mailbox = self
            .opts
            .mailbox_versions
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(&acting))
            .and_then(|(_, v)| version_rank(v));
        if older_mailbox.is_some_and(|rank| requested_rank > rank) {
            return (
                op_name,
                fault(
                    "ErrorInvalidSchemaVersionForMailboxVersion",
                    "The mailbox that was requested doesn't support the specified RequestServerVersion.",
                    &[],
                ),
            );
        }
        let reply = match operation.name.as_str() {
            "GetFolder" => self.get_folder(operation, &acting),
            "FindItem" => self.find_item(operation, &acting),
            "CreateItem" => self.create_item(operation, &acting, requested_rank),
            "UpdateItem" => self.update_item(operation, &acting, requested_rank),
            "DeleteItem" => self.delete_item(operation, &acting),
            other => Err(fault(
                "ErrorInvalidRequest",
                &format!("The request is valid but this emulator does not serve {other}."),
                &[],
            )),
        };
        (op_name, reply.unwrap_or_else(|fault| fault))
    }
}
