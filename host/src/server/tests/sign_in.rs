//! Signing in and staying safe: nothing open without a session or token, CSRF on every
//! change, sign-in throttling, cookies, trusted proxies and same-origin checks.

use super::*;

#[tokio::test]
async fn nothing_is_open_without_a_session_or_token() {
    let h = Harness::new();
    for path in [
        "/api/plugins",
        "/api/instances",
        "/api/openapi.json",
        "/api/plugins/demo/schema",
        "/api/audit",
    ] {
        let a = h
            .api("GET", path, None, None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
        assert_eq!(a.code(), "unauthenticated", "{path}");
        assert!(a.headers.contains_key("www-authenticate"));
    }
    let a = h
        .api(
            "POST",
            "/api/capabilities/company.lookup",
            None,
            Some(json!({"id": "1"})),
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(a.code(), "unauthenticated");
    let a = h
        .api("GET", "/api/plugins", Some("pst_nope_nope"), None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(a.code(), "unauthenticated");
    for path in ["/instances", "/plugins", "/audit", "/instances/x"] {
        let a = h
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await
            .expect(StatusCode::SEE_OTHER);
        assert_eq!(
            a.headers["location"].to_str().unwrap(),
            format!("/login?next={path}")
        );
    }
    // The sign-in page and the assets are the only open routes.
    h.send(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .expect(StatusCode::OK);
    let js = h
        .send(
            Request::get("/assets/console.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect(StatusCode::OK);
    assert!(js.body.contains("applyConditions"));
}

#[tokio::test]
async fn sessions_need_the_csrf_token_on_every_change() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    // JSON API with the session cookie: refused without the header, accepted with it.
    let put = |csrf: Option<String>| {
        let mut req = Request::put("/api/instances/d/fields/timeout_secs")
            .header("cookie", &s.cookie)
            .header("host", HOST)
            .header("origin", ORIGIN)
            .header("content-type", "application/json");
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        req.body(Body::from(r#"{"value": 20}"#)).unwrap()
    };
    let a = h.send(put(None)).await.expect(StatusCode::FORBIDDEN);
    assert_eq!(a.code(), "csrf_failed");
    let a = h
        .send(put(Some("wrong".into())))
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(a.code(), "csrf_failed");
    h.send(put(Some(s.csrf.clone())))
        .await
        .expect(StatusCode::OK);
    // Console forms: the token travels in `_csrf`.
    let a = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some("value=30"),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(a.body.contains("expired"), "{}", a.body);
    h.page(
        &s,
        "POST",
        "/instances/d/fields/timeout_secs",
        Some(&format!("_csrf={}&value=30", s.csrf)),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let v = h.admin("GET", "/api/instances/d", None).await.json();
    assert_eq!(v["fields"][field_index(&v, "timeout_secs")]["value"], 30);
    // Reads need no token.
    h.page(&s, "GET", "/instances/d", None)
        .await
        .expect(StatusCode::OK);
    // Sign-out closes the session for good.
    h.page(&s, "POST", "/logout", Some(&format!("_csrf={}", s.csrf)))
        .await
        .expect(StatusCode::SEE_OTHER);
    h.page(&s, "GET", "/api/session", None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_refuses_a_forged_form_and_wrong_passwords() {
    let h = Harness::new();
    // No login cookie (a form posted from another site).
    let a = h
        .send(
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "_csrf=abc&username=admin&password={}",
                    enc(PASSWORD)
                )))
                .unwrap(),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(!a
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("passerelle_session=")));
    let page = h
        .send(Request::get("/login").body(Body::empty()).unwrap())
        .await;
    let cookie = cookie_pair(&page.headers, "passerelle_login");
    let token = hidden_value(&page.body, "_csrf");
    let a = h
        .send(
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &cookie)
                .body(Body::from(format!(
                    "_csrf={token}&username=admin&password=wrong"
                )))
                .unwrap(),
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("Wrong user name or password"));
    // Open redirects are refused.
    let a = h
        .send(
            Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &cookie)
                .body(Body::from(format!(
                    "_csrf={token}&next=%2F%2Fevil.example&username=admin&password={}",
                    enc(PASSWORD)
                )))
                .unwrap(),
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/instances");
}

/// A sign-in form and its cookie, as a browser at `address` would post it.
pub(super) struct LoginForm {
    cookie: String,
    token: String,
}

impl Harness {
    pub(super) async fn login_form(&self) -> LoginForm {
        let page = self
            .send(Request::get("/login").body(Body::empty()).unwrap())
            .await;
        LoginForm {
            cookie: cookie_pair(&page.headers, "passerelle_login"),
            token: hidden_value(&page.body, "_csrf"),
        }
    }

    /// One sign-in attempt of `admin` from `address`, with extra cookies (a device cookie).
    pub(super) async fn attempt(
        &self,
        address: [u8; 4],
        password: &str,
        extra_cookie: Option<&str>,
    ) -> Answer {
        let form = self.login_form().await;
        let cookie = match extra_cookie {
            Some(c) => format!("{}; {c}", form.cookie),
            None => form.cookie,
        };
        let mut req = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(Body::from(format!(
                "_csrf={}&username=admin&password={}",
                form.token,
                enc(password)
            )))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                address, 40000,
            ))));
        self.send(req).await
    }
}

pub(super) fn small_limits() -> LoginLimits {
    LoginLimits {
        free_per_address: 3,
        free_per_user: 6,
        free_per_device: 3,
        first_delay: Duration::from_secs(30),
        max_address_delay: Duration::from_secs(600),
        max_user_delay: Duration::from_secs(60),
        forget_after: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn failed_sign_ins_slow_down_the_address_with_retry_after() {
    let h = Harness::with_limits(small_limits());
    for _ in 0..3 {
        h.attempt([10, 0, 0, 1], "guess", None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    // That address now waits, and is told how long.
    let a = h
        .attempt([10, 0, 0, 1], "guess", None)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(a.body.contains("Too many failed sign-ins"));
    // Another address is not slowed by it.
    h.attempt([10, 0, 0, 2], PASSWORD, None)
        .await
        .expect(StatusCode::SEE_OTHER);
}

/// Regression (security review): five bad attempts from anywhere locked the administrator
/// out for 15 minutes, even with the right password.
#[tokio::test]
async fn failures_from_elsewhere_never_lock_the_administrator_out() {
    let h = Harness::with_limits(small_limits());
    // The administrator signed in once from their browser: it keeps a device cookie.
    let a = h
        .attempt([192, 168, 1, 10], PASSWORD, None)
        .await
        .expect(StatusCode::SEE_OTHER);
    let device = cookie_pair(&a.headers, "passerelle_device");
    let set = a
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("passerelle_device="))
        .unwrap()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("Path=/login"),
        "{set}"
    );
    // An attacker fails from many addresses, far past every limit.
    let mut refused = 0;
    for i in 0..40u8 {
        let a = h.attempt([203, 0, 113, i % 8], "guess", None).await;
        match a.status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert!(refused > 0, "the attacker was never slowed down");
    // A new browser for the account is slowed too (the account's back-off)...
    h.attempt([198, 51, 100, 7], PASSWORD, None)
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
    // ... but the administrator's own browser signs in at once, with the right password.
    let a = h
        .attempt([192, 168, 1, 10], PASSWORD, Some(&device))
        .await
        .expect(StatusCode::SEE_OTHER);
    let cookie = cookie_pair(&a.headers, "passerelle_session");
    // And is told what happened since the previous sign-in.
    let page = h
        .send(
            Request::get("/instances")
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect(StatusCode::OK);
    let failed = 40 - refused;
    assert!(
        page.body
            .contains(&format!("{failed} failed sign-in attempts")),
        "{}",
        page.body
    );
    assert!(page.body.contains("203.0.113."), "{}", page.body);
    // A device cookie of another account (or a made-up one) is no pass.
    h.attempt(
        [198, 51, 100, 8],
        PASSWORD,
        Some("passerelle_device=made-up"),
    )
    .await
    .expect(StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_known_browser_is_throttled_on_its_own() {
    let h = Harness::with_limits(small_limits());
    let a = h
        .attempt([192, 168, 1, 10], PASSWORD, None)
        .await
        .expect(StatusCode::SEE_OTHER);
    let device = cookie_pair(&a.headers, "passerelle_device");
    for _ in 0..3 {
        h.attempt([192, 168, 1, 10], "guess", Some(&device))
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    h.attempt([192, 168, 1, 10], PASSWORD, Some(&device))
        .await
        .expect(StatusCode::TOO_MANY_REQUESTS);
}

/// Regression (security review): `/login?next=/%09/evil.example` sent the browser to
/// `//evil.example`, and a newline in `next` gave a 500 with the session cookie set.
#[tokio::test]
async fn sign_in_redirects_only_to_a_path_of_this_server() {
    let h = Harness::new();
    for (next, expected) in [
        ("/instances/d", "/instances/d"),
        ("/audit?instance=d", "/audit?instance=d"),
        ("/%09/evil.example", "/instances"),
        ("/\t/evil.example", "/instances"),
        ("/\n/evil.example", "/instances"),
        ("/\r\nSet-Cookie:x=y", "/instances"),
        ("//evil.example", "/instances"),
        ("///evil.example", "/instances"),
        ("\\evil.example", "/instances"),
        ("/\\evil.example", "/instances"),
        ("https:evil.example", "/instances"),
        ("https://evil.example/", "/instances"),
        ("javascript:alert(1)", "/instances"),
        ("%2F%2Fevil.example", "/instances"),
        ("/%2F/evil.example", "/instances"),
        ("/%5Cevil.example", "/instances"),
        ("/.//evil.example", "/instances"),
        ("evil.example", "/instances"),
        ("", "/instances"),
    ] {
        let form = h.login_form().await;
        let answer = h
            .send(
                Request::post("/login")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("cookie", &form.cookie)
                    .body(Body::from(format!(
                        "_csrf={}&username=admin&password={}&next={}",
                        form.token,
                        enc(PASSWORD),
                        enc(next)
                    )))
                    .unwrap(),
            )
            .await
            .expect(StatusCode::SEE_OTHER);
        assert_eq!(answer.headers["location"], expected, "next = {next:?}");
        // The sign-in page keeps only a safe `next` in its form too.
        let page = h
            .send(
                Request::get(format!("/login?next={}", enc(next)))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(
            hidden_value(&page.body, "next"),
            html::attr(expected),
            "next = {next:?}"
        );
    }
}

#[tokio::test]
async fn cookies_are_secure_over_https_only() {
    let cookies = |a: &Answer| -> Vec<String> {
        a.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let sign_in = |forwarded: Option<&'static str>| async move {
        let h = Harness::with_options(WebOptions {
            secure_cookies: false,
            trust_proxy: true,
        });
        let form = h.login_form().await;
        let mut req = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &form.cookie);
        if let Some(proto) = forwarded {
            req = req.header("x-forwarded-proto", proto);
        }
        h.send(
            req.body(Body::from(format!(
                "_csrf={}&username=admin&password={}",
                form.token,
                enc(PASSWORD)
            )))
            .unwrap(),
        )
        .await
        .expect(StatusCode::SEE_OTHER)
    };
    // Behind a trusted TLS proxy: every cookie is Secure.
    let a = sign_in(Some("https")).await;
    let all = cookies(&a);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|c| c.ends_with("; Secure")), "{all:?}");
    // Plain HTTP through the proxy: not Secure (the browser would drop them).
    let a = sign_in(Some("http")).await;
    assert!(cookies(&a).iter().all(|c| !c.contains("Secure")));
    // An untrusted X-Forwarded-Proto is ignored; --secure-cookies sets it always.
    for (options, secure) in [
        (
            WebOptions {
                secure_cookies: false,
                trust_proxy: false,
            },
            false,
        ),
        (
            WebOptions {
                secure_cookies: true,
                trust_proxy: false,
            },
            true,
        ),
    ] {
        let h = Harness::with_options(options);
        let page = h
            .send(
                Request::get("/login")
                    .header("x-forwarded-proto", "https")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let c = cookies(&page);
        assert_eq!(
            c.iter().any(|c| c.contains("; Secure")),
            secure,
            "{options:?}: {c:?}"
        );
    }
}

#[tokio::test]
async fn a_trusted_proxy_gives_the_client_address() {
    let h = Harness::with_options(WebOptions {
        secure_cookies: false,
        trust_proxy: true,
    });
    let state = h.state.clone();
    for _ in 0..2 {
        let form = h.login_form().await;
        let mut req = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &form.cookie)
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .body(Body::from(format!(
                "_csrf={}&username=admin&password=guess",
                form.token
            )))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 1],
                1,
            ))));
        h.send(req).await.expect(StatusCode::UNAUTHORIZED);
    }
    h.attempt([127, 0, 0, 1], PASSWORD, None)
        .await
        .expect(StatusCode::SEE_OTHER);
    let failures = state.auth.failures_before_last_sign_in("admin").unwrap();
    assert_eq!(failures.count, 2);
    assert_eq!(failures.addresses, ["203.0.113.9"]);
}

/// Regression (security review): no Origin check on state-changing requests.
#[tokio::test]
async fn a_session_change_from_another_origin_is_refused() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    let put = |origin: Option<&str>, referer: Option<&str>| {
        let mut req = Request::put("/api/instances/d/fields/timeout_secs")
            .header("cookie", &s.cookie)
            .header("host", HOST)
            .header("x-csrf-token", &s.csrf)
            .header("content-type", "application/json");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(r) = referer {
            req = req.header("referer", r);
        }
        req.body(Body::from(r#"{"value": 20}"#)).unwrap()
    };
    for (origin, referer) in [
        (Some("http://evil.example"), None),
        (Some("http://console.test:8081"), None),
        (Some("null"), None),
        (None, Some("http://evil.example/page")),
        (None, None),
    ] {
        let a = h
            .send(put(origin, referer))
            .await
            .expect(StatusCode::FORBIDDEN);
        assert_eq!(a.code(), "origin_mismatch", "{origin:?} {referer:?}");
        assert!(a.json()["message"].as_str().unwrap().contains("API token"));
    }
    h.send(put(Some(ORIGIN), None)).await.expect(StatusCode::OK);
    h.send(put(None, Some("http://console.test:8080/instances/d")))
        .await
        .expect(StatusCode::OK);
    // Behind a trusted proxy that rewrites Host, the browser's host is X-Forwarded-Host.
    let behind = Harness::with_options(WebOptions {
        secure_cookies: false,
        trust_proxy: true,
    });
    behind.create_demo("d").await;
    let s2 = behind.login().await;
    let proxied = |forwarded_host: &str| {
        Request::put("/api/instances/d/fields/timeout_secs")
            .header("cookie", &s2.cookie)
            .header("host", "127.0.0.1:8080")
            .header("x-forwarded-host", forwarded_host)
            .header("origin", "https://console.example.com")
            .header("x-csrf-token", &s2.csrf)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"value": 21}"#))
            .unwrap()
    };
    behind
        .send(proxied("console.example.com"))
        .await
        .expect(StatusCode::OK);
    behind
        .send(proxied("other.example.com"))
        .await
        .expect(StatusCode::FORBIDDEN);
    // Without trust in the proxy, X-Forwarded-Host is ignored.
    let a = h
        .send(
            Request::put("/api/instances/d/fields/timeout_secs")
                .header("cookie", &s.cookie)
                .header("host", HOST)
                .header("x-forwarded-host", "evil.example")
                .header("origin", "http://evil.example")
                .header("x-csrf-token", &s.csrf)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"value": 21}"#))
                .unwrap(),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(a.code(), "origin_mismatch");
    // A console form from another site gets a page, not JSON.
    let a = h
        .send(
            Request::post("/instances/d/disable")
                .header("cookie", &s.cookie)
                .header("host", HOST)
                .header("origin", "http://evil.example")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!("_csrf={}", s.csrf)))
                .unwrap(),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(a.body.contains("Refused"), "{}", a.body);
    // API tokens are not ambient credentials: no Origin needed.
    h.api(
        "PUT",
        "/api/instances/d/fields/timeout_secs",
        Some(&h.admin_token.clone()),
        Some(json!({"value": 25})),
    )
    .await
    .expect(StatusCode::OK);
    // A sign-in posted from another site is refused too.
    let form = h.login_form().await;
    h.send(
        Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &form.cookie)
            .header("host", HOST)
            .header("origin", "http://evil.example")
            .body(Body::from(format!(
                "_csrf={}&username=admin&password={}",
                form.token,
                enc(PASSWORD)
            )))
            .unwrap(),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
}
