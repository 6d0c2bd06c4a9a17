//! The plugin's entry points (test routine, `calendar.sync`) run in-process through its real
//! root module against the shared [`ScriptedHost`]: no dlopen, no network, and a fake clock
//! whose sleeps are instant and recorded, so that obeying `Retry-After` can be checked to the
//! millisecond. Answers use the shapes of Microsoft's published samples
//! (`tests/emulators/fixtures/graph/`); the end-to-end tests run the same paths against the
//! Graph emulator.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use passerelle_calendar_graph::event::ERP_ID_PROPERTY;
use passerelle_calendar_graph::CalendarGraph;
use passerelle_plugin_api::prelude::*;
use passerelle_plugin_api::testing::{self, ScriptedHost};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const GRAPH: &str = "https://graph.example/v1.0";
const TOKEN_URL: &str =
    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
const CREATED: &str = include_str!("../../../tests/emulators/fixtures/graph/event_created.json");
const INVALID_USER: &str =
    include_str!("../../../tests/emulators/fixtures/graph/error_invalid_user.json");

fn config() -> Value {
    json!({
        "tenant_id": "contoso.onmicrosoft.com", "client_id": "app-id",
        "client_secret": "app-secret", "test_mailbox": "jane@contoso.com", "graph_url": GRAPH
    })
}

fn jwt(roles: &[&str]) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.sig",
        b64(json!({"typ": "JWT", "alg": "RS256"})),
        b64(json!({"aud": "https://graph.microsoft.com", "roles": roles}))
    )
}

fn with_token(host: &ScriptedHost, roles: &[&str]) {
    host.on(
        Method::Post,
        TOKEN_URL,
        200,
        json!({"token_type": "Bearer", "expires_in": 3599, "access_token": jwt(roles)}).to_string(),
    );
}

fn answer(status: u16, body: &str) -> Result<HttpResponse, HttpError> {
    Ok(HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    })
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
    let m = testing::manifest::<CalendarGraph>().expect("the exported manifest");
    assert_eq!(m.id, "calendar-graph");
    assert_eq!(m.category, Category::Calendar);
    assert_eq!(m.capabilities, ["calendar.sync"]);
    assert!(m.check().is_ok());
    let schema = testing::schema::<CalendarGraph>();
    assert_eq!(
        schema["properties"]["graph_url"]["default"],
        "https://graph.microsoft.com/v1.0"
    );
}

#[test]
fn test_routine_gets_a_graph_token_checks_roles_and_opens_the_calendar() {
    let host = ScriptedHost::new();
    with_token(&host, &["Calendars.ReadWrite"]);
    host.on(
        Method::Get,
        &format!("{GRAPH}/users/jane@contoso.com/calendar"),
        200,
        r#"{"id":"AAMk","name":"Calendar","canEdit":true}"#,
    );
    let report = testing::test::<CalendarGraph>(config(), &host);
    testing::assert_report_translated::<CalendarGraph>(&report, "fr");
    assert_eq!(report.status, Status::Ok, "{report:?}");
    let names: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["get token", "check permission", "open calendar"]);
    let requests = host.requests();
    let form = String::from_utf8(requests[0].body.clone()).unwrap();
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    assert!(
        form.contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"),
        "{form}"
    );
    assert!(header(&requests[1], "Authorization")
        .unwrap()
        .starts_with("Bearer "));

    // Only the read permission: named, with what to grant.
    let host = ScriptedHost::new();
    with_token(&host, &["Calendars.Read"]);
    host.on(
        Method::Get,
        &format!("{GRAPH}/users/"),
        200,
        r#"{"name":"Calendar"}"#,
    );
    let report = testing::test::<CalendarGraph>(config(), &host);
    testing::assert_report_translated::<CalendarGraph>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    assert!(
        report.summary.starts_with("check permission:"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("only Calendars.Read"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("admin consent"),
        "{}",
        report.summary
    );
}

#[test]
fn expired_secret_and_unknown_mailbox_are_explained_with_their_field() {
    let host = ScriptedHost::new();
    host.on(
        Method::Post,
        TOKEN_URL,
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app 'app-id' are expired.","error_codes":[7000222]}"#,
    );
    let report = testing::test::<CalendarGraph>(config(), &host);
    testing::assert_report_translated::<CalendarGraph>(&report, "fr");
    assert_eq!(report.status, Status::Failed);
    assert!(report.summary.contains("has expired"), "{}", report.summary);
    assert!(
        report.summary.contains("Certificates & secrets"),
        "{}",
        report.summary
    );
    assert_eq!(report.steps[1].status, Status::Skipped);

    let host = ScriptedHost::new();
    with_token(&host, &["Calendars.ReadWrite"]);
    host.on(Method::Get, &format!("{GRAPH}/users/"), 404, INVALID_USER);
    let report = testing::test::<CalendarGraph>(config(), &host);
    assert!(
        report.summary.starts_with("open calendar:"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("ErrorInvalidUser"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("test_mailbox"),
        "{}",
        report.summary
    );
}

fn sync_input(appointments: Value) -> CalendarSyncInput {
    serde_json::from_value(json!({
        "mailboxes": ["jane@contoso.com"],
        "window": {"start": "2025-03-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"},
        "appointments": appointments,
    }))
    .unwrap()
}

#[test]
fn sync_pages_obeys_retry_after_and_writes_the_erp_id_on_the_event() {
    let host = ScriptedHost::new();
    with_token(&host, &["Calendars.ReadWrite"]);
    let views = Arc::new(AtomicU32::new(0));
    let seen = views.clone();
    let view = format!("{GRAPH}/users/jane@contoso.com/calendarView");
    let next = format!("{GRAPH}/users/jane@contoso.com/calendarView?page=2");
    let next_link = next.clone();
    host.on_fn(Method::Get, &view, move |request| {
        if request.url == next_link {
            return answer(
                200,
                r#"{"value":[{"id":"DENTIST","subject":"Dentist","isAllDay":false,
                    "start":{"dateTime":"2025-03-06T08:00:00.0000000","timeZone":"UTC"},
                    "end":{"dateTime":"2025-03-06T09:00:00.0000000","timeZone":"UTC"}}]}"#,
            );
        }
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(HttpResponse {
                status: 429,
                headers: vec![("Retry-After".into(), "3".into())],
                body: br#"{"error":{"code":"ApplicationThrottled","message":"Application is over its MailboxConcurrency limit."}}"#.to_vec(),
            });
        }
        answer(
            200,
            &json!({"value": [], "@odata.nextLink": next_link}).to_string(),
        )
    });
    host.on(
        Method::Post,
        &format!("{GRAPH}/users/jane@contoso.com/events"),
        201,
        CREATED,
    );
    let input = sync_input(json!([{
        "id": "SO-1", "mailbox": "jane@contoso.com", "subject": "Visite",
        "start": "2025-03-04T09:00:00+01:00", "end": "2025-03-04T10:00:00+01:00",
        "location": "Lyon", "body": "Ref SO-1"
    }]));
    let out = testing::invoke::<CalendarGraph, CalendarSync>(&input, config(), &host).unwrap();
    let m = &out.mailboxes[0];
    assert_eq!((m.created, m.updated, m.unchanged, m.deleted), (1, 0, 0, 0));
    assert!(m.errors.is_empty(), "{m:?}");
    assert_eq!(m.events.len(), 1);
    assert_eq!(m.events[0].start, "2025-03-06T08:00:00Z");
    assert_eq!(
        host.slept_ms(),
        3000,
        "Retry-After: 3 obeyed on the host clock"
    );

    let requests = host.requests();
    let first = requests.iter().find(|r| r.url.starts_with(&view)).unwrap();
    assert_eq!(header(first, "Prefer"), Some("outlook.timezone=\"UTC\""));
    assert!(
        first.url.contains("startDateTime=2025-03-01T00%3A00%3A00Z"),
        "{}",
        first.url
    );
    assert!(
        first.url.contains(
            "$expand=singleValueExtendedProperties%28%24filter%3Did%20eq%20%27String%20%7B"
        ),
        "{}",
        first.url
    );
    assert!(
        requests.iter().any(|r| r.url == next),
        "the next link was followed"
    );
    let post = requests
        .iter()
        .find(|r| r.method == Method::Post && r.url.starts_with(GRAPH))
        .unwrap();
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(body["isReminderOn"], false);
    assert_eq!(
        body["start"],
        json!({"dateTime": "2025-03-04T08:00:00", "timeZone": "UTC"})
    );
    assert_eq!(
        body["singleValueExtendedProperties"],
        json!([{"id": ERP_ID_PROPERTY, "value": "SO-1"}])
    );
    // The link keeps the id Graph gave (the documentation's sample event).
    let state = host.state();
    let link = state.values().next().unwrap();
    assert_eq!(link["event_id"], "AAMkAGI1AAAt9AHjAAA=");
}

#[test]
fn lost_state_finds_events_by_their_erp_id_instead_of_duplicating_them() {
    let host = ScriptedHost::new();
    with_token(&host, &["Calendars.ReadWrite"]);
    host.on(
        Method::Get,
        &format!("{GRAPH}/users/jane@contoso.com/calendarView"),
        200,
        json!({"value": [
            {"id": "E1", "subject": "Visite", "isAllDay": false,
             "start": {"dateTime": "2025-03-04T08:00:00.0000000", "timeZone": "UTC"},
             "end": {"dateTime": "2025-03-04T09:00:00.0000000", "timeZone": "UTC"},
             "location": {"displayName": "Lyon"},
             "singleValueExtendedProperties": [{"id": ERP_ID_PROPERTY, "value": "SO-1"}]},
            {"id": "E2", "subject": "Dropped", "isAllDay": false,
             "start": {"dateTime": "2025-03-05T08:00:00.0000000", "timeZone": "UTC"},
             "end": {"dateTime": "2025-03-05T09:00:00.0000000", "timeZone": "UTC"},
             "singleValueExtendedProperties": [{"id": ERP_ID_PROPERTY, "value": "SO-2"}]}
        ]})
        .to_string(),
    );
    host.on(
        Method::Delete,
        &format!("{GRAPH}/users/jane@contoso.com/events/E2"),
        204,
        "",
    );
    let input = sync_input(json!([{
        "id": "SO-1", "mailbox": "jane@contoso.com", "subject": "Visite",
        "start": "2025-03-04T09:00:00+01:00", "end": "2025-03-04T10:00:00+01:00",
        "location": "Lyon"
    }]));
    let out = testing::invoke::<CalendarGraph, CalendarSync>(&input, config(), &host).unwrap();
    let m = &out.mailboxes[0];
    assert_eq!(
        (m.created, m.updated, m.unchanged, m.deleted),
        (0, 0, 1, 1),
        "{m:?}"
    );
    assert!(
        m.events.is_empty(),
        "the ERP's events are not foreign: {m:?}"
    );
    assert!(!host
        .requests()
        .iter()
        .any(|r| r.method == Method::Post && r.url.starts_with(GRAPH)));
    assert_eq!(host.state().len(), 1, "the link of SO-1 is saved again");
}

#[test]
fn the_french_catalog_translates_the_whole_schema() {
    testing::assert_catalog_complete::<CalendarGraph>("fr");
}
