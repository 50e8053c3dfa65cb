//! Starts `refwire-local` on a fresh data file, creates referrals, then reports milestones with a
//! fixed number of concurrent clients and prints throughput and latency percentiles.
//!
//! usage: milestone-load [--local PATH] [--referrals N] [--concurrency C]
//! Each referral gets two reports (signed_up with a referee, then completed), so 2N are measured.

use refwire_bench::{LocalServer, flag_values, print_latencies};
use std::sync::Arc;
use std::time::Instant;
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
    for (flag, value) in flag_values() {
        match flag.as_str() {
            "--local" => args.local = value,
            "--referrals" => args.referrals = value.parse().expect("--referrals: a number"),
            "--concurrency" => args.concurrency = value.parse().expect("--concurrency: a number"),
            other => panic!("unknown option {other}"),
        }
    }
    args
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let server = LocalServer::start(&args.local, &[]);
    let (base_url, key) = (&server.base_url, &server.secret_key);

    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base_url}{path}"))
            .header("X-API-Key", key)
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
    let peak_rss_mb = server.peak_rss_mb();
    drop(server);

    println!(
        "milestone reports: {total} with {} concurrent clients in {:.2} s",
        args.concurrency,
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} reports/s",
        total as f64 / elapsed.as_secs_f64()
    );
    print_latencies(&latencies);
    if let Some(megabytes) = peak_rss_mb {
        println!("refwire-local peak RSS: {megabytes:.1} MB");
    }
}
