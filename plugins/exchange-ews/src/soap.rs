//! The SOAP requests this plugin sends, built with quick-xml's writer.
//!
//! Each request is a SOAP 1.1 envelope whose header carries `RequestServerVersion` and, when
//! acting as a mailbox, `ExchangeImpersonation`; the body carries one EWS operation. Element
//! order and attributes follow Microsoft's `messages.xsd` and `types.xsd` (the end-to-end tests
//! validate every request the plugin sends against them): calendar writes always say
//! `SendToNone`, because the ERP's appointments must not mail anyone.
//!
//! From Exchange 2010 SP1 on, every request carries a `TimeZoneContext` header naming the
//! instance's Windows time zone, and created items carry it as `StartTimeZone`/`EndTimeZone`:
//! Outlook then shows them, and all-day items, in that zone rather than in UTC. Each item the
//! plugin creates holds the ERP's id in a named extended property (its own property set),
//! read back by every calendar view, so that a lost plugin state finds its items again
//! instead of duplicating them; reminders are off, as the ERP's appointments are not alarms.

use crate::config::ServerVersion;
use crate::xml::{text_element, writer, XmlWriter, MESSAGES_NS, SOAP_NS, TYPES_NS};
use std::io;

/// Whose calendar a request addresses, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// The connecting account's own calendar.
    Own,
    /// Another mailbox's calendar opened as a delegate (`DistinguishedFolderId/Mailbox`).
    Delegate(&'a str),
    /// Acting as the mailbox's owner (`ExchangeImpersonation` header).
    Impersonate(&'a str),
}

impl<'a> Access<'a> {
    /// The mailbox of the request, if it names one.
    pub fn mailbox(self) -> Option<&'a str> {
        match self {
            Access::Own => None,
            Access::Delegate(m) | Access::Impersonate(m) => Some(m),
        }
    }

    /// The mailbox impersonated, if any.
    pub fn impersonated(self) -> Option<&'a str> {
        match self {
            Access::Impersonate(m) => Some(m),
            _ => None,
        }
    }
}

/// The property set of the plugin's extended properties (MAPI named properties).
pub const PROPERTY_SET_ID: &str = "7a97642f-a7ec-4a27-a125-8f63444b89aa";
/// The named property holding the ERP's id of an item.
pub const ERP_ID_PROPERTY: &str = "PasserelleErpId";

/// A calendar item's content as the plugin writes it. Times are EWS `xs:dateTime` in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemContent {
    pub subject: String,
    pub body: Option<String>,
    pub start: String,
    pub end: String,
    pub location: Option<String>,
    pub all_day: bool,
    /// Written in the item's extended property.
    pub erp_id: String,
}

/// One item to change, and with which conflict rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemUpdate<'a> {
    pub item_id: &'a str,
    pub change_key: Option<&'a str>,
    pub content: &'a ItemContent,
}

/// `UpdateItem/@ConflictResolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Refuses (ErrorIrresolvableConflict) when the item changed since its ChangeKey.
    AutoResolve,
    /// Writes whatever the item became.
    AlwaysOverwrite,
}

impl Conflict {
    fn as_str(self) -> &'static str {
        match self {
            Conflict::AutoResolve => "AutoResolve",
            Conflict::AlwaysOverwrite => "AlwaysOverwrite",
        }
    }
}

/// What every request's header says.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub version: ServerVersion,
    pub access: Access<'a>,
    /// Windows time zone id of `TimeZoneContext` and of created items.
    pub time_zone: Option<&'a str>,
}

impl Envelope<'_> {
    /// The time zone, when the schema version has `TimeZoneContext` (Exchange 2010 SP1+).
    fn zone(&self) -> Option<&str> {
        self.time_zone
            .filter(|_| self.version >= ServerVersion::Exchange2010Sp1)
    }

    /// Writes the envelope around the operation written by `body`.
    fn write(&self, body: impl FnOnce(&mut XmlWriter) -> io::Result<()>) -> io::Result<Vec<u8>> {
        let mut w = writer()?;
        w.create_element("soap:Envelope")
            .with_attribute(("xmlns:soap", SOAP_NS))
            .with_attribute(("xmlns:t", TYPES_NS))
            .with_attribute(("xmlns:m", MESSAGES_NS))
            .write_inner_content(|w| {
                w.create_element("soap:Header").write_inner_content(|w| {
                    w.create_element("t:RequestServerVersion")
                        .with_attribute(("Version", self.version.as_str()))
                        .write_empty()?;
                    if let Some(zone) = self.zone() {
                        w.create_element("t:TimeZoneContext")
                            .write_inner_content(|w| {
                                w.create_element("t:TimeZoneDefinition")
                                    .with_attribute(("Id", zone))
                                    .write_empty()?;
                                Ok(())
                            })?;
                    }
                    if let Some(mailbox) = self.access.impersonated() {
                        w.create_element("t:ExchangeImpersonation")
                            .write_inner_content(|w| {
                                w.create_element("t:ConnectingSID")
                                    .write_inner_content(|w| {
                                        text_element(w, "t:PrimarySmtpAddress", mailbox)
                                    })?;
                                Ok(())
                            })?;
                    }
                    Ok(())
                })?;
                w.create_element("soap:Body").write_inner_content(body)?;
                Ok(())
            })?;
        Ok(w.into_inner())
    }

    /// The calendar folder of the request's mailbox.
    fn calendar_folder(&self, w: &mut XmlWriter) -> io::Result<()> {
        let folder = w
            .create_element("t:DistinguishedFolderId")
            .with_attribute(("Id", "calendar"));
        match self.access {
            Access::Delegate(mailbox) => {
                folder.write_inner_content(|w| {
                    w.create_element("t:Mailbox")
                        .write_inner_content(|w| text_element(w, "t:EmailAddress", mailbox))?;
                    Ok(())
                })?;
            }
            Access::Own | Access::Impersonate(_) => {
                folder.write_empty()?;
            }
        }
        Ok(())
    }

    /// `GetFolder` of the distinguished `calendar` folder, ids only.
    pub fn get_calendar_folder(&self) -> io::Result<Vec<u8>> {
        self.write(|w| {
            w.create_element("m:GetFolder").write_inner_content(|w| {
                w.create_element("m:FolderShape")
                    .write_inner_content(|w| text_element(w, "t:BaseShape", "IdOnly"))?;
                w.create_element("m:FolderIds")
                    .write_inner_content(|w| self.calendar_folder(w))?;
                Ok(())
            })?;
            Ok(())
        })
    }

    /// `FindItem` with a `CalendarView` over `[start, end)`: ids, subject, times, location.
    pub fn find_calendar_view(&self, start: &str, end: &str) -> io::Result<Vec<u8>> {
        self.write(|w| {
            w.create_element("m:FindItem")
                .with_attribute(("Traversal", "Shallow"))
                .write_inner_content(|w| {
                    w.create_element("m:ItemShape").write_inner_content(|w| {
                        text_element(w, "t:BaseShape", "IdOnly")?;
                        w.create_element("t:AdditionalProperties")
                            .write_inner_content(|w| {
                                for field in [
                                    "item:Subject",
                                    "item:Sensitivity",
                                    "calendar:Start",
                                    "calendar:End",
                                    "calendar:IsAllDayEvent",
                                    "calendar:LegacyFreeBusyStatus",
                                    "calendar:Location",
                                    "calendar:IsCancelled",
                                ] {
                                    w.create_element("t:FieldURI")
                                        .with_attribute(("FieldURI", field))
                                        .write_empty()?;
                                }
                                erp_id_uri(w)
                            })?;
                        Ok(())
                    })?;
                    w.create_element("m:CalendarView")
                        .with_attribute(("StartDate", start))
                        .with_attribute(("EndDate", end))
                        .write_empty()?;
                    w.create_element("m:ParentFolderIds")
                        .write_inner_content(|w| self.calendar_folder(w))?;
                    Ok(())
                })?;
            Ok(())
        })
    }

    /// `CreateItem` of calendar items in the calendar, without meeting invitations.
    pub fn create_items(&self, items: &[&ItemContent]) -> io::Result<Vec<u8>> {
        self.write(|w| {
            w.create_element("m:CreateItem")
                .with_attribute(("SendMeetingInvitations", "SendToNone"))
                .write_inner_content(|w| {
                    w.create_element("m:SavedItemFolderId")
                        .write_inner_content(|w| self.calendar_folder(w))?;
                    w.create_element("m:Items").write_inner_content(|w| {
                        for item in items {
                            w.create_element("t:CalendarItem")
                                .write_inner_content(|w| write_new_item(w, item, self.zone()))?;
                        }
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        })
    }

    /// `UpdateItem` setting every field the ERP owns, without meeting updates.
    pub fn update_items(
        &self,
        updates: &[ItemUpdate<'_>],
        conflict: Conflict,
    ) -> io::Result<Vec<u8>> {
        self.write(|w| {
            w.create_element("m:UpdateItem")
                .with_attribute(("ConflictResolution", conflict.as_str()))
                .with_attribute(("SendMeetingInvitationsOrCancellations", "SendToNone"))
                .write_inner_content(|w| {
                    w.create_element("m:ItemChanges").write_inner_content(|w| {
                        for update in updates {
                            w.create_element("t:ItemChange").write_inner_content(|w| {
                                item_id(w, update.item_id, update.change_key)?;
                                w.create_element("t:Updates").write_inner_content(|w| {
                                    write_changes(w, update.content, self.zone())
                                })?;
                                Ok(())
                            })?;
                        }
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        })
    }

    /// `DeleteItem` to the Deleted Items folder (recoverable), without cancellations.
    pub fn delete_items(&self, item_ids: &[&str]) -> io::Result<Vec<u8>> {
        self.write(|w| {
            w.create_element("m:DeleteItem")
                .with_attribute(("DeleteType", "MoveToDeletedItems"))
                .with_attribute(("SendMeetingCancellations", "SendToNone"))
                .write_inner_content(|w| {
                    w.create_element("m:ItemIds").write_inner_content(|w| {
                        for id in item_ids {
                            item_id(w, id, None)?;
                        }
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        })
    }
}

fn item_id(w: &mut XmlWriter, id: &str, change_key: Option<&str>) -> io::Result<()> {
    let mut el = w.create_element("t:ItemId").with_attribute(("Id", id));
    if let Some(ck) = change_key {
        el = el.with_attribute(("ChangeKey", ck));
    }
    el.write_empty()?;
    Ok(())
}

/// `ExtendedFieldURI` of the ERP id property.
fn erp_id_uri(w: &mut XmlWriter) -> io::Result<()> {
    w.create_element("t:ExtendedFieldURI")
        .with_attribute(("PropertySetId", PROPERTY_SET_ID))
        .with_attribute(("PropertyName", ERP_ID_PROPERTY))
        .with_attribute(("PropertyType", "String"))
        .write_empty()?;
    Ok(())
}

fn erp_id_property(w: &mut XmlWriter, erp_id: &str) -> io::Result<()> {
    w.create_element("t:ExtendedProperty")
        .write_inner_content(|w| {
            erp_id_uri(w)?;
            text_element(w, "t:Value", erp_id)
        })?;
    Ok(())
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn zone_element(w: &mut XmlWriter, name: &str, zone: &str) -> io::Result<()> {
    w.create_element(name)
        .with_attribute(("Id", zone))
        .write_empty()?;
    Ok(())
}

/// A new item's fields, in the order of `ItemType` then `CalendarItemType`.
fn write_new_item(w: &mut XmlWriter, item: &ItemContent, zone: Option<&str>) -> io::Result<()> {
    text_element(w, "t:Subject", &item.subject)?;
    if let Some(body) = non_empty(item.body.as_deref()) {
        body_element(w, body)?;
    }
    text_element(w, "t:ReminderIsSet", "false")?;
    erp_id_property(w, &item.erp_id)?;
    text_element(w, "t:Start", &item.start)?;
    text_element(w, "t:End", &item.end)?;
    text_element(w, "t:IsAllDayEvent", bool_text(item.all_day))?;
    if let Some(location) = non_empty(item.location.as_deref()) {
        text_element(w, "t:Location", location)?;
    }
    if let Some(zone) = zone {
        zone_element(w, "t:StartTimeZone", zone)?;
        zone_element(w, "t:EndTimeZone", zone)?;
    }
    Ok(())
}

fn body_element(w: &mut XmlWriter, body: &str) -> io::Result<()> {
    w.create_element("t:Body")
        .with_attribute(("BodyType", "Text"))
        .write_text_content(quick_xml::events::BytesText::new(&crate::xml::xml_safe(
            body,
        )))?;
    Ok(())
}

/// One `SetItemField` per field the ERP sets, `DeleteItemField` for those it leaves empty;
/// the ERP id property too, for items written before the plugin stored it.
fn write_changes(w: &mut XmlWriter, item: &ItemContent, zone: Option<&str>) -> io::Result<()> {
    set_field(w, "item:Subject", |w| {
        text_element(w, "t:Subject", &item.subject)
    })?;
    match non_empty(item.body.as_deref()) {
        Some(body) => set_field(w, "item:Body", |w| body_element(w, body))?,
        None => delete_field(w, "item:Body")?,
    }
    set_field(w, "calendar:Start", |w| {
        text_element(w, "t:Start", &item.start)
    })?;
    set_field(w, "calendar:End", |w| text_element(w, "t:End", &item.end))?;
    set_field(w, "calendar:IsAllDayEvent", |w| {
        text_element(w, "t:IsAllDayEvent", bool_text(item.all_day))
    })?;
    match non_empty(item.location.as_deref()) {
        Some(location) => set_field(w, "calendar:Location", |w| {
            text_element(w, "t:Location", location)
        })?,
        None => delete_field(w, "calendar:Location")?,
    }
    if let Some(zone) = zone {
        set_field(w, "calendar:StartTimeZone", |w| {
            zone_element(w, "t:StartTimeZone", zone)
        })?;
        set_field(w, "calendar:EndTimeZone", |w| {
            zone_element(w, "t:EndTimeZone", zone)
        })?;
    }
    w.create_element("t:SetItemField")
        .write_inner_content(|w| {
            erp_id_uri(w)?;
            w.create_element("t:CalendarItem")
                .write_inner_content(|w| erp_id_property(w, &item.erp_id))?;
            Ok(())
        })?;
    Ok(())
}

fn set_field(
    w: &mut XmlWriter,
    uri: &str,
    value: impl FnOnce(&mut XmlWriter) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element("t:SetItemField")
        .write_inner_content(|w| {
            w.create_element("t:FieldURI")
                .with_attribute(("FieldURI", uri))
                .write_empty()?;
            w.create_element("t:CalendarItem")
                .write_inner_content(value)?;
            Ok(())
        })?;
    Ok(())
}

fn delete_field(w: &mut XmlWriter, uri: &str) -> io::Result<()> {
    w.create_element("t:DeleteItemField")
        .write_inner_content(|w| {
            w.create_element("t:FieldURI")
                .with_attribute(("FieldURI", uri))
                .write_empty()?;
            Ok(())
        })?;
    Ok(())
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse, Element};

    fn envelope(access: Access<'_>) -> Envelope<'_> {
        Envelope {
            version: ServerVersion::Exchange2010Sp2,
            access,
            time_zone: Some("Romance Standard Time"),
        }
    }

    fn operation(doc: &Element) -> &Element {
        &doc.child(SOAP_NS, "Body").unwrap().children[0]
    }

    #[test]
    fn header_carries_version_and_impersonation() {
        let doc = parse(
            &envelope(Access::Impersonate("jane@example.com"))
                .get_calendar_folder()
                .unwrap(),
        )
        .unwrap();
        assert!(doc.is(SOAP_NS, "Envelope"));
        let header = doc.child(SOAP_NS, "Header").unwrap();
        assert_eq!(
            header
                .child(TYPES_NS, "RequestServerVersion")
                .unwrap()
                .attr("Version"),
            Some("Exchange2010_SP2")
        );
        let sid = header
            .path(&[
                (TYPES_NS, "ExchangeImpersonation"),
                (TYPES_NS, "ConnectingSID"),
            ])
            .unwrap();
        assert_eq!(
            sid.child_text(TYPES_NS, "PrimarySmtpAddress"),
            Some("jane@example.com")
        );
        let folder = operation(&doc)
            .path(&[
                (MESSAGES_NS, "FolderIds"),
                (TYPES_NS, "DistinguishedFolderId"),
            ])
            .unwrap();
        assert_eq!(folder.attr("Id"), Some("calendar"));
        assert!(folder.children.is_empty());

        let doc = parse(
            &envelope(Access::Delegate("bob@example.com"))
                .get_calendar_folder()
                .unwrap(),
        )
        .unwrap();
        let header = doc.child(SOAP_NS, "Header").unwrap();
        assert!(header.child(TYPES_NS, "ExchangeImpersonation").is_none());
        let folder = operation(&doc)
            .path(&[
                (MESSAGES_NS, "FolderIds"),
                (TYPES_NS, "DistinguishedFolderId"),
                (TYPES_NS, "Mailbox"),
            ])
            .unwrap();
        assert_eq!(
            folder.child_text(TYPES_NS, "EmailAddress"),
            Some("bob@example.com")
        );
    }

    #[test]
    fn values_are_escaped_not_spliced() {
        let item = ItemContent {
            subject: "R&D </t:Subject><t:Evil/>".into(),
            body: Some("line 1\nline 2 <b>".into()),
            start: "2025-03-04T08:00:00Z".into(),
            end: "2025-03-04T09:00:00Z".into(),
            location: None,
            all_day: false,
            erp_id: "SO-1".into(),
        };
        let doc = parse(&envelope(Access::Own).create_items(&[&item]).unwrap()).unwrap();
        let op = operation(&doc);
        assert!(op.is(MESSAGES_NS, "CreateItem"));
        assert_eq!(op.attr("SendMeetingInvitations"), Some("SendToNone"));
        let cal = op
            .path(&[(MESSAGES_NS, "Items"), (TYPES_NS, "CalendarItem")])
            .unwrap();
        assert_eq!(cal.child(TYPES_NS, "Subject").unwrap().text, item.subject);
        assert_eq!(
            cal.child(TYPES_NS, "Body").unwrap().text,
            "line 1\nline 2 <b>"
        );
        assert!(cal.child(TYPES_NS, "Evil").is_none());
        assert!(cal.child(TYPES_NS, "Location").is_none());
        let names: Vec<_> = cal.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Subject",
                "Body",
                "ReminderIsSet",
                "ExtendedProperty",
                "Start",
                "End",
                "IsAllDayEvent",
                "StartTimeZone",
                "EndTimeZone"
            ]
        );
        let property = cal.child(TYPES_NS, "ExtendedProperty").unwrap();
        let uri = property.child(TYPES_NS, "ExtendedFieldURI").unwrap();
        assert_eq!(uri.attr("PropertySetId"), Some(PROPERTY_SET_ID));
        assert_eq!(uri.attr("PropertyName"), Some(ERP_ID_PROPERTY));
        assert_eq!(uri.attr("PropertyType"), Some("String"));
        assert_eq!(property.child_text(TYPES_NS, "Value"), Some("SO-1"));
        assert_eq!(cal.child_text(TYPES_NS, "ReminderIsSet"), Some("false"));
        assert_eq!(
            cal.child(TYPES_NS, "StartTimeZone").unwrap().attr("Id"),
            Some("Romance Standard Time")
        );
        let header = doc.child(SOAP_NS, "Header").unwrap();
        let zone = header
            .path(&[
                (TYPES_NS, "TimeZoneContext"),
                (TYPES_NS, "TimeZoneDefinition"),
            ])
            .unwrap();
        assert_eq!(zone.attr("Id"), Some("Romance Standard Time"));

        // Exchange 2010 (before SP1) has no TimeZoneContext: no time zone at all.
        let old = Envelope {
            version: ServerVersion::Exchange2010,
            ..envelope(Access::Own)
        };
        let doc = parse(&old.create_items(&[&item]).unwrap()).unwrap();
        let header = doc.child(SOAP_NS, "Header").unwrap();
        assert!(header.child(TYPES_NS, "TimeZoneContext").is_none());
        let cal = operation(&doc)
            .path(&[(MESSAGES_NS, "Items"), (TYPES_NS, "CalendarItem")])
            .unwrap();
        assert!(cal.child(TYPES_NS, "StartTimeZone").is_none());
    }

    #[test]
    fn updates_set_or_delete_each_field() {
        let item = ItemContent {
            subject: "Visit".into(),
            body: None,
            start: "2025-03-04T08:00:00Z".into(),
            end: "2025-03-04T09:00:00Z".into(),
            location: Some("Lyon".into()),
            all_day: false,
            erp_id: "SO-1".into(),
        };
        let update = ItemUpdate {
            item_id: "AAMk1",
            change_key: Some("DwAA"),
            content: &item,
        };
        let doc = parse(
            &envelope(Access::Own)
                .update_items(&[update], Conflict::AutoResolve)
                .unwrap(),
        )
        .unwrap();
        let op = operation(&doc);
        assert_eq!(op.attr("ConflictResolution"), Some("AutoResolve"));
        assert_eq!(
            op.attr("SendMeetingInvitationsOrCancellations"),
            Some("SendToNone")
        );
        let change = op
            .path(&[(MESSAGES_NS, "ItemChanges"), (TYPES_NS, "ItemChange")])
            .unwrap();
        let id = change.child(TYPES_NS, "ItemId").unwrap();
        assert_eq!(
            (id.attr("Id"), id.attr("ChangeKey")),
            (Some("AAMk1"), Some("DwAA"))
        );
        let updates = change.child(TYPES_NS, "Updates").unwrap();
        let kinds: Vec<_> = updates
            .children
            .iter()
            .map(|u| {
                format!(
                    "{} {}",
                    u.name,
                    u.child(TYPES_NS, "FieldURI")
                        .and_then(|f| f.attr("FieldURI"))
                        .or_else(|| u
                            .child(TYPES_NS, "ExtendedFieldURI")
                            .and_then(|f| f.attr("PropertyName")))
                        .unwrap()
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "SetItemField item:Subject",
                "DeleteItemField item:Body",
                "SetItemField calendar:Start",
                "SetItemField calendar:End",
                "SetItemField calendar:IsAllDayEvent",
                "SetItemField calendar:Location",
                "SetItemField calendar:StartTimeZone",
                "SetItemField calendar:EndTimeZone",
                "SetItemField PasserelleErpId"
            ]
        );

        let doc = parse(&envelope(Access::Own).delete_items(&["A", "B"]).unwrap()).unwrap();
        let op = operation(&doc);
        assert_eq!(op.attr("DeleteType"), Some("MoveToDeletedItems"));
        assert_eq!(op.attr("SendMeetingCancellations"), Some("SendToNone"));
        assert_eq!(op.child(MESSAGES_NS, "ItemIds").unwrap().children.len(), 2);
    }

    #[test]
    fn calendar_view_asks_for_the_fields_it_compares() {
        let doc = parse(
            &envelope(Access::Own)
                .find_calendar_view("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z")
                .unwrap(),
        )
        .unwrap();
        let op = operation(&doc);
        assert_eq!(op.attr("Traversal"), Some("Shallow"));
        let view = op.child(MESSAGES_NS, "CalendarView").unwrap();
        assert_eq!(view.attr("StartDate"), Some("2025-03-01T00:00:00Z"));
        assert_eq!(view.attr("EndDate"), Some("2025-04-01T00:00:00Z"));
        let names: Vec<_> = op.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ItemShape", "CalendarView", "ParentFolderIds"]);
    }
}
