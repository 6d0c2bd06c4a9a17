//! The `multipart/form-data` bodies Mindee reads (RFC 7578): one file part, after API v2's
//! text fields. Built by plugin-api's [`FormBuilder`], which chooses a boundary that does not
//! occur in the content and escapes names; file names are cleaned before by
//! [`crate::document::file_name`]. The tests below pin the bytes the plugin sent when it
//! built them by hand, boundary included.

pub use passerelle_plugin_api::multipart::Form;
use passerelle_plugin_api::multipart::FormBuilder;

/// A form with one file part.
pub fn file_form(field: &str, file_name: &str, media_type: &str, bytes: &[u8], seed: u64) -> Form {
    form_with_fields(&[], field, file_name, media_type, bytes, seed)
}

/// A form with text fields (API v2's `model_id`) and then one file part.
pub fn form_with_fields(
    fields: &[(&str, &str)],
    field: &str,
    file_name: &str,
    media_type: &str,
    bytes: &[u8],
    seed: u64,
) -> Form {
    fields
        .iter()
        .fold(FormBuilder::new(), |form, (name, value)| {
            form.text(name, value)
        })
        .file(field, file_name, media_type, bytes)
        .build(seed)
}

/// A well-formed form with no part at all.
pub fn empty_form(seed: u64) -> Form {
    FormBuilder::new().build(seed)
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
        // The boundary the former hand-written builder derived from the same content and seed.
        assert_eq!(boundary, "passerelle-27341a08110fba15");
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
        assert_eq!(boundary, "passerelle-d300442ee4d3c047");
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
