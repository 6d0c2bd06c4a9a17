//! Dates and times: the ERP sends RFC 3339 with any offset; EWS gets and returns
//! `xs:dateTime` in UTC. Everything is compared as whole seconds since the epoch, so that
//! `09:00+01:00` and `08:00Z` are the same time and a sub-second part never counts as a
//! change.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Seconds since the epoch of an RFC 3339 date and time (with an offset or `Z`).
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            format!("{s:?} is not an RFC 3339 date and time, e.g. 2025-03-04T09:00:00+01:00 ({e})")
        })
}

/// Seconds since the epoch of an EWS `xs:dateTime`; one without an offset is UTC, which is
/// how EWS reads and writes them unless told a time zone.
pub fn parse_ews(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(s, &format)
        .ok()
        .map(|t| t.assume_offset(UtcOffset::UTC).unix_timestamp())
}

/// The EWS (and output) form of a time: `2025-03-04T08:00:00Z`.
pub fn utc(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Whether `[start, end)` overlaps the window `[from, to)`; an instant item overlaps when it
/// falls inside. The same rule as a calendar view's.
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

    #[test]
    fn offsets_are_normalised_to_utc() {
        let a = parse_rfc3339("2025-03-04T09:00:00+01:00").unwrap();
        let b = parse_rfc3339("2025-03-04T08:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(utc(a), "2025-03-04T08:00:00Z");
        assert_eq!(parse_rfc3339("2025-03-04T08:00:00.900Z").unwrap(), b);
        assert!(parse_rfc3339("2025-03-04 08:00")
            .unwrap_err()
            .contains("RFC 3339"));
        assert!(parse_rfc3339("2025-03-04").is_err());
    }

    #[test]
    fn ews_times_without_offset_are_utc() {
        let b = parse_rfc3339("2025-03-04T08:00:00Z").unwrap();
        assert_eq!(parse_ews("2025-03-04T08:00:00Z"), Some(b));
        assert_eq!(parse_ews("2025-03-04T08:00:00"), Some(b));
        assert_eq!(parse_ews("2025-03-04T10:00:00+02:00"), Some(b));
        assert_eq!(parse_ews("soon"), None);
    }

    #[test]
    fn overlap_rule() {
        assert!(overlaps(10, 20, 15, 30));
        assert!(!overlaps(10, 15, 15, 30));
        assert!(!overlaps(30, 40, 15, 30));
        assert!(overlaps(15, 15, 15, 30));
        assert!(!overlaps(30, 30, 15, 30));
    }
}
