//! Fuzzing of what Microsoft Graph sends back (issue 19): calendar-view events and OData
//! errors, fed with Graph's documented answers (`tests/emulators/fixtures/graph`) mutated by
//! the shared generator (`passerelle_plugin_api::testing::fuzz`), and the ERP's RFC 3339
//! times. No input may panic; a refused time is quoted in its refusal. `PASSERELLE_FUZZ_CASES`
//! runs longer (see README, "Fuzzing").

#![allow(clippy::unwrap_used)]

use passerelle_calendar_graph::errors::{self, Context, ODataError};
use passerelle_calendar_graph::event::{self, Event};
use passerelle_plugin_api::testing::fuzz;
use serde_json::Value;

fn documented() -> Vec<Value> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/emulators/fixtures/graph"
    );
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 4, "Graph fixtures missing in {dir}");
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn fuzz_graph_events() {
    let mut seeds = documented();
    // An event as this plugin selects it, with its ERP id property, in UTC and in a zone.
    seeds.push(serde_json::json!({"value": [{
        "id": "AAMk", "subject": "Visite", "isAllDay": false, "isCancelled": false,
        "start": {"dateTime": "2025-03-04T08:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2025-03-04T09:00:00", "timeZone": "Romance Standard Time"},
        "location": {"displayName": "Lyon"}, "showAs": "busy", "sensitivity": "normal",
        "singleValueExtendedProperties": [{"id": event::ERP_ID_PROPERTY, "value": "erp-1"}]
    }], "@odata.nextLink": "https://graph.microsoft.com/v1.0/next"}));
    fuzz::json("calendar-graph.events", &seeds, 2000, |page| {
        let Some(items) = page.get("value").and_then(Value::as_array) else {
            return;
        };
        for item in items {
            if let Ok(e) = serde_json::from_value::<Event>(item.clone()) {
                let _ = (e.erp_id(), e.location(), e.start_utc(), e.end_utc());
                let _ = event::output_time(e.start.as_ref());
                let _ = event::output_time(e.end.as_ref());
            }
        }
    });
}

#[test]
fn fuzz_graph_errors() {
    let seeds = documented();
    fuzz::json_bytes("calendar-graph.odata_error", &seeds, 1500, |body| {
        let e: ODataError = ODataError::read(body);
        let cx = Context {
            mailbox: "room@example.com",
            client_id: "client",
        };
        for status in [400, 401, 403, 404, 429, 500] {
            let error = errors::describe(status, &e, cx);
            assert!(!error.message.is_empty());
        }
    });
}

#[test]
fn fuzz_erp_times() {
    let seeds: Vec<String> = [
        "2025-03-04T09:00:00+01:00",
        "2025-03-04T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
    ]
    .map(String::from)
    .to_vec();
    let tokens: &[&[u8]] = &[
        b"-", b":", b"T", b"Z", b"+23:59", b"-23:59", b".", b"60", b"24",
    ];
    fuzz::text(
        "calendar-graph.times",
        &seeds,
        tokens,
        2000,
        |s| match event::parse_rfc3339(s) {
            Ok(t) => {
                let text = event::utc(t.unix_timestamp());
                let back = event::parse_rfc3339(&text).unwrap();
                assert_eq!(back.unix_timestamp(), t.unix_timestamp(), "{s:?} -> {text}");
            }
            Err(e) => assert!(e.contains(&format!("{s:?}")), "{e}"),
        },
    );
}
