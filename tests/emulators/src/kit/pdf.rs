//! Reading the PDFs emulators receive, as far as the real services look into them: how many
//! pages they have (Mindee's page limit, Universign's signature fields) and the streams they
//! hold (the invoice XML a Factur-X PDF embeds), FlateDecode streams inflated with
//! `miniz_oxide`.

use super::bytes::{find, rfind};

/// Page objects (`/Type /Page`, not `/Pages`) in a PDF.
pub fn count_pages(pdf: &[u8]) -> usize {
    let mut count = 0;
    let mut at = 0;
    while let Some(p) = find(&pdf[at..], b"/Type") {
        let mut i = at + p + 5;
        while i < pdf.len() && pdf[i].is_ascii_whitespace() {
            i += 1;
        }
        if pdf[i..].starts_with(b"/Page") && !pdf.get(i + 5).is_some_and(u8::is_ascii_alphanumeric)
        {
            count += 1;
        }
        at = i.max(at + p + 1);
    }
    count
}

/// The content of the embedded file stream (`/Type /EmbeddedFile`), inflated if needed.
pub fn embedded_file(pdf: &[u8]) -> Option<Vec<u8>> {
    let mut from = 0;
    while let Some(i) = find(&pdf[from..], b"/EmbeddedFile") {
        let at = from + i;
        from = at + 13;
        // `/EmbeddedFiles` is the name tree, not the stream.
        if pdf.get(at + 13) == Some(&b's') {
            continue;
        }
        if let Some(content) = stream_after(pdf, at) {
            return Some(content);
        }
    }
    None
}

/// The decoded content of every stream whose dictionary holds `marker`.
pub fn streams(pdf: &[u8], marker: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = find(&pdf[from..], marker) {
        let at = from + i;
        from = at + marker.len();
        if let Some(content) = stream_after(pdf, at) {
            out.push(content);
        }
    }
    out
}

/// The stream whose dictionary contains position `at`, decoded (FlateDecode or none).
pub fn stream_after(pdf: &[u8], at: usize) -> Option<Vec<u8>> {
    let keyword = at + find(&pdf[at..], b"stream")?;
    let dict_start = rfind(&pdf[..at], b"obj").unwrap_or(0);
    let dict = &pdf[dict_start..keyword];
    let mut start = keyword + 6;
    if pdf.get(start) == Some(&b'\r') {
        start += 1;
    }
    if pdf.get(start) == Some(&b'\n') {
        start += 1;
    }
    let end = start + find(&pdf[start..], b"endstream")?;
    let data = &pdf[start..end];
    if find(dict, b"/FlateDecode").is_some() {
        miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, 64 * 1024 * 1024).ok()
    } else {
        let data = data.strip_suffix(b"\n").unwrap_or(data);
        let data = data.strip_suffix(b"\r").unwrap_or(data);
        Some(data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pages_and_reads_embedded_files() {
        let pdf = crate::chorus_pro::samples::factur_x_pdf("F-1");
        assert_eq!(count_pages(&pdf), 1);
        let xml = embedded_file(&pdf).expect("the Factur-X sample embeds its XML");
        assert!(crate::kit::bytes::contains(&xml, b"CrossIndustryInvoice"));
        assert_eq!(count_pages(&crate::mindee::sample_pdf(3)), 3);
        assert_eq!(embedded_file(b"%PDF-1.7 no streams"), None);
    }
}
