//! Which invoice format a file is, from its content, and the Chorus Pro syntax it is
//! deposited under.
//!
//! File names lie (an `.xml` that is an order, a `.pdf` that is a plain scan), and Chorus
//! Pro rejects a deposit whose declared syntax does not match its content — after the
//! deposit, asynchronously. Detecting here refuses such files at once with a reason:
//! - Factur-X: a PDF that embeds a file named `factur-x.xml`. The name sits in the PDF's
//!   embedded-files name tree and file specification, either in the clear or inside a
//!   compressed object stream (PDF 1.5+), which is inflated to look there too.
//! - UBL: XML whose root is `Invoice` in `urn:oasis:names:specification:ubl:schema:xsd:Invoice-2`.
//! - CII: XML whose root is `CrossIndustryInvoice` in
//!   `urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100`.
//!
//! XML is read with a real parser (namespaces resolved, the whole document checked
//! well-formed), never with string matching.

use passerelle_plugin_api::prelude::*;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Namespace of UBL 2.x invoices.
pub const UBL_INVOICE_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
/// Namespace of UN/CEFACT Cross Industry Invoices (D16B, the one Factur-X embeds).
pub const CII_NS: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";
/// Name of the invoice file a Factur-X PDF embeds.
pub const FACTURX_FILE_NAME: &str = "factur-x.xml";

/// Largest object stream inflated while looking for the embedded file's name.
const MAX_INFLATED: usize = 16 * 1024 * 1024;
/// Most bytes inflated from all the streams of one document.
const MAX_INFLATED_TOTAL: usize = 64 * 1024 * 1024;

/// The Chorus Pro syntax (`syntaxeFlux`) of a format.
pub fn chorus_syntax(format: InvoiceFormat) -> &'static str {
    match format {
        InvoiceFormat::FacturX => "IN_DP_E2_CII_FACTURX",
        InvoiceFormat::Ubl => "IN_DP_E1_UBL_INVOICE",
        InvoiceFormat::Cii => "IN_DP_E1_CII_16B",
    }
}

/// The format of a Chorus Pro syntax, when it is one this plugin deposits.
pub fn format_of_syntax(syntax: &str) -> Option<InvoiceFormat> {
    [
        InvoiceFormat::FacturX,
        InvoiceFormat::Ubl,
        InvoiceFormat::Cii,
    ]
    .into_iter()
    .find(|f| chorus_syntax(*f) == syntax)
}

/// Why a file is not an invoice this plugin can deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecognised(pub String);

impl std::fmt::Display for Unrecognised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Detects the format of an invoice file.
pub fn detect(bytes: &[u8]) -> Result<InvoiceFormat, Unrecognised> {
    if bytes.is_empty() {
        return Err(Unrecognised("the file is empty".into()));
    }
    if is_pdf(bytes) {
        return if embeds_facturx(bytes) {
            Ok(InvoiceFormat::FacturX)
        } else {
            Err(Unrecognised(format!(
                "it is a PDF without an embedded {FACTURX_FILE_NAME}: only Factur-X PDFs (PDF/A-3 \
                 with the invoice's CII XML attached) can be deposited, not plain PDFs"
            )))
        };
    }
    let (namespace, local) = xml_root(bytes)?;
    match (namespace.as_deref(), local.as_str()) {
        (Some(UBL_INVOICE_NS), "Invoice") => Ok(InvoiceFormat::Ubl),
        (Some(CII_NS), "CrossIndustryInvoice") => Ok(InvoiceFormat::Cii),
        (ns, name) => {
            let qualified = match ns {
                Some(ns) => format!("{{{ns}}}{name}"),
                None => format!("{name} (no namespace)"),
            };
            Err(Unrecognised(format!(
                "it is XML whose root element is {qualified}: expected a UBL Invoice \
                 ({{{UBL_INVOICE_NS}}}Invoice) or a CII invoice \
                 ({{{CII_NS}}}CrossIndustryInvoice)"
            )))
        }
    }
}

/// `%PDF-` within the first 1024 bytes, where readers look for it.
fn is_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    find(head, b"%PDF-").is_some()
}

/// Whether a PDF embeds a file named `factur-x.xml`: an `/EmbeddedFile` marker and the file
/// name (as a literal string, UTF-16 or hex), in the clear or in an inflated object stream.
pub fn embeds_facturx(pdf: &[u8]) -> bool {
    if find(pdf, b"/EmbeddedFile").is_none() {
        return false;
    }
    if names_facturx(pdf) {
        return true;
    }
    object_streams(pdf).any(|content| names_facturx(&content))
}

/// The content of the file a Factur-X PDF embeds (the first `/Type /EmbeddedFile` stream),
/// inflated when it is FlateDecode-compressed; `None` when it cannot be read.
pub fn embedded_invoice(pdf: &[u8]) -> Option<Vec<u8>> {
    let mut from = 0;
    let mut objects = Behind::new(pdf, b"obj");
    let mut budget = Inflation::new();
    while let Some(i) = find(&pdf[from..], b"/EmbeddedFile") {
        let at = from + i;
        from = at + 13;
        // `/EmbeddedFiles` is the name tree, not the file's stream.
        if pdf.get(at + 13) == Some(&b's') {
            continue;
        }
        // Without a stream (or its end) after this marker, there is none after later ones:
        // stop rather than search the rest of the file again for each of them.
        let keyword = at + find(&pdf[at..], b"stream")?;
        let dict = &pdf[objects.last_before(at).unwrap_or(0)..keyword];
        let mut start = keyword + 6;
        if pdf.get(start) == Some(&b'\r') {
            start += 1;
        }
        if pdf.get(start) == Some(&b'\n') {
            start += 1;
        }
        let end = start + find(&pdf[start..], b"endstream")?;
        let data = &pdf[start..end];
        // Each stream is read once, for the first marker before it.
        from = from.max(end);
        if find(dict, b"/FlateDecode").is_some() {
            if let Some(inflated) = budget.inflate(data) {
                return Some(inflated);
            }
        } else {
            return Some(data.to_vec());
        }
    }
    None
}

/// The last occurrence of a needle before positions that only grow, found in linear time
/// overall: each call searches only the bytes the previous one did not.
struct Behind<'a> {
    haystack: &'a [u8],
    needle: &'a [u8],
    searched_to: usize,
    last: Option<usize>,
}

impl<'a> Behind<'a> {
    fn new(haystack: &'a [u8], needle: &'a [u8]) -> Self {
        Behind {
            haystack,
            needle,
            searched_to: 0,
            last: None,
        }
    }

    fn last_before(&mut self, at: usize) -> Option<usize> {
        // A needle may straddle the end of the previous search.
        let from = self.searched_to.saturating_sub(self.needle.len() - 1);
        if at > from {
            if let Some(i) = rfind(&self.haystack[from..at], self.needle) {
                self.last = Some(from + i);
            }
            self.searched_to = self.searched_to.max(at);
        }
        self.last
    }
}

/// Inflation of one document's streams, bounded per stream ([`MAX_INFLATED`]) and in total
/// ([`MAX_INFLATED_TOTAL`]): a PDF of many small compression bombs, each under the limit of
/// one stream, could otherwise keep a worker inflating gigabytes.
struct Inflation {
    left: usize,
}

impl Inflation {
    fn new() -> Self {
        Inflation {
            left: MAX_INFLATED_TOTAL,
        }
    }

    fn inflate(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if self.left == 0 {
            return None;
        }
        match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(
            data,
            MAX_INFLATED.min(self.left),
        ) {
            Ok(inflated) => {
                self.left -= inflated.len().min(self.left);
                Some(inflated)
            }
            Err(e) => {
                self.left -= e.output.len().min(self.left);
                None
            }
        }
    }
}

/// The spellings of `factur-x.xml` a PDF writer may use for a file specification's `/F` and
/// `/UF` strings: plain, UTF-16BE, and hexadecimal forms of both (hex digits in either
/// case; the name itself is exact, as the Factur-X specification fixes it).
fn names_facturx(bytes: &[u8]) -> bool {
    let plain = FACTURX_FILE_NAME.as_bytes();
    if find(bytes, plain).is_some() {
        return true;
    }
    let utf16: Vec<u8> = plain.iter().flat_map(|b| [0u8, *b]).collect();
    if find(bytes, &utf16).is_some() {
        return true;
    }
    let hex = |data: &[u8]| data.iter().map(|b| format!("{b:02x}")).collect::<String>();
    [hex(plain), hex(&utf16)]
        .iter()
        .any(|h| find_ignore_case(bytes, h.as_bytes()).is_some())
}

/// The inflated content of each FlateDecode object stream (`/Type /ObjStm`) of a PDF.
fn object_streams(pdf: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut from = 0;
    let mut objects = Behind::new(pdf, b"obj");
    let mut budget = Inflation::new();
    std::iter::from_fn(move || loop {
        let at = from + find(&pdf[from..], b"/ObjStm")?;
        from = at + 7;
        let keyword = find(&pdf[at..], b"stream").map(|i| at + i)?;
        // The stream's dictionary runs from its `obj` keyword to `stream`.
        let dict_start = objects.last_before(at).unwrap_or(0);
        let dict = &pdf[dict_start..keyword];
        let mut data_start = keyword + 6;
        if pdf.get(data_start) == Some(&b'\r') {
            data_start += 1;
        }
        if pdf.get(data_start) == Some(&b'\n') {
            data_start += 1;
        }
        let end = find(&pdf[data_start..], b"endstream").map(|i| data_start + i)?;
        from = end;
        if find(dict, b"/FlateDecode").is_none() {
            continue;
        }
        let data = &pdf[data_start..end];
        if let Some(inflated) = budget.inflate(data) {
            return Some(inflated);
        }
        // A stream padded with its end-of-line before `endstream`: inflation stops at the
        // end of the zlib data, so only a truncated stream fails here; skip it.
    })
}

/// The namespace and local name of an XML document's root element, after checking that the
/// whole document is well-formed.
fn xml_root(bytes: &[u8]) -> Result<(Option<String>, String), Unrecognised> {
    let mut reader = NsReader::from_reader(bytes);
    let mut root: Option<(Option<String>, String)> = None;
    let mut depth: usize = 0;
    loop {
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(read) => read,
            Err(e) => {
                let at = reader.error_position();
                return Err(Unrecognised(if root.is_none() {
                    format!("it is neither a PDF nor well-formed XML ({e} at byte {at})")
                } else {
                    format!("it is XML but not well-formed: {e} at byte {at}")
                }));
            }
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_none() {
                    let namespace = match resolved {
                        ResolveResult::Bound(ns) => Some(AsRef::<str>::as_ref(&ns).to_owned()),
                        ResolveResult::Unbound => None,
                        ResolveResult::Unknown(prefix) => {
                            return Err(Unrecognised(format!(
                                "it is XML whose root element uses the undeclared namespace \
                                 prefix {prefix:?}"
                            )))
                        }
                    };
                    let local = AsRef::<str>::as_ref(&e.local_name()).to_owned();
                    root = Some((namespace, local));
                } else if depth == 0 {
                    return Err(Unrecognised(
                        "it is XML with more than one root element".into(),
                    ));
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(ref t) if depth == 0 => {
                let text: &str = t.as_ref();
                if !text
                    .chars()
                    .all(|c| c.is_ascii_whitespace() || c == '\u{feff}')
                {
                    return Err(Unrecognised(if root.is_none() {
                        "it is neither a PDF nor XML".into()
                    } else {
                        "it is XML with text after the root element".into()
                    }));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match root {
        Some(root) if depth == 0 => Ok(root),
        Some(_) => Err(Unrecognised(
            "it is XML but truncated: the root element is not closed".into(),
        )),
        None => Err(Unrecognised("it is neither a PDF nor XML".into())),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `tests/fuzz.rs` (`chorus-pro.invoice_file`): each `/EmbeddedFile` marker
    /// searched the rest of the file again for its stream's end (4 s for 240 KiB).
    #[test]
    fn many_embedded_file_markers_without_a_stream_end_are_read_in_linear_time() {
        let mut pdf =
            b"%PDF-1.7\n1 0 obj\n<< /Type /EmbeddedFile /Filter /FlateDecode >>\nstream\n".to_vec();
        pdf.extend(
            std::iter::repeat_n(
                b"<< /Type /EmbeddedFile >> obj stream\n".iter().copied(),
                20_000,
            )
            .flatten(),
        );
        let started = std::time::Instant::now();
        assert_eq!(embedded_invoice(&pdf), None);
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    }

    /// Many small compression bombs, each under the per-stream limit, are inflated within
    /// one budget for the whole document, not each up to 16 MiB.
    #[test]
    fn compression_bombs_share_one_inflation_budget() {
        let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![b'x'; 600 * 1024], 10);
        let mut budget = Inflation { left: 1024 * 1024 };
        assert_eq!(budget.inflate(&bomb).map(|d| d.len()), Some(600 * 1024));
        assert_eq!(budget.inflate(&bomb), None, "over what is left");
        assert_eq!(budget.left, 0);
        assert_eq!(budget.inflate(&bomb), None);
    }

    const UBL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
         xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>FA-1</cbc:ID>
</Invoice>
"#;

    const CII: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100">
  <rsm:ExchangedDocument><ram:ID>FA-1</ram:ID></rsm:ExchangedDocument>
</rsm:CrossIndustryInvoice>"#;

    #[test]
    fn xml_invoices_are_told_apart_by_root_and_namespace() {
        assert_eq!(detect(UBL.as_bytes()), Ok(InvoiceFormat::Ubl));
        assert_eq!(detect(CII.as_bytes()), Ok(InvoiceFormat::Cii));
        // A prefixed UBL root is the same element.
        let prefixed = UBL
            .replace("<Invoice xmlns=", "<inv:Invoice xmlns:inv=")
            .replace("</Invoice>", "</inv:Invoice>");
        assert_eq!(detect(prefixed.as_bytes()), Ok(InvoiceFormat::Ubl));
        // A byte-order mark is fine.
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(CII.as_bytes());
        assert_eq!(detect(&bom), Ok(InvoiceFormat::Cii));
    }

    #[test]
    fn the_right_name_in_the_wrong_namespace_is_not_an_invoice() {
        let credit_note = UBL.replace("Invoice", "CreditNote");
        let e = detect(credit_note.as_bytes()).unwrap_err();
        assert!(e.0.contains("CreditNote-2}CreditNote"), "{e}");
        let no_ns = "<Invoice><ID>1</ID></Invoice>";
        let e = detect(no_ns.as_bytes()).unwrap_err();
        assert!(e.0.contains("Invoice (no namespace)"), "{e}");
        let cii_100_wrong = CII.replace("CrossIndustryInvoice:100", "CrossIndustryInvoice:2");
        assert!(detect(cii_100_wrong.as_bytes()).is_err());
        // A string search would be fooled by this comment.
        let decoy = format!("<!-- {UBL_INVOICE_NS} Invoice --><Order xmlns=\"urn:x\"/>");
        let e = detect(decoy.as_bytes()).unwrap_err();
        assert!(e.0.contains("{urn:x}Order"), "{e}");
    }

    #[test]
    fn broken_xml_and_other_files_are_refused_with_the_reason() {
        let e = detect(&UBL.as_bytes()[..UBL.len() - 12]).unwrap_err();
        assert!(
            e.0.contains("not well-formed") || e.0.contains("truncated"),
            "{e}"
        );
        let e = detect(b"hello, world").unwrap_err();
        assert!(e.0.contains("neither a PDF nor"), "{e}");
        let e = detect(b"").unwrap_err();
        assert_eq!(e.0, "the file is empty");
        let e = detect(b"<a/><b/>").unwrap_err();
        assert!(e.0.contains("more than one root"), "{e}");
        let e = detect(b"<x:a/>").unwrap_err();
        assert!(e.0.contains("undeclared namespace prefix"), "{e}");
        let e = detect(b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF").unwrap_err();
        assert!(e.0.contains("without an embedded factur-x.xml"), "{e}");
    }

    #[test]
    fn name_spellings_in_pdf_strings() {
        assert!(names_facturx(b"/F (factur-x.xml)"));
        // The Factur-X specification fixes the name, case included.
        assert!(!names_facturx(b"/F (Factur-X.xml)"));
        let utf16: Vec<u8> = b"/UF (\xfe\xff"
            .iter()
            .copied()
            .chain("factur-x.xml".bytes().flat_map(|b| [0, b]))
            .chain(*b")")
            .collect();
        assert!(names_facturx(&utf16));
        assert!(names_facturx(b"/F <6661637475722D782E786D6C>"));
        assert!(names_facturx(
            b"/UF <FEFF006600610063007400750072002D0078002E0078006D006C>"
        ));
        assert!(!names_facturx(b"/F (zugferd-invoice.xml)"));
    }

    #[test]
    fn syntaxes() {
        assert_eq!(
            chorus_syntax(InvoiceFormat::FacturX),
            "IN_DP_E2_CII_FACTURX"
        );
        assert_eq!(chorus_syntax(InvoiceFormat::Ubl), "IN_DP_E1_UBL_INVOICE");
        assert_eq!(chorus_syntax(InvoiceFormat::Cii), "IN_DP_E1_CII_16B");
        assert_eq!(
            format_of_syntax("IN_DP_E1_CII_16B"),
            Some(InvoiceFormat::Cii)
        );
        assert_eq!(format_of_syntax("IN_DP_E1_XCBL"), None);
    }
}
