//! Reading EWS answers: a SOAP fault (request-level errors, sent with HTTP 500) or an
//! operation response made of one response message per item asked for, each with its own
//! `ResponseClass` and `ResponseCode` (per-item errors come inside an HTTP 200).
//!
//! Shapes follow the published schemas and real answers (see the samples under
//! `tests/fixtures/`): element prefixes vary between servers, so everything is matched by
//! namespace and local name.

use crate::xml::{parse, Element, ERRORS_NS, MESSAGES_NS, SOAP_NS, TYPES_NS};

/// What a SOAP answer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Soap {
    Answer(Answer),
    Fault(Fault),
}

/// A successful SOAP answer: the operation's response messages, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub messages: Vec<Message>,
    pub server: Option<ServerInfo>,
}

/// One response message (`…ResponseMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `Success`, `Warning` or `Error`.
    pub class: String,
    /// `NoError` or an EWS error code.
    pub code: String,
    pub text: String,
    /// `MessageXml/Value` pairs, e.g. `BackOffMilliseconds`.
    pub values: Vec<(String, String)>,
    pub element: Element,
}

impl Message {
    pub fn is_error(&self) -> bool {
        self.class == "Error"
    }

    pub fn error(&self) -> EwsError {
        EwsError {
            code: self.code.clone(),
            message: self.text.clone(),
            values: self.values.clone(),
        }
    }
}

/// A request-level SOAP fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The EWS code (`detail/ResponseCode`), else the local part of `faultcode`.
    pub code: String,
    pub message: String,
    pub values: Vec<(String, String)>,
}

/// An EWS error, from a fault or a response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EwsError {
    pub code: String,
    pub message: String,
    pub values: Vec<(String, String)>,
}

impl EwsError {
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// How long Exchange asks to wait before trying again (ErrorServerBusy).
    pub fn back_off_ms(&self) -> Option<u64> {
        self.value("BackOffMilliseconds")?.trim().parse().ok()
    }
}

impl From<Fault> for EwsError {
    fn from(f: Fault) -> Self {
        EwsError {
            code: f.code,
            message: f.message,
            values: f.values,
        }
    }
}

/// `ServerVersionInfo` from the answer's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub major: String,
    pub minor: String,
    pub build: String,
}

impl std::fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Exchange {}.{} build {}",
            self.major, self.minor, self.build
        )
    }
}

/// Reads a SOAP answer; `Err` says why it is not one.
pub fn read(body: &[u8]) -> Result<Soap, String> {
    let doc = parse(body).map_err(|e| e.to_string())?;
    if !doc.is(SOAP_NS, "Envelope") {
        return Err(format!(
            "the answer is XML but not a SOAP 1.1 envelope (root element {})",
            doc.name
        ));
    }
    let soap_body = doc
        .child(SOAP_NS, "Body")
        .ok_or("the SOAP envelope has no Body")?;
    if let Some(fault) = soap_body.child(SOAP_NS, "Fault") {
        return Ok(Soap::Fault(read_fault(fault)));
    }
    let server = doc
        .path(&[(SOAP_NS, "Header"), (TYPES_NS, "ServerVersionInfo")])
        .map(|s| ServerInfo {
            major: s.attr("MajorVersion").unwrap_or("?").to_owned(),
            minor: s.attr("MinorVersion").unwrap_or("?").to_owned(),
            build: format!(
                "{}.{}",
                s.attr("MajorBuildNumber").unwrap_or("?"),
                s.attr("MinorBuildNumber").unwrap_or("?")
            ),
        });
    let operation = soap_body.children.first().ok_or("the SOAP body is empty")?;
    let list = operation
        .child(MESSAGES_NS, "ResponseMessages")
        .ok_or_else(|| format!("{} has no ResponseMessages", operation.name))?;
    let messages = list.children.iter().map(read_message).collect();
    Ok(Soap::Answer(Answer { messages, server }))
}

fn read_message(el: &Element) -> Message {
    Message {
        class: el.attr("ResponseClass").unwrap_or("Error").to_owned(),
        code: el
            .child_text(MESSAGES_NS, "ResponseCode")
            .unwrap_or("NoError")
            .to_owned(),
        text: el
            .child_text(MESSAGES_NS, "MessageText")
            .unwrap_or_default()
            .to_owned(),
        values: el
            .child(MESSAGES_NS, "MessageXml")
            .map(message_values)
            .unwrap_or_default(),
        element: el.clone(),
    }
}

/// `Value Name="…"` pairs of a `MessageXml`, whatever its namespace.
fn message_values(xml: &Element) -> Vec<(String, String)> {
    xml.children
        .iter()
        .filter(|v| v.name == "Value")
        .filter_map(|v| Some((v.attr("Name")?.to_owned(), v.text.trim().to_owned())))
        .collect()
}

fn read_fault(fault: &Element) -> Fault {
    // faultcode and faultstring are unqualified in SOAP 1.1.
    let unqualified = |name: &str| {
        fault
            .children
            .iter()
            .find(|c| c.name == name && c.ns.is_none())
            .map(|c| c.text.trim().to_owned())
            .unwrap_or_default()
    };
    let faultcode = unqualified("faultcode");
    let faultstring = unqualified("faultstring");
    let detail = fault.children.iter().find(|c| c.name == "detail");
    let code = detail
        .and_then(|d| d.child_text(ERRORS_NS, "ResponseCode"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            faultcode
                .rsplit_once(':')
                .map_or(faultcode.as_str(), |(_, local)| local)
                .to_owned()
        });
    let message = detail
        .and_then(|d| d.child_text(ERRORS_NS, "Message"))
        .map(str::to_owned)
        .unwrap_or(faultstring);
    let values = detail
        .and_then(|d| d.children.iter().find(|c| c.name == "MessageXml"))
        .map(message_values)
        .unwrap_or_default();
    Fault {
        code,
        message,
        values,
    }
}

/// A calendar item of a `FindItem` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewItem {
    pub id: String,
    pub change_key: String,
    pub subject: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub location: Option<String>,
    /// The ERP id of an item the plugin created (its extended property).
    pub erp_id: Option<String>,
    pub all_day: bool,
    pub cancelled: bool,
    /// `LegacyFreeBusyStatus`.
    pub show_as: Option<String>,
    pub sensitivity: Option<String>,
}

/// The items of a calendar view and whether the view holds them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub items: Vec<ViewItem>,
    pub complete: bool,
    pub total: Option<u64>,
}

/// Reads the `RootFolder` of a successful `FindItem` response message.
pub fn calendar_view(message: &Message) -> Result<View, String> {
    let root = message
        .element
        .child(MESSAGES_NS, "RootFolder")
        .ok_or("the FindItem answer has no RootFolder")?;
    let complete = root
        .attr("IncludesLastItemInRange")
        .is_none_or(|v| v.trim() == "true" || v.trim() == "1");
    let total = root
        .attr("TotalItemsInView")
        .and_then(|t| t.trim().parse().ok());
    let mut items = Vec::new();
    if let Some(list) = root.child(TYPES_NS, "Items") {
        // Only calendar items: a calendar folder may hold other items (e.g. posts).
        for item in list.children_named(TYPES_NS, "CalendarItem") {
            let (id, change_key) = item_id(item).ok_or("a calendar item has no ItemId")?;
            items.push(ViewItem {
                id,
                change_key,
                subject: item
                    .child(TYPES_NS, "Subject")
                    .map(|s| s.text.clone())
                    .unwrap_or_default(),
                start: item.child_text(TYPES_NS, "Start").map(str::to_owned),
                end: item.child_text(TYPES_NS, "End").map(str::to_owned),
                location: item.child_text(TYPES_NS, "Location").map(str::to_owned),
                erp_id: erp_id_of(item),
                all_day: flag(item, "IsAllDayEvent"),
                cancelled: flag(item, "IsCancelled"),
                show_as: item
                    .child_text(TYPES_NS, "LegacyFreeBusyStatus")
                    .map(|s| s.trim().to_owned()),
                sensitivity: item
                    .child_text(TYPES_NS, "Sensitivity")
                    .map(|s| s.trim().to_owned()),
            });
        }
    }
    Ok(View {
        items,
        complete,
        total,
    })
}

fn flag(item: &Element, name: &str) -> bool {
    item.child_text(TYPES_NS, name)
        .is_some_and(|v| matches!(v.trim(), "true" | "1"))
}

/// The value of the plugin's ERP id extended property, if the item has it.
fn erp_id_of(item: &Element) -> Option<String> {
    item.children_named(TYPES_NS, "ExtendedProperty")
        .find(|p| {
            p.child(TYPES_NS, "ExtendedFieldURI").is_some_and(|uri| {
                uri.attr("PropertyName") == Some(crate::soap::ERP_ID_PROPERTY)
                    && uri
                        .attr("PropertySetId")
                        .is_some_and(|id| id.eq_ignore_ascii_case(crate::soap::PROPERTY_SET_ID))
            })
        })
        .and_then(|p| p.child_text(TYPES_NS, "Value"))
        .map(str::to_owned)
}

/// The id and change key of the item a `CreateItem`/`UpdateItem` message returns.
pub fn written_item(message: &Message) -> Option<(String, String)> {
    message
        .element
        .child(MESSAGES_NS, "Items")?
        .children
        .first()
        .and_then(item_id)
}

fn item_id(item: &Element) -> Option<(String, String)> {
    let id = item.child(TYPES_NS, "ItemId")?;
    Some((
        id.attr("Id")?.to_owned(),
        id.attr("ChangeKey").unwrap_or_default().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GETFOLDER: &str = include_str!("../tests/fixtures/getfolder_calendar.response.xml");
    const FINDITEM: &str = include_str!("../tests/fixtures/finditem_calendarview.response.xml");
    const MALFORMED_ID: &str =
        include_str!("../tests/fixtures/getfolder_error_invalid_id_malformed.response.xml");
    const NO_MAILBOX: &str =
        include_str!("../tests/fixtures/fault_error_nonexistent_mailbox.response.xml");

    fn answer(xml: &str) -> Answer {
        match read(xml.as_bytes()).unwrap() {
            Soap::Answer(a) => a,
            Soap::Fault(f) => panic!("fault {f:?}"),
        }
    }

    #[test]
    fn reads_a_real_getfolder_answer() {
        let a = answer(GETFOLDER);
        assert_eq!(a.messages.len(), 1);
        assert_eq!(a.messages[0].class, "Success");
        assert_eq!(a.messages[0].code, "NoError");
        assert_eq!(a.server.unwrap().to_string(), "Exchange 15.0 build 731.10");
    }

    #[test]
    fn reads_a_real_calendar_view() {
        let a = answer(FINDITEM);
        let view = calendar_view(&a.messages[0]).unwrap();
        assert!(!view.complete);
        assert_eq!(view.total, Some(33));
        assert_eq!(view.items.len(), 5);
        assert_eq!(view.items[0].id, "AAMk");
        assert_eq!(view.items[0].change_key, "DwAA");
        assert_eq!(view.items[0].subject, "Contoso devs team meeting");
        assert_eq!(view.items[0].start.as_deref(), Some("2013-08-21T19:30:00Z"));
        assert_eq!(view.items[4].end.as_deref(), Some("2013-08-22T22:00:00Z"));
        assert_eq!(view.items[4].location, None);
    }

    #[test]
    fn reads_a_real_per_item_error_with_a_default_namespace() {
        let a = answer(MALFORMED_ID);
        let m = &a.messages[0];
        assert!(m.is_error());
        assert_eq!(m.code, "ErrorInvalidIdMalformed");
        assert_eq!(m.text, "Id is malformed.");
    }

    #[test]
    fn reads_a_real_fault() {
        let Soap::Fault(f) = read(NO_MAILBOX.as_bytes()).unwrap() else {
            panic!("not a fault")
        };
        assert_eq!(f.code, "ErrorNonExistentMailbox");
        assert_eq!(f.message, "SMTP 地址没有与其关联的邮箱。");
        assert_eq!(
            f.values,
            [("SmtpAddress".to_owned(), "REDACTED".to_owned())]
        );
    }

    #[test]
    fn reads_back_off_from_a_busy_fault() {
        let xml = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
            <faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
            <faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>
            <detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
            <e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message>
            <t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">2500</t:Value></t:MessageXml>
            </detail></s:Fault></s:Body></s:Envelope>"#;
        let Soap::Fault(f) = read(xml.as_bytes()).unwrap() else {
            panic!("not a fault")
        };
        let e = EwsError::from(f);
        assert_eq!(e.code, "ErrorServerBusy");
        assert_eq!(e.back_off_ms(), Some(2500));
    }

    #[test]
    fn says_why_an_answer_is_not_soap() {
        assert!(read(b"<html><body>Sign in</body></html>")
            .unwrap_err()
            .contains("not a SOAP"));
        assert!(read(b"{\"error\":1}").is_err());
    }
}
