//! HTTP request and response as they cross the boundary. The host sends them with its one
//! client (trust store, timeouts, quotas, redacted logging); plugins only describe them.

use base64::Engine as _;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

/// An HTTP request to be sent by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body bytes, base64 on the wire.
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<u8>,
    /// Per-request timeout in milliseconds; the host applies its default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Header names whose values are secrets (never logged); `Authorization` always is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_headers: Vec<String>,
    /// Authentication the host performs itself, for schemes bound to a connection (NTLM),
    /// which a plugin cannot do with headers alone. Absent: the headers are sent as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<HttpAuth>,
}

/// An authentication handshake the host runs on the plugin's behalf.
///
/// NTLM authenticates a TCP connection, not a request: the negotiate message, the server's
/// challenge and the authenticate message must travel on one kept-alive connection, and
/// later requests on that connection need no credentials. Plugins never hold connections,
/// so the host does it: it keeps authenticated HTTP/1.1 connections per credentials and
/// origin, runs the handshake on a new one, and runs it again when the server asks (401).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum HttpAuth {
    /// NTLMv2 (MS-NLMP), as Windows authentication of IIS (`WWW-Authenticate: NTLM`).
    Ntlm {
        /// The account name, without domain.
        user: String,
        /// The NetBIOS or DNS domain of the account; empty for a local account.
        #[serde(default)]
        domain: String,
        /// Never logged: the host registers it with its redaction.
        password: String,
    },
}

impl HttpAuth {
    /// NTLM credentials from a login written `DOMAIN\user`, `user@domain` or `user`.
    pub fn ntlm(login: &str, password: &str) -> Self {
        let login = login.trim();
        let (domain, user) = match login.split_once('\\') {
            Some((domain, user)) => (domain, user),
            // A UPN is passed whole as the user name with an empty domain, as Windows does.
            None => ("", login),
        };
        HttpAuth::Ntlm {
            user: user.to_owned(),
            domain: domain.to_owned(),
            password: password.to_owned(),
        }
    }
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::Ntlm { user, domain, .. } => f
                .debug_struct("Ntlm")
                .field("user", user)
                .field("domain", domain)
                .field("password", &"***")
                .finish(),
        }
    }
}

impl HttpRequest {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
            secret_headers: Vec::new(),
            auth: None,
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// A header whose value must never be logged (API keys, account headers).
    pub fn secret_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.secret_headers.push(name.to_owned());
        self.header(name, value)
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let raw = format!("{user}:{password}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        self.header("Authorization", format!("Basic {encoded}"))
    }

    /// Lets the host authenticate the request (NTLM); see [`HttpAuth`].
    pub fn auth(mut self, auth: HttpAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json<T: Serialize>(self, value: &T) -> Result<Self, crate::PluginError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| crate::PluginError::internal(format!("cannot encode JSON body: {e}")))?;
        Ok(self.body("application/json", bytes))
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(self, pairs: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.body("application/x-www-form-urlencoded", body)
    }

    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }
}

/// Percent-encodes for `application/x-www-form-urlencoded` (the WHATWG URL Standard's
/// serializer, as the `url` crate implements it): ASCII letters, digits and `*-._` stay,
/// a space becomes `+`, every other byte of the UTF-8 becomes `%XX`.
pub fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An HTTP response, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default, with = "b64")]
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, crate::PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            crate::PluginError::new(
                crate::ErrorKind::Upstream,
                format!(
                    "the provider answered HTTP {} with a body that is not the expected JSON ({e}); first bytes: {}",
                    self.status,
                    self.text().chars().take(200).collect::<String>()
                ),
            )
        })
    }

    /// Seconds from a `Retry-After` header given in seconds.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.header("Retry-After")?.trim().parse().ok()
    }
}

/// Why a request got no HTTP response at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpErrorKind {
    /// The URL is malformed or uses an unsupported scheme.
    InvalidUrl,
    /// DNS failure, connection refused or reset.
    Connect,
    /// The server's certificate is not trusted (unknown issuer, expired, wrong name).
    Tls,
    /// No complete answer within the timeout.
    Timeout,
    /// The instance's quota is spent.
    Quota,
    /// Anything else.
    Other,
}

/// A request that got no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    pub kind: HttpErrorKind,
    pub message: String,
}

impl From<HttpError> for crate::PluginError {
    fn from(e: HttpError) -> Self {
        let kind = match e.kind {
            HttpErrorKind::InvalidUrl => crate::ErrorKind::Config,
            HttpErrorKind::Quota => crate::ErrorKind::RateLimited,
            HttpErrorKind::Timeout => crate::ErrorKind::Timeout,
            _ => crate::ErrorKind::Unavailable,
        };
        crate::PluginError::new(kind, e.message)
    }
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

#[doc(hidden)]
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }

    /// The rule the hand-written encoder applied, byte by byte, before `form_urlencoded`
    /// replaced it: both must agree on every ASCII character and on multi-byte UTF-8.
    #[test]
    fn form_encoding_matches_the_former_hand_written_rule() {
        let former = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".to_owned(),
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let ascii: String = (0u8..=0x7f).map(char::from).collect();
        for sample in [ascii.as_str(), "é€𝄞~!'()", "client_secret=+/x%", ""] {
            assert_eq!(form_encode(sample), former(sample), "{sample:?}");
        }
        let req = HttpRequest::post("http://x")
            .form(&[("grant_type", "client_credentials"), ("scope", "a b")]);
        assert_eq!(req.body, b"grant_type=client_credentials&scope=a+b");
        assert!(req
            .headers
            .iter()
            .any(|(k, v)| k == "Content-Type" && v == "application/x-www-form-urlencoded"));
    }

    #[test]
    fn body_round_trips_as_base64() {
        let req = HttpRequest::post("http://x").body("application/octet-stream", vec![0u8, 255]);
        let json = serde_json::to_string(&req).unwrap();
        let back: HttpRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.body, vec![0u8, 255]);
    }

    #[test]
    fn auth_is_optional_on_the_wire_and_hidden_from_debug() {
        let old = r#"{"method":"GET","url":"http://x"}"#;
        let req: HttpRequest = serde_json::from_str(old).unwrap();
        assert_eq!(req.auth, None);
        assert!(!serde_json::to_string(&req).unwrap().contains("auth"));
        let req = HttpRequest::get("http://x").auth(HttpAuth::ntlm("CORP\\svc", "canary"));
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains(r#""scheme":"ntlm""#), "{json}");
        let back: HttpRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
        assert_eq!(
            back.auth,
            Some(HttpAuth::Ntlm {
                user: "svc".into(),
                domain: "CORP".into(),
                password: "canary".into()
            })
        );
        assert!(!format!("{req:?}").contains("canary"));
        assert_eq!(
            HttpAuth::ntlm("svc@corp.example", "p"),
            HttpAuth::Ntlm {
                user: "svc@corp.example".into(),
                domain: String::new(),
                password: "p".into()
            }
        );
    }
}
