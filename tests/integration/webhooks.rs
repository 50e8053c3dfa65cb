//! Webhooks end to end in one process: API -> outbox -> fan-out -> job queue -> delivery -> a real
//! HTTP receiver on 127.0.0.1, under a manual clock so the real retry schedule runs without waiting.

use base64::Engine;
use chrono::Duration;
use refwire_core::deliveries::signing::{legacy_hex_signature, verify_standard};
use refwire_core::events::OutboxEvent;
use refwire_core::time;
use refwire_tests::TestApp;
use refwire_tests::receiver::{Receiver, Reply, refusing_url};
use refwire_tests::tls::TlsProxy;
use serde_json::{Value, json};

/// Creates a referral and drives it to completion: referral.created, two milestone events, completed.
async fn complete_a_referral(t: &TestApp) -> String {
    let code = t.create_referral("user_123").await;
    assert_eq!(
        t.milestone(&code, "signed_up", Some("user_456"))
            .await
            .status,
        200
    );
    assert_eq!(t.milestone(&code, "completed", None).await.status, 200);
    code
}

/// An app whose one webhook (`fields` over the defaults) points at a fresh local receiver.
async fn app_with_receiver(fields: Value) -> (TestApp, Receiver, String) {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let (webhook_id, _) = t.create_webhook(&receiver.url, fields).await;
    (t, receiver, webhook_id)
}

fn attempt_times(delivery: &Value) -> Vec<String> {
    delivery["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["at"].as_str().unwrap().to_string())
        .collect()
}

fn at(seconds_after_start: i64) -> String {
    time::format(&(refwire_tests::start_time() + Duration::seconds(seconds_after_start)))
}

#[tokio::test]
async fn lifecycle_events_arrive_signed_in_the_documented_shape() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let (webhook_id, secret) = t
        .create_webhook(&receiver.url, json!({"events": ["referral.*"]}))
        .await;
    let code = complete_a_referral(&t).await;
    t.pump().await;

    // Jobs of one batch are sent concurrently (as from one SQS batch), so arrival order is free.
    let mut events = receiver.events();
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
    for request in receiver.received() {
        let body = std::str::from_utf8(&request.body).unwrap();
        let envelope = request.json();
        // Compact JSON with the contract's field order.
        assert_eq!(body, serde_json::to_string(&envelope).unwrap());
        assert!(body.starts_with(r#"{"id":"evt_"#), "{body}");
        let keys: Vec<_> = envelope.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["id", "event", "timestamp", "data"]);
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("x-webhook-event"), envelope["event"]);
        assert_eq!(request.header("x-webhook-id"), envelope["id"]);
        assert_eq!(request.header("webhook-id"), envelope["id"]);
        assert_eq!(request.header("x-webhook-attempt"), "1");
        assert!(request.header("user-agent").starts_with("Refwire/"));
        // Tolinku's receivers: hex HMAC-SHA256 keyed by the full secret string over the raw body.
        assert_eq!(
            request.header("x-webhook-signature"),
            legacy_hex_signature(&secret, &request.body)
        );
        let timestamp: i64 = request.header("webhook-timestamp").parse().unwrap();
        assert!(verify_standard(
            &secret,
            request.header("webhook-id"),
            timestamp,
            &request.body,
            request.header("webhook-signature")
        ));
    }
    let of_type = |name: &str| {
        receiver
            .received()
            .into_iter()
            .find(|request| request.header("x-webhook-event") == name)
            .unwrap()
            .json()
    };
    let completed = of_type("referral.completed");
    assert_eq!(completed["timestamp"], "2026-04-08T14:30:00.000Z");
    assert_eq!(completed["data"]["referral_code"], code);
    assert_eq!(completed["data"]["referrer_id"], "user_123");
    assert_eq!(completed["data"]["referred_user_id"], "user_456");
    assert_eq!(completed["data"]["milestone"], "completed");
    let created = of_type("referral.created");
    assert!(
        created["data"]["referral_url"]
            .as_str()
            .unwrap()
            .contains(&code)
    );

    let log = t.deliveries(&webhook_id).await;
    assert_eq!(log.len(), 4);
    assert!(
        log.iter()
            .all(|delivery| delivery["state"] == "succeeded" && delivery["last_status"] == 200)
    );
    // Newest first; these four were made at one instant (the manual clock), and fan-out handles
    // the events of a pass concurrently, so among them the order is free, as on DynamoDB.
    let created: Vec<&str> = log
        .iter()
        .map(|delivery| delivery["created_at"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|pair| pair[0] >= pair[1]),
        "{created:?}"
    );
}

#[tokio::test]
async fn event_patterns_and_inactive_webhooks_decide_who_receives() {
    let t = TestApp::with_loopback_receivers().await;
    let (exact, pattern, everything, inactive) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    t.create_webhook(&exact.url, json!({"events": ["referral.completed"]}))
        .await;
    t.create_webhook(&pattern.url, json!({"events": ["reward.*"]}))
        .await;
    t.create_webhook(&everything.url, json!({"events": ["*"]}))
        .await;
    t.create_webhook(&inactive.url, json!({"events": ["*"], "active": false}))
        .await;
    let code = complete_a_referral(&t).await;
    let claim = t
        .secret(
            "POST",
            "/v1/api/referral/claim-reward",
            Some(json!({"referral_code": code})),
        )
        .await;
    assert_eq!(claim.status, 200);
    t.pump().await;

    assert_eq!(exact.events(), ["referral.completed"]);
    assert_eq!(pattern.events(), ["reward.claimed"]);
    assert_eq!(everything.events().len(), 5);
    assert!(inactive.received().is_empty());
}

#[tokio::test]
async fn default_schedule_is_now_then_1m_5m_30m_then_failed() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"]})).await;
    receiver.always(Reply::status(500).with_body("boom"));
    t.create_referral("user_1").await;
    t.pump().await;
    assert_eq!(receiver.received().len(), 1);

    // Not a second early.
    t.advance_and_pump(59).await;
    assert_eq!(receiver.received().len(), 1);
    t.advance_and_pump(1).await;
    assert_eq!(receiver.received().len(), 2);
    let retrying = &t.deliveries(&webhook_id).await[0];
    assert_eq!(retrying["state"], "retrying");
    assert_eq!(retrying["next_attempt_at"], at(360));
    t.advance_and_pump(299).await;
    assert_eq!(receiver.received().len(), 2);
    t.advance_and_pump(1).await;
    t.advance_and_pump(1800).await;
    assert_eq!(receiver.received().len(), 4);
    t.advance_and_pump(86_400).await;
    assert_eq!(
        receiver.received().len(),
        4,
        "four attempts, then failed for good"
    );

    let summary = &t.deliveries(&webhook_id).await[0];
    assert_eq!(summary["state"], "failed");
    assert_eq!(summary["attempts"], 4);
    assert_eq!(summary["last_status"], 500);
    assert_eq!(summary["next_attempt_at"], Value::Null);
    let delivery = t.delivery(summary["id"].as_str().unwrap()).await;
    assert_eq!(attempt_times(&delivery), [at(0), at(60), at(360), at(2160)]);
    assert_eq!(receiver.attempts(), ["1", "2", "3", "4"]);
    let ids: Vec<_> = receiver
        .received()
        .iter()
        .map(|r| r.header("x-webhook-id").to_string())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the event id is stable across retries"
    );
    let first = &delivery["attempt_log"][0];
    assert_eq!(first["status"], 500);
    assert_eq!(first["response_excerpt"], "boom");
    assert_eq!(
        first["error"],
        "receiver answered 500 Internal Server Error"
    );
}

#[tokio::test]
async fn a_custom_schedule_sets_the_attempt_times() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"], "retry_schedule": [10, 20]}))
            .await;
    receiver.always(Reply::status(503));
    t.create_referral("user_1").await;
    t.pump().await;
    for _ in 0..40 {
        t.advance_and_pump(1).await;
    }
    let summary = &t.deliveries(&webhook_id).await[0];
    assert_eq!(summary["state"], "failed");
    let delivery = t.delivery(summary["id"].as_str().unwrap()).await;
    assert_eq!(attempt_times(&delivery), [at(0), at(10), at(30)]);
}

#[tokio::test]
async fn retry_after_on_429_postpones_the_next_attempt() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"]})).await;
    receiver.script([Reply::status(429).with_header("retry-after", "120")]);
    t.create_referral("user_1").await;
    t.pump().await;
    assert_eq!(
        t.deliveries(&webhook_id).await[0]["next_attempt_at"],
        at(120)
    );
    t.advance_and_pump(119).await;
    assert_eq!(receiver.received().len(), 1);
    t.advance_and_pump(1).await;
    assert_eq!(t.deliveries(&webhook_id).await[0]["state"], "succeeded");
}

#[tokio::test]
async fn an_attempt_times_out_at_the_configured_seconds() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"], "timeout_seconds": 1})).await;
    receiver.script([Reply::status(200).after(std::time::Duration::from_secs(4))]);
    t.create_referral("user_1").await;
    t.pump().await;
    let summary = &t.deliveries(&webhook_id).await[0];
    assert_eq!(summary["state"], "retrying", "a slow 200 is a failure");
    assert_eq!(summary["last_error"], "timed out after 1 s");
    assert_eq!(summary["last_status"], Value::Null);
    let waited = summary["response_ms"].as_u64().unwrap();
    assert!(
        (1000..3500).contains(&waited),
        "gave up after {waited} ms, not at the 1 s timeout"
    );
}

#[tokio::test]
async fn gone_410_stops_retries_disables_the_webhook_and_emits_webhook_disabled() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let watcher = Receiver::start().await;
    receiver.script([Reply::status(410)]);
    let (webhook_id, _) = t
        .create_webhook(&receiver.url, json!({"events": ["referral.*"]}))
        .await;
    t.create_webhook(&watcher.url, json!({"events": ["webhook.disabled"]}))
        .await;
    t.create_referral("user_1").await;
    t.pump().await;
    t.advance_and_pump(3600).await;

    assert_eq!(receiver.received().len(), 1);
    let summary = &t.deliveries(&webhook_id).await[0];
    assert_eq!(
        (summary["state"].as_str(), summary["last_status"].as_u64()),
        (Some("failed"), Some(410))
    );
    let webhook = t
        .secret("GET", &format!("/v1/webhooks/{webhook_id}"), None)
        .await
        .body;
    assert_eq!(webhook["active"], false);
    assert_eq!(webhook["disabled_reason"], "the receiver answered 410 Gone");
    assert_eq!(watcher.events(), ["webhook.disabled"]);
    assert_eq!(
        watcher.received()[0].json()["data"]["webhook_id"],
        webhook_id
    );

    // Disabled webhooks receive nothing more.
    t.create_referral("user_2").await;
    t.pump().await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn redirects_are_failed_attempts_and_are_not_followed() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    receiver.script([Reply::status(302).with_header("location", elsewhere.url.clone())]);
    let (webhook_id, _) = t
        .create_webhook(&receiver.url, json!({"events": ["referral.created"]}))
        .await;
    t.create_referral("user_1").await;
    t.pump().await;
    let summary = &t.deliveries(&webhook_id).await[0];
    assert_eq!(summary["state"], "retrying");
    assert_eq!(summary["last_status"], 302);
    assert!(
        summary["last_error"]
            .as_str()
            .unwrap()
            .starts_with("redirects are not followed")
    );
    assert!(elsewhere.received().is_empty());
}

/// Subscribes a webhook at `url` to `referral.created`, creates a referral and runs the workers:
/// the webhook's id and its delivery, whose first attempt failed and will be retried.
async fn first_attempt_failed(t: &TestApp, url: &str) -> (String, serde_json::Value) {
    let (webhook_id, _) = t
        .create_webhook(url, json!({"events": ["referral.created"]}))
        .await;
    t.create_referral("user_1").await;
    t.pump().await;
    let summary = t.deliveries(&webhook_id).await[0].clone();
    assert_eq!(summary["state"], "retrying", "{summary}");
    (webhook_id, summary)
}

/// The sender speaks TLS (rustls on ring) and checks the receiver's certificate against its roots
/// (webpki-roots): one from an unknown CA fails the attempt before any request is sent.
#[tokio::test]
async fn an_https_receiver_with_an_untrusted_certificate_gets_no_request() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let proxy = TlsProxy::start(&receiver.url).await;
    let (_, summary) = first_attempt_failed(&t, &format!("{}/hooks", proxy.url)).await;
    let error = summary["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("connection failed") && error.contains("UnknownIssuer"),
        "{summary}"
    );
    assert_eq!(proxy.handshakes(), 0);
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn refused_connections_retry_and_recover_when_the_receiver_comes_back() {
    let t = TestApp::with_loopback_receivers().await;
    let (webhook_id, summary) = first_attempt_failed(&t, &refusing_url().await).await;
    assert!(
        summary["last_error"]
            .as_str()
            .unwrap()
            .starts_with("connection failed"),
        "{summary}"
    );

    // The receiver comes back at a new address before the next attempt.
    let receiver = Receiver::start().await;
    let moved = t
        .secret(
            "PATCH",
            &format!("/v1/webhooks/{webhook_id}"),
            Some(json!({"url": receiver.url})),
        )
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    t.advance_and_pump(60).await;
    assert_eq!(receiver.events(), ["referral.created"]);
    assert_eq!(receiver.received()[0].header("x-webhook-attempt"), "2");
    assert_eq!(t.deliveries(&webhook_id).await[0]["state"], "succeeded");
}

#[tokio::test]
async fn manual_retry_and_recover_resend_failed_deliveries_once_each() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"], "retry_schedule": [1]})).await;
    receiver.always(Reply::status(500));
    t.create_referral("user_1").await;
    t.create_referral("user_2").await;
    t.pump().await;
    t.advance_and_pump(1).await;
    let log = t.deliveries(&webhook_id).await;
    assert!(log.iter().all(|delivery| delivery["state"] == "failed"));
    assert_eq!(receiver.received().len(), 4);

    receiver.always(Reply::status(200));
    let single = log[0]["id"].as_str().unwrap();
    let retried = t
        .secret("POST", &format!("/v1/deliveries/{single}/retry"), None)
        .await;
    assert_eq!(retried.status, 202, "{retried:?}");
    t.pump().await;
    assert_eq!(receiver.received().len(), 5);
    assert_eq!(t.delivery(single).await["state"], "succeeded");
    let again = t
        .secret("POST", &format!("/v1/deliveries/{single}/retry"), None)
        .await;
    assert_eq!(
        again.status, 202,
        "a succeeded delivery can be resent on request"
    );
    t.pump().await;
    assert_eq!(receiver.received().len(), 6);

    let since = at(0);
    let recovered = t
        .secret(
            "POST",
            &format!("/v1/webhooks/{webhook_id}/recover?since={since}"),
            None,
        )
        .await;
    assert_eq!(recovered.status, 202, "{recovered:?}");
    assert_eq!(recovered.body["resent"], 1, "only the one still failed");
    t.pump().await;
    assert_eq!(receiver.received().len(), 7);
    assert!(
        t.deliveries(&webhook_id)
            .await
            .iter()
            .all(|delivery| delivery["state"] == "succeeded")
    );
    let resent = t.delivery(log[1]["id"].as_str().unwrap()).await;
    assert_eq!(
        resent["attempts"], 3,
        "two failed attempts and the recovered one"
    );
}

#[tokio::test]
async fn redelivered_events_and_jobs_never_send_twice_after_success() {
    use refwire_core::deliveries::DeliveryJob;
    use refwire_core::ports::JobQueue;
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"]})).await;
    t.create_referral("user_1").await;
    t.pump().await;
    assert_eq!(receiver.received().len(), 1);

    // The stream hands the same event to fan-out again, and the queue redelivers the first job.
    t.store.advance_fanout_cursor(0).await.unwrap();
    let delivery_id = t.deliveries(&webhook_id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let queue = refwire_embedded::EmbeddedQueue::new(t.store.as_ref().clone(), t.clock.clone());
    queue
        .enqueue(
            &DeliveryJob {
                delivery_id: delivery_id.into(),
                attempt: 1,
                webhook_id: webhook_id.clone().into(),
                waits_until: None,
            },
            0,
        )
        .await
        .unwrap();
    t.pump().await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(t.deliveries(&webhook_id).await.len(), 1);
}

/// An app whose receiver fails attempt 1 slowly (so that copies of its job overlap) and then
/// succeeds, one retry a minute later, with the first attempt's delivery made and its job queued.
async fn a_failing_first_job() -> (TestApp, Receiver, refwire_core::deliveries::DeliveryJob) {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"], "retry_schedule": [60]})).await;
    receiver.script([
        Reply::status(500).after(std::time::Duration::from_millis(500)),
        Reply::status(200),
    ]);
    t.create_referral("user_1").await;
    t.workers.fan_out_pass().await.unwrap();
    let delivery_id = t.deliveries(&webhook_id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = refwire_core::deliveries::DeliveryJob {
        delivery_id: delivery_id.into(),
        attempt: 1,
        webhook_id: webhook_id.into(),
        waits_until: None,
    };
    (t, receiver, job)
}

#[tokio::test]
async fn two_copies_of_a_job_at_once_send_the_attempt_once_and_queue_one_retry() {
    use refwire_core::deliveries::JobOutcome;
    use refwire_core::deliveries::Verdict;
    let (t, receiver, job) = a_failing_first_job().await;
    let (first, second) = tokio::join!(t.dispatcher.deliver(&job), t.dispatcher.deliver(&job));
    let mut outcomes = [first.unwrap(), second.unwrap()];
    outcomes.sort_by_key(|outcome| format!("{outcome:?}"));
    let sent = JobOutcome::Sent(Verdict::RetryIn { seconds: 60 });
    assert!(
        outcomes == [JobOutcome::Dropped, sent] || outcomes == [JobOutcome::InFlight, sent],
        "{outcomes:?}"
    );
    assert_eq!(receiver.received().len(), 1);
    let queue = refwire_embedded::EmbeddedQueue::new(t.store.as_ref().clone(), t.clock.clone());
    t.clock.advance(Duration::seconds(60));
    let due: Vec<u32> = queue
        .claim_due(10, std::time::Duration::ZERO, None)
        .await
        .unwrap()
        .into_iter()
        .map(|claimed| claimed.job.attempt)
        .collect();
    // The write that recorded attempt 1 took its job out of the queue (though the job was handed
    // to the dispatcher directly, not claimed); the one retry is due.
    assert_eq!(due, [2]);
    t.pump().await;
    // Exactly one request per attempt: the first failed, the one retry succeeded.
    assert_eq!(receiver.attempts(), ["1", "2"]);
}

#[tokio::test]
async fn a_worker_and_a_stray_copy_of_its_job_send_the_attempt_once() {
    let (t, receiver, job) = a_failing_first_job().await;
    // The worker looks for due jobs while a stray copy of the job runs: it finds the delivery
    // before the stray claims it (and then leaves it to the stray) or not at all.
    let (pass, stray) = tokio::join!(t.workers.delivery_pass(), t.dispatcher.deliver(&job));
    assert!(pass.unwrap() <= 1);
    stray.unwrap();
    assert_eq!(receiver.received().len(), 1);
    t.advance_and_pump(60).await;
    // Exactly one request per attempt: the first failed, the one retry succeeded.
    assert_eq!(receiver.attempts(), ["1", "2"]);
}

#[tokio::test]
async fn a_held_job_is_handed_out_once_and_again_only_when_looked_at_again() {
    let (t, _receiver, job) = a_failing_first_job().await;
    let queue = refwire_embedded::EmbeddedQueue::new(t.store.as_ref().clone(), t.clock.clone());
    let lease = std::time::Duration::from_secs(90);
    let claimed = queue.claim_due(10, lease, None).await.unwrap();
    assert_eq!(
        claimed.iter().map(|held| &held.job).collect::<Vec<_>>(),
        [&job]
    );
    assert!(queue.claim_due(10, lease, None).await.unwrap().is_empty());

    // Another copy holds the attempt, say: the worker puts the job off for ten seconds.
    queue.look_again_in(&claimed[0], std::time::Duration::from_secs(10));
    t.clock.advance(Duration::seconds(9));
    assert!(queue.claim_due(10, lease, None).await.unwrap().is_empty());
    assert_eq!(
        queue.next_due_in().await.unwrap(),
        Some(std::time::Duration::from_secs(1))
    );
    t.clock.advance(Duration::seconds(1));
    let again = queue.claim_due(10, lease, None).await.unwrap();
    assert_eq!(again.len(), 1);

    // Let go of without an attempt recorded, it is due at once; a stale hold lets go of nothing.
    queue.complete(&claimed[0]);
    assert!(queue.claim_due(10, lease, None).await.unwrap().is_empty());
    queue.complete(&again[0]);
    assert_eq!(
        queue.next_due_in().await.unwrap(),
        Some(std::time::Duration::ZERO)
    );
    assert_eq!(queue.claim_due(10, lease, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_webhook_failing_for_five_days_is_disabled() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"]})).await;
    receiver.always(Reply::status(500));
    for day in 0..5 {
        t.create_referral(&format!("user_{day}")).await;
        t.pump().await;
        let webhook = t
            .secret("GET", &format!("/v1/webhooks/{webhook_id}"), None)
            .await
            .body;
        assert_eq!(webhook["active"], true, "still active on day {day}");
        assert_eq!(webhook["failing_since"], at(0));
        t.advance_and_pump(86_400).await;
    }
    let webhook = t
        .secret("GET", &format!("/v1/webhooks/{webhook_id}"), None)
        .await
        .body;
    assert_eq!(webhook["active"], false);
    assert_eq!(
        webhook["disabled_reason"],
        "every delivery failed for 5 days"
    );
    assert!(
        t.event_names()
            .await
            .contains(&"webhook.disabled".to_string())
    );

    // Re-enabling clears the failure streak.
    let enabled = t
        .secret(
            "PATCH",
            &format!("/v1/webhooks/{webhook_id}"),
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(
        (
            enabled.body["active"].as_bool(),
            &enabled.body["failing_since"]
        ),
        (Some(true), &Value::Null)
    );
}

#[tokio::test]
async fn a_success_resets_the_failure_streak() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"]})).await;
    receiver.script([Reply::status(500)]);
    t.create_referral("user_1").await;
    t.pump().await;
    let failing = t
        .secret("GET", &format!("/v1/webhooks/{webhook_id}"), None)
        .await
        .body;
    assert_eq!(failing["failing_since"], at(0));
    t.advance_and_pump(60).await;
    let healthy = t
        .secret("GET", &format!("/v1/webhooks/{webhook_id}"), None)
        .await
        .body;
    assert_eq!(healthy["failing_since"], Value::Null);
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_during_the_grace_period() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let (webhook_id, old_secret) = t.create_webhook(&receiver.url, json!({})).await;
    let rotated = t
        .secret(
            "POST",
            &format!("/v1/webhooks/{webhook_id}/rotate-secret"),
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new_secret = rotated.body["signing_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, old_secret);
    assert_eq!(rotated.body["previous_secret_expires_at"], at(3600));

    let test = t
        .secret("POST", &format!("/v1/webhooks/{webhook_id}/test"), None)
        .await;
    assert_eq!(test.status, 202, "{test:?}");
    t.pump().await;
    let during = &receiver.received()[0];
    let timestamp: i64 = during.header("webhook-timestamp").parse().unwrap();
    let signatures = during.header("webhook-signature");
    assert_eq!(signatures.split(' ').count(), 2);
    for secret in [&old_secret, &new_secret] {
        assert!(verify_standard(
            secret,
            during.header("webhook-id"),
            timestamp,
            &during.body,
            signatures
        ));
    }
    // The single-signature header stays with the secret receivers hold until the grace ends.
    assert_eq!(
        during.header("x-webhook-signature"),
        legacy_hex_signature(&old_secret, &during.body)
    );
    assert_eq!(during.json()["event"], "test");

    t.clock.advance(Duration::seconds(3601));
    t.secret("POST", &format!("/v1/webhooks/{webhook_id}/test"), None)
        .await;
    t.pump().await;
    let after = &receiver.received()[1];
    assert_eq!(after.header("webhook-signature").split(' ').count(), 1);
    assert_eq!(
        after.header("x-webhook-signature"),
        legacy_hex_signature(&new_secret, &after.body)
    );
    let timestamp: i64 = after.header("webhook-timestamp").parse().unwrap();
    assert!(!verify_standard(
        &old_secret,
        after.header("webhook-id"),
        timestamp,
        &after.body,
        after.header("webhook-signature")
    ));
}

#[tokio::test]
async fn the_test_event_has_tolinkus_documented_shape() {
    let (t, receiver, webhook_id) = app_with_receiver(json!({})).await;
    let test = t
        .secret("POST", &format!("/v1/webhooks/{webhook_id}/test"), None)
        .await;
    assert_eq!(test.status, 202, "{test:?}");
    t.pump().await;
    let payload = receiver.received()[0].json();
    let keys: Vec<_> = payload.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["id", "event", "timestamp", "data"]);
    assert_eq!(payload["id"], test.body["event_id"]);
    assert_eq!(payload["event"], "test");
    assert_eq!(payload["timestamp"], at(0));
    assert_eq!(
        payload["data"].to_string(),
        json!({
            "message": "This is a test webhook from Refwire.",
            "webhook_id": webhook_id,
            "appspace_id": t.program_id,
            "program_id": t.program_id,
        })
        .to_string()
    );
}

#[tokio::test]
async fn numbers_arrive_with_the_digits_the_caller_gave() {
    let (t, receiver, _) =
        app_with_receiver(json!({"events": ["link.clicked", "referral.completed"]})).await;
    let settings = t
        .call(
            "PUT",
            "/v1/api/referral/settings",
            Some(&t.secret_key),
            Some(r#"{"reward_type": "credit", "reward_value": 5}"#),
        )
        .await;
    assert_eq!(settings.status, 200, "{settings:?}");
    let data = r#"{"n":99999999999999999999999999999,"x":5,"y":5.0,"z":0.1,"e":1.50e-7}"#;
    let published = t
        .call(
            "POST",
            "/v1/events",
            Some(&t.secret_key),
            Some(&format!(r#"{{"event": "link.clicked", "data": {data}}}"#)),
        )
        .await;
    assert_eq!(published.status, 202, "{published:?}");
    complete_a_referral(&t).await;
    t.pump().await;

    receiver.assert_numbers_kept(data);
}

#[tokio::test]
async fn custom_events_reach_subscribers_once_per_idempotency_key() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    t.create_webhook(&receiver.url, json!({"events": ["link.clicked"]}))
        .await;
    let body = json!({"event": "link.clicked", "data": {"prefix": "promo", "token": "summer-sale"}, "idempotency_key": "click-1"});
    let first = t.secret("POST", "/v1/events", Some(body.clone())).await;
    let second = t.secret("POST", "/v1/events", Some(body)).await;
    assert_eq!(first.status, 202, "{first:?}");
    assert_eq!(first.body["id"], second.body["id"]);
    t.pump().await;
    assert_eq!(receiver.events(), ["link.clicked"]);
    assert_eq!(
        receiver.received()[0].json()["data"]["token"],
        "summer-sale"
    );

    for (body, field) in [
        (json!({"event": "referral.completed", "data": {}}), "event"),
        (json!({"event": "Not An Event", "data": {}}), "event"),
        (json!({"event": "link.clicked", "data": [1]}), "data"),
    ] {
        let refused = t.secret("POST", "/v1/events", Some(body)).await;
        assert_eq!(
            (refused.status, refused.body["error"]["field"].as_str()),
            (400, Some(field))
        );
    }
}

/// Subscribes `target_url` the ReferralLoop way; returns the subscription as the response shows it.
async fn subscribe(t: &TestApp, body: Value) -> Value {
    let subscribed = t
        .secret("POST", "/api/v1/webhooks/subscribe", Some(body))
        .await;
    assert_eq!(subscribed.status, 201, "{subscribed:?}");
    subscribed.body["subscription"].clone()
}

#[tokio::test]
async fn referral_loop_subscriptions_get_their_envelope_and_can_unsubscribe() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let subscription = subscribe(
        &t,
        json!({"event_type": "referral.created", "target_url": receiver.url}),
    )
    .await;
    let keys: Vec<_> = subscription.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "id",
            "event_type",
            "target_url",
            "is_active",
            "created_at",
            "signing_secret"
        ]
    );
    assert_eq!(subscription["event_type"], "referral.created");
    assert_eq!(subscription["target_url"], receiver.url);
    assert_eq!(subscription["is_active"], true);
    let id = subscription["id"].as_str().unwrap();
    assert!(id.starts_with("sub_") && id.len() == 4 + 26, "{id}");
    let secret = subscription["signing_secret"].as_str().unwrap();
    let webhook = t
        .secret("GET", &format!("/v1/webhooks/{id}"), None)
        .await
        .body;
    assert_eq!(webhook["retry_schedule"], json!([60, 300, 900, 3600]));
    assert_eq!(webhook["timeout_seconds"], 5);

    let code = t.create_referral("user_1").await;
    t.pump().await;
    let request = &receiver.received()[0];
    let payload = request.json();
    let keys: Vec<_> = payload.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["event_type", "waitlist_id", "data", "timestamp"]);
    assert_eq!(payload["event_type"], "referral.created");
    assert_eq!(payload["waitlist_id"], Value::Null);
    assert_eq!(payload["data"]["referral_code"], code);
    assert_eq!(payload["timestamp"], at(0));
    assert_eq!(
        request.header("x-webhook-signature"),
        format!("sha256={}", legacy_hex_signature(secret, &request.body))
    );

    let gone = t
        .secret(
            "DELETE",
            &format!("/api/v1/webhooks/unsubscribe/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (gone.status, &gone.body["subscription"]["is_active"]),
        (200, &json!(false))
    );
    let again = t
        .secret(
            "DELETE",
            &format!("/api/v1/webhooks/unsubscribe/{id}"),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn a_subscription_for_one_waitlist_receives_only_that_waitlists_events() {
    use refwire_core::ids::{Ids, RandomIds};
    use refwire_core::ports::EventStore;
    let t = TestApp::with_loopback_receivers().await;
    let (one, every) = (Receiver::start().await, Receiver::start().await);
    subscribe(
        &t,
        json!({"event_type": "signup.created", "target_url": one.url, "waitlist_id": "wl_1"}),
    )
    .await;
    subscribe(
        &t,
        json!({"event_type": "signup.created", "target_url": every.url}),
    )
    .await;
    // No API produces waitlist events yet, so they are written to the outbox as a use case would.
    for (waitlist_id, email) in [
        (Some("wl_1"), "a@example.com"),
        (Some("wl_2"), "b@example.com"),
        (None, "c@example.com"),
    ] {
        let mut event = OutboxEvent::new(
            RandomIds.new_id("evt"),
            &t.program_id,
            "signup.created",
            refwire_tests::start_time(),
            json!({"email": email}),
        );
        event.waitlist_id = waitlist_id.map(Into::into);
        t.store.publish_event(&event, None).await.unwrap();
    }
    t.pump().await;

    let seen = |receiver: &Receiver| {
        let mut seen: Vec<(Value, Value)> = receiver
            .received()
            .iter()
            .map(|request| {
                let payload = request.json();
                (
                    payload["waitlist_id"].clone(),
                    payload["data"]["email"].clone(),
                )
            })
            .collect();
        seen.sort_by_key(|(_, email)| email.to_string());
        seen
    };
    assert_eq!(seen(&one), [(json!("wl_1"), json!("a@example.com"))]);
    assert_eq!(
        seen(&every),
        [
            (json!("wl_1"), json!("a@example.com")),
            (json!("wl_2"), json!("b@example.com")),
            (Value::Null, json!("c@example.com")),
        ]
    );
}

#[tokio::test]
async fn a_waitlist_subscription_gets_no_custom_events_but_its_test_event_names_the_waitlist() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let subscription = subscribe(
        &t,
        json!({"event_type": "link.clicked", "target_url": receiver.url, "waitlist_id": "wl_1"}),
    )
    .await;
    let published = t
        .secret(
            "POST",
            "/v1/events",
            Some(json!({"event": "link.clicked", "data": {}})),
        )
        .await;
    assert_eq!(published.status, 202, "{published:?}");
    t.pump().await;
    assert!(
        receiver.received().is_empty(),
        "a custom event is about no waitlist, so a subscription for one does not get it"
    );

    let id = subscription["id"].as_str().unwrap();
    let test = t
        .secret("POST", &format!("/v1/webhooks/{id}/test"), None)
        .await;
    assert_eq!(test.status, 202, "{test:?}");
    t.pump().await;
    let payload = receiver.received()[0].json();
    assert_eq!(payload["event_type"], "test");
    assert_eq!(payload["waitlist_id"], "wl_1");
}

#[tokio::test]
async fn referral_loop_bodies_are_what_json_stringify_writes_back() {
    let t = TestApp::with_loopback_receivers().await;
    let receiver = Receiver::start().await;
    let subscription = subscribe(
        &t,
        json!({"event_type": "link.clicked", "target_url": receiver.url}),
    )
    .await;
    let secret = subscription["signing_secret"].as_str().unwrap();
    let published = t
        .call(
            "POST",
            "/v1/events",
            Some(&t.secret_key),
            Some(
                r#"{"event": "link.clicked", "data": {"big": 99999999999999999999999999999, "five": 5.0, "huge": 1e21, "keys": {"b": 1, "10": 2, "2": 3}}}"#,
            ),
        )
        .await;
    assert_eq!(published.status, 202, "{published:?}");
    t.pump().await;
    let request = &receiver.received()[0];
    assert_eq!(
        std::str::from_utf8(&request.body).unwrap(),
        r#"{"event_type":"link.clicked","waitlist_id":null,"data":{"big":1e+29,"five":5,"huge":1e+21,"keys":{"2":3,"10":2,"b":1}},"timestamp":"2026-04-08T14:30:00.000Z"}"#
    );
    assert_eq!(
        request.header("x-webhook-signature"),
        format!("sha256={}", legacy_hex_signature(secret, &request.body))
    );
}

#[tokio::test]
async fn form_and_get_formats_sign_the_exact_bytes_sent_with_field_selection() {
    let t = TestApp::with_loopback_receivers().await;
    let (form, get) = (Receiver::start().await, Receiver::start().await);
    let shaping = json!({
        "events": ["referral.created"],
        "field_map": {"referral_code": "code"},
        "hidden_fields": {"campaign": "spring"},
        "headers": {"X-Api-Token": "crm-token"},
    });
    let mut form_fields = shaping.clone();
    form_fields["format"] = json!("form");
    let (_, form_secret) = t.create_webhook(&form.url, form_fields).await;
    let mut get_fields = shaping;
    get_fields["method"] = json!("GET");
    let (_, get_secret) = t.create_webhook(&get.url, get_fields).await;
    let code = t.create_referral("user_1").await;
    t.pump().await;

    let posted = &form.received()[0];
    assert_eq!(
        posted.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(posted.header("x-api-token"), "crm-token");
    let body = std::str::from_utf8(&posted.body).unwrap();
    assert_eq!(
        body,
        format!("code={code}&campaign=spring"),
        "only mapped and hidden fields are sent"
    );
    assert_eq!(
        posted.header("x-webhook-signature"),
        legacy_hex_signature(&form_secret, &posted.body)
    );

    let fetched = &get.received()[0];
    assert_eq!(fetched.method, "GET");
    assert!(fetched.body.is_empty());
    let query = fetched.uri.query().unwrap();
    assert!(query.contains(&format!("code={code}")), "{query}");
    assert_eq!(
        fetched.header("x-webhook-signature"),
        legacy_hex_signature(&get_secret, query.as_bytes())
    );
}

#[tokio::test]
async fn the_secret_is_shown_once_and_never_listed() {
    let t = TestApp::new().await;
    let created = t
        .secret("POST", "/v1/webhooks", Some(json!({"name": "CRM", "url": "https://crm.example.com/hooks", "events": ["referral.*"]})))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let secret = created.body["signing_secret"].as_str().unwrap();
    assert_eq!(created.body["signingSecret"], secret);
    let key = secret.strip_prefix("whsec_").unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap()
            .len(),
        32
    );
    assert_eq!(created.body["timeout_seconds"], 10);
    assert_eq!(created.body["retry_schedule"], json!([60, 300, 1800]));
    let id = created.body["id"].as_str().unwrap();
    for path in ["/v1/webhooks".to_string(), format!("/v1/webhooks/{id}")] {
        let read = t.secret("GET", &path, None).await;
        assert_eq!(read.status, 200);
        assert!(
            !read.body.to_string().contains(secret),
            "{path} shows the secret"
        );
    }
    let deleted = t
        .secret("DELETE", &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        t.secret("GET", &format!("/v1/webhooks/{id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn bad_webhook_input_is_refused_with_a_json_error_and_changes_nothing() {
    let t = TestApp::new().await;
    let base = json!({"name": "hook", "url": "https://hooks.example.com/in", "events": ["referral.created"]});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("url", json!("http://hooks.example.com/in")), "url"),
        (with("url", json!("https://localhost/in")), "url"),
        (with("url", json!("https://10.0.0.1/in")), "url"),
        (
            with("url", json!("https://user:pw@hooks.example.com/in")),
            "url",
        ),
        (with("url", json!("https://db.internal/in")), "url"),
        (with("events", json!([])), "events"),
        (with("events", json!(["Referral Created"])), "events"),
        (with("timeout_seconds", json!(31)), "timeout_seconds"),
        (with("timeout_seconds", json!("ten")), "timeout_seconds"),
        (with("retry_schedule", json!([])), "retry_schedule"),
        (
            with("headers", json!({"A": "1", "B": "2", "C": "3", "D": "4"})),
            "headers",
        ),
        (
            with("headers", json!({"X-Webhook-Signature": "forged"})),
            "headers",
        ),
        (with("method", json!("PUT")), "method"),
        (with("surprise", json!(true)), ""),
        (
            json!({"url": "https://hooks.example.com/in", "events": ["*"]}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let response = t.secret("POST", "/v1/webhooks", Some(body.clone())).await;
        assert_eq!(response.status, 400, "{body} -> {response:?}");
        assert_eq!(
            response.body["error"]["code"], "validation_failed",
            "{body}"
        );
        if !field.is_empty() {
            assert_eq!(
                response.body["error"]["field"], field,
                "{body} -> {response:?}"
            );
        }
    }
    let subscription =
        json!({"event_type": "signup.created", "target_url": "https://hooks.example.com/in"});
    let with = |field: &str, value: Value| {
        let mut body = subscription.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("waitlist_id", json!("")), "waitlist_id"),
        (
            with(
                "waitlist_id",
                json!(
                    "wl
1"
                ),
            ),
            "waitlist_id",
        ),
        (with("waitlist_id", json!(7)), "waitlist_id"),
        (
            with("target_url", json!("http://hooks.example.com/in")),
            "target_url",
        ),
        (with("event_type", json!("Signup Created")), "event_type"),
        (with("surprise", json!(true)), ""),
        (json!({"event_type": "signup.created"}), ""),
    ];
    for (body, field) in cases {
        let response = t
            .secret("POST", "/api/v1/webhooks/subscribe", Some(body.clone()))
            .await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (400, Some("validation_failed")),
            "{body} -> {response:?}"
        );
        if !field.is_empty() {
            assert_eq!(
                response.body["error"]["field"], field,
                "{body} -> {response:?}"
            );
        }
    }
    assert_eq!(
        t.secret("GET", "/v1/webhooks", None).await.body["webhooks"],
        json!([])
    );

    let (id, _) = t
        .create_webhook("https://hooks.example.com/in", json!({}))
        .await;
    let before = t
        .secret("GET", &format!("/v1/webhooks/{id}"), None)
        .await
        .body;
    let patch = t
        .secret(
            "PATCH",
            &format!("/v1/webhooks/{id}"),
            Some(json!({"url": "https://127.0.0.1/"})),
        )
        .await;
    assert_eq!(
        (patch.status, patch.body["error"]["field"].as_str()),
        (400, Some("url"))
    );
    assert_eq!(
        t.secret("GET", &format!("/v1/webhooks/{id}"), None)
            .await
            .body,
        before
    );

    let publishable = t
        .call("GET", "/v1/webhooks", Some(&t.publishable_key), None)
        .await;
    assert_eq!(publishable.status, 403);
    assert_eq!(t.call("GET", "/v1/webhooks", None, None).await.status, 401);
    let bad_state = t
        .secret(
            "GET",
            &format!("/v1/webhooks/{id}/deliveries?state=lost"),
            None,
        )
        .await;
    assert_eq!(
        (bad_state.status, bad_state.body["error"]["field"].as_str()),
        (400, Some("state"))
    );
    let bad_since = t
        .secret(
            "POST",
            &format!("/v1/webhooks/{id}/recover?since=yesterday"),
            None,
        )
        .await;
    assert_eq!(
        (bad_since.status, bad_since.body["error"]["field"].as_str()),
        (400, Some("since"))
    );
    assert_eq!(
        t.secret("GET", "/v1/deliveries/dlv_missing", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn events_and_finished_delivery_logs_are_purged_after_the_retention_period() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"]})).await;
    t.create_referral("user_old").await;
    t.pump().await;
    assert_eq!(receiver.received().len(), 1);
    t.clock.advance(Duration::days(31));
    t.create_referral("user_new").await;
    t.pump().await;

    let cutoff = refwire_core::time::Clock::now(t.clock.as_ref()) - Duration::days(30);
    assert_eq!(
        t.store.purge_before(cutoff).await.unwrap(),
        2,
        "one event, one delivery"
    );
    let events: Vec<_> = t
        .events()
        .await
        .into_iter()
        .map(|event| event.data["referrer_id"].clone())
        .collect();
    assert_eq!(events, [json!("user_new")]);
    let log = t.deliveries(&webhook_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["created_at"], at(31 * 86_400));
}

/// refwire-local's delivery engine: a receiver that takes 25 s to answer holds at most its
/// webhook's share of the sending slots, and another webhook's deliveries flow meanwhile (the
/// bound below is generous; the old batch engine made them wait for the stalled sends).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_receiver_delays_only_its_own_webhooks_deliveries() {
    let t = TestApp::with_loopback_receivers().await;
    let (stalled, healthy) = (Receiver::start().await, Receiver::start().await);
    stalled.always(Reply::status(200).after(std::time::Duration::from_secs(25)));
    let events = json!({"events": ["link.clicked"], "timeout_seconds": 30});
    t.create_webhook(&stalled.url, events.clone()).await;
    t.create_webhook(&healthy.url, events).await;
    // More events than one webhook may have in flight, so the stalled one fills its share.
    let share = refwire_local::workers::MAX_IN_FLIGHT_PER_WEBHOOK as usize;
    let published_events = share + 12;
    for n in 0..published_events {
        let published = t
            .secret(
                "POST",
                "/v1/events",
                Some(json!({"event": "link.clicked", "data": {"n": n}})),
            )
            .await;
        assert_eq!(published.status, 202, "{published:?}");
    }
    while t.workers.fan_out_pass().await.unwrap() > 0 {}
    let engine = tokio::spawn(t.workers.clone().run_delivery());

    let started = std::time::Instant::now();
    while healthy.received().len() < published_events {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the healthy webhook waited: {} of {published_events} delivered",
            healthy.received().len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        stalled.received().len(),
        share,
        "the stalled webhook has exactly its per-webhook share in flight"
    );
    engine.abort();
}

#[tokio::test]
async fn a_failing_receiver_is_probed_by_one_delivery_at_a_time_and_recovers_by_itself() {
    let (t, receiver, webhook_id) = app_with_receiver(
        json!({"events": ["referral.created"], "retry_schedule": [60, 60, 60, 60, 60]}),
    )
    .await;
    receiver.always(Reply::status(500));
    t.create_referral("first").await;
    t.pump().await;
    assert_eq!(receiver.received().len(), 1, "the streak starts");

    // Failing for over 10 s, the breaker is open: of five new deliveries one probes, four wait.
    t.clock.advance(chrono::Duration::seconds(11));
    for user in ["a", "b", "c", "d", "e"] {
        t.create_referral(user).await;
    }
    t.pump().await;
    assert_eq!(receiver.received().len(), 2, "{:?}", receiver.events());
    let log = t.deliveries(&webhook_id).await;
    let waiting: Vec<&Value> = log
        .iter()
        .filter(|delivery| delivery["attempts"] == 0)
        .collect();
    assert_eq!(waiting.len(), 4, "{log:?}");
    let probe_at = waiting[0]["next_attempt_at"].as_str().unwrap().to_string();
    assert!(
        waiting
            .iter()
            .all(|delivery| delivery["next_attempt_at"] == probe_at.as_str()),
        "they wait together for the next probe: {log:?}"
    );

    // Before the next probe nothing is tried; the first delivery's own retry waits as well.
    t.advance_and_pump(29).await;
    assert_eq!(receiver.received().len(), 2);

    // The receiver is back: the next probe succeeds, the breaker closes, everything is delivered,
    // and no waiting delivery was charged an attempt for the time it waited.
    receiver.always(Reply::status(200));
    t.advance_and_pump(2).await;
    t.advance_and_pump(60).await;
    let log = t.deliveries(&webhook_id).await;
    assert!(
        log.iter().all(|delivery| delivery["state"] == "succeeded"),
        "{log:?}"
    );
    let attempts: u64 = log
        .iter()
        .map(|delivery| delivery["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(attempts, 2 + 6, "two failures, then one success each");
    assert_eq!(receiver.received().len(), 8);
}

#[tokio::test]
async fn a_rate_limit_spreads_a_burst_over_the_coming_seconds() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"], "rate_limit": 2})).await;
    assert_eq!(
        t.secret("GET", &format!("/v1/webhooks/{webhook_id}"), None)
            .await
            .body["rate_limit"],
        2
    );
    for user in ["a", "b", "c", "d", "e", "f"] {
        t.create_referral(user).await;
    }
    t.pump().await;
    assert_eq!(receiver.received().len(), 2, "two in the first second");
    let log = t.deliveries(&webhook_id).await;
    let mut waits: Vec<&str> = log
        .iter()
        .filter(|delivery| delivery["attempts"] == 0)
        .map(|delivery| delivery["next_attempt_at"].as_str().unwrap())
        .collect();
    waits.sort();
    assert_eq!(waits.len(), 4);
    assert_eq!(waits[0], waits[1], "two wait one second");
    assert!(
        waits[2] > waits[1] && waits[2] == waits[3],
        "two wait two: {waits:?}"
    );

    t.advance_and_pump(1).await;
    assert_eq!(receiver.received().len(), 4);
    t.advance_and_pump(1).await;
    assert_eq!(receiver.received().len(), 6);
    let log = t.deliveries(&webhook_id).await;
    assert!(
        log.iter()
            .all(|delivery| delivery["state"] == "succeeded" && delivery["attempts"] == 1)
    );

    // The limit can be lifted again; out of range is refused.
    for (value, status) in [(json!(0), 400), (json!(10_001), 400), (json!(null), 200)] {
        let response = t
            .secret(
                "PATCH",
                &format!("/v1/webhooks/{webhook_id}"),
                Some(json!({ "rate_limit": value })),
            )
            .await;
        assert_eq!(response.status, status, "{value}: {response:?}");
    }
}

#[tokio::test]
async fn a_deliverys_detail_shows_the_request_it_sends() {
    let (t, receiver, webhook_id) =
        app_with_receiver(json!({"events": ["referral.created"]})).await;
    t.create_referral("user_1").await;
    t.pump().await;
    let summary = &t.deliveries(&webhook_id).await[0];
    let detail = t.delivery(summary["id"].as_str().unwrap()).await;
    let request = &detail["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], receiver.url.as_str());
    assert_eq!(request["headers"]["Content-Type"], "application/json");
    assert_eq!(
        request["headers"]["webhook-id"],
        receiver.received()[0].header("webhook-id")
    );
    assert_eq!(request["body"], receiver.body_of("referral.created"));
    // Gone with its webhook: the log stays readable.
    t.secret("DELETE", &format!("/v1/webhooks/{webhook_id}"), None)
        .await;
    let detail = t.delivery(summary["id"].as_str().unwrap()).await;
    assert_eq!(detail["request"], Value::Null);
}
