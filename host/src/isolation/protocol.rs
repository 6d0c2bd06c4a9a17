//! The frames between the host and a plugin worker process.
//!
//! A frame is a 4-byte little-endian length followed by that many bytes of JSON. The worker
//! writes [`Event`]s on its protocol output and reads [`Request`]s on its protocol input.
//! Everything a plugin exchanges at its boundary is already JSON text, so the frames carry
//! those texts unchanged as strings: the same plugin answers are decoded by the same code in
//! both isolation modes.
//!
//! One call at a time per worker: the host sends a call, then answers the worker's
//! [`Event::Callback`]s (possibly several at once, from the plugin's own threads, matched
//! by id) until [`Event::Done`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Largest frame accepted (plugin inputs and outputs, e.g. documents in base64, included).
pub const MAX_FRAME: usize = 512 << 20;

/// A boundary answer: the JSON text of a value, or the JSON text of a `PluginError`.
/// Mirrors the `RResult<RString, RString>` of the root module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(String),
    Err(String),
}

/// Host → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Validate {
        config: String,
    },
    Quotas {
        config: String,
    },
    Test {
        config: String,
    },
    Invoke {
        operation: String,
        input: String,
        config: String,
    },
    RunTask {
        task: String,
        config: String,
    },
    /// The answer to the worker's callback `id`.
    Reply {
        id: u64,
        answer: Answer,
    },
}

/// Worker → host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The library is mapped; what the host needs to check it (same checks as in-process).
    Ready {
        pid: u32,
        /// What the root module's `api_version` says.
        api_version: String,
        manifest: Answer,
        config_schema: Answer,
    },
    /// The library could not be mapped; the reason is the loader's refusal text.
    Refused { reason: String },
    /// The plugin called a host service during the current call.
    Callback {
        id: u64,
        name: String,
        input: String,
    },
    /// The current call finished.
    Done { answer: Answer },
}

/// Writes one frame in a single `write_all` (one syscall on an unbuffered pipe).
pub fn write_frame<W: Write, T: Serialize>(out: &mut W, message: &T) -> io::Result<()> {
    let mut bytes = vec![0u8; 4];
    serde_json::to_writer(&mut bytes, message).map_err(io::Error::other)?;
    let len = u32::try_from(bytes.len() - 4)
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::other("frame too large"))?;
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    out.write_all(&bytes)?;
    out.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of stream (between frames).
pub fn read_frame<R: Read, T: DeserializeOwned>(input: &mut R) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "frame of {len} bytes is larger than {MAX_FRAME}"
        )));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        let call = Request::Invoke {
            operation: "other.echo".into(),
            input: r#"{"a":"é\n"}"#.into(),
            config: "{}".into(),
        };
        write_frame(&mut buf, &call).unwrap();
        write_frame(
            &mut buf,
            &Request::Reply {
                id: 7,
                answer: Answer::Err("{}".into()),
            },
        )
        .unwrap();
        let mut r = buf.as_slice();
        match read_frame::<_, Request>(&mut r).unwrap() {
            Some(Request::Invoke { input, .. }) => assert_eq!(input, r#"{"a":"é\n"}"#),
            other => panic!("{other:?}"),
        }
        match read_frame::<_, Request>(&mut r).unwrap() {
            Some(Request::Reply { id: 7, answer }) => assert_eq!(answer, Answer::Err("{}".into())),
            other => panic!("{other:?}"),
        }
        assert!(read_frame::<_, Request>(&mut r).unwrap().is_none());
    }

    #[test]
    fn truncated_and_oversized_frames_are_errors() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Event::Done {
                answer: Answer::Ok("1".into()),
            },
        )
        .unwrap();
        let mut short = &buf[..buf.len() - 1];
        assert!(read_frame::<_, Event>(&mut short).is_err());
        let mut half_header = &buf[..2];
        assert!(read_frame::<_, Event>(&mut half_header).is_err());
        let huge = (u32::MAX).to_le_bytes();
        assert!(read_frame::<_, Event>(&mut huge.as_slice()).is_err());
    }
}
