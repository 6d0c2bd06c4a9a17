//! The clock and the date formats providers write, with the `time` crate instead of
//! hand-written calendar arithmetic. Each emulator declares its provider's format with
//! `time::macros::format_description!` and formats through [`format()`].

use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::BorrowedFormatItem;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, now (0 if the clock is set before 1970).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch, now: a cheap source of distinct identifiers.
pub fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The UTC instant `secs` seconds after the epoch (the epoch itself when out of range).
pub fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The UTC instant `ms` milliseconds after the epoch (the epoch itself when out of range).
pub fn from_unix_ms(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `t` written with `format`. Formats built with `format_description!` only fail on
/// components the value lacks (none here), which gives an empty string.
pub fn format(t: OffsetDateTime, format: &[BorrowedFormatItem<'_>]) -> String {
    t.format(format).unwrap_or_default()
}

/// Now as a Windows FILETIME: 100 ns ticks since 1601-01-01 (NTLM timestamps).
pub fn filetime_now() -> u64 {
    const EPOCH_DIFFERENCE_SECS: u64 = 11_644_473_600;
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since_unix.as_secs() + EPOCH_DIFFERENCE_SECS) * 10_000_000
        + u64::from(since_unix.subsec_nanos() / 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::format_description;

    #[test]
    fn formats_leap_days_and_milliseconds() {
        let f = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        assert_eq!(format(from_unix(0), f), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format(from_unix(1_709_208_000), f),
            "2024-02-29T12:00:00.000Z"
        );
        assert_eq!(
            format(from_unix_ms(1_709_208_000_123), f),
            "2024-02-29T12:00:00.123Z"
        );
        assert_eq!(from_unix(i64::MAX), OffsetDateTime::UNIX_EPOCH);
    }

    #[test]
    fn filetime_counts_from_1601() {
        // 2020-01-01 is 132_223_104_000_000_000 ticks after 1601-01-01.
        assert!(filetime_now() > 132_223_104_000_000_000);
    }
}
