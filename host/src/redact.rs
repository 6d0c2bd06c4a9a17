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
    /// Adds a value to redact from now on.
    pub fn register(&self, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let Ok(mut secrets) = self.secrets.write() else {
            return;
        };
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_owned());
            // Longest first, so that a secret containing another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
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
}
