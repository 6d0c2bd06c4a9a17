//! The plugin's entry points (test routine, `calendar.sync`) run in-process through its real
//! root module against the shared [`ScriptedHost`]: no dlopen, no network, and a fake clock
//! whose sleeps are instant and recorded, so that waiting out throttling can be checked to
//! the millisecond. The end-to-end tests run the same paths against the EWS emulator.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use passerelle_exchange_ews::sync::{link_key, Link};
use passerelle_exchange_ews::ExchangeEws;
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::testing::{self, ScriptedHost};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const EWS: &str = "https://mail.example.com/EWS/Exchange.asmx";
const TOKEN_URL: &str =
    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";

const GETFOLDER: &str = include_str!("fixtures/getfolder_calendar.response.xml");
const NO_MAILBOX: &str = include_str!("fixtures/fault_error_nonexistent_mailbox.response.xml");

fn basic() -> Value {
    json!({"ews_url": EWS, "username": "svc@example.com", "password": "pw"})
}

fn oauth() -> Value {
    json!({
        "ews_url": EWS, "use_oauth": true, "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "app-id", "client_secret": "app-secret", "test_mailbox": "jane@example.com"
    })
}

fn xml(status: u16, body: &str) -> Result<HttpResponse, HttpError> {
    Ok(HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "text/xml; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
    })
}

fn busy_fault(back_off_ms: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode><faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message><t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"#
    )
}

fn body_of(request: &HttpRequest) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn manifest_serves_calendar_sync() {
    let m = testing::manifest::<ExchangeEws>().expect("the exported manifest");
    assert_eq!(m.id, "exchange-ews");
    assert_eq!(m.category, Category::Calendar);
    assert_eq!(m.capabilities, ["calendar.sync"]);
    assert!(m.check().is_ok());
    let schema = testing::schema::<ExchangeEws>();
    assert_eq!(
        schema["properties"]["ews_url"]["default"],
        EWS.replace("mail.example.com", "outlook.office365.com")
    );
}

#[test]
fn incomplete_configuration_fails_before_any_request() {
    let host = ScriptedHost::new();
    let report = testing::test::<ExchangeEws>(json!({"use_oauth": true}), &host);
    testing::assert_report_translated::<ExchangeEws>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.steps[0].name, "check configuration");
    assert!(report.summary.contains("tenant id"), "{}", report.summary);
    assert!(host.requests().is_empty());
}

#[test]
fn basic_test_routine_opens_the_own_calendar() {
    let host = ScriptedHost::new();
    host.on_fn(Method::Post, EWS, |_| xml(200, GETFOLDER));
    let report = testing::test::<ExchangeEws>(basic(), &host);
    testing::assert_report_translated::<ExchangeEws>(&report, "fr");
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert!(report.steps[0]
        .detail
        .contains("Exchange 15.0 build 731.10"));
    let request = &host.requests()[0];
    assert!(header(request, "Authorization")
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(
        header(request, "Content-Type"),
        Some("text/xml; charset=utf-8")
    );
    assert_eq!(header(request, "X-AnchorMailbox"), None);
    let body = body_of(request);
    assert!(body.contains("<m:GetFolder>"), "{body}");
    assert!(!body.contains("ExchangeImpersonation"));
}

#[test]
fn oauth_test_routine_gets_an_app_only_token_and_impersonates() {
    let host = ScriptedHost::new();
    host.on(
        Method::Post,
        TOKEN_URL,
        200,
        r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"tok-1"}"#,
    );
    host.on_fn(Method::Post, EWS, |_| xml(200, GETFOLDER));
    let report = testing::test::<ExchangeEws>(oauth(), &host);
    testing::assert_report_translated::<ExchangeEws>(&report, "fr");
    assert_eq!(report.status, Status::Ok, "{report:?}");
    let names: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["get token", "reach EWS", "open calendar"]);
    let requests = host.requests();
    let form = body_of(&requests[0]);
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    assert!(
        form.contains("scope=https%3A%2F%2Foutlook.office365.com%2F.default"),
        "{form}"
    );
    assert!(form.contains("client_id=app-id"), "{form}");
    let ews = &requests[1];
    assert_eq!(header(ews, "Authorization"), Some("Bearer tok-1"));
    assert_eq!(header(ews, "X-AnchorMailbox"), Some("jane@example.com"));
    assert!(body_of(ews).contains("<t:PrimarySmtpAddress>jane@example.com</t:PrimarySmtpAddress>"));
}

#[test]
fn oauth_refuses_a_token_twice_then_says_what_to_grant() {
    let host = ScriptedHost::new();
    host.on(
        Method::Post,
        TOKEN_URL,
        200,
        r#"{"access_token":"tok","expires_in":3599}"#,
    );
    host.on_fn(Method::Post, EWS, |_| {
        Ok(HttpResponse {
            status: 401,
            headers: vec![(
                "x-ms-diagnostics".into(),
                r#"2000008;reason="The token has an invalid audience.";error_category="invalid_token""#.into(),
            )],
            body: Vec::new(),
        })
    });
    let report = testing::test::<ExchangeEws>(oauth(), &host);
    assert_eq!(report.status, Status::Failed);
    assert!(
        report.summary.contains("full_access_as_app"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("invalid audience"),
        "{}",
        report.summary
    );
    // One token for the step, a forced one for the routine's call, one refresh after the 401.
    let ews_calls = host.requests().iter().filter(|r| r.url == EWS).count();
    assert_eq!(ews_calls, 2, "one retry with a fresh token");
}

#[test]
fn server_busy_waits_back_off_milliseconds_on_the_host_clock() {
    let host = ScriptedHost::new();
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    host.on_fn(Method::Post, EWS, move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) < 2 {
            xml(500, &busy_fault(2500))
        } else {
            xml(200, GETFOLDER)
        }
    });
    let report = testing::test::<ExchangeEws>(basic(), &host);
    assert_eq!(report.status, Status::Warning, "{report:?}");
    assert_eq!(host.slept_ms(), 5000);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(host
        .logs()
        .iter()
        .any(|l| l.contains("waiting 2500 ms as asked")));

    // Three attempts at most in the standard mode, five in the Office 365 mode.
    for (office365, attempts) in [(false, 3), (true, 5)] {
        let host = ScriptedHost::new();
        host.on_fn(Method::Post, EWS, |_| xml(500, &busy_fault(100)));
        let mut config = basic();
        config["office365_mode"] = json!(office365);
        let report = testing::test::<ExchangeEws>(config, &host);
        assert_eq!(report.status, Status::Failed);
        assert!(
            report.summary.contains("ErrorServerBusy"),
            "{}",
            report.summary
        );
        assert_eq!(host.requests().len(), attempts);
        assert_eq!(host.slept_ms(), 100 * (attempts as u64 - 1));
    }

    // A wait longer than Exchange Online would ever need is not slept through.
    let host = ScriptedHost::new();
    host.on_fn(Method::Post, EWS, |_| xml(500, &busy_fault(3_600_000)));
    let report = testing::test::<ExchangeEws>(basic(), &host);
    assert_eq!(report.status, Status::Failed);
    assert_eq!(host.slept_ms(), 0);
    assert!(report.summary.contains("3600000 ms"), "{}", report.summary);
}

#[test]
fn a_real_nonexistent_mailbox_fault_names_the_field() {
    let host = ScriptedHost::new();
    host.on_fn(Method::Post, EWS, |_| xml(500, NO_MAILBOX));
    let mut config = basic();
    config["use_impersonation"] = json!(true);
    config["test_mailbox"] = json!("ghost@example.com");
    let report = testing::test::<ExchangeEws>(config, &host);
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.steps[0].status, Status::Ok);
    assert!(
        report.summary.contains("ghost@example.com"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("ErrorNonExistentMailbox"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("test_mailbox"),
        "{}",
        report.summary
    );
}

#[test]
fn html_instead_of_soap_points_at_the_url() {
    let host = ScriptedHost::new();
    host.on(
        Method::Post,
        EWS,
        200,
        "<html><body>Sign in to Outlook</body></html>",
    );
    let report = testing::test::<ExchangeEws>(basic(), &host);
    assert_eq!(report.status, Status::Failed);
    assert!(
        report.summary.contains("not an EWS answer"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("/EWS/Exchange.asmx"),
        "{}",
        report.summary
    );
}

fn sync_input() -> Value {
    json!({
        "mailboxes": ["jane@example.com"],
        "window": {"start": "2025-03-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"},
        "appointments": [{
            "id": "SO-1", "mailbox": "jane@example.com", "subject": "Visit",
            "start": "2025-03-04T09:00:00+01:00", "end": "2025-03-04T10:00:00+01:00",
            "location": "Lyon"
        }]
    })
}

fn view(items: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:FindItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="1" IncludesLastItemInRange="true"><t:Items>{items}</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse></s:Body></s:Envelope>"#
    )
}

const CREATED: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:CreateItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:CalendarItem><t:ItemId Id="AAMk-1" ChangeKey="DwAA-1"/></t:CalendarItem></m:Items></m:CreateItemResponseMessage></m:ResponseMessages></m:CreateItemResponse></s:Body></s:Envelope>"#;

const OURS: &str = r#"<t:CalendarItem><t:ItemId Id="AAMk-1" ChangeKey="DwAA-1"/><t:Subject>Visit</t:Subject><t:Start>2025-03-04T08:00:00Z</t:Start><t:End>2025-03-04T09:00:00Z</t:End><t:Location>Lyon</t:Location></t:CalendarItem>"#;
const THEIRS: &str = r#"<t:CalendarItem><t:ItemId Id="AAMk-9" ChangeKey="DwAA-9"/><t:Subject>Dentist</t:Subject><t:Start>2025-03-05T16:00:00Z</t:Start><t:End>2025-03-05T17:00:00Z</t:End></t:CalendarItem>"#;

#[test]
fn sync_creates_links_then_changes_nothing() {
    let host = ScriptedHost::new();
    let created = Arc::new(AtomicU32::new(0));
    let c = created.clone();
    host.on_fn(Method::Post, EWS, move |r| {
        let body = String::from_utf8(r.body.clone()).unwrap();
        if body.contains("<m:FindItem") {
            if c.load(Ordering::SeqCst) == 0 {
                xml(200, &view(THEIRS))
            } else {
                xml(200, &view(&format!("{OURS}{THEIRS}")))
            }
        } else if body.contains("<m:CreateItem") {
            c.fetch_add(1, Ordering::SeqCst);
            xml(200, CREATED)
        } else {
            panic!("unexpected request {body}")
        }
    });
    let input: CalendarSyncInput = serde_json::from_value(sync_input()).unwrap();
    let out = testing::invoke::<ExchangeEws, CalendarSync>(&input, basic(), &host).unwrap();
    let jane = &out.mailboxes[0];
    assert_eq!(
        (jane.created, jane.updated, jane.unchanged, jane.deleted),
        (1, 0, 0, 0)
    );
    assert!(jane.errors.is_empty(), "{:?}", jane.errors);
    assert_eq!(jane.events.len(), 1);
    assert_eq!(jane.events[0].subject, "Dentist");
    let link: Link =
        serde_json::from_value(host.state()[&link_key("jane@example.com", "SO-1")].clone())
            .unwrap();
    assert_eq!(
        (link.item_id.as_str(), link.change_key.as_str()),
        ("AAMk-1", "DwAA-1")
    );

    let before = host.requests().len();
    let out = testing::invoke::<ExchangeEws, CalendarSync>(&input, basic(), &host).unwrap();
    let jane = &out.mailboxes[0];
    assert_eq!(
        (jane.created, jane.updated, jane.unchanged, jane.deleted),
        (0, 0, 1, 0)
    );
    assert_eq!(
        jane.events.len(),
        1,
        "our own item is not reported as an event"
    );
    assert_eq!(host.requests().len(), before + 1, "only the FindItem");
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

#[test]
fn sync_stops_at_refused_credentials_and_checks_input_first() {
    let host = ScriptedHost::new();
    host.on(Method::Post, EWS, 401, "");
    let input: CalendarSyncInput = serde_json::from_value(sync_input()).unwrap();
    let e = testing::invoke::<ExchangeEws, CalendarSync>(&input, basic(), &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(e.field.as_deref(), Some("password"));

    let host = ScriptedHost::new();
    let mut bad = sync_input();
    bad["appointments"][0]["start"] = json!("tomorrow");
    let input: CalendarSyncInput = serde_json::from_value(bad).unwrap();
    let e = testing::invoke::<ExchangeEws, CalendarSync>(&input, basic(), &host).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert_eq!(e.field.as_deref(), Some("appointments[0].start"));
    assert!(host.requests().is_empty());
}

#[test]
fn sync_reports_a_calendar_too_big_for_one_view() {
    let host = ScriptedHost::new();
    host.on_fn(Method::Post, EWS, |_| {
        xml(
            200,
            &view(THEIRS).replace(
                r#"IncludesLastItemInRange="true""#,
                r#"IncludesLastItemInRange="false""#,
            ),
        )
    });
    let input: CalendarSyncInput = serde_json::from_value(sync_input()).unwrap();
    let out = testing::invoke::<ExchangeEws, CalendarSync>(&input, basic(), &host).unwrap();
    let jane = &out.mailboxes[0];
    assert_eq!(jane.created, 0);
    assert_eq!(jane.errors.len(), 1);
    assert!(jane.errors[0].appointment_id.is_none());
    assert!(
        jane.errors[0].message.contains("shorter window"),
        "{:?}",
        jane.errors
    );
    assert_eq!(
        host.requests().len(),
        1,
        "nothing written on a partial view"
    );
}

#[test]
fn ntlm_asks_the_host_for_windows_authentication_without_an_authorization_header() {
    let host = ScriptedHost::new();
    host.on_fn(Method::Post, EWS, |_| xml(200, GETFOLDER));
    let mut config = basic();
    config["username"] = json!("CONTOSO\\svc");
    config["auth_method"] = json!("ntlm");
    let report = testing::test::<ExchangeEws>(config, &host);
    assert_eq!(report.status, Status::Ok, "{report:?}");
    let request = &host.requests()[0];
    assert_eq!(header(request, "Authorization"), None);
    assert_eq!(
        request.auth,
        Some(HttpAuth::Ntlm {
            user: "svc".into(),
            domain: "CONTOSO".into(),
            password: "pw".into()
        })
    );
}

#[test]
fn basic_refused_by_a_windows_only_server_says_to_choose_ntlm() {
    let host = ScriptedHost::new();
    host.on_fn(Method::Post, EWS, |_| {
        Ok(HttpResponse {
            status: 401,
            headers: vec![
                ("WWW-Authenticate".into(), "Negotiate".into()),
                ("WWW-Authenticate".into(), "NTLM".into()),
            ],
            body: Vec::new(),
        })
    });
    let report = testing::test::<ExchangeEws>(basic(), &host);
    assert_eq!(report.status, Status::Failed);
    let detail = &report.steps[0].detail;
    assert!(
        detail.contains("does not accept basic authentication"),
        "{detail}"
    );
    assert!(detail.contains("Negotiate, NTLM"), "{detail}");
    assert!(detail.contains("auth_method = ntlm"), "{detail}");
}

#[test]
fn a_password_against_exchange_online_is_refused_before_any_request() {
    let host = ScriptedHost::new();
    let mut config = basic();
    config["ews_url"] = json!("https://outlook.office365.com/EWS/Exchange.asmx");
    let report = testing::test::<ExchangeEws>(config, &host);
    assert_eq!(report.status, Status::Failed);
    assert!(
        report.summary.contains("calendar-graph"),
        "{}",
        report.summary
    );
    assert!(host.requests().is_empty());
}

#[test]
fn the_french_catalog_translates_the_whole_schema() {
    testing::assert_catalog_complete::<ExchangeEws>("fr");
}
