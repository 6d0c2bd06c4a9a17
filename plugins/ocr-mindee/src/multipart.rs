//! `multipart/form-data` bodies (RFC 7578), built by hand: the host's HTTP request carries
//! bytes, and one file part is all Mindee needs.
//!
//! The boundary is derived from the content and checked against it, so it can never occur
//! inside the file (RFC 2046 §5.1.1). File names are already cleaned by
//! [`crate::document::file_name`]; the quote and line breaks that could end the header
//! early are escaped here again, as the HTML standard does, in case a caller skips it.

/// A body and the `Content-Type` header that describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub content_type: String,
    pub body: Vec<u8>,
}

/// A form with one file part.
pub fn file_form(field: &str, file_name: &str, media_type: &str, bytes: &[u8], seed: u64) -> Form {
    form_with_fields(&[], field, file_name, media_type, bytes, seed)
}

/// A form with text fields (API v2's `model_id`) and then one file part. The boundary is
/// checked against the text values too.
pub fn form_with_fields(
    fields: &[(&str, &str)],
    field: &str,
    file_name: &str,
    media_type: &str,
    bytes: &[u8],
    seed: u64,
) -> Form {
    let texts: Vec<u8> = fields
        .iter()
        .flat_map(|(_, v)| v.as_bytes().iter().copied())
        .collect();
    let boundary = boundary_for(&[texts.as_slice(), bytes].concat(), seed);
    let mut body = Vec::with_capacity(bytes.len() + 256 * (fields.len() + 1));
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                escape(name)
            )
            .as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        format!(
            "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n",
            escape(field),
            escape(file_name)
        )
        .as_bytes(),
    );
    body.extend_from_slice(format!("Content-Type: {media_type}\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Form {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        body,
    }
}

/// A well-formed form with no part at all.
pub fn empty_form(seed: u64) -> Form {
    let boundary = boundary_for(&[], seed);
    Form {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        body: format!("--{boundary}--\r\n").into_bytes(),
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

    #[test]
    fn one_file_part_exactly_as_rfc_7578_says() {
        let form = file_form("document", "ticket.jpg", "image/jpeg", b"\xFF\xD8data", 7);
        let boundary = form
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert!(boundary.starts_with("passerelle-") && boundary.len() == 27);
        let expected = [
            format!("--{boundary}\r\n").into_bytes(),
            b"Content-Disposition: form-data; name=\"document\"; filename=\"ticket.jpg\"\r\n"
                .to_vec(),
            b"Content-Type: image/jpeg\r\n\r\n".to_vec(),
            b"\xFF\xD8data".to_vec(),
            format!("\r\n--{boundary}--\r\n").into_bytes(),
        ]
        .concat();
        assert_eq!(form.body, expected);
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
        let form = file_form("document", "a\"b\r\nc.jpg", "image/jpeg", b"x", 0);
        let text = String::from_utf8_lossy(&form.body);
        assert!(text.contains("filename=\"a%22b%0D%0Ac.jpg\""), "{text}");
    }

    #[test]
    fn text_fields_come_before_the_file() {
        let form = form_with_fields(
            &[("model_id", "abc-123")],
            "file",
            "t.tif",
            "image/tiff",
            b"II*\0",
            1,
        );
        let boundary = form
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let expected = [
            format!("--{boundary}\r\n").into_bytes(),
            b"Content-Disposition: form-data; name=\"model_id\"\r\n\r\nabc-123\r\n".to_vec(),
            format!("--{boundary}\r\n").into_bytes(),
            b"Content-Disposition: form-data; name=\"file\"; filename=\"t.tif\"\r\n".to_vec(),
            b"Content-Type: image/tiff\r\n\r\nII*\0".to_vec(),
            format!("\r\n--{boundary}--\r\n").into_bytes(),
        ]
        .concat();
        assert_eq!(form.body, expected);
    }

    #[test]
    fn an_empty_form_is_just_the_closing_delimiter() {
        let form = empty_form(3);
        let boundary = form
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        assert_eq!(form.body, format!("--{boundary}--\r\n").into_bytes());
    }
}
