//! Capability calls over the API and their stable error codes.

use super::*;

#[tokio::test]
async fn capabilities_errors_have_stable_codes() {
    let h = Harness::new();
    let a = h
        .admin(
            "POST",
            "/api/capabilities/company.lookup",
            Some(json!({"id": "1"})),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "no_provider");
    h.create_demo("d").await;
    let a = h
        .admin(
            "POST",
            "/api/capabilities/company.lookup?instance=d",
            Some(json!({"id": "1"})),
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(a.code(), "instance_disabled");
    let a = h
        .admin(
            "POST",
            "/api/capabilities/ocr.expense_receipt?instance=d",
            Some(json!({})),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "unsupported_operation");
    let a = h
        .api(
            "POST",
            "/api/capabilities/company.lookup",
            Some(&h.admin_token.clone()),
            None,
        )
        .await;
    assert_eq!(a.code(), "no_provider");
    // The demo plugin declares no task; no CA was added.
    let a = h
        .admin("GET", "/api/tasks", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a.json(), json!([]));
    let a = h
        .admin("GET", "/api/trust", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a.json(), json!([]));
    let a = h
        .admin("POST", "/api/instances/d/tasks/nope/run", None)
        .await;
    assert!(a.status.is_client_error(), "{}", a.body);
    assert!(
        a.json()["message"].as_str().unwrap().contains("nope"),
        "{}",
        a.body
    );
    let a = h
        .admin("GET", "/api/nope", None)
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "not_found");
}
