//! Recognising the invoice formats of the reform (XP Z12-012: Factur-X, UBL, CII) from their
//! content, and reading the few facts the plugin needs from them: the invoice number (BT-1),
//! the seller's identifier and the buyer's electronic address (BT-49) or legal identifier,
//! which is what the directory is asked about before sending.

use crate::xml;
use passerelle_plugin_api::capabilities::InvoiceFormat;

const UBL_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const UBL_CREDIT_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
const CII_NS: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";

/// What the plugin reads from an invoice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub number: Option<String>,
    /// Seller's legal identifier (SIREN or SIRET).
    pub seller: Option<String>,
    /// Where the invoice must be delivered: the buyer's electronic address (BT-49) when
    /// present, else its legal identifier.
    pub recipient: Option<String>,
}

/// The format of `bytes` and its facts, or why it is none of the three.
pub fn detect(bytes: &[u8]) -> Result<(InvoiceFormat, Facts), String> {
    if bytes.starts_with(b"%PDF-") {
        let Some(xml) = embedded_cii(bytes) else {
            return Err(
                "it is a PDF without an embedded CII invoice (factur-x.xml), so not \
                        Factur-X"
                    .to_owned(),
            );
        };
        let doc = xml::read(&xml)
            .map_err(|e| format!("the invoice embedded in the PDF is not well-formed XML: {e}"))?;
        return Ok((InvoiceFormat::FacturX, cii_facts(&doc)));
    }
    let doc =
        xml::read(bytes).map_err(|e| format!("it is neither a PDF nor well-formed XML: {e}"))?;
    let ns = doc.root_namespace.as_deref().unwrap_or_default();
    match doc.root.as_str() {
        "Invoice" if ns == UBL_NS => Ok((InvoiceFormat::Ubl, ubl_facts(&doc))),
        "CreditNote" if ns == UBL_CREDIT_NS => Ok((InvoiceFormat::Ubl, ubl_facts(&doc))),
        "CrossIndustryInvoice" if ns == CII_NS => Ok((InvoiceFormat::Cii, cii_facts(&doc))),
        root => Err(format!(
            "its root element is {root:?} in namespace {ns:?}, not a UBL Invoice or a CII \
             CrossIndustryInvoice"
        )),
    }
}

/// The XP Z12-013 `flowSyntax` of a format.
pub fn flow_syntax(format: InvoiceFormat) -> &'static str {
    match format {
        InvoiceFormat::FacturX => "Factur-X",
        InvoiceFormat::Ubl => "UBL",
        InvoiceFormat::Cii => "CII",
    }
}

/// The format of a `flowSyntax`, for received flows.
pub fn from_flow_syntax(syntax: &str) -> Option<InvoiceFormat> {
    match syntax {
        "Factur-X" => Some(InvoiceFormat::FacturX),
        "UBL" => Some(InvoiceFormat::Ubl),
        "CII" => Some(InvoiceFormat::Cii),
        _ => None,
    }
}

/// The MIME type of the file part.
pub fn media_type(format: InvoiceFormat) -> &'static str {
    match format {
        InvoiceFormat::FacturX => "application/pdf",
        InvoiceFormat::Ubl | InvoiceFormat::Cii => "application/xml",
    }
}

fn ubl_facts(doc: &xml::Document) -> Facts {
    let number = doc
        .values
        .iter()
        .find(|v| v.path == format!("{}/ID", doc.root))
        .map(|v| v.text.clone());
    let seller = doc
        .first("AccountingSupplierParty/Party/PartyLegalEntity/CompanyID")
        .map(|v| v.text.clone());
    let recipient = doc
        .first("AccountingCustomerParty/Party/EndpointID")
        .or_else(|| doc.first("AccountingCustomerParty/Party/PartyLegalEntity/CompanyID"))
        .map(|v| v.text.clone());
    Facts {
        number,
        seller,
        recipient,
    }
}

fn cii_facts(doc: &xml::Document) -> Facts {
    Facts {
        number: doc
            .first("CrossIndustryInvoice/ExchangedDocument/ID")
            .map(|v| v.text.clone()),
        seller: doc
            .first("SellerTradeParty/SpecifiedLegalOrganization/ID")
            .map(|v| v.text.clone()),
        recipient: doc
            .first("BuyerTradeParty/URIUniversalCommunication/URIID")
            .or_else(|| doc.first("BuyerTradeParty/SpecifiedLegalOrganization/ID"))
            .map(|v| v.text.clone()),
    }
}

/// The CII invoice a Factur-X PDF embeds: the first stream (as is, or inflated) whose
/// content is a `CrossIndustryInvoice`.
pub fn embedded_cii(pdf: &[u8]) -> Option<Vec<u8>> {
    let mut rest = pdf;
    let mut budget = MAX_INFLATED_TOTAL;
    while let Some(start) = find(rest, b"stream") {
        let mut body = &rest[start + 6..];
        if body.starts_with(b"\r\n") {
            body = &body[2..];
        } else if body.starts_with(b"\n") || body.starts_with(b"\r") {
            body = &body[1..];
        } else {
            rest = body;
            continue;
        }
        let end = find(body, b"endstream")?;
        let data = trim_eol(&body[..end]);
        let candidate = if find(data, b"CrossIndustryInvoice").is_some() {
            Some(data.to_vec())
        } else {
            inflate(data, &mut budget).filter(|d| find(d, b"CrossIndustryInvoice").is_some())
        };
        if candidate.is_some() {
            return candidate;
        }
        rest = &body[end + 9..];
    }
    None
}

/// Largest stream inflated: an invoice's XML is kilobytes, seldom a megabyte.
const MAX_INFLATED: usize = 16 * 1024 * 1024;
/// Most bytes inflated from all the streams of one PDF.
const MAX_INFLATED_TOTAL: usize = 64 * 1024 * 1024;

/// Inflates one stream within the limits, counting what it cost against `budget`. Without
/// them a compression bomb (1 MiB inflating to 1 GiB) exhausted the memory (found by
/// reading the code while writing `tests/fuzz.rs`).
fn inflate(data: &[u8], budget: &mut usize) -> Option<Vec<u8>> {
    if *budget == 0 {
        return None;
    }
    match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, MAX_INFLATED.min(*budget)) {
        Ok(inflated) => {
            *budget -= inflated.len().min(*budget);
            Some(inflated)
        }
        Err(e) => {
            *budget -= e.output.len().min(*budget);
            None
        }
    }
}

fn trim_eol(data: &[u8]) -> &[u8] {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    data.strip_suffix(b"\r").unwrap_or(data)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The identifier to ask the directory about: an electronic address `0225` is used as is;
/// a SIREN or SIRET is kept; spaces are removed.
pub fn recipient_identifier(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that inflates past the limit is not read (it inflated without any limit,
    /// so 1 MiB of PDF could take 1 GiB of memory), and what it cost counts for the rest of
    /// the document.
    #[test]
    fn a_compression_bomb_is_inflated_only_up_to_the_limit() {
        let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 2 * 1024 * 1024], 10);
        let mut budget = 1024 * 1024;
        assert_eq!(inflate(&bomb, &mut budget), None);
        assert_eq!(budget, 0);
        let mut pdf = b"%PDF-1.7\n1 0 obj << /Filter /FlateDecode >> stream\n".to_vec();
        pdf.extend_from_slice(&bomb);
        pdf.extend_from_slice(b"\nendstream endobj\n");
        assert_eq!(embedded_cii(&pdf), None);
    }

    #[test]
    fn recognises_ubl_and_cii_and_reads_facts() {
        let ubl = br#"<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cbc="c" xmlns:cac="a"><cbc:ID>F-1</cbc:ID><cac:AccountingCustomerParty><cac:Party><cbc:EndpointID schemeID="0225">987654324</cbc:EndpointID></cac:Party></cac:AccountingCustomerParty></Invoice>"#;
        let (f, facts) = detect(ubl).unwrap();
        assert_eq!(f, InvoiceFormat::Ubl);
        assert_eq!(facts.number.as_deref(), Some("F-1"));
        assert_eq!(facts.recipient.as_deref(), Some("987654324"));
        let e = detect(br#"<Invoice xmlns="urn:other"/>"#).unwrap_err();
        assert!(e.contains("urn:other"), "{e}");
        assert!(detect(b"%PDF-1.7\nno attachment")
            .unwrap_err()
            .contains("Factur-X"));
        assert!(detect(b"hello").is_err());
    }

    #[test]
    fn finds_a_compressed_embedded_invoice() {
        let xml = br#"<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:ram="r"><rsm:ExchangedDocument><ram:ID>FX-9</ram:ID></rsm:ExchangedDocument></rsm:CrossIndustryInvoice>"#;
        let mut pdf = b"%PDF-1.7\n1 0 obj\n<< /Filter /FlateDecode >>\nstream\n".to_vec();
        pdf.extend(miniz_oxide::deflate::compress_to_vec_zlib(xml, 6));
        pdf.extend_from_slice(b"\nendstream\nendobj\n");
        let (f, facts) = detect(&pdf).unwrap();
        assert_eq!(f, InvoiceFormat::FacturX);
        assert_eq!(facts.number.as_deref(), Some("FX-9"));
    }
}
