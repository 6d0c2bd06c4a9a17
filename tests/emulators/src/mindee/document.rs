//! Reading and checking the uploaded document: the `multipart/form-data` part, its type
//! from its magic bytes, JPEG structure, PDF page count.

use super::*;
use crate::kit::bytes::contains;

pub(super) struct FilePart {
    pub(super) file_name: String,
    pub(super) content_type: Option<String>,
    pub(super) bytes: Vec<u8>,
}

pub(super) enum DocumentProblem {
    Missing,
    NotAFile,
    Parse(String),
}

/// Finds the `document` file part; other fields are ignored, as Mindee does.
pub(super) async fn read_document(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<FilePart, DocumentProblem> {
    // Not a multipart body at all: the form has no `document` field.
    let Ok(mut multipart) = multipart else {
        return Err(DocumentProblem::Missing);
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Err(DocumentProblem::Missing),
            Err(e) => return Err(DocumentProblem::Parse(e.body_text())),
        };
        if field.name() != Some("document") {
            continue;
        }
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            return Err(DocumentProblem::NotAFile);
        };
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| DocumentProblem::Parse(e.body_text()))?;
        return Ok(FilePart {
            file_name,
            content_type,
            bytes: bytes.to_vec(),
        });
    }
}

pub(super) enum Inspection {
    Unsupported,
    Broken(&'static str),
}

/// The kind of an accepted file, after checking that its structure holds together.
pub(super) fn inspect(bytes: &[u8]) -> Result<&'static str, Inspection> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return check_jpeg(bytes)
            .map(|_| "jpeg")
            .map_err(Inspection::Broken);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let ihdr_ok = bytes.len() >= 33
            && &bytes[8..16] == b"\0\0\0\x0dIHDR"
            && bytes[16..20] != [0; 4]
            && bytes[20..24] != [0; 4];
        return if ihdr_ok {
            Ok("png")
        } else {
            Err(Inspection::Broken("PNG without a valid IHDR chunk"))
        };
    }
    if bytes.len() >= 16 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return if matches!(&bytes[12..16], b"VP8 " | b"VP8L" | b"VP8X") {
            Ok("webp")
        } else {
            Err(Inspection::Broken("WebP without a VP8 chunk"))
        };
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Ok("tiff");
    }
    if bytes.starts_with(b"%PDF-") {
        return if contains(bytes, b"%%EOF") {
            Ok("pdf")
        } else {
            Err(Inspection::Broken("PDF without %%EOF (truncated?)"))
        };
    }
    if bytes.len() >= 16 && &bytes[4..8] == b"ftyp" {
        let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let end = size.clamp(16, bytes.len());
        let heic = std::iter::once(&bytes[8..12])
            .chain(bytes[16..end].chunks_exact(4))
            .any(|b| {
                matches!(
                    b,
                    b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"hevm" | b"hevs"
                )
            });
        if heic {
            return Ok("heic");
        }
    }
    Err(Inspection::Unsupported)
}

/// Walks a JPEG's markers up to its scan: frame header with sane dimensions, quantisation
/// and Huffman tables before the scan, and an end-of-image marker after it.
pub(super) fn check_jpeg(b: &[u8]) -> Result<(u16, u16), &'static str> {
    let (mut frame, mut dqt, mut dht) = (None, false, false);
    let mut i = 2;
    loop {
        if i >= b.len() || b[i] != 0xFF {
            return Err("JPEG marker expected");
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let marker = *b.get(i).ok_or("JPEG truncated")?;
        i += 1;
        match marker {
            0xD9 => return Err("JPEG ends before any image data"),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([
            *b.get(i).ok_or("JPEG truncated")?,
            *b.get(i + 1).ok_or("JPEG truncated")?,
        ]));
        if len < 2 || i + len > b.len() {
            return Err("JPEG segment runs past the end of the file");
        }
        let seg = &b[i + 2..i + len];
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if seg.len() < 6 {
                    return Err("JPEG frame header too short");
                }
                let height = u16::from_be_bytes([seg[1], seg[2]]);
                let width = u16::from_be_bytes([seg[3], seg[4]]);
                let components = usize::from(seg[5]);
                if width == 0 || height == 0 || !matches!(components, 1 | 3 | 4) {
                    return Err("JPEG frame header with no size or an odd number of components");
                }
                if seg.len() != 6 + 3 * components {
                    return Err("JPEG frame header of the wrong length");
                }
                frame = Some((width, height));
            }
            0xC4 => dht = true,
            0xDB => dqt = true,
            0xDA => {
                let Some(size) = frame else {
                    return Err("JPEG scan before its frame header");
                };
                if !dqt || !dht {
                    return Err("JPEG scan without quantisation or Huffman tables");
                }
                if !contains(&b[i + len..], &[0xFF, 0xD9]) {
                    return Err("JPEG without an end-of-image marker (truncated?)");
                }
                return Ok(size);
            }
            _ => {}
        }
        i += len;
    }
}
