//! Writing answers: SOAP documents, response messages, items, faults and the 401
//! challenges.

use super::*;

pub(super) type W = Writer<Vec<u8>>;

pub(super) fn write_doc(f: impl FnOnce(&mut W) -> io::Result<()>) -> io::Result<String> {
    let mut w = Writer::new(Vec::new());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    f(&mut w)?;
    String::from_utf8(w.into_inner()).map_err(io::Error::other)
}

pub(super) fn text_el(w: &mut W, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

pub(super) fn success(
    w: &mut W,
    name: &str,
    payload: impl FnOnce(&mut W) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element(name)
        .with_attribute(("ResponseClass", "Success"))
        .write_inner_content(|w| {
            text_el(w, "m:ResponseCode", "NoError")?;
            payload(w)
        })?;
    Ok(())
}

/// A per-item error message, in the order of `ResponseMessageType`, with the empty payload
/// element real servers add.
pub(super) fn failure(w: &mut W, name: &str, e: &ItemError, empty: Option<&str>) -> io::Result<()> {
    w.create_element(name)
        .with_attribute(("ResponseClass", "Error"))
        .write_inner_content(|w| {
            text_el(w, "m:MessageText", &e.text)?;
            text_el(w, "m:ResponseCode", e.code)?;
            text_el(w, "m:DescriptiveLinkKey", "0")?;
            if let Some(empty) = empty {
                w.create_element(empty).write_empty()?;
            }
            Ok(())
        })?;
    Ok(())
}

/// An item with the fields asked for, in schema order.
pub(super) fn write_item(w: &mut W, item: &CalendarItem, fields: &[String]) -> io::Result<()> {
    let asked = |f: &str| fields.iter().any(|x| x == f);
    w.create_element("t:CalendarItem")
        .write_inner_content(|w| {
            w.create_element("t:ItemId")
                .with_attribute(("Id", item.id.as_str()))
                .with_attribute(("ChangeKey", item.change_key.as_str()))
                .write_empty()?;
            if asked("item:Subject") {
                text_el(w, "t:Subject", &item.subject)?;
            }
            if asked("item:Sensitivity") {
                text_el(w, "t:Sensitivity", &item.sensitivity)?;
            }
            for (set_id, name, value) in &item.extended {
                if asked(&format!("ext:{set_id}:{name}")) {
                    w.create_element("t:ExtendedProperty")
                        .write_inner_content(|w| {
                            w.create_element("t:ExtendedFieldURI")
                                .with_attribute(("PropertySetId", set_id.as_str()))
                                .with_attribute(("PropertyName", name.as_str()))
                                .with_attribute(("PropertyType", "String"))
                                .write_empty()?;
                            text_el(w, "t:Value", value)
                        })?;
                }
            }
            if asked("calendar:Start") {
                text_el(w, "t:Start", &format_time(item.start))?;
            }
            if asked("calendar:End") {
                text_el(w, "t:End", &format_time(item.end))?;
            }
            if asked("calendar:IsAllDayEvent") {
                text_el(
                    w,
                    "t:IsAllDayEvent",
                    if item.all_day { "true" } else { "false" },
                )?;
            }
            if asked("calendar:LegacyFreeBusyStatus") {
                text_el(w, "t:LegacyFreeBusyStatus", &item.show_as)?;
            }
            if asked("calendar:Location") {
                if let Some(location) = &item.location {
                    text_el(w, "t:Location", location)?;
                }
            }
            if asked("calendar:IsCancelled") {
                text_el(
                    w,
                    "t:IsCancelled",
                    if item.cancelled { "true" } else { "false" },
                )?;
            }
            Ok(())
        })?;
    Ok(())
}

/// A request-level SOAP fault on HTTP 500, shaped like the real ones.
pub(super) fn fault(code: &str, text: &str, values: &[(&str, &str)]) -> Reply {
    let written = write_doc(|w| {
        w.create_element("s:Envelope")
            .with_attribute(("xmlns:s", SOAP_NS))
            .write_inner_content(|w| {
                w.create_element("s:Body").write_inner_content(|w| {
                    w.create_element("s:Fault").write_inner_content(|w| {
                        w.create_element("faultcode")
                            .with_attribute(("xmlns:a", TYPES_NS))
                            .write_text_content(BytesText::new(&format!("a:{code}")))?;
                        w.create_element("faultstring")
                            .with_attribute(("xml:lang", "en-US"))
                            .write_text_content(BytesText::new(text))?;
                        w.create_element("detail").write_inner_content(|w| {
                            w.create_element("e:ResponseCode")
                                .with_attribute(("xmlns:e", ERRORS_NS))
                                .write_text_content(BytesText::new(code))?;
                            w.create_element("e:Message")
                                .with_attribute(("xmlns:e", ERRORS_NS))
                                .write_text_content(BytesText::new(text))?;
                            if !values.is_empty() {
                                w.create_element("t:MessageXml")
                                    .with_attribute(("xmlns:t", TYPES_NS))
                                    .write_inner_content(|w| {
                                        for (name, value) in values {
                                            w.create_element("t:Value")
                                                .with_attribute(("Name", *name))
                                                .write_text_content(BytesText::new(value))?;
                                        }
                                        Ok(())
                                    })?;
                            }
                            Ok(())
                        })?;
                        Ok(())
                    })?;
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    });
    match written {
        Ok(body) => Reply::xml(StatusCode::INTERNAL_SERVER_ERROR, body),
        Err(e) => internal_fault(&e),
    }
}

pub(super) fn schema_fault(why: &str) -> Reply {
    fault(
        "ErrorSchemaValidation",
        &format!("The request failed schema validation: {why}."),
        &[],
    )
}

pub(super) fn internal_fault(e: &io::Error) -> Reply {
    Reply {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: format!("emulator failure: {e}"),
        headers: vec![(header::CONTENT_TYPE, "text/plain".into())],
    }
}

pub(super) fn unauthorized(auth: &ServerAuth, error: Option<&str>) -> Reply {
    let mut headers = Vec::new();
    if auth.ntlm {
        headers.push((header::WWW_AUTHENTICATE, "Negotiate".to_owned()));
        headers.push((header::WWW_AUTHENTICATE, "NTLM".to_owned()));
    }
    if auth.basic {
        headers.push((
            header::WWW_AUTHENTICATE,
            "Basic realm=\"127.0.0.1\"".to_owned(),
        ));
    }
    if auth.oauth {
        let bearer = match error {
            Some(_) => "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\", error=\"invalid_token\"",
            None => "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\"",
        };
        headers.push((header::WWW_AUTHENTICATE, bearer.to_owned()));
        if let Some(reason) = error {
            headers.push((
                header::HeaderName::from_static("x-ms-diagnostics"),
                format!("2000001;reason=\"{reason}\";error_category=\"invalid_token\""),
            ));
        }
    }
    Reply {
        status: StatusCode::UNAUTHORIZED,
        body: "401 - Unauthorized: Access is denied due to invalid credentials.".to_owned(),
        headers,
    }
}
