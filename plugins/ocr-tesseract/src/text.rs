//! Reading values out of OCR words: amounts, rates, dates, times, keywords, registration
//! numbers. Each reader works on the words of one line as Tesseract cut them, and accepts
//! the ways receipts print values (`5,40`, `1 234,56`, `€5.40`, `12/03/2026`, `12 mars
//! 2026`, `14h35`) and the usual OCR cuts (`42,` `50`) without guessing characters: a value
//! that does not parse is not read.

use crate::tsv::Word;

/// Uppercase without accents, for keyword matching (`Espèces` → `ESPECES`).
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' | 'À' | 'Â' | 'Ä' | 'Á' => 'A',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'î' | 'ï' | 'í' | 'Î' | 'Ï' | 'Í' => 'I',
            'ô' | 'ö' | 'ó' | 'Ô' | 'Ö' | 'Ó' => 'O',
            'ù' | 'û' | 'ü' | 'ú' | 'Ù' | 'Û' | 'Ü' | 'Ú' => 'U',
            'ç' | 'Ç' => 'C',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// The keywords of a line: folded, dots removed (`T.V.A.` → `TVA`), cut at other
/// punctuation (`SOUS-TOTAL` → `SOUS`, `TOTAL`) and where letters meet digits (the engine
/// glues `T.V.A.5,50%`), each with the index of its word.
pub fn keywords(words: &[Word]) -> Vec<(String, usize)> {
    let mut keys = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let folded = fold(&w.text).replace('.', "");
        let mut part = String::new();
        let mut last_digit = None;
        for c in folded.chars() {
            let digit = c.is_ascii_digit();
            if (!c.is_alphanumeric() || last_digit.is_some_and(|d| d != digit)) && !part.is_empty()
            {
                keys.push((std::mem::take(&mut part), i));
            }
            if c.is_alphanumeric() {
                part.push(c);
                last_digit = Some(digit);
            } else {
                last_digit = None;
            }
        }
        if !part.is_empty() {
            keys.push((part, i));
        }
    }
    keys
}

/// Whether `phrase` (space-separated keywords) occurs in `keys`; returns the word indexes.
pub fn find_phrase(keys: &[(String, usize)], phrase: &str) -> Option<Vec<usize>> {
    let wanted: Vec<&str> = phrase.split(' ').collect();
    if wanted.is_empty() || keys.len() < wanted.len() {
        return None;
    }
    (0..=keys.len() - wanted.len()).find_map(|start| {
        let window = &keys[start..start + wanted.len()];
        window
            .iter()
            .zip(&wanted)
            .all(|((k, _), w)| k == w)
            .then(|| window.iter().map(|(_, i)| *i).collect())
    })
}

/// The lowest confidence of the words at `indexes` (1 when there are none).
pub fn min_confidence(words: &[Word], indexes: impl IntoIterator<Item = usize>) -> f64 {
    indexes
        .into_iter()
        .filter_map(|i| words.get(i))
        .map(|w| w.confidence)
        .fold(1.0, f64::min)
}

/// An amount read on a line, with the words it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Amount {
    pub value: f64,
    pub words: Vec<usize>,
}

/// A percentage read on a line (`20%`, `5,5 %`, `(10.00%)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub percent: f64,
    pub words: Vec<usize>,
}

fn is_currency_sign(c: char) -> bool {
    matches!(c, '€' | '£' | '$')
}

/// The numeric core of a word: currency signs, codes and brackets around it removed
/// (`€5,40` → `5,40`, `5.40EUR` → `5.40`, `(1,20)` → `1,20`), a leading minus kept.
fn numeric_core(word: &str) -> &str {
    let start = word
        .find(|c: char| c.is_ascii_digit() || c == '-')
        .unwrap_or(word.len());
    let end = word
        .rfind(|c: char| c.is_ascii_digit() || c == ',' || c == '.')
        .map_or(start, |i| i + 1)
        .max(start);
    let prefix = &word[..start];
    let suffix = &word[end..];
    let decoration = |s: &str| {
        s.chars()
            .all(|c| c.is_alphabetic() || is_currency_sign(c) || "()[]:*=".contains(c))
    };
    if decoration(prefix) && decoration(suffix) {
        &word[start..end]
    } else {
        ""
    }
}

/// `5,40`, `5.40`, `1.234,56`, `1,234.56`, `-1,20`: a number with exactly two decimals.
pub fn parse_amount(core: &str) -> Option<f64> {
    let (negative, digits) = match core.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, core),
    };
    let sep = digits.rfind([',', '.'])?;
    let (int_part, decimals) = (&digits[..sep], &digits[sep + 1..]);
    if decimals.len() != 2 || !decimals.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let int_digits: String = int_part.chars().filter(|c| c.is_ascii_digit()).collect();
    // Thousands separators are the other sign, every three digits.
    let other = if digits.as_bytes()[sep] == b',' {
        '.'
    } else {
        ','
    };
    let groups: Vec<&str> = int_part.split(other).collect();
    let grouped_ok = groups.len() == 1
        || (groups[0].len() <= 3
            && !groups[0].is_empty()
            && groups[1..].iter().all(|g| g.len() == 3));
    if int_digits.is_empty()
        || int_digits.len() != int_part.len() - (groups.len() - 1)
        || !grouped_ok
    {
        return None;
    }
    let value: f64 = format!("{int_digits}.{decimals}").parse().ok()?;
    Some(if negative { -value } else { value })
}

/// A percentage in a word (`20%`, `10,00%`, `(5.5%)`, and `T.V.A.5,50%` as the engine
/// sometimes glues it); `None` for anything else.
fn parse_percent(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| "()[]:".contains(c));
    let t = t.strip_suffix('%')?.trim();
    // The number is what follows the last letter (a glued label).
    let number = match t.rfind(char::is_alphabetic) {
        Some(i) => {
            let rest = &t[i..];
            let skip = rest.chars().next().map_or(0, char::len_utf8);
            rest[skip..].trim_start_matches(['.', ':'])
        }
        None => t,
    };
    if number.is_empty() {
        return None;
    }
    let value: f64 = number.replace(',', ".").parse().ok()?;
    (number
        .chars()
        .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
        && (0.0..=100.0).contains(&value))
    .then_some(value)
}

/// Whether two words sit close enough to be one value cut in two (`1` `234,56`).
fn adjacent(a: &Word, b: &Word) -> bool {
    let gap = b.left - (a.left + a.width);
    let height = a.height.max(b.height).max(1);
    (0..=height * 7 / 10).contains(&gap) || (a.width == 0 && b.width == 0)
}

/// The rates and amounts of a line, left to right. A number followed by `%` is a rate,
/// never an amount.
pub fn numbers(words: &[Word]) -> (Vec<Rate>, Vec<Amount>) {
    let mut rates = Vec::new();
    let mut amounts: Vec<Amount> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let text = words[i].text.as_str();
        if let Some(percent) = parse_percent(text) {
            rates.push(Rate {
                percent,
                words: vec![i],
            });
            i += 1;
            continue;
        }
        if let Some(next) = words.get(i + 1).filter(|w| w.text == "%") {
            let _ = next;
            if let Some(percent) = parse_percent(&format!("{text}%")) {
                rates.push(Rate {
                    percent,
                    words: vec![i, i + 1],
                });
                i += 2;
                continue;
            }
        }
        let core = numeric_core(text);
        // `42,` `50`: the decimals cut off by a wide comma.
        if (core.ends_with(',') || core.ends_with('.'))
            && core.len() > 1
            && core[..core.len() - 1].chars().all(|c| c.is_ascii_digit())
        {
            if let Some(next) = words.get(i + 1) {
                let decimals = numeric_core(&next.text);
                if decimals.len() == 2
                    && decimals.chars().all(|c| c.is_ascii_digit())
                    && adjacent(&words[i], next)
                {
                    if let Some(value) = parse_amount(&format!("{core}{decimals}")) {
                        amounts.push(Amount {
                            value,
                            words: vec![i, i + 1],
                        });
                        i += 2;
                        continue;
                    }
                }
            }
        }
        if let Some(value) = parse_amount(core) {
            // `1` `234,56`: thousands cut off by a space.
            let int_len = core
                .trim_start_matches('-')
                .find([',', '.'])
                .unwrap_or(core.len());
            if let Some(prev) = i.checked_sub(1) {
                let before = words[prev].text.as_str();
                let free = amounts.last().is_none_or(|a| !a.words.contains(&prev))
                    && rates.last().is_none_or(|r| !r.words.contains(&prev));
                if free
                    && int_len == 3
                    && (1..=3).contains(&before.len())
                    && before.chars().all(|c| c.is_ascii_digit())
                    && adjacent(&words[prev], &words[i])
                {
                    if let Ok(thousands) = before.parse::<f64>() {
                        amounts.push(Amount {
                            value: thousands * 1000.0 + value,
                            words: vec![prev, i],
                        });
                        i += 1;
                        continue;
                    }
                }
            }
            amounts.push(Amount {
                value,
                words: vec![i],
            });
        }
        i += 1;
    }
    (rates, amounts)
}

/// A word without the punctuation around it (`Date:` → `Date`, `(12/03/2026)` → `12/03/2026`).
pub fn trim_punct(s: &str) -> &str {
    s.trim_matches(|c: char| !c.is_alphanumeric())
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// `YYYY-MM-DD` when the day exists.
fn iso_date(year: u32, month: u32, day: u32) -> Option<String> {
    ((1990..=2099).contains(&year) && day >= 1 && day <= days_in_month(year, month))
        .then(|| format!("{year:04}-{month:02}-{day:02}"))
}

fn year_of(text: &str) -> Option<u32> {
    let digits = text.chars().all(|c| c.is_ascii_digit());
    match text.len() {
        4 if digits => text.parse().ok(),
        2 if digits => text.parse::<u32>().ok().map(|y| 2000 + y),
        _ => None,
    }
}

/// `12/03/2026`, `12.03.26`, `12-03-2026`, `2026-03-12`.
pub fn numeric_date(text: &str) -> Option<String> {
    let sep = text.chars().find(|c| matches!(c, '/' | '.' | '-'))?;
    let parts: Vec<&str> = text.split(sep).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    if parts[0].len() == 4 {
        let (m, d) = (parts[1], parts[2]);
        if m.len() > 2 || d.len() > 2 {
            return None;
        }
        return iso_date(parts[0].parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    }
    if parts[0].len() > 2 || parts[1].len() > 2 {
        return None;
    }
    iso_date(
        year_of(parts[2])?,
        parts[1].parse().ok()?,
        parts[0].parse().ok()?,
    )
}

/// A month's name or abbreviation, French or English (`mars`, `févr.`, `Sept`, `March`).
pub fn month(text: &str) -> Option<u32> {
    let m = fold(trim_punct(text));
    let n = match m.as_str() {
        "JANVIER" | "JANV" | "JAN" | "JANUARY" => 1,
        "FEVRIER" | "FEVR" | "FEV" | "FEB" | "FEBRUARY" => 2,
        "MARS" | "MAR" | "MARCH" => 3,
        "AVRIL" | "AVR" | "APR" | "APRIL" => 4,
        "MAI" | "MAY" => 5,
        "JUIN" | "JUN" | "JUNE" => 6,
        "JUILLET" | "JUIL" | "JUL" | "JULY" => 7,
        "AOUT" | "AUG" | "AUGUST" => 8,
        "SEPTEMBRE" | "SEPT" | "SEP" | "SEPTEMBER" => 9,
        "OCTOBRE" | "OCT" | "OCTOBER" => 10,
        "NOVEMBRE" | "NOV" | "NOVEMBER" => 11,
        "DECEMBRE" | "DEC" | "DECEMBER" => 12,
        _ => return None,
    };
    Some(n)
}

fn day_of(text: &str) -> Option<u32> {
    let t = trim_punct(text);
    let t = t
        .strip_suffix("er")
        .or_else(|| t.strip_suffix("ER"))
        .unwrap_or(t);
    (!t.is_empty() && t.len() <= 2 && t.chars().all(|c| c.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// The candidates of a word for a date or time: itself, and what follows a label glued to
/// it (`Date:12/03/2026`, `Heure:14:35` → `14:35`).
fn candidates(text: &str) -> Vec<&str> {
    let mut out = vec![text];
    if let Some(i) = text.find(':') {
        if text[..i].chars().all(char::is_alphabetic) && i > 0 {
            out.push(&text[i + 1..]);
        }
    }
    out
}

/// The first date on a line, as `YYYY-MM-DD`, with the words it was read from.
pub fn date(words: &[Word]) -> Option<(String, Vec<usize>)> {
    for i in 0..words.len() {
        for candidate in candidates(&words[i].text) {
            let core = candidate.trim_matches(|c: char| !c.is_ascii_digit());
            if let Some(d) = numeric_date(core) {
                return Some((d, vec![i]));
            }
        }
        let word = |k: usize| words.get(i + k).map(|w| w.text.as_str());
        // `12 mars 2026`, `1er avril 2026`.
        if let (Some(d), Some(m), Some(y)) = (
            candidates(&words[i].text).last().and_then(|c| day_of(c)),
            word(1).and_then(month),
            word(2).map(trim_punct).and_then(year_of),
        ) {
            if let Some(date) = iso_date(y, m, d) {
                return Some((date, vec![i, i + 1, i + 2]));
            }
        }
        // `March 12, 2026`.
        if let (Some(m), Some(d), Some(y)) = (
            month(&words[i].text),
            word(1).and_then(day_of),
            word(2).map(trim_punct).and_then(year_of),
        ) {
            if let Some(date) = iso_date(y, m, d) {
                return Some((date, vec![i, i + 1, i + 2]));
            }
        }
    }
    None
}

/// `14:35`, `14:35:12`, `14h35`, `9H05` → `HH:MM`.
pub fn parse_time(text: &str) -> Option<String> {
    let t = text.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let (h, rest) = t.split_once([':', 'h', 'H'])?;
    let (m, s) = match rest.split_once(':') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    let digits = |x: &str, max_len: usize| {
        !x.is_empty() && x.len() <= max_len && x.chars().all(|c| c.is_ascii_digit())
    };
    if !digits(h, 2)
        || m.len() != 2
        || !digits(m, 2)
        || s.is_some_and(|s| s.len() != 2 || !digits(s, 2))
    {
        return None;
    }
    let (hour, minute): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let second_ok = s.is_none_or(|s| s.parse::<u32>().is_ok_and(|s| s < 60));
    (hour < 24 && minute < 60 && second_ok).then(|| format!("{hour:02}:{minute:02}"))
}

/// The first time on a line, with its word.
pub fn time(words: &[Word]) -> Option<(String, usize)> {
    words.iter().enumerate().find_map(|(i, w)| {
        candidates(&w.text)
            .into_iter()
            .find_map(parse_time)
            .map(|t| (t, i))
    })
}

/// The Luhn check used by SIREN and SIRET numbers.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// A valid SIRET: 14 digits passing Luhn. La Poste's establishments (SIREN 356000000) are
/// the documented exception: apart from the head office, their SIRETs are checked by a
/// digit sum divisible by 5 instead.
pub fn valid_siret(digits: &str) -> bool {
    if digits.len() != 14 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let la_poste = digits.starts_with("356000000")
        && digits.chars().filter_map(|c| c.to_digit(10)).sum::<u32>() % 5 == 0;
    luhn(digits) || la_poste
}

/// A valid SIREN: 9 digits passing Luhn.
pub fn valid_siren(digits: &str) -> bool {
    digits.len() == 9 && luhn(digits)
}

/// A French VAT number: `FR`, a two-digit key, the SIREN; the key is
/// (12 + 3 × (SIREN mod 97)) mod 97.
pub fn valid_fr_vat(number: &str) -> bool {
    let Some(rest) = number.strip_prefix("FR") else {
        return false;
    };
    if rest.len() != 11 || !rest.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let (key, siren) = rest.split_at(2);
    match (key.parse::<u64>(), siren.parse::<u64>()) {
        (Ok(key), Ok(n)) => valid_siren(siren) && key == (12 + 3 * (n % 97)) % 97,
        _ => false,
    }
}

/// Runs of digit-only words on a line: (digits, word indexes, group lengths).
pub fn digit_runs(words: &[Word], from: usize) -> Vec<(String, Vec<usize>, Vec<usize>)> {
    let mut runs = Vec::new();
    let mut current: Option<(String, Vec<usize>, Vec<usize>)> = None;
    for (i, w) in words.iter().enumerate().skip(from) {
        let core = trim_punct(&w.text);
        let digits = !core.is_empty() && core.chars().all(|c| c.is_ascii_digit());
        match (&mut current, digits) {
            (Some((d, idx, groups)), true) => {
                d.push_str(core);
                idx.push(i);
                groups.push(core.len());
            }
            (None, true) => current = Some((core.to_owned(), vec![i], vec![core.len()])),
            (_, false) => {
                if let Some(run) = current.take() {
                    runs.push(run);
                }
            }
        }
    }
    runs.extend(current);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Word> {
        let mut left = 0;
        text.split(' ')
            .map(|t| {
                let w = Word {
                    text: t.to_owned(),
                    confidence: 0.9,
                    left,
                    top: 0,
                    width: 12 * t.chars().count() as i64,
                    height: 20,
                };
                left += w.width + 8;
                w
            })
            .collect()
    }

    fn amounts(text: &str) -> Vec<f64> {
        numbers(&words(text))
            .1
            .into_iter()
            .map(|a| a.value)
            .collect()
    }

    fn rates(text: &str) -> Vec<f64> {
        numbers(&words(text))
            .0
            .into_iter()
            .map(|r| r.percent)
            .collect()
    }

    #[test]
    fn amounts_as_receipts_print_them() {
        assert_eq!(amounts("TOTAL TTC 5,40 EUR"), [5.4]);
        assert_eq!(amounts("Total €12.50"), [12.5]);
        assert_eq!(amounts("Montant: 5,40€"), [5.4]);
        assert_eq!(amounts("TOTAL 1 234,56"), [1234.56]);
        assert_eq!(amounts("TOTAL 1.234,56 1,234.56"), [1234.56, 1234.56]);
        assert_eq!(amounts("Remise -1,20"), [-1.2]);
        assert_eq!(amounts("TOTAL 42, 50"), [42.5]);
        assert_eq!(amounts("Croissant x2 2,40"), [2.4]);
        assert!(amounts("Date 12/03/2026 14:35").is_empty());
        assert!(amounts("Table 12 couverts 3").is_empty());
        assert!(amounts("ref 12,5 1,2345").is_empty());
        assert!(amounts("TVA 10,00% 0,49").contains(&0.49));
        assert_eq!(amounts("TVA 10,00% 0,49"), [0.49]);
    }

    #[test]
    fn rates_are_not_amounts() {
        assert_eq!(rates("TVA 10,00% 0,49"), [10.0]);
        assert_eq!(rates("TVA (5.5%) 0,29"), [5.5]);
        assert_eq!(rates("TVA 20 % 1,00"), [20.0]);
        assert_eq!(rates("T.V.A.5,50% 0,30"), [5.5]);
        assert!(rates("ABC%").is_empty());
        assert_eq!(amounts("TVA 20,00 % 1,00"), [1.0]);
        assert!(rates("TOTAL 5,40").is_empty());
    }

    #[test]
    fn dates_in_french_and_iso_forms() {
        let d = |t: &str| date(&words(t)).map(|(d, _)| d);
        assert_eq!(d("Date: 12/03/2026 14:35").as_deref(), Some("2026-03-12"));
        assert_eq!(d("Date:12/03/2026").as_deref(), Some("2026-03-12"));
        assert_eq!(d("le 12.03.26").as_deref(), Some("2026-03-12"));
        assert_eq!(d("12 mars 2026").as_deref(), Some("2026-03-12"));
        assert_eq!(d("1er févr. 2024").as_deref(), Some("2024-02-01"));
        assert_eq!(
            d("Paris, le 29 FÉVRIER 2024").as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(d("2026-03-12T14:35").as_deref(), None);
        assert_eq!(d("2026-03-12").as_deref(), Some("2026-03-12"));
        assert_eq!(d("March 12, 2026").as_deref(), Some("2026-03-12"));
        assert_eq!(d("31/02/2026"), None);
        assert_eq!(d("29 fevrier 2025"), None);
        assert_eq!(d("TOTAL 5,40"), None);
        assert_eq!(d("Tel 01.42.60.00.00"), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("14:35").as_deref(), Some("14:35"));
        assert_eq!(parse_time("9:05:59").as_deref(), Some("09:05"));
        assert_eq!(parse_time("14h35").as_deref(), Some("14:35"));
        assert_eq!(parse_time("25:00"), None);
        assert_eq!(parse_time("12/03/2026"), None);
        assert_eq!(parse_time("Heure"), None);
        let t = time(&words("Date: 12/03/2026 Heure:14:35")).unwrap();
        assert_eq!(t, ("14:35".to_owned(), 2));
    }

    #[test]
    fn registration_numbers_are_checked() {
        assert!(valid_siret("73282932000074"));
        assert!(!valid_siret("73282932000075"));
        assert!(valid_siret("35600000000048"));
        assert!(valid_siret("35600000000001"));
        assert!(!valid_siret("35600000000002"));
        assert!(valid_siren("732829320"));
        assert!(valid_fr_vat("FR44732829320"));
        assert!(!valid_fr_vat("FR45732829320"));
        let runs = digit_runs(&words("SIRET 732 829 320 00074 APE 5610A"), 0);
        assert_eq!(runs[0].0, "73282932000074");
        assert_eq!(runs[0].2, [3, 3, 3, 5]);
    }

    #[test]
    fn keywords_fold_accents_and_punctuation() {
        let k = keywords(&words("Net à payer T.V.A. SOUS-TOTAL"));
        let names: Vec<&str> = k.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["NET", "A", "PAYER", "TVA", "SOUS", "TOTAL"]);
        assert_eq!(find_phrase(&k, "NET A PAYER"), Some(vec![0, 1, 2]));
        assert_eq!(find_phrase(&k, "SOUS TOTAL"), Some(vec![4, 4]));
        assert_eq!(find_phrase(&k, "TOTAL TTC"), None);
        let k = keywords(&words("T.V.A.5,50%"));
        assert_eq!(k[0].0, "TVA");
    }
}
