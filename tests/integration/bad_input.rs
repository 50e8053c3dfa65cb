//! Every bad input gets a clear 4xx in the one JSON error shape and changes nothing.

use refwire_tests::{ApiResponse, TestApp};
use serde_json::json;

fn assert_error(response: &ApiResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{response:?}");
    let error = &response.body["error"];
    assert_eq!(error["code"], code, "{response:?}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{response:?}"
    );
    let keys: Vec<_> = error.as_object().unwrap().keys().cloned().collect();
    assert!(
        keys.iter()
            .all(|k| ["code", "message", "field"].contains(&k.as_str())),
        "{keys:?}"
    );
    assert_eq!(
        response.body.as_object().unwrap().len(),
        1,
        "only the error object: {response:?}"
    );
}

/// method, path, key, body, then the expected status, error code and (if any) field.
type BadRequest<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<String>,
    u16,
    &'a str,
    Option<&'a str>,
);

/// A program with one pending referral (with a referee) and one expired one, and the code of each.
async fn seeded() -> (TestApp, String, String) {
    let t = TestApp::new().await;
    let expired = t.create_referral("old").await;
    t.clock.advance(chrono::Duration::days(31));
    t.secret("GET", &format!("/v1/api/referral/{expired}"), None)
        .await;
    let pending = t.create_referral("user_1").await;
    t.milestone(&pending, "signed_up", Some("friend")).await;
    (t, pending, expired)
}

#[tokio::test]
async fn bad_requests_are_refused_with_json_errors_and_change_nothing() {
    let (t, pending, expired) = seeded().await;
    let secret = t.secret_key.clone();
    let publishable = t.publishable_key.clone();
    let big = format!(
        r#"{{"user_id":"u","metadata":{{"blob":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    let cases: Vec<BadRequest> = vec![
        ("POST", "/v1/api/referral/create", Some(&secret), Some("{not json".into()), 400, "invalid_json", None),
        ("POST", "/v1/api/referral/create", Some(&secret), Some(r#"{"user_id":"u"} trailing"#.into()), 400, "invalid_json", None),
        ("POST", "/v1/api/referral/create", Some(&secret), Some(r#"{"user_id":42}"#.into()), 400, "validation_failed", Some("user_id")),
        ("POST", "/v1/api/referral/create", Some(&secret), Some("{}".into()), 400, "validation_failed", None),
        ("POST", "/v1/api/referral/create", Some(&secret), Some(r#"{"user_id":""}"#.into()), 400, "validation_failed", Some("user_id")),
        ("POST", "/v1/api/referral/create", Some(&secret), Some(r#"{"user_id":"u","ip":"999.1.1.1"}"#.into()), 400, "validation_failed", Some("ip")),
        ("POST", "/v1/api/referral/create", Some(&secret), Some(r#"{"user_id":"u","metadata":"x"}"#.into()), 400, "validation_failed", Some("metadata")),
        ("POST", "/v1/api/referral/create", Some(&secret), Some(r#"{"user_id":"u","metadata":{"n":[1e400]}}"#.into()), 400, "validation_failed", Some("metadata")),
        ("POST", "/v1/api/referral/create", Some(&secret), Some(big), 413, "payload_too_large", None),
        ("POST", "/v1/api/referral/create", None, Some(r#"{"user_id":"u"}"#.into()), 401, "unauthorized", None),
        ("POST", "/v1/api/referral/create", Some("rw_sec_abcdefghijkl_abcdefghijklmnopqrstuvwxyzABCDEF"), Some(r#"{"user_id":"u"}"#.into()), 401, "unauthorized", None),
        ("POST", "/v1/api/referral/create", Some("garbage"), Some(r#"{"user_id":"u"}"#.into()), 401, "unauthorized", None),
        ("POST", "/v1/api/referral/milestone", Some(&secret), Some(json!({"referral_code": pending, "milestone": "paid"}).to_string()), 400, "validation_failed", Some("milestone")),
        ("POST", "/v1/api/referral/milestone", Some(&secret), Some(json!({"referral_code": pending, "milestone": ["completed"]}).to_string()), 400, "validation_failed", Some("milestone")),
        ("POST", "/v1/api/referral/milestone", Some(&secret), Some(json!({"referral_code": "NOSUCHCODE", "milestone": "completed"}).to_string()), 404, "not_found", None),
        ("POST", "/v1/api/referral/milestone", Some(&secret), Some(json!({"referral_code": expired, "milestone": "completed"}).to_string()), 409, "referral_expired", None),
        ("POST", "/v1/api/referral/milestone", Some(&secret), Some(json!({"referral_code": pending, "milestone": "completed", "referred_user_id": "user_1"}).to_string()), 400, "validation_failed", Some("referred_user_id")),
        ("POST", "/v1/api/referral/milestone", Some(&secret), Some(json!({"referral_code": pending, "milestone": "completed", "referred_user_id": "someone_else"}).to_string()), 409, "referee_mismatch", None),
        ("POST", "/v1/api/referral/milestone", Some(&publishable), Some(json!({"referral_code": pending, "milestone": "completed"}).to_string()), 403, "forbidden", None),
        ("POST", "/v1/api/referral/claim-reward", Some(&secret), Some(json!({"referral_code": pending}).to_string()), 409, "not_completed", None),
        ("POST", "/v1/api/referral/claim-referee-reward", Some(&secret), Some(json!({"referral_code": pending}).to_string()), 409, "not_completed", None),
        ("POST", "/v1/api/referral/claim-reward", Some(&secret), Some(json!({"code": pending}).to_string()), 400, "validation_failed", None),
        ("GET", "/v1/api/referral/NOSUCHCODE", Some(&secret), None, 404, "not_found", None),
        ("GET", "/v1/api/referral/stats", Some(&publishable), None, 403, "forbidden", None),
        ("GET", "/v1/api/referral/settings", Some(&publishable), None, 403, "forbidden", None),
        ("GET", "/v1/api/referrals", Some(&publishable), None, 403, "forbidden", None),
        ("GET", "/v1/api/referrals?status=done", Some(&secret), None, 400, "validation_failed", Some("status")),
        ("GET", "/v1/api/referrals?limit=-1", Some(&secret), None, 400, "validation_failed", None),
        ("GET", "/v1/api/referral/leaderboard?limit=0", Some(&secret), None, 400, "validation_failed", Some("limit")),
        ("GET", "/v1/api/referral/leaderboard?limit=abc", Some(&secret), None, 400, "validation_failed", None),
        ("PUT", "/v1/api/referral/settings", Some(&secret), Some(r#"{"referral_reward_milestone":"nope"}"#.into()), 400, "validation_failed", Some("referral_reward_milestone")),
        ("PUT", "/v1/api/referral/settings", Some(&secret), Some(r#"{"code_length":"ten"}"#.into()), 400, "validation_failed", Some("code_length")),
        ("PUT", "/v1/api/referral/settings", Some(&secret), Some(r#"{"unknown_setting":1}"#.into()), 400, "validation_failed", None),
        ("PUT", "/v1/api/referral/settings", Some(&secret), Some(r#"{"reward_type":"credit","reward_value":-1e400}"#.into()), 400, "validation_failed", Some("reward_value")),
        ("POST", "/v1/events", Some(&secret), Some(r#"{"event":"link.clicked","data":{"n":1e400}}"#.into()), 400, "validation_failed", Some("data")),
        ("PUT", "/v1/api/referral/settings", Some(&publishable), Some(r#"{"enabled":false}"#.into()), 403, "forbidden", None),
        ("POST", "/v1/programs", Some(&secret), Some(r#"{"name":"x"}"#.into()), 401, "unauthorized", None),
        ("POST", "/v1/programs", Some(refwire_tests::OPERATOR_KEY), Some(r#"{"name":""}"#.into()), 400, "validation_failed", Some("name")),
        ("DELETE", "/v1/api/referral/stats", Some(&secret), None, 405, "method_not_allowed", None),
        ("GET", "/v1/nothing-here", Some(&secret), None, 404, "not_found", None),
    ];
    for (method, path, key, body, status, code, field) in cases {
        let before = t.snapshot().await;
        let response = t.call(method, path, key, body.as_deref()).await;
        assert_error(&response, status, code);
        if let Some(field) = field {
            assert_eq!(
                response.body["error"]["field"], field,
                "{method} {path}: {response:?}"
            );
        }
        assert_eq!(t.snapshot().await, before, "{method} {path} changed state");
    }
}

#[tokio::test]
async fn disabled_program_refuses_new_referrals_without_change() {
    let t = TestApp::new().await;
    t.secret(
        "PUT",
        "/v1/api/referral/settings",
        Some(json!({"enabled": false})),
    )
    .await;
    let before = t.snapshot().await;
    let refused = t
        .secret(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "u"})),
        )
        .await;
    assert_error(&refused, 409, "referrals_disabled");
    assert_eq!(t.snapshot().await, before);
}

#[tokio::test]
async fn errors_never_echo_secrets() {
    let t = TestApp::new().await;
    let wrong = format!("{}x", t.secret_key);
    let response = t
        .call("GET", "/v1/api/referral/stats", Some(&wrong), None)
        .await;
    assert_error(&response, 401, "unauthorized");
    assert!(!response.body.to_string().contains(&t.secret_key));
}

#[tokio::test]
async fn page_cursors_the_api_did_not_hand_out_are_refused() {
    let t = TestApp::new().await;
    for user in ["ann", "bob"] {
        t.create_referral(user).await;
    }
    let (hook, _) = t
        .create_webhook("https://crm.example.com/hooks", json!({}))
        .await;
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");
    let unknown_event = "evt_01KZZZZZZZZZZZZZZZZZZZZZZZ";
    let referral_id = t.snapshot().await["referrals"][0]["referral_id"]
        .as_str()
        .unwrap()
        .to_string();
    t.assert_refused(&[
        (
            "GET",
            format!("/v1/events?after={unknown_event}"),
            None,
            400,
            "after",
        ),
        ("GET", "/v1/events?after=garbage".into(), None, 400, "after"),
        ("GET", "/v1/events?after=".into(), None, 400, "after"),
        (
            "GET",
            "/v1/api/referrals?cursor=garbage".into(),
            None,
            400,
            "cursor",
        ),
        (
            "GET",
            format!("/v1/api/referrals?cursor={}", referral_id.to_lowercase()),
            None,
            400,
            "cursor",
        ),
        (
            "GET",
            format!("{deliveries}?cursor=garbage"),
            None,
            400,
            "cursor",
        ),
        (
            "GET",
            format!("{deliveries}?cursor=dlv_0000000000000000"),
            None,
            400,
            "cursor",
        ),
    ])
    .await;

    let events = t.events().await;
    let after_first = t
        .secret("GET", &format!("/v1/events?after={}", events[0].id), None)
        .await;
    assert_eq!(after_first.status, 200, "{after_first:?}");
    assert_eq!(
        after_first.body["events"].as_array().unwrap().len(),
        events.len() - 1
    );
    let from_referral = t
        .secret(
            "GET",
            &format!("/v1/api/referrals?cursor={referral_id}"),
            None,
        )
        .await;
    assert_eq!(from_referral.status, 200, "{from_referral:?}");
}
