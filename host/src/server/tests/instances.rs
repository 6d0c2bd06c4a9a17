//! Instances over the API: per-field validation with pointers, write-only secrets,
//! enabling checks, tests with saved or unsaved values, the audit history.

use super::*;

#[tokio::test]
async fn a_field_is_validated_on_its_own_with_its_pointer() {
    let h = Harness::new();
    h.create_demo("d").await;
    let a = h
        .set("d", "timeout_secs", json!(500))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["code"], "invalid_value");
    assert_eq!(a["field"], "timeout_secs");
    assert_eq!(a["pointer"], "/timeout_secs");
    assert!(a["message"].as_str().unwrap().contains("120"), "{a}");
    let a = h
        .set("d", "nope", json!(1))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["field"], "nope");
    assert!(
        a["message"].as_str().unwrap().contains("timeout_secs"),
        "{a}"
    );
    // Nothing was written by the refusals.
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["revision"], 1);
    // Stale writes are refused.
    let ok = h
        .set("d", "timeout_secs", json!(20))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ok["revision"], 2);
    let a = h
        .admin(
            "PUT",
            "/api/instances/d/fields/timeout_secs",
            Some(json!({"value": 30, "revision": 1})),
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert_eq!(a.code(), "stale_revision");
    let a = h
        .admin(
            "PUT",
            "/api/instances/d/fields/timeout_secs",
            Some(json!({"valeur": 30})),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "invalid_request");
    // Clearing goes back to the default.
    let v = h
        .admin("DELETE", "/api/instances/d/fields/timeout_secs", None)
        .await
        .expect(StatusCode::OK)
        .json();
    let f = &v["fields"][field_index(&v, "timeout_secs")];
    assert_eq!(f["state"], "default");
    assert_eq!(f["value"], 10);
    h.admin("GET", "/api/instances/nope", None)
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(
        h.admin("GET", "/api/instances/Bad..Id", None).await.code(),
        "invalid_id"
    );
}

#[tokio::test]
async fn secrets_are_write_only_everywhere() {
    let h = Harness::new();
    h.create_demo("d").await;
    let secret = "s3cret-VALUE-xyz";
    let v = h
        .set("d", "api_key", json!(secret))
        .await
        .expect(StatusCode::OK)
        .json();
    let f = &v["fields"][field_index(&v, "api_key")];
    assert_eq!(f["state"], "set");
    assert!(f.get("value").is_none());
    let s = h.login().await;
    let mut seen = String::new();
    for path in ["/api/instances/d", "/api/instances", "/api/audit"] {
        seen.push_str(&h.admin("GET", path, None).await.body);
    }
    for path in ["/instances/d", "/audit", "/instances"] {
        seen.push_str(&h.page(&s, "GET", path, None).await.body);
    }
    assert!(!seen.contains(secret));
    assert!(!data_dump(&h.state.engine.settings.data_dir).contains(secret));
    // Not even masked characters of it.
    assert!(!seen.contains("****") && !seen.contains("••"));
    let page = h.page(&s, "GET", "/instances/d", None).await.body;
    let block = field_block(&page, "api_key");
    assert!(block.contains("type=\"password\""), "{block}");
    assert!(block.contains("value=\"\""), "{block}");
    assert!(block.contains(">set</span>"), "{block}");
    let audit = h.admin("GET", "/api/instances/d/audit", None).await.json();
    assert_eq!(audit[0]["field"], "api_key");
    assert_eq!(audit[0]["new"], "changed");
    assert!(audit[0].get("old").is_none());
    // A refused secret is not echoed back either.
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&format!("_csrf={}&value=abc", s.csrf)),
        )
        .await;
    assert!(!a.body.contains(secret));
}

#[tokio::test]
async fn enabling_checks_the_whole_configuration() {
    let h = Harness::new();
    h.create_demo("d").await;
    let a = h
        .admin("POST", "/api/instances/d/enable", None)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["code"], "invalid_configuration");
    assert_eq!(a["errors"][0]["field"], "api_key");
    assert_eq!(a["errors"][0]["pointer"], "/api_key");
    h.set("d", "mode", json!("oauth"))
        .await
        .expect(StatusCode::OK);
    let a = h
        .admin(
            "POST",
            "/api/instances/d/enable",
            Some(json!({"revision": 2})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    let fields: Vec<&str> = a["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["client_id", "client_secret"]);
    h.set("d", "client_id", json!("id"))
        .await
        .expect(StatusCode::OK);
    h.set("d", "client_secret", json!("sec"))
        .await
        .expect(StatusCode::OK);
    let v = h
        .admin("POST", "/api/instances/d/enable", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["enabled"], true);
    // An enabled instance refuses a change that would break it.
    let a = h
        .admin("DELETE", "/api/instances/d/fields/client_id", None)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.code(), "invalid_configuration");
    h.admin("POST", "/api/instances/d/disable", None)
        .await
        .expect(StatusCode::OK);
    h.admin("DELETE", "/api/instances/d", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    h.admin("GET", "/api/instances/d", None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn test_runs_with_saved_or_unsaved_values() {
    let h = Harness::new();
    h.create_demo("d").await;
    let a = h
        .admin("GET", "/api/instances/d/test", None)
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "not_tested");
    // Unsaved values are used, not saved, and not recorded as the last test.
    let r = h
        .admin(
            "POST",
            "/api/instances/d/test",
            Some(json!({"values": {"timeout_secs": 42, "api_key": "good-key-123"}})),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["steps"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("timeout 42 s"));
    assert!(r["steps"][1]["duration_ms"].is_u64());
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["revision"], 1);
    assert_eq!(
        h.admin("GET", "/api/instances/d/test", None).await.code(),
        "not_tested"
    );
    // An invalid unsaved value is refused like a save.
    let a = h
        .admin(
            "POST",
            "/api/instances/d/test",
            Some(json!({"values": {"timeout_secs": 0}})),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["pointer"], "/timeout_secs");
    // Saved values: the result is recorded and listed.
    let r = h
        .admin("POST", "/api/instances/d/test", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(r["status"], "failed");
    assert_eq!(r["steps"][0]["name"], "check configuration", "{r}");
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("api_key"),
        "{r}"
    );
    let last = h.admin("GET", "/api/instances/d/test", None).await.json();
    assert_eq!(last["report"]["status"], "failed");
    let list = h.admin("GET", "/api/instances", None).await.json();
    assert_eq!(list[0]["last_test"]["status"], "failed");
}

#[tokio::test]
async fn the_audit_history_has_who_when_old_and_new() {
    let h = Harness::new();
    h.create_demo("d").await;
    h.set("d", "timeout_secs", json!(20))
        .await
        .expect(StatusCode::OK);
    h.set("d", "timeout_secs", json!(30))
        .await
        .expect(StatusCode::OK);
    // Saving the same value again changes nothing and records nothing.
    h.set("d", "timeout_secs", json!(30))
        .await
        .expect(StatusCode::OK);
    h.set("d", "codes", json!(["A", "B"]))
        .await
        .expect(StatusCode::OK);
    let s = h.login().await;
    h.page(
        &s,
        "POST",
        "/instances/d/fields/label",
        Some(&format!("_csrf={}&value=hello", s.csrf)),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let audit = h
        .admin("GET", "/api/instances/d/audit", None)
        .await
        .expect(StatusCode::OK)
        .json();
    let rows: Vec<(String, String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["field"].as_str().unwrap_or("").to_owned(),
                e["old"].as_str().unwrap_or("").to_owned(),
                e["new"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let row = |a: &str, f: &str, o: &str, n: &str| {
        (a.to_owned(), f.to_owned(), o.to_owned(), n.to_owned())
    };
    assert_eq!(
        rows,
        vec![
            row("admin", "label", "(unset)", "hello"),
            row("token:tests", "codes", "(default) []", "[\"A\",\"B\"]"),
            row("token:tests", "timeout_secs", "20", "30"),
            row("token:tests", "timeout_secs", "(default) 10", "20"),
            row("token:tests", "", "", "plugin demo"),
        ]
    );
    assert!(audit[0]["at_ms"].as_i64().unwrap() > 1_600_000_000_000);
    let page = h.page(&s, "GET", "/audit?instance=d", None).await.body;
    assert!(page.contains("(default) 10") && page.contains("token:tests"));
}
