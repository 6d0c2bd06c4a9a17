//! A running `passerelle serve` for the tests that need the HTTP API, the console, the
//! scheduler or hot add: started on a port the OS picks, its output kept for assertions and
//! failure messages, killed when dropped. One harness for every such test.

use crate::{artifacts, TestEnv};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The administrator password every test server is started with.
pub const ADMIN_PASSWORD: &str = "serve-e2e-Pa55word";

/// How long the server may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `passerelle serve --listen 127.0.0.1:0`, with the test's data and plugin directories.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_file: PathBuf,
}

impl Server {
    /// Starts the server with `global` options before `serve` (e.g. `["--log", "info"]`).
    /// The test's plugin files are not signed, so the policy is `allow-unsigned` (`serve`
    /// is strict by default).
    pub fn start(env: &TestEnv, global: &[&str]) -> Server {
        Self::start_with_env(env, global, &[])
    }

    /// [`Server::start`] with extra environment variables for the server process.
    pub fn start_with_env(env: &TestEnv, global: &[&str], vars: &[(&str, &str)]) -> Server {
        let stderr_file = env.root.path().join("serve.stderr");
        let mut child = Command::new(&artifacts().bin)
            .arg("--data-dir")
            .arg(&env.data)
            .arg("--plugin-dir")
            .arg(&env.plugins)
            .args(["--plugin-policy", "allow-unsigned"])
            .args(global)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("PASSERELLE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("PASSERELLE_SECRET_KEY")
            .env_remove("PASSERELLE_PLUGIN_DIRS")
            .env_remove("PASSERELLE_DATA_DIR")
            .env_remove("PASSERELLE_KEY_FILE")
            .env_remove("RUST_LOG")
            .env_remove("PASSERELLE_DATABASE_URL")
            .envs(
                env.database
                    .iter()
                    .map(|url| ("PASSERELLE_DATABASE_URL", url.as_str())),
            )
            .envs(vars.iter().copied())
            .current_dir(env.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_file).expect("server stderr file"))
            .spawn()
            .expect("spawn passerelle serve");
        // Stdout is drained for the server's whole life: an in-process plugin may print
        // there, and a closed pipe would fail its `println!`.
        let stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr_file,
        };
        let started = Instant::now();
        server.addr = loop {
            let found = server.stdout_lines().iter().find_map(|line| {
                let rest = line.strip_prefix("Passerelle console: http://")?;
                rest.split('/').next()?.parse::<SocketAddr>().ok()
            });
            if let Some(addr) = found {
                break addr;
            }
            if started.elapsed() > START_TIMEOUT || server.child.try_wait().ok().flatten().is_some()
            {
                panic!(
                    "`passerelle serve` did not say where it listens within {START_TIMEOUT:?}\n{}",
                    server.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the server printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stdout and stderr so far, for assertions and failure messages.
    pub fn log(&self) -> String {
        format!(
            "--- server stdout\n{}\n--- server stderr\n{}",
            self.stdout_lines().join("\n"),
            std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
        )
    }

    /// Waits until the server's output contains `needle`, naming the step on timeout.
    pub fn wait_for(&self, step: &str, needle: &str) {
        self.wait_for_count(step, needle, 1);
    }

    /// Waits until the server's output contains `needle` `count` times.
    pub fn wait_for_count(&self, step: &str, needle: &str, count: usize) {
        let started = Instant::now();
        while self.log().matches(needle).count() < count {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{step}: {needle:?} not in the server output within 60 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One HTTP/1.1 exchange with the server: (status, body as JSON, or as a string when it
    /// is not JSON).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        http(self.addr, method, path, token, body)
    }

    /// [`Server::http`] with extra request headers; also returns the answer's head.
    pub fn http_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String, Value) {
        http_with_headers(self.addr, method, path, token, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An API token of scope `admin`, created with the command line.
pub fn admin_token(env: &TestEnv) -> String {
    env.ok(&[
        "admin", "token", "create", "--name", "tests", "--scope", "admin",
    ])
    .stdout
    .trim()
    .to_owned()
}

/// A plain HTTP/1.1 exchange on loopback (`Connection: close`): (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let (status, _, body) = http_with_headers(addr, method, path, token, &[], body);
    (status, body)
}

/// [`http`] with extra request headers; also returns the answer's head (status line and
/// headers, as received).
pub fn http_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    request.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (
        status,
        head.to_owned(),
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// The body of a chunked answer.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}
