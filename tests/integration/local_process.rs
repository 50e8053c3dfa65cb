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
