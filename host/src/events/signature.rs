//! How a webhook delivery proves where it comes from and when it was sent.
//!
//! The scheme follows Stripe's: the signed payload is `<timestamp>.<raw body>`, where the
//! timestamp is the `X-Passerelle-Timestamp` header (Unix seconds), and
//! `X-Passerelle-Signature` is `sha256=` followed by the lowercase hex HMAC-SHA256 of that
//! payload under the webhook's secret (GitHub's header format). Binding the timestamp into
//! the MAC lets a receiver refuse a captured delivery sent again later: it checks the MAC
//! (in constant time) and that the timestamp is within a few minutes of its clock
//! ([`TOLERANCE_SECS`]), and it may drop event ids (`X-Passerelle-Delivery`) it has already
//! processed, since delivery is at least once.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const EVENT_HEADER: &str = "X-Passerelle-Event";
pub const DELIVERY_HEADER: &str = "X-Passerelle-Delivery";
pub const TIMESTAMP_HEADER: &str = "X-Passerelle-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Passerelle-Signature";
/// Attempt number, from 1 (informational: not signed).
pub const ATTEMPT_HEADER: &str = "X-Passerelle-Attempt";

/// How far a receiver should accept a timestamp from its own clock, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Passerelle-Signature` value of `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex(&mac(secret, timestamp, body).finalize().into_bytes())
    )
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {SIGNATURE_HEADER} header is not `sha256=<64 hex digits>`")]
    Malformed,
    #[error(
        "the signature does not match the body and timestamp: wrong secret, or a changed body"
    )]
    Mismatch,
    #[error("the timestamp is {0} s away from now, more than the {TOLERANCE_SECS} s accepted: a replayed or delayed delivery")]
    Stale(i64),
}

/// What a receiver does: checks the signature of `body` and the timestamp against `now`.
pub fn verify(
    secret: &str,
    timestamp: i64,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let given = signature
        .strip_prefix("sha256=")
        .filter(|h| h.len() == 64)
        .and_then(|h| {
            (0..32)
                .map(|i| u8::from_str_radix(h.get(i * 2..i * 2 + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .ok_or(VerifyError::Malformed)?;
    mac(secret, timestamp, body)
        .verify_slice(&given)
        .map_err(|_| VerifyError::Mismatch)?;
    let skew = (now - timestamp).abs();
    if skew > TOLERANCE_SECS {
        return Err(VerifyError::Stale(skew));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vector computed independently: `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec-test`.
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        assert_eq!(
            sign("whsec-test", 1_700_000_000, br#"{"a":1}"#),
            "sha256=fed7a1a6c799a6367d73724d76bc70c16678908a32a879cd1ded6565ac05cece"
        );
    }

    #[test]
    fn a_wrong_secret_a_changed_body_or_an_old_timestamp_is_detected() {
        let body = br#"{"id":"evt-1"}"#;
        let sig = sign("right-secret", 1000, body);
        assert_eq!(verify("right-secret", 1000, &sig, body, 1100), Ok(()));
        assert_eq!(
            verify("wrong-secret", 1000, &sig, body, 1100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("right-secret", 1000, &sig, br#"{"id":"evt-2"}"#, 1100),
            Err(VerifyError::Mismatch)
        );
        // The timestamp is signed: changing it breaks the signature, keeping it ages it.
        assert_eq!(
            verify("right-secret", 1001, &sig, body, 1100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("right-secret", 1000, &sig, body, 2000),
            Err(VerifyError::Stale(1000))
        );
        assert_eq!(
            verify("right-secret", 1000, "sha1=abc", body, 1000),
            Err(VerifyError::Malformed)
        );
    }
}
