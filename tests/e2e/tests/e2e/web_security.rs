//! The web console's defences as the real `passerelle serve` applies them: `Secure` cookies
//! behind a TLS proxy (`[server]` of host.toml), the redirect after sign-in kept on this
//! server, a forged sign-in refused by its Origin, and private data files.

use passerelle_e2e::serve::{Server, ADMIN_PASSWORD};
use passerelle_e2e::TestEnv;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One raw HTTP/1.1 exchange: (status, head lines, body).
fn exchange(addr: SocketAddr, request: &str) -> (u16, Vec<String>, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let lines: Vec<String> = head.lines().map(str::to_owned).collect();
    let status = lines[0].split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, lines, body.to_owned())
}

fn headers<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    lines
        .iter()
        .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim())
        .collect()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Gets a sign-in form (with `extra` headers), then posts it with `next` and `extra`.
fn sign_in(server: &Server, next: &str, extra: &str) -> (u16, Vec<String>, String) {
    let addr = server.addr;
    let (status, lines, body) = exchange(
        addr,
        &format!("GET /login HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"),
    );
    assert_eq!(status, 200, "{body}");
    let cookie = headers(&lines, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with("passerelle_login="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let marker = "name=\"_csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    let token = body[start..].split('"').next().unwrap();
    let form = format!(
        "_csrf={token}&username=admin&password={}&next={}",
        enc(ADMIN_PASSWORD),
        enc(next)
    );
    exchange(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\n{extra}Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    )
}

#[test]
fn serve_behind_a_tls_proxy_sets_secure_cookies_and_redirects_only_to_itself() {
    // Checks the modes of the data directory's files: embedded backend.
    let env = TestEnv::with_plugins(&["passerelle_sirene"]).embedded();
    std::fs::create_dir_all(&env.data).unwrap();
    std::fs::write(env.data.join("host.toml"), "[server]\ntrust_proxy = true\n").unwrap();
    let server = Server::start(&env, &[]);
    // Through the TLS proxy: every cookie Secure.
    let (status, lines, body) = sign_in(&server, "/plugins", "X-Forwarded-Proto: https\r\n");
    assert_eq!(status, 303, "{body}\n{}", server.log());
    assert_eq!(headers(&lines, "location"), ["/plugins"]);
    let cookies = headers(&lines, "set-cookie");
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
    // Plain HTTP: not Secure (the sign-in form's cookie shows it without a sign-in, which
    // costs seconds of password hashing in a debug build).
    let addr = server.addr;
    let (_, lines, _) = exchange(
        addr,
        &format!("GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    let cookies = headers(&lines, "set-cookie");
    assert!(!cookies.is_empty() && cookies.iter().all(|c| !c.contains("Secure")));
    // Regression: a newline in `next` gave a 500 with the session cookie set (the other
    // payloads are in the host's router tests).
    let (status, lines, body) = sign_in(&server, "/\n/evil.example", "");
    assert_eq!(status, 303, "{body}");
    assert_eq!(headers(&lines, "location"), ["/instances"]);
    // A sign-in posted from another site is refused.
    let (status, _, _) = sign_in(&server, "/", "Origin: http://evil.example\r\n");
    assert_eq!(status, 403);
    // The data files are readable by their owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        env.ok(&["config", "create", "s", "--plugin", "sirene"]);
        for file in ["console.sqlite3", "state.sqlite3", "instances/s.toml"] {
            let mode = std::fs::metadata(env.data.join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    drop(server);
}
