//! Checking a document before the engine sees it: decoded from base64, typed by its content
//! (never by its name), and held to a size the engine reads in seconds.
//!
//! Tesseract reads images through Leptonica: JPEG, PNG, WebP, TIFF (every page), GIF,
//! uncompressed BMP and PNM. It does not read PDF or HEIC, which Mindee does: those are
//! refused here with what to do instead, rather than handed to an engine that would answer
//! with an empty page. The limit of 10 MB is Mindee's too, so that a document one provider
//! takes is not refused by the other for its size.

use base64::Engine as _;
use passerelle_plugin_api::prelude::*;

/// Largest file read: 10 MB (taken as MiB), as Mindee's synchronous API.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// The input field that carries the bytes, named in errors.
pub const CONTENT_FIELD: &str = "content_base64";

/// The image types the engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Tiff,
    Gif,
    Bmp,
    Pnm,
}

impl Format {
    /// The extension of the temporary file, which Leptonica does not need but people
    /// looking at a left-over file do.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Tiff => "tif",
            Format::Gif => "gif",
            Format::Bmp => "bmp",
            Format::Pnm => "pnm",
        }
    }

    /// The name people know, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Webp => "WebP",
            Format::Tiff => "TIFF",
            Format::Gif => "GIF",
            Format::Bmp => "BMP",
            Format::Pnm => "PNM",
        }
    }
}

/// The format of `bytes` from their signature, or `None` when the engine cannot read it.
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
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Some(Format::Tiff);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some(Format::Gif);
    }
    if bytes.starts_with(b"BM") && bytes.len() > 54 {
        return Some(Format::Bmp);
    }
    if bytes.len() > 3
        && bytes[0] == b'P'
        && (b'1'..=b'6').contains(&bytes[1])
        && bytes[2].is_ascii_whitespace()
    {
        return Some(Format::Pnm);
    }
    None
}

/// What an unreadable file looks like, with what to do about it.
fn describe_unsupported(bytes: &[u8]) -> String {
    if bytes.starts_with(b"%PDF-") {
        return "a PDF document, which the local engine does not read: send a photo or an \
                image export (PNG, JPEG) of the receipt's page"
            .to_owned();
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return "a HEIC/HEIF or other ISO media file, which the local engine does not read: \
                set the phone's camera to JPEG (\"most compatible\") or convert the photo"
            .to_owned();
    }
    let head = &bytes[..bytes.len().min(512)];
    let what = if std::str::from_utf8(head)
        .is_ok_and(|s| !s.chars().any(|c| c.is_control() && !c.is_whitespace()))
    {
        "text".to_owned()
    } else {
        let hex: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02X}")).collect();
        format!("a file starting with bytes {}", hex.join(" "))
    };
    format!(
        "{what}, not a JPEG, PNG, WebP, TIFF, GIF, BMP or PNM image (the type is read from the \
         content, not from the name): send a photo or a scan of the receipt"
    )
}

/// A document ready for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub bytes: Vec<u8>,
    pub format: Format,
    /// The user's file name, for logs; `receipt.<ext>` when none was given.
    pub file_name: String,
}

/// Decodes and checks the capability's input.
pub fn prepare(input: &ReceiptDocument) -> Result<Document, PluginError> {
    let bytes = decode(&input.content_base64)?;
    if bytes.is_empty() {
        return Err(invalid(
            "the document is empty: put the file's bytes, base64-encoded, in content_base64",
        ));
    }
    let format = detect(&bytes)
        .ok_or_else(|| invalid(format!("the document is {}", describe_unsupported(&bytes))))?;
    if bytes.len() > MAX_BYTES {
        return Err(invalid(format!(
            "the document is {:.1} MB ({} bytes); at most 10 MB are read: send a smaller photo \
             (about 3 megapixels is enough)",
            bytes.len() as f64 / (1024.0 * 1024.0),
            bytes.len()
        )));
    }
    let file_name = input
        .file_name
        .as_deref()
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
        })
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("receipt.{}", format.extension()));
    Ok(Document {
        bytes,
        format,
        file_name,
    })
}

/// Standard base64, tolerating line breaks (MIME-style wrapping) and a `data:` URL prefix.
fn decode(text: &str) -> Result<Vec<u8>, PluginError> {
    let text = text.trim();
    let text = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => text,
    };
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            invalid(format!(
                "content_base64 is not standard base64 ({e}): encode the file's bytes with \
                 base64 (RFC 4648, with padding)"
            ))
        })
}

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::invalid_input(message).with_field(CONTENT_FIELD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(bytes: &[u8]) -> ReceiptDocument {
        ReceiptDocument {
            file_name: None,
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    #[test]
    fn formats_are_read_from_the_content() {
        assert_eq!(detect(b"\xFF\xD8\xFF\xE0...."), Some(Format::Jpeg));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(detect(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(detect(b"II*\0...."), Some(Format::Tiff));
        assert_eq!(detect(b"GIF89a.."), Some(Format::Gif));
        assert_eq!(detect(b"P5\n10 10\n255\n"), Some(Format::Pnm));
        assert_eq!(detect(b"%PDF-1.7"), None);
        let doc = prepare(&input(b"\x89PNG\r\n\x1a\nrest")).unwrap();
        assert_eq!(doc.format, Format::Png);
        assert_eq!(doc.file_name, "receipt.png");
    }

    #[test]
    fn unreadable_documents_are_refused_with_what_to_do() {
        let e = prepare(&input(b"%PDF-1.4\n...")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert_eq!(e.field.as_deref(), Some(CONTENT_FIELD));
        assert!(e.message.contains("PDF") && e.message.contains("image export"));
        let e = prepare(&input(b"\0\0\0\x18ftypheic\0\0\0\0heicmif1")).unwrap_err();
        assert!(e.message.contains("HEIC"), "{}", e.message);
        let e = prepare(&input(b"hello")).unwrap_err();
        assert!(e.message.contains("text, not a JPEG"), "{}", e.message);
        let e = prepare(&input(b"")).unwrap_err();
        assert!(e.message.contains("empty"));
        let e = prepare(&ReceiptDocument {
            file_name: None,
            content_base64: "not base64!".into(),
        })
        .unwrap_err();
        assert!(e.message.contains("base64"));
        let mut big = b"\xFF\xD8\xFF".to_vec();
        big.resize(MAX_BYTES + 1, 0);
        let e = prepare(&input(&big)).unwrap_err();
        assert!(e.message.contains("10 MB"), "{}", e.message);
    }

    #[test]
    fn wrapped_base64_and_data_urls_are_accepted() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"GIF89a-some-image-bytes");
        let wrapped = format!("data:image/gif;base64,{}\n{}", &b64[..8], &b64[8..]);
        let doc = prepare(&ReceiptDocument {
            file_name: Some("scan.gif".into()),
            content_base64: wrapped,
        })
        .unwrap();
        assert_eq!(doc.format, Format::Gif);
        assert_eq!(doc.file_name, "scan.gif");
    }
}
