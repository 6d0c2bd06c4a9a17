//! `multipart/form-data` bodies (RFC 7578) for plugins that upload files: Mindee (a receipt,
//! with API v2's `model_id`) and the AFNOR e-invoicing platforms (`flowInfo` JSON and the
//! invoice). Both wrote their own; this is the one implementation.
//!
//! Built in memory, because a plugin hands the host a [`crate::HttpRequest`] of bytes. The
//! maintained multipart crates build streams for an async HTTP client (reqwest's, or
//! `common-multipart-rfc7578` on `futures`), which a plugin has no use for.
//!
//! The boundary is derived from the content and checked against it, so it never occurs
//! inside a part (RFC 2046 §5.1.1). Field and file names are escaped as the HTML standard's
//! form submission does (`"` → `%22`, CR → `%0D`, LF → `%0A`), so a name cannot end its
//! header early.

/// A body and the `Content-Type` header that describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The parts of a form, in order; [`FormBuilder::build`] chooses the boundary.
#[derive(Debug, Clone, Default)]
pub struct FormBuilder {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
struct Part {
    name: String,
    file_name: Option<String>,
    media_type: Option<String>,
    bytes: Vec<u8>,
}

impl FormBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A text field, without a `Content-Type` (RFC 7578 §4.4: `text/plain` is implied).
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.parts.push(Part {
            name: name.to_owned(),
            file_name: None,
            media_type: None,
            bytes: value.as_bytes().to_vec(),
        });
        self
    }

    /// A field with a media type and no file name, e.g. a JSON document.
    pub fn typed(mut self, name: &str, media_type: &str, bytes: &[u8]) -> Self {
        self.parts.push(Part {
            name: name.to_owned(),
            file_name: None,
            media_type: Some(media_type.to_owned()),
            bytes: bytes.to_vec(),
        });
        self
    }

    /// A file.
    pub fn file(mut self, name: &str, file_name: &str, media_type: &str, bytes: &[u8]) -> Self {
        self.parts.push(Part {
            name: name.to_owned(),
            file_name: Some(file_name.to_owned()),
            media_type: Some(media_type.to_owned()),
            bytes: bytes.to_vec(),
        });
        self
    }

    /// The body. `seed` varies the boundary between requests (e.g. the host's clock): the
    /// same content with the same seed gives the same bytes, which tests rely on.
    pub fn build(self, seed: u64) -> Form {
        let content: Vec<u8> = self
            .parts
            .iter()
            .flat_map(|p| p.bytes.iter().copied())
            .collect();
        let boundary = boundary_for(&content, seed);
        let size = content.len() + 160 * self.parts.len() + 64;
        let mut body = Vec::with_capacity(size);
        for part in &self.parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let mut disposition = format!("form-data; name=\"{}\"", escape(&part.name));
            if let Some(file_name) = &part.file_name {
                disposition.push_str(&format!("; filename=\"{}\"", escape(file_name)));
            }
            body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
            if let Some(media_type) = &part.media_type {
                body.extend_from_slice(format!("Content-Type: {media_type}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(&part.bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Form {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            body,
        }
    }
}

/// `passerelle-` and 16 hex digits that do not occur in `bytes`.
fn boundary_for(bytes: &[u8], seed: u64) -> String {
    let mut hash = fnv1a(bytes) ^ seed;
    loop {
        let candidate = format!("passerelle-{hash:016x}");
        if !contains(bytes, candidate.as_bytes()) {
            return candidate;
        }
        hash = hash
            .rotate_left(7)
            .wrapping_mul(0x0100_0000_01b3)
            .wrapping_add(1);
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// HTML's escaping of names in `multipart/form-data`: `"` → `%22`, CR → `%0D`, LF → `%0A`.
fn escape(value: &str) -> String {
    value
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boundary(form: &Form) -> &str {
        form.content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap()
    }

    #[test]
    fn parts_are_written_exactly_as_rfc_7578_says() {
        let form = FormBuilder::new()
            .text("model_id", "abc")
            .typed("flowInfo", "application/json", b"{}")
            .file("document", "ticket.jpg", "image/jpeg", b"\xFF\xD8data")
            .build(7);
        let b = boundary(&form);
        assert!(b.starts_with("passerelle-") && b.len() == 27, "{b}");
        let expected = [
            format!("--{b}\r\n").into_bytes(),
            b"Content-Disposition: form-data; name=\"model_id\"\r\n\r\nabc\r\n".to_vec(),
            format!("--{b}\r\n").into_bytes(),
            b"Content-Disposition: form-data; name=\"flowInfo\"\r\n".to_vec(),
            b"Content-Type: application/json\r\n\r\n{}\r\n".to_vec(),
            format!("--{b}\r\n").into_bytes(),
            b"Content-Disposition: form-data; name=\"document\"; filename=\"ticket.jpg\"\r\n"
                .to_vec(),
            b"Content-Type: image/jpeg\r\n\r\n\xFF\xD8data\r\n".to_vec(),
            format!("--{b}--\r\n").into_bytes(),
        ]
        .concat();
        assert_eq!(form.body, expected);
        assert_eq!(
            FormBuilder::new()
                .text("model_id", "abc")
                .typed("flowInfo", "application/json", b"{}")
                .file("document", "ticket.jpg", "image/jpeg", b"\xFF\xD8data")
                .build(7),
            form,
            "the same content and seed give the same bytes"
        );
    }

    #[test]
    fn the_boundary_never_occurs_in_the_content() {
        let first = boundary_for(b"abc", 1);
        let tricky = format!("xx{first}yy");
        let second = boundary_for(
            tricky.as_bytes(),
            1 ^ fnv1a(b"abc") ^ fnv1a(tricky.as_bytes()),
        );
        assert_ne!(first, second);
        assert!(!tricky.contains(&second));
    }

    #[test]
    fn names_cannot_break_the_header() {
        let form = FormBuilder::new()
            .file("doc\"ument", "a\"b\r\nc.jpg", "image/jpeg", b"x")
            .build(0);
        let text = String::from_utf8_lossy(&form.body);
        assert!(
            text.contains("name=\"doc%22ument\"; filename=\"a%22b%0D%0Ac.jpg\""),
            "{text}"
        );
    }

    #[test]
    fn an_empty_form_is_well_formed() {
        let form = FormBuilder::new().build(3);
        assert_eq!(
            form.body,
            format!("--{}--\r\n", boundary(&form)).into_bytes()
        );
    }
}
