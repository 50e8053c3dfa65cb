//! Webhooks through the real `refwire-local --allow-loopback-http` process on the system clock:
//! Tolinku's documented Node verification code and the Standard Webhooks reference library accept
//! our deliveries, also across a secret rotation; ReferralLoop's documented Express and Flask
//! receivers and its verifier accept our subscriptions' deliveries; and a kill -9 mid-retry loses
//! no job and sends nothing twice after success.

use refwire_core::js_json;
use refwire_tests::local::{LocalApi, LocalProcess};
use refwire_tests::receiver::{Receiver, Reply};
use refwire_tests::script_receiver::{PATIENCE, ScriptReceiver, free_port, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The referral lifecycle through the real process's API.
async fn complete_a_referral(api: &LocalApi) {
    let created = api
        .post("/v1/api/referral/create", json!({"user_id": "user_123"}))
        .await;
    let code = created["referral_code"].as_str().unwrap();
    for milestone in ["signed_up", "completed"] {
        let body =
            json!({"referral_code": code, "milestone": milestone, "referred_user_id": "user_456"});
        api.post("/v1/api/referral/milestone", body).await;
    }
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn tolinkus_node_code_and_the_standard_webhooks_library_verify_our_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalProcess::start(&dir.path().join("refwire.db"), &["--allow-loopback-http"]);
    assert!(
        local
            .output
            .iter()
            .any(|line| line.starts_with("--allow-loopback-http")),
        "the flag is announced"
    );
    let api = LocalApi::of(&local, &local.printed("secret key:").unwrap());

    let (node_port, python_port) = (free_port(), free_port());
    let node_hook = api
        .post("/v1/webhooks", json!({"name": "node", "url": format!("http://127.0.0.1:{node_port}/webhooks/tolinku"), "events": ["referral.*"]}))
        .await;
    let python_hook = api
        .post("/v1/webhooks", json!({"name": "python", "url": format!("http://127.0.0.1:{python_port}/webhooks"), "events": ["referral.*"]}))
        .await;
    let node = ScriptReceiver::start(
        &refwire_tests::node(),
        "tolinku_receiver.mjs",
        node_port,
        &[(
            "TOLINKU_WEBHOOK_SECRET",
            node_hook["signing_secret"].as_str().unwrap(),
        )],
    );
    let python = ScriptReceiver::start(
        &refwire_tests::python(),
        "standard_receiver.py",
        python_port,
        &[(
            "WEBHOOK_SECRET",
            python_hook["signing_secret"].as_str().unwrap(),
        )],
    );

    complete_a_referral(&api).await;
    wait_until("both receivers saw four events", || {
        node.seen().len() >= 4 && python.seen().len() >= 4
    })
    .await;
    for (receiver, hook) in [(&node, &node_hook), (&python, &python_hook)] {
        let seen = receiver.seen();
        assert!(seen.iter().all(|line| line["verified"] == true), "{seen:?}");
        let mut events: Vec<_> = seen
            .iter()
            .map(|line| line["event"].as_str().unwrap().to_string())
            .collect();
        events.sort();
        assert_eq!(
            events,
            [
                "referral.completed",
                "referral.created",
                "referral.milestone_reached",
                "referral.milestone_reached"
            ]
        );
        let log = api
            .get(&format!(
                "/v1/webhooks/{}/deliveries",
                hook["id"].as_str().unwrap()
            ))
            .await;
        assert!(
            log["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["state"] == "succeeded"),
            "{log}"
        );
    }
}

#[tokio::test]
async fn a_receiver_holding_the_old_secret_verifies_until_the_rotation_grace_period_ends() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalProcess::start(&dir.path().join("refwire.db"), &["--allow-loopback-http"]);
    let api = LocalApi::of(&local, &local.printed("secret key:").unwrap());
    let port = free_port();
    let hook = api
        .post("/v1/webhooks", json!({"name": "node", "url": format!("http://127.0.0.1:{port}/webhooks/tolinku"), "events": ["referral.created"]}))
        .await;
    let old_secret = hook["signing_secret"].as_str().unwrap();
    let node = ScriptReceiver::start(
        &refwire_tests::node(),
        "tolinku_receiver.mjs",
        port,
        &[("TOLINKU_WEBHOOK_SECRET", old_secret)],
    );
    let grace = Duration::from_secs(6);
    let rotate = format!(
        "/v1/webhooks/{}/rotate-secret",
        hook["id"].as_str().unwrap()
    );
    let rotated = api
        .post(&rotate, json!({"grace_seconds": grace.as_secs()}))
        .await;
    let rotated_at = Instant::now();
    assert_ne!(rotated["signing_secret"].as_str(), Some(old_secret));

    api.post("/v1/api/referral/create", json!({"user_id": "user_1"}))
        .await;
    wait_until("the delivery during the grace period arrived", || {
        node.seen().len() == 1
    })
    .await;
    assert!(
        rotated_at.elapsed() < grace,
        "the first delivery came too late to be inside the grace period"
    );
    assert_eq!(node.seen()[0]["verified"], true, "{:?}", node.seen());

    tokio::time::sleep(grace.saturating_sub(rotated_at.elapsed()) + Duration::from_secs(1)).await;
    api.post("/v1/api/referral/create", json!({"user_id": "user_2"}))
        .await;
    wait_until("the delivery after the grace period arrived", || {
        node.seen().len() == 2
    })
    .await;
    assert_eq!(
        node.seen()[1]["verified"],
        false,
        "after the grace period the header is signed with the new secret only"
    );
}

/// Custom-event data with numbers and keys JavaScript rewrites: doubles beyond their digits, `5.0`,
/// `1e21`, keys that are array indices, nested.
const AWKWARD_DATA: [&str; 3] = [
    r#"{"big": 99999999999999999999999999999, "five": 5.0, "huge": 1e21, "tiny": 1.5e-7, "minus_zero": -0.0}"#,
    r#"{"nested": {"10": {"2": "b", "1": "a"}, "a": [1.0, 2.50, {"0": 0}]}, "text": "é😀\u2028\"</script>"}"#,
    r#"{"max": 1.7976931348623157e308, "min": 5e-324, "int": 9007199254740993, "exp": 1E+2, "3": 3}"#,
];

#[tokio::test]
async fn referral_loops_documented_receivers_run_unchanged_and_verify_our_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalProcess::start(&dir.path().join("refwire.db"), &["--allow-loopback-http"]);
    let api = LocalApi::of(&local, &local.printed("secret key:").unwrap());
    let settings = json!({"reward_type": "credit", "reward_value": 5.0});
    let (status, body) = api
        .send(
            reqwest::Method::PUT,
            "/v1/api/referral/settings",
            Some(settings),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (express_port, flask_port) = (free_port(), free_port());
    let mut subscriptions = Vec::new();
    let mut express_secrets = serde_json::Map::new();
    for port in [express_port, flask_port] {
        for event_type in ["link.clicked", "referral.completed"] {
            let subscribed = api
                .post(
                    "/api/v1/webhooks/subscribe",
                    json!({"event_type": event_type, "target_url": format!("http://127.0.0.1:{port}/webhooks/referralloop")}),
                )
                .await;
            let subscription = subscribed["subscription"].clone();
            if port == express_port {
                express_secrets.insert(event_type.into(), subscription["signing_secret"].clone());
            }
            subscriptions.push(subscription);
        }
    }
    let express = ScriptReceiver::start(
        &refwire_tests::node(),
        "referralloop_express_receiver.js",
        express_port,
        &[(
            "WEBHOOK_SECRETS",
            &Value::Object(express_secrets).to_string(),
        )],
    );
    let flask = ScriptReceiver::start(
        &refwire_tests::python(),
        "referralloop_flask_receiver.py",
        flask_port,
        &[],
    );

    for data in AWKWARD_DATA {
        let data: Value = serde_json::from_str(data).unwrap();
        api.post("/v1/events", json!({"event": "link.clicked", "data": data}))
            .await;
    }
    complete_a_referral(&api).await;
    wait_until("both receivers saw every event", || {
        express.seen().len() >= 4 && flask.seen().len() >= 4
    })
    .await;

    // What JavaScript (or Python) parsed, compared after both sides are written the JavaScript way.
    let as_javascript_writes =
        |text: &str| js_json::stringify(&serde_json::from_str(text).unwrap());
    let mut published: Vec<String> = AWKWARD_DATA
        .iter()
        .map(|data| as_javascript_writes(data))
        .collect();
    published.sort();
    for (receiver, verifies) in [(&express, true), (&flask, false)] {
        let seen = receiver.seen();
        assert_eq!(seen.len(), 4, "{seen:?}");
        for line in &seen {
            assert_eq!(line["status"], 200, "{line}");
            assert_eq!(line["waitlist_id"], Value::Null, "{line}");
            assert!(
                line["timestamp"]
                    .as_str()
                    .is_some_and(|at| at.ends_with('Z')),
                "{line}"
            );
            if verifies {
                assert_eq!(line["verified"], true, "{line}");
            }
        }
        let mut clicked: Vec<String> = seen
            .iter()
            .filter(|line| line["event_type"] == "link.clicked")
            .map(|line| js_json::stringify(&line["data"]))
            .collect();
        clicked.sort();
        assert_eq!(clicked, published);
        let completed = seen
            .iter()
            .find(|line| line["event_type"] == "referral.completed")
            .expect("referral.completed arrived");
        assert_eq!(js_json::stringify(&completed["data"]["reward_value"]), "5");
        assert_eq!(completed["data"]["referred_user_id"], "user_456");
    }
    for subscription in &subscriptions {
        let id = subscription["id"].as_str().unwrap();
        let log = api.get(&format!("/v1/webhooks/{id}/deliveries")).await;
        let deliveries = log["deliveries"].as_array().unwrap();
        assert!(
            !deliveries.is_empty() && deliveries.iter().all(|d| d["state"] == "succeeded"),
            "{log}"
        );
    }
}

#[tokio::test]
async fn a_kill_9_mid_retry_loses_no_job_and_never_resends_after_success() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("refwire.db");
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500)]);

    let first = LocalProcess::start(&data_file, &["--allow-loopback-http"]);
    let api = LocalApi::of(&first, &first.printed("secret key:").unwrap());
    let hook = api
        .post("/v1/webhooks", json!({"name": "flaky", "url": receiver.url, "events": ["referral.created"], "retry_schedule": [3]}))
        .await;
    let deliveries = format!("/v1/webhooks/{}/deliveries", hook["id"].as_str().unwrap());
    api.post("/v1/api/referral/create", json!({"user_id": "user_1"}))
        .await;
    wait_until("the first attempt failed", || {
        receiver.received().len() == 1
    })
    .await;
    let started = Instant::now();
    loop {
        let log = api.get(&deliveries).await;
        if log["deliveries"][0]["state"] == "retrying" {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();

    // The retry waits in the data file and goes out after the restart.
    let second = LocalProcess::start(&data_file, &["--allow-loopback-http"]);
    let api = LocalApi::of(&second, &api.key);
    wait_until("the retry arrived", || receiver.received().len() == 2).await;
    let started = Instant::now();
    while api.get(&deliveries).await["deliveries"][0]["state"] != "succeeded" {
        assert!(started.elapsed() < PATIENCE, "the retry was not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill();

    // Nothing is sent again after success, across another crash and restart.
    let third = LocalProcess::start(&data_file, &["--allow-loopback-http"]);
    let api = LocalApi::of(&third, &api.key);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(receiver.attempts(), ["1", "2"]);
    let log = api.get(&deliveries).await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(log["deliveries"][0]["attempts"], 2);
    third.kill();
}
