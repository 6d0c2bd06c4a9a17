//! Reading what clients send: JSON bodies and event fields, extended property ids, the
//! `Prefer: outlook.timezone` zone, `dateTime` values, OData query encoding.

use super::*;

pub(super) fn read_body(body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "UnableToDeserializePostBody",
            "were unable to deserialize ",
        )),
    }
}

/// Applies a create's or an update's properties to an event, checking them as Graph does.
pub(super) fn apply(
    event: &mut StoredEvent,
    fields: &Map<String, Value>,
) -> Result<(), GraphError> {
    let invalid = |message: String| error(StatusCode::BAD_REQUEST, "ErrorInvalidRequest", message);
    if let Some(v) = fields.get("subject") {
        event.subject = v.as_str().unwrap_or_default().to_owned();
    }
    if let Some(body) = fields.get("body") {
        let kind = body
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or("html");
        if !kind.eq_ignore_ascii_case("text") && !kind.eq_ignore_ascii_case("html") {
            return Err(invalid(format!(
                "The value '{kind}' of bodyType is invalid."
            )));
        }
        event.body_type = kind.to_ascii_lowercase();
        event.body = body
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
    }
    if let Some(location) = fields.get("location") {
        event.location = location
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
    }
    if let Some(v) = fields.get("isReminderOn") {
        event.is_reminder_on = v.as_bool().unwrap_or(true);
    }
    if let Some(v) = fields.get("isAllDay") {
        event.is_all_day = v.as_bool().unwrap_or(false);
    }
    for (name, target, zone) in [
        ("start", &mut event.start, &mut event.start_zone),
        ("end", &mut event.end, &mut event.end_zone),
    ] {
        let Some(value) = fields.get(name) else {
            continue;
        };
        let date_time = value.get("dateTime").and_then(Value::as_str);
        let time_zone = value.get("timeZone").and_then(Value::as_str);
        let (Some(date_time), Some(time_zone)) = (date_time, time_zone) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "ErrorPropertyValidationFailure",
                format!(
                    "At least one property failed validation: {name} needs dateTime and timeZone."
                ),
            ));
        };
        let Some(offset) = zone_offset(time_zone) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "TimeZoneNotSupportedException",
                format!("A valid TimeZone value must be specified. The following TimeZone value is not supported: '{time_zone}'."),
            ));
        };
        let local = parse_local(date_time).ok_or_else(|| {
            invalid(format!("Cannot convert the literal '{date_time}' to the expected type 'Edm.DateTimeOffset'."))
        })?;
        if event.is_all_day && local.time() != Time::MIDNIGHT {
            return Err(invalid(
                "Your request can't be completed. An all-day event must start and end at midnight."
                    .into(),
            ));
        }
        *target = local.assume_offset(offset).unix_timestamp();
        *zone = time_zone.to_owned();
    }
    if event.end < event.start {
        return Err(invalid(
            "Your request can't be completed. The end time must be after the start time.".into(),
        ));
    }
    if let Some(props) = fields.get("singleValueExtendedProperties") {
        for p in props.as_array().into_iter().flatten() {
            let id = p.get("id").and_then(Value::as_str).unwrap_or_default();
            if !is_property_id(id) {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidProperty",
                    format!("The extended property id '{id}' is malformed; expected e.g. String {{66f5a359-4659-4830-9070-00047ec6ac6e}} Name Color."),
                ));
            }
            let value = p.get("value").and_then(Value::as_str).unwrap_or_default();
            event.properties.insert(id.to_owned(), value.to_owned());
        }
    }
    Ok(())
}

/// `Type {guid} Name x` or `Type {guid} Id 0x…`.
pub(super) fn is_property_id(id: &str) -> bool {
    let parts: Vec<&str> = id.splitn(4, ' ').collect();
    let [kind, guid, tag, name] = parts.as_slice() else {
        return false;
    };
    let guid_ok = guid.len() == 38
        && guid.starts_with('{')
        && guid.ends_with('}')
        && guid[1..37]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-');
    [
        "String",
        "Integer",
        "Boolean",
        "SystemTime",
        "Binary",
        "Long",
        "Double",
        "CLSID",
    ]
    .contains(kind)
        && guid_ok
        && (*tag == "Name" || *tag == "Id")
        && !name.is_empty()
}

/// Graph compares the type and the GUID without case, the name with case.
pub(super) fn same_property(a: &str, b: &str) -> bool {
    match (a.rsplit_once(' '), b.rsplit_once(' ')) {
        (Some((head_a, name_a)), Some((head_b, name_b))) => {
            head_a.eq_ignore_ascii_case(head_b) && name_a == name_b
        }
        _ => false,
    }
}

/// The ids of `singleValueExtendedProperties($filter=id eq 'x')` (several joined by `or`).
pub(super) fn expand_filter(expand: &str) -> Option<Vec<String>> {
    let inner = expand
        .trim()
        .strip_prefix("singleValueExtendedProperties(")?
        .strip_suffix(')')?;
    let filter = inner.trim().strip_prefix("$filter=")?;
    filter
        .split(" or ")
        .map(|clause| {
            let value = clause.trim().strip_prefix("id eq ")?;
            let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
            Some(value.to_owned())
        })
        .collect()
}

/// `Prefer: outlook.timezone="…"`, when the zone is known; UTC otherwise.
pub(super) fn prefer_zone(headers: &HeaderMap) -> (String, i32) {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            let value = p.trim().strip_prefix("outlook.timezone=")?;
            let name = value.trim().trim_matches('"');
            let minutes = ZONES.iter().find(|(z, _)| z.eq_ignore_ascii_case(name))?.1;
            Some((name.to_owned(), minutes))
        })
        .unwrap_or_else(|| ("UTC".into(), 0))
}

pub(super) fn zone_offset(name: &str) -> Option<UtcOffset> {
    let minutes = ZONES
        .iter()
        .find(|(z, _)| z.eq_ignore_ascii_case(name.trim()))?
        .1;
    UtcOffset::from_whole_seconds(minutes * 60).ok()
}

pub(super) fn parse_local(s: &str) -> Option<PrimitiveDateTime> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(s.trim(), &format).ok()
}

/// A calendar view bound: ISO 8601 with an offset, or without one (then UTC).
pub(super) fn parse_query_time(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map(|t| t.unix_timestamp())
        .ok()
        .or_else(|| parse_local(s).map(|t| t.assume_utc().unix_timestamp()))
}

/// Graph's `dateTime` form in a zone: `2017-04-15T11:00:00.0000000`.
pub(super) fn graph_time(seconds: i64, offset_minutes: i32) -> String {
    let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap_or(UtcOffset::UTC);
    dates::format(
        dates::from_unix(seconds).to_offset(offset),
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].0000000"),
    )
}

pub(super) fn overlaps(start: i64, end: i64, from: i64, to: i64) -> bool {
    if start == end {
        start >= from && start < to
    } else {
        start < to && end > from
    }
}

/// Percent-encoding of a query name or value (`%20` for spaces, as OData asks).
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'$' | b'@' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
