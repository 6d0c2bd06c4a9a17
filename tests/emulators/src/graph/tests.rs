use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;

/// One HTTP/1.1 exchange over a plain socket: (status, JSON body or Null).
fn call(
    emu: &GraphEmulator,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(emu.server.addr()).unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let json = answer
        .find("\r\n\r\n")
        .and_then(|i| {
            let rest = &answer[i + 4..];
            // Chunked or not, the JSON object is between the outer braces.
            let (a, b) = (rest.find('{')?, rest.rfind('}')?);
            serde_json::from_str(&rest[a..=b]).ok()
        })
        .unwrap_or(Value::Null);
    (status, json)
}

fn token(emu: &GraphEmulator, secret: &str) -> (u16, Value) {
    let form = format!(
        "grant_type=client_credentials&client_id={DEFAULT_CLIENT_ID}&client_secret={secret}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
    );
    call(
        emu,
        "POST",
        &format!("/{DEFAULT_TENANT}/oauth2/v2.0/token"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    )
}

#[test]
fn refuses_what_graph_refuses() {
    let emu = GraphEmulator::start(GraphOptions::default()).unwrap();
    let (status, body) = token(&emu, "wrong");
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000215"));
    let (status, body) = call(
        &emu,
        "POST",
        "/nowhere.example/oauth2/v2.0/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "grant_type=client_credentials",
    );
    assert_eq!((status, &body["error_codes"][0]), (400, &json!(90002)));
    let (status, body) = token(&emu, "graph-app-secret");
    assert_eq!(status, 200, "{body}");
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let auth = [("Authorization", bearer.as_str())];

    let (status, body) = call(
        &emu,
        "GET",
        "/v1.0/users/jane@contoso.com/calendar",
        &[],
        "",
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("InvalidAuthenticationToken"))
    );
    assert!(body["error"]["innerError"]["request-id"].is_string());
    let (status, body) = call(
        &emu,
        "GET",
        "/v1.0/users/nobody@contoso.com/calendar",
        &auth,
        "",
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ErrorInvalidUser"))
    );
    let (status, body) = call(
        &emu,
        "GET",
        "/v1.0/users/jane@contoso.com/calendarView",
        &auth,
        "",
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("ErrorInvalidParameter"))
    );
    let (status, _) = call(
        &emu,
        "GET",
        "/v1.0/users/jane@contoso.com/calendarView?startDateTime=soon&endDateTime=2025-04-01T00:00:00Z",
        &auth,
        "",
    );
    assert_eq!(status, 400);

    let post = |body: &str| {
        let headers = [auth[0], ("Content-Type", "application/json")];
        call(
            &emu,
            "POST",
            "/v1.0/users/jane@contoso.com/events",
            &headers,
            body,
        )
    };
    let (status, body) = post(r#"{"subject":"x"}"#);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("ErrorPropertyValidationFailure"))
    );
    let (status, _) = post(
        r#"{"subject":"x","start":{"dateTime":"tomorrow","timeZone":"UTC"},"end":{"dateTime":"2025-03-04T09:00:00","timeZone":"UTC"}}"#,
    );
    assert_eq!(status, 400);
    let (status, body) = post(
        r#"{"subject":"x","start":{"dateTime":"2025-03-04T08:00:00","timeZone":"Mars/Olympus"},"end":{"dateTime":"2025-03-04T09:00:00","timeZone":"UTC"}}"#,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("TimeZoneNotSupportedException"))
    );
    let (status, _) = post(
        r#"{"subject":"x","isAllDay":true,"start":{"dateTime":"2025-03-04T08:00:00","timeZone":"UTC"},"end":{"dateTime":"2025-03-05T00:00:00","timeZone":"UTC"}}"#,
    );
    assert_eq!(status, 400);
    let (status, created) = post(
        r#"{"subject":"Visit","start":{"dateTime":"2025-03-04T08:00:00","timeZone":"UTC"},"end":{"dateTime":"2025-03-04T09:00:00","timeZone":"UTC"},"singleValueExtendedProperties":[{"id":"String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color","value":"Green"}]}"#,
    );
    assert_eq!(status, 201, "{created}");
    // The documentation's sample event has every property the emulator writes.
    let sample: Value =
        serde_json::from_str(include_str!("../../fixtures/graph/event_created.json")).unwrap();
    for key in created.as_object().unwrap().keys() {
        assert!(
            sample.get(key).is_some(),
            "{key} is not in Graph's sample event"
        );
    }
    let id = created["id"].as_str().unwrap();
    let (status, body) = call(
        &emu,
        "DELETE",
        &format!("/v1.0/users/bob@contoso.com/events/{id}"),
        &auth,
        "",
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ErrorItemNotFound"))
    );

    // Extended properties come back only when $expand names them.
    let view = "/v1.0/users/jane@contoso.com/calendarView?startDateTime=2025-03-01T00:00:00Z&endDateTime=2025-04-01T00:00:00Z";
    let (_, plain) = call(&emu, "GET", view, &auth, "");
    assert!(plain["value"][0]
        .get("singleValueExtendedProperties")
        .is_none());
    let expand = format!(
        "{view}&$expand=singleValueExtendedProperties(%24filter%3Did%20eq%20%27String%20%7B66f5a359-4659-4830-9070-00047ec6ac6e%7D%20Name%20Color%27)"
    );
    let (status, expanded) = call(&emu, "GET", &expand, &auth, "");
    assert_eq!(status, 200, "{expanded}");
    assert_eq!(
        expanded["value"][0]["singleValueExtendedProperties"][0]["value"],
        "Green"
    );

    // An application access policy that lets the app open no mailbox.
    emu.restrict_app(DEFAULT_CLIENT_ID, &[]);
    let (status, body) = call(&emu, "GET", view, &auth, "");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("ErrorAccessDenied"))
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("AccessPolicy"));
}

#[test]
fn more_than_four_requests_on_a_mailbox_are_throttled() {
    let emu = GraphEmulator::start(GraphOptions::default()).unwrap();
    let (_, body) = token(&emu, "graph-app-secret");
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    emu.set_latency_ms(300);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    call(
                        &emu,
                        "GET",
                        "/v1.0/users/jane@contoso.com/calendar",
                        &[("Authorization", &bearer)],
                        "",
                    )
                    .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(emu.throttled(), 2);
    let throttled = emu
        .requests()
        .into_iter()
        .find(|r| r.status == 429)
        .unwrap();
    assert_eq!(throttled.path, "/v1.0/users/jane@contoso.com/calendar");
}

#[test]
fn expand_filters_and_property_ids_are_read_like_graph() {
    let id = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color";
    assert!(is_property_id(id));
    assert!(!is_property_id("String 66f5a359 Name Color"));
    assert_eq!(
        expand_filter(&format!(
            "singleValueExtendedProperties($filter=id eq '{id}')"
        )),
        Some(vec![id.to_owned()])
    );
    assert_eq!(expand_filter("attachments"), None);
    assert!(same_property(
        id,
        "string {66F5A359-4659-4830-9070-00047EC6AC6E} Name Color"
    ));
    assert!(!same_property(
        id,
        "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name color"
    ));
}

#[test]
fn times_follow_the_zone_table() {
    assert_eq!(graph_time(1_741_075_200, 0), "2025-03-04T08:00:00.0000000");
    assert_eq!(graph_time(1_741_075_200, 60), "2025-03-04T09:00:00.0000000");
    assert_eq!(
        zone_offset("Romance Standard Time").map(|o| o.whole_minutes()),
        Some(60)
    );
    assert_eq!(zone_offset("Mars/Olympus"), None);
    assert_eq!(
        parse_query_time("2025-03-04T09:00:00+01:00"),
        Some(1_741_075_200)
    );
    assert_eq!(parse_query_time("2025-03-04T08:00:00"), Some(1_741_075_200));
    assert_eq!(percent_decode("AAMk%3D%2Fx"), "AAMk=/x");
}
