//! The plugin's entry points (test routine, `company.lookup`) run in-process against a
//! scripted host: no dlopen, no network. The host answers HTTP requests with a closure and
//! records them, so each test can check both the outcome and what was sent.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString};
use passerelle_plugin_api::abi::{HostCallbacks, HostCallbacks_TO};
use passerelle_plugin_api::host::wire::{self, HttpOutcome};
use passerelle_plugin_api::prelude::*;
use passerelle_sirene::{Config, Sirene};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

const BASE: &str = "https://sirene.test/api-sirene/3.11";
const LEGACY: &str = "https://sirene.test/entreprises/sirene/V3.11";
const TOKEN_URL: &str = "https://sirene.test/token";
/// 2026-11-28T09:00:00Z
const NOW_MS: u64 = 1_795_856_400_000;

type Handler = Box<dyn Fn(&HttpRequest) -> HttpOutcome + Send + Sync>;

struct FakeHost {
    handler: Handler,
    requests: Mutex<Vec<HttpRequest>>,
    logs: Mutex<Vec<String>>,
    state: Mutex<BTreeMap<String, Value>>,
}

impl FakeHost {
    fn new(handler: impl Fn(&HttpRequest) -> HttpOutcome + Send + Sync + 'static) -> Self {
        FakeHost {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
            state: Mutex::new(BTreeMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&Host<'_>) -> R) -> R {
        let callbacks = HostCallbacks_TO::from_const(self, TD_Opaque);
        f(&Host::from_abi(callbacks))
    }

    fn urls(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.url.clone())
            .collect()
    }

    fn request(&self, index: usize) -> HttpRequest {
        self.requests.lock().unwrap()[index].clone()
    }
}

impl HostCallbacks for FakeHost {
    fn call(&self, name: RStr<'_>, input: RStr<'_>) -> RResult<RString, RString> {
        let input: Value = serde_json::from_str(input.as_str()).unwrap();
        let out = match name.as_str() {
            wire::HTTP_REQUEST => {
                let request: HttpRequest = serde_json::from_value(input).unwrap();
                let outcome = (self.handler)(&request);
                self.requests.lock().unwrap().push(request);
                serde_json::to_value(outcome).unwrap()
            }
            wire::CLOCK_NOW => json!({ "unix_ms": NOW_MS }),
            wire::LOG => {
                self.logs
                    .lock()
                    .unwrap()
                    .push(input["message"].as_str().unwrap().to_owned());
                Value::Null
            }
            wire::STATE_GET => {
                let key = input["key"].as_str().unwrap();
                self.state
                    .lock()
                    .unwrap()
                    .get(key)
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            wire::STATE_PUT => {
                let key = input["key"].as_str().unwrap().to_owned();
                self.state
                    .lock()
                    .unwrap()
                    .insert(key, input["value"].clone());
                Value::Null
            }
            wire::STATE_DELETE => {
                self.state
                    .lock()
                    .unwrap()
                    .remove(input["key"].as_str().unwrap());
                Value::Null
            }
            other => {
                let e = PluginError::new(ErrorKind::Unsupported, format!("no service {other}"));
                return RResult::RErr(RString::from(e.to_json()));
            }
        };
        RResult::ROk(RString::from(out.to_string()))
    }
}

fn respond(status: u16, body: &str) -> HttpOutcome {
    HttpOutcome::Response(HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    })
}

fn fail(kind: HttpErrorKind, message: &str) -> HttpOutcome {
    HttpOutcome::Error(HttpError {
        kind,
        message: message.into(),
    })
}

fn informations(date: &str) -> String {
    json!({
        "etatService": "UP",
        "versionService": "3.11.4",
        "etatsDesServices": [
            {"Collection": "Unités Légales", "etatCollection": "UP"},
            {"Collection": "Établissements", "etatCollection": "UP"}
        ],
        "datesDernieresMisesAJourDesDonnees": [
            {
                "collection": "Unités Légales",
                "dateDerniereMiseADisposition": date,
                "dateDernierTraitementMaximum": date,
                "dateDernierTraitementDeMasse": "2026-11-01T06:00:00.000"
            },
            {
                "collection": "Établissements",
                "dateDerniereMiseADisposition": date,
                "dateDernierTraitementMaximum": date,
                "dateDernierTraitementDeMasse": "2026-11-01T06:00:00.000"
            }
        ],
        "journalDesModifications": "https://www.sirene.fr/static-resources/documentation/v_sommaire_311.htm"
    })
    .to_string()
}

fn api_key_config() -> Config {
    serde_json::from_value(json!({ "api_key": "secret-key", "base_url": BASE })).unwrap()
}

fn oauth_config() -> Config {
    serde_json::from_value(json!({
        "auth_mode": "oauth2",
        "client_id": "the-client",
        "client_secret": "the-secret",
        "token_url": TOKEN_URL,
        "base_url": LEGACY,
    }))
    .unwrap()
}

fn lookup(host: &FakeHost, config: &Config, id: &str) -> Result<Company, PluginError> {
    let input = json!({ "id": id }).to_string();
    host.with(|h| {
        Sirene::invoke(Call::new("company.lookup", &input), config, h)
            .map(|reply| serde_json::from_str(&reply.into_json()).unwrap())
    })
}

fn fixture(siret: &str) -> String {
    let path = format!(
        "{}/../../tests/emulators/fixtures/sirene/siret_{siret}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

fn step_names(report: &TestReport) -> Vec<(&str, Status)> {
    report
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect()
}

#[test]
fn manifest_declares_the_lookup_and_the_quota() {
    let m = Sirene::manifest();
    assert!(m.check().is_ok());
    assert_eq!(m.id, "sirene");
    assert_eq!(m.name, "INSEE Sirene");
    assert_eq!(m.category, Category::Company);
    assert_eq!(m.capabilities, ["company.lookup"]);
    assert_eq!(m.quotas.per_minute, Some(30));
}

#[test]
fn test_routine_passes_with_a_good_key() {
    let host = FakeHost::new(|r| {
        assert_eq!(r.url, format!("{BASE}/informations"));
        respond(200, &informations("2026-11-27T23:43:04.000"))
    });
    let report = host.with(|h| Sirene::test(&api_key_config(), h));
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert_eq!(report.summary, "Sirene 3.11.4 is UP, data of 2026-11-27");
    assert_eq!(
        step_names(&report),
        [
            ("reach service", Status::Ok),
            ("service state", Status::Ok),
            ("data freshness", Status::Ok)
        ]
    );
    let sent = host.request(0);
    assert_eq!(sent.method, Method::Get);
    assert!(sent
        .headers
        .contains(&("X-INSEE-Api-Key-Integration".into(), "secret-key".into())));
    assert_eq!(sent.secret_headers, ["X-INSEE-Api-Key-Integration"]);
    assert_eq!(sent.timeout_ms, Some(10_000));
}

#[test]
fn test_routine_warns_about_stale_data() {
    let host = FakeHost::new(|_| respond(200, &informations("2026-11-10T23:43:04.000")));
    let report = host.with(|h| Sirene::test(&api_key_config(), h));
    assert_eq!(report.status, Status::Warning);
    assert!(
        report
            .summary
            .starts_with("data freshness: the most recent data is from 2026-11-10, 17 days ago"),
        "{}",
        report.summary
    );
}

#[test]
fn test_routine_explains_a_refused_key() {
    let host = FakeHost::new(|_| {
        respond(
            401,
            r#"{"header":{"statut":401,"message":"Invalid API key"}}"#,
        )
    });
    let report = host.with(|h| Sirene::test(&api_key_config(), h));
    assert_eq!(report.status, Status::Failed);
    assert_eq!(
        report.summary,
        "reach service: the API key was refused (HTTP 401): check the key in the INSEE portal (API \
         Sirene subscription)"
    );
    assert_eq!(step_names(&report), [("reach service", Status::Failed)]);
}

#[test]
fn test_routine_explains_network_failures() {
    let host = FakeHost::new(|_| fail(HttpErrorKind::Connect, "connection refused"));
    let report = host.with(|h| Sirene::test(&api_key_config(), h));
    assert_eq!(report.status, Status::Failed);
    assert!(
        report
            .summary
            .contains("the host sirene.test is unreachable"),
        "{}",
        report.summary
    );
    assert!(report.summary.contains(&format!("{BASE}/informations")));

    let tls = "the certificate of sirene.test is signed by \"Corp Proxy CA\", which this host does not trust: add it with `passerelle trust add`";
    let host = FakeHost::new(move |_| fail(HttpErrorKind::Tls, tls));
    let report = host.with(|h| Sirene::test(&api_key_config(), h));
    assert_eq!(report.steps[0].detail, tls);

    let host = FakeHost::new(|_| {
        HttpOutcome::Response(HttpResponse {
            status: 429,
            headers: vec![("Retry-After".into(), "42".into())],
            body: r#"{"header":{"statut":429,"message":"Trop de requêtes"}}"#
                .as_bytes()
                .to_vec(),
        })
    });
    let report = host.with(|h| Sirene::test(&api_key_config(), h));
    assert!(report.summary.contains("HTTP 429"), "{}", report.summary);
    assert!(
        report.summary.contains("retry in 42 s"),
        "{}",
        report.summary
    );

    let host = FakeHost::new(|_| respond(503, "<html><body>Service Unavailable</body></html>"));
    let report = host.with(|h| Sirene::test(&api_key_config(), h));
    assert!(
        report.summary.contains("server error (HTTP 503)"),
        "{}",
        report.summary
    );
}

#[test]
fn test_routine_checks_the_configuration_first() {
    let host = FakeHost::new(|_| panic!("no request expected"));
    let config: Config = serde_json::from_value(json!({})).unwrap();
    let report = host.with(|h| Sirene::test(&config, h));
    assert_eq!(report.status, Status::Failed);
    assert!(report
        .summary
        .starts_with("check configuration: an API key is required"));
    assert_eq!(
        Sirene::validate(&config)[0].field.as_deref(),
        Some("api_key")
    );
}

#[test]
fn oauth2_test_gets_a_token_then_uses_it() {
    let host = FakeHost::new(|r| {
        if r.url == TOKEN_URL {
            respond(
                200,
                r#"{"access_token":"tok-1","scope":"am_application_scope default","token_type":"Bearer","expires_in":3600}"#,
            )
        } else {
            respond(200, &informations("2026-11-27T23:43:04.000"))
        }
    });
    let report = host.with(|h| Sirene::test(&oauth_config(), h));
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert_eq!(step_names(&report)[0], ("get token", Status::Ok));
    let token_request = host.request(0);
    assert_eq!(token_request.method, Method::Post);
    assert_eq!(token_request.body, b"grant_type=client_credentials");
    assert!(token_request.headers.contains(&(
        "Authorization".into(),
        "Basic dGhlLWNsaWVudDp0aGUtc2VjcmV0".into()
    )));
    let call = host.request(1);
    assert_eq!(call.url, format!("{LEGACY}/informations"));
    assert!(call
        .headers
        .contains(&("Authorization".into(), "Bearer tok-1".into())));
}

#[test]
fn oauth2_test_stops_when_the_client_is_refused() {
    let host = FakeHost::new(|_| respond(401, r#"{"error":"invalid_client"}"#));
    let report = host.with(|h| Sirene::test(&oauth_config(), h));
    assert_eq!(report.status, Status::Failed);
    assert_eq!(
        step_names(&report),
        [
            ("get token", Status::Failed),
            ("reach service", Status::Skipped)
        ]
    );
    assert!(report
        .summary
        .contains("client id or secret was refused (HTTP 401: \"invalid_client\")"));
    assert_eq!(host.urls().len(), 1);
}

#[test]
fn oauth2_lookups_reuse_the_cached_token_and_renew_a_refused_one() {
    let tokens = Mutex::new(0);
    let host = FakeHost::new(move |r| {
        if r.url == TOKEN_URL {
            let mut n = tokens.lock().unwrap();
            *n += 1;
            return respond(
                200,
                &json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600})
                    .to_string(),
            );
        }
        // The gateway forgot token 1 after the first lookup.
        let bearer = r
            .headers
            .iter()
            .find(|(k, _)| k == "Authorization")
            .map(|(_, v)| v.clone())
            .unwrap();
        if bearer == "Bearer tok-1" && r.url.ends_with("32816124500027") {
            return respond(401, r#"{"fault":{"message":"Invalid Credentials"}}"#);
        }
        respond(200, &fixture(&r.url[r.url.len() - 14..]))
    });
    let config = oauth_config();
    assert_eq!(
        lookup(&host, &config, "21920023500014")
            .unwrap()
            .city
            .as_deref(),
        Some("CLAMART")
    );
    assert_eq!(
        lookup(&host, &config, "13002437500011")
            .unwrap()
            .city
            .as_deref(),
        Some("PARIS 7")
    );
    assert_eq!(
        lookup(&host, &config, "32816124500027")
            .unwrap()
            .city
            .as_deref(),
        Some("VANNES")
    );
    let urls = host.urls();
    assert_eq!(
        urls,
        [
            TOKEN_URL.to_owned(),
            format!("{LEGACY}/siret/21920023500014"),
            format!("{LEGACY}/siret/13002437500011"),
            format!("{LEGACY}/siret/32816124500027"),
            TOKEN_URL.to_owned(),
            format!("{LEGACY}/siret/32816124500027"),
        ]
    );
}

#[test]
fn invalid_identifiers_never_reach_the_network() {
    let host = FakeHost::new(|_| panic!("no request expected"));
    let config = api_key_config();
    let e = lookup(&host, &config, "21920023500015").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert_eq!(
        e.message,
        "21920023500015 is not a valid SIRET: the check digit does not match (Luhn); check for a typo"
    );
    assert_eq!(
        lookup(&host, &config, "1234").unwrap_err().kind,
        ErrorKind::InvalidInput
    );
    let e = host
        .with(|h| Sirene::invoke(Call::new("company.lookup", "{}"), &config, h))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    let e = host
        .with(|h| Sirene::invoke(Call::new("ocr.expense_receipt", "{}"), &config, h))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(host.urls().is_empty());
}

#[test]
fn siret_lookup_maps_the_establishment() {
    let host = FakeHost::new(|r| {
        assert_eq!(r.url, format!("{BASE}/siret/21920023500014"));
        respond(200, &fixture("21920023500014"))
    });
    let c = lookup(&host, &api_key_config(), "219 200 235 00014").unwrap();
    assert_eq!(c.legal_name.as_deref(), Some("COMMUNE DE CLAMART"));
    assert_eq!(c.address_lines, ["1 PLACE MAURICE GUNSBOURG"]);
    assert!(c.active && c.head_office && c.fully_public);
}

#[test]
fn siren_lookup_reads_the_unit_then_its_head_office() {
    let host = FakeHost::new(|r| {
        if r.url.ends_with("/siren/328161245") {
            respond(
                200,
                &json!({
                    "header": {"statut": 200, "message": "ok"},
                    "uniteLegale": {
                        "siren": "328161245",
                        "statutDiffusionUniteLegale": "O",
                        "sigleUniteLegale": "MGDIS",
                        "periodesUniteLegale": [
                            {
                                "dateFin": null,
                                "etatAdministratifUniteLegale": "A",
                                "denominationUniteLegale": "MGDIS",
                                "categorieJuridiqueUniteLegale": "5710",
                                "activitePrincipaleUniteLegale": "58.29C",
                                "nicSiegeUniteLegale": "00027"
                            }
                        ]
                    }
                })
                .to_string(),
            )
        } else {
            assert_eq!(r.url, format!("{BASE}/siret/32816124500027"));
            respond(200, &fixture("32816124500027"))
        }
    });
    let c = lookup(&host, &api_key_config(), "328161245").unwrap();
    assert_eq!(c.siren, "328161245");
    assert_eq!(c.siret.as_deref(), Some("32816124500027"));
    assert_eq!(c.city.as_deref(), Some("VANNES"));
    assert!(c.head_office);
    assert_eq!(host.urls().len(), 2);
}

#[test]
fn siren_lookup_without_a_readable_head_office_answers_from_the_unit() {
    let host = FakeHost::new(|r| {
        if r.url.ends_with("/siren/552049447") {
            respond(
                200,
                &json!({
                    "header": {"statut": 200, "message": "ok"},
                    "uniteLegale": {
                        "siren": "552049447",
                        "statutDiffusionUniteLegale": "O",
                        "periodesUniteLegale": [{
                            "dateFin": null,
                            "etatAdministratifUniteLegale": "A",
                            "denominationUniteLegale": "DEMO",
                            "nicSiegeUniteLegale": "00014"
                        }]
                    }
                })
                .to_string(),
            )
        } else {
            respond(
                404,
                r#"{"header":{"statut":404,"message":"Aucun élément trouvé pour le siret 55204944700014"}}"#,
            )
        }
    });
    let c = lookup(&host, &api_key_config(), "552049447").unwrap();
    assert_eq!(c.legal_name.as_deref(), Some("DEMO"));
    assert_eq!(c.siret, None);
    assert!(
        host.logs.lock().unwrap()[0].starts_with("head office SIRET 55204944700014 not readable")
    );
}

#[test]
fn lookup_errors_carry_their_kind() {
    let host = FakeHost::new(|r| {
        if r.url.ends_with("73282932000074") {
            respond(
                403,
                r#"{"header":{"statut":403,"message":"Unité légale non diffusable"}}"#,
            )
        } else {
            respond(
                404,
                r#"{"header":{"statut":404,"message":"Aucun élément trouvé pour le siret 32816124500035"}}"#,
            )
        }
    });
    let config = api_key_config();
    let e = lookup(&host, &config, "73282932000074").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(
        e.message,
        "SIRET 73282932000074 is not diffusible: INSEE withholds its data at the owner's request"
    );
    let e = lookup(&host, &config, "32816124500035").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.message,
        "no establishment with SIRET 32816124500035 in the Sirene register"
    );

    let host = FakeHost::new(|_| respond(200, "<html>maintenance</html>"));
    let e = lookup(&host, &config, "32816124500027").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Upstream);
    let host = FakeHost::new(|_| fail(HttpErrorKind::Timeout, "timed out"));
    assert_eq!(
        lookup(&host, &config, "32816124500027").unwrap_err().kind,
        ErrorKind::Timeout
    );
}

#[test]
fn lookup_with_an_incomplete_configuration_names_the_field() {
    let host = FakeHost::new(|_| panic!("no request expected"));
    let config: Config =
        serde_json::from_value(json!({"auth_mode": "oauth2", "client_id": "x"})).unwrap();
    let e = lookup(&host, &config, "32816124500027").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("client_secret"));
}
