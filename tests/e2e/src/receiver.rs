//! A webhook receiver for the tests: a small HTTP/1.1 server on loopback that records every
//! request (headers, raw body) and answers with scripted statuses, and checks signatures the
//! way the README tells an ERP to, independently of the host's code.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names in lowercase.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The README's check: HMAC-SHA256 over `<X-Passerelle-Timestamp>.<raw body>` with the
    /// secret, hex, compared with `X-Passerelle-Signature` after `sha256=`, and a timestamp
    /// within five minutes. Errors say which part failed.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let timestamp = self.header("x-passerelle-timestamp");
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| format!("timestamp {timestamp:?}"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if (now - ts).abs() > 300 {
            return Err(format!("stale timestamp {ts}"));
        }
        let given = self
            .header("x-passerelle-signature")
            .strip_prefix("sha256=")
            .ok_or("no sha256= prefix")?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // A test need not be constant time; a real receiver must (see the README snippets).
        if expected == given {
            Ok(())
        } else {
            Err("signature mismatch".into())
        }
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Statuses for the next requests, in order; then `otherwise`.
    script: VecDeque<u16>,
    otherwise: u16,
}

/// The running receiver; it stops accepting when the test process ends.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl Receiver {
    /// Answers `script` in order, then `otherwise` to every later request.
    pub fn start(script: &[u16], otherwise: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test receiver");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Mutex::new(Shared {
            received: Vec::new(),
            script: script.iter().copied().collect(),
            otherwise,
        }));
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let s = s.clone();
                std::thread::spawn(move || serve_connection(stream, &s));
            }
        });
        Receiver { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/passerelle", self.addr)
    }

    /// Changes the answer to every later request (the script, if any, first).
    pub fn answer_from_now(&self, status: u16) {
        self.lock().otherwise = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Requests answered 2xx so far.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until `count` requests were answered 2xx, naming `step` on timeout.
    pub fn wait_accepted(&self, step: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.accepted();
            if got.len() >= count {
                return got;
            }
            assert!(
                started.elapsed() < timeout,
                "{step}: {count} accepted deliveries expected within {timeout:?}, got {}: {:?}",
                got.len(),
                self.received()
                    .iter()
                    .map(|r| (r.header("x-passerelle-delivery").to_owned(), r.answered))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn serve_connection(stream: TcpStream, shared: &Mutex<Shared>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            let status = s.script.pop_front().unwrap_or(s.otherwise);
            s.received.push(Received {
                headers,
                body,
                answered: status,
            });
            status
        };
        let answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
