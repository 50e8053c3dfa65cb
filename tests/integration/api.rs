//! The referral API through lambda_http with API Gateway v2 events: the lifecycle and its rules.

use chrono::Duration;
use refwire_tests::{OPERATOR_KEY, TestApp, apigw_event};
use serde_json::json;

#[tokio::test]
async fn full_lifecycle_create_milestones_complete_claim_stats_leaderboard() {
    let t = TestApp::new().await;
    let settings = json!({
        "reward_type": "credit", "reward_value": 5,
        "referee_reward_type": "discount", "referee_reward_value": "10%",
        "referral_url_template": "https://shop.example/r/{code}",
    });
    let updated = t
        .secret("PUT", "/v1/api/referral/settings", Some(settings))
        .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(updated.body["reward_value"], 5);

    let created = t
        .secret(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_123", "user_name": "Ann"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.headers["content-type"], "application/json");
    let code = created.body["referral_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 10);
    assert_eq!(
        created.body["referral_url"],
        format!("https://shop.example/r/{code}")
    );
    assert!(
        created.body["referral_id"]
            .as_str()
            .unwrap()
            .starts_with("ref_")
    );

    let signed_up = t.milestone(&code, "signed_up", Some("user_456")).await;
    assert_eq!(signed_up.status, 200, "{signed_up:?}");
    assert_eq!(signed_up.body["status"], "pending");
    assert_eq!(signed_up.body["referred_user_id"], "user_456");

    t.clock.advance(Duration::minutes(5));
    let completed = t.milestone(&code, "completed", None).await;
    assert_eq!(completed.body["status"], "completed");
    assert_eq!(completed.body["milestone"], "completed");
    assert_eq!(completed.body["completed_at"], "2026-04-08T14:35:00.000Z");
    let history = completed.body["milestone_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0],
        json!({"milestone": "signed_up", "timestamp": "2026-04-08T14:30:00.000Z"})
    );

    let got = t
        .secret(
            "GET",
            &format!("/v1/api/referral/{}", code.to_lowercase()),
            None,
        )
        .await;
    assert_eq!(got.status, 200);
    for field in [
        "referral_id",
        "referral_code",
        "referral_url",
        "referrer_id",
        "referred_user_id",
        "status",
        "milestone",
        "milestone_history",
        "reward_type",
        "reward_value",
        "referee_reward_type",
        "referee_reward_value",
        "reward_claimed",
        "referee_reward_claimed",
        "created_at",
        "completed_at",
        "expires_at",
    ] {
        assert!(
            got.body.get(field).is_some(),
            "GET lacks {field}: {}",
            got.body
        );
    }
    assert_eq!(got.body["reward_type"], "credit");
    assert_eq!(got.body["referee_reward_value"], "10%");
    assert_eq!(got.body["expires_at"], "2026-05-08T14:30:00.000Z");

    let claim = t
        .secret(
            "POST",
            "/v1/api/referral/claim-reward",
            Some(json!({"referral_code": code})),
        )
        .await;
    assert_eq!(claim.body["reward_claimed"], true);
    let again = t
        .secret(
            "POST",
            "/v1/api/referral/claim-reward",
            Some(json!({"referral_code": code})),
        )
        .await;
    assert_eq!(again.status, 200, "a repeated claim is fine");
    assert_eq!(again.body, claim.body, "and returns the same record");
    let referee = t
        .secret(
            "POST",
            "/v1/api/referral/claim-referee-reward",
            Some(json!({"referral_code": code})),
        )
        .await;
    assert_eq!(referee.body["referee_reward_claimed"], true);

    let stats = t.secret("GET", "/v1/api/referral/stats", None).await;
    assert_eq!(
        stats.body,
        json!({"total": 1, "pending": 0, "completed": 1, "expired": 0, "conversion_rate": 1.0, "rewards_claimed": 2})
    );
    let board = t.secret("GET", "/v1/api/referral/leaderboard", None).await;
    assert_eq!(
        board.body["leaderboard"],
        json!([{"rank": 1, "referrer_id": "user_123", "user_name": "Ann", "total": 1, "completed": 1, "pending": 0}])
    );

    assert_eq!(
        t.event_names().await,
        [
            "referral.created",
            "referral.milestone_reached",
            "referral.milestone_reached",
            "referral.completed",
            "reward.claimed",
            "reward.claimed",
        ]
    );
    let events = t.events().await;
    assert_eq!(
        events[0].data,
        json!({
            "referral_code": code, "referrer_id": "user_123",
            "referral_url": format!("https://shop.example/r/{code}"),
            "message": format!("user_123 got referral code {code}."),
        })
    );
    let completion = &events[3].data;
    assert_eq!(completion["referred_user_id"], "user_456");
    assert_eq!(completion["milestone"], "completed");
    assert_eq!(completion["reward_value"], 5);
    assert!(events.iter().all(|e| e.id.starts_with("evt_")));
}

#[tokio::test]
async fn open_code_is_reused_until_a_referee_takes_it() {
    let t = TestApp::new().await;
    let first = t.create_referral("user_1").await;
    let again = t
        .secret(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_1"})),
        )
        .await;
    assert_eq!(again.status, 200, "reuse answers 200, not 201");
    assert_eq!(again.body["referral_code"], first.as_str());
    t.milestone(&first, "signed_up", Some("friend_1")).await;
    let second = t.create_referral("user_1").await;
    assert_ne!(second, first);
    assert_eq!(
        t.event_names()
            .await
            .iter()
            .filter(|e| *e == "referral.created")
            .count(),
        2
    );
}

#[tokio::test]
async fn max_pending_per_user_is_enforced() {
    let t = TestApp::new().await;
    t.secret(
        "PUT",
        "/v1/api/referral/settings",
        Some(json!({"referral_max_per_user": 2})),
    )
    .await;
    for friend in ["friend_1", "friend_2"] {
        let code = t.create_referral("user_1").await;
        t.milestone(&code, "signed_up", Some(friend)).await;
    }
    let refused = t
        .secret(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_1"})),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["error"]["message"],
        "Maximum referrals per user reached"
    );
    assert_eq!(refused.body["error"]["code"], "validation_failed");
    // Completing one frees a slot: the cap counts pending referrals only.
    let list = t
        .secret("GET", "/v1/api/referrals?referrer_id=user_1", None)
        .await;
    let code = list.body["referrals"][0]["referral_code"]
        .as_str()
        .unwrap()
        .to_string();
    t.milestone(&code, "completed", None).await;
    t.create_referral("user_1").await;
}

#[tokio::test]
async fn a_user_is_referred_at_most_once_per_program() {
    let t = TestApp::new().await;
    let first = t.create_referral("user_1").await;
    let second = t.create_referral("user_2").await;
    assert_eq!(
        t.milestone(&first, "signed_up", Some("friend"))
            .await
            .status,
        200
    );
    let refused = t.milestone(&second, "signed_up", Some("friend")).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(refused.body["error"]["code"], "already_referred");
    let untouched = t
        .secret("GET", &format!("/v1/api/referral/{second}"), None)
        .await;
    assert_eq!(untouched.body["referred_user_id"], json!(null));
    assert_eq!(untouched.body["milestone_history"], json!([]));
}

#[tokio::test]
async fn expiry_applies_on_read_on_write_and_by_the_sweep_and_blocks_completion() {
    let t = TestApp::new().await;
    let read_code = t.create_referral("reader").await;
    let write_code = t.create_referral("writer").await;
    let swept_code = t.create_referral("swept").await;
    t.clock.advance(Duration::days(30));

    let stats = t.secret("GET", "/v1/api/referral/stats", None).await;
    assert_eq!(
        stats.body["expired"], 3,
        "lapsed referrals count as expired before any write"
    );

    let read = t
        .secret("GET", &format!("/v1/api/referral/{read_code}"), None)
        .await;
    assert_eq!(read.body["status"], "expired");
    let write = t.milestone(&write_code, "completed", Some("friend")).await;
    assert_eq!(write.status, 409);
    assert_eq!(write.body["error"]["code"], "referral_expired");
    assert_eq!(
        t.app.sweep_expired(100).await.unwrap(),
        1,
        "only the untouched one is left to sweep"
    );
    assert_eq!(t.app.sweep_expired(100).await.unwrap(), 0);
    let swept = t
        .secret("GET", &format!("/v1/api/referral/{swept_code}"), None)
        .await;
    assert_eq!(swept.body["status"], "expired");

    let names = t.event_names().await;
    assert_eq!(
        names.iter().filter(|e| *e == "referral.expired").count(),
        3,
        "{names:?}"
    );
    assert!(!names.contains(&"referral.completed".to_string()));
    // An expired open code is not reused: the referrer gets a fresh one.
    let fresh = t.create_referral("reader").await;
    assert_ne!(fresh, read_code);
}

#[tokio::test]
async fn list_paginates_newest_first_with_filters() {
    let t = TestApp::new().await;
    let mut codes = Vec::new();
    for user in ["a", "b", "c", "d", "e"] {
        codes.push(t.create_referral(user).await);
        t.clock.advance(Duration::milliseconds(5));
    }
    t.milestone(&codes[1], "completed", None).await;
    let page1 = t.secret("GET", "/v1/api/referrals?limit=2", None).await;
    let page1_codes: Vec<_> = page1.body["referrals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["referral_code"].clone())
        .collect();
    assert_eq!(page1_codes, [json!(codes[4]), json!(codes[3])]);
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = t
        .secret(
            "GET",
            &format!("/v1/api/referrals?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page2.body["referrals"][0]["referral_code"], json!(codes[2]));
    let cursor = page2.body["next_cursor"].as_str().unwrap();
    let page3 = t
        .secret(
            "GET",
            &format!("/v1/api/referrals?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page3.body["referrals"].as_array().unwrap().len(), 1);
    assert_eq!(page3.body["next_cursor"], json!(null));

    let completed = t
        .secret("GET", "/v1/api/referrals?status=completed", None)
        .await;
    assert_eq!(completed.body["referrals"].as_array().unwrap().len(), 1);
    assert_eq!(
        completed.body["referrals"][0]["review"],
        json!({"ip": null, "device_id": null})
    );
    let by_user = t
        .secret("GET", "/v1/api/referrals?referrer_id=c", None)
        .await;
    assert_eq!(
        by_user.body["referrals"][0]["referral_code"],
        json!(codes[2])
    );
}

#[tokio::test]
async fn leaderboard_ranks_by_completed_then_total_and_caps_the_limit() {
    let t = TestApp::new().await;
    for (referrer, friends, complete) in [("few", 1, 1), ("many", 3, 0), ("best", 2, 2)] {
        for n in 0..friends {
            let code = t.create_referral(referrer).await;
            let friend = format!("{referrer}-friend-{n}");
            let milestone = if n < complete {
                "completed"
            } else {
                "signed_up"
            };
            t.milestone(&code, milestone, Some(&friend)).await;
        }
    }
    let board = t
        .call(
            "GET",
            "/v1/api/referral/leaderboard?limit=100",
            Some(&t.publishable_key),
            None,
        )
        .await;
    assert_eq!(
        board.status, 200,
        "publishable keys may read the leaderboard"
    );
    let order: Vec<_> = board.body["leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["referrer_id"].clone())
        .collect();
    assert_eq!(order, [json!("best"), json!("few"), json!("many")]);
    let two = t
        .secret("GET", "/v1/api/referral/leaderboard?limit=2", None)
        .await;
    assert_eq!(two.body["leaderboard"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn operator_creates_programs_and_keys_that_work_and_can_be_revoked() {
    let t = TestApp::new().await;
    let created = t
        .call(
            "POST",
            "/v1/programs",
            Some(OPERATOR_KEY),
            Some(r#"{"name":"Shop","settings":{"code_length":8}}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let secret = created.body["secret_key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("rw_sec_"));
    assert_eq!(created.body["settings"]["code_length"], 8);
    let program_id = created.body["program_id"].as_str().unwrap();

    let referral = t
        .call(
            "POST",
            "/v1/api/referral/create",
            Some(&secret),
            Some(r#"{"user_id":"u"}"#),
        )
        .await;
    assert_eq!(referral.body["referral_code"].as_str().unwrap().len(), 8);
    // Programs are isolated: the first program's key cannot see this code.
    let code = referral.body["referral_code"].as_str().unwrap();
    let other = t
        .secret("GET", &format!("/v1/api/referral/{code}"), None)
        .await;
    assert_eq!(other.status, 404);

    let issued = t
        .call(
            "POST",
            &format!("/v1/programs/{program_id}/keys"),
            Some(OPERATOR_KEY),
            Some(r#"{"kind":"publishable"}"#),
        )
        .await;
    assert_eq!(issued.status, 201);
    let key_id = issued.body["key_id"].as_str().unwrap();
    let publishable = issued.body["key"].as_str().unwrap();
    assert_eq!(
        t.call(
            "GET",
            &format!("/v1/api/referral/{code}"),
            Some(publishable),
            None
        )
        .await
        .status,
        200
    );
    let revoked = t
        .call(
            "DELETE",
            &format!("/v1/programs/{program_id}/keys/{key_id}"),
            Some(OPERATOR_KEY),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        t.call(
            "GET",
            &format!("/v1/api/referral/{code}"),
            Some(publishable),
            None
        )
        .await
        .status,
        401
    );

    let not_operator = t
        .call(
            "POST",
            "/v1/programs",
            Some(&t.secret_key),
            Some(r#"{"name":"x"}"#),
        )
        .await;
    assert_eq!(not_operator.status, 401);
}

#[tokio::test]
async fn bearer_auth_and_base64_bodies_work_as_api_gateway_sends_them() {
    use base64::Engine;
    let t = TestApp::new().await;
    let mut event = apigw_event("POST", "/v1/api/referral/create", None, None);
    event["headers"]["authorization"] = json!(format!("Bearer {}", t.secret_key));
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(r#"{"user_id":"b64"}"#));
    event["isBase64Encoded"] = json!(true);
    let response = t.invoke(event).await;
    assert_eq!(response.status, 201, "{response:?}");
}

#[tokio::test]
async fn a_referrals_events_are_listed_with_it() {
    let t = TestApp::new().await;
    let code = t.create_referral("user_1").await;
    t.milestone(&code, "signed_up", Some("user_2")).await;
    t.create_referral("user_3").await;
    let listed = t
        .secret(
            "GET",
            &format!("/v1/api/referral/{}/events", code.to_lowercase()),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let names: Vec<&str> = listed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["referral.created", "referral.milestone_reached"]);
    let unknown = t
        .secret("GET", "/v1/api/referral/NOSUCHCODE/events", None)
        .await;
    assert_eq!(unknown.status, 404);
    let publishable = t
        .call(
            "GET",
            &format!("/v1/api/referral/{code}/events"),
            Some(&t.publishable_key),
            None,
        )
        .await;
    assert_eq!(publishable.status, 403);
}

/// Collects what the code under test logs on this thread.
#[derive(Clone, Default)]
struct LogLines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_store_failure_is_a_generic_503_and_its_cause_is_logged_once() {
    let t = TestApp::new().await;
    // A real SQLite failure under the running store: the table it reads is gone.
    rusqlite::Connection::open(t.data_file())
        .unwrap()
        .execute_batch("DROP TABLE referrals")
        .unwrap();
    let logs = LogLines::default();
    let writer = logs.clone();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );

    let failed = t
        .secret(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_123"})),
        )
        .await;

    assert_eq!(failed.status, 503, "{failed:?}");
    assert_eq!(
        failed.body,
        json!({"error": {"code": "unavailable", "message": "the data store is temporarily unavailable"}})
    );
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logged.matches("no such table: referrals").count(),
        1,
        "the cause, once: {logged}"
    );
    assert!(logged.contains("SQLite call failed"), "{logged}");
}
