//! From recognised lines to the provider-neutral [`ExpenseReceipt`].
//!
//! Receipts say what a value is with a label on the same line (`TOTAL TTC 5,40`,
//! `TVA 10,00% 0,49`, `SIRET 732 829 320 00074`), so each line is read as keywords plus the
//! values on it, and the labels decide:
//! - total incl. tax: `TOTAL TTC`/`MONTANT TTC`/`TTC` first, then `NET A PAYER`/`A PAYER`,
//!   then a plain `TOTAL` or `MONTANT`; payment lines (`CB`, `ESPECES`, `RENDU`…) never;
//! - total excl. tax: `HT`, `HORS TAXES`, `SUBTOTAL`;
//! - VAT lines: a rate with a `TVA`/`VAT` label, or a rate whose amounts agree with it
//!   (base × rate = tax, the table rows of many tills); the tax total is the line that says
//!   so, else the sum of the VAT lines;
//! - date and time anywhere (a line labelled `Date` first), supplier from the first lines.
//!
//! Every value carries the confidence of the words it was read from (the lowest, so that
//! one doubtful digit makes the value doubtful). A value under the instance's minimum
//! confidence is returned empty with its confidence kept, as the capability asks: the
//! caller sees that something was there. Nothing is invented: a total that no line states
//! is `null`, not computed from other fields, except sums of lines that are all printed.

use crate::text::{self, find_phrase, keywords, min_confidence, Amount, Rate};
use crate::tsv::{Line, Reading, Word};
use passerelle_plugin_api::prelude::*;
use std::collections::BTreeMap;

/// The provider's name in [`ExpenseReceipt::provider`].
pub const PROVIDER: &str = "tesseract";

/// What the reading is turned into, besides the text.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// E.g. `tesseract 5.3.0 (fra+eng, psm 4)`.
    pub model: String,
    /// Fraction from 0 to 1 under which values are dropped.
    pub min_confidence: f64,
    /// The ERP technical user.
    pub recorded_by: &'a str,
}

/// A value and the confidence of the words it came from.
#[derive(Debug, Clone, PartialEq)]
struct Found<T> {
    value: T,
    confidence: f64,
}

/// One line, read once.
struct Info<'a> {
    words: &'a [Word],
    keys: Vec<(String, usize)>,
    rates: Vec<Rate>,
    amounts: Vec<Amount>,
}

impl Info<'_> {
    fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }

    fn has_any(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.has(k))
    }

    fn phrase(&self, phrase: &str) -> Option<Vec<usize>> {
        find_phrase(&self.keys, phrase)
    }

    /// The last amount on the line: the one a label on its left introduces.
    fn last_amount(&self) -> Option<&Amount> {
        self.amounts.last()
    }

    fn confidence(&self, indexes: impl IntoIterator<Item = usize>) -> f64 {
        min_confidence(self.words, indexes)
    }

    fn key_indexes(&self, keys: &[&str]) -> Vec<usize> {
        self.keys
            .iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .map(|(_, i)| *i)
            .collect()
    }
}

const TAX_WORDS: &[&str] = &["TVA", "VAT", "TAX", "TAXE", "TAXES", "GST"];
const PAYMENT_WORDS: &[&str] = &[
    "CB",
    "CARTE",
    "ESPECES",
    "RENDU",
    "MONNAIE",
    "CASH",
    "CHANGE",
    "VISA",
    "MASTERCARD",
    "CHEQUE",
    "PAIEMENT",
    "PAYMENT",
    "REGLEMENT",
    "ACOMPTE",
    "AVOIR",
    "SANS",
    "CONTACT",
];
const INCL_WORDS: &[&str] = &["TOTAL", "MONTANT", "SOMME", "TTC", "PAYER", "DUE"];
const EXCL_WORDS: &[&str] = &["HT", "HORS", "TAXE", "TAXES"];
const HEADER_WORDS: &[&str] = &[
    "TICKET",
    "FACTURE",
    "RECU",
    "BIENVENUE",
    "WELCOME",
    "DUPLICATA",
    "CAISSE",
    "RECEIPT",
    "INVOICE",
    "COPIE",
    "CLIENT",
    "NOTE",
];
const FRENCH_WORDS: &[&str] = &[
    "TVA", "TTC", "HT", "MERCI", "ESPECES", "RENDU", "PAYER", "MONTANT", "CARTE", "BANCAIRE",
    "CAISSE", "VENTE", "REMISE", "QTE", "PRIX", "SOUS", "VISITE", "BIENTOT", "TICKET",
];
const ENGLISH_WORDS: &[&str] = &[
    "VAT", "THANK", "THANKS", "SUBTOTAL", "CHANGE", "CASH", "TAX", "AMOUNT", "RECEIPT", "DUE",
    "ITEMS", "VISIT", "WELCOME",
];

/// Reads the receipt's fields from what the engine recognised.
pub fn receipt(reading: &Reading, options: &Options<'_>) -> ExpenseReceipt {
    let infos: Vec<Info<'_>> = reading
        .lines
        .iter()
        .map(|line: &Line| {
            let (rates, amounts) = text::numbers(&line.words);
            Info {
                words: &line.words,
                keys: keywords(&line.words),
                rates,
                amounts,
            }
        })
        .collect();

    let min = options.min_confidence;
    let mut kept = Keeper {
        min,
        confidence: BTreeMap::new(),
    };

    let (date, date_line) = split(find_date(&infos));
    let time = find_time(&infos, date_line);
    let (mut taxes, tax_lines) = tax_lines(&infos);
    let total_incl = total_incl_tax(&infos);
    let stated_excl = stated_excl_tax(&infos);
    // A single VAT line without its base (`TVA 10,00% 0,49`) applies to the whole total
    // before tax, when the amounts agree.
    if let ([only], Some(excl)) = (taxes.as_mut_slice(), &stated_excl) {
        let agrees = match (only.base, only.rate_percent, only.amount) {
            (None, Some(rate), Some(amount)) => {
                (excl.value * rate / 100.0 - amount).abs() <= 0.011_f64.max(amount * 0.005)
            }
            _ => false,
        };
        if agrees {
            only.base = Some(excl.value);
            only.confidence = only.confidence.min(excl.confidence);
        }
    }
    let total_excl = stated_excl.or_else(|| sum_of(&taxes, |t| t.base));
    let total_tax = total_tax(&infos, &taxes);
    let currency = currency(&infos);
    let supplier = supplier(&infos);
    let registrations = registrations(&infos);
    let language = language(&infos);
    let country = registrations
        .iter()
        .map(|(r, _)| r)
        .filter(|r| matches!(r.kind.as_deref(), Some("SIRET" | "SIREN" | "VAT NUMBER")))
        .map(|r| r.confidence)
        .reduce(f64::max)
        .map(|c| Found {
            value: "FR".to_owned(),
            confidence: c,
        });

    let first_total = infos
        .iter()
        .enumerate()
        .position(|(i, info)| {
            // A total states an amount: `TVA intracom. FR…` in the header is no total.
            tax_lines.contains(&i)
                || (!info.amounts.is_empty()
                    && (info.has_any(&["TOTAL", "TTC", "HT", "TVA", "VAT", "SUBTOTAL"])
                        || info.phrase("A PAYER").is_some()))
        })
        .unwrap_or(infos.len());
    // Items sit between the header (supplier, registrations, date) and the first total;
    // a date printed at the bottom does not end the header.
    let header_end = [date_line, supplier.last_line, time.as_ref().map(|t| t.1)]
        .into_iter()
        .flatten()
        .chain(registrations.iter().map(|(_, line)| *line))
        .filter(|line| *line < first_total)
        .max()
        .map_or(0, |l| l + 1);
    let line_items = line_items(&infos, header_end, first_total, min);

    ExpenseReceipt {
        provider: PROVIDER.to_owned(),
        model: options.model.clone(),
        provider_document_id: None,
        pages: reading.pages.max(1),
        document_type: None,
        date: kept.keep("date", date),
        time: kept.keep("time", time.map(|(found, _)| found)),
        total_incl_tax: kept.keep("total_incl_tax", total_incl),
        total_excl_tax: kept.keep("total_excl_tax", total_excl),
        total_tax: kept.keep("total_tax", total_tax),
        tip: None,
        taxes: taxes
            .into_iter()
            .filter(|t| t.confidence >= min)
            .map(|mut t| {
                t.confidence = round3(t.confidence);
                t
            })
            .collect(),
        currency: kept.keep("currency", currency),
        language: kept.keep("language", language),
        country: kept.keep("country", country),
        supplier: ReceiptSupplier {
            name: kept.keep("supplier.name", supplier.name),
            address: kept.keep("supplier.address", supplier.address),
            phone: kept.keep("supplier.phone", supplier.phone),
            registrations: registrations
                .into_iter()
                .map(|(r, _)| r)
                .filter(|r| r.confidence >= min)
                .map(|mut r| {
                    r.confidence = round3(r.confidence);
                    r
                })
                .collect(),
        },
        category: None,
        subcategory: None,
        receipt_number: None,
        line_items,
        confidence: kept.confidence,
        recorded_by: options.recorded_by.to_owned(),
    }
}

/// Records each found value's confidence and keeps the value if it is trusted enough.
struct Keeper {
    min: f64,
    confidence: BTreeMap<String, f64>,
}

impl Keeper {
    fn keep<T>(&mut self, name: &str, found: Option<Found<T>>) -> Option<T> {
        let found = found?;
        self.confidence
            .insert(name.to_owned(), round3(found.confidence));
        (found.confidence >= self.min).then_some(found.value)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn split<T>(found: Option<(Found<T>, usize)>) -> (Option<Found<T>>, Option<usize>) {
    match found {
        Some((f, line)) => (Some(f), Some(line)),
        None => (None, None),
    }
}

/// The purchase date: on a line labelled `Date`/`Le` first, else the first date.
fn find_date(infos: &[Info<'_>]) -> Option<(Found<String>, usize)> {
    let dates: Vec<(usize, String, Vec<usize>)> = infos
        .iter()
        .enumerate()
        .filter_map(|(i, info)| text::date(info.words).map(|(d, w)| (i, d, w)))
        .collect();
    let labelled = dates
        .iter()
        .find(|(i, _, _)| infos[*i].has_any(&["DATE", "LE", "LES"]));
    let (line, value, words) = labelled.or(dates.first())?;
    Some((
        Found {
            value: value.clone(),
            confidence: infos[*line].confidence(words.iter().copied()),
        },
        *line,
    ))
}

/// The purchase time: on the date's line first, else the first time.
fn find_time(infos: &[Info<'_>], date_line: Option<usize>) -> Option<(Found<String>, usize)> {
    let on = |i: usize| {
        text::time(infos[i].words).map(|(t, w)| {
            (
                Found {
                    value: t,
                    confidence: infos[i].confidence([w]),
                },
                i,
            )
        })
    };
    date_line
        .and_then(on)
        .or_else(|| (0..infos.len()).find_map(on))
}

/// The VAT lines, and the indexes of the lines they were read from.
fn tax_lines(infos: &[Info<'_>]) -> (Vec<ReceiptTaxLine>, Vec<usize>) {
    let mut lines = Vec::new();
    let mut indexes = Vec::new();
    for (i, info) in infos.iter().enumerate() {
        let Some(rate) = info.rates.first() else {
            continue;
        };
        let code = ["TVA", "VAT", "GST", "TAX"]
            .into_iter()
            .find(|k| info.has(k))
            .map(str::to_owned);
        let values: Vec<&Amount> = info.amounts.iter().collect();
        let pair = consistent_pair(rate.percent, &values);
        if code.is_none() && pair.is_none() {
            continue;
        }
        let (base, amount, used): (Option<f64>, Option<f64>, Vec<usize>) = match pair {
            Some((base, amount, used)) => (Some(base), Some(amount), used),
            None => match values.last() {
                Some(a) => (None, Some(a.value), a.words.clone()),
                None => (None, None, Vec::new()),
            },
        };
        let mut words = rate.words.clone();
        words.extend(used);
        words.extend(info.key_indexes(TAX_WORDS));
        lines.push(ReceiptTaxLine {
            rate_percent: Some(rate.percent),
            base,
            amount,
            code,
            confidence: info.confidence(words),
        });
        indexes.push(i);
    }
    (lines, indexes)
}

/// Two amounts of a VAT line that agree with its rate: (base, tax, words). The base may be
/// printed before tax (`20% 8,33 1,67`) or tax included (`20% 10,00 1,67`).
fn consistent_pair(rate: f64, values: &[&Amount]) -> Option<(f64, f64, Vec<usize>)> {
    if rate <= 0.0 {
        return None;
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 0.011_f64.max(b.abs() * 0.005);
    for (i, base) in values.iter().enumerate() {
        for tax in &values[i + 1..] {
            let mut words = base.words.clone();
            words.extend(tax.words.iter().copied());
            if close(base.value * rate / 100.0, tax.value) {
                return Some((base.value, tax.value, words));
            }
            if close(base.value * rate / (100.0 + rate), tax.value) {
                return Some((round2(base.value - tax.value), tax.value, words));
            }
        }
    }
    None
}

/// The total paid: by the strength of its label, then the first line.
fn total_incl_tax(infos: &[Info<'_>]) -> Option<Found<f64>> {
    let mut best: Option<(u8, Found<f64>)> = None;
    for info in infos {
        if !info.rates.is_empty() {
            continue;
        }
        let Some(amount) = info.last_amount() else {
            continue;
        };
        let ttc = info.has("TTC");
        let taxed = info.has_any(TAX_WORDS);
        let payment = info.has_any(PAYMENT_WORDS);
        let priority = if ttc {
            4
        } else if taxed || info.has_any(EXCL_WORDS) || payment {
            0
        } else if info.phrase("NET A PAYER").is_some()
            || info.phrase("A PAYER").is_some()
            || info.phrase("AMOUNT DUE").is_some()
            || info.phrase("TOTAL DUE").is_some()
            || info.phrase("GRAND TOTAL").is_some()
        {
            3
        } else if info.phrase("SOUS TOTAL").is_some() {
            1
        } else if info.has_any(&["TOTAL", "MONTANT", "SOMME"]) {
            2
        } else {
            0
        };
        if priority == 0 {
            continue;
        }
        if best.as_ref().is_none_or(|(p, _)| priority > *p) {
            let mut words = amount.words.clone();
            words.extend(info.key_indexes(INCL_WORDS));
            best = Some((
                priority,
                Found {
                    value: amount.value,
                    confidence: info.confidence(words),
                },
            ));
        }
    }
    best.map(|(_, found)| found)
}

/// The total before tax, from a line labelled so (`TOTAL HT`, `Hors taxes`). Without one,
/// the caller sums the VAT lines' bases when every one is printed.
fn stated_excl_tax(infos: &[Info<'_>]) -> Option<Found<f64>> {
    infos.iter().find_map(|info| {
        // Not `Subtotal`: before tax in the United States, tax included in Europe.
        let labelled = info.has_any(&["HT", "HORS"]) && !info.has("TTC") && info.rates.is_empty();
        let amount = info.last_amount().filter(|_| labelled)?;
        let mut words = amount.words.clone();
        words.extend(info.key_indexes(EXCL_WORDS));
        Some(Found {
            value: amount.value,
            confidence: info.confidence(words),
        })
    })
}

/// The sum of the taxes: a line labelled so (`TOTAL TVA`, `dont TVA`), else the sum of
/// the VAT lines when every amount is printed.
fn total_tax(infos: &[Info<'_>], taxes: &[ReceiptTaxLine]) -> Option<Found<f64>> {
    let stated = infos.iter().find_map(|info| {
        let labelled = info.has_any(TAX_WORDS)
            && !info.has_any(&["TTC", "HT", "HORS"])
            && info.rates.is_empty();
        let amount = info.last_amount().filter(|_| labelled)?;
        let mut words = amount.words.clone();
        words.extend(info.key_indexes(TAX_WORDS));
        Some(Found {
            value: amount.value,
            confidence: info.confidence(words),
        })
    });
    stated.or_else(|| sum_of(taxes, |t| t.amount))
}

fn sum_of(
    taxes: &[ReceiptTaxLine],
    part: impl Fn(&ReceiptTaxLine) -> Option<f64>,
) -> Option<Found<f64>> {
    if taxes.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    let mut confidence: f64 = 1.0;
    for t in taxes {
        sum += part(t)?;
        confidence = confidence.min(t.confidence);
    }
    Some(Found {
        value: round2(sum),
        confidence,
    })
}

/// The currency of the printed signs and codes (`€`, `EUR`, `£`, `$`…), the most frequent.
fn currency(infos: &[Info<'_>]) -> Option<Found<String>> {
    let mut votes: Vec<(&'static str, usize, f64)> = Vec::new();
    for info in infos {
        for (i, w) in info.words.iter().enumerate() {
            let folded = text::fold(&w.text);
            let mut codes: Vec<&'static str> = Vec::new();
            if w.text.contains('€') {
                codes.push("EUR");
            }
            if w.text.contains('£') {
                codes.push("GBP");
            }
            if w.text.contains('$') {
                codes.push("USD");
            }
            for part in folded.split(|c: char| !c.is_ascii_alphabetic()) {
                match part {
                    "EUR" | "EURO" | "EUROS" => codes.push("EUR"),
                    "GBP" => codes.push("GBP"),
                    "USD" => codes.push("USD"),
                    "CHF" => codes.push("CHF"),
                    _ => {}
                }
            }
            for code in codes {
                let conf = info.confidence([i]);
                match votes.iter_mut().find(|(c, _, _)| *c == code) {
                    Some(v) => {
                        v.1 += 1;
                        v.2 = v.2.max(conf);
                    }
                    None => votes.push((code, 1, conf)),
                }
            }
        }
    }
    let mut best: Option<(&'static str, usize, f64)> = None;
    for v in votes {
        if best.is_none_or(|b| v.1 > b.1) {
            best = Some(v);
        }
    }
    best.map(|(code, _, confidence)| Found {
        value: code.to_owned(),
        confidence,
    })
}

#[derive(Debug, Default)]
struct Supplier {
    name: Option<Found<String>>,
    address: Option<Found<String>>,
    phone: Option<Found<String>>,
    /// The last line of the header block the supplier was read from.
    last_line: Option<usize>,
}

/// Whether a line reads as a name: mostly letters, no value, not a receipt heading.
fn name_like(info: &Info<'_>) -> bool {
    let chars: Vec<char> = info
        .words
        .iter()
        .flat_map(|w| w.text.chars())
        .filter(|c| c.is_alphanumeric())
        .collect();
    let letters = chars.iter().filter(|c| c.is_alphabetic()).count();
    letters >= 3
        && letters * 10 >= chars.len() * 6
        && info.amounts.is_empty()
        && info.rates.is_empty()
        && text::date(info.words).is_none()
        && text::time(info.words).is_none()
        && !info.has_any(HEADER_WORDS)
        && !info.has_any(&["SIRET", "SIREN", "TEL", "TVA", "TOTAL", "DATE"])
}

/// A French postal code followed by a city (`75002 Paris`).
fn has_postal_code(info: &Info<'_>) -> bool {
    info.words.windows(2).any(|w| {
        let code = text::trim_punct(&w[0].text);
        code.len() == 5
            && code.chars().all(|c| c.is_ascii_digit())
            && w[1].text.chars().any(char::is_alphabetic)
    })
}

/// Name from the first name-like line of the first six, address from the lines after it
/// up to a postal code, phone from a `Tel` line or a French number.
fn supplier(infos: &[Info<'_>]) -> Supplier {
    let mut supplier = Supplier::default();
    let Some(name_line) = infos.iter().take(6).position(name_like) else {
        return supplier;
    };
    let info = &infos[name_line];
    let name = info
        .words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let name = name.trim_matches(|c: char| !c.is_alphanumeric() && c != ')' && c != '.');
    supplier.name = Some(Found {
        value: name.to_owned(),
        confidence: info.confidence(0..info.words.len()),
    });
    supplier.last_line = Some(name_line);

    for end in name_line + 1..(name_line + 4).min(infos.len()) {
        let block = &infos[name_line + 1..=end];
        let plain = |i: &Info<'_>| {
            i.amounts.is_empty()
                && text::date(i.words).is_none()
                && !i.has_any(&["SIRET", "SIREN", "TEL", "TVA", "TOTAL"])
        };
        if !block.iter().all(plain) {
            break;
        }
        if has_postal_code(&infos[end]) {
            let value = block
                .iter()
                .map(|i| {
                    i.words
                        .iter()
                        .map(|w| w.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join(", ");
            let confidence = block
                .iter()
                .map(|i| i.confidence(0..i.words.len()))
                .fold(1.0, f64::min);
            supplier.address = Some(Found { value, confidence });
            supplier.last_line = Some(end);
            break;
        }
    }

    for (i, info) in infos.iter().enumerate().take(12) {
        let labelled = info.has_any(&["TEL", "TELEPHONE", "PHONE", "TL"]);
        for (digits, words, groups) in text::digit_runs(info.words, 0) {
            let french = groups.len() == 5 && groups.iter().all(|g| *g == 2);
            let plausible = (9..=13).contains(&digits.len()) && labelled;
            if digits.starts_with('0') && (french || plausible) {
                let value = words
                    .iter()
                    .map(|w| text::trim_punct(&info.words[*w].text))
                    .collect::<Vec<_>>()
                    .join(" ");
                supplier.phone = Some(Found {
                    value,
                    confidence: info.confidence(words),
                });
                supplier.last_line = supplier.last_line.max(Some(i));
                return supplier;
            }
        }
    }
    supplier
}

/// SIRET, SIREN and French VAT numbers, each validated by its check digits.
fn registrations(infos: &[Info<'_>]) -> Vec<(SupplierRegistration, usize)> {
    fn push(
        found: &mut Vec<(SupplierRegistration, usize)>,
        kind: &str,
        value: String,
        confidence: f64,
        line: usize,
    ) {
        if !found.iter().any(|(r, _)| r.value == value) {
            found.push((
                SupplierRegistration {
                    kind: Some(kind.to_owned()),
                    value,
                    confidence,
                },
                line,
            ));
        }
    }
    let mut found: Vec<(SupplierRegistration, usize)> = Vec::new();
    for (line, info) in infos.iter().enumerate() {
        let siret_label = info.has("SIRET");
        let siren_label = info.has("SIREN") || info.has("RCS");
        for (digits, words, groups) in text::digit_runs(info.words, 0) {
            let grouped = groups == [3, 3, 3, 5];
            if digits.len() == 14 && (siret_label || grouped) && text::valid_siret(&digits) {
                let mut used = words.clone();
                used.extend(info.key_indexes(&["SIRET"]));
                push(&mut found, "SIRET", digits, info.confidence(used), line);
            } else if digits.len() == 9 && siren_label && text::valid_siren(&digits) {
                let mut used = words.clone();
                used.extend(info.key_indexes(&["SIREN", "RCS"]));
                push(&mut found, "SIREN", digits, info.confidence(used), line);
            }
        }
        // `FR 44 732829320`, `FR44732829320`: the words glued back together.
        let glued: String = info
            .words
            .iter()
            .flat_map(|w| w.text.chars())
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let mut from = 0;
        while let Some(at) = glued[from..].find("FR").map(|p| p + from) {
            if let Some(candidate) = glued.get(at..at + 13) {
                if text::valid_fr_vat(candidate) {
                    let words: Vec<usize> = (0..info.words.len())
                        .filter(|i| {
                            let t = text::fold(&info.words[*i].text);
                            t.contains("FR") || t.chars().all(|c| c.is_ascii_digit() || c == ' ')
                        })
                        .collect();
                    push(
                        &mut found,
                        "VAT NUMBER",
                        candidate.to_owned(),
                        info.confidence(words),
                        line,
                    );
                }
            }
            from = at + 2;
        }
    }
    found
}

/// French or English, from the words receipts print in each.
fn language(infos: &[Info<'_>]) -> Option<Found<String>> {
    let (mut fr, mut en) = (0usize, 0usize);
    for info in infos {
        fr += info
            .keys
            .iter()
            .filter(|(k, _)| FRENCH_WORDS.contains(&k.as_str()))
            .count();
        en += info
            .keys
            .iter()
            .filter(|(k, _)| ENGLISH_WORDS.contains(&k.as_str()))
            .count();
    }
    let (value, winner) = match fr.cmp(&en) {
        std::cmp::Ordering::Greater => ("fr", fr),
        std::cmp::Ordering::Less => ("en", en),
        std::cmp::Ordering::Equal => return None,
    };
    Some(Found {
        value: value.to_owned(),
        confidence: winner as f64 / (fr + en) as f64,
    })
}

/// Purchased items: the lines between the header and the first total that end with an
/// amount and carry a description.
fn line_items(infos: &[Info<'_>], from: usize, to: usize, min: f64) -> Vec<ReceiptLineItem> {
    let mut items = Vec::new();
    for info in infos.iter().take(to).skip(from) {
        let Some(total) = info.last_amount() else {
            continue;
        };
        if !info.rates.is_empty() || info.has_any(PAYMENT_WORDS) || info.has_any(INCL_WORDS) {
            continue;
        }
        let first_value = info.amounts.first().map_or(0, |a| a.words[0]);
        let mut quantity = None;
        let mut description = Vec::new();
        let mut used = Vec::new();
        for (i, w) in info.words.iter().enumerate().take(first_value) {
            let t = w.text.as_str();
            let q = t
                .strip_prefix(['x', 'X', '×'])
                .or_else(|| t.strip_suffix(['x', 'X', '×']))
                .filter(|n| !n.is_empty() && n.len() <= 3 && n.chars().all(|c| c.is_ascii_digit()));
            let leading = i == 0
                && t.len() <= 2
                && t.chars().all(|c| c.is_ascii_digit())
                && info.words.len() > 2;
            if let Some(n) = q.or(leading.then_some(t)) {
                quantity = n.parse::<f64>().ok();
            } else {
                description.push(t);
            }
            used.push(i);
        }
        let description = description.join(" ");
        if description.chars().filter(|c| c.is_alphabetic()).count() < 2 {
            continue;
        }
        used.extend(total.words.iter().copied());
        let unit_price = match info.amounts.as_slice() {
            [unit, _, ..] => {
                used.extend(unit.words.iter().copied());
                Some(unit.value)
            }
            _ => None,
        };
        let confidence = info.confidence(used);
        if confidence < min {
            continue;
        }
        items.push(ReceiptLineItem {
            description: Some(description),
            quantity,
            unit_price,
            total_amount: Some(total.value),
            confidence: round3(confidence),
        });
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading made of text lines, every word at `conf`.
    fn reading(text: &str, conf: f64) -> Reading {
        Reading {
            pages: 1,
            lines: text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let mut left = 0;
                    Line {
                        page: 1,
                        words: l
                            .split_whitespace()
                            .map(|t| {
                                let w = Word {
                                    text: t.to_owned(),
                                    confidence: conf,
                                    left,
                                    top: 0,
                                    width: 12 * t.chars().count() as i64,
                                    height: 20,
                                };
                                left += w.width + 8;
                                w
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }

    fn options() -> Options<'static> {
        Options {
            model: "tesseract test".into(),
            min_confidence: 0.5,
            recorded_by: "svc-ocr",
        }
    }

    const BAKERY: &str = "BOULANGERIE DU MARCHE
12 rue de la Paix
75002 Paris
Tel 01 42 60 00 00
SIRET 732 829 320 00074
Date: 12/03/2026 14:35
Baguette 1,20
Croissant x2 2,40
Cafe 1,80
TOTAL HT 4,91
TVA 10,00% 0,49
TOTAL TTC 5,40 EUR
CB 5,40
Merci de votre visite";

    #[test]
    fn a_french_receipt() {
        let r = receipt(&reading(BAKERY, 0.9), &options());
        assert_eq!(r.provider, "tesseract");
        assert_eq!(r.date.as_deref(), Some("2026-03-12"));
        assert_eq!(r.time.as_deref(), Some("14:35"));
        assert_eq!(r.total_incl_tax, Some(5.4));
        assert_eq!(r.total_excl_tax, Some(4.91));
        assert_eq!(r.total_tax, Some(0.49));
        assert_eq!(r.currency.as_deref(), Some("EUR"));
        assert_eq!(r.language.as_deref(), Some("fr"));
        assert_eq!(r.country.as_deref(), Some("FR"));
        assert_eq!(r.taxes.len(), 1);
        assert_eq!(r.taxes[0].rate_percent, Some(10.0));
        assert_eq!(r.taxes[0].base, Some(4.91));
        assert_eq!(r.taxes[0].amount, Some(0.49));
        assert_eq!(r.taxes[0].code.as_deref(), Some("TVA"));
        assert_eq!(r.supplier.name.as_deref(), Some("BOULANGERIE DU MARCHE"));
        assert_eq!(
            r.supplier.address.as_deref(),
            Some("12 rue de la Paix, 75002 Paris")
        );
        assert_eq!(r.supplier.phone.as_deref(), Some("01 42 60 00 00"));
        assert_eq!(r.supplier.registrations.len(), 1);
        assert_eq!(r.supplier.registrations[0].kind.as_deref(), Some("SIRET"));
        assert_eq!(r.supplier.registrations[0].value, "73282932000074");
        let items: Vec<(&str, Option<f64>, Option<f64>)> = r
            .line_items
            .iter()
            .map(|i| {
                (
                    i.description.as_deref().unwrap(),
                    i.quantity,
                    i.total_amount,
                )
            })
            .collect();
        assert_eq!(
            items,
            [
                ("Baguette", None, Some(1.2)),
                ("Croissant", Some(2.0), Some(2.4)),
                ("Cafe", None, Some(1.8))
            ]
        );
        assert_eq!(r.confidence["date"], 0.9);
        assert_eq!(r.confidence["total_incl_tax"], 0.9);
        assert_eq!(r.recorded_by, "svc-ocr");
    }

    #[test]
    fn doubtful_values_are_dropped_with_their_confidence_kept() {
        let r = receipt(&reading(BAKERY, 0.3), &options());
        assert_eq!(r.total_incl_tax, None);
        assert_eq!(r.date, None);
        assert_eq!(r.confidence["total_incl_tax"], 0.3);
        assert_eq!(r.confidence["date"], 0.3);
        assert!(r.taxes.is_empty() && r.line_items.is_empty());
        assert!(r.supplier.registrations.is_empty());
    }

    #[test]
    fn labels_decide_which_amount_is_which() {
        let r = receipt(
            &reading(
                "CHEZ PAUL
Le 3 avril 2025
Menu 18,50
Sous-total 18,50
Taux HT TVA TTC
10,00% 16,82 1,68 18,50
Net à payer 18,50 €
Espèces 20,00
Rendu 1,50",
                0.95,
            ),
            &options(),
        );
        assert_eq!(r.date.as_deref(), Some("2025-04-03"));
        assert_eq!(r.time, None);
        assert_eq!(r.total_incl_tax, Some(18.5));
        assert_eq!(r.taxes.len(), 1);
        assert_eq!(r.taxes[0].base, Some(16.82));
        assert_eq!(r.taxes[0].amount, Some(1.68));
        assert_eq!(r.taxes[0].code, None);
        assert_eq!(r.total_tax, Some(1.68));
        assert_eq!(r.total_excl_tax, Some(16.82));
        assert_eq!(r.currency.as_deref(), Some("EUR"));
        assert_eq!(r.supplier.name.as_deref(), Some("CHEZ PAUL"));
    }

    #[test]
    fn an_english_receipt_and_tax_included_bases() {
        let r = receipt(
            &reading(
                "THE CORNER CAFE
London
2026-01-15 09:05
Latte 3.20
Subtotal 3.20
VAT 20% 3.20 0.53
Total £3.20
Thank you",
                0.9,
            ),
            &options(),
        );
        assert_eq!(r.date.as_deref(), Some("2026-01-15"));
        assert_eq!(r.time.as_deref(), Some("09:05"));
        assert_eq!(r.total_incl_tax, Some(3.2));
        assert_eq!(r.taxes[0].base, Some(2.67));
        assert_eq!(r.total_excl_tax, Some(2.67));
        assert_eq!(r.taxes[0].amount, Some(0.53));
        assert_eq!(r.currency.as_deref(), Some("GBP"));
        assert_eq!(r.language.as_deref(), Some("en"));
        assert_eq!(r.country, None);
    }

    #[test]
    fn nothing_read_is_nothing_returned() {
        let r = receipt(&Reading::default(), &options());
        assert_eq!(r.date, None);
        assert_eq!(r.total_incl_tax, None);
        assert!(r.confidence.is_empty());
        assert_eq!(r.pages, 1);
        let r = receipt(&reading("~~~~\n....", 0.9), &options());
        assert_eq!(r.supplier.name, None);
    }

    #[test]
    fn invalid_siret_and_vat_numbers_are_not_returned() {
        let r = receipt(
            &reading(
                "SHOP\nSIRET 732 829 320 00075\nTVA intracom FR 45 732829320\nTVA FR44732829320",
                0.9,
            ),
            &options(),
        );
        let values: Vec<&str> = r
            .supplier
            .registrations
            .iter()
            .map(|r| r.value.as_str())
            .collect();
        assert_eq!(values, ["FR44732829320"]);
    }
}
