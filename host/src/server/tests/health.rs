//! Health probes: answered without credentials, readiness follows the plugins.

use super::*;

#[tokio::test]
async fn health_probes_answer_without_credentials_and_readiness_follows_plugins() {
    let h = Harness::new();
    let a = h
        .api("GET", "/healthz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a.json()["status"], "ok");
    let a = h
        .api("GET", "/readyz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a.json()["status"], "ready", "{}", a.body);
    assert_eq!(a.json()["checks"]["storage"], "ok");
    assert_eq!(a.json()["checks"]["plugins"]["loaded"], 1);
    assert_eq!(a.json()["backend"], "embedded");

    // An enabled instance whose plugin is gone is a warning, not unreadiness.
    let id = crate::ids::InstanceId::new("orphan").unwrap();
    h.state.engine.store.create(&id, "gone").unwrap();
    h.state
        .engine
        .store
        .update::<crate::store::StoreError>(&id, None, |r| {
            r.enabled = true;
            Ok(())
        })
        .unwrap();
    let a = h
        .api("GET", "/readyz", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        a.json()["warnings"]["instances_without_plugin"],
        json!(["orphan"])
    );

    // No plugin loaded: the node must leave the pool.
    h.state.engine.registry.update(|r| r.plugins.clear());
    let a = h
        .api("GET", "/readyz", None, None)
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json()["status"], "unavailable");
}
