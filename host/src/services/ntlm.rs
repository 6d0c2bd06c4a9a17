//! The NTLM messages of HTTP Windows authentication (MS-NLMP), for [`super::http`].
//!
//! Only NTLMv2 is spoken: the negotiate message asks for NTLMv2 with extended session
//! security, and the authenticate message carries an NTLMv2 response computed over the
//! server's challenge and target information (with the server's timestamp when it sends one,
//! as MS-NLMP 3.1.5.1.2 asks). The messages themselves are encoded by the `ntlmclient` crate;
//! what this module adds is the HTTP framing (`WWW-Authenticate: NTLM <base64>`), the choice of
//! flags, and an authenticate message without a session key: the host neither signs nor
//! seals, so the key exchange is not negotiated and no key material leaves the host.

use base64::Engine as _;
use ntlmclient::{Flags, Message, TargetInfoEntry, TargetInfoType};

/// The scheme name in `Authorization` and `WWW-Authenticate`.
pub const SCHEME: &str = "NTLM";
/// The workstation name the host gives; servers only log it.
const WORKSTATION: &str = "PASSERELLE";

/// Why an NTLM message could not be produced or read.
#[derive(Debug, thiserror::Error)]
pub enum NtlmError {
    #[error("the server's NTLM challenge is not valid base64")]
    Base64,
    #[error("the server's NTLM challenge cannot be read ({0})")]
    Challenge(String),
    #[error("the server answered an NTLM message that is not a challenge (type {0})")]
    NotAChallenge(u32),
    #[error("cannot encode the NTLM message ({0})")]
    Encode(String),
}

/// The flags of both client messages: Unicode, NTLM with extended session security, and the
/// target information that NTLMv2 responses are computed over.
fn flags() -> Flags {
    Flags::NEGOTIATE_UNICODE
        | Flags::REQUEST_TARGET
        | Flags::NEGOTIATE_NTLM
        | Flags::NEGOTIATE_ALWAYS_SIGN
        | Flags::NEGOTIATE_NTLM2_KEY
        | Flags::NEGOTIATE_TARGET_INFO
        | Flags::NEGOTIATE_128BIT
}

/// The `Authorization` value opening the handshake (type 1, NEGOTIATE_MESSAGE).
pub fn negotiate_header() -> Result<String, NtlmError> {
    let message = Message::Negotiate(ntlmclient::NegotiateMessage {
        flags: flags(),
        supplied_domain: String::new(),
        supplied_workstation: String::new(),
        os_version: Default::default(),
    });
    let bytes = message
        .to_bytes()
        .map_err(|e| NtlmError::Encode(format!("{e:?}")))?;
    Ok(format!(
        "{SCHEME} {}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The base64 challenge of a `WWW-Authenticate: NTLM <challenge>` value, if it is one.
pub fn challenge_of(www_authenticate: &str) -> Option<&str> {
    let (scheme, token) = www_authenticate.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case(SCHEME)
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether a `WWW-Authenticate` value offers NTLM (bare, before a handshake).
pub fn offers_ntlm(www_authenticate: &str) -> bool {
    let scheme = www_authenticate
        .split_whitespace()
        .next()
        .unwrap_or_default();
    scheme.eq_ignore_ascii_case(SCHEME)
}

/// The `Authorization` value answering `challenge` (type 3, AUTHENTICATE_MESSAGE).
pub fn authenticate_header(
    challenge: &str,
    user: &str,
    domain: &str,
    password: &str,
) -> Result<String, NtlmError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(challenge)
        .map_err(|_| NtlmError::Base64)?;
    let challenge = match Message::try_from(bytes.as_slice()) {
        Ok(Message::Challenge(c)) => c,
        Ok(other) => return Err(NtlmError::NotAChallenge(other.message_number())),
        Err(e) => return Err(NtlmError::Challenge(format!("{e:?}"))),
    };
    let target_info: Vec<u8> = challenge
        .target_information
        .iter()
        .flat_map(TargetInfoEntry::to_bytes)
        .collect();
    let time = challenge
        .target_information
        .iter()
        .find(|e| e.entry_type == TargetInfoType::Timestamp)
        .and_then(|e| <[u8; 8]>::try_from(e.data.as_slice()).ok())
        .map(i64::from_le_bytes)
        .unwrap_or_else(ntlmclient::get_ntlm_time);
    let credentials = ntlmclient::Credentials {
        username: user.to_owned(),
        password: password.to_owned(),
        domain: domain.to_owned(),
    };
    let response = ntlmclient::respond_challenge_ntlm_v2(
        challenge.challenge,
        &target_info,
        time,
        &credentials,
    );
    let message = Message::Authenticate(ntlmclient::AuthenticateMessage {
        lm_response: response.lm_response,
        ntlm_response: response.ntlm_response,
        domain_name: credentials.domain.clone(),
        user_name: credentials.username.clone(),
        workstation_name: WORKSTATION.to_owned(),
        // Without NEGOTIATE_KEY_EXCH the field stays empty (MS-NLMP 2.2.1.3).
        session_key: Vec::new(),
        flags: flags() & challenge.flags,
        os_version: Default::default(),
    });
    let bytes = message
        .to_bytes()
        .map_err(|e| NtlmError::Encode(format!("{e:?}")))?;
    Ok(format!(
        "{SCHEME} {}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_is_a_type_1_message() {
        let header = negotiate_header().unwrap();
        let token = header.strip_prefix("NTLM ").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        assert_eq!(&bytes[..8], b"NTLMSSP\0");
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    }

    #[test]
    fn challenges_are_found_in_www_authenticate() {
        assert_eq!(challenge_of("NTLM TlRMTVNT"), Some("TlRMTVNT"));
        assert_eq!(challenge_of("ntlm  abc "), Some("abc"));
        assert_eq!(challenge_of("NTLM"), None);
        assert_eq!(challenge_of("Negotiate abc"), None);
        assert!(offers_ntlm("NTLM"));
        assert!(!offers_ntlm("Basic realm=\"x\""));
    }

    #[test]
    fn garbage_challenges_are_errors_not_panics() {
        assert!(matches!(
            authenticate_header("***", "u", "d", "p"),
            Err(NtlmError::Base64)
        ));
        let short = base64::engine::general_purpose::STANDARD.encode(b"NTLMSSP\0\x02\0\0\0");
        assert!(authenticate_header(&short, "u", "d", "p").is_err());
        let negotiate = negotiate_header().unwrap();
        let token = negotiate.strip_prefix("NTLM ").unwrap();
        assert!(authenticate_header(token, "u", "d", "p").is_err());
    }
}
