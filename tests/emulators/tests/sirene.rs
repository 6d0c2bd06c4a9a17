//! The Sirene emulator over real sockets, with a minimal blocking HTTP/1.1 client (std only),
//! the way the plugin will meet it through the host.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request on a fresh connection and reads the whole answer.
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    send("GET", url, headers, "")
}

fn with_key(url: &str) -> Answer {
    get(url, &[("X-INSEE-Api-Key-Integration", "test-key")])
}

fn start(per_minute: u32) -> SireneEmulator {
    SireneEmulator::start(SireneOptions {
        per_minute,
        ..SireneOptions::default()
    })
    .unwrap()
}

#[test]
fn urls_follow_the_insee_layout() {
    let emu = start(30);
    assert!(emu.url().starts_with("http://127.0.0.1:"));
    assert_eq!(emu.base_url(), format!("{}/api-sirene/3.11", emu.url()));
}

#[test]
fn the_api_key_is_required() {
    let emu = start(30);
    let url = format!("{}/informations", emu.base_url());
    let missing = get(&url, &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["header"]["statut"], 401);
    let wrong = get(&url, &[("X-INSEE-Api-Key-Integration", "nope")]);
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["header"]["message"], "Invalid API key");
    assert_eq!(with_key(&url).status, 200);
    assert_eq!(emu.request_count(), 3);
}

#[test]
fn informations_describes_the_service_with_fresh_dates() {
    let emu = start(30);
    let info = with_key(&format!("{}/informations", emu.base_url())).json();
    assert_eq!(info["etatService"], "UP");
    assert!(info["versionService"].as_str().unwrap().starts_with("3.11"));
    assert_eq!(info["etatsDesServices"][0]["Collection"], "Unités Légales");
    assert_eq!(info["etatsDesServices"][0]["etatCollection"], "UP");
    let date = info["datesDernieresMisesAJourDesDonnees"][0]["dateDerniereMiseADisposition"]
        .as_str()
        .unwrap();
    assert_eq!(date.len(), "2026-11-27T23:43:04.000".len());
    assert!(date.ends_with(".000") && &date[10..11] == "T", "{date}");
    assert!(info["journalDesModifications"].is_string());

    emu.set_collection_state("Établissements", "DOWN");
    emu.set_data_age_days(20);
    let info = with_key(&format!("{}/informations", emu.base_url())).json();
    assert_eq!(info["etatsDesServices"][1]["etatCollection"], "DOWN");
    let stale = info["datesDernieresMisesAJourDesDonnees"][0]["dateDerniereMiseADisposition"]
        .as_str()
        .unwrap();
    assert!(stale < date, "{stale} should be older than {date}");
}

#[test]
fn siret_answers_are_the_samples_byte_for_byte() {
    let emu = start(30);
    let answer = with_key(&format!("{}/siret/21920023500014", emu.base_url()));
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let stored = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sirene/siret_21920023500014.json"
    ))
    .unwrap();
    assert_eq!(answer.body, stored);
    let partial = with_key(&format!("{}/siret/81234567600009", emu.base_url())).json();
    assert_eq!(
        partial["etablissement"]["statutDiffusionEtablissement"],
        "P"
    );
}

#[test]
fn unknown_malformed_and_withheld_identifiers() {
    let emu = start(30);
    let base = emu.base_url();
    let unknown = with_key(&format!("{base}/siret/32816124500035"));
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json()["header"]["message"],
        "Aucun élément trouvé pour le siret 32816124500035"
    );
    assert_eq!(unknown.json()["header"]["statut"], 404);
    let malformed = with_key(&format!("{base}/siret/1234"));
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.json()["header"]["message"],
        "Le paramètre siret n'est pas valide"
    );
    assert_eq!(with_key(&format!("{base}/siren/12345678A")).status, 400);
    for path in ["siret/73282932000074", "siren/732829320"] {
        let withheld = with_key(&format!("{base}/{path}"));
        assert_eq!(withheld.status, 403, "{path}");
        assert_eq!(
            withheld.json()["header"]["message"],
            "Unité légale non diffusable"
        );
    }
    assert_eq!(with_key(&format!("{base}/siren/999999999")).status, 404);
}

#[test]
fn siren_answers_have_the_311_period_shape() {
    let emu = start(30);
    let answer = with_key(&format!("{}/siren/328161245", emu.base_url()));
    assert_eq!(answer.status, 200);
    let unit = &answer.json()["uniteLegale"];
    assert_eq!(unit["siren"], "328161245");
    assert_eq!(unit["sigleUniteLegale"], "MGDIS");
    let current = &unit["periodesUniteLegale"][0];
    assert_eq!(current["dateFin"], Value::Null);
    assert_eq!(current["denominationUniteLegale"], "MGDIS");
    assert_eq!(current["nicSiegeUniteLegale"], "00027");
    assert_eq!(current["categorieJuridiqueUniteLegale"], "5710");
}

#[test]
fn the_quota_answers_429_with_retry_after() {
    let emu = start(3);
    let url = format!("{}/siret/21920023500014", emu.base_url());
    for _ in 0..3 {
        assert_eq!(with_key(&url).status, 200);
    }
    let refused = with_key(&url);
    assert_eq!(refused.status, 429);
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(refused.json()["header"]["statut"], 429);
    assert_eq!(refused.json()["header"]["message"], "Trop de requêtes");
    // Refused credentials are answered before the quota is consulted.
    assert_eq!(get(&url, &[]).status, 401);
}

#[test]
fn the_closed_gateway_is_gone_and_its_tokens_are_refused() {
    let emu = start(30);
    let form = "grant_type=client_credentials";
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    // dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ= is test-client:test-secret
    let basic = ("Authorization", "Basic dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ=");
    let token = send(
        "POST",
        &format!("{}/token", emu.url()),
        &[basic, form_type],
        form,
    );
    assert_eq!(token.status, 404);
    let legacy = with_key(&format!(
        "{}/entreprises/sirene/V3.11/siret/21920023500014",
        emu.url()
    ));
    assert_eq!(legacy.status, 404);
    // An old access token, as a bearer or pasted as the key, opens nothing.
    let url = format!("{}/siret/21920023500014", emu.base_url());
    let bearer = (
        "Authorization",
        "Bearer 214c0e62-bc3c-4fd6-959f-67e5400bdd41",
    );
    assert_eq!(get(&url, &[bearer]).status, 401);
    let pasted = get(
        &url,
        &[(
            "X-INSEE-Api-Key-Integration",
            "214c0e62-bc3c-4fd6-959f-67e5400bdd41",
        )],
    );
    assert_eq!(pasted.status, 401);
}

fn search(emu: &SireneEmulator, query: &str) -> Answer {
    with_key(&format!("{}/siret?{query}", emu.base_url()))
}

#[test]
fn the_multi_criteria_search_pages_with_a_total() {
    let emu = start(30);
    // (denominationUniteLegale:"de" OR nomUniteLegale:"de") AND codePostalEtablissement:92140
    let q = "q=%28denominationUniteLegale%3A%22de%22+OR+nomUniteLegale%3A%22de%22%29+AND+\
             codePostalEtablissement%3A92140";
    let first = search(&emu, &format!("{q}&nombre=1&debut=0"));
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    assert_eq!(first["header"]["total"], 2);
    assert_eq!(first["header"]["debut"], 0);
    assert_eq!(first["header"]["nombre"], 1);
    assert_eq!(first["etablissements"][0]["siret"], "21920023500014");
    let second = search(&emu, &format!("{q}&nombre=1&debut=1")).json();
    assert_eq!(second["etablissements"][0]["siret"], "55204944700006");
    assert_eq!(search(&emu, &format!("{q}&nombre=1&debut=2")).status, 404);

    // A closed establishment is left out by periode(etatAdministratifEtablissement:A).
    let closed = "q=siren%3A130024375";
    assert_eq!(search(&emu, closed).json()["header"]["total"], 1);
    let open_only = "q=siren%3A130024375+AND+periode%28etatAdministratifEtablissement%3AA%29";
    assert_eq!(search(&emu, open_only).status, 404);

    // The head office of a unit, in one request.
    let head = search(
        &emu,
        "q=siren%3A328161245+AND+etablissementSiege%3Atrue&nombre=1",
    )
    .json();
    assert_eq!(head["etablissements"][0]["siret"], "32816124500027");
    assert_eq!(
        head["etablissements"][0]["uniteLegale"]["denominationUniteLegale"],
        "MGDIS"
    );
}

#[test]
fn malformed_searches_are_refused_with_400() {
    let emu = start(30);
    for query in [
        "",
        "q=",
        "q=denominationUniteLegale%3A%22open",
        "q=%28siren%3A1",
        "q=raisonSocial%3AACME",
        "q=ACME",
        "q=siren%3A328161245&nombre=1001",
        "q=siren%3A328161245&debut=-1",
    ] {
        let answer = search(&emu, query);
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.json()["header"]["statut"], 400);
    }
}

#[test]
fn an_outage_answers_503_in_html() {
    let emu = start(30);
    emu.set_unavailable(true);
    for url in [
        format!("{}/informations", emu.base_url()),
        format!("{}/siret?q=siren%3A219200235", emu.base_url()),
    ] {
        let down = with_key(&url);
        assert_eq!(down.status, 503);
        assert!(down
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(down.body.contains("503 Service Temporarily Unavailable"));
    }
    emu.set_unavailable(false);
    assert_eq!(
        with_key(&format!("{}/informations", emu.base_url())).status,
        200
    );
    assert_eq!(emu.request_count(), 3);
}

#[cfg(unix)]
#[test]
fn the_binary_prints_its_url_and_stops_on_ctrl_c() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_passerelle-emulators"))
        .args(["--sirene-port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .strip_prefix("sirene: ")
        .and_then(|l| l.strip_suffix(" (key: test-key)\n"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(base.ends_with("/api-sirene/3.11"), "{base}");
    assert_eq!(with_key(&format!("{base}/informations")).status, 200);

    // SIGINT, as Ctrl-C sends, to the child started above (by its id).
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the emulator did not stop within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_binary_rejects_bad_arguments() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle-emulators"))
        .args(["--sirene-port", "http"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port number"));
}
