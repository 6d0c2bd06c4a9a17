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

/// An instance saved before INSEE closed its OAuth2 gateway.
fn oauth_config() -> Value {
    json!({
        "auth_mode": "oauth2",
        "client_id": "the-client",
        "client_secret": "the-secret",
        "token_url": TOKEN_URL,
        "base_url": LEGACY,
    })
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
    let m = testing::manifest::<Sirene>().expect("the exported manifest");
    assert!(m.check().is_ok());
    assert_eq!(m.id, "sirene");
    assert_eq!(m.name, "INSEE Sirene");
    assert_eq!(m.category, Category::Company);
    assert_eq!(m.capabilities, ["company.lookup", "company.search"]);
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
    testing::assert_report_translated::<Sirene>(&report, "fr");
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
    testing::assert_report_translated::<Sirene>(&report, "fr");
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
        r#"{"message":"Unauthorized","http_status_code":401}"#,
    );
    let report = testing::test::<Sirene>(api_key_config(), &host);
    testing::assert_report_translated::<Sirene>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    assert!(
        report.summary.starts_with(
            "reach service: the API key was refused (HTTP 401: \"Unauthorized\"): check that \
             `api_key` holds the key of an application subscribed to API Sirene in the INSEE \
             portal (portail-api.insee.fr)"
        ),
        "{}",
        report.summary
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
fn a_saved_oauth2_instance_is_refused_with_the_migration_steps() {
    let host = host();
    let report = testing::test::<Sirene>(oauth_config(), &host);
    assert_eq!(report.status, Status::Failed);
    assert_eq!(
        step_names(&report),
        [("check configuration", Status::Failed)]
    );
    let detail = &report.steps[0].detail;
    assert!(detail.contains("closed its OAuth2 gateway"), "{detail}");
    assert!(detail.contains("10 September 2025"), "{detail}");
    assert!(detail.contains("portail-api.insee.fr"), "{detail}");
    assert!(!detail.contains("the-secret"), "{detail}");

    let e = lookup(&host, &oauth_config(), "21920023500014").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("auth_mode"));
    assert!(
        e.message.contains("paste its API key in `api_key`"),
        "{}",
        e.message
    );
    // Even with an API key filled in, the old gateway's base is refused.
    let mut config = oauth_config();
    config["auth_mode"] = json!("api_key");
    config["api_key"] = json!("k");
    let e = lookup(&host, &config, "21920023500014").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("base_url"));
    assert!(
        e.message
            .contains(BASE.trim_start_matches("https://sirene.test")),
        "{}",
        e.message
    );
    assert!(
        host.requests().is_empty(),
        "nothing may reach the closed gateway"
    );
}

#[test]
fn an_old_gateway_token_pasted_as_key_gets_a_401_that_says_so() {
    let host = host();
    host.on(
        Method::Get,
        BASE,
        401,
        r#"{"message":"Unauthorized","http_status_code":401}"#,
    );
    let mut config = api_key_config();
    config["api_key"] = json!("Bearer 214c0e62-bc3c-4fd6-959f-67e5400bdd41");
    let e = lookup(&host, &config, "21920023500014").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(e.field.as_deref(), Some("api_key"));
    assert!(e.message.contains("HTTP 401"), "{}", e.message);
    assert!(e.message.contains("\"Jeton\""), "{}", e.message);
    assert!(
        e.message.contains("looks like an access token"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("214c0e62"), "{}", e.message);
    // A key of the portal's shape gets the same advice, without the guess.
    config["api_key"] = json!("f339d307-3eac-42e5-b9d3-073eac62e5fb");
    let e = lookup(&host, &config, "21920023500014").unwrap_err();
    assert!(e.message.contains("\"Jeton\""), "{}", e.message);
    assert!(!e.message.contains("looks like"), "{}", e.message);
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

/// A `/siret?q=` answer listing the establishments of the given fixtures.
fn search_answer(sirets: &[&str], total: u64, debut: u64) -> String {
    let list: Vec<Value> = sirets
        .iter()
        .map(|s| serde_json::from_str::<Value>(&fixture(s)).unwrap()["etablissement"].clone())
        .collect();
    json!({
        "header": {"statut": 200, "message": "OK", "total": total, "debut": debut, "nombre": list.len()},
        "etablissements": list
    })
    .to_string()
}

#[test]
fn siren_lookup_costs_one_request_for_the_head_office() {
    let host = host();
    host.on(
        Method::Get,
        &format!("{BASE}/siret?"),
        200,
        search_answer(&["32816124500027"], 1, 0),
    );
    let c = lookup(&host, &api_key_config(), "328161245").unwrap();
    assert_eq!(c.siren, "328161245");
    assert_eq!(c.siret.as_deref(), Some("32816124500027"));
    assert_eq!(c.city.as_deref(), Some("VANNES"));
    assert_eq!(
        c.legal_category_label.as_deref(),
        Some("SAS, société par actions simplifiée")
    );
    assert!(c.activity_label.is_some());
    assert!(c.head_office);
    assert_eq!(
        urls(&host),
        [format!(
            "{BASE}/siret?q=siren%3A328161245+AND+etablissementSiege%3Atrue&nombre=1"
        )]
    );
}

#[test]
fn siren_lookup_of_an_unknown_unit_is_not_found() {
    let host = host();
    host.on(
        Method::Get,
        &format!("{BASE}/siret?"),
        404,
        r#"{"header":{"statut":404,"message":"Aucun élément trouvé pour q=siren:552049447 AND etablissementSiege:true"}}"#,
    );
    let e = lookup(&host, &api_key_config(), "552049447").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.message,
        "no legal unit with SIREN 552049447 in the Sirene register"
    );
}

fn search(
    host: &ScriptedHost,
    query: CompanySearchQuery,
) -> Result<CompanySearchPage, PluginError> {
    testing::invoke::<Sirene, CompanySearch>(&query, api_key_config(), host)
}

#[test]
fn search_pages_through_the_results() {
    let host = host();
    host.on_fn(Method::Get, &format!("{BASE}/siret?"), |r| {
        let body = if r.url.ends_with("&debut=0") {
            search_answer(&["21920023500014", "32816124500027"], 3, 0)
        } else {
            search_answer(&["55204944700006"], 3, 2)
        };
        Ok(response(200, &[], &body))
    });
    let query = CompanySearchQuery {
        name: "Clamart".into(),
        postal_code: Some("92140".into()),
        per_page: Some(2),
        ..CompanySearchQuery::default()
    };
    let first = search(&host, query.clone()).unwrap();
    assert_eq!(first.total, Some(3));
    assert_eq!(first.companies.len(), 2);
    assert_eq!(
        first.companies[0].activity_label.as_deref(),
        Some("Administration publique générale")
    );
    assert_eq!(first.next_page.as_deref(), Some("2"));
    let second = search(
        &host,
        CompanySearchQuery {
            page: first.next_page.clone(),
            ..query
        },
    )
    .unwrap();
    assert_eq!(second.companies.len(), 1);
    assert_eq!(second.next_page, None);
    let sent = urls(&host);
    assert_eq!(sent.len(), 2);
    assert!(
        sent[0].contains("codePostalEtablissement%3A92140"),
        "{}",
        sent[0]
    );
    assert!(sent[0].ends_with("&nombre=2&debut=0"), "{}", sent[0]);
    assert!(sent[1].ends_with("&nombre=2&debut=2"), "{}", sent[1]);
}

#[test]
fn search_without_match_is_an_empty_page_and_bad_input_never_leaves() {
    let host = host();
    host.on(
        Method::Get,
        &format!("{BASE}/siret?"),
        404,
        r#"{"header":{"statut":404,"message":"Aucun élément trouvé"}}"#,
    );
    let page = search(
        &host,
        CompanySearchQuery {
            name: "Nobody at all".into(),
            ..CompanySearchQuery::default()
        },
    )
    .unwrap();
    assert!(page.companies.is_empty());
    assert_eq!((page.total, page.next_page), (Some(0), None));
    let e = search(
        &host,
        CompanySearchQuery {
            name: "ACME".into(),
            postal_code: Some("75".into()),
            ..CompanySearchQuery::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("postal_code"));
    assert_eq!(host.requests().len(), 1);
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
    let config = json!({"api_key": " "});
    let e = lookup(&host, &config, "32816124500027").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.field.as_deref(), Some("api_key"));
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

#[test]
fn the_french_catalog_translates_the_whole_schema() {
    testing::assert_catalog_complete::<Sirene>("fr");
}
