//! The plugin's entry points (test routine, `company.lookup`) run in-process through its real
//! root module against the shared [`ScriptedHost`]: no dlopen, no network. The host answers
//! HTTP requests from scripted routes, records them, and emulates the host's OAuth2 token
//! cache, so each test can check both the outcome and what was sent.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::testing::{self, ScriptedHost};
use passerelle_sirene::Sirene;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};

const BASE: &str = "https://sirene.test/api-sirene/3.11";
const LEGACY: &str = "https://sirene.test/entreprises/sirene/V3.11";
const TOKEN_URL: &str = "https://sirene.test/token";
/// 2026-11-28T09:00:00Z
const NOW_MS: u64 = 1_795_856_400_000;

/// `company.lookup` with an input of any shape, to check how malformed inputs are refused.
struct RawLookup;

impl Operation for RawLookup {
    const NAME: &'static str = "company.lookup";
    type Input = Value;
    type Output = Value;
}

/// An operation this plugin does not serve.
struct OtherOperation;

impl Operation for OtherOperation {
    const NAME: &'static str = "ocr.expense_receipt";
    type Input = Value;
    type Output = Value;
}

/// A host at [`NOW_MS`] with no route: any request fails until a test scripts it.
fn host() -> ScriptedHost {
    let host = ScriptedHost::new();
    host.set_now_ms(NOW_MS);
    host
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
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

fn api_key_config() -> Value {
    json!({ "api_key": "secret-key", "base_url": BASE })
}

fn oauth_config() -> Value {
    json!({
        "auth_mode": "oauth2",
        "client_id": "the-client",
        "client_secret": "the-secret",
        "token_url": TOKEN_URL,
        "base_url": LEGACY,
    })
}

/// A token endpoint granting `tok-1`, `tok-2`, … for an hour.
fn grant_numbered_tokens(host: &ScriptedHost) {
    let granted = AtomicU32::new(0);
    host.on_fn(Method::Post, TOKEN_URL, move |_| {
        let n = granted.fetch_add(1, Ordering::SeqCst) + 1;
        let body = json!({
            "access_token": format!("tok-{n}"),
            "scope": "am_application_scope default",
            "token_type": "Bearer",
            "expires_in": 3600
        });
        Ok(response(200, &[], &body.to_string()))
    });
}

fn lookup(host: &ScriptedHost, config: &Value, id: &str) -> Result<Company, PluginError> {
    let query = CompanyQuery { id: id.to_owned() };
    testing::invoke::<Sirene, CompanyLookup>(&query, config.clone(), host)
}

fn fixture(siret: &str) -> String {
    let path = format!(
        "{}/../../tests/emulators/fixtures/sirene/siret_{siret}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

/// Answers `/siret/{siret}` from the emulator's fixtures.
fn serve_fixtures(host: &ScriptedHost, base: &str) {
    host.on_fn(Method::Get, &format!("{base}/siret/"), |r| {
        Ok(response(200, &[], &fixture(&r.url[r.url.len() - 14..])))
    });
}

fn urls(host: &ScriptedHost) -> Vec<String> {
    host.requests().into_iter().map(|r| r.url).collect()
}

fn header(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
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
    let host = host();
    host.on(
        Method::Get,
        &format!("{BASE}/informations"),
        200,
        informations("2026-11-27T23:43:04.000"),
    );
    let report = testing::test::<Sirene>(api_key_config(), &host);
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
    let sent = host.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, Method::Get);
    assert_eq!(sent[0].url, format!("{BASE}/informations"));
    assert!(sent[0]
        .headers
        .contains(&("X-INSEE-Api-Key-Integration".into(), "secret-key".into())));
    assert_eq!(sent[0].secret_headers, ["X-INSEE-Api-Key-Integration"]);
    assert_eq!(sent[0].timeout_ms, Some(10_000));
    assert_eq!(header(&sent[0], "Authorization"), None);
}

#[test]
fn test_routine_warns_about_stale_data() {
    let host = host();
    host.on(
        Method::Get,
        BASE,
        200,
        informations("2026-11-10T23:43:04.000"),
    );
    let report = testing::test::<Sirene>(api_key_config(), &host);
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
    let host = host();
    host.on(
        Method::Get,
        BASE,
        401,
        r#"{"header":{"statut":401,"message":"Invalid API key"}}"#,
    );
    let report = testing::test::<Sirene>(api_key_config(), &host);
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
    let host = host();
    host.fail(
        Method::Get,
        BASE,
        HttpErrorKind::Connect,
        "connection refused",
    );
    let report = testing::test::<Sirene>(api_key_config(), &host);
    assert_eq!(report.status, Status::Failed);
    assert!(
        report
            .summary
            .contains("the host sirene.test is unreachable (connection refused)"),
        "{}",
        report.summary
    );
    assert!(report.summary.contains(&format!("{BASE}/informations")));

    let tls = "the certificate of sirene.test is signed by \"Corp Proxy CA\", which this host does not trust: add it with `passerelle trust add`";
    host.fail(Method::Get, BASE, HttpErrorKind::Tls, tls);
    let report = testing::test::<Sirene>(api_key_config(), &host);
    assert_eq!(report.steps[0].detail, tls);

    host.on_fn(Method::Get, BASE, |_| {
        Ok(response(
            429,
            &[("Retry-After", "42")],
            r#"{"header":{"statut":429,"message":"Trop de requêtes"}}"#,
        ))
    });
    let report = testing::test::<Sirene>(api_key_config(), &host);
    assert!(report.summary.contains("HTTP 429"), "{}", report.summary);
    assert!(
        report.summary.contains("retry in 42 s"),
        "{}",
        report.summary
    );

    host.on(
        Method::Get,
        BASE,
        503,
        "<html><body>Service Unavailable</body></html>",
    );
    let report = testing::test::<Sirene>(api_key_config(), &host);
    assert!(
        report.summary.contains("server error (HTTP 503)"),
        "{}",
        report.summary
    );
}

#[test]
fn test_routine_checks_the_configuration_first() {
    let host = host();
    let report = testing::test::<Sirene>(json!({}), &host);
    assert_eq!(report.status, Status::Failed);
    assert!(report
        .summary
        .starts_with("check configuration: an API key is required"));
    assert!(host.requests().is_empty());
    let config = serde_json::from_value(json!({})).unwrap();
    assert_eq!(
        Sirene::validate(&config)[0].field.as_deref(),
        Some("api_key")
    );
}

#[test]
fn oauth2_test_gets_a_token_then_uses_it() {
    let host = host();
    grant_numbered_tokens(&host);
    host.on(
        Method::Get,
        &format!("{LEGACY}/informations"),
        200,
        informations("2026-11-27T23:43:04.000"),
    );
    let report = testing::test::<Sirene>(oauth_config(), &host);
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert_eq!(step_names(&report)[0], ("get token", Status::Ok));
    assert_eq!(
        report.steps[0].detail,
        format!("token granted by {TOKEN_URL}")
    );
    let sent = host.requests();
    assert_eq!(sent.len(), 2);
    let token_request = &sent[0];
    assert_eq!(token_request.method, Method::Post);
    assert_eq!(token_request.url, TOKEN_URL);
    assert_eq!(token_request.body, b"grant_type=client_credentials");
    // The legacy gateway authenticates the client with HTTP Basic, not form fields.
    assert_eq!(
        header(token_request, "Authorization").as_deref(),
        Some("Basic dGhlLWNsaWVudDp0aGUtc2VjcmV0")
    );
    let call = &sent[1];
    assert_eq!(call.url, format!("{LEGACY}/informations"));
    assert_eq!(
        header(call, "Authorization").as_deref(),
        Some("Bearer tok-1")
    );
    assert_eq!(header(call, "X-INSEE-Api-Key-Integration"), None);
    assert_eq!(call.timeout_ms, Some(10_000));

    // Each test checks the credentials again instead of trusting the cached token.
    let report = testing::test::<Sirene>(oauth_config(), &host);
    assert_eq!(report.status, Status::Ok, "{report:?}");
    let sent = host.requests();
    assert_eq!(sent[2].url, TOKEN_URL);
    assert_eq!(
        header(&sent[3], "Authorization").as_deref(),
        Some("Bearer tok-2")
    );
}

#[test]
fn oauth2_test_stops_when_the_client_is_refused() {
    let host = host();
    host.on(
        Method::Post,
        TOKEN_URL,
        401,
        r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
    );
    let report = testing::test::<Sirene>(oauth_config(), &host);
    assert_eq!(report.status, Status::Failed);
    assert_eq!(
        step_names(&report),
        [
            ("get token", Status::Failed),
            ("reach service", Status::Skipped)
        ]
    );
    assert!(
        report.summary.starts_with(
            "get token: the token endpoint refused the request (HTTP 401): invalid_client — \
             Client authentication failed; check the client id and secret"
        ),
        "{}",
        report.summary
    );
    assert_eq!(urls(&host), [TOKEN_URL]);
    assert!(!report.summary.contains("the-secret"));
}

#[test]
fn oauth2_test_explains_an_unreachable_token_endpoint() {
    let host = host();
    host.fail(
        Method::Post,
        TOKEN_URL,
        HttpErrorKind::Connect,
        "connection refused",
    );
    let report = testing::test::<Sirene>(oauth_config(), &host);
    assert_eq!(report.status, Status::Failed);
    assert_eq!(
        step_names(&report),
        [
            ("get token", Status::Failed),
            ("reach service", Status::Skipped)
        ]
    );
    assert!(
        report.steps[0].detail.contains("connection refused"),
        "{}",
        report.steps[0].detail
    );
    assert_eq!(urls(&host), [TOKEN_URL]);
}

#[test]
fn oauth2_lookups_reuse_the_cached_token_and_renew_a_refused_one() {
    let host = host();
    grant_numbered_tokens(&host);
    serve_fixtures(&host, LEGACY);
    // The gateway forgot token 1 after the second lookup.
    host.on_fn(
        Method::Get,
        &format!("{LEGACY}/siret/32816124500027"),
        |r| {
            if header(r, "Authorization").as_deref() == Some("Bearer tok-1") {
                return Ok(response(
                    401,
                    &[],
                    r#"{"fault":{"message":"Invalid Credentials"}}"#,
                ));
            }
            Ok(response(200, &[], &fixture("32816124500027")))
        },
    );
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
    assert_eq!(
        urls(&host),
        [
            TOKEN_URL.to_owned(),
            format!("{LEGACY}/siret/21920023500014"),
            format!("{LEGACY}/siret/13002437500011"),
            format!("{LEGACY}/siret/32816124500027"),
            TOKEN_URL.to_owned(),
            format!("{LEGACY}/siret/32816124500027"),
        ]
    );
    let bearers: Vec<_> = host
        .requests()
        .iter()
        .filter(|r| r.method == Method::Get)
        .map(|r| header(r, "Authorization").unwrap())
        .collect();
    assert_eq!(
        bearers,
        [
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-2"
        ]
    );
    // The renewed token is the one reused afterwards.
    lookup(&host, &config, "21920023500014").unwrap();
    let sent = host.requests();
    assert_eq!(sent.len(), 7);
    assert_eq!(
        header(&sent[6], "Authorization").as_deref(),
        Some("Bearer tok-2")
    );
}

#[test]
fn oauth2_tokens_are_renewed_before_they_expire_and_per_client() {
    let host = host();
    grant_numbered_tokens(&host);
    serve_fixtures(&host, LEGACY);
    let config = oauth_config();
    lookup(&host, &config, "21920023500014").unwrap();
    // Half an hour later the token (valid one hour) is still reused…
    host.set_now_ms(NOW_MS + 1_800_000);
    lookup(&host, &config, "21920023500014").unwrap();
    assert_eq!(urls(&host).iter().filter(|u| *u == TOKEN_URL).count(), 1);
    // …but not in its last minute.
    host.set_now_ms(NOW_MS + 3_570_000);
    lookup(&host, &config, "21920023500014").unwrap();
    let sent = host.requests();
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[3].url, TOKEN_URL);
    assert_eq!(
        header(&sent[4], "Authorization").as_deref(),
        Some("Bearer tok-2")
    );

    // Other credentials never reuse a token granted for the previous ones.
    let mut other = oauth_config();
    other["client_id"] = json!("another-client");
    lookup(&host, &other, "21920023500014").unwrap();
    let sent = host.requests();
    assert_eq!(sent[5].url, TOKEN_URL);
    assert_eq!(
        header(&sent[5], "Authorization").as_deref(),
        Some("Basic YW5vdGhlci1jbGllbnQ6dGhlLXNlY3JldA==")
    );
    assert_eq!(
        header(&sent[6], "Authorization").as_deref(),
        Some("Bearer tok-3")
    );
}

#[test]
fn oauth2_lookup_refused_with_a_fresh_token_is_retried_only_once() {
    let host = host();
    grant_numbered_tokens(&host);
    host.on(
        Method::Get,
        LEGACY,
        401,
        r#"{"fault":{"message":"Invalid Credentials"}}"#,
    );
    let e = lookup(&host, &oauth_config(), "21920023500014").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(
        e.message,
        "the access token was refused (HTTP 401: \"Invalid Credentials\"): check that your \
         application is subscribed to API Sirene on the INSEE gateway"
    );
    assert_eq!(
        urls(&host),
        [
            TOKEN_URL.to_owned(),
            format!("{LEGACY}/siret/21920023500014"),
            TOKEN_URL.to_owned(),
            format!("{LEGACY}/siret/21920023500014"),
        ]
    );
}

#[test]
fn oauth2_lookup_errors_from_the_token_endpoint_name_the_field() {
    let host = host();
    host.on(
        Method::Post,
        TOKEN_URL,
        401,
        r#"{"error":"invalid_client"}"#,
    );
    let e = lookup(&host, &oauth_config(), "21920023500014").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(e.field.as_deref(), Some("client_secret"));
    assert!(
        e.message.contains("invalid_client")
            && e.message.contains("check the client id and secret"),
        "{}",
        e.message
    );
    assert_eq!(urls(&host), [TOKEN_URL]);

    host.fail(
        Method::Post,
        TOKEN_URL,
        HttpErrorKind::Timeout,
        "no answer within 10 s",
    );
    let e = lookup(&host, &oauth_config(), "21920023500014").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert_eq!(urls(&host).len(), 2, "no lookup without a token");
}

#[test]
fn invalid_identifiers_never_reach_the_network() {
    let host = host();
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
    let e = testing::invoke::<Sirene, RawLookup>(&json!({}), config.clone(), &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    let e = testing::invoke::<Sirene, OtherOperation>(&json!({}), config, &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(host.requests().is_empty());
}

#[test]
fn siret_lookup_maps_the_establishment() {
    let host = host();
    host.on(
        Method::Get,
        &format!("{BASE}/siret/21920023500014"),
        200,
        fixture("21920023500014"),
    );
    let c = lookup(&host, &api_key_config(), "219 200 235 00014").unwrap();
    assert_eq!(c.legal_name.as_deref(), Some("COMMUNE DE CLAMART"));
    assert_eq!(c.address_lines, ["1 PLACE MAURICE GUNSBOURG"]);
    assert!(c.active && c.head_office && c.fully_public);
    assert_eq!(urls(&host), [format!("{BASE}/siret/21920023500014")]);
}

#[test]
fn siren_lookup_reads_the_unit_then_its_head_office() {
    let host = host();
    host.on(
        Method::Get,
        &format!("{BASE}/siren/328161245"),
        200,
        json!({
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
    );
    host.on(
        Method::Get,
        &format!("{BASE}/siret/32816124500027"),
        200,
        fixture("32816124500027"),
    );
    let c = lookup(&host, &api_key_config(), "328161245").unwrap();
    assert_eq!(c.siren, "328161245");
    assert_eq!(c.siret.as_deref(), Some("32816124500027"));
    assert_eq!(c.city.as_deref(), Some("VANNES"));
    assert!(c.head_office);
    assert_eq!(
        urls(&host),
        [
            format!("{BASE}/siren/328161245"),
            format!("{BASE}/siret/32816124500027")
        ]
    );
}

#[test]
fn siren_lookup_without_a_readable_head_office_answers_from_the_unit() {
    let host = host();
    host.on(
        Method::Get,
        &format!("{BASE}/siret/"),
        404,
        r#"{"header":{"statut":404,"message":"Aucun élément trouvé pour le siret 55204944700014"}}"#,
    );
    host.on(
        Method::Get,
        &format!("{BASE}/siren/552049447"),
        200,
        json!({
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
    );
    let c = lookup(&host, &api_key_config(), "552049447").unwrap();
    assert_eq!(c.legal_name.as_deref(), Some("DEMO"));
    assert_eq!(c.siret, None);
    assert_eq!(urls(&host)[1], format!("{BASE}/siret/55204944700014"));
    assert!(
        host.logs()[0].starts_with("head office SIRET 55204944700014 not readable"),
        "{:?}",
        host.logs()
    );
}

#[test]
fn lookup_errors_carry_their_kind() {
    let host = host();
    host.on(
        Method::Get,
        BASE,
        404,
        r#"{"header":{"statut":404,"message":"Aucun élément trouvé pour le siret 32816124500035"}}"#,
    );
    host.on(
        Method::Get,
        &format!("{BASE}/siret/73282932000074"),
        403,
        r#"{"header":{"statut":403,"message":"Unité légale non diffusable"}}"#,
    );
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

    host.on(Method::Get, BASE, 200, "<html>maintenance</html>");
    let e = lookup(&host, &config, "32816124500027").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Upstream);
    host.fail(Method::Get, BASE, HttpErrorKind::Timeout, "timed out");
    assert_eq!(
        lookup(&host, &config, "32816124500027").unwrap_err().kind,
        ErrorKind::Timeout
    );
}

#[test]
fn lookup_with_an_incomplete_configuration_names_the_field() {
    let host = host();
    let config = json!({"auth_mode": "oauth2", "client_id": "x"});
    let e = lookup(&host, &config, "32816124500027").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("client_secret"));
    assert!(host.requests().is_empty());
}

#[test]
fn switched_off_lookups_are_refused_before_any_request() {
    let host = host();
    serve_fixtures(&host, BASE);
    let mut config = api_key_config();
    config["enabled"] = json!(false);
    let e = lookup(&host, &config, "32816124500027").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("enabled"));
    assert!(e.message.contains("switched off"), "{}", e.message);
    assert!(host.requests().is_empty());
    // Switched on (the default), the same lookup is answered.
    config["enabled"] = json!(true);
    assert!(lookup(&host, &config, "32816124500027").is_ok());
}
