//! Starts `refwire-local` on a fresh data file and a webhook receiver in this process, subscribes
//! ten webhooks to one custom event, publishes that event with a fixed number of concurrent
//! clients, and waits for every delivery; prints fan-out + delivery throughput and
//! event->receiver latency percentiles.
//!
//! usage: delivery-load [--local PATH] [--events N] [--concurrency C] [--rate R]
//! `--rate R` paces publishing at R events/s in all (default: as fast as the clients go), to see
//! latency at a steady load rather than the queueing of one burst.
//! Every event goes to all ten webhooks, so 10N deliveries are measured. Latency is the receiver's
//! clock at arrival minus the envelope's `timestamp` (when the event was written, in whole
//! milliseconds, so it reads up to 1 ms high).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use chrono::{DateTime, Utc};
use refwire_bench::{LocalServer, flag_values, print_latencies};
use serde::Deserialize;
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const WEBHOOKS: usize = 10;
const EVENT: &str = "link.clicked";
/// How long after the first publish every delivery must have arrived.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);

struct Args {
    local: String,
    events: usize,
    concurrency: usize,
    /// Events per second in all; `None` publishes as fast as the clients can.
    rate: Option<f64>,
}

fn parse_args() -> Args {
    let mut args = Args {
        local: "target/release/refwire-local".into(),
        events: 500,
        concurrency: 8,
        rate: None,
    };
    for (flag, value) in flag_values() {
        match flag.as_str() {
            "--local" => args.local = value,
            "--events" => args.events = value.parse().expect("--events: a number"),
            "--concurrency" => args.concurrency = value.parse().expect("--concurrency: a number"),
            "--rate" => args.rate = Some(value.parse().expect("--rate: events per second")),
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// One webhook request as the receiver saw it.
struct Arrival {
    at: Instant,
    latency: Duration,
}

/// A body that is not an envelope, as text: the run stops on it rather than wait for a timeout.
type NotAnEnvelope = String;

type Arrivals = mpsc::UnboundedSender<Result<Arrival, NotAnEnvelope>>;

/// The part of the envelope the receiver reads.
#[derive(Deserialize)]
struct Envelope {
    timestamp: DateTime<Utc>,
}

/// Answers 200 to every POST and reports its arrival.
async fn receive(State(arrivals): State<Arrivals>, body: Bytes) {
    let (at, now) = (Instant::now(), Utc::now());
    let arrival = match serde_json::from_slice::<Envelope>(&body) {
        Ok(envelope) => Ok(Arrival {
            at,
            // Negative only if the wall clock stepped back mid-run; counted as zero.
            latency: (now - envelope.timestamp).to_std().unwrap_or_default(),
        }),
        Err(err) => Err(format!("{err}: {}", String::from_utf8_lossy(&body))),
    };
    // Fails only once main has stopped listening, when nothing is counted any more.
    arrivals.send(arrival).ok();
}

/// Serves the receiver on a free port on 127.0.0.1; returns the port and its arrivals.
async fn start_receiver() -> (u16, mpsc::UnboundedReceiver<Result<Arrival, NotAnEnvelope>>) {
    let (sender, arrivals) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(post(receive)).with_state(sender);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, arrivals)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = parse_args();
    let server = LocalServer::start(&args.local, &["--allow-loopback-http"]);
    let (receiver_port, mut arrivals) = start_receiver().await;
    let client = reqwest::Client::new();
    for n in 0..WEBHOOKS {
        let webhook = json!({
            "name": format!("bench-{n}"),
            "url": format!("http://127.0.0.1:{receiver_port}/hook/{n}"),
            "events": [EVENT],
        });
        let response = client
            .post(format!("{}/v1/webhooks", server.base_url))
            .header("X-API-Key", &server.secret_key)
            .json(&webhook)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
    }

    // Clients publish events 0..N, each taking the next number.
    let next_event = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let publishers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let next_event = Arc::clone(&next_event);
            let client = client.clone();
            let url = format!("{}/v1/events", server.base_url);
            let key = server.secret_key.clone();
            let (events, rate) = (args.events, args.rate);
            tokio::spawn(async move {
                loop {
                    let n = next_event.fetch_add(1, Ordering::Relaxed);
                    if n >= events {
                        break;
                    }
                    if let Some(rate) = rate {
                        let due = started + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                    }
                    let response = client
                        .post(&url)
                        .header("X-API-Key", &key)
                        .json(&json!({"event": EVENT, "data": {"n": n}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 202, "{:?}", response.text().await);
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let publishing = started.elapsed();

    let expected = WEBHOOKS * args.events;
    let deadline = tokio::time::Instant::from_std(started + DELIVERY_TIMEOUT);
    let mut latencies = Vec::with_capacity(expected);
    let mut last_arrival = started;
    while latencies.len() < expected {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some(Ok(arrival))) => {
                latencies.push(arrival.latency);
                // Handlers report concurrently, so arrivals may come slightly out of order.
                last_arrival = last_arrival.max(arrival.at);
            }
            Ok(Some(Err(body))) => {
                eprintln!("the receiver got a body that is not an envelope: {body}");
                return ExitCode::FAILURE;
            }
            // Timed out; the channel cannot close while the receiver is serving.
            Ok(None) | Err(_) => break,
        }
    }
    latencies.sort();
    drop(server);

    let received = latencies.len();
    println!(
        "events published: {} with {} concurrent clients in {:.2} s ({:.0} events/s accepted)",
        args.events,
        args.concurrency,
        publishing.as_secs_f64(),
        args.events as f64 / publishing.as_secs_f64()
    );
    println!("deliveries received: {received} of {expected} ({WEBHOOKS} webhooks per event)");
    if received > 0 {
        let wall = (last_arrival - started).as_secs_f64();
        println!("first publish to last delivery: {wall:.2} s");
        println!(
            "throughput: {:.0} deliveries/s, {:.1} events/s delivered",
            received as f64 / wall,
            received as f64 / WEBHOOKS as f64 / wall
        );
        println!("event->receiver latency:");
        print_latencies(&latencies);
    }
    if received < expected {
        eprintln!(
            "timed out: not every delivery arrived within {} s of the first publish",
            DELIVERY_TIMEOUT.as_secs()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
