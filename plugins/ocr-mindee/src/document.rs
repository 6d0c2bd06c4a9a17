//! Checking a document before it is sent: decoded from base64, typed by its content (never
//! by its name), and held to the limits of Mindee's synchronous API (10 MB, 10 PDF pages).
//!
//! A file Mindee would refuse costs a request, a slot of the rate limit and the user's
//! time, and Mindee's 400 says less than we can: so unsupported types, oversized files and
//! long PDFs are refused here with a message saying what to do. The PDF page count is read
//! from the file's structure without a PDF library; when the structure is hidden (compressed
//! object streams) the count is unknown and Mindee has the last word.

use base64::Engine as _;
use passerelle_plugin_api::prelude::*;

/// Largest file Mindee's synchronous API reads: 10 MB (taken as MiB).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// Most PDF pages Mindee's synchronous API reads.
pub const MAX_PDF_PAGES: usize = 10;
/// The input field that carries the bytes, named in errors.
pub const CONTENT_FIELD: &str = "content_base64";

/// The file types Mindee reads that this capability accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Heic,
    Tiff,
    Pdf,
}

impl Format {
    /// The media type sent in the multipart part.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Heic => "image/heic",
            Format::Tiff => "image/tiff",
            Format::Pdf => "application/pdf",
        }
    }

    /// The extension given to the file name when the user's does not fit the content.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Heic => "heic",
            Format::Tiff => "tif",
            Format::Pdf => "pdf",
        }
    }

    fn accepts_extension(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        match self {
            Format::Jpeg => matches!(ext.as_str(), "jpg" | "jpeg" | "jpe" | "jfif"),
            Format::Png => ext == "png",
            Format::Webp => ext == "webp",
            Format::Heic => matches!(ext.as_str(), "heic" | "heif"),
            Format::Tiff => matches!(ext.as_str(), "tif" | "tiff"),
            Format::Pdf => ext == "pdf",
        }
    }

    /// The name people know, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Webp => "WebP",
            Format::Heic => "HEIC",
            Format::Tiff => "TIFF",
            Format::Pdf => "PDF",
        }
    }
}

/// HEIF brands of HEVC-coded images and sequences (ISO/IEC 23008-12).
const HEIC_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
];

/// The format of `bytes` from their signature, or `None` when it is not one Mindee reads.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Format::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Format::Png);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some(Format::Webp);
    }
    if bytes.starts_with(b"%PDF-") {
        return Some(Format::Pdf);
    }
    // Little- and big-endian TIFF (TIFF 6.0 §2), what document scanners produce.
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Some(Format::Tiff);
    }
    if heif_brands(bytes).is_some_and(|brands| brands.iter().any(|b| HEIC_BRANDS.contains(b))) {
        return Some(Format::Heic);
    }
    None
}

/// The major and compatible brands of an ISO BMFF `ftyp` box at the start of the file.
fn heif_brands(bytes: &[u8]) -> Option<Vec<&[u8; 4]>> {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = size.clamp(16, bytes.len());
    let mut brands: Vec<&[u8; 4]> = Vec::new();
    brands.push(bytes[8..12].try_into().ok()?);
    // Bytes 12..16 are the minor version; compatible brands follow.
    for chunk in bytes[16..end].chunks_exact(4) {
        brands.push(chunk.try_into().ok()?);
    }
    Some(brands)
}

/// What an unsupported file looks like, to say so in the error.
fn describe_unsupported(bytes: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (b"GIF8", "a GIF image"),
        (b"BM", "a BMP image"),
        (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
        (b"\xD0\xCF\x11\xE0", "an old Office document"),
        (b"{\\rtf", "an RTF document"),
    ];
    if let Some((_, what)) = known.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return (*what).to_owned();
    }
    if let Some(brands) = heif_brands(bytes) {
        if brands.iter().any(|b| *b == b"avif" || *b == b"avis") {
            return "an AVIF image".to_owned();
        }
        return format!(
            "an ISO media file of brand {:?}",
            String::from_utf8_lossy(brands[0])
        );
    }
    let head = &bytes[..bytes.len().min(512)];
    if std::str::from_utf8(head)
        .is_ok_and(|s| !s.chars().any(|c| c.is_control() && !c.is_whitespace()))
    {
        return "text".to_owned();
    }
    let hex: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02X}")).collect();
    format!("a file starting with bytes {}", hex.join(" "))
}

/// A document ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub bytes: Vec<u8>,
    pub format: Format,
    /// Safe to put in a `Content-Disposition` header, with an extension fitting the content.
    pub file_name: String,
    /// Pages of a PDF, when its structure tells.
    pub pages: Option<usize>,
}

/// Decodes and checks the capability's input.
pub fn prepare(input: &ReceiptDocument) -> Result<Document, PluginError> {
    let bytes = decode(&input.content_base64)?;
    if bytes.is_empty() {
        return Err(invalid(
            "the document is empty: put the file's bytes, base64-encoded, in content_base64",
        ));
    }
    let format = detect(&bytes).ok_or_else(|| {
        invalid(format!(
            "the document is {}, not a JPEG, PNG, WebP, HEIC, TIFF or PDF file (the type is read from \
             the content, not from the name): take a photo of the receipt or export it as PDF",
            describe_unsupported(&bytes)
        ))
    })?;
    if bytes.len() > MAX_BYTES {
        return Err(invalid(format!(
            "the document is {} ({} bytes); Mindee reads at most 10 MB in one request: \
             send a smaller photo (about 3 megapixels is enough) or a lighter PDF",
            megabytes(bytes.len()),
            bytes.len()
        )));
    }
    let pages = if format == Format::Pdf {
        pdf_page_count(&bytes)
    } else {
        None
    };
    if let Some(n) = pages.filter(|n| *n > MAX_PDF_PAGES) {
        return Err(invalid(format!(
            "the PDF has {n} pages; Mindee reads at most {MAX_PDF_PAGES} pages in one request: \
             send only the pages of the receipt"
        )));
    }
    Ok(Document {
        file_name: file_name(input.file_name.as_deref(), format),
        bytes,
        format,
        pages,
    })
}

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::invalid_input(message).with_field(CONTENT_FIELD)
}

fn megabytes(n: usize) -> String {
    format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
}

/// Decodes standard base64, tolerating line breaks and a `data:…;base64,` prefix (what
/// browsers produce). Refuses early, without decoding, text too long to fit the limit.
fn decode(text: &str) -> Result<Vec<u8>, PluginError> {
    let text = text.trim();
    let text = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => text,
    };
    // 4 characters per 3 bytes, plus line breaks: anything longer cannot be ≤ 10 MB.
    if text.len() > (MAX_BYTES / 3 + 1) * 4 * 2 {
        return Err(invalid(format!(
            "the document is larger than {}; Mindee reads at most 10 MB in one request: \
             send a smaller photo or a lighter PDF",
            megabytes(text.len() / 4 * 3)
        )));
    }
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| {
            invalid(format!(
                "content_base64 is not valid base64 ({e}): encode the file's bytes with standard \
                 base64 (RFC 4648, alphabet A-Z a-z 0-9 + /, with = padding)"
            ))
        })
}

/// The file name sent to Mindee: the user's base name without characters that would break
/// the header, with an extension that fits the content (`ticket.png` holding a JPEG is sent
/// as `ticket.jpg`).
pub fn file_name(given: Option<&str>, format: Format) -> String {
    let base = given
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .take(150)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.');
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (cleaned, None),
    };
    let stem = if stem.trim().is_empty() {
        "receipt"
    } else {
        stem
    };
    match ext {
        Some(ext) if format.accepts_extension(ext) => format!("{stem}.{ext}"),
        _ => format!("{stem}.{}", format.extension()),
    }
}

/// Pages of a PDF: the largest `/Count` of a page tree node (`/Type /Pages`), or else the
/// number of page objects (`/Type /Page`). `None` when neither is visible, as in PDFs whose
/// objects are all in compressed object streams.
pub fn pdf_page_count(pdf: &[u8]) -> Option<usize> {
    let mut max_count: Option<usize> = None;
    let mut pages = 0usize;
    let mut at = 0;
    let mut nodes = Nodes::new(pdf);
    while let Some(found) = find(&pdf[at..], b"/Type") {
        let start = at + found;
        let mut i = start + b"/Type".len();
        while i < pdf.len() && pdf[i].is_ascii_whitespace() {
            i += 1;
        }
        at = i.max(start + 1);
        if !pdf[i..].starts_with(b"/Page") {
            continue;
        }
        let after = pdf.get(i + b"/Page".len()).copied();
        match after {
            Some(b's') if !pdf.get(i + 6).is_some_and(u8::is_ascii_alphanumeric) => {
                if let Some(count) = nodes.count(start) {
                    max_count = Some(max_count.map_or(count, |m| m.max(count)));
                }
            }
            Some(c) if c.is_ascii_alphanumeric() => {}
            _ => pages += 1,
        }
    }
    max_count.or((pages > 0).then_some(pages))
}

/// Reads the `/Count n` of page tree nodes at positions that only grow, in linear time
/// overall: each search remembers where it got to, so a file of many `/Type /Pages` without
/// `obj`, `endobj` or `/Count` is not searched again to its ends for each of them (1.3 s for
/// one 256 KiB document in a debug build, found by `tests/fuzz.rs`).
struct Nodes<'a> {
    pdf: &'a [u8],
    /// The last ` obj` found, and how far the search for it has read.
    obj: (Option<usize>, usize),
    /// The next `endobj` and the next `/Count` at or after the last position asked.
    endobj: Option<Option<usize>>,
    count_at: Option<Option<usize>>,
}

impl<'a> Nodes<'a> {
    fn new(pdf: &'a [u8]) -> Self {
        Nodes {
            pdf,
            obj: (None, 0),
            endobj: None,
            count_at: None,
        }
    }

    /// The `/Count n` of the object around `at` (between its `obj` and `endobj`).
    fn count(&mut self, at: usize) -> Option<usize> {
        let pdf = self.pdf;
        let (last, searched) = self.obj;
        let from = searched.saturating_sub(3);
        let last = match rfind(&pdf[from.min(at)..at], b" obj") {
            Some(p) => Some(from.min(at) + p),
            None => last,
        };
        self.obj = (last, at.max(searched));
        let begin = last.map_or(0, |p| p + 4);
        let end = next(&mut self.endobj, pdf, b"endobj", at).unwrap_or(pdf.len());
        let p = next(&mut self.count_at, pdf, b"/Count", begin).filter(|&p| p < end)?;
        let digits: String = pdf
            .get(p + b"/Count".len()..end)
            .unwrap_or_default()
            .iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .take_while(|b| b.is_ascii_digit())
            .map(|b| char::from(*b))
            .collect();
        digits.parse().ok()
    }
}

/// The first `needle` at or after `from`, reusing the previous answer while it still lies
/// ahead (`from` only grows).
fn next(
    cache: &mut Option<Option<usize>>,
    pdf: &[u8],
    needle: &[u8],
    from: usize,
) -> Option<usize> {
    match *cache {
        Some(None) => return None,
        Some(Some(p)) if p >= from => return Some(p),
        _ => {}
    }
    let found = find(&pdf[from..], needle).map(|p| from + p);
    *cache = Some(found);
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `tests/fuzz.rs` (`ocr-mindee.document`): page tree nodes without `obj`,
    /// `endobj` or `/Count` made every node search the file to both ends.
    #[test]
    fn page_counting_is_linear_in_hostile_documents() {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        pdf.extend(std::iter::repeat_n(b"/Type /Pages ".iter().copied(), 40_000).flatten());
        let started = std::time::Instant::now();
        assert_eq!(pdf_page_count(&pdf), None);
        pdf.extend_from_slice(b"/Count 3 endobj");
        assert_eq!(pdf_page_count(&pdf), Some(3));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    }

    fn input(name: Option<&str>, bytes: &[u8]) -> ReceiptDocument {
        ReceiptDocument {
            file_name: name.map(str::to_owned),
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0rest";

    /// A PDF of `n` pages in the classic (uncompressed) layout.
    fn pdf(n: usize) -> Vec<u8> {
        let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", i + 3)).collect();
        let mut s = format!(
            "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
             2 0 obj\n<< /Type /Pages /Kids [{}] /Count {n} >>\nendobj\n",
            kids.join(" ")
        );
        for i in 0..n {
            s.push_str(&format!(
                "{} 0 obj\n<</Type/Page/Parent 2 0 R/MediaBox [0 0 595 842]>>\nendobj\n",
                i + 3
            ));
        }
        s.push_str("trailer\n<< /Root 1 0 R >>\n%%EOF\n");
        s.into_bytes()
    }

    #[test]
    fn formats_are_read_from_the_content() {
        assert_eq!(detect(JPEG), Some(Format::Jpeg));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(Format::Png));
        assert_eq!(detect(b"RIFF\x24\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(detect(b"%PDF-1.7\n"), Some(Format::Pdf));
        assert_eq!(
            detect(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            Some(Format::Heic)
        );
        // Generic HEIF brand with an HEVC-coded image among the compatible brands.
        assert_eq!(
            detect(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"),
            Some(Format::Heic)
        );
        assert_eq!(detect(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"), None);
        assert_eq!(detect(b"GIF89a"), None);
        assert_eq!(detect(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
        assert_eq!(detect(b"MM\0*\0\0\0\x08"), Some(Format::Tiff));
        assert_eq!(Format::Tiff.media_type(), "image/tiff");
        assert_eq!(detect(b"II+\0"), None);
        assert_eq!(detect(b"hello"), None);
    }

    #[test]
    fn unsupported_files_are_named_in_the_error() {
        for (bytes, what) in [
            (&b"GIF89a\x01\0"[..], "a GIF image"),
            (b"PK\x03\x04\x14\0", "a ZIP archive"),
            (b"Total: 12,50 EUR\n", "text"),
            (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf", "an AVIF image"),
            (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08", "bytes 00 01 02"),
        ] {
            let e = prepare(&input(Some("x.jpg"), bytes)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput);
            assert_eq!(e.field.as_deref(), Some(CONTENT_FIELD));
            assert!(e.message.contains(what), "{what}: {}", e.message);
            assert!(e
                .message
                .contains("not a JPEG, PNG, WebP, HEIC, TIFF or PDF"));
        }
    }

    #[test]
    fn empty_and_bad_base64_are_refused() {
        let e = prepare(&input(None, b"")).unwrap_err();
        assert!(e.message.contains("empty"), "{}", e.message);
        let e = prepare(&ReceiptDocument {
            file_name: None,
            content_base64: "not base64 at all!".into(),
        })
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("not valid base64"), "{}", e.message);
    }

    #[test]
    fn base64_may_be_wrapped_or_a_data_url() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(JPEG);
        let wrapped = format!("{}\r\n{}\n", &encoded[..8], &encoded[8..]);
        let doc = prepare(&ReceiptDocument {
            file_name: None,
            content_base64: wrapped,
        })
        .unwrap();
        assert_eq!(doc.bytes, JPEG);
        let doc = prepare(&ReceiptDocument {
            file_name: None,
            content_base64: format!("data:image/jpeg;base64,{encoded}"),
        })
        .unwrap();
        assert_eq!(doc.bytes, JPEG);
        assert_eq!(doc.file_name, "receipt.jpg");
    }

    #[test]
    fn size_limit_is_ten_megabytes() {
        let mut big = JPEG.to_vec();
        big.resize(MAX_BYTES, 0);
        assert!(prepare(&input(None, &big)).is_ok());
        big.push(0);
        let e = prepare(&input(None, &big)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(CONTENT_FIELD));
        assert!(
            e.message.contains("10.0 MB (10485761 bytes)"),
            "{}",
            e.message
        );
        assert!(e.message.contains("at most 10 MB"), "{}", e.message);
        // Far too large: refused from the text's length, before decoding.
        let huge = "A".repeat(MAX_BYTES * 3);
        let e = prepare(&ReceiptDocument {
            file_name: None,
            content_base64: huge,
        })
        .unwrap_err();
        assert!(e.message.contains("larger than"), "{}", e.message);
    }

    #[test]
    fn pdf_pages_are_counted_and_limited() {
        assert_eq!(pdf_page_count(&pdf(1)), Some(1));
        assert_eq!(pdf_page_count(&pdf(10)), Some(10));
        let doc = prepare(&input(Some("scan.pdf"), &pdf(10))).unwrap();
        assert_eq!(doc.pages, Some(10));
        assert_eq!(doc.format, Format::Pdf);
        let e = prepare(&input(Some("scan.pdf"), &pdf(11))).unwrap_err();
        assert!(e.message.contains("the PDF has 11 pages"), "{}", e.message);
        assert!(e.message.contains("at most 10 pages"), "{}", e.message);
    }

    #[test]
    fn page_objects_are_counted_without_a_page_tree_count() {
        let s = b"%PDF-1.3\n1 0 obj <</Type /Page>> endobj 2 0 obj <</Type /Page >> endobj \
                  3 0 obj <</Type /Pages /Kids [1 0 R 2 0 R]>> endobj 4 0 obj <</Type /PageLabel>> endobj";
        assert_eq!(pdf_page_count(s), Some(2));
        // Compressed object streams hide the structure: unknown, Mindee decides.
        assert_eq!(
            pdf_page_count(b"%PDF-1.5\n1 0 obj <</Type /ObjStm /N 3>> stream"),
            None
        );
    }

    #[test]
    fn outline_counts_do_not_count_as_pages() {
        let mut s = pdf(2);
        s.extend_from_slice(b"9 0 obj\n<< /Type /Outlines /Count 40 >>\nendobj\n");
        assert_eq!(pdf_page_count(&s), Some(2));
    }

    #[test]
    fn file_names_fit_the_header_and_the_content() {
        assert_eq!(file_name(Some("ticket.jpg"), Format::Jpeg), "ticket.jpg");
        assert_eq!(file_name(Some("ticket.JPEG"), Format::Jpeg), "ticket.JPEG");
        assert_eq!(file_name(Some("ticket.png"), Format::Jpeg), "ticket.jpg");
        assert_eq!(
            file_name(Some("C:\\Users\\a\\reçu.pdf"), Format::Pdf),
            "reçu.pdf"
        );
        assert_eq!(
            file_name(Some("/tmp/x/IMG_1.HEIC"), Format::Heic),
            "IMG_1.HEIC"
        );
        assert_eq!(
            file_name(Some("a\"b\r\nContent-Type: x.jpg"), Format::Jpeg),
            "a'bContent-Type: x.jpg"
        );
        assert_eq!(file_name(Some(".hidden"), Format::Png), "hidden.png");
        assert_eq!(file_name(Some("   "), Format::Webp), "receipt.webp");
        assert_eq!(file_name(None, Format::Pdf), "receipt.pdf");
        assert_eq!(file_name(Some("notes"), Format::Png), "notes.png");
    }
}
