//! Dates and numbers as a reader of the console's language writes them.
//!
//! French follows CLDR's `fr` conventions, as browsers' `Intl` do: `4 déc. 2026, 16:55` and
//! `1 234,5` with a narrow no-break space (U+202F) between thousands, so a number never
//! breaks across lines. English: `4 Dec 2026, 16:55` and `1,234.5`. Times are UTC, and say
//! so; the exact instant is also given in ISO 8601 in `<time datetime>` by [`time_html`].

use super::html::{attr, esc};
use super::i18n::Lang;

/// Thousands separator of French: U+202F NARROW NO-BREAK SPACE.
pub const FR_GROUP: char = '\u{202f}';

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
// CLDR `fr` abbreviated month names (format context).
const MONTHS_FR: [&str; 12] = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
    "déc.",
];

fn utc(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// `4 déc. 2026, 16:55 UTC` / `4 Dec 2026, 16:55 UTC` from milliseconds since the epoch.
pub fn date_time(ms: i64, lang: Lang) -> String {
    let Some(t) = utc(ms) else {
        return integer(ms, lang);
    };
    let month = usize::from(u8::from(t.month())) - 1;
    let name = match lang {
        Lang::En => MONTHS_EN[month],
        Lang::Fr => MONTHS_FR[month],
    };
    format!(
        "{} {name} {}, {:02}:{:02} UTC",
        t.day(),
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// `<time datetime="2026-12-04T16:55:03Z" title="…">4 déc. 2026, 16:55 UTC</time>`: the
/// reader sees the short form; the exact instant stays in the page.
pub fn time_html(ms: i64, lang: Lang) -> String {
    let iso = utc(ms)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        attr(&iso),
        attr(&iso),
        esc(&date_time(ms, lang))
    )
}

fn group(digits: &str, sep: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * sep.len());
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

fn separators(lang: Lang) -> (String, char) {
    match lang {
        Lang::En => (",".to_owned(), '.'),
        Lang::Fr => (FR_GROUP.to_string(), ','),
    }
}

/// `1,234` / `1 234`.
pub fn integer(n: impl Into<i128>, lang: Lang) -> String {
    let n: i128 = n.into();
    let (sep, _) = separators(lang);
    let digits = group(&n.unsigned_abs().to_string(), &sep);
    if n < 0 {
        format!("-{digits}")
    } else {
        digits
    }
}

/// `1,234.5` / `1 234,5`, with at most `max_fraction` digits after the point and no
/// trailing zeros.
pub fn decimal(x: f64, max_fraction: usize, lang: Lang) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let fixed = format!("{:.*}", max_fraction, x.abs());
    let (whole, fraction) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let fraction = fraction.trim_end_matches('0');
    let (sep, point) = separators(lang);
    let mut out = String::new();
    if x < 0.0 && fixed.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.push('-');
    }
    out.push_str(&group(whole, &sep));
    if !fraction.is_empty() {
        out.push(point);
        out.push_str(fraction);
    }
    out
}

/// `1,234 ms` / `1 234 ms`: the unit after a no-break space in French, as typographers do.
pub fn milliseconds(ms: u64, lang: Lang) -> String {
    match lang {
        Lang::En => format!("{} ms", integer(ms, lang)),
        Lang::Fr => format!("{}\u{a0}ms", integer(ms, lang)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-04T16:55:03Z
    const DEC_4: i64 = 1_796_403_303_000;

    #[test]
    fn dates_read_as_in_each_language() {
        assert_eq!(date_time(DEC_4, Lang::Fr), "4 déc. 2026, 16:55 UTC");
        assert_eq!(date_time(DEC_4, Lang::En), "4 Dec 2026, 16:55 UTC");
        // February 2026 has a French abbreviation with an accent, August none.
        assert_eq!(
            date_time(1_770_000_000_000, Lang::Fr),
            "2 févr. 2026, 02:40 UTC"
        );
        assert_eq!(
            date_time(1_786_000_000_000, Lang::Fr),
            "6 août 2026, 07:06 UTC"
        );
        assert_eq!(date_time(0, Lang::En), "1 Jan 1970, 00:00 UTC");
    }

    #[test]
    fn the_exact_instant_stays_in_the_markup() {
        let html = time_html(DEC_4, Lang::Fr);
        assert_eq!(
            html,
            "<time datetime=\"2026-12-04T16:55:03Z\" title=\"2026-12-04T16:55:03Z\">4 déc. 2026, 16:55 UTC</time>"
        );
    }

    #[test]
    fn numbers_group_thousands_with_a_narrow_no_break_space_in_french() {
        assert_eq!(integer(1234, Lang::Fr), "1\u{202f}234");
        assert_eq!(integer(1234, Lang::En), "1,234");
        assert_eq!(integer(-1_234_567i64, Lang::Fr), "-1\u{202f}234\u{202f}567");
        assert_eq!(integer(999, Lang::Fr), "999");
        assert_eq!(integer(0, Lang::En), "0");
        assert_eq!(decimal(1234.5, 2, Lang::Fr), "1\u{202f}234,5");
        assert_eq!(decimal(1234.5, 2, Lang::En), "1,234.5");
        assert_eq!(decimal(0.126, 2, Lang::Fr), "0,13");
        assert_eq!(decimal(-2.0, 2, Lang::En), "-2");
        assert_eq!(decimal(-0.001, 2, Lang::En), "0");
        assert_eq!(milliseconds(1234, Lang::Fr), "1\u{202f}234\u{a0}ms");
        assert_eq!(milliseconds(12, Lang::En), "12 ms");
    }
}
