//! The server side of NTLM (MS-NLMP) as IIS runs it for Windows authentication, written from
//! the specification, not from the client the host uses, so that a test proves the two agree.
//!
//! It reads NEGOTIATE_MESSAGE (2.2.1.1), writes a CHALLENGE_MESSAGE (2.2.1.2) with the target
//! information a domain member sends (NetBIOS and DNS names, timestamp), and checks an
//! AUTHENTICATE_MESSAGE (2.2.1.3) the way a domain controller does: the NTLMv2 response
//! (3.3.2) recomputed from the account's password over the server challenge must match.
//! NTLMv1 and LM-only answers are refused, as LmCompatibilityLevel 5 (the hardened default
//! of current domains) does. Binding a challenge to its TCP connection is the caller's job.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
pub const REQUEST_TARGET: u32 = 0x0000_0004;
pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
pub const NEGOTIATE_128: u32 = 0x2000_0000;
pub const NEGOTIATE_56: u32 = 0x8000_0000;

/// AV_PAIR ids (2.2.2.1).
const MSV_AV_EOL: u16 = 0;
const MSV_AV_NB_COMPUTER_NAME: u16 = 1;
const MSV_AV_NB_DOMAIN_NAME: u16 = 2;
const MSV_AV_DNS_COMPUTER_NAME: u16 = 3;
const MSV_AV_DNS_DOMAIN_NAME: u16 = 4;
const MSV_AV_TIMESTAMP: u16 = 7;
const MSV_AV_CHANNEL_BINDINGS: u16 = 10;

/// The message type of an NTLMSSP token, if it is one.
pub fn message_type(token: &[u8]) -> Option<u32> {
    if token.len() < 12 || &token[..8] != SIGNATURE {
        return None;
    }
    Some(u32::from_le_bytes([
        token[8], token[9], token[10], token[11],
    ]))
}

/// The flags of a NEGOTIATE_MESSAGE, which must ask for NTLM in Unicode.
pub fn read_negotiate(token: &[u8]) -> Result<u32, String> {
    if message_type(token) != Some(1) || token.len() < 16 {
        return Err("not an NTLM NEGOTIATE_MESSAGE".into());
    }
    let flags = u32::from_le_bytes([token[12], token[13], token[14], token[15]]);
    if flags & NEGOTIATE_NTLM == 0 {
        return Err("the NEGOTIATE_MESSAGE does not ask for NTLM".into());
    }
    if flags & NEGOTIATE_UNICODE == 0 {
        return Err("the NEGOTIATE_MESSAGE does not ask for Unicode".into());
    }
    Ok(flags)
}

/// Where the emulated server lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    pub nb_domain: String,
    pub nb_computer: String,
    pub dns_domain: String,
    pub dns_computer: String,
}

pub(crate) fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn av_pair(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// A CHALLENGE_MESSAGE for `server_challenge`; `filetime` is the server's clock in 100 ns
/// ticks since 1601 (MsvAvTimestamp).
pub fn challenge(server_challenge: [u8; 8], names: &ServerNames, filetime: u64) -> Vec<u8> {
    let flags = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_VERSION
        | NEGOTIATE_128
        | NEGOTIATE_56;
    let target_name = utf16(&names.nb_domain);
    let mut target_info = Vec::new();
    av_pair(
        &mut target_info,
        MSV_AV_NB_DOMAIN_NAME,
        &utf16(&names.nb_domain),
    );
    av_pair(
        &mut target_info,
        MSV_AV_NB_COMPUTER_NAME,
        &utf16(&names.nb_computer),
    );
    av_pair(
        &mut target_info,
        MSV_AV_DNS_DOMAIN_NAME,
        &utf16(&names.dns_domain),
    );
    av_pair(
        &mut target_info,
        MSV_AV_DNS_COMPUTER_NAME,
        &utf16(&names.dns_computer),
    );
    av_pair(&mut target_info, MSV_AV_TIMESTAMP, &filetime.to_le_bytes());
    av_pair(&mut target_info, MSV_AV_EOL, &[]);
    const HEADER: usize = 56;
    let mut m = Vec::with_capacity(HEADER + target_name.len() + target_info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    let name_offset = HEADER as u32;
    m.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
    m.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
    m.extend_from_slice(&name_offset.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]);
    let info_offset = name_offset + target_name.len() as u32;
    m.extend_from_slice(&(target_info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(target_info.len() as u16).to_le_bytes());
    m.extend_from_slice(&info_offset.to_le_bytes());
    // Windows Server 2019 (10.0.17763), NTLMSSP_REVISION_W2K3.
    m.extend_from_slice(&[10, 0]);
    m.extend_from_slice(&17763u16.to_le_bytes());
    m.extend_from_slice(&[0, 0, 0, 0x0F]);
    m.extend_from_slice(&target_name);
    m.extend_from_slice(&target_info);
    m
}

/// The fields of an AUTHENTICATE_MESSAGE the server checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub flags: u32,
    pub user: String,
    pub domain: String,
    pub workstation: String,
    pub nt_response: Vec<u8>,
    pub encrypted_session_key: Vec<u8>,
}

fn field(token: &[u8], at: usize) -> Result<&[u8], String> {
    let header = token
        .get(at..at + 8)
        .ok_or("the AUTHENTICATE_MESSAGE is truncated")?;
    let len = usize::from(u16::from_le_bytes([header[0], header[1]]));
    let offset = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    token
        .get(offset..offset + len)
        .ok_or_else(|| "a field of the AUTHENTICATE_MESSAGE points outside it".to_owned())
}

fn text(bytes: &[u8], unicode: bool) -> Result<String, String> {
    if !unicode {
        return String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string());
    }
    if !bytes.len().is_multiple_of(2) {
        return Err("a Unicode field has an odd length".into());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|e| e.to_string())
}

/// Reads an AUTHENTICATE_MESSAGE.
pub fn read_authenticate(token: &[u8]) -> Result<Authenticate, String> {
    if message_type(token) != Some(3) || token.len() < 64 {
        return Err("not an NTLM AUTHENTICATE_MESSAGE".into());
    }
    let flags = u32::from_le_bytes([token[60], token[61], token[62], token[63]]);
    let unicode = flags & NEGOTIATE_UNICODE != 0;
    Ok(Authenticate {
        flags,
        nt_response: field(token, 20)?.to_vec(),
        domain: text(field(token, 28)?, unicode)?,
        user: text(field(token, 36)?, unicode)?,
        workstation: text(field(token, 44)?, unicode)?,
        encrypted_session_key: field(token, 52)?.to_vec(),
    })
}

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes keys of any length.
    let Ok(mut mac) = <Hmac<Md5> as Mac>::new_from_slice(key) else {
        return [0; 16];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2 (3.3.2): HMAC-MD5 keyed by MD4(UTF-16LE(password)) over UTF-16LE(UPPER(user)
/// + domain), with the user and domain as the client wrote them.
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash = Md4::digest(utf16(password));
    let mut identity = utf16(&user.to_uppercase());
    identity.extend(utf16(domain));
    hmac_md5(&nt_hash, &[&identity])
}

/// The channel binding a client must send over a TLS connection whose server certificate
/// (DER, signed with SHA-256) is `certificate`: MD5 of the `gss_channel_bindings_struct`
/// with `tls-server-end-point:` and the certificate's SHA-256 (RFC 5929, MS-NLMP 3.1.5.1.2).
pub fn expected_channel_binding(certificate: &[u8]) -> [u8; 16] {
    use sha2::Digest as _;
    let mut data = b"tls-server-end-point:".to_vec();
    data.extend_from_slice(&sha2::Sha256::digest(certificate));
    let mut bindings = vec![0u8; 16];
    bindings.extend_from_slice(&(data.len() as u32).to_le_bytes());
    bindings.extend_from_slice(&data);
    Md5::digest(&bindings).into()
}

/// The MsvAvChannelBindings the client put in its NTLMv2 response, if any.
pub fn channel_binding_of(auth: &Authenticate) -> Option<Vec<u8>> {
    // NTProofStr (16), then RespType, HiRespType, 6 reserved, time (8), client challenge
    // (8), 4 reserved: the AV pairs start 44 bytes in.
    let mut pairs = auth.nt_response.get(44..)?;
    while pairs.len() >= 4 {
        let id = u16::from_le_bytes([pairs[0], pairs[1]]);
        let len = usize::from(u16::from_le_bytes([pairs[2], pairs[3]]));
        let value = pairs.get(4..4 + len)?;
        match id {
            MSV_AV_EOL => return None,
            MSV_AV_CHANNEL_BINDINGS => return Some(value.to_vec()),
            _ => pairs = &pairs[4 + len..],
        }
    }
    None
}

/// Why an AUTHENTICATE_MESSAGE is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An NTLMv1 or LM answer: refused by policy (LmCompatibilityLevel 5).
    NotV2,
    /// The NTLMv2 proof does not match the password.
    WrongProof,
}

/// Checks the NTLMv2 response of `auth` against `server_challenge` and the password.
pub fn verify_v2(
    auth: &Authenticate,
    server_challenge: [u8; 8],
    password: &str,
) -> Result<(), Refusal> {
    // NTProofStr (16) + blob starting with RespType 1, HiRespType 1 (2.2.2.7).
    if auth.nt_response.len() <= 24 || auth.nt_response[16] != 1 || auth.nt_response[17] != 1 {
        return Err(Refusal::NotV2);
    }
    let (proof, blob) = auth.nt_response.split_at(16);
    let key = ntowf_v2(password, &auth.user, &auth.domain);
    if hmac_md5(&key, &[&server_challenge, blob]) == proof {
        Ok(())
    } else {
        Err(Refusal::WrongProof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntowf_v2_matches_the_specification_example() {
        // MS-NLMP 4.2.4.1.1: User "User", UserDom "Domain", Password "Password".
        assert_eq!(
            ntowf_v2("Password", "User", "Domain"),
            [
                0x0c, 0x86, 0x8a, 0x40, 0x3b, 0xfd, 0x7a, 0x93, 0xa3, 0x00, 0x1e, 0xf2, 0x2e, 0xf0,
                0x2e, 0x3f
            ]
        );
    }

    #[test]
    fn challenge_messages_are_well_formed() {
        let names = ServerNames {
            nb_domain: "CONTOSO".into(),
            nb_computer: "EX01".into(),
            dns_domain: "contoso.com".into(),
            dns_computer: "ex01.contoso.com".into(),
        };
        let m = challenge([1, 2, 3, 4, 5, 6, 7, 8], &names, 42);
        assert_eq!(message_type(&m), Some(2));
        assert_eq!(&m[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let name = field(&m, 12).unwrap();
        assert_eq!(text(name, true).unwrap(), "CONTOSO");
        let info = field(&m, 40).unwrap();
        assert!(info.ends_with(&[0, 0, 0, 0]));
    }

    #[test]
    fn channel_bindings_are_found_in_the_ntlmv2_blob() {
        let mut nt = vec![0u8; 16];
        nt.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
        nt.extend_from_slice(&[0; 20]);
        av_pair(&mut nt, MSV_AV_TIMESTAMP, &[0; 8]);
        av_pair(&mut nt, MSV_AV_CHANNEL_BINDINGS, &[9; 16]);
        av_pair(&mut nt, MSV_AV_EOL, &[]);
        let mut auth = Authenticate {
            flags: NEGOTIATE_UNICODE,
            user: "u".into(),
            domain: String::new(),
            workstation: String::new(),
            nt_response: nt,
            encrypted_session_key: Vec::new(),
        };
        assert_eq!(channel_binding_of(&auth), Some(vec![9; 16]));
        auth.nt_response.truncate(44 + 12);
        auth.nt_response.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(channel_binding_of(&auth), None);
        assert_ne!(
            expected_channel_binding(b"a"),
            expected_channel_binding(b"b")
        );
    }

    #[test]
    fn short_or_foreign_tokens_are_refused() {
        assert_eq!(message_type(b"NTLMSSP"), None);
        assert!(read_negotiate(b"NTLMSSP\0\x01\0\0\0").is_err());
        assert!(read_authenticate(b"NTLMSSP\0\x03\0\0\0").is_err());
    }
}
