//! Reading the `Authorization` header (RFC 7617 Basic), as token endpoints and the
//! Universign RPC endpoint receive client credentials.

use axum::http::{header, HeaderMap};
use base64::Engine as _;

/// The user and password of `Authorization: Basic …`, or `None` when the header is absent,
/// of another scheme, not base64, not UTF-8 or without a colon. The scheme name is matched
/// without regard to case (RFC 7235 §2.1).
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn reads_basic_credentials_and_refuses_the_rest() {
        // "user:pa:ss" — the password may hold colons.
        assert_eq!(
            basic(&with("Basic dXNlcjpwYTpzcw==")),
            Some(("user".to_owned(), "pa:ss".to_owned()))
        );
        assert!(basic(&with("basic dXNlcjpwYTpzcw==")).is_some());
        assert_eq!(basic(&with("Bearer dXNlcjpwYTpzcw==")), None);
        assert_eq!(basic(&with("Basic not-base64!")), None);
        assert_eq!(basic(&with("Basic dXNlcg==")), None);
        assert_eq!(basic(&HeaderMap::new()), None);
    }
}
