//! The events API in-process: webhooks added, listed and removed with the same rules as the
//! command line, the delivery history and replay, the JSON page of events, and the event
//! stream resuming after `Last-Event-ID`.

use super::*;
use http_body_util::BodyExt as _;

#[tokio::test]
async fn webhooks_are_added_without_showing_their_secret_and_checked_like_the_cli() {
    let h = Harness::new();
    let secret = "canary-api-webhook-secret";
    let a = h
        .admin(
            "POST",
            "/api/webhooks",
            Some(json!({"url": "ftp://erp", "events": ["*"], "secret": secret})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.json()["message"].as_str().unwrap().starts_with("url:"));
    h.admin(
        "POST",
        "/api/webhooks",
        Some(json!({"url": "https://erp.example/h", "events": ["*"], "secret": "short"})),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let a = h
        .admin(
            "POST",
            "/api/webhooks",
            Some(json!({"url": "https://erp.example/h", "events": ["esign.completed"], "secret": secret})),
        )
        .await
        .expect(StatusCode::CREATED);
    assert!(!a.body.contains(secret));
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let list = h
        .admin("GET", "/api/webhooks", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list.json()[0]["events"], json!(["esign.completed"]));
    assert!(!list.body.contains(secret));

    // An event it wants is queued for it; one it does not want is not.
    let outbox = &h.state.engine.services.events;
    let wanted = outbox
        .emit(
            "d",
            "esign.completed",
            &json!({"transaction_id": "t"}),
            None,
        )
        .unwrap();
    outbox.emit("d", "esign.expired", &json!({}), None).unwrap();
    let history = h
        .admin("GET", &format!("/api/deliveries?webhook={id}"), None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history[0]["event_id"], wanted.id.as_str());
    assert_eq!(history[0]["state"], "pending");

    let r = h
        .admin("POST", &format!("/api/events/{}/replay", wanted.id), None)
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(r.json()["webhooks"], json!([id]));
    h.admin("POST", "/api/events/evt-none/replay", None)
        .await
        .expect(StatusCode::NOT_FOUND);

    h.admin("DELETE", &format!("/api/webhooks/{id}"), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    h.admin("DELETE", &format!("/api/webhooks/{id}"), None)
        .await
        .expect(StatusCode::NOT_FOUND);
    h.admin("POST", &format!("/api/webhooks/{id}/test"), None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_come_as_json_pages_or_as_a_stream_resuming_after_last_event_id() {
    let h = Harness::new();
    let engine = h.state.engine.clone();
    let outbox = &engine.services.events;
    let first = outbox
        .emit("d", "esign.expired", &json!({"n": 1}), None)
        .unwrap();
    let second = outbox
        .emit("d", "esign.refused", &json!({"n": 2}), None)
        .unwrap();

    let page = h
        .admin("GET", "/api/events", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][0]["type"], "esign.expired");
    assert_eq!(page["last_id"], second.id.as_str());
    let page = h
        .admin("GET", &format!("/api/events?after={}", first.id), None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["events"][0]["id"], second.id.as_str());
    h.admin("GET", "/api/events?after=evt-unknown", None)
        .await
        .expect(StatusCode::NOT_FOUND);

    // The stream after the first event: the second at once, then one stored later.
    let req = Request::builder()
        .uri("/api/events")
        .header("authorization", format!("Bearer {}", h.admin_token))
        .header("accept", "text/event-stream")
        .header("last-event-id", &first.id)
        .body(Body::empty())
        .unwrap();
    let response = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = response.into_body();
    let mut text = String::new();
    let mut third = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while third
        .as_ref()
        .is_none_or(|t: &passerelle_plugin_api::events::Emitted| !text.contains(&t.id))
    {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the stream sent the events within 20 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        if third.is_none() && text.contains(&second.id) {
            third = Some(
                outbox
                    .emit("d", "esign.completed", &json!({"n": 3}), None)
                    .unwrap(),
            );
        }
    }
    let third = third.unwrap();
    assert!(!text.contains(&format!("id: {}\n", first.id)), "{text}");
    assert!(text.contains("event: esign.refused\ndata: "), "{text}");
    assert!(text.contains(&format!("id: {}\n", third.id)), "{text}");
    assert!(text.find(&second.id) < text.find(&third.id));
}

#[tokio::test]
async fn the_console_page_adds_lists_and_removes_webhooks_without_showing_secrets() {
    let h = Harness::new();
    let secret = "canary-console-webhook-secret";
    let form = |path: &str, body: String| {
        Request::builder()
            .method("POST")
            .uri(path)
            .header("authorization", format!("Bearer {}", h.admin_token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let a = h
        .send(form(
            "/webhooks",
            format!("url=ftp%3A%2F%2Ferp&events=*&secret={secret}"),
        ))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("url:"), "{}", a.body);
    h.send(form(
        "/webhooks",
        format!("url=https%3A%2F%2Ferp.example%2Fh&events=esign.completed%2Cesign.refused&secret={secret}"),
    ))
    .await
    .expect(StatusCode::SEE_OTHER);
    let id = h.state.engine.services.events.webhooks().unwrap()[0]
        .id
        .clone();
    h.state
        .engine
        .services
        .events
        .emit("d", "esign.refused", &json!({}), None)
        .unwrap();
    let page = h
        .admin("GET", "/webhooks", None)
        .await
        .expect(StatusCode::OK);
    assert!(page.body.contains("https://erp.example/h"), "{}", page.body);
    assert!(page.body.contains("esign.completed, esign.refused"));
    assert!(page.body.contains("esign.refused</td>"));
    assert!(!page.body.contains(secret));
    h.send(form(&format!("/webhooks/{id}/remove"), String::new()))
        .await
        .expect(StatusCode::SEE_OTHER);
    assert!(h
        .state
        .engine
        .services
        .events
        .webhooks()
        .unwrap()
        .is_empty());
}
