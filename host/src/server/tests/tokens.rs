//! API tokens: scoped, stored hashed, shown once, revocable.

use super::*;

#[tokio::test]
async fn tokens_are_scoped_hashed_and_revocable() {
    let h = Harness::new();
    h.create_demo("d").await;
    h.set("d", "api_key", json!("good-key-123"))
        .await
        .expect(StatusCode::OK);
    h.admin("POST", "/api/instances/d/enable", None)
        .await
        .expect(StatusCode::OK);
    let created = h
        .admin(
            "POST",
            "/api/tokens",
            Some(json!({"name": "erp", "scope": "capabilities"})),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    let erp = created["token"].as_str().unwrap().to_owned();
    // A capabilities token calls capabilities, nothing else.
    let out = h
        .api(
            "POST",
            "/api/capabilities/company.lookup",
            Some(&erp),
            Some(json!({"id": "123456789"})),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(out["legal_name"], "Demo 10");
    assert_eq!(
        h.api("GET", "/api/instances", Some(&erp), None)
            .await
            .expect(StatusCode::FORBIDDEN)
            .code(),
        "forbidden"
    );
    h.api("GET", "/api/capabilities", Some(&erp), None)
        .await
        .expect(StatusCode::OK);
    // Tokens are listed without their values and stored only hashed.
    let list = h.admin("GET", "/api/tokens", None).await.json();
    assert!(!list.to_string().contains(&erp));
    let db_text = data_dump(&h.state.engine.settings.data_dir);
    assert!(
        db_text.contains("erp"),
        "the dump misses the console database"
    );
    assert!(!db_text.contains(&erp) && !db_text.contains(&h.admin_token));
    assert!(!db_text.contains(PASSWORD));
    // Revocation takes effect at once, even though lookups are cached.
    h.admin("DELETE", "/api/tokens/erp", None)
        .await
        .expect(StatusCode::OK);
    h.api("GET", "/api/capabilities", Some(&erp), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // ... also when another process revokes (the CLI writes the database directly).
    let (_, other) = h
        .state
        .auth
        .create_token("other", Scope::Admin, "tests")
        .unwrap();
    h.api("GET", "/api/instances", Some(&other), None)
        .await
        .expect(StatusCode::OK);
    let db = Arc::new(db::ConsoleDb::open_in(&h.state.engine.settings.data_dir).unwrap());
    auth::Auth::new(db, LoginLimits::default())
        .unwrap()
        .revoke_token("other")
        .unwrap();
    h.api("GET", "/api/instances", Some(&other), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let audit = h.admin("GET", "/api/audit", None).await.json().to_string();
    assert!(
        audit.contains("token.create") && audit.contains("token.revoke"),
        "{audit}"
    );
}
