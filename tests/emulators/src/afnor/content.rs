//! Reading what is sent: multipart parts, XML roots and values, invoice facts, the XML
//! a Factur-X PDF embeds, checksums and dates.

use super::*;
use crate::kit::bytes::find;
use crate::kit::xml;

pub(super) struct Part {
    pub(super) name: String,
    pub(super) data: Vec<u8>,
}

/// Splits a `multipart/form-data` body into its named parts.
pub(super) fn multipart_parts(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    let Some(first) = find(rest, delimiter.as_bytes()) else {
        return parts;
    };
    rest = &rest[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let Some(rest2) = rest.strip_prefix(b"\r\n") else {
            break;
        };
        let Some(head_end) = find(rest2, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest2[..head_end]).into_owned();
        let data_start = &rest2[head_end + 4..];
        let closing = format!("\r\n{delimiter}");
        let Some(end) = find(data_start, closing.as_bytes()) else {
            break;
        };
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .and_then(|l| l.split(';').find_map(|p| p.trim().strip_prefix("name=")))
            .map(|n| n.trim_matches('"').to_owned())
            .unwrap_or_default();
        parts.push(Part {
            name,
            data: data_start[..end].to_vec(),
        });
        rest = &data_start[end + closing.len()..];
    }
    parts
}

/// An XML document's root, its namespace, and its text values by path of local names.
pub(super) struct Xml {
    pub(super) root: String,
    pub(super) ns: Option<String>,
    pub(super) values: Vec<(String, String)>,
}

/// Reads a document's root, its namespace, and its non-blank text values by path; `None`
/// when it is not well-formed XML.
pub(super) fn read_xml(bytes: &[u8]) -> Option<Xml> {
    let root = xml::parse(std::str::from_utf8(bytes).ok()?, 256).ok()?;
    let mut values = Vec::new();
    root.walk(&mut |path, el| {
        let text = el.text.trim();
        if !text.is_empty() {
            values.push((path.join("/"), text.to_owned()));
        }
    });
    Some(Xml {
        root: root.name,
        ns: root.ns,
        values,
    })
}

/// What the emulator reads from an invoice.
#[derive(Debug, Clone)]
pub(super) struct InvoiceFacts {
    pub(super) syntax: &'static str,
    pub(super) number: Option<String>,
    pub(super) recipient: Option<String>,
}

pub(super) fn read_invoice(content: &[u8]) -> Option<InvoiceFacts> {
    let (syntax, xml) = if content.starts_with(b"%PDF-") {
        ("Factur-X", read_xml(&embedded_xml(content)?)?)
    } else {
        let xml = read_xml(content)?;
        let syntax = match (xml.root.as_str(), xml.ns.as_deref()) {
            ("Invoice", Some(UBL_NS)) => "UBL",
            ("CrossIndustryInvoice", Some(CII_NS)) => "CII",
            _ => return None,
        };
        (syntax, xml)
    };
    let get = |suffix: &str| {
        xml.values
            .iter()
            .find(|(p, _)| p.ends_with(suffix))
            .map(|(_, v)| v.clone())
    };
    let (number, recipient) = if syntax == "UBL" {
        (
            get("Invoice/ID"),
            get("AccountingCustomerParty/Party/EndpointID")
                .or_else(|| get("AccountingCustomerParty/Party/PartyLegalEntity/CompanyID")),
        )
    } else {
        if xml.root != "CrossIndustryInvoice" {
            return None;
        }
        (
            get("ExchangedDocument/ID"),
            get("BuyerTradeParty/URIUniversalCommunication/URIID")
                .or_else(|| get("BuyerTradeParty/SpecifiedLegalOrganization/ID")),
        )
    };
    Some(InvoiceFacts {
        syntax,
        number,
        recipient,
    })
}

/// The CII a PDF embeds (inflated when compressed).
pub(super) fn embedded_xml(pdf: &[u8]) -> Option<Vec<u8>> {
    let mut rest = pdf;
    while let Some(start) = find(rest, b"stream\n") {
        let body = &rest[start + 7..];
        let end = find(body, b"\nendstream")?;
        let data = &body[..end];
        if let Ok(inflated) = miniz_oxide::inflate::decompress_to_vec_zlib(data) {
            if find(&inflated, b"CrossIndustryInvoice").is_some() {
                return Some(inflated);
            }
        }
        if find(data, b"CrossIndustryInvoice").is_some() {
            return Some(data.to_vec());
        }
        rest = &body[end..];
    }
    None
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) of a time in milliseconds.
pub(super) fn rfc3339(ms: u64) -> String {
    dates::format(
        dates::from_unix_ms(ms),
        time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ),
    )
}

pub(super) fn edifact(ms: u64) -> String {
    rfc3339(ms)
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect()
}
