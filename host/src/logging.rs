//! The host's log output on standard error: human-readable text by default, or one JSON
//! object per line (`--log-format json`) for log collectors (Loki, Elasticsearch, journald
//! forwarders) that would otherwise have to parse text.
//!
//! Both formats go through the same [`RedactingWriter`], which sees each formatted event
//! whole: a secret is masked in its plain form and in the forms it takes inside a JSON
//! string (escaped quotes, backslashes, `\/`), see [`crate::redact::encodings`].

use crate::redact::RedactingWriter;

/// How log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message` and the event's fields.
    Json,
}

/// Installs the process-wide subscriber writing to standard error. `default` is the filter
/// (`info`, `passerelle=debug`…) unless `RUST_LOG` is set.
pub fn init(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingWriter::new(std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_the_fields_and_never_a_secret() {
        // Quotes, a backslash and a slash: each is written differently inside a JSON string.
        let secret = "json-\"log\\secret/42";
        crate::redact::register(secret);
        let out = Buffer::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || RedactingWriter::new(writer.clone()))
            .with_target(false)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(instance = "p", url = %format!("https://x.test/{secret}"), "http");
            tracing::warn!("token refused: {secret}");
        });
        let text = String::from_utf8(out.0.lock().expect("buffer").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "http");
        assert_eq!(lines[0]["instance"], "p");
        assert_eq!(lines[0]["url"], "https://x.test/[redacted]");
        assert_eq!(lines[1]["message"], "token refused: [redacted]");
        for form in std::iter::once(secret.to_owned()).chain(crate::redact::encodings(secret)) {
            assert!(!text.contains(&form), "{form:?} in {text}");
        }
        assert!(
            !text.contains("secret/42") && !text.contains("secret\\/42"),
            "{text}"
        );
    }
}
