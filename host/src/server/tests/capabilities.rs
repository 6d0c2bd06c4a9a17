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

/// `passerelle capabilities` and `GET /api/capabilities` read one list, the engine's.
#[tokio::test]
async fn the_capability_list_is_the_engines_for_cli_and_api() {
    let h = Harness::new();
    h.create_demo("d").await;
    let listed = h.state.engine.capabilities().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].operation, "company.lookup");
    assert_eq!(listed[0].plugins, ["demo"]);
    assert_eq!(listed[0].instances.len(), 1);
    assert_eq!(listed[0].instances[0].id.as_str(), "d");
    assert!(!listed[0].instances[0].enabled);
    let api = h
        .admin("GET", "/api/capabilities", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(api, serde_json::to_value(&listed).unwrap());
}

/// `passerelle tasks` and `GET /api/tasks` read one list, the engine's, with the timing the
/// instance's configuration gives.
#[tokio::test]
async fn the_task_list_is_the_engines_for_cli_and_api() {
    let h = Harness::new();
    h.create_demo("d").await;
    let mut plugin = Arc::try_unwrap(demo_plugin(|_| {})).ok().unwrap();
    plugin
        .manifest
        .tasks
        .push(passerelle_plugin_api::manifest::TaskDecl {
            name: "sync".into(),
            description: "Synchronise".into(),
            interval_field: "timeout_secs".into(),
            start_delay_field: "timeout_secs".into(),
        });
    let plugin = Arc::new(plugin);
    h.state.engine.registry.update(|r| r.plugins = vec![plugin]);
    let tasks = h.state.engine.scheduled_tasks().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].instance.as_str(), "d");
    assert_eq!(tasks[0].task, "sync");
    assert!(!tasks[0].enabled);
    assert!(tasks[0].last_run.is_none());
    let api = h
        .admin("GET", "/api/tasks", None)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(api[0]["instance"], "d");
    assert_eq!(api[0]["task"], "sync");
    assert_eq!(api[0]["interval_s"], tasks[0].interval.as_secs());
    assert_eq!(api[0]["start_delay_s"], tasks[0].start_delay.as_secs());
    assert!(api[0].get("last_run").is_none());
}
