//! From Mindee's prediction to the provider-neutral [`ExpenseReceipt`].
//!
//! The document-level prediction (`document.inference.prediction`) is read, not the
//! per-page ones: it is Mindee's answer for the whole file. Versions 4 and 5 of the product
//! share most fields; they differ in the supplier (`supplier` in v4, `supplier_name` plus
//! address, phone and registrations in v5) and in what v5 adds (receipt number, line
//! items). Fields are read by name whatever the version, so a 5.x minor release adding a
//! field changes nothing here.
//!
//! Normalisation: blank strings and the `N/A` placeholders become `null`; dates must be
//! `YYYY-MM-DD` and times `HH:MM` or they are dropped (with their confidence kept, so the
//! caller sees that something was there); labels become lowercase `snake_case`
//! (`EXPENSE RECEIPT` → `expense_receipt`); amounts may come as numbers or numeric strings.

use passerelle_plugin_api::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The provider's name in [`ExpenseReceipt::provider`].
pub const PROVIDER: &str = "mindee";

/// Reads Mindee's 201 answer. `recorded_by` is the ERP technical user.
pub fn expense_receipt(body: &Value, recorded_by: &str) -> Result<ExpenseReceipt, PluginError> {
    let document = body.get("document").ok_or_else(|| {
        upstream("Mindee's answer has no `document`: it is not a prediction of expense receipts")
    })?;
    let inference = document.get("inference").unwrap_or(&Value::Null);
    let prediction = inference
        .get("prediction")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            upstream(
                "Mindee's answer has no `document.inference.prediction`: it is not a prediction \
                 of expense receipts",
            )
        })?;
    let product = inference.get("product").unwrap_or(&Value::Null);
    let model = match (
        product.get("name").and_then(Value::as_str),
        product.get("version").and_then(Value::as_str),
    ) {
        (Some(name), Some(version)) => format!("{name} {version}"),
        (Some(name), None) => name.to_owned(),
        _ => "mindee/expense_receipts".to_owned(),
    };
    let pages = document
        .get("n_pages")
        .and_then(Value::as_u64)
        .or_else(|| {
            inference
                .get("pages")
                .and_then(Value::as_array)
                .map(|p| p.len() as u64)
        })
        .unwrap_or(1);

    let p = Prediction(prediction);
    let mut confidence = BTreeMap::new();
    let mut read = |name: &str, key: &str| -> Option<&Value> {
        let field = p.field(key)?;
        confidence.insert(name.to_owned(), confidence_of(field));
        field.get("value")
    };

    let date = read("date", "date").and_then(text).filter(|d| is_date(d));
    let time = read("time", "time")
        .and_then(text)
        .and_then(|t| normal_time(&t));
    let total_incl_tax = read("total_incl_tax", "total_amount").and_then(number);
    let total_excl_tax = read("total_excl_tax", "total_net").and_then(number);
    let total_tax = read("total_tax", "total_tax").and_then(number);
    let tip = read("tip", "tip").and_then(number);
    let category = read("category", "category")
        .and_then(text)
        .map(|s| label(&s));
    let subcategory = read("subcategory", "subcategory")
        .and_then(text)
        .map(|s| label(&s));
    let document_type = read("document_type", "document_type")
        .and_then(text)
        .map(|s| label(&s));
    let receipt_number = read("receipt_number", "receipt_number").and_then(text);
    let supplier_key = if p.field("supplier_name").is_some() {
        "supplier_name"
    } else {
        "supplier"
    };
    let supplier_name = read("supplier.name", supplier_key).and_then(text);
    let supplier_address = read("supplier.address", "supplier_address").and_then(text);
    let supplier_phone = read("supplier.phone", "supplier_phone_number").and_then(text);

    let locale = p.field("locale");
    if let Some(locale) = locale {
        let c = confidence_of(locale);
        for name in ["currency", "language", "country"] {
            confidence.insert(name.to_owned(), c);
        }
    }
    let locale_part = |key: &str| locale.and_then(|l| l.get(key)).and_then(text);

    Ok(ExpenseReceipt {
        provider: PROVIDER.to_owned(),
        model,
        provider_document_id: document.get("id").and_then(text),
        pages: u32::try_from(pages).unwrap_or(u32::MAX),
        document_type,
        date,
        time,
        total_incl_tax,
        total_excl_tax,
        total_tax,
        tip,
        taxes: p.list("taxes").map(tax_line).collect(),
        currency: locale_part("currency").map(|c| c.to_ascii_uppercase()),
        language: locale_part("language").map(|l| l.to_ascii_lowercase()),
        country: locale_part("country").map(|c| c.to_ascii_uppercase()),
        supplier: ReceiptSupplier {
            name: supplier_name,
            address: supplier_address,
            phone: supplier_phone,
            registrations: p
                .list("supplier_company_registrations")
                .filter_map(registration)
                .collect(),
        },
        category,
        subcategory,
        receipt_number,
        line_items: p.list("line_items").map(line_item).collect(),
        confidence,
        recorded_by: recorded_by.to_owned(),
    })
}

/// The prediction object, with lookups that tolerate missing fields.
struct Prediction<'a>(&'a Map<String, Value>);

impl<'a> Prediction<'a> {
    fn field(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| v.is_object())
    }

    fn list(&self, key: &str) -> impl Iterator<Item = &'a Value> {
        self.0
            .get(key)
            .and_then(Value::as_array)
            .map(|l| l.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|v| v.is_object())
    }
}

fn tax_line(tax: &Value) -> ReceiptTaxLine {
    ReceiptTaxLine {
        rate_percent: tax.get("rate").and_then(number),
        base: tax.get("base").and_then(number),
        amount: tax.get("value").and_then(number),
        code: tax.get("code").and_then(text),
        confidence: confidence_of(tax),
    }
}

fn registration(entry: &Value) -> Option<SupplierRegistration> {
    Some(SupplierRegistration {
        kind: entry.get("type").and_then(text),
        value: entry.get("value").and_then(text)?,
        confidence: confidence_of(entry),
    })
}

fn line_item(item: &Value) -> ReceiptLineItem {
    ReceiptLineItem {
        description: item.get("description").and_then(text),
        quantity: item.get("quantity").and_then(number),
        unit_price: item.get("unit_price").and_then(number),
        total_amount: item.get("total_amount").and_then(number),
        confidence: confidence_of(item),
    }
}

pub(crate) fn upstream(message: &str) -> PluginError {
    PluginError::new(ErrorKind::Upstream, message)
}

/// A field's confidence, between 0 and 1.
fn confidence_of(field: &Value) -> f64 {
    field
        .get("confidence")
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite())
        .map_or(0.0, |c| c.clamp(0.0, 1.0))
}

/// A non-blank string, without Mindee's placeholders for "nothing".
pub(crate) fn text(value: &Value) -> Option<String> {
    let s = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && !matches!(s.as_str(), "N/A" | "None" | "null")).then_some(s)
}

/// A number, or a string holding one (`"10.20"`).
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

/// `EXPENSE RECEIPT` → `expense_receipt`.
pub(crate) fn label(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .replace('-', "_")
        .to_lowercase()
}

/// `YYYY-MM-DD` with a plausible month and day.
pub(crate) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return false;
    }
    let month: u32 = s[5..7].parse().unwrap_or(0);
    let day: u32 = s[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// `HH:MM` from `H:MM`, `HH:MM` or `HH:MM:SS`; `None` for anything else.
pub(crate) fn normal_time(s: &str) -> Option<String> {
    let mut parts = s.split(':');
    let hour: u32 = parts.next()?.parse().ok()?;
    let minute_text = parts.next()?;
    if minute_text.len() != 2 {
        return None;
    }
    let minute: u32 = minute_text.parse().ok()?;
    if let Some(seconds) = parts.next() {
        let sec: u32 = seconds.parse().ok()?;
        if sec > 59 || parts.next().is_some() {
            return None;
        }
    }
    (hour < 24 && minute < 60).then(|| format!("{hour:02}:{minute:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalisers() {
        assert_eq!(label("EXPENSE RECEIPT"), "expense_receipt");
        assert_eq!(label(" Credit  Card Receipt "), "credit_card_receipt");
        assert_eq!(label("food"), "food");
        assert!(is_date("2016-02-26"));
        assert!(!is_date("2016-13-26"));
        assert!(!is_date("26/02/2016"));
        assert_eq!(normal_time("15:20").as_deref(), Some("15:20"));
        assert_eq!(normal_time("9:05").as_deref(), Some("09:05"));
        assert_eq!(normal_time("09:05:59").as_deref(), Some("09:05"));
        assert_eq!(normal_time("25:00"), None);
        assert_eq!(normal_time("15h20"), None);
        assert_eq!(number(&json!("10.20")), Some(10.2));
        assert_eq!(number(&json!(null)), None);
        assert_eq!(text(&json!("N/A")), None);
        assert_eq!(text(&json!("  ")), None);
    }

    #[test]
    fn an_answer_without_a_prediction_is_an_upstream_error() {
        let e = expense_receipt(&json!({"api_request": {}}), "u").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Upstream);
        let e = expense_receipt(&json!({"document": {"inference": {}}}), "u").unwrap_err();
        assert!(e.message.contains("document.inference.prediction"));
    }

    #[test]
    fn malformed_values_are_dropped_but_their_confidence_is_kept() {
        let body = json!({"document": {"inference": {"prediction": {
            "date": {"value": "26/02/2016", "confidence": 0.4},
            "time": {"value": "3pm", "confidence": 0.3},
            "total_amount": {"value": "12.5", "confidence": 1.7},
            "taxes": [{"value": 2.08, "rate": 20, "code": "N/A", "base": null, "confidence": 0.5}],
            "supplier_company_registrations": [{"type": "SIRET", "value": null, "confidence": 0.1}]
        }}}});
        let r = expense_receipt(&body, "svc").unwrap();
        assert_eq!(r.date, None);
        assert_eq!(r.confidence["date"], 0.4);
        assert_eq!(r.time, None);
        assert_eq!(r.total_incl_tax, Some(12.5));
        assert_eq!(r.confidence["total_incl_tax"], 1.0);
        assert_eq!(r.taxes[0].code, None);
        assert_eq!(r.taxes[0].rate_percent, Some(20.0));
        assert!(r.supplier.registrations.is_empty());
        assert_eq!(r.model, "mindee/expense_receipts");
        assert_eq!(r.pages, 1);
        assert!(!r.confidence.contains_key("receipt_number"));
    }
}
