//! `ocr.expense_receipt`: the fields of an expense, read from a photo or scan of a receipt.
//!
//! The ERP's expense portal and mobile app send the document; whichever OCR provider is
//! enabled answers with an [`ExpenseReceipt`]. Values are normalised so that a caller never
//! sees a provider's vocabulary: dates are ISO 8601, amounts are plain numbers in the
//! receipt's currency, labels are lowercase `snake_case`, and every confidence is a number
//! between 0 and 1. A field the provider could not read is `null` (or an empty list), never
//! an invented default.

use crate::contract::OperationContract;
use crate::manifest::Category;
use crate::plugin::Operation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Reads an expense receipt (JPEG, PNG, WebP, HEIC or PDF).
#[derive(Debug)]
pub struct ExpenseReceiptOcr;

impl Operation for ExpenseReceiptOcr {
    const NAME: &'static str = "ocr.expense_receipt";
    type Input = ReceiptDocument;
    type Output = ExpenseReceipt;
}

inventory::submit! {
    OperationContract::of::<ExpenseReceiptOcr>(Category::Ocr, "Reads an expense receipt (JPEG, PNG, WebP, HEIC or PDF)")
}

/// The document to read, as it travels in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptDocument {
    /// The file's name as the user gave it (`ticket.jpg`); only informative: the type is
    /// read from the content, never from the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The file's bytes, standard base64 (RFC 4648, with padding).
    pub content_base64: String,
}

/// The expense read from a receipt. Amounts are in [`ExpenseReceipt::currency`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExpenseReceipt {
    /// Who read it, e.g. `mindee`.
    pub provider: String,
    /// The provider's model and version, e.g. `mindee/expense_receipts 5.2`.
    pub model: String,
    /// The provider's id of this reading, for support requests.
    pub provider_document_id: Option<String>,
    /// Number of pages read.
    pub pages: u32,
    /// `expense_receipt` or `credit_card_receipt` (other values pass through in the same
    /// lowercase form).
    pub document_type: Option<String>,
    /// Purchase date, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Purchase time, `HH:MM` (24 h).
    pub time: Option<String>,
    /// Total paid, taxes included.
    pub total_incl_tax: Option<f64>,
    /// Total before taxes.
    pub total_excl_tax: Option<f64>,
    /// Sum of the taxes.
    pub total_tax: Option<f64>,
    /// Tip and gratuity.
    pub tip: Option<f64>,
    /// One line per tax rate.
    pub taxes: Vec<ReceiptTaxLine>,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: Option<String>,
    /// ISO 639-1 language of the receipt, e.g. `fr`.
    pub language: Option<String>,
    /// ISO 3166-1 alpha-2 country of the receipt, e.g. `FR`.
    pub country: Option<String>,
    pub supplier: ReceiptSupplier,
    /// Expense category, e.g. `food`, `transport`, `accommodation`, `gasoline`.
    pub category: Option<String>,
    /// Finer category, e.g. `restaurant`, `taxi`, `train`, `plane`.
    pub subcategory: Option<String>,
    /// The receipt's number as printed.
    pub receipt_number: Option<String>,
    pub line_items: Vec<ReceiptLineItem>,
    /// Confidence (0 to 1) of each single-valued field, keyed by its name in this
    /// structure (`date`, `total_incl_tax`, `supplier.name`…). A field the provider does
    /// not read at all is absent; list items carry their own confidence.
    pub confidence: BTreeMap<String, f64>,
    /// The ERP technical user recorded on the expense, so that the ERP's history tells
    /// entries created by OCR from manual ones.
    pub recorded_by: String,
}

/// One tax line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptTaxLine {
    /// Rate in percent (20.0 for 20 %).
    pub rate_percent: Option<f64>,
    /// Amount the rate applies to.
    pub base: Option<f64>,
    /// Tax amount.
    pub amount: Option<f64>,
    /// Tax code as printed (`VAT`, `TVA`, `GST`…).
    pub code: Option<String>,
    pub confidence: f64,
}

/// The merchant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptSupplier {
    pub name: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// Company registrations printed on the receipt (VAT number, SIRET…).
    pub registrations: Vec<SupplierRegistration>,
}

/// A company registration number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SupplierRegistration {
    /// What the number is, as the provider names it (`VAT NUMBER`, `SIRET`…).
    pub kind: Option<String>,
    pub value: String,
    pub confidence: f64,
}

/// One purchased item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptLineItem {
    pub description: Option<String>,
    pub quantity: Option<f64>,
    pub unit_price: Option<f64>,
    /// Amount of the line.
    pub total_amount: Option<f64>,
    pub confidence: f64,
}
