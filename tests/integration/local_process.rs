//! The real `refwire-local` process: first start prints keys, the API answers over TCP, and data
//! survives a kill -9 and restart. Needs the binary built (`cargo build -p refwire-local`, which
//! scripts/test.sh does first).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `target/<profile>/refwire-local`, next to this test binary's `deps/` folder.
fn local_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = profile_dir.join("refwire-local");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p refwire-local` first",
        binary.display()
    );
    binary
}

struct LocalProcess {
    child: Child,
    base_url: String,
    output: Vec<String>,
}

impl LocalProcess {
    /// Starts refwire-local on a free port and reads its banner up to the key lines.
    fn start(data_file: &Path) -> LocalProcess {
        let mut child = Command::new(local_binary())
            .args(["--port", "0", "--data-file"])
            .arg(data_file)
            .env_remove("REFWIRE_OPERATOR_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut output = Vec::new();
        let mut base_url = String::new();
        while let Some(Ok(line)) = lines.next() {
            if let Some(url) = line.strip_prefix("refwire-local listening on ") {
                base_url = url.to_string();
            }
            let done = line.contains("operator key:")
                || line.contains("using the existing default program");
            output.push(line);
            if done {
                break;
            }
        }
        assert!(!base_url.is_empty(), "no listening line in {output:?}");
        LocalProcess {
            child,
            base_url,
            output,
        }
    }

    fn printed(&self, label: &str) -> Option<String> {
        self.output.iter().find_map(|line| {
            line.trim()
                .strip_prefix(label)
                .map(|rest| rest.trim().to_string())
        })
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no graceful shutdown
        self.child.wait().unwrap();
    }
}

#[tokio::test]
async fn first_start_prints_keys_and_data_survives_kill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("refwire.db");
    let http = reqwest::Client::new();

    let first = LocalProcess::start(&data_file);
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

    let second = LocalProcess::start(&data_file);
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
