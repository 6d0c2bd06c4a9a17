//! Reading deposited invoices: UBL and CII roots, number, buyer, service code,
//! engagement, mandatory elements; the Factur-X XML embedded in a PDF.

use super::*;
use crate::kit::bytes::{find, find_ignore_case};
use crate::kit::pdf::{embedded_file, streams};

/// What the emulator reads from an invoice.
#[derive(Debug, Default)]
pub(super) struct Invoice {
    pub(super) number: Option<String>,
    pub(super) buyer: Option<String>,
    /// BT-10, the buyer reference Chorus Pro reads as the service code.
    pub(super) service: Option<String>,
    /// BT-13, the purchase order reference Chorus Pro reads as the engagement number.
    pub(super) engagement: Option<String>,
    /// Mandatory elements that are absent.
    pub(super) missing: Vec<&'static str>,
}

/// Checks that the content is of the declared syntax and reads the invoice.
pub(super) fn analyse(bytes: &[u8], syntax: &str) -> Result<Invoice, String> {
    let xml = if syntax == SYNTAX_FACTURX {
        if !bytes[..bytes.len().min(1024)]
            .windows(5)
            .any(|w| w == b"%PDF-")
        {
            return Err("le fichier n'est pas un PDF".into());
        }
        if !names_facturx(bytes) {
            return Err("le PDF n'embarque pas de fichier factur-x.xml".into());
        }
        embedded_file(bytes).ok_or("le fichier factur-x.xml embarqué est illisible")?
    } else {
        bytes.to_vec()
    };
    let expected = match syntax {
        SYNTAX_UBL => (UBL_NS, "Invoice"),
        _ => (CII_NS, "CrossIndustryInvoice"),
    };
    read_invoice(&xml, expected)
}

/// Reads the root, the invoice number, the buyer and the mandatory elements of an invoice.
pub(super) fn read_invoice(xml: &[u8], expected: (&str, &str)) -> Result<Invoice, String> {
    let text = std::str::from_utf8(xml).map_err(|e| format!("XML mal formé ({e})"))?;
    let root = match crate::kit::xml::parse(text, 256) {
        Ok(root) => root,
        Err(crate::kit::xml::XmlError::Empty) => return Err("document XML vide".into()),
        Err(e) => return Err(format!("XML mal formé ({e})")),
    };
    let ns = root.ns.as_deref().unwrap_or_default();
    if (ns, root.name.as_str()) != expected {
        return Err(format!(
            "élément racine {{{ns}}}{}, attendu {{{}}}{}",
            root.name, expected.0, expected.1
        ));
    }
    let ubl = expected.1 == "Invoice";
    let mut seen: Vec<String> = Vec::new();
    let mut invoice = Invoice::default();
    root.walk(&mut |path, el| {
        let joined = path.join("/");
        seen.push(joined.clone());
        // An element without any text (only children, or empty) gives no value.
        if el.text.is_empty() {
            return;
        }
        let text = el.text.trim();
        if ubl && joined == "Invoice/ID" {
            invoice.number = Some(text.to_owned());
        }
        if !ubl && joined == "CrossIndustryInvoice/ExchangedDocument/ID" {
            invoice.number = Some(text.to_owned());
        }
        if !text.is_empty()
            && (joined == "Invoice/BuyerReference"
                || joined.ends_with("ApplicableHeaderTradeAgreement/BuyerReference"))
        {
            invoice.service = Some(text.to_owned());
        }
        if !text.is_empty()
            && (joined == "Invoice/OrderReference/ID"
                || joined.ends_with("BuyerOrderReferencedDocument/IssuerAssignedID"))
        {
            invoice.engagement = Some(text.to_owned());
        }
        if (joined.contains("AccountingCustomerParty") && joined.ends_with("CompanyID"))
            || (joined.contains("BuyerTradeParty")
                && joined.ends_with("SpecifiedLegalOrganization/ID"))
        {
            invoice.buyer = Some(text.to_owned());
        }
    });
    let required: &[(&str, &'static str)] = if ubl {
        &[
            ("Invoice/ID", "cbc:ID"),
            ("Invoice/IssueDate", "cbc:IssueDate"),
            (
                "Invoice/AccountingSupplierParty",
                "cac:AccountingSupplierParty",
            ),
            (
                "Invoice/AccountingCustomerParty",
                "cac:AccountingCustomerParty",
            ),
        ]
    } else {
        &[
            (
                "CrossIndustryInvoice/ExchangedDocument/ID",
                "rsm:ExchangedDocument/ram:ID",
            ),
            ("SellerTradeParty", "ram:SellerTradeParty"),
            ("BuyerTradeParty", "ram:BuyerTradeParty"),
        ]
    };
    for (suffix, name) in required {
        let present = seen
            .iter()
            .any(|p| p == suffix || p.ends_with(&format!("/{suffix}")));
        if !present {
            invoice.missing.push(name);
        }
    }
    Ok(invoice)
}

/// Whether the PDF names `factur-x.xml` as an embedded file, in the clear or in a
/// compressed object stream.
pub(super) fn names_facturx(pdf: &[u8]) -> bool {
    let name: &[u8] = b"factur-x.xml";
    let utf16: Vec<u8> = name.iter().flat_map(|b| [0u8, *b]).collect();
    let hit = |data: &[u8]| {
        find(data, name).is_some()
            || find(data, &utf16).is_some()
            || find_ignore_case(data, b"6661637475722d782e786d6c").is_some()
    };
    if find(pdf, b"/EmbeddedFile").is_none() {
        return false;
    }
    hit(pdf) || streams(pdf, b"/ObjStm").iter().any(|s| hit(s))
}

/// `YYYY-MM-DD` (UTC).
pub(super) fn date(unix_secs: u64) -> String {
    dates::format(
        dates::from_unix(i64::try_from(unix_secs).unwrap_or(i64::MAX)),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(super) fn datetime(unix_secs: u64) -> String {
    dates::format(
        dates::from_unix(i64::try_from(unix_secs).unwrap_or(i64::MAX)),
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
}
