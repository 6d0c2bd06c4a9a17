//! The console's pages: the form generated from the schema, refusals next to their field,
//! the test button, escaping, creating and deleting instances, hot-replaced plugins, and
//! how posted form values are parsed.

use super::*;

#[tokio::test]
async fn the_form_is_generated_from_the_schema() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    let page = h
        .page(&s, "GET", "/instances/d", None)
        .await
        .expect(StatusCode::OK)
        .body;
    // Groups, in the order of their first field; fields in x-order.
    let auth = page.find("<legend>Authentication</legend>").unwrap();
    let conn = page.find("<legend>Connection</legend>").unwrap();
    assert!(page.find("<legend>Settings</legend>").unwrap() > conn);
    assert!(auth < conn);
    assert!(page.find("id=\"field-mode\"").unwrap() < page.find("id=\"field-api_key\"").unwrap());
    // Every input has a label tied to it, and a description.
    for f in [
        "mode",
        "api_key",
        "client_id",
        "client_secret",
        "timeout_secs",
        "verbose",
        "codes",
        "label",
    ] {
        let block = field_block(&page, f);
        assert!(block.contains(&format!("<label for=\"in-{f}\">")), "{f}");
        assert!(block.contains(&format!("id=\"in-{f}\"")), "{f}");
        assert!(
            block.contains(&format!("aria-describedby=\"desc-{f}")),
            "{f}"
        );
        assert!(
            block.contains(">Save<span class=\"visually-hidden\">"),
            "{f}"
        );
        assert!(block.contains("name=\"_csrf\""), "{f}");
    }
    // Labelled choices with the default selected.
    let mode = field_block(&page, "mode");
    assert!(mode.contains("<select id=\"in-mode\""));
    assert!(
        mode.contains(
            "<option value=\"key\" data-value=\"&quot;key&quot;\" selected>API key</option>"
        ),
        "{mode}"
    );
    assert!(mode.contains(">OAuth client credentials</option>"));
    // Numbers with bounds, booleans, lists.
    let t = field_block(&page, "timeout_secs");
    assert!(
        t.contains("type=\"number\"")
            && t.contains("min=\"1\"")
            && t.contains("max=\"120\"")
            && t.contains("value=\"10\""),
        "{t}"
    );
    assert!(t.contains("Reset to default"));
    assert!(field_block(&page, "verbose").contains("type=\"checkbox\""));
    assert!(field_block(&page, "codes").contains("<textarea"));
    assert!(field_block(&page, "codes").contains("One per line"));
    // Conditional fields: shown and required only when their tag matches.
    let key = field_block(&page, "api_key");
    assert!(
        !key[..key.find('>').unwrap()].contains("hidden") && key.contains("data-show-tag=\"mode\"")
    );
    assert!(
        key.contains("<span class=\"required\">required</span>"),
        "{key}"
    );
    let client = field_block(&page, "client_id");
    assert!(
        client.starts_with("<div") && client[..client.find('>').unwrap()].ends_with(" hidden"),
        "{client}"
    );
    assert!(client.contains("data-show-values=\"[&quot;oauth&quot;]\""));
    assert!(
        client.contains("Used when <em>Authentication</em> is <em>OAuth client credentials</em>")
    );
    h.set("d", "mode", json!("oauth"))
        .await
        .expect(StatusCode::OK);
    let page = h.page(&s, "GET", "/instances/d", None).await.body;
    let client = field_block(&page, "client_id");
    assert!(
        !client[..client.find('>').unwrap()].contains("hidden"),
        "{client}"
    );
    let key = field_block(&page, "api_key");
    assert!(key[..key.find('>').unwrap()].ends_with(" hidden"));
}

#[tokio::test]
async fn a_refused_value_is_shown_next_to_its_field_with_the_typed_text() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    // Without the script: the page again, status 422, error next to the field, value kept.
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&format!("_csrf={}&revision=1&op=save&value=500", s.csrf)),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let block = field_block(&a.body, "timeout_secs");
    assert!(block.contains("value=\"500\""), "{block}");
    assert!(block.contains("aria-invalid=\"true\""));
    assert!(block.contains("id=\"err-timeout_secs\" aria-live=\"assertive\">500 is greater than the maximum of 120</p>"), "{block}");
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&format!("_csrf={}&value=twelve", s.csrf)),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_block(&a.body, "timeout_secs")
        .contains("expected a whole number, got &quot;twelve&quot;"));
    // With the script: JSON.
    let req = Request::post("/instances/d/fields/timeout_secs")
        .header("cookie", &s.cookie)
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("x-requested-with", "passerelle-console")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("_csrf={}&value=500", s.csrf)))
        .unwrap();
    let a = h
        .send(req)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(a["pointer"], "/timeout_secs");
    let req = Request::post("/instances/d/fields/codes")
        .header("cookie", &s.cookie)
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("x-requested-with", "passerelle-console")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "_csrf={}&value=A%0D%0A%0D%0AB+",
            s.csrf
        )))
        .unwrap();
    let a = h.send(req).await.expect(StatusCode::OK).json();
    assert_eq!(a["value"], json!(["A", "B"]));
    assert_eq!(a["state"], "saved");
    assert_eq!(a["revision"], 2);
    // Booleans from a checkbox (hidden "false" then "true" when ticked).
    h.page(
        &s,
        "POST",
        "/instances/d/fields/verbose",
        Some(&format!("_csrf={}&value=false&value=true", s.csrf)),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["fields"][field_index(&v, "verbose")]["value"], true);
    // Whole-configuration problems when enabling: listed at the top and next to fields.
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/enable",
            Some(&format!("_csrf={}", s.csrf)),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("<div class=\"problems\" role=\"alert\">"));
    assert!(a.body.contains("<a href=\"#in-api_key\">API key</a>"));
    assert!(field_block(&a.body, "api_key").contains("this field is required"));
}

#[tokio::test]
async fn the_console_test_button_shows_the_steps() {
    let h = Harness::new();
    h.create_demo("d").await;
    h.set("d", "api_key", json!("good-key-123"))
        .await
        .expect(StatusCode::OK);
    let s = h.login().await;
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/test",
            Some(&format!("_csrf={}", s.csrf)),
        )
        .await
        .expect(StatusCode::OK);
    assert!(a.body.contains("<th scope=\"row\">read settings</th>"));
    assert!(a.body.contains("<th scope=\"row\">check key</th>"));
    assert!(a.body.contains(" ms</td>"));
    // The script's request: a fragment, with unsaved values.
    let req = Request::post("/instances/d/test")
        .header("cookie", &s.cookie)
        .header("host", HOST)
        .header("origin", ORIGIN)
        .header("x-requested-with", "passerelle-console")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "_csrf={}&v.timeout_secs=77&v.api_key=",
            s.csrf
        )))
        .unwrap();
    let a = h.send(req).await.expect(StatusCode::OK);
    assert!(!a.body.contains("<html"));
    assert!(a.body.contains("timeout 77 s"), "{}", a.body);
    assert!(a.body.contains("with unsaved values"));
    assert!(a.body.contains("badge-ok"));
}

#[tokio::test]
async fn pages_escape_what_they_show() {
    let h = Harness::new();
    h.create_demo("d").await;
    h.set(
        "d",
        "label",
        json!("<script>alert(1)</script>\" onmouseover=\"x"),
    )
    .await
    .expect(StatusCode::OK);
    let s = h.login().await;
    let page = h.page(&s, "GET", "/instances/d", None).await;
    assert!(!page.body.contains("<script>alert"));
    assert!(page
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot; onmouseover=&quot;x"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn instances_are_created_listed_and_deleted_from_the_console() {
    let h = Harness::new();
    let s = h.login().await;
    let a = h
        .page(
            &s,
            "POST",
            "/instances",
            Some(&format!("_csrf={}&id=Bad+Id&plugin=demo", s.csrf)),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(a.body.contains("value=\"Bad Id\""));
    assert!(a.body.contains("is not valid"));
    let a = h
        .page(
            &s,
            "POST",
            "/instances",
            Some(&format!("_csrf={}&id=demo-1&plugin=demo", s.csrf)),
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/instances/demo-1");
    let list = h.page(&s, "GET", "/instances", None).await.body;
    assert!(list.contains("<a href=\"/instances/demo-1\">demo-1</a>"));
    assert!(list.contains("Not tested"));
    let plugins = h.page(&s, "GET", "/plugins", None).await.body;
    assert!(plugins.contains("Demo service") && plugins.contains("company.lookup"));
    h.page(
        &s,
        "POST",
        "/instances/demo-1/delete",
        Some(&format!("_csrf={}", s.csrf)),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    h.page(&s, "GET", "/instances/demo-1", None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_new_version_of_a_plugin_is_served_at_once() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    // Everything derived from the plugin is cached...
    let schema = h
        .admin("GET", "/api/plugins/demo/schema", None)
        .await
        .json();
    assert_eq!(
        schema["properties"]["timeout_secs"]["title"],
        "Timeout (seconds)"
    );
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(
        v["fields"][field_index(&v, "timeout_secs")]["title"],
        "Timeout (seconds)"
    );
    assert!(h
        .page(&s, "GET", "/instances/d", None)
        .await
        .body
        .contains("Timeout (seconds)"));
    // ... until hot add loads a new version of it.
    let newer = demo_plugin(|schema| {
        schema["properties"]["timeout_secs"]["title"] = json!("Délai (secondes)");
    });
    h.state.engine.registry.update(|r| r.plugins = vec![newer]);
    let schema = h
        .admin("GET", "/api/plugins/demo/schema", None)
        .await
        .json();
    assert_eq!(
        schema["properties"]["timeout_secs"]["title"],
        "Délai (secondes)"
    );
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(
        v["fields"][field_index(&v, "timeout_secs")]["title"],
        "Délai (secondes)"
    );
    assert!(h
        .page(&s, "GET", "/instances/d", None)
        .await
        .body
        .contains("Délai (secondes)"));
    // A change made by another process (the CLI) shows at once too.
    h.state
        .engine
        .instances()
        .set(
            &crate::ids::InstanceId::new("d").unwrap(),
            "timeout_secs",
            json!(33),
            None,
        )
        .unwrap();
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["fields"][field_index(&v, "timeout_secs")]["value"], 33);
    assert_eq!(v["revision"], 2);
}

#[test]
pub(super) fn form_values_are_parsed_by_field_type() {
    let dir = tempfile::tempdir().unwrap();
    let engine = demo_engine(dir.path());
    let plugin = engine.registry.get("demo").unwrap();
    let model = form::FormModel::new(&plugin.schema);
    let f = |n: &str| model.field(n).unwrap();
    assert_eq!(
        form::parse_input(f("timeout_secs"), " 12 ").unwrap(),
        json!(12)
    );
    assert!(form::parse_input(f("timeout_secs"), "1.5").is_err());
    assert_eq!(
        form::parse_input(f("verbose"), "true").unwrap(),
        json!(true)
    );
    assert_eq!(
        form::parse_input(f("mode"), "oauth").unwrap(),
        json!("oauth")
    );
    assert!(form::parse_input(f("mode"), "other")
        .unwrap_err()
        .contains("API key, OAuth client credentials"));
    assert_eq!(
        form::parse_input(f("codes"), "a\n\n b \n").unwrap(),
        json!(["a", "b"])
    );
    assert_eq!(
        form::parse_input(f("api_key"), "x y").unwrap(),
        json!("x y")
    );
    assert_eq!(
        model
            .field("client_secret")
            .unwrap()
            .required_when
            .as_ref()
            .unwrap()
            .values,
        vec![json!("oauth")]
    );
    assert!(model.field("label").unwrap().group.is_none());
    assert_eq!(form::humanize("client_secret"), "Client secret");
    assert_eq!(
        auth::parse_form("a=1+2&b=%2Fx%3D&c"),
        vec![
            ("a".to_owned(), "1 2".to_owned()),
            ("b".to_owned(), "/x=".to_owned()),
            ("c".to_owned(), String::new()),
        ]
    );
}

/// Regression: once replaced registry copies are freed (arc-swap), a replaced plugin version
/// must stay allocated, or a later version could get its address and be served the old
/// version's cached schema and form views (`plugin_key`).
#[tokio::test]
async fn a_replaced_plugin_version_keeps_its_address_to_itself() {
    let h = Harness::new();
    let first = h.state.engine.registry.get("demo").unwrap();
    let first_key = plugin_key(&first);
    let first = Arc::downgrade(&first);
    let mut keys = std::collections::HashSet::from([first_key]);
    for _ in 0..20 {
        let newer = demo_plugin(|_| {});
        h.state.engine.registry.update(|r| r.plugins = vec![newer]);
        let current = h.state.engine.registry.get("demo").unwrap();
        assert!(keys.insert(plugin_key(&current)), "an address was reused");
    }
    assert!(first.upgrade().is_some(), "the first version was freed");
}
