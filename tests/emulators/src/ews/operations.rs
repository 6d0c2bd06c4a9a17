//! The calendar operations the plugin uses: GetFolder, FindItem (CalendarView),
//! CreateItem, UpdateItem, DeleteItem, with Exchange's per-item errors.

use super::*;

impl Shared {
    /// The mailbox whose calendar a folder id designates, for the acting mailbox.
    pub(super) fn calendar_of(&self, folder: &El, acting: &str) -> Result<String, ItemError> {
        let owner = if folder.is(TYPES_NS, "DistinguishedFolderId") {
            if folder.attr("Id") != Some("calendar") {
                return Err(item_error(
                    "ErrorFolderNotFound",
                    "The specified folder could not be found in the store (this emulator holds calendars only).",
                ));
            }
            folder
                .path(&[(TYPES_NS, "Mailbox")])
                .and_then(|m| m.child_text(TYPES_NS, "EmailAddress"))
                .map(str::to_lowercase)
                .unwrap_or_else(|| acting.to_owned())
        } else if folder.is(TYPES_NS, "FolderId") {
            let id = folder.attr("Id").unwrap_or_default();
            match decode_folder_id(id) {
                Some(owner) => owner,
                None => return Err(item_error("ErrorInvalidIdMalformed", "Id is malformed.")),
            }
        } else {
            return Err(item_error("ErrorInvalidRequest", "The request is invalid."));
        };
        if !self.mailboxes.contains(&owner) {
            return Err(item_error(
                "ErrorNonExistentMailbox",
                "The SMTP address has no mailbox associated with it.",
            ));
        }
        if !self.may_open(acting, &owner) {
            return Err(item_error(
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
        Ok(owner)
    }

    pub(super) fn get_folder(&self, op: &El, acting: &str) -> Result<Reply, Reply> {
        let shape = op
            .path(&[(MESSAGES_NS, "FolderShape")])
            .and_then(|s| s.child_text(TYPES_NS, "BaseShape"));
        if !matches!(shape, Some("IdOnly" | "Default" | "AllProperties")) {
            return Err(schema_fault(
                "GetFolder needs FolderShape/BaseShape (IdOnly, Default or AllProperties)",
            ));
        }
        let Some(ids) = op
            .child(MESSAGES_NS, "FolderIds")
            .filter(|f| !f.children.is_empty())
        else {
            return Err(schema_fault("GetFolder needs FolderIds"));
        };
        let results: Vec<Result<String, ItemError>> = ids
            .children
            .iter()
            .map(|f| self.calendar_of(f, acting))
            .collect();
        Ok(self.answer("GetFolder", |w| {
            for r in &results {
                match r {
                    Ok(owner) => success(w, "m:GetFolderResponseMessage", |w| {
                        w.create_element("m:Folders").write_inner_content(|w| {
                            w.create_element("t:CalendarFolder")
                                .write_inner_content(|w| {
                                    w.create_element("t:FolderId")
                                        .with_attribute(("Id", folder_id(owner).as_str()))
                                        .with_attribute(("ChangeKey", "AgAAABYAAAA"))
                                        .write_empty()?;
                                    Ok(())
                                })?;
                            Ok(())
                        })?;
                        Ok(())
                    })?,
                    Err(e) => failure(w, "m:GetFolderResponseMessage", e, Some("m:Folders"))?,
                }
            }
            Ok(())
        }))
    }

    pub(super) fn find_item(&self, op: &El, acting: &str) -> Result<Reply, Reply> {
        if !matches!(
            op.attr("Traversal"),
            Some("Shallow" | "SoftDeleted" | "Associated")
        ) {
            return Err(schema_fault(
                "The required attribute 'Traversal' is missing or invalid",
            ));
        }
        let Some(shape) = op.child(MESSAGES_NS, "ItemShape") else {
            return Err(schema_fault("FindItem needs ItemShape"));
        };
        let base = shape.child_text(TYPES_NS, "BaseShape").unwrap_or_default();
        if !matches!(base, "IdOnly" | "Default" | "AllProperties") {
            return Err(schema_fault(
                "ItemShape/BaseShape must be IdOnly, Default or AllProperties",
            ));
        }
        let mut fields: Vec<String> = shape
            .child(TYPES_NS, "AdditionalProperties")
            .map(|p| {
                p.children_named(TYPES_NS, "FieldURI")
                    .filter_map(|f| f.attr("FieldURI").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if base != "IdOnly" {
            fields.extend(
                [
                    "item:Subject",
                    "calendar:Start",
                    "calendar:End",
                    "calendar:Location",
                ]
                .map(str::to_owned),
            );
        }
        if let Some(props) = shape.child(TYPES_NS, "AdditionalProperties") {
            for ext in props.children_named(TYPES_NS, "ExtendedFieldURI") {
                let (set_id, name) = extended_uri(ext).map_err(|e| schema_fault(&e.text))?;
                fields.push(format!("ext:{set_id}:{name}"));
            }
        }
        let body_asked = fields.iter().any(|f| f == "item:Body");
        let view = op.child(MESSAGES_NS, "CalendarView");
        let range = match view {
            Some(v) => {
                let start = v.attr("StartDate").and_then(parse_time);
                let end = v.attr("EndDate").and_then(parse_time);
                match (start, end) {
                    (Some(s), Some(e)) => Some((s, e)),
                    _ => {
                        return Err(schema_fault(
                            "CalendarView needs StartDate and EndDate as xs:dateTime",
                        ))
                    }
                }
            }
            None => None,
        };
        let max_entries = view
            .and_then(|v| v.attr("MaxEntriesReturned"))
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
            .min(self.opts.max_view_items);
        let Some(parents) = op
            .child(MESSAGES_NS, "ParentFolderIds")
            .filter(|p| !p.children.is_empty())
        else {
            return Err(schema_fault("FindItem needs ParentFolderIds"));
        };
        let results: Vec<Result<(Vec<CalendarItem>, usize), ItemError>> = parents
            .children
            .iter()
            .map(|folder| {
                if body_asked {
                    return Err(item_error(
                        "ErrorInvalidPropertyRequest",
                        "The property Body can't be used in FindItem requests.",
                    ));
                }
                let owner = self.calendar_of(folder, acting)?;
                if let Some((s, e)) = range {
                    if e < s {
                        return Err(item_error(
                            "ErrorInvalidRequest",
                            "The EndDate of the calendar view is earlier than its StartDate.",
                        ));
                    }
                }
                let mut items: Vec<CalendarItem> = lock(&self.items)
                    .values()
                    .filter(|i| i.mailbox == owner)
                    .filter(|i| range.is_none_or(|(s, e)| overlaps(i.start, i.end, s, e)))
                    .cloned()
                    .collect();
                items.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
                let total = items.len();
                items.truncate(max_entries);
                Ok((items, total))
            })
            .collect();
        Ok(self.answer("FindItem", |w| {
            for r in &results {
                match r {
                    Ok((items, total)) => success(w, "m:FindItemResponseMessage", |w| {
                        let complete = if items.len() == *total {
                            "true"
                        } else {
                            "false"
                        };
                        w.create_element("m:RootFolder")
                            .with_attribute(("TotalItemsInView", total.to_string().as_str()))
                            .with_attribute(("IncludesLastItemInRange", complete))
                            .write_inner_content(|w| {
                                w.create_element("t:Items").write_inner_content(|w| {
                                    for item in items {
                                        write_item(w, item, &fields)?;
                                    }
                                    Ok(())
                                })?;
                                Ok(())
                            })?;
                        Ok(())
                    })?,
                    Err(e) => failure(w, "m:FindItemResponseMessage", e, None)?,
                }
            }
            Ok(())
        }))
    }

    pub(super) fn create_item(
        &self,
        op: &El,
        acting: &str,
        version: usize,
    ) -> Result<Reply, Reply> {
        let invitations = op.attr("SendMeetingInvitations");
        if invitations.is_some_and(|v| !SEND_VALUES.contains(&v)) {
            return Err(schema_fault("SendMeetingInvitations has an invalid value"));
        }
        let Some(items) = op
            .child(MESSAGES_NS, "Items")
            .filter(|i| !i.children.is_empty())
        else {
            return Err(schema_fault("CreateItem needs Items"));
        };
        let folder = op
            .child(MESSAGES_NS, "SavedItemFolderId")
            .and_then(|f| f.children.first());
        let owner = match folder {
            Some(f) => self.calendar_of(f, acting),
            None => Ok(acting.to_owned()),
        };
        let results: Vec<Result<CalendarItem, ItemError>> = items
            .children
            .iter()
            .map(|el| {
                let owner = owner.clone()?;
                if !el.is(TYPES_NS, "CalendarItem") {
                    return Err(item_error(
                        "ErrorInvalidRequest",
                        "This emulator creates calendar items only.",
                    ));
                }
                if invitations.is_none() {
                    return Err(item_error(
                        "ErrorSendMeetingInvitationsRequired",
                        "SendMeetingInvitations attribute is required for calendar items.",
                    ));
                }
                let (Some(start), Some(end)) = (
                    el.child_text(TYPES_NS, "Start").and_then(parse_time),
                    el.child_text(TYPES_NS, "End").and_then(parse_time),
                ) else {
                    return Err(item_error(
                        "ErrorInvalidRequest",
                        "This emulator needs Start and End as xs:dateTime on every calendar item.",
                    ));
                };
                if end < start {
                    return Err(item_error(
                        "ErrorCalendarEndDateIsEarlierThanStartDate",
                        "EndDate is earlier than StartDate",
                    ));
                }
                let mut item = self.new_item(
                    &owner,
                    &el.child(TYPES_NS, "Subject")
                        .map(|s| s.text.clone())
                        .unwrap_or_default(),
                    start,
                    end,
                );
                item.body = el.child(TYPES_NS, "Body").map(|b| b.text.clone());
                item.location = el.child(TYPES_NS, "Location").map(|l| l.text.clone());
                if let Some(set) = el.child_text(TYPES_NS, "ReminderIsSet") {
                    item.reminder_set = xs_bool(set);
                }
                if let Some(all_day) = el.child_text(TYPES_NS, "IsAllDayEvent") {
                    item.all_day = xs_bool(all_day);
                }
                for property in el.children_named(TYPES_NS, "ExtendedProperty") {
                    set_extended(&mut item, property)?;
                }
                for (name, slot) in [
                    ("StartTimeZone", &mut item.start_time_zone),
                    ("EndTimeZone", &mut item.end_time_zone),
                ] {
                    if let Some(zone) = el.child(TYPES_NS, name) {
                        *slot = Some(time_zone_id(zone, version)?);
                    }
                }
                lock(&self.items).insert(item.id.clone(), item.clone());
                Ok(item)
            })
            .collect();
        Ok(self.answer("CreateItem", |w| {
            for r in &results {
                match r {
                    Ok(item) => success(w, "m:CreateItemResponseMessage", |w| {
                        w.create_element("m:Items")
                            .write_inner_content(|w| write_item(w, item, &[]))?;
                        Ok(())
                    })?,
                    Err(e) => failure(w, "m:CreateItemResponseMessage", e, Some("m:Items"))?,
                }
            }
            Ok(())
        }))
    }

    /// The item `id` if the acting mailbox may write it.
    pub(super) fn writable(&self, id: &str, acting: &str) -> Result<CalendarItem, ItemError> {
        let item = lock(&self.items).get(id).cloned().ok_or_else(|| {
            item_error(
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            )
        })?;
        if !self.may_open(acting, &item.mailbox) {
            return Err(item_error(
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
        Ok(item)
    }

    pub(super) fn update_item(
        &self,
        op: &El,
        acting: &str,
        version: usize,
    ) -> Result<Reply, Reply> {
        let conflict = op.attr("ConflictResolution").unwrap_or_default();
        if !matches!(
            conflict,
            "NeverOverwrite" | "AutoResolve" | "AlwaysOverwrite"
        ) {
            return Err(schema_fault(
                "The required attribute 'ConflictResolution' is missing or invalid",
            ));
        }
        let notify = op.attr("SendMeetingInvitationsOrCancellations");
        if notify.is_some_and(|v| !UPDATE_SEND_VALUES.contains(&v)) {
            return Err(schema_fault(
                "SendMeetingInvitationsOrCancellations has an invalid value",
            ));
        }
        let Some(changes) = op
            .child(MESSAGES_NS, "ItemChanges")
            .filter(|c| !c.children.is_empty())
        else {
            return Err(schema_fault("UpdateItem needs ItemChanges"));
        };
        let results: Vec<Result<CalendarItem, ItemError>> = changes
            .children
            .iter()
            .map(|change| {
                let id_el = change
                    .child(TYPES_NS, "ItemId")
                    .ok_or_else(|| item_error("ErrorInvalidRequest", "ItemChange needs an ItemId in this emulator."))?;
                let mut item = self.writable(id_el.attr("Id").unwrap_or_default(), acting)?;
                if notify.is_none() {
                    return Err(item_error(
                        "ErrorSendMeetingInvitationsOrCancellationsRequired",
                        "SendMeetingInvitationsOrCancellations attribute is required for calendar items.",
                    ));
                }
                if conflict != "AlwaysOverwrite" {
                    match id_el.attr("ChangeKey") {
                        None => {
                            return Err(item_error(
                                "ErrorChangeKeyRequiredForWriteOperations",
                                "When making a write operation, the change key is required.",
                            ))
                        }
                        Some(ck) if ck != item.change_key => {
                            return Err(item_error(
                                "ErrorIrresolvableConflict",
                                "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
                            ))
                        }
                        Some(_) => {}
                    }
                }
                let updates = change
                    .child(TYPES_NS, "Updates")
                    .ok_or_else(|| item_error("ErrorInvalidRequest", "ItemChange needs Updates."))?;
                for update in &updates.children {
                    let uri = update
                        .child(TYPES_NS, "FieldURI")
                        .and_then(|f| f.attr("FieldURI"))
                        .unwrap_or_default();
                    let value = update
                        .child(TYPES_NS, "CalendarItem")
                        .and_then(|c| c.children.first());
                    let set = update.is(TYPES_NS, "SetItemField");
                    let deleted = update.is(TYPES_NS, "DeleteItemField");
                    if let Some(ext) = update.child(TYPES_NS, "ExtendedFieldURI") {
                        let (set_id, name) = extended_uri(ext)?;
                        item.extended.retain(|(s, n, _)| !(s == &set_id && n == &name));
                        if set {
                            let property = value.filter(|v| v.is(TYPES_NS, "ExtendedProperty")).ok_or_else(|| {
                                item_error("ErrorIncorrectUpdatePropertyCount", "An object within a change description must contain one and only one property to modify.")
                            })?;
                            set_extended(&mut item, property)?;
                        }
                        continue;
                    }
                    if !set && !deleted {
                        return Err(item_error("ErrorInvalidRequest", "This emulator serves SetItemField and DeleteItemField only."));
                    }
                    if set && value.is_none() {
                        return Err(item_error("ErrorIncorrectUpdatePropertyCount", "An object within a change description must contain one and only one property to modify."));
                    }
                    let text = value.map(|v| v.text.clone());
                    match (uri, set) {
                        ("item:Subject", _) => item.subject = text.unwrap_or_default(),
                        ("item:Body", _) => item.body = text,
                        ("calendar:Location", _) => item.location = text,
                        ("calendar:IsAllDayEvent", true) => {
                            item.all_day = text.as_deref().is_some_and(xs_bool)
                        }
                        ("calendar:StartTimeZone", true) => {
                            item.start_time_zone = value.map(|z| time_zone_id(z, version)).transpose()?
                        }
                        ("calendar:EndTimeZone", true) => {
                            item.end_time_zone = value.map(|z| time_zone_id(z, version)).transpose()?
                        }
                        ("calendar:Start", true) => {
                            item.start = text.as_deref().and_then(parse_time).ok_or_else(|| {
                                item_error("ErrorInvalidRequest", "Start is not an xs:dateTime.")
                            })?
                        }
                        ("calendar:End", true) => {
                            item.end = text.as_deref().and_then(parse_time).ok_or_else(|| {
                                item_error("ErrorInvalidRequest", "End is not an xs:dateTime.")
                            })?
                        }
                        _ => {
                            return Err(item_error(
                                "ErrorInvalidPropertyRequest",
                                format!("This emulator cannot change {uri}."),
                            ))
                        }
                    }
                }
                if item.end < item.start {
                    return Err(item_error(
                        "ErrorCalendarEndDateIsEarlierThanStartDate",
                        "EndDate is earlier than StartDate",
                    ));
                }
                item.change_key = self.next_change_key();
                lock(&self.items).insert(item.id.clone(), item.clone());
                Ok(item)
            })
            .collect();
        Ok(self.answer("UpdateItem", |w| {
            for r in &results {
                match r {
                    Ok(item) => success(w, "m:UpdateItemResponseMessage", |w| {
                        w.create_element("m:Items")
                            .write_inner_content(|w| write_item(w, item, &[]))?;
                        w.create_element("m:ConflictResults")
                            .write_inner_content(|w| text_el(w, "t:Count", "0"))?;
                        Ok(())
                    })?,
                    Err(e) => failure(w, "m:UpdateItemResponseMessage", e, Some("m:Items"))?,
                }
            }
            Ok(())
        }))
    }

    pub(super) fn delete_item(&self, op: &El, acting: &str) -> Result<Reply, Reply> {
        if !matches!(
            op.attr("DeleteType"),
            Some("HardDelete" | "SoftDelete" | "MoveToDeletedItems")
        ) {
            return Err(schema_fault(
                "The required attribute 'DeleteType' is missing or invalid",
            ));
        }
        let cancellations = op.attr("SendMeetingCancellations");
        if cancellations.is_some_and(|v| !SEND_VALUES.contains(&v)) {
            return Err(schema_fault(
                "SendMeetingCancellations has an invalid value",
            ));
        }
        let Some(ids) = op
            .child(MESSAGES_NS, "ItemIds")
            .filter(|i| !i.children.is_empty())
        else {
            return Err(schema_fault("DeleteItem needs ItemIds"));
        };
        let results: Vec<Result<(), ItemError>> = ids
            .children
            .iter()
            .map(|id| {
                let item = self.writable(id.attr("Id").unwrap_or_default(), acting)?;
                if cancellations.is_none() {
                    return Err(item_error(
                        "ErrorSendMeetingCancellationsRequired",
                        "SendMeetingCancellations attribute is required for calendar items.",
                    ));
                }
                lock(&self.items).remove(&item.id);
                Ok(())
            })
            .collect();
        Ok(self.answer("DeleteItem", |w| {
            for r in &results {
                match r {
                    Ok(()) => success(w, "m:DeleteItemResponseMessage", |_| Ok(()))?,
                    Err(e) => failure(w, "m:DeleteItemResponseMessage", e, None)?,
                }
            }
            Ok(())
        }))
    }
}
