//! The real `refwire-local` process, started from the build next to the test binary. Needs the
//! binary built (`cargo build -p refwire-local`, which scripts/test.sh does first).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `target/<profile>/refwire-local`, next to this test binary's `deps/` folder.
pub fn local_binary() -> PathBuf {
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

pub struct LocalProcess {
    child: Child,
    pub base_url: String,
    pub output: Vec<String>,
}

impl LocalProcess {
    /// Starts refwire-local on a free port with `extra_args` and reads its banner up to the key lines.
    pub fn start(data_file: &Path, extra_args: &[&str]) -> LocalProcess {
        let mut child = Command::new(local_binary())
            .args(["--port", "0", "--data-file"])
            .arg(data_file)
            .args(extra_args)
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

    /// The rest of a printed line that starts with `label`.
    pub fn printed(&self, label: &str) -> Option<String> {
        self.output.iter().find_map(|line| {
            line.trim()
                .strip_prefix(label)
                .map(|rest| rest.trim().to_string())
        })
    }

    /// SIGKILL: no graceful shutdown.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program's API on the real process, called with one key over HTTP.
pub struct LocalApi {
    base_url: String,
    pub key: String,
    http: reqwest::Client,
}

impl LocalApi {
    pub fn of(local: &LocalProcess, key: &str) -> LocalApi {
        LocalApi {
            base_url: local.base_url.clone(),
            key: key.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header("X-API-Key", &self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.send(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {body}");
        body
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}
