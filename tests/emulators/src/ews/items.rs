//! Calendar item values: send-meeting options, extended properties, time zones, server
//! versions, `xs:dateTime` and folder ids.

use super::*;

pub(super) const SEND_VALUES: &[&str] = &["SendToNone", "SendOnlyToAll", "SendToAllAndSaveCopy"];
pub(super) const UPDATE_SEND_VALUES: &[&str] = &[
    "SendToNone",
    "SendOnlyToAll",
    "SendOnlyToChanged",
    "SendToAllAndSaveCopy",
    "SendToChangedAndSaveCopy",
];

pub(super) fn xs_bool(v: &str) -> bool {
    matches!(v.trim(), "true" | "1")
}

/// The (lower-case property set id, name) of a named String `ExtendedFieldURI`; this
/// emulator keeps no other kind.
pub(super) fn extended_uri(uri: &El) -> Result<(String, String), ItemError> {
    match (
        uri.attr("PropertySetId"),
        uri.attr("PropertyName"),
        uri.attr("PropertyType"),
    ) {
        (Some(set), Some(name), Some("String")) => Ok((set.to_lowercase(), name.to_owned())),
        (_, _, None) => Err(item_error(
            "ErrorInvalidExtendedProperty",
            "The extended property attribute combination is invalid: PropertyType is required.",
        )),
        _ => Err(item_error(
            "ErrorInvalidExtendedProperty",
            "This emulator keeps named String extended properties (PropertySetId, PropertyName, PropertyType String) only.",
        )),
    }
}

pub(super) fn set_extended(item: &mut CalendarItem, property: &El) -> Result<(), ItemError> {
    let uri = property
        .child(TYPES_NS, "ExtendedFieldURI")
        .ok_or_else(|| {
            item_error(
                "ErrorInvalidExtendedProperty",
                "An ExtendedProperty needs an ExtendedFieldURI.",
            )
        })?;
    let (set_id, name) = extended_uri(uri)?;
    let value = property.child_text(TYPES_NS, "Value").ok_or_else(|| {
        item_error(
            "ErrorInvalidExtendedPropertyValue",
            "The extended property value is invalid.",
        )
    })?;
    item.extended
        .retain(|(s, n, _)| !(s == &set_id && n == &name));
    item.extended.push((set_id, name, value.to_owned()));
    Ok(())
}

/// The Id of a `StartTimeZone`/`EndTimeZone`: elements of the Exchange 2010 schema.
pub(super) fn time_zone_id(zone: &El, version: usize) -> Result<String, ItemError> {
    if version < version_rank("Exchange2010").unwrap_or(0) {
        return Err(item_error(
            "ErrorSchemaValidation",
            format!(
                "The element '{}' is not valid for the requested server version.",
                zone.name
            ),
        ));
    }
    zone.attr("Id")
        .filter(|id| !id.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| item_error("ErrorTimeZone", "The time zone definition has no Id."))
}

pub(super) fn version_rank(version: &str) -> Option<usize> {
    SCHEMA_VERSIONS.iter().position(|v| *v == version)
}

/// Major, minor and build numbers a server of that version reports.
pub(super) fn server_build(
    version: &str,
) -> (&'static str, &'static str, (&'static str, &'static str)) {
    match version {
        "Exchange2007" | "Exchange2007_SP1" => ("8", "1", ("436", "0")),
        "Exchange2010" => ("14", "0", ("639", "21")),
        "Exchange2010_SP1" => ("14", "1", ("218", "15")),
        "Exchange2010_SP2" => ("14", "2", ("247", "5")),
        "Exchange2013" | "Exchange2013_SP1" => ("15", "0", ("847", "32")),
        _ => ("15", "1", ("2507", "6")),
    }
}

pub(super) fn overlaps(start: i64, end: i64, from: i64, to: i64) -> bool {
    if start == end {
        start >= from && start < to
    } else {
        start < to && end > from
    }
}

/// Seconds since the epoch of an `xs:dateTime`; without an offset it is UTC.
pub(super) fn parse_time(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    time::PrimitiveDateTime::parse(s, &format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

pub(super) fn format_time(seconds: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub(super) fn folder_id(owner: &str) -> String {
    format!(
        "AAMkAF{}",
        base64::engine::general_purpose::STANDARD.encode(format!("calendar:{owner}"))
    )
}

pub(super) fn decode_folder_id(id: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(id.strip_prefix("AAMkAF")?)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("calendar:")
        .map(str::to_owned)
}
