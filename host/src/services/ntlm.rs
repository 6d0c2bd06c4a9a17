//! The NTLM messages of HTTP Windows authentication (MS-NLMP), for [`super::http`].
//!
//! Only NTLMv2 is spoken: the negotiate message asks for NTLMv2 with extended session
//! security, and the authenticate message carries an NTLMv2 response computed over the
//! server's challenge and target information (with the server's timestamp when it sends one,
//! as MS-NLMP 3.1.5.1.2 asks). The messages themselves are encoded by the `ntlmclient` crate;
//! what this module adds is the HTTP framing (`WWW-Authenticate: NTLM <base64>`), the choice of
//! flags, and an authenticate message without a session key: the host neither signs nor
//! seals, so the key exchange is not negotiated and no key material leaves the host.
//!
//! Over TLS the authenticate message carries the channel binding of the connection
//! (MsvAvChannelBindings: MD5 of a `gss_channel_bindings_struct` holding
//! `tls-server-end-point:` and the hash of the server's certificate, RFC 5929), which
//! Exchange's Extended Protection (on by default since Exchange 2019 CU14) requires.

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

/// The channel binding hash of a TLS connection from the server's certificate (DER):
/// `tls-server-end-point` (RFC 5929) hashes it with its signature's hash, SHA-256 for MD5 and
/// SHA-1, and MS-NLMP carries the MD5 of the whole `gss_channel_bindings_struct`.
pub fn channel_binding(server_certificate: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    let algorithm = x509_parser::parse_x509_certificate(server_certificate)
        .map(|(_, c)| c.signature_algorithm.algorithm.to_id_string())
        .unwrap_or_default();
    let hash: Vec<u8> = match algorithm.as_str() {
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => {
            sha2::Sha384::digest(server_certificate).to_vec()
        }
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => {
            sha2::Sha512::digest(server_certificate).to_vec()
        }
        _ => sha2::Sha256::digest(server_certificate).to_vec(),
    };
    let mut application_data = b"tls-server-end-point:".to_vec();
    application_data.extend_from_slice(&hash);
    // Initiator and acceptor address types and lengths: all zero.
    let mut bindings = vec![0u8; 16];
    bindings.extend_from_slice(&(application_data.len() as u32).to_le_bytes());
    bindings.extend_from_slice(&application_data);
    md5::Md5::digest(&bindings).into()
}

/// The `Authorization` value answering `challenge` (type 3, AUTHENTICATE_MESSAGE), bound to
/// the TLS connection when `binding` is given.
pub fn authenticate_header(
    challenge: &str,
    user: &str,
    domain: &str,
    password: &str,
    binding: Option<[u8; 16]>,
) -> Result<String, NtlmError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(challenge)
        .map_err(|_| NtlmError::Base64)?;
    let challenge = match Message::try_from(bytes.as_slice()) {
        Ok(Message::Challenge(c)) => c,
        Ok(other) => return Err(NtlmError::NotAChallenge(other.message_number())),
        Err(e) => return Err(NtlmError::Challenge(format!("{e:?}"))),
    };
    let mut entries: Vec<TargetInfoEntry> = challenge
        .target_information
        .iter()
        .filter(|e| e.entry_type != TargetInfoType::Terminator)
        .cloned()
        .collect();
    if let Some(binding) = binding {
        entries.push(TargetInfoEntry {
            entry_type: TargetInfoType::ChannelBindings,
            data: binding.to_vec(),
        });
    }
    entries.push(TargetInfoEntry {
        entry_type: TargetInfoType::Terminator,
        data: Vec::new(),
    });
    let target_info: Vec<u8> = entries.iter().flat_map(TargetInfoEntry::to_bytes).collect();
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
            authenticate_header("***", "u", "d", "p", None),
            Err(NtlmError::Base64)
        ));
        let short = base64::engine::general_purpose::STANDARD.encode(b"NTLMSSP\0\x02\0\0\0");
        assert!(authenticate_header(&short, "u", "d", "p", None).is_err());
        let negotiate = negotiate_header().unwrap();
        let token = negotiate.strip_prefix("NTLM ").unwrap();
        assert!(authenticate_header(token, "u", "d", "p", None).is_err());
    }
}
