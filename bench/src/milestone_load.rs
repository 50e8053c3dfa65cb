//! Starts `refwire-local` on a fresh data file, creates referrals, then reports milestones with a
//! fixed number of concurrent clients and prints throughput and latency percentiles.
//!
//! usage: milestone-load [--local PATH] [--referrals N] [--concurrency C]
//! Each referral gets two reports (signed_up with a referee, then completed), so 2N are measured.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

struct Args {
    local: String,
    referrals: usize,
    concurrency: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        local: "target/release/refwire-local".into(),
        referrals: 2000,
        concurrency: 16,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--local" => args.local = value,
            "--referrals" => args.referrals = value.parse().expect("--referrals: a number"),
            "--concurrency" => args.concurrency = value.parse().expect("--concurrency: a number"),
            other => panic!("unknown option {other}"),
        }
    }
    args
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(&args.local)
        .args(["--port", "0", "--data-file"])
        .arg(dir.path().join("bench.db"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot start {}: {err} (cargo build --release -p refwire-local)",
                args.local
            )
        });
    let mut base_url = String::new();
    let mut key = String::new();
    for line in BufReader::new(server.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("refwire-local listening on ") {
            base_url = url.to_string();
        }
        if let Some(secret) = line.trim().strip_prefix("secret key:") {
            key = secret.trim().to_string();
            break;
        }
    }

    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base_url}{path}"))
            .header("X-API-Key", &key)
            .json(&body)
            .send()
    };
    let mut codes = Vec::with_capacity(args.referrals);
    for n in 0..args.referrals {
        let created: serde_json::Value = post(
            "/v1/api/referral/create",
            serde_json::json!({"user_id": format!("user_{n}")}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        codes.push(created["referral_code"].as_str().unwrap().to_string());
    }

    // Every referral's two reports, in order per referral; clients take the next one from the queue.
    let work: Vec<(String, &str, Option<String>)> = codes
        .iter()
        .enumerate()
        .flat_map(|(n, code)| {
            [
                (code.clone(), "signed_up", Some(format!("friend_{n}"))),
                (code.clone(), "completed", None),
            ]
        })
        .collect();
    let total = work.len();
    let queue = Arc::new(Mutex::new(work.into_iter()));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let queue = Arc::clone(&queue);
            let client = client.clone();
            let (url, key) = (format!("{base_url}/v1/api/referral/milestone"), key.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some((code, milestone, referee)) = queue.lock().await.next() else {
                        break;
                    };
                    let body = serde_json::json!({"referral_code": code, "milestone": milestone, "referred_user_id": referee});
                    let sent = Instant::now();
                    let response = client.post(&url).header("X-API-Key", &key).json(&body).send().await.unwrap();
                    assert_eq!(response.status(), 200, "{:?}", response.text().await);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    server.kill().ok();
    server.wait().ok();

    println!(
        "milestone reports: {total} with {} concurrent clients in {:.2} s",
        args.concurrency,
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} reports/s",
        total as f64 / elapsed.as_secs_f64()
    );
    for (label, fraction) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        println!(
            "{label}: {:.2} ms",
            percentile(&latencies, fraction).as_secs_f64() * 1000.0
        );
    }
    println!(
        "max: {:.2} ms",
        latencies.last().unwrap().as_secs_f64() * 1000.0
    );
}
