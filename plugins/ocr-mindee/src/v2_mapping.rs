//! From an API v2 inference to the provider-neutral [`ExpenseReceipt`].
//!
//! A v2 inference carries `inference.result.fields`, where each field is a simple field
//! (`{"value", "confidence"}`), an object field (`{"fields": {...}}`, e.g. `locale`,
//! `supplier_address`) or a list field (`{"items": [...]}`, e.g. `taxes`, `line_items`).
//! The names are those of Mindee's expense receipt / financial document models
//! (`supplier_name`, `total_amount`, `total_net`, `tips_gratuity`, `purchase_category`…;
//! sample: `v2/products/extraction/financial_document/` of `mindee/client-lib-test-data`).
//! Fields are read by name, so a model with more or fewer fields maps what it has.
//!
//! Differences from v1, normalised here: confidence is a word (`Certain`, `High`,
//! `Medium`, `Low`; `null` unless the model's confidence option is on), mapped to 1, 0.8,
//! 0.5 and 0.2, and unknown to 0 so that a caller gating on confidence asks a person; tax
//! rates come as fractions (0.05 for 5 %, checked against base and amount when both are
//! there) and become percents like v1's.

use crate::mapping::{is_date, label, normal_time, number, text, upstream, PROVIDER};
use passerelle_plugin_api::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Reads the answer of `GET /v2/inferences/{id}`. `recorded_by` is the ERP technical user.
pub fn expense_receipt(body: &Value, recorded_by: &str) -> Result<ExpenseReceipt, PluginError> {
    let inference = body.get("inference").ok_or_else(|| {
        upstream("Mindee's answer has no `inference`: it is not an API v2 inference")
    })?;
    let fields = inference
        .pointer("/result/fields")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            upstream(
                "Mindee's answer has no `inference.result.fields`: the model is not an \
                 extraction model (choose an expense receipt or financial document model)",
            )
        })?;
    let model = inference
        .pointer("/model/id")
        .and_then(Value::as_str)
        .map_or_else(
            || "mindee v2".to_owned(),
            |id| format!("mindee v2 model {id}"),
        );
    let pages = inference
        .pointer("/file/page_count")
        .and_then(Value::as_u64)
        .unwrap_or(1);

    let f = Fields(fields);
    let mut confidence = BTreeMap::new();
    let mut read = |name: &str, keys: &[&str]| -> Option<&Value> {
        let field = keys.iter().find_map(|k| f.simple(k))?;
        confidence.insert(name.to_owned(), confidence_of(field));
        field.get("value")
    };
    let date = read("date", &["date"])
        .and_then(text)
        .filter(|d| is_date(d));
    let time = read("time", &["time"])
        .and_then(text)
        .and_then(|t| normal_time(&t));
    let total_incl_tax = read("total_incl_tax", &["total_amount"]).and_then(number);
    let total_excl_tax = read("total_excl_tax", &["total_net"]).and_then(number);
    let total_tax = read("total_tax", &["total_tax"]).and_then(number);
    let tip = read("tip", &["tips_gratuity", "tip"]).and_then(number);
    let category = read("category", &["purchase_category", "category"])
        .and_then(text)
        .map(|s| label(&s));
    let subcategory = read("subcategory", &["purchase_subcategory", "subcategory"])
        .and_then(text)
        .map(|s| label(&s));
    let document_type = read("document_type", &["document_type"])
        .and_then(text)
        .map(|s| label(&s));
    let receipt_number = read("receipt_number", &["receipt_number"]).and_then(text);
    let supplier_name = read("supplier.name", &["supplier_name"]).and_then(text);
    let supplier_phone = read("supplier.phone", &["supplier_phone_number"]).and_then(text);

    let address = f.object("supplier_address");
    let supplier_address = address.and_then(|a| {
        confidence.insert("supplier.address".to_owned(), confidence_of(a));
        let inner = a.get("fields")?;
        ["complete", "value", "address"]
            .iter()
            .find_map(|k| inner.get(*k).and_then(|v| v.get("value")).and_then(text))
    });
    let locale = f.object("locale");
    if let Some(locale) = locale {
        let c = confidence_of(locale);
        for name in ["currency", "language", "country"] {
            confidence.insert(name.to_owned(), c);
        }
    }
    let locale_part = |key: &str| {
        locale
            .and_then(|l| l.pointer(&format!("/fields/{key}/value")))
            .and_then(text)
    };

    Ok(ExpenseReceipt {
        provider: PROVIDER.to_owned(),
        model,
        provider_document_id: inference.get("id").and_then(text),
        pages: u32::try_from(pages).unwrap_or(u32::MAX),
        document_type,
        date,
        time,
        total_incl_tax,
        total_excl_tax,
        total_tax,
        tip,
        taxes: f.items("taxes").map(tax_line).collect(),
        currency: locale_part("currency").map(|c| c.to_ascii_uppercase()),
        language: locale_part("language").map(|l| l.to_ascii_lowercase()),
        country: locale_part("country").map(|c| c.to_ascii_uppercase()),
        supplier: ReceiptSupplier {
            name: supplier_name,
            address: supplier_address,
            phone: supplier_phone,
            registrations: f
                .items("supplier_company_registration")
                .chain(f.items("supplier_company_registrations"))
                .filter_map(registration)
                .collect(),
        },
        category,
        subcategory,
        receipt_number,
        line_items: f.items("line_items").map(line_item).collect(),
        confidence,
        recorded_by: recorded_by.to_owned(),
    })
}

/// `result.fields`, with lookups that tolerate missing fields.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// A simple field (it has a `value`, possibly null).
    fn simple(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| v.get("value").is_some())
    }

    fn object(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| v.get("fields").is_some())
    }

    fn items(&self, key: &str) -> impl Iterator<Item = &'a Value> {
        self.0
            .get(key)
            .and_then(|v| v.get("items"))
            .and_then(Value::as_array)
            .map(|l| l.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|v| v.get("fields").is_some_and(Value::is_object))
    }
}

/// The value of sub-field `key` of a list item or object field.
fn sub<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    item.get("fields")?.get(key)?.get("value")
}

fn tax_line(tax: &Value) -> ReceiptTaxLine {
    let base = sub(tax, "base").and_then(number);
    let amount = sub(tax, "amount").and_then(number);
    let rate = sub(tax, "rate").and_then(number);
    ReceiptTaxLine {
        rate_percent: rate.map(|r| percent(r, base, amount)),
        base,
        amount,
        code: sub(tax, "code").and_then(text),
        confidence: confidence_of(tax),
    }
}

/// A v2 rate as a percent: a fraction (0.05) unless base and amount say it already is one.
fn percent(rate: f64, base: Option<f64>, amount: Option<f64>) -> f64 {
    let as_fraction = rate * 100.0;
    if let (Some(base), Some(amount)) = (base, amount) {
        let fits = |p: f64| (base * p / 100.0 - amount).abs() <= 0.011 + amount.abs() * 0.001;
        if fits(rate) && !fits(as_fraction) {
            return round(rate);
        }
        if fits(as_fraction) {
            return round(as_fraction);
        }
    }
    if rate <= 1.0 {
        round(as_fraction)
    } else {
        round(rate)
    }
}

/// Six decimals are plenty for a rate and hide float noise (0.055 × 100).
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn registration(entry: &Value) -> Option<SupplierRegistration> {
    Some(SupplierRegistration {
        kind: sub(entry, "type").and_then(text),
        value: sub(entry, "number")
            .or_else(|| sub(entry, "value"))
            .and_then(text)?,
        confidence: confidence_of(entry),
    })
}

fn line_item(item: &Value) -> ReceiptLineItem {
    ReceiptLineItem {
        description: sub(item, "description").and_then(text),
        quantity: sub(item, "quantity").and_then(number),
        unit_price: sub(item, "unit_price").and_then(number),
        total_amount: sub(item, "total_price")
            .or_else(|| sub(item, "total_amount"))
            .and_then(number),
        confidence: confidence_of(item),
    }
}

/// A v2 confidence word as a number between 0 and 1; 0 when Mindee gave none.
fn confidence_of(field: &Value) -> f64 {
    match field.get("confidence").and_then(Value::as_str) {
        Some("Certain") => 1.0,
        Some("High") => 0.8,
        Some("Medium") => 0.5,
        Some("Low") => 0.2,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_become_percents() {
        assert_eq!(percent(0.05, Some(195.0), Some(9.75)), 5.0);
        assert_eq!(percent(20.0, Some(8.5), Some(1.7)), 20.0);
        assert_eq!(percent(0.2, None, None), 20.0);
        assert_eq!(percent(5.5, None, None), 5.5);
        assert_eq!(percent(0.055, None, None), 5.5);
    }

    #[test]
    fn an_answer_that_is_not_an_extraction_is_an_upstream_error() {
        let e = expense_receipt(&json!({"job": {}}), "u").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Upstream);
        let e = expense_receipt(&json!({"inference": {"result": {}}}), "u").unwrap_err();
        assert!(
            e.message.contains("inference.result.fields"),
            "{}",
            e.message
        );
    }
}
