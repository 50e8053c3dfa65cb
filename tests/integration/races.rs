//! Concurrency: exactly-once completion, one open code and one claim, under parallel HTTP requests
//! (separate tasks on a multi-threaded runtime, each with its own connection).

use refwire_tests::TestApp;
use serde_json::{Value, json};

/// Sends `count` copies of one POST in parallel and returns every (status, body).
async fn race(url: String, key: &str, body: Value, count: usize) -> Vec<(u16, Value)> {
    race_each(url, key, count, |_| body.clone()).await
}

/// Sends `count` POSTs in parallel, the n-th with `body(n)`; returns every (status, body) in order.
async fn race_each(
    url: String,
    key: &str,
    count: usize,
    body: impl Fn(usize) -> Value,
) -> Vec<(u16, Value)> {
    let client = reqwest::Client::new();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let calls: Vec<_> = (0..count)
        .map(|n| {
            let request = client.post(&url).header("X-API-Key", key).json(&body(n));
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let response = request.send().await.unwrap();
                (
                    response.status().as_u16(),
                    response.json::<Value>().await.unwrap(),
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_milestone_calls_complete_the_referral_exactly_once() {
    let t = TestApp::new().await;
    let code = t.create_referral("user_123").await;
    let url = format!("{}/v1/api/referral/milestone", t.serve().await);
    let body =
        json!({"referral_code": code, "milestone": "completed", "referred_user_id": "user_456"});
    for (status, body) in race(url, &t.secret_key, body, 50).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "completed");
    }
    let names = t.event_names().await;
    assert_eq!(
        names.iter().filter(|e| *e == "referral.completed").count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names
            .iter()
            .filter(|e| *e == "referral.milestone_reached")
            .count(),
        1
    );
    let referral = t
        .secret("GET", &format!("/v1/api/referral/{code}"), None)
        .await;
    assert_eq!(
        referral.body["milestone_history"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_for_one_user_share_one_open_code() {
    let t = TestApp::new().await;
    let url = format!("{}/v1/api/referral/create", t.serve().await);
    let results = race(url, &t.secret_key, json!({"user_id": "user_1"}), 20).await;
    let mut codes: Vec<_> = results
        .iter()
        .map(|(status, body)| {
            assert!(matches!(status, 200 | 201), "{body}");
            body["referral_code"].clone()
        })
        .collect();
    codes.dedup();
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(
        results.iter().filter(|(status, _)| *status == 201).count(),
        1
    );
    assert_eq!(t.event_names().await, ["referral.created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_emit_one_reward_claimed() {
    let t = TestApp::new().await;
    let code = t.create_referral("user_1").await;
    t.milestone(&code, "completed", Some("friend")).await;
    let url = format!("{}/v1/api/referral/claim-reward", t.serve().await);
    for (status, body) in race(url, &t.secret_key, json!({"referral_code": code}), 20).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["reward_claimed"], true);
    }
    let names = t.event_names().await;
    assert_eq!(
        names.iter().filter(|e| *e == "reward.claimed").count(),
        1,
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_joins_with_one_code_each_get_their_own_referral() {
    let t = TestApp::new().await;
    let ann = t
        .secret(
            "POST",
            "/v1/participants",
            Some(json!({"email": "ann@example.com"})),
        )
        .await
        .body;
    let code = ann["referral_code"].as_str().unwrap();
    let url = format!("{}/v1/participants", t.serve().await);
    let joins = race_each(
        url,
        &t.secret_key,
        20,
        |n| json!({"email": format!("friend{n}@example.com"), "referral_code": code}),
    )
    .await;
    let mut referrals = std::collections::BTreeSet::new();
    for (status, body) in joins {
        assert_eq!(status, 201, "{body}");
        let via = body["referred_via"].as_str().unwrap().to_string();
        let referral = t
            .secret("GET", &format!("/v1/api/referral/{via}"), None)
            .await
            .body;
        assert_eq!(referral["referred_user_id"], body["id"], "{referral}");
        referrals.insert(via);
    }
    assert_eq!(referrals.len(), 20, "one referral per newcomer");
    let ann_now = t
        .secret(
            "GET",
            &format!("/v1/participants/{}", ann["id"].as_str().unwrap()),
            None,
        )
        .await
        .body;
    assert_eq!(ann_now["referrals_count"], 20);
    let names = t.event_names().await;
    let count = |name: &str| names.iter().filter(|e| *e == name).count();
    assert_eq!(count("referral.milestone_reached"), 20, "{names:?}");
    assert_eq!(count("participant.created"), 21);
}
