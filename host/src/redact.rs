//! Secret redaction for everything the host writes: logs, test reports, error messages.
//!
//! The host registers every secret value it decrypts or receives (passwords, API keys, OAuth
//! tokens) in one process-wide [`Redactor`]. Log output passes through [`RedactingWriter`],
//! and plugin answers pass through [`redact`] before being shown or stored, so a secret never
//! reaches a screen or a file in plain text, even when a plugin puts it in a panic message.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{OnceLock, RwLock};

/// Shorter values are not treated as secrets: redacting "1" everywhere would ruin output.
const MIN_SECRET_LEN: usize = 4;

/// What replaces a secret.
pub const MASK: &str = "[redacted]";

/// The set of known secret values.
#[derive(Default)]
pub struct Redactor {
    secrets: RwLock<Vec<String>>,
}

impl Redactor {
    /// Adds a value to redact from now on, with the encodings it commonly travels in (see
    /// [`encodings`]).
    pub fn register(&self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let Ok(mut secrets) = self.secrets.write() else {
            return;
        };
        if secrets.iter().any(|s| s == secret) {
            return;
        }
        for form in std::iter::once(secret.to_owned()).chain(encodings(secret)) {
            if form.len() >= MIN_SECRET_LEN && !secrets.contains(&form) {
                secrets.push(form);
            }
        }
        // Longest first, so that a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Ok(secrets) = self.secrets.read() else {
            return Cow::Owned(MASK.to_owned());
        };
        let mut out = Cow::Borrowed(text);
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }
}

/// The forms a secret takes on its way to a provider and back, each of which must be masked
/// too: percent-encoded (query strings, form bodies; upper- and lower-case hex, `+` for
/// space), escaped in JSON and XML, and base64 (alone, and inside `user:secret` of HTTP Basic
/// authentication, where the user name shifts it: for each of the three alignments, the part
/// of the encoding that depends on the secret alone).
pub fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let percent = |upper: bool, plus_for_space: bool| {
        let mut s = String::new();
        for b in secret.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    s.push(char::from(b))
                }
                b' ' if plus_for_space => s.push('+'),
                _ if upper => s.push_str(&format!("%{b:02X}")),
                _ => s.push_str(&format!("%{b:02x}")),
            }
        }
        s
    };
    out.push(percent(true, false));
    out.push(percent(true, true));
    out.push(percent(false, false));
    if let Ok(json) = serde_json::to_string(secret) {
        let inner = json.trim_matches('"').to_owned();
        out.push(inner.replace('/', "\\/"));
        out.push(inner);
    }
    out.push(
        secret
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;"),
    );
    out.push(
        secret
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
    );
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        for shift in 0..3usize {
            let mut bytes = vec![b':'; shift];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = engine.encode(&bytes);
            // Characters that depend only on the secret's bytes: whole 3-byte groups.
            let start = if shift == 0 { 0 } else { 4 };
            let end = (bytes.len() / 3) * 4;
            if end > start + 4 {
                out.push(encoded[start..end].to_owned());
            }
        }
    }
    out.retain(|form| form != secret);
    out.sort();
    out.dedup();
    out
}

/// The process-wide redactor.
pub fn global() -> &'static Redactor {
    static GLOBAL: OnceLock<Redactor> = OnceLock::new();
    GLOBAL.get_or_init(Redactor::default)
}

/// Registers a secret in the process-wide redactor.
pub fn register(secret: &str) {
    global().register(secret);
}

/// Redacts every known secret from `text`.
pub fn redact(text: &str) -> String {
    global().redact(text).into_owned()
}

/// A `tracing_subscriber` writer that redacts each formatted event before writing it.
pub struct RedactingWriter<W: Write> {
    inner: W,
}

impl<W: Write> RedactingWriter<W> {
    pub fn new(inner: W) -> Self {
        RedactingWriter { inner }
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_secret_first_and_ignores_short_values() {
        let r = Redactor::default();
        r.register("abc");
        r.register("canary-1234");
        r.register("canary-1234-long");
        assert_eq!(
            r.redact("x canary-1234-long y canary-1234 abc"),
            "x [redacted] y [redacted] abc"
        );
    }

    #[test]
    fn encoded_forms_of_a_secret_are_masked_too() {
        use base64::Engine as _;
        let r = Redactor::default();
        let secret = "s3cr+t/with=signs&<x>\"q";
        r.register(secret);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for (what, text) in [
            (
                "form body",
                "client_secret=s3cr%2Bt%2Fwith%3Dsigns%26%3Cx%3E%22q&x=1".to_owned(),
            ),
            (
                "lower-case hex",
                "s3cr%2bt%2fwith%3dsigns%26%3cx%3e%22q".to_owned(),
            ),
            (
                "json",
                serde_json::to_string(&serde_json::json!({ "k": secret })).unwrap(),
            ),
            (
                "xml",
                "<p>s3cr+t/with=signs&amp;&lt;x&gt;&quot;q</p>".to_owned(),
            ),
            (
                "basic, user of 5",
                format!("Basic {}", b64(&format!("alice:{secret}"))),
            ),
            (
                "basic, user of 6",
                format!("Basic {}", b64(&format!("alice2:{secret}"))),
            ),
            (
                "basic, user of 7",
                format!("Basic {}", b64(&format!("alice23:{secret}"))),
            ),
        ] {
            let out = r.redact(&text);
            assert!(out.contains(MASK), "{what}: {out}");
            assert!(!out.contains("with"), "{what}: {out}");
        }
    }
}
