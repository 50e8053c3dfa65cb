//! The real `refwire-local` process: first start prints keys, the API answers over TCP, and data
//! survives a kill -9 and restart.

use refwire_tests::local::LocalProcess;

#[tokio::test]
async fn first_start_prints_keys_and_data_survives_kill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("refwire.db");
    let http = reqwest::Client::new();

    let first = LocalProcess::start(&data_file, &[]);
    let secret = first
        .printed("secret key:")
        .expect("secret key printed on first start");
    assert!(secret.starts_with("rw_sec_"));
    assert!(
        first
            .printed("operator key:")
            .unwrap()
            .starts_with("rw_op_")
    );
    let created: serde_json::Value = http
        .post(format!("{}/v1/api/referral/create", first.base_url))
        .header("X-API-Key", &secret)
        .json(&serde_json::json!({"user_id": "user_123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = created["referral_code"].as_str().unwrap().to_string();
    let completed = http
        .post(format!("{}/v1/api/referral/milestone", first.base_url))
        .bearer_auth(&secret)
        .json(&serde_json::json!({"referral_code": code, "milestone": "completed", "referred_user_id": "user_456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), 200);
    first.kill();

    let second = LocalProcess::start(&data_file, &[]);
    assert_eq!(
        second.printed("secret key:"),
        None,
        "keys are printed only on first start"
    );
    let referral: serde_json::Value = http
        .get(format!("{}/v1/api/referral/{code}", second.base_url))
        .header("X-API-Key", &secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(referral["status"], "completed");
    assert_eq!(referral["referred_user_id"], "user_456");
    second.kill();
}

#[test]
fn a_bad_setting_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(refwire_tests::local::local_binary())
        .args(["--port", "0", "--data-file"])
        .arg(dir.path().join("refwire.db"))
        .env("REFWIRE_DISABLE_AFTER_DAYS", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("REFWIRE_DISABLE_AFTER_DAYS must be a whole number of days from 1 to 90"),
        "{stderr}"
    );
}

/// Group commit under load, then kill -9: every write the API acknowledged is there after a
/// restart, and every acknowledged event reaches the receiver (a repeat only for an attempt that
/// was in flight at the kill, with the same webhook-id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_to_a_kill_9_under_concurrent_load() {
    use refwire_tests::receiver::Receiver;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("refwire.db");
    let http = reqwest::Client::new();
    let receiver = Receiver::start().await;
    let first = LocalProcess::start(&data_file, &["--allow-loopback-http"]);
    let secret = first.printed("secret key:").unwrap();
    let hook = serde_json::json!({"name": "r", "url": receiver.url, "events": ["link.clicked"]});
    let created = http
        .post(format!("{}/v1/webhooks", first.base_url))
        .bearer_auth(&secret)
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // 16 clients create referrals and publish events until the process dies under them.
    let referrals: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (http, base, secret) = (http.clone(), first.base_url.clone(), secret.clone());
            let (referrals, events) = (Arc::clone(&referrals), Arc::clone(&events));
            tokio::spawn(async move {
                for n in 0.. {
                    let user = format!("user_{client}_{n}");
                    let Ok(response) = http
                        .post(format!("{base}/v1/api/referral/create"))
                        .bearer_auth(&secret)
                        .json(&serde_json::json!({"user_id": user}))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if let Ok(body) = response.json::<serde_json::Value>().await {
                        let code = body["referral_code"].as_str().unwrap().to_string();
                        referrals.lock().unwrap().push((user, code));
                    }
                    let Ok(response) = http
                        .post(format!("{base}/v1/events"))
                        .bearer_auth(&secret)
                        .json(&serde_json::json!({"event": "link.clicked", "data": {"n": n}}))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if let Ok(body) = response.json::<serde_json::Value>().await {
                        events
                            .lock()
                            .unwrap()
                            .push(body["id"].as_str().unwrap().to_string());
                    }
                }
            })
        })
        .collect();
    refwire_tests::script_receiver::wait_until("200 acknowledged referrals", || {
        referrals.lock().unwrap().len() >= 200
    })
    .await;
    first.kill();
    for client in clients {
        client.await.unwrap();
    }

    let second = LocalProcess::start(&data_file, &["--allow-loopback-http"]);
    let acknowledged = referrals.lock().unwrap().clone();
    for (user, code) in &acknowledged {
        let read: serde_json::Value = http
            .get(format!("{}/v1/api/referral/{code}", second.base_url))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            read["referrer_id"],
            user.as_str(),
            "{code} was acknowledged"
        );
    }
    let published = events.lock().unwrap().clone();
    assert!(!published.is_empty());
    let delivered = || -> std::collections::BTreeSet<String> {
        receiver
            .received()
            .iter()
            .map(|request| request.header("webhook-id").to_string())
            .collect()
    };
    // An attempt that was in flight at the kill stays claimed for its timeout plus 30 s (40 s by
    // default); everything else is sent as soon as the new process starts.
    let started = std::time::Instant::now();
    while !published.iter().all(|id| delivered().contains(id)) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "{} of {} acknowledged events never arrived",
            published
                .iter()
                .filter(|id| !delivered().contains(*id))
                .count(),
            published.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    second.kill();
}
