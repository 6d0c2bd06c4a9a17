//! Reading the `/informations` answer for the test routine: is the service up, and how old
//! is the data it serves?
//!
//! A key can be valid while lookups still disappoint: INSEE marks single collections down
//! during maintenance, and a stalled import leaves the register days behind. Both are
//! reported as warnings, not failures, because lookups keep working in the meantime. Dates
//! are parsed by hand (they have one fixed format) to keep the plugin free of a date crate.

use passerelle_plugin_api::prelude::*;
use serde_json::Value;

/// Data older than this is reported as stale; INSEE publishes updates every night.
pub const STALE_AFTER_DAYS: u64 = 8;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// Checks `etatService` and each collection's `etatCollection`. Its value is the service
/// version (`versionService`) for the summary.
pub fn service_state(info: &Value) -> Result<Check<String>, String> {
    let Some(state) = info.get("etatService").and_then(Value::as_str) else {
        return Err(
            "the answer of /informations does not give the service state (no etatService): \
             check that the base URL points to API Sirene"
                .to_owned(),
        );
    };
    let version = info
        .get("versionService")
        .and_then(Value::as_str)
        .unwrap_or("3.11")
        .to_owned();
    let collections: Vec<(&str, &str)> = info
        .get("etatsDesServices")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|c| {
                    (
                        c.get("Collection")
                            .or_else(|| c.get("collection"))
                            .and_then(Value::as_str)
                            .unwrap_or("?"),
                        c.get("etatCollection")
                            .and_then(Value::as_str)
                            .unwrap_or("?"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let down: Vec<String> = collections
        .iter()
        .filter(|(_, s)| *s != "UP")
        .map(|(name, s)| format!("{name} ({s})"))
        .collect();
    let names = collections
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    if state != "UP" {
        return Ok(Check::warning(
            version,
            format!("the service reports itself {state}: lookups may fail until INSEE restores it"),
        ));
    }
    if !down.is_empty() {
        return Ok(Check::warning(
            version,
            format!(
                "the service is UP but not every collection is: {}; lookups in them may fail",
                down.join(", ")
            ),
        ));
    }
    Ok(Check::ok(
        version,
        if names.is_empty() {
            "service UP".to_owned()
        } else {
            format!("service UP; collections UP: {names}")
        },
    ))
}

/// Reports the latest `dateDerniereMiseADisposition` of each collection. Its value is the
/// most recent date (`YYYY-MM-DD`) for the summary. `now_ms` of 0 means "clock unknown" and
/// skips the age check.
pub fn freshness(info: &Value, now_ms: u64) -> Result<Check<Option<String>>, String> {
    let mut latest: Vec<(String, u64, String)> = Vec::new();
    for entry in info
        .get("datesDernieresMisesAJourDesDonnees")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = entry
            .get("collection")
            .or_else(|| entry.get("Collection"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let Some(date) = entry
            .get("dateDerniereMiseADisposition")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let Some(ms) = parse_datetime_ms(date) else {
            continue;
        };
        match latest.iter_mut().find(|(n, _, _)| n == name) {
            Some(slot) if slot.1 < ms => *slot = (name.to_owned(), ms, date.to_owned()),
            Some(_) => {}
            None => latest.push((name.to_owned(), ms, date.to_owned())),
        }
    }
    let Some((_, newest_ms, newest)) = latest.iter().max_by_key(|(_, ms, _)| *ms) else {
        return Ok(Check::warning(
            None,
            "the service does not say when its data was last updated",
        ));
    };
    let day = newest.get(..10).unwrap_or(newest).to_owned();
    let detail = latest
        .iter()
        .map(|(name, _, date)| format!("{name}: {}", readable(date)))
        .collect::<Vec<_>>()
        .join(", ");
    if now_ms > 0 && now_ms.saturating_sub(*newest_ms) > STALE_AFTER_DAYS * DAY_MS {
        let age = now_ms.saturating_sub(*newest_ms) / DAY_MS;
        return Ok(Check::warning(
            Some(day.clone()),
            format!(
                "the most recent data is from {day}, {age} days ago ({detail}): INSEE updates \
                 the register every night, so recent changes may be missing"
            ),
        ));
    }
    Ok(Check::ok(Some(day), format!("latest updates: {detail}")))
}

/// `2026-11-27T23:43:04.000` → `2026-11-27 23:43`.
fn readable(date: &str) -> String {
    match (date.get(..10), date.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => date.to_owned(),
    }
}

/// Milliseconds since the Unix epoch of `YYYY-MM-DD[THH:MM[:SS[.fff]]]`, read as UTC (INSEE
/// gives Paris time; two hours do not matter against an eight-day threshold).
pub fn parse_datetime_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    if s.len() < 10 || s.as_bytes().get(4) != Some(&b'-') || s.as_bytes().get(7) != Some(&b'-') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if s.len() > 10 {
        if !matches!(s.as_bytes().get(10), Some(b'T' | b' ')) {
            return None;
        }
        hour = num(11..13)?;
        minute = num(14..16)?;
        if s.len() >= 19 {
            second = num(17..19)?;
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), for years
/// from 1970 on.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(state: &str, collections: &[(&str, &str)], dates: &[(&str, &str)]) -> Value {
        json!({
            "etatService": state,
            "versionService": "3.11.3",
            "etatsDesServices": collections
                .iter()
                .map(|(c, s)| json!({"Collection": c, "etatCollection": s}))
                .collect::<Vec<_>>(),
            "datesDernieresMisesAJourDesDonnees": dates
                .iter()
                .map(|(c, d)| json!({
                    "collection": c,
                    "dateDerniereMiseADisposition": d,
                    "dateDernierTraitementMaximum": d,
                    "dateDernierTraitementDeMasse": "2026-11-01T06:00:00.000"
                }))
                .collect::<Vec<_>>(),
            "journalDesModifications": "https://www.sirene.fr/static-resources/documentation/v_sommaire_311.htm"
        })
    }

    #[test]
    fn dates_parse_like_unix_time() {
        assert_eq!(parse_datetime_ms("1970-01-01"), Some(0));
        assert_eq!(
            parse_datetime_ms("1970-01-02T00:00:01.000"),
            Some(DAY_MS + 1000)
        );
        // date -u -d 2026-11-27T23:43:04 +%s
        assert_eq!(
            parse_datetime_ms("2026-11-27T23:43:04.000"),
            Some(1_795_822_984_000)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T12:00:00"),
            Some(1_709_208_000_000)
        );
        assert_eq!(parse_datetime_ms("2026-13-01"), None);
        assert_eq!(parse_datetime_ms("27/11/2026"), None);
        assert_eq!(parse_datetime_ms(""), None);
    }

    /// Runs a check as a report step, the way the test routine does.
    fn run<T>(f: impl FnOnce() -> Result<Check<T>, String>) -> (Step, Option<T>) {
        let mut report = TestReport::new();
        let value = report.step("check", f);
        (report.steps.remove(0), value)
    }

    #[test]
    fn all_up_is_ok() {
        let i = info(
            "UP",
            &[("Unités Légales", "UP"), ("Établissements", "UP")],
            &[],
        );
        let (step, version) = run(|| service_state(&i));
        assert_eq!(step.status, Status::Ok);
        assert_eq!(
            step.detail,
            "service UP; collections UP: Unités Légales, Établissements"
        );
        assert_eq!(version.as_deref(), Some("3.11.3"));
    }

    #[test]
    fn a_collection_down_is_a_warning_naming_it() {
        let i = info(
            "UP",
            &[("Unités Légales", "UP"), ("Établissements", "DOWN")],
            &[],
        );
        let (step, _) = run(|| service_state(&i));
        assert_eq!(step.status, Status::Warning);
        assert!(
            step.detail.contains("Établissements (DOWN)"),
            "{}",
            step.detail
        );
        assert!(!step.detail.contains("Unités Légales"), "{}", step.detail);
        let (step, _) = run(|| service_state(&info("DOWN", &[], &[])));
        assert_eq!(step.status, Status::Warning);
        assert!(step.detail.contains("DOWN"));
    }

    #[test]
    fn a_body_without_state_fails() {
        let (step, _) = run(|| service_state(&json!({"foo": 1})));
        assert_eq!(step.status, Status::Failed);
    }

    #[test]
    fn freshness_reports_each_collection_and_warns_when_stale() {
        let i = info(
            "UP",
            &[],
            &[
                ("Unités Légales", "2026-11-27T23:43:04.000"),
                ("Établissements", "2026-11-26T23:40:00.000"),
            ],
        );
        let now = parse_datetime_ms("2026-11-28T09:00:00").unwrap();
        let (step, day) = run(|| freshness(&i, now));
        assert_eq!(step.status, Status::Ok);
        assert_eq!(day.flatten().as_deref(), Some("2026-11-27"));
        assert_eq!(
            step.detail,
            "latest updates: Unités Légales: 2026-11-27 23:43, Établissements: 2026-11-26 23:40"
        );

        let later = parse_datetime_ms("2026-12-07T09:00:00").unwrap();
        let (step, _) = run(|| freshness(&i, later));
        assert_eq!(step.status, Status::Warning);
        assert!(
            step.detail.contains("from 2026-11-27, 9 days ago"),
            "{}",
            step.detail
        );

        let (step, _) = run(|| freshness(&info("UP", &[], &[]), now));
        assert_eq!(step.status, Status::Warning);
    }
}
