//! Dates and times: the ERP sends RFC 3339 with any offset; EWS gets and returns
//! `xs:dateTime` in UTC. Everything is compared as whole seconds since the epoch, so that
//! `09:00+01:00` and `08:00Z` are the same time and a sub-second part never counts as a
//! change.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Seconds since the epoch of an RFC 3339 date and time (with an offset or `Z`).
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let seconds = OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            format!("{s:?} is not an RFC 3339 date and time, e.g. 2025-03-04T09:00:00+01:00 ({e})")
        })?;
    if in_utc_range(seconds) {
        Ok(seconds)
    } else {
        Err(format!(
            "{s:?} falls outside the years 0000 to 9999 once moved to UTC, which EWS cannot store; give a time within them"
        ))
    }
}

/// Whether a time has a UTC form with a four-digit year. Near the ends of that range an
/// offset moves a valid local time out of it (`9999-12-31T23:00:00-05:00`); such a time
/// was written as 1970-01-01 before (found by `tests/fuzz.rs`).
fn in_utc_range(seconds: i64) -> bool {
    OffsetDateTime::from_unix_timestamp(seconds).is_ok_and(|t| (0..=9999).contains(&t.year()))
}

/// Seconds since the epoch of an EWS `xs:dateTime`; one without an offset is UTC, which is
/// how EWS reads and writes them unless told a time zone.
pub fn parse_ews(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp()).filter(|&seconds| in_utc_range(seconds));
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

    /// Found by `tests/fuzz.rs` (`exchange-ews.times`): a time whose UTC form has a
    /// five-digit year was sent to EWS as 1970-01-01T00:00:00Z.
    #[test]
    fn times_beyond_year_9999_in_utc_are_refused_not_sent_as_1970() {
        let e = parse_rfc3339("9999-12-31T23:59:59-23:59").unwrap_err();
        assert!(e.contains("0000 to 9999"), "{e}");
        assert!(parse_rfc3339("0000-01-01T00:00:00+01:00").is_err());
        assert_eq!(parse_ews("9999-12-31T23:59:59-23:59"), None);
        let last = parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(utc(last), "9999-12-31T23:59:59Z");
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
