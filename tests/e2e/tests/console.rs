//! The web console and HTTP API end to end: the real `passerelle serve` with the real Sirene
//! plugin library, the Sirene emulator, and headless Chromium driven by
//! `tests/console/console.mjs` (playwright-core with Debian's Chromium).
//!
//! Nothing is skipped: without Node.js, Chromium or the script's `node_modules`, the test
//! fails and says which install step of `.ci/run` to run.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use passerelle_e2e::{artifacts, TestEnv};
use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "console-e2e-Pa55word";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// `passerelle serve` on a port the OS picks; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: mpsc::Receiver<String>,
    stderr_file: PathBuf,
}

impl Server {
    fn start(env: &TestEnv) -> Server {
        let stderr_file = env.root.path().join("serve.stderr");
        let mut child = Command::new(&artifacts().bin)
            .arg("--data-dir")
            .arg(&env.data)
            .arg("--plugin-dir")
            .arg(&env.plugins)
            // The test's plugin files are not signed; `serve` is strict by default.
            .args(["--plugin-policy", "allow-unsigned"])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("PASSERELLE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("PASSERELLE_SECRET_KEY")
            .env_remove("PASSERELLE_PLUGIN_DIRS")
            .env_remove("PASSERELLE_DATA_DIR")
            .env_remove("RUST_LOG")
            .current_dir(env.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_file).unwrap())
            .spawn()
            .expect("spawn passerelle serve");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut seen = Vec::new();
        let addr = loop {
            let left = Duration::from_secs(60).saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix("Passerelle console: http://") {
                        break rest.split('/').next().unwrap().parse().unwrap();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "`passerelle serve` did not say where it listens within 60 s\n--- stdout\n{}\n--- stderr\n{}",
                        seen.join("\n"),
                        std::fs::read_to_string(&stderr_file).unwrap_or_default()
                    );
                }
            }
        };
        assert!(
            seen.iter()
                .any(|l| l.contains("Created the administrator account `admin`")),
            "{seen:?}"
        );
        assert!(
            !seen.iter().any(|l| l.contains(ADMIN_PASSWORD)),
            "the password was printed"
        );
        Server {
            child,
            addr,
            stdout: rx,
            stderr_file,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn logs(&self) -> String {
        let out: Vec<String> = self.stdout.try_iter().collect();
        format!(
            "--- server stdout\n{}\n--- server stderr\n{}",
            out.join("\n"),
            std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 exchange on 127.0.0.1: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
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
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails with the install step to run when a browser-test prerequisite is missing.
fn check_prerequisites(script_dir: &Path) -> PathBuf {
    let hint = "run the install step of .ci/run: `apt-get install -y chromium chromium-driver nodejs npm` and `npm ci --prefix tests/console`";
    let node = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!("Node.js is needed for the console test but `node` cannot run ({e}); {hint}")
        });
    assert!(node.status.success(), "`node --version` failed; {hint}");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "{} not found: the console test needs Debian's Chromium; {hint}",
        chromium.display()
    );
    assert!(
        script_dir
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "{} has no node_modules/playwright-core; {hint}",
        script_dir.display()
    );
    chromium
}

#[test]
fn console_in_a_browser_configures_tests_and_audits_sirene() {
    let script_dir = repo_root().join("tests/console");
    let chromium = check_prerequisites(&script_dir);
    let emulator = SireneEmulator::start(SireneOptions::default()).unwrap();
    let env = TestEnv::with_plugins(&["passerelle_sirene"]);
    let server = Server::start(&env);
    let screenshot = artifacts()
        .dir
        .parent()
        .unwrap()
        .join("console-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);

    // The browser scenario.
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(script_dir.join("console.mjs"))
        .current_dir(&script_dir)
        .env("CONSOLE_URL", server.url())
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SIRENE_BASE_URL", emulator.base_url())
        .env("SIRENE_API_KEY", &emulator.options().api_key)
        .env("SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(out).read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(err).read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            panic!(
                "the browser scenario did not finish within {SCRIPT_TIMEOUT:?}\n{}",
                server.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        status.success(),
        "the browser scenario failed ({status})\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n{}",
        server.logs()
    );
    assert!(stdout.contains("console scenario passed"), "{stdout}");
    eprintln!("{stdout}");

    // What the browser did is what the host has.
    let show = env.ok(&["config", "show", "sirene", "--json"]).json();
    assert_eq!(show["enabled"], true);
    let field = |name: &str| {
        show["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(field("base_url")["value"], emulator.base_url());
    assert_eq!(field("timeout_secs")["value"], 17);
    assert_eq!(field("api_key")["state"], "set");
    assert!(!env.data_dump().contains(&emulator.options().api_key));
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );

    // API tokens from the command line, against the running server.
    let token = env
        .ok(&[
            "admin",
            "token",
            "create",
            "--name",
            "erp",
            "--scope",
            "capabilities",
        ])
        .stdout
        .trim()
        .to_owned();
    assert!(token.starts_with("pst_"), "{token}");
    let (code, company) = http(
        server.addr,
        "POST",
        "/api/capabilities/company.lookup",
        Some(&token),
        Some(r#"{"id": "21920023500014"}"#),
    );
    assert_eq!(code, 200, "{company}");
    assert_eq!(company["legal_name"], "COMMUNE DE CLAMART");
    let (code, body) = http(server.addr, "GET", "/api/instances", Some(&token), None);
    assert_eq!((code, body["code"].as_str()), (403, Some("forbidden")));
    let (code, _) = http(server.addr, "GET", "/api/openapi.json", None, None);
    assert_eq!(code, 401);
    env.ok(&["admin", "token", "revoke", "erp"]);
    let (code, body) = http(
        server.addr,
        "POST",
        "/api/capabilities/company.lookup",
        Some(&token),
        Some(r#"{"id": "21920023500014"}"#),
    );
    assert_eq!(
        (code, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let list = env.ok(&["admin", "token", "list", "--json"]).json();
    assert!(list[0]["revoked_ms"].is_i64(), "{list}");
    assert!(!list.to_string().contains(&token));

    // Passwords: too short is refused; a new one is taken from standard input.
    env.run_with_stdin(&["admin", "set-password"], Some("short\n"))
        .expect_code(3)
        .expect_output("at least 12 characters");
    env.run_with_stdin(&["admin", "set-password"], Some("another-long-password\n"))
        .expect_code(0);
    let dump = env.data_dump();
    assert!(!dump.contains("another-long-password") && !dump.contains(ADMIN_PASSWORD));
    drop(server);
}
