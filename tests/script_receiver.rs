//! Receivers in other languages' processes (the products' documented Node and Python code), as the
//! integration tests start them: each prints `{"listening": port}`, then one JSON line per request.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long to wait for something that takes well under a second when all is well.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A receiver in another language's process, printing one JSON line per request it verified or not.
pub struct ScriptReceiver {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl ScriptReceiver {
    pub fn start(program: &str, script: &str, port: u16, env: &[(&str, &str)]) -> ScriptReceiver {
        let mut child = Command::new(program)
            .arg(receivers_dir().join(script))
            .env("PORT", port.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run {program} (scripts/test.sh installs it into .venv): {err}")
            });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            first.contains("listening"),
            "{script} did not start: {first:?}"
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
            }
        });
        ScriptReceiver { child, lines: seen }
    }

    pub fn seen(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for ScriptReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receivers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("receivers")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < PATIENCE, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
