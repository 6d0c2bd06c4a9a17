//! Graph's `event` as this plugin writes and reads it, and the times it carries.
//!
//! Written events: subject, plain-text body, location, `isReminderOn: false` (an ERP slot
//! should not ring), `showAs: busy`, and the ERP id in a single-value extended property
//! ([`ERP_ID_PROPERTY`]) so that the event says itself which appointment it is: a lost or
//! reset plugin state cannot make the next sync create it again. Timed appointments carry
//! explicit UTC times (`timeZone: "UTC"`); an appointment from a midnight to a later
//! midnight (in the offset the ERP gave) is all-day: `isAllDay` with those dates at midnight
//! in the configured time zone, as Graph requires.
//!
//! Read events come from a calendar view asked in UTC (`Prefer: outlook.timezone="UTC"`),
//! so their `dateTime`s, which have no offset, are UTC.

use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The extended property holding the ERP id: a string property named in Passerelle's own
/// property set (a GUID chosen for this plugin, as Microsoft asks of custom properties).
pub const ERP_ID_PROPERTY: &str =
    "String {4c1d6a3e-8b52-4f0e-9d17-2a6e5b8c9f03} Name PasserelleErpId";

/// `dateTimeTimeZone`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DateTimeTz {
    #[serde(rename = "dateTime")]
    pub date_time: String,
    #[serde(rename = "timeZone", default)]
    pub time_zone: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Location {
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExtendedProperty {
    pub id: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// An event of a calendar view (the fields this plugin selects).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub start: Option<DateTimeTz>,
    #[serde(default)]
    pub end: Option<DateTimeTz>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(rename = "isAllDay", default)]
    pub is_all_day: bool,
    #[serde(rename = "isCancelled", default)]
    pub is_cancelled: bool,
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`, `unknown`.
    #[serde(rename = "showAs", default)]
    pub show_as: Option<String>,
    /// `normal`, `personal`, `private`, `confidential`.
    #[serde(default)]
    pub sensitivity: Option<String>,
    #[serde(rename = "singleValueExtendedProperties", default)]
    pub properties: Vec<ExtendedProperty>,
}

impl Event {
    /// The ERP id this plugin stored on the event, if it is one of the ERP's.
    pub fn erp_id(&self) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(ERP_ID_PROPERTY))
            .and_then(|p| p.value.as_deref())
            .filter(|v| !v.is_empty())
    }

    pub fn location(&self) -> Option<&str> {
        self.location
            .as_ref()
            .and_then(|l| l.display_name.as_deref())
            .filter(|l| !l.trim().is_empty())
    }

    pub fn start_utc(&self) -> Option<i64> {
        self.start.as_ref().and_then(parse_graph)
    }

    pub fn end_utc(&self) -> Option<i64> {
        self.end.as_ref().and_then(parse_graph)
    }
}

/// One page of a calendar view.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub value: Vec<Event>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// The answer to a create: the new event's id.
#[derive(Debug, Deserialize)]
pub struct Created {
    pub id: String,
}

/// When an appointment happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Seconds since the epoch.
    Timed { start: i64, end: i64 },
    /// From the first day's midnight to the `end` day's midnight (excluded).
    AllDay { first: Date, end: Date },
}

/// An appointment as it should be in the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub subject: String,
    pub body: Option<String>,
    pub location: Option<String>,
    pub when: When,
}

impl Content {
    /// The JSON body of a create or an update.
    pub fn to_json(&self, erp_id: &str, time_zone: &str) -> Value {
        let (start, end, all_day) = match &self.when {
            When::Timed { start, end } => (
                json!({"dateTime": graph_utc(*start), "timeZone": "UTC"}),
                json!({"dateTime": graph_utc(*end), "timeZone": "UTC"}),
                false,
            ),
            When::AllDay { first, end } => (
                json!({"dateTime": midnight(*first), "timeZone": time_zone}),
                json!({"dateTime": midnight(*end), "timeZone": time_zone}),
                true,
            ),
        };
        json!({
            "subject": self.subject,
            "body": {"contentType": "text", "content": self.body.clone().unwrap_or_default()},
            "start": start,
            "end": end,
            "isAllDay": all_day,
            "location": {"displayName": self.location.clone().unwrap_or_default()},
            "isReminderOn": false,
            "showAs": "busy",
            "singleValueExtendedProperties": [{"id": ERP_ID_PROPERTY, "value": erp_id}],
        })
    }

    /// Whether `event` shows this content, for the fields a calendar view returns (not the
    /// body: Graph returns it as HTML, rewritten).
    pub fn shown_by(&self, event: &Event) -> bool {
        let same = |a: Option<&str>, b: Option<&str>| {
            a.unwrap_or_default().trim() == b.unwrap_or_default().trim()
        };
        let when = match &self.when {
            When::Timed { start, end } => {
                !event.is_all_day
                    && event.start_utc() == Some(*start)
                    && event.end_utc() == Some(*end)
            }
            // Graph returns an all-day event's midnights converted to the time zone asked
            // for (UTC here), so they are compared as a span of whole days that starts
            // within a time zone's reach of the first day's midnight.
            When::AllDay { first, end } => match (event.start_utc(), event.end_utc()) {
                (Some(s), Some(e)) => {
                    let days = (*end - *first).whole_days();
                    let first_utc = first.midnight().assume_utc().unix_timestamp();
                    event.is_all_day
                        && ((e - s) - days * 86_400).abs() <= 3_600
                        && (s - first_utc).abs() <= 14 * 3_600
                }
                _ => false,
            },
        };
        when && same(event.subject.as_deref(), Some(&self.subject))
            && same(event.location(), self.location.as_deref())
    }
}

/// An RFC 3339 date and time: seconds since the epoch and the offset it was written with.
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|e| {
        format!("{s:?} is not an RFC 3339 date and time, e.g. 2025-03-04T09:00:00+01:00 ({e})")
    })?;
    // Near the ends of the four-digit years an offset moves a valid local time out of them
    // (`9999-12-31T23:00:00-05:00`); its UTC form cannot be written, and such a time was sent
    // to Graph as 1970-01-01 before (found by `tests/fuzz.rs`).
    let in_range = OffsetDateTime::from_unix_timestamp(t.unix_timestamp())
        .is_ok_and(|utc| (0..=9999).contains(&utc.year()));
    if in_range {
        Ok(t)
    } else {
        Err(format!(
            "{s:?} falls outside the years 0000 to 9999 once moved to UTC; give a time within them"
        ))
    }
}

/// All-day when both ends are midnights in their own offsets, at least a day apart.
pub fn when(start: OffsetDateTime, end: OffsetDateTime) -> When {
    let whole_days =
        start.time() == Time::MIDNIGHT && end.time() == Time::MIDNIGHT && end.date() > start.date();
    if whole_days {
        When::AllDay {
            first: start.date(),
            end: end.date(),
        }
    } else {
        When::Timed {
            start: start.unix_timestamp(),
            end: end.unix_timestamp(),
        }
    }
}

/// The output form of a time: `2025-03-04T08:00:00Z`.
pub fn utc(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Graph's `dateTime` of a UTC time (no offset: the time zone is a separate field).
fn graph_utc(seconds: i64) -> String {
    let text = utc(seconds);
    text.strip_suffix('Z').unwrap_or(&text).to_owned()
}

fn midnight(date: Date) -> String {
    format!("{date}T00:00:00")
}

fn graph_primitive(value: &DateTimeTz) -> Option<PrimitiveDateTime> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(value.date_time.trim(), &format).ok()
}

/// Seconds since the epoch of a `dateTimeTimeZone` in UTC; `None` in any other zone.
pub fn parse_graph(value: &DateTimeTz) -> Option<i64> {
    let zone = value.time_zone.trim();
    if !(zone.is_empty() || zone.eq_ignore_ascii_case("UTC")) {
        return None;
    }
    graph_primitive(value).map(|t| t.assume_offset(UtcOffset::UTC).unix_timestamp())
}

/// The output form of an event's time, UTC when Graph gave UTC.
pub fn output_time(value: Option<&DateTimeTz>) -> String {
    match value {
        Some(v) => parse_graph(v).map_or_else(|| v.date_time.clone(), utc),
        None => String::new(),
    }
}

/// Whether `[start, end)` overlaps `[from, to)`; an instant overlaps when inside.
pub fn overlaps(start: i64, end: i64, from: i64, to: i64) -> bool {
    if start == end {
        start >= from && start < to
    } else {
        start < to && end > from
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        parse_rfc3339(s).unwrap()
    }

    /// Found by `tests/fuzz.rs` (`calendar-graph.times`): a time whose UTC form has a
    /// five-digit year was written as 1970-01-01T00:00:00Z.
    #[test]
    fn times_beyond_year_9999_in_utc_are_refused_not_sent_as_1970() {
        let e = parse_rfc3339("9999-12-31T23:59:59-23:59").unwrap_err();
        assert!(e.contains("0000 to 9999"), "{e}");
        assert!(parse_rfc3339("0000-01-01T00:00:00+00:01").is_err());
        let last = parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(utc(last.unix_timestamp()), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn midnight_to_midnight_is_all_day() {
        let w = when(
            at("2025-03-04T00:00:00+01:00"),
            at("2025-03-06T00:00:00+01:00"),
        );
        assert_eq!(
            w,
            When::AllDay {
                first: time::macros::date!(2025 - 03 - 04),
                end: time::macros::date!(2025 - 03 - 06)
            }
        );
        let w = when(
            at("2025-03-04T09:00:00+01:00"),
            at("2025-03-04T10:00:00+01:00"),
        );
        assert_eq!(
            w,
            When::Timed {
                start: 1_741_075_200,
                end: 1_741_078_800
            }
        );
        // Midnight to the same midnight is an instant, not a day.
        assert!(matches!(
            when(at("2025-03-04T00:00:00Z"), at("2025-03-04T00:00:00Z")),
            When::Timed { .. }
        ));
    }

    #[test]
    fn json_is_what_graph_expects() {
        let c = Content {
            subject: "Visit".into(),
            body: None,
            location: Some("Lyon".into()),
            when: when(
                at("2025-03-04T09:00:00+01:00"),
                at("2025-03-04T10:00:00+01:00"),
            ),
        };
        let v = c.to_json("SO-1", "Romance Standard Time");
        assert_eq!(
            v["start"],
            json!({"dateTime": "2025-03-04T08:00:00", "timeZone": "UTC"})
        );
        assert_eq!(v["isReminderOn"], false);
        assert_eq!(v["isAllDay"], false);
        assert_eq!(v["singleValueExtendedProperties"][0]["id"], ERP_ID_PROPERTY);
        assert_eq!(v["singleValueExtendedProperties"][0]["value"], "SO-1");
        let all_day = Content {
            when: when(
                at("2025-03-04T00:00:00+01:00"),
                at("2025-03-05T00:00:00+01:00"),
            ),
            ..c.clone()
        };
        let v = all_day.to_json("SO-2", "Romance Standard Time");
        assert_eq!(
            v["start"],
            json!({"dateTime": "2025-03-04T00:00:00", "timeZone": "Romance Standard Time"})
        );
        assert_eq!(v["end"]["dateTime"], "2025-03-05T00:00:00");
        assert_eq!(v["isAllDay"], true);

        let event: Event = serde_json::from_value(json!({
            "id": "AAMk1", "subject": " Visit", "isAllDay": false,
            "start": {"dateTime": "2025-03-04T08:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2025-03-04T09:00:00.0000000", "timeZone": "UTC"},
            "location": {"displayName": "Lyon", "locationType": "default"},
            "singleValueExtendedProperties": [{"id": ERP_ID_PROPERTY, "value": "SO-1"}]
        }))
        .unwrap();
        assert!(c.shown_by(&event));
        assert_eq!(event.erp_id(), Some("SO-1"));
        assert!(!all_day.shown_by(&event));
        // An all-day event written in Paris, read back in UTC.
        let paris: Event = serde_json::from_value(json!({
            "id": "AAMk2", "subject": "Visit", "isAllDay": true,
            "start": {"dateTime": "2025-03-03T23:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2025-03-04T23:00:00.0000000", "timeZone": "UTC"},
            "location": {"displayName": "Lyon"}
        }))
        .unwrap();
        assert!(all_day.shown_by(&paris));
        assert!(!c.shown_by(&paris));
        assert_eq!(output_time(event.start.as_ref()), "2025-03-04T08:00:00Z");
    }
}
