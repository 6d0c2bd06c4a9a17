//! The API's contract: bodies are JSON, errors are JSON with stable codes, and the OpenAPI
//! description matches the committed copy and the routes.

use super::*;

/// Regression (security review): the capability endpoint ignored `Content-Type`.
#[tokio::test]
async fn api_bodies_must_be_json_and_errors_are_json() {
    let h = Harness::new();
    h.create_demo("d").await;
    let send = |path: &str, method: &str, content_type: Option<&str>, body: &str| {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", h.admin_token));
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        req.body(Body::from(body.to_owned())).unwrap()
    };
    for (path, method) in [
        ("/api/capabilities/company.lookup", "POST"),
        ("/api/instances/d/fields/timeout_secs", "PUT"),
        ("/api/instances/d/test", "POST"),
        ("/api/instances", "POST"),
    ] {
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let a = h
                .send(send(path, method, content_type, r#"{"id": "552100554"}"#))
                .await
                .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(a.code(), "unsupported_media_type");
            assert!(
                a.json()["message"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{}",
                a.body
            );
        }
    }
    // JSON with a charset, and `+json` types, are JSON.
    h.send(send(
        "/api/instances/d/fields/timeout_secs",
        "PUT",
        Some("application/json; charset=utf-8"),
        r#"{"value": 12}"#,
    ))
    .await
    .expect(StatusCode::OK);
    // The framework's own refusals are JSON too.
    let a = h
        .send(send("/api/instances/d", "PATCH", None, ""))
        .await
        .expect(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.code(), "method_not_allowed");
    assert!(a.headers.contains_key("allow"));
    let big = format!(r#"{{"value": "{}"}}"#, "x".repeat(3 * 1024 * 1024));
    let a = h
        .send(send(
            "/api/instances/d/fields/label",
            "PUT",
            Some("application/json"),
            &big,
        ))
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.code(), "payload_too_large");
}

#[test]
pub(super) fn openapi_matches_the_committed_copy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = openapi::json();
    if std::env::var_os("PASSERELLE_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "host/openapi.json is out of date with the API; regenerate it with \
         `PASSERELLE_UPDATE_OPENAPI=1 cargo test -p passerelle openapi` and review the diff"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_json() {
    let h = Harness::new();
    h.create_demo("d").await;
    let doc: Value = serde_json::from_str(&openapi::json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{}", paths.len());
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "d")
                .replace("{field}", "timeout_secs")
                .replace("{plugin}", "demo")
                .replace("{operation}", "company.lookup")
                .replace("{token}", "no-such-token")
                .replace("{task}", "no-such-task");
            // Unauthenticated: every documented route is protected.
            let a = h.api(&method.to_uppercase(), &concrete, None, None).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            // Authenticated: routed (never the fallback's "no such endpoint").
            let a = h.admin(&method.to_uppercase(), &concrete, None).await;
            assert_ne!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(
                !a.body.contains("no such endpoint"),
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
    // Every error answer documented is an ErrorBody.
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
}
