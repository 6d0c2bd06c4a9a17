use super::*;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;

/// One HTTP/1.1 exchange on `stream`: status and `WWW-Authenticate` values.
fn exchange(stream: &mut TcpStream, authorization: Option<&str>) -> (u16, Vec<String>) {
    let body = "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id=\"calendar\"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>";
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {EWS_PATH} HTTP/1.1\r\nHost: ex01\r\nContent-Type: text/xml; charset=utf-8\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let (head, length) = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed");
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            break (head, end + 4 + length);
        }
    };
    while raw.len() < length {
        let n = stream.read(&mut buf).unwrap();
        raw.extend_from_slice(&buf[..n]);
    }
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let challenges = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    (status, challenges)
}

fn negotiate() -> String {
    let mut m = b"NTLMSSP\0\x01\0\0\0".to_vec();
    let flags = ntlm::NEGOTIATE_UNICODE | ntlm::NEGOTIATE_NTLM | ntlm::REQUEST_TARGET;
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&[0; 16]);
    format!(
        "NTLM {}",
        base64::engine::general_purpose::STANDARD.encode(m)
    )
}

/// An NTLMv2 AUTHENTICATE_MESSAGE answering `challenge` (a `WWW-Authenticate` value).
fn authenticate(challenge: &str, user: &str, domain: &str, password: &str) -> String {
    let c = base64::engine::general_purpose::STANDARD
        .decode(challenge.strip_prefix("NTLM ").unwrap())
        .unwrap();
    let server_challenge: [u8; 8] = c[24..32].try_into().unwrap();
    let info_len = u16::from_le_bytes([c[40], c[41]]) as usize;
    let info_off = u32::from_le_bytes(c[44..48].try_into().unwrap()) as usize;
    let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
    blob.extend_from_slice(&dates::filetime_now().to_le_bytes());
    blob.extend_from_slice(&[7; 8]);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(&c[info_off..info_off + info_len]);
    blob.extend_from_slice(&[0; 4]);
    let key = ntlm::ntowf_v2(password, user, domain);
    let mut nt = ntlm::hmac_md5(&key, &[&server_challenge, &blob]).to_vec();
    nt.extend_from_slice(&blob);
    let fields = [
        vec![0u8; 24],
        nt,
        ntlm::utf16(domain),
        ntlm::utf16(user),
        ntlm::utf16("WS"),
        Vec::new(),
    ];
    let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
    let mut payload = Vec::new();
    let mut offset = 72u32;
    for f in &fields {
        m.extend_from_slice(&(f.len() as u16).to_le_bytes());
        m.extend_from_slice(&(f.len() as u16).to_le_bytes());
        m.extend_from_slice(&offset.to_le_bytes());
        offset += f.len() as u32;
        payload.extend_from_slice(f);
    }
    let flags = ntlm::NEGOTIATE_UNICODE | ntlm::NEGOTIATE_NTLM;
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&payload);
    format!(
        "NTLM {}",
        base64::engine::general_purpose::STANDARD.encode(m)
    )
}

fn windows_only() -> EwsEmulator {
    EwsEmulator::start(EwsOptions {
        auth: ServerAuth::windows_only(),
        ..EwsOptions::default()
    })
    .unwrap()
}

#[test]
fn windows_only_vdir_refuses_basic_and_offers_negotiate_and_ntlm() {
    let ews = windows_only();
    let mut s = TcpStream::connect(ews.server.addr()).unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("svc@contoso.com:S3cret-pass")
    );
    let (status, offered) = exchange(&mut s, Some(&basic));
    assert_eq!(status, 401);
    assert_eq!(offered, ["Negotiate", "NTLM"]);
}

#[test]
fn ntlm_authenticates_the_connection_that_was_challenged_and_no_other() {
    let ews = windows_only();
    let mut first = TcpStream::connect(ews.server.addr()).unwrap();
    let (status, offered) = exchange(&mut first, Some(&negotiate()));
    assert_eq!(status, 401);
    let challenge = offered[0].clone();
    assert!(challenge.starts_with("NTLM "), "{offered:?}");
    let answer = authenticate(&challenge, "svc", "CONTOSO", "S3cret-pass");

    // The right answer on another connection is refused, and spends the challenge.
    let mut other = TcpStream::connect(ews.server.addr()).unwrap();
    assert_eq!(exchange(&mut other, Some(&answer)).0, 401);
    assert_eq!(ews.ntlm_handshakes(), 0);

    // On the challenged connection it works; the connection stays authenticated.
    let (status, offered) = exchange(&mut first, Some(&negotiate()));
    assert_eq!(status, 401);
    let answer = authenticate(&offered[0], "svc", "CONTOSO", "S3cret-pass");
    assert_eq!(exchange(&mut first, Some(&answer)).0, 200);
    assert_eq!(exchange(&mut first, None).0, 200);
    assert_eq!(exchange(&mut other, None).0, 401);
    assert_eq!(ews.ntlm_handshakes(), 1);

    // A wrong password, or a UPN with a domain, is refused.
    let mut third = TcpStream::connect(ews.server.addr()).unwrap();
    let (_, offered) = exchange(&mut third, Some(&negotiate()));
    let wrong = authenticate(&offered[0], "svc", "CONTOSO", "wrong");
    assert_eq!(exchange(&mut third, Some(&wrong)).0, 401);
    let (_, offered) = exchange(&mut third, Some(&negotiate()));
    let upn = authenticate(&offered[0], "svc@contoso.com", "", "S3cret-pass");
    assert_eq!(exchange(&mut third, Some(&upn)).0, 200);
}

const REQUEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>jane@contoso.com</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body><m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem><t:Subject>R&amp;D &lt;x&gt;</t:Subject></t:CalendarItem></m:Items></m:CreateItem></soap:Body></soap:Envelope>"#;

#[test]
fn soap_parts_are_standalone_documents() {
    let parts = soap_parts(REQUEST).unwrap();
    let names: Vec<_> = parts.iter().map(|p| (p.kind, p.name.as_str())).collect();
    assert_eq!(
        names,
        [
            (PartKind::Header, "RequestServerVersion"),
            (PartKind::Header, "ExchangeImpersonation"),
            (PartKind::Operation, "CreateItem")
        ]
    );
    for p in &parts {
        let doc = parse(&p.xml).unwrap();
        assert_eq!(doc.name, p.name);
    }
    let op = &parts[2].xml;
    assert!(
        op.starts_with("<m:CreateItem SendMeetingInvitations=\"SendToNone\""),
        "{op}"
    );
    assert!(op.contains("xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\""));
    assert!(op.contains("xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\""));
    assert!(op.contains("R&amp;D &lt;x&gt;"), "{op}");
    let doc = parse(op).unwrap();
    assert_eq!(
        doc.path(&[(MESSAGES_NS, "Items"), (TYPES_NS, "CalendarItem")])
            .unwrap()
            .child_text(TYPES_NS, "Subject"),
        Some("R&D <x>")
    );
}

#[test]
fn form_bodies_are_decoded() {
    assert_eq!(
        form::pairs("scope=https%3A%2F%2Foutlook.office365.com%2F.default&a=b+c"),
        [
            ("scope".to_owned(), EWS_SCOPE.to_owned()),
            ("a".to_owned(), "b c".to_owned())
        ]
    );
}

#[test]
fn versions_are_ranked_like_the_schema() {
    assert!(version_rank("Exchange2010_SP2") < version_rank("Exchange2013"));
    assert_eq!(version_rank("Exchange2019"), None);
}
