//! The input rules the OpenAPI description states for every operation: unknown JSON fields and
//! control characters are refused naming the field, integers take whole-valued numbers, `limit`
//! is 1-100, and `null` is refused where a field is not nullable. Every refusal changes nothing.

use refwire_tests::{OPERATOR_KEY, TestApp};
use serde_json::{Value, json};

fn description() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `/v1/webhooks/{id}/test` -> `/v1/webhooks/x/test`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every operation with a JSON request body: method, path, and the body's schema.
fn json_body_operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if !schema.is_null() {
                operations.push((method.to_uppercase(), path.clone(), schema.clone()));
            }
        }
    }
    operations
}

/// A `$ref`'s target, or the schema itself; for `allOf` (a create schema adding `required` to a
/// shared one), its first part.
fn body_object<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => doc.pointer(reference.trim_start_matches('#')).unwrap(),
        None => schema,
    };
    match schema["allOf"].get(0) {
        Some(first) => body_object(doc, first),
        None => schema,
    }
}

#[test]
fn every_json_body_schema_refuses_additional_properties() {
    let doc = description();
    let operations = json_body_operations(&doc);
    assert!(operations.len() >= 17, "{}", operations.len());
    for (method, path, schema) in &operations {
        let object = body_object(&doc, schema);
        assert_eq!(
            object["additionalProperties"],
            json!(false),
            "{method} {path}: {object}"
        );
    }
}

#[tokio::test]
async fn every_json_body_refuses_an_unknown_field_by_name_and_changes_nothing() {
    let t = TestApp::new().await;
    let before = t.snapshot().await;
    for (method, path, _) in json_body_operations(&description()) {
        let key = if path.starts_with("/v1/programs") {
            OPERATOR_KEY
        } else {
            &t.secret_key
        };
        let body = json!({"colour": "blue"}).to_string();
        let response = t
            .call(&method, &concrete(&path), Some(key), Some(&body))
            .await;
        assert_eq!(response.status, 400, "{method} {path}: {response:?}");
        let error = &response.body["error"];
        assert_eq!(error["code"], "validation_failed", "{method} {path}");
        assert_eq!(error["field"], "colour", "{method} {path}: {response:?}");
        assert!(
            error["message"].as_str().unwrap().contains("unknown field"),
            "{method} {path}: {response:?}"
        );
    }
    // Nested objects are strict too.
    let nested = t
        .call(
            "POST",
            "/v1/programs",
            Some(OPERATOR_KEY),
            Some(r#"{"name":"P","settings":{"enabeld":false}}"#),
        )
        .await;
    assert_eq!(nested.status, 400, "{nested:?}");
    assert_eq!(nested.body["error"]["field"], "settings.enabeld");
    assert_eq!(t.snapshot().await, before);
}

#[tokio::test]
async fn control_characters_in_ids_codes_and_names_are_refused_by_field() {
    let t = TestApp::new().await;
    let code = t.create_referral("user_1").await;
    let before = t.snapshot().await;
    let cases: Vec<(&str, String, Option<Value>, &str)> = vec![
        (
            "POST",
            "/v1/api/referral/create".into(),
            Some(json!({"user_id": "user\u{0}2"})),
            "user_id",
        ),
        (
            "POST",
            "/v1/api/referral/create".into(),
            Some(json!({"user_id": "user_2", "user_name": "Ann\nBob"})),
            "user_name",
        ),
        (
            "POST",
            "/v1/api/referral/milestone".into(),
            Some(
                json!({"referral_code": code, "milestone": "signed_up", "referred_user_id": "f\u{1b}[31m"}),
            ),
            "referred_user_id",
        ),
        (
            "PUT",
            "/v1/api/referral/settings".into(),
            Some(json!({"referral_milestones": ["signed_up", "completed\u{7f}"]})),
            "referral_milestones[1]",
        ),
        (
            "POST",
            "/v1/waitlists".into(),
            Some(json!({"name": "Launch\u{0}"})),
            "name",
        ),
        ("GET", "/v1/api/referral/AB%00CD".into(), None, "code"),
        (
            "GET",
            "/v1/api/referrals?referrer_id=user%0A1".into(),
            None,
            "referrer_id",
        ),
        ("GET", "/v1/participants/par%001".into(), None, "id"),
    ];
    for (method, path, body, field) in cases {
        let response = t.secret(method, &path, body.clone()).await;
        assert_eq!(
            response.status, 400,
            "{method} {path} {body:?}: {response:?}"
        );
        assert_eq!(response.body["error"]["code"], "validation_failed");
        assert_eq!(
            response.body["error"]["field"], field,
            "{method} {path}: {response:?}"
        );
        assert_eq!(
            response.body["error"]["message"],
            "must not contain control characters"
        );
    }
    assert_eq!(t.snapshot().await, before);

    // The caller's own free-form JSON keeps its newlines.
    let created = t
        .secret(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_3", "metadata": {"note": "line 1\nline 2"}})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
}

#[tokio::test]
async fn integer_fields_take_whole_valued_numbers_and_nothing_else() {
    let t = TestApp::new().await;
    let updated = t
        .secret(
            "PUT",
            "/v1/api/referral/settings",
            Some(
                serde_json::from_str(r#"{"referral_expiration_days": 30.0, "code_length": 1.2e1}"#)
                    .unwrap(),
            ),
        )
        .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(updated.body["referral_expiration_days"], 30);
    assert_eq!(updated.body["code_length"], 12);
    let before = t.snapshot().await;
    for (body, field) in [
        (
            r#"{"referral_expiration_days": 30.5}"#,
            "referral_expiration_days",
        ),
        (r#"{"code_length": 256.0}"#, "code_length"),
        (r#"{"referral_max_per_user": -1}"#, "referral_max_per_user"),
        (
            r#"{"referral_max_per_user": 1e400}"#,
            "referral_max_per_user",
        ),
    ] {
        let response = t
            .secret(
                "PUT",
                "/v1/api/referral/settings",
                Some(serde_json::from_str(body).unwrap()),
            )
            .await;
        assert_eq!(response.status, 400, "{body}: {response:?}");
        assert_eq!(response.body["error"]["field"], field, "{body}");
        let message = response.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("a whole number from 0 to"), "{message}");
    }
    assert_eq!(t.snapshot().await, before);
}

#[tokio::test]
async fn null_is_refused_where_a_field_is_not_nullable() {
    let t = TestApp::new().await;
    let before = t.snapshot().await;
    for field in [
        "enabled",
        "reward_type",
        "referral_milestones",
        "code_length",
    ] {
        let response = t
            .secret(
                "PUT",
                "/v1/api/referral/settings",
                Some(json!({ field: null })),
            )
            .await;
        assert_eq!(response.status, 400, "{field}: {response:?}");
        assert_eq!(response.body["error"]["field"], field, "{response:?}");
    }
    assert_eq!(t.snapshot().await, before);
    // Nullable ones still clear.
    let cleared = t
        .secret(
            "PUT",
            "/v1/api/referral/settings",
            Some(json!({"referral_expiration_days": null})),
        )
        .await;
    assert_eq!(cleared.status, 200, "{cleared:?}");
    assert_eq!(cleared.body["referral_expiration_days"], Value::Null);
}

#[tokio::test]
async fn limit_is_one_to_one_hundred_with_a_clear_error() {
    let t = TestApp::new().await;
    for path in [
        "/v1/api/referrals",
        "/v1/api/referral/leaderboard",
        "/v1/events",
        "/v1/participants",
    ] {
        let ok = t.secret("GET", &format!("{path}?limit=100"), None).await;
        assert_eq!(ok.status, 200, "{path}: {ok:?}");
        for limit in ["0", "101", "99999999999", "2.5", "ten"] {
            let response = t
                .secret("GET", &format!("{path}?limit={limit}"), None)
                .await;
            assert_eq!(response.status, 400, "{path}?limit={limit}: {response:?}");
            assert_eq!(response.body["error"]["code"], "validation_failed");
            assert_eq!(response.body["error"]["field"], "limit");
            let message = response.body["error"]["message"].as_str().unwrap();
            assert!(message.contains("between 1 and 100"), "{message}");
        }
    }
}

#[tokio::test]
async fn operators_issue_only_secret_and_publishable_keys() {
    let t = TestApp::new().await;
    let path = format!("/v1/programs/{}/keys", t.program_id);
    let refused = t
        .call(
            "POST",
            &path,
            Some(OPERATOR_KEY),
            Some(r#"{"kind":"inbound"}"#),
        )
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(refused.body["error"]["field"], "kind");
    let issued = t
        .call(
            "POST",
            &path,
            Some(OPERATOR_KEY),
            Some(r#"{"kind":"publishable"}"#),
        )
        .await;
    assert_eq!(issued.status, 201, "{issued:?}");
    assert_eq!(issued.body["kind"], "publishable");
}
