//! The names of the form fields a PDF declares, read from its plain (uncompressed) objects,
//! so that a signature placed on a named field that the document does not have is refused
//! before the request. Universign's guide (SignatureField, `name`) says an unknown name is
//! not an error there: the coordinates are used instead, and a caller who gave only a name
//! would find the signature at the top-left corner of page 1.
//!
//! Field names are the `/T` strings of the field dictionaries (PDF 32000-1, 12.7.3.1). When
//! a document keeps its objects in compressed object streams (`/ObjStm`), the names cannot
//! be read without inflating them, and the answer is "unknown": Universign has the last word.

/// What the document says about its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fields {
    /// The names found (possibly none: a document without any form).
    Known(Vec<String>),
    /// The document's structure is hidden in object streams.
    Unknown,
}

/// Reads the field names of `pdf`.
pub fn fields(pdf: &[u8]) -> Fields {
    let mut names = Vec::new();
    let mut at = 0;
    while let Some(p) = find(&pdf[at..], b"/T") {
        let mut i = at + p + 2;
        at = i;
        // `/T` followed by a delimiter, not `/Type`, `/TU`, `/TM`…
        if pdf.get(i).is_some_and(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        while pdf.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match pdf.get(i) {
            // A string that never ends runs to the end of the file: every later `/T` is inside
            // it. Stopping there keeps the scan linear (reading each unterminated name to the
            // end of the file again took seconds on a hostile 1 MiB document).
            Some(b'(') => match literal(pdf, i + 1) {
                Some((name, end)) => {
                    names.push(name);
                    at = end;
                }
                None => break,
            },
            Some(b'<') if pdf.get(i + 1) != Some(&b'<') => {
                let Some(end) = find(&pdf[i + 1..], b">") else {
                    break;
                };
                let hex: Vec<u8> = pdf[i + 1..i + 1 + end]
                    .iter()
                    .copied()
                    .filter(u8::is_ascii_hexdigit)
                    .collect();
                let bytes: Vec<u8> = hex
                    .chunks(2)
                    .filter_map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
                    .collect();
                names.push(text(&bytes));
                at = i + 1 + end;
            }
            _ => {}
        }
    }
    if names.is_empty() && find(pdf, b"/ObjStm").is_some() {
        return Fields::Unknown;
    }
    names.sort();
    names.dedup();
    Fields::Known(names)
}

/// A literal string starting after its `(`: escapes and nested parentheses handled.
fn literal(pdf: &[u8], start: usize) -> Option<(String, usize)> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut i = start;
    while let Some(&b) = pdf.get(i) {
        match b {
            b'\\' => {
                if let Some(&next) = pdf.get(i + 1) {
                    out.push(match next {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                }
                i += 2;
                continue;
            }
            b'(' => depth += 1,
            b')' if depth == 0 => return Some((text(&out), i + 1)),
            b')' => depth -= 1,
            _ => {}
        }
        out.push(b);
        i += 1;
    }
    None
}

/// PDF text strings: UTF-16BE with a byte order mark, else (close enough) Latin-1.
fn text(bytes: &[u8]) -> String {
    if let Some(utf16) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = utf16
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `tests/fuzz.rs` (`universign.pdf_fields`): many `/T (` without a closing
    /// parenthesis made the scan quadratic (7 s for one 1 MiB document in debug).
    #[test]
    fn unterminated_field_names_are_read_in_linear_time() {
        let mut pdf = b"%PDF-1.4\n1 0 obj\n<< /FT /Sig /T (Signature1) >>\n".to_vec();
        for _ in 0..40_000 {
            pdf.extend_from_slice(b"<< /T (Signa\n");
        }
        let started = std::time::Instant::now();
        assert_eq!(fields(&pdf), Fields::Known(vec!["Signature1".into()]));
        let mut hex = b"%PDF-1.4\n".to_vec();
        for _ in 0..40_000 {
            hex.extend_from_slice(b"/T <FEFF00");
        }
        assert_eq!(fields(&hex), Fields::Known(vec![]));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn names_are_read_from_field_dictionaries() {
        let pdf = b"%PDF-1.7\n1 0 obj << /Type /Annot /Subtype /Widget /FT /Sig /T (Client \\(buyer\\)) >> endobj\n\
                    2 0 obj << /FT /Sig /T<FEFF0053006900670032> /TU (tooltip) >> endobj\n\
                    3 0 obj << /Type /Page /T(Seller) >> endobj %%EOF";
        assert_eq!(
            fields(pdf),
            Fields::Known(vec![
                "Client (buyer)".to_owned(),
                "Seller".to_owned(),
                "Sig2".to_owned()
            ])
        );
        assert_eq!(
            fields(b"%PDF-1.4 1 0 obj << /Type /Page >> endobj %%EOF"),
            Fields::Known(vec![])
        );
        assert_eq!(
            fields(b"%PDF-1.5 5 0 obj << /Type /ObjStm /N 3 >> stream x endstream %%EOF"),
            Fields::Unknown
        );
    }
}
