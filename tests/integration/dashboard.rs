//! The dashboard's and the widget's edges, through API Gateway events as on AWS: what is served
//! without a session, the session cookie, CSRF, and CORS for the publishable-key routes. The pages
//! themselves are driven in a real Chromium by tests/browser/test_dashboard.py.

use refwire_tests::{OPERATOR_KEY, TestApp, apigw_event};
use serde_json::{Value, json};

const SHOP: &str = "https://shop.example.com";

struct Response {
    status: u16,
    headers: Value,
    cookies: Vec<String>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers[name].as_str()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn request(
    t: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    cookie: Option<&str>,
    body: Option<&str>,
) -> Response {
    let mut event = apigw_event(method, path, None, body);
    for (name, value) in headers {
        event["headers"][*name] = json!(value);
    }
    if let Some(cookie) = cookie {
        event["cookies"] = json!([cookie]);
    }
    let raw = t.invoke_raw(event).await;
    Response {
        status: raw["statusCode"].as_u64().unwrap() as u16,
        headers: raw["headers"].clone(),
        cookies: raw["cookies"]
            .as_array()
            .map(|cookies| {
                cookies
                    .iter()
                    .map(|cookie| cookie.as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        body: raw["body"].as_str().unwrap_or_default().to_string(),
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// Signs in with the program's secret key; returns the `Set-Cookie` value as sent.
async fn sign_in(t: &TestApp) -> String {
    let body = format!("key={}", t.secret_key);
    let response = request(t, "POST", "/dashboard/sign-in", &[FORM], None, Some(&body)).await;
    assert_eq!(response.status, 303, "{}", response.body);
    assert_eq!(response.header("location"), Some("/dashboard/"));
    assert_eq!(response.cookies.len(), 1, "{:?}", response.cookies);
    response.cookies[0].clone()
}

/// The `name=value` part of a `Set-Cookie`, as a browser sends it back.
fn cookie_pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

/// The CSRF token the dashboard page carries (in its sign-out form).
async fn csrf_token(t: &TestApp, cookie: &str) -> String {
    let page = request(t, "GET", "/dashboard/", &[], Some(cookie), None).await;
    assert_eq!(page.status, 200);
    let marker = r#"name="csrf_token" value=""#;
    let start = page.body.find(marker).expect("the app page") + marker.len();
    page.body[start..][..page.body[start..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn only_the_sign_in_page_and_the_widget_are_served_without_a_session() {
    let t = TestApp::new().await;
    let root = request(&t, "GET", "/", &[], None, None).await;
    assert_eq!(root.status, 303);
    assert_eq!(root.header("location"), Some("/dashboard/"));

    let sign_in_page = request(&t, "GET", "/dashboard/", &[], None, None).await;
    assert_eq!(sign_in_page.status, 200);
    assert!(sign_in_page.body.contains(r#"action="/dashboard/sign-in""#));
    assert!(!sign_in_page.body.contains("app.js"));
    let policy = sign_in_page.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert_eq!(sign_in_page.header("x-frame-options"), Some("DENY"));

    for path in [
        "/dashboard/app.js",
        "/dashboard/export/referrals.csv",
        "/dashboard/export/participants.csv",
    ] {
        let response = request(&t, "GET", path, &[], None, None).await;
        assert_eq!(response.status, 401, "{path}");
        assert_eq!(response.json()["error"]["code"], "unauthorized", "{path}");
    }

    let widget = request(&t, "GET", "/refwire.js", &[], None, None).await;
    assert_eq!(widget.status, 200);
    assert!(
        widget
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(widget.body.contains("Refwire"));
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_the_key_is_in_no_page() {
    let t = TestApp::new().await;
    let set_cookie = sign_in(&t).await;
    // The fixture is a real API Gateway request: https, so the cookie is Secure.
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(set_cookie.contains(flag), "{set_cookie} lacks {flag}");
    }
    assert!(!set_cookie.contains(&t.secret_key));
    let cookie = cookie_pair(&set_cookie);

    let app_page = request(&t, "GET", "/dashboard/", &[], Some(cookie), None).await;
    assert_eq!(app_page.status, 200);
    assert!(app_page.body.contains(r#"src="/dashboard/app.js""#));
    assert!(app_page.body.contains("Test program"));
    assert!(!app_page.body.contains(&t.secret_key));
    let script = request(&t, "GET", "/dashboard/app.js", &[], Some(cookie), None).await;
    assert_eq!(script.status, 200);
    assert_eq!(script.header("cache-control"), Some("no-store"));

    // Over plain http (refwire-local) the cookie cannot be Secure, or the browser would drop it.
    let body = format!("key={}", t.secret_key);
    let plain = request(
        &t,
        "POST",
        "/dashboard/sign-in",
        &[FORM, ("x-forwarded-proto", "http")],
        None,
        Some(&body),
    )
    .await;
    assert!(!plain.cookies[0].contains("Secure"), "{:?}", plain.cookies);
}

#[tokio::test]
async fn only_a_secret_key_signs_in_and_only_from_this_origin() {
    let t = TestApp::new().await;
    for key in [
        t.publishable_key.clone(),
        "rw_sec_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_string(),
        String::new(),
    ] {
        let body = format!("key={key}");
        let response = request(&t, "POST", "/dashboard/sign-in", &[FORM], None, Some(&body)).await;
        assert_eq!(response.status, 401, "{key}");
        assert!(response.cookies.is_empty());
        assert!(response.body.contains(r#"role="alert""#));
    }
    let body = format!("key={}", t.secret_key);
    let forged = request(
        &t,
        "POST",
        "/dashboard/sign-in",
        &[FORM, ("origin", "https://evil.example")],
        None,
        Some(&body),
    )
    .await;
    assert_eq!(forged.status, 403);
    assert!(forged.cookies.is_empty());

    // Some browsers send `Origin: null` with a page's own form; `Sec-Fetch-Site` then decides.
    for (site, status) in [("same-origin", 303), ("cross-site", 403)] {
        let response = request(
            &t,
            "POST",
            "/dashboard/sign-in",
            &[FORM, ("origin", "null"), ("sec-fetch-site", site)],
            None,
            Some(&body),
        )
        .await;
        assert_eq!(response.status, status, "{site}: {}", response.body);
    }
}

#[tokio::test]
async fn a_session_works_the_api_only_with_its_csrf_token() {
    let t = TestApp::new().await;
    let set_cookie = sign_in(&t).await;
    let cookie = cookie_pair(&set_cookie);
    let token = csrf_token(&t, cookie).await;
    let webhook =
        json!({"name": "CRM", "url": "https://example.com/hook", "events": ["referral.completed"]})
            .to_string();
    let json_body = ("content-type", "application/json");

    for headers in [vec![json_body], vec![json_body, ("x-csrf-token", "forged")]] {
        let refused = request(
            &t,
            "POST",
            "/v1/webhooks",
            &headers,
            Some(cookie),
            Some(&webhook),
        )
        .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert_eq!(refused.json()["error"]["code"], "csrf_failed");
        let read = request(&t, "GET", "/v1/webhooks", &headers[1..], Some(cookie), None).await;
        assert_eq!(read.status, 403);
    }
    assert_eq!(
        t.secret("GET", "/v1/webhooks", None).await.body["webhooks"],
        json!([])
    );

    let with_token = [json_body, ("x-csrf-token", token.as_str())];
    let created = request(
        &t,
        "POST",
        "/v1/webhooks",
        &with_token,
        Some(cookie),
        Some(&webhook),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let listed = request(&t, "GET", "/v1/webhooks", &with_token, Some(cookie), None).await;
    assert_eq!(listed.json()["webhooks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_tampered_expired_or_revoked_session_is_refused() {
    let t = TestApp::new().await;
    let set_cookie = sign_in(&t).await;
    let cookie = cookie_pair(&set_cookie).to_string();
    let token = csrf_token(&t, &cookie).await;
    let csrf = [("x-csrf-token", token.as_str())];
    let stats = |cookie: String| {
        let t = &t;
        async move {
            request(
                t,
                "GET",
                "/v1/api/referral/stats",
                &csrf,
                Some(&cookie),
                None,
            )
            .await
            .status
        }
    };
    assert_eq!(stats(cookie.clone()).await, 200);

    // Another expiry under the same signature.
    let mut parts: Vec<&str> = cookie.split('.').collect();
    let later = (parts[2].parse::<i64>().unwrap() + 86_400_000).to_string();
    parts[2] = &later;
    assert_eq!(stats(parts.join(".")).await, 401);
    assert_eq!(stats(format!("{cookie}x")).await, 401);
    assert_eq!(stats("refwire_session=v1.x.y.z".into()).await, 401);

    t.clock.advance(chrono::Duration::hours(13));
    assert_eq!(stats(cookie.clone()).await, 401);
    let page = request(&t, "GET", "/dashboard/", &[], Some(&cookie), None).await;
    assert!(page.body.contains(r#"action="/dashboard/sign-in""#));

    // Revoking the key that opened a session ends it.
    let fresh = sign_in(&t).await;
    let fresh = cookie_pair(&fresh).to_string();
    let fresh_token = csrf_token(&t, &fresh).await;
    let key_id = t.secret_key["rw_sec_".len()..].split('_').next().unwrap();
    let revoke = format!("/v1/programs/{}/keys/{key_id}", t.program_id);
    let revoked = t.call("DELETE", &revoke, Some(OPERATOR_KEY), None).await;
    assert!(revoked.status < 300, "{:?}", revoked.body);
    let after = request(
        &t,
        "GET",
        "/v1/api/referral/stats",
        &[("x-csrf-token", fresh_token.as_str())],
        Some(&fresh),
        None,
    )
    .await;
    assert_eq!(after.status, 401);
}

#[tokio::test]
async fn signing_out_needs_the_csrf_token_and_clears_the_cookie() {
    let t = TestApp::new().await;
    let set_cookie = sign_in(&t).await;
    let cookie = cookie_pair(&set_cookie);
    let token = csrf_token(&t, cookie).await;
    let refused = request(
        &t,
        "POST",
        "/dashboard/sign-out",
        &[FORM],
        Some(cookie),
        Some("csrf_token=nope"),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(refused.cookies.is_empty());

    let body = format!("csrf_token={token}");
    let signed_out = request(
        &t,
        "POST",
        "/dashboard/sign-out",
        &[FORM],
        Some(cookie),
        Some(&body),
    )
    .await;
    assert_eq!(signed_out.status, 303);
    let cleared = &signed_out.cookies[0];
    assert!(cleared.starts_with("refwire_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn csv_exports_list_everything_and_neutralise_formulas() {
    let t = TestApp::new().await;
    let created = t
        .secret(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_1", "user_name": "=HYPERLINK(\"https://evil.example\")"})),
        )
        .await;
    assert_eq!(created.status, 201);
    for index in 0..120 {
        t.create_referral(&format!("bulk_{index}")).await;
    }
    t.secret(
        "POST",
        "/v1/participants",
        Some(json!({"email": "ada@example.com", "name": "Ada"})),
    )
    .await;
    let set_cookie = sign_in(&t).await;
    let cookie = cookie_pair(&set_cookie);

    let referrals = request(
        &t,
        "GET",
        "/dashboard/export/referrals.csv",
        &[],
        Some(cookie),
        None,
    )
    .await;
    assert_eq!(referrals.status, 200);
    assert!(
        referrals
            .header("content-type")
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = referrals.body.lines().collect();
    assert!(lines[0].starts_with("referral_code,referral_url,referrer_id,user_name"));
    assert_eq!(lines.len(), 1 + 121, "every page is exported");
    assert!(
        referrals
            .body
            .contains(r#"'=HYPERLINK(""https://evil.example"")"#)
    );

    let participants = request(
        &t,
        "GET",
        "/dashboard/export/participants.csv",
        &[],
        Some(cookie),
        None,
    )
    .await;
    assert!(participants.body.contains("ada@example.com,,Ada,"));
}

#[tokio::test]
async fn publishable_routes_answer_only_the_origins_a_program_allows() {
    let t = TestApp::new().await;
    let preflight = request(
        &t,
        "OPTIONS",
        "/v1/api/referral/create",
        &[("origin", SHOP), ("access-control-request-method", "POST")],
        None,
        None,
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(SHOP));
    assert!(
        preflight
            .header("access-control-allow-credentials")
            .is_none()
    );

    let create = |origin: &'static str| {
        let mut event = apigw_event(
            "POST",
            "/v1/api/referral/create",
            Some(&t.publishable_key),
            Some(r#"{"user_id": "user_web"}"#),
        );
        event["headers"]["origin"] = json!(origin);
        t.invoke(event)
    };
    let refused = create(SHOP).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error"]["code"], "origin_not_allowed");
    assert_eq!(
        t.event_names().await,
        Vec::<String>::new(),
        "nothing was created"
    );

    let updated = t
        .secret(
            "PUT",
            "/v1/api/referral/settings",
            Some(json!({"allowed_origins": [SHOP]})),
        )
        .await;
    assert_eq!(updated.body["allowed_origins"], json!([SHOP]));
    let allowed = create(SHOP).await;
    assert_eq!(allowed.status, 201, "{:?}", allowed.body);
    assert_eq!(allowed.headers["access-control-allow-origin"], SHOP);
    assert_eq!(create("https://other.example").await.status, 403);

    // Secret-key routes never answer another origin, even with a valid key.
    let preflight = request(
        &t,
        "OPTIONS",
        "/v1/webhooks",
        &[("origin", SHOP), ("access-control-request-method", "GET")],
        None,
        None,
    )
    .await;
    assert!(preflight.header("access-control-allow-origin").is_none());
    let mut event = apigw_event("GET", "/v1/webhooks", Some(&t.secret_key), None);
    event["headers"]["origin"] = json!(SHOP);
    let secret = t.invoke(event).await;
    assert_eq!(secret.status, 403);
    assert!(secret.headers.get("access-control-allow-origin").is_none());
}
