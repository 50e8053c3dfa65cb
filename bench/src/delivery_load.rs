//! Starts `refwire-local` on a fresh data file and a webhook receiver in this process, subscribes
//! ten webhooks to one custom event, publishes that event with a fixed number of concurrent
//! clients, and waits for every delivery; prints fan-out + delivery throughput and
//! event->receiver latency percentiles.
//!
//! First, as the baseline of the same run, this tool POSTs as many signed envelopes of the same
//! size straight to the same receiver, 256 at a time (as many as refwire-local keeps in flight):
//! what this machine, this HTTP client and this receiver can do with no Refwire in between.
//!
//! usage: delivery-load [--local PATH] [--events N] [--concurrency C] [--rate R] [--stall S]
//! `--rate R` paces publishing at R events/s in all (default: as fast as the clients go), to see
//! latency at a steady load rather than the queueing of one burst. `--stall S` makes the first
//! webhook's receiver sleep S seconds before every answer: the figures are then the other nine's,
//! to compare with a run without it.
//! Every event goes to all ten webhooks, so 10N deliveries are measured. Latency is the receiver's
//! clock at arrival minus the envelope's `timestamp` (when the event was written, in whole
//! milliseconds, so it reads up to 1 ms high).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::post;
use chrono::{DateTime, Utc};
use refwire_bench::{LocalServer, flag_values, print_latencies};
use refwire_core::deliveries::signing::{SigningKey, standard_signature_header};
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
/// Attempts refwire-local's delivery engine keeps in flight; the baseline POSTs as many at once.
const ENGINE_IN_FLIGHT: usize = 256;
const BASELINE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Args {
    local: String,
    events: usize,
    concurrency: usize,
    /// Events per second in all; `None` publishes as fast as the clients can.
    rate: Option<f64>,
    /// Seconds the first webhook's receiver sleeps before answering; 0: it does not.
    stall_seconds: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        local: "target/release/refwire-local".into(),
        events: 500,
        concurrency: 8,
        rate: None,
        stall_seconds: 0,
    };
    for (flag, value) in flag_values() {
        match flag.as_str() {
            "--local" => args.local = value,
            "--events" => args.events = value.parse().expect("--events: a number"),
            "--concurrency" => args.concurrency = value.parse().expect("--concurrency: a number"),
            "--rate" => args.rate = Some(value.parse().expect("--rate: events per second")),
            "--stall" => args.stall_seconds = value.parse().expect("--stall: seconds"),
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

/// The receiver: reports every arrival, except at a stalled webhook's path, which answers only
/// after its stall and is not counted.
#[derive(Clone)]
struct ReceiverState {
    arrivals: Arrivals,
    stall: Option<Duration>,
}

/// The path of the webhook whose receiver stalls with `--stall`.
const STALLED_PATH: &str = "/hook/0";

/// Answers 200 to every POST and reports its arrival.
async fn receive(State(receiver): State<ReceiverState>, uri: Uri, body: Bytes) {
    if let Some(stall) = receiver.stall.filter(|_| uri.path() == STALLED_PATH) {
        tokio::time::sleep(stall).await;
        return;
    }
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
    receiver.arrivals.send(arrival).ok();
}

/// Serves the receiver on a free port on 127.0.0.1; returns the port and its arrivals.
async fn start_receiver(
    stall: Option<Duration>,
) -> (u16, mpsc::UnboundedReceiver<Result<Arrival, NotAnEnvelope>>) {
    let (arrivals, received) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .fallback(post(receive))
        .with_state(ReceiverState { arrivals, stall });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, received)
}

type ArrivalQueue = mpsc::UnboundedReceiver<Result<Arrival, NotAnEnvelope>>;

/// Waits for `expected` arrivals until `deadline`; returns their sorted latencies and the last
/// arrival's time, or the body that was not an envelope.
async fn collect(
    arrivals: &mut ArrivalQueue,
    expected: usize,
    started: Instant,
    deadline: Instant,
) -> Result<(Vec<Duration>, Instant), NotAnEnvelope> {
    let deadline = tokio::time::Instant::from_std(deadline);
    let mut latencies = Vec::with_capacity(expected);
    let mut last_arrival = started;
    while latencies.len() < expected {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some(Ok(arrival))) => {
                latencies.push(arrival.latency);
                // Handlers report concurrently, so arrivals may come slightly out of order.
                last_arrival = last_arrival.max(arrival.at);
            }
            Ok(Some(Err(body))) => return Err(body),
            // Timed out; the channel cannot close while the receiver is serving.
            Ok(None) | Err(_) => break,
        }
    }
    latencies.sort();
    Ok((latencies, last_arrival))
}

/// POSTs `count` signed envelopes like Refwire's straight to the receiver, `ENGINE_IN_FLIGHT` at a
/// time; prints and returns the deliveries per second.
async fn direct_baseline(
    client: &reqwest::Client,
    receiver_port: u16,
    arrivals: &mut ArrivalQueue,
    count: usize,
) -> Result<f64, NotAnEnvelope> {
    let key = SigningKey::parse(BASELINE_SECRET).expect("a valid secret");
    let key = Arc::new(key);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..ENGINE_IN_FLIGHT)
        .map(|_| {
            let (client, key, next) = (client.clone(), Arc::clone(&key), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    let now = Utc::now();
                    let id = format!("evt_baseline_{n:026}");
                    let body = json!({"id": id, "event": EVENT, "timestamp": refwire_core::time::format(&now), "data": {"n": n}})
                        .to_string();
                    let signature = standard_signature_header(
                        std::slice::from_ref(&key),
                        &id,
                        now.timestamp(),
                        body.as_bytes(),
                    );
                    client
                        .post(format!("http://127.0.0.1:{receiver_port}/hook/{}", 1 + n % (WEBHOOKS - 1)))
                        .header("content-type", "application/json")
                        .header("webhook-id", &id)
                        .header("webhook-timestamp", now.timestamp().to_string())
                        .header("webhook-signature", signature)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let (latencies, last_arrival) =
        collect(arrivals, count, started, started + DELIVERY_TIMEOUT).await?;
    let throughput = latencies.len() as f64 / (last_arrival - started).as_secs_f64();
    println!(
        "direct baseline: {throughput:.0} deliveries/s ({count} signed POSTs straight to the receiver, {ENGINE_IN_FLIGHT} at a time)"
    );
    println!("direct send->receiver latency:");
    print_latencies(&latencies);
    Ok(throughput)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = parse_args();
    let stall = (args.stall_seconds > 0).then(|| Duration::from_secs(args.stall_seconds));
    // The webhooks whose deliveries are counted: all but a stalled one.
    let counted = WEBHOOKS - usize::from(stall.is_some());
    let (receiver_port, mut arrivals) = start_receiver(stall).await;
    let client = reqwest::Client::new();
    let baseline = match direct_baseline(
        &client,
        receiver_port,
        &mut arrivals,
        WEBHOOKS * args.events,
    )
    .await
    {
        Ok(throughput) => throughput,
        Err(body) => {
            eprintln!("the receiver got a body that is not an envelope: {body}");
            return ExitCode::FAILURE;
        }
    };
    let server = LocalServer::start(&args.local, &["--allow-loopback-http"]);
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

    let expected = counted * args.events;
    let (latencies, last_arrival) =
        match collect(&mut arrivals, expected, started, started + DELIVERY_TIMEOUT).await {
            Ok(collected) => collected,
            Err(body) => {
                eprintln!("the receiver got a body that is not an envelope: {body}");
                return ExitCode::FAILURE;
            }
        };
    let peak_rss_mb = server.peak_rss_mb();
    drop(server);

    let received = latencies.len();
    println!(
        "events published: {} with {} concurrent clients in {:.2} s ({:.0} events/s accepted)",
        args.events,
        args.concurrency,
        publishing.as_secs_f64(),
        args.events as f64 / publishing.as_secs_f64()
    );
    println!(
        "deliveries received: {received} of {expected} ({counted} counted webhooks per event)"
    );
    if let Some(stall) = stall {
        println!(
            "(the first webhook's receiver sleeps {} s before every answer; its deliveries are not counted)",
            stall.as_secs()
        );
    }
    if received > 0 {
        let wall = (last_arrival - started).as_secs_f64();
        println!("first publish to last delivery: {wall:.2} s");
        let throughput = received as f64 / wall;
        println!(
            "throughput: {throughput:.0} deliveries/s, {:.1} events/s delivered, {:.2} of the direct baseline",
            throughput / counted as f64,
            throughput / baseline
        );
        println!("event->receiver latency:");
        print_latencies(&latencies);
    }
    if let Some(megabytes) = peak_rss_mb {
        println!("refwire-local peak RSS: {megabytes:.1} MB");
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
