//! `application/x-www-form-urlencoded` bodies, as OAuth2 token endpoints receive them
//! (RFC 6749 §4.4, WHATWG URL "application/x-www-form-urlencoded parsing"), decoded by the
//! maintained `form_urlencoded` crate rather than by hand.

use std::collections::HashMap;

/// The name/value pairs of a body, in order, `+` and `%XX` decoded (invalid escapes are kept
/// as they are, invalid UTF-8 is replaced, as the WHATWG parser does).
pub fn pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The pairs as a map; a name given twice keeps its last value.
pub fn map(body: &str) -> HashMap<String, String> {
    pairs(body).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_percent_and_keeps_invalid_escapes() {
        assert_eq!(
            pairs("grant_type=client_credentials&scope=a+b%2Fc&x=%zz&&flag"),
            vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("scope".to_owned(), "a b/c".to_owned()),
                ("x".to_owned(), "%zz".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert_eq!(map("a=1&a=2")["a"], "2");
    }
}
