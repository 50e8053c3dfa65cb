//! Each Lambda binary under a Lambda Runtime API: a small emulator of the API the Lambda service
//! offers a function process (`/2018-06-01/runtime/invocation/next`, `.../response`, `.../error`,
//! `/runtime/init/error`). The real binary starts with `AWS_LAMBDA_RUNTIME_API` pointing at it, reads
//! its configuration, takes one event and posts its response: process start -> first event ->
//! response. scripts/test.sh runs this on the release build (`REFWIRE_LAMBDA_BIN_DIR`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use refwire_tests::tls::TlsProxy;
use refwire_tests::{apigw_event, moto_config, moto_stack};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the function process posted back.
#[derive(Debug, Clone)]
enum Outcome {
    Response(Value),
    Error(String),
}

/// What the emulator saw of the process, and when.
#[derive(Default)]
struct Seen {
    first_poll: Option<Instant>,
    outcome: Option<(Instant, Outcome)>,
}

#[derive(Clone)]
struct Shared {
    event: Value,
    seen: Arc<Mutex<Seen>>,
}

struct RuntimeApi {
    address: String,
    shared: Shared,
}

async fn next_invocation(State(shared): State<Shared>) -> (HeaderMap, axum::Json<Value>) {
    let answered = {
        let mut seen = shared.seen.lock().unwrap();
        seen.first_poll.get_or_insert_with(Instant::now);
        seen.outcome.is_some()
    };
    // One event per process: later polls wait, as the service's long poll does, until the test ends.
    if answered {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_string(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:refwire".to_string(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                .to_string(),
        ),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    (headers, axum::Json(shared.event))
}

impl Shared {
    fn record(&self, outcome: Outcome) {
        self.seen.lock().unwrap().outcome = Some((Instant::now(), outcome));
    }
}

async fn invocation_response(
    State(shared): State<Shared>,
    Path(_id): Path<String>,
    body: Bytes,
) -> &'static str {
    shared.record(Outcome::Response(
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    ));
    "{}"
}

async fn invocation_error(State(shared): State<Shared>, body: Bytes) -> &'static str {
    shared.record(Outcome::Error(String::from_utf8_lossy(&body).into_owned()));
    "{}"
}

/// One process under the emulator, timed from just before it was spawned.
struct Invocation {
    outcome: Outcome,
    /// Until its first `GET .../invocation/next` (`None`: it failed before asking).
    first_poll: Option<Duration>,
    /// Until it posted its response (or error).
    answered: Duration,
}

impl RuntimeApi {
    async fn start(event: Value) -> RuntimeApi {
        let shared = Shared {
            event,
            seen: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(invocation_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi { address, shared }
    }

    async fn invocation(&self, process: &mut Child, spawned: Instant) -> Invocation {
        loop {
            {
                let seen = self.shared.seen.lock().unwrap();
                if let Some((at, outcome)) = &seen.outcome {
                    return Invocation {
                        outcome: outcome.clone(),
                        first_poll: seen.first_poll.map(|first| first - spawned),
                        answered: *at - spawned,
                    };
                }
            }
            if let Some(status) = process.try_wait().unwrap() {
                panic!(
                    "the function exited with {status} before answering {}",
                    self.shared.event
                );
            }
            assert!(
                spawned.elapsed() < Duration::from_secs(30),
                "no answer to {}",
                self.shared.event
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn binary(name: &str) -> PathBuf {
    let dir = std::env::var("REFWIRE_LAMBDA_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .and_then(std::path::Path::parent)
                .unwrap()
                .to_path_buf()
        });
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: scripts/test.sh builds it (cargo build --release -p {name})",
        binary.display()
    );
    binary
}

/// A moto stack for the functions' configuration (table, queue, schedule group); the table's name.
async fn function_environment() -> (Vec<(String, String)>, String) {
    let settings = moto_stack(&moto_config().await).await;
    let endpoint = std::env::var(refwire_tests::AWS_ENDPOINT_ENV).unwrap();
    let environment = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "moto".into()),
        ("AWS_SECRET_ACCESS_KEY", "moto".into()),
        ("AWS_LAMBDA_FUNCTION_NAME", "refwire".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/refwire".into()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/25/[$LATEST]test".into(),
        ),
        ("REFWIRE_TABLE", settings.table.clone()),
        ("REFWIRE_QUEUE_URL", settings.queue.queue_url),
        ("REFWIRE_QUEUE_ARN", settings.queue.queue_arn),
        ("REFWIRE_SCHEDULE_GROUP", settings.queue.schedule_group),
        (
            "REFWIRE_SCHEDULER_ROLE_ARN",
            settings.queue.scheduler_role_arn,
        ),
        // As template.yaml deploys it: only the operator key's hash.
        (
            "REFWIRE_OPERATOR_KEY_SHA256",
            refwire_core::programs::OperatorKey::from_plaintext(
                "rw_op_lambda-runtime-test-operator-key",
            )
            .hash()
            .to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    (environment, settings.table)
}

/// Starts `name` under a fresh Runtime API, gives it `event`, and returns what it answered.
async fn invoke_process(name: &str, event: Value) -> Outcome {
    invoke_process_with(name, event, function_environment().await.0).await
}

async fn invoke_process_with(
    name: &str,
    event: Value,
    environment: Vec<(String, String)>,
) -> Outcome {
    start_process(name, event, environment).await.outcome
}

/// Starts `name` with `environment` under a fresh Runtime API, gives it `event`, and waits for its
/// answer; the process is killed then.
async fn start_process(name: &str, event: Value, environment: Vec<(String, String)>) -> Invocation {
    let program = binary(name);
    let api = RuntimeApi::start(event).await;
    let spawned = Instant::now();
    let mut process = Command::new(program)
        .envs(environment)
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let invocation = api.invocation(&mut process, spawned).await;
    let _ = process.kill();
    let _ = process.wait();
    invocation
}

fn response(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Response(value) => value,
        Outcome::Error(error) => panic!("the function reported an error: {error}"),
    }
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn the_api_binary_answers_an_api_gateway_event() {
    create_a_program(function_environment().await.0).await;
}

/// `POST /v1/programs` with the operator key, as API Gateway passes it on.
fn program_creation_event() -> Value {
    let body = json!({"name": "Lambda runtime test"}).to_string();
    let mut event = apigw_event(
        "POST",
        "/v1/programs",
        Some("rw_op_lambda-runtime-test-operator-key"),
        Some(&body),
    );
    event["headers"]["content-type"] = json!("application/json");
    event
}

/// An event from infra/events.
fn fixture(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/events")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The API function creates a program (with the operator key) in the given environment.
async fn create_a_program(environment: Vec<(String, String)>) {
    let answer =
        response(invoke_process_with("refwire-api", program_creation_event(), environment).await);
    assert_eq!(answer["statusCode"], 201, "{answer}");
    let created: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert!(
        created["secret_key"]
            .as_str()
            .unwrap()
            .starts_with("rw_sec_"),
        "{created}"
    );
}

/// On AWS every SDK call is HTTPS: the binary's client (rustls on ring, the system's roots) reaches
/// moto through a TLS proxy whose CA it is told to trust with `SSL_CERT_FILE`.
#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn the_api_binary_reaches_dynamodb_over_https() {
    let (mut environment, _) = function_environment().await;
    let proxy = TlsProxy::start(&std::env::var(refwire_tests::AWS_ENDPOINT_ENV).unwrap()).await;
    environment.retain(|(name, _)| name != "AWS_ENDPOINT_URL");
    environment.push(("AWS_ENDPOINT_URL".into(), proxy.url.clone()));
    environment.push((
        "SSL_CERT_FILE".into(),
        proxy.ca_file.path().display().to_string(),
    ));
    create_a_program(environment).await;
    assert!(proxy.handshakes() > 0);
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn the_fanout_binary_answers_a_dynamodb_stream_event() {
    let event = fixture("dynamodb-stream-batch.json");
    let answer = response(invoke_process("refwire-fanout", event).await);
    assert_eq!(answer, json!({"batchItemFailures": []}));
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn the_delivery_binary_answers_an_sqs_event() {
    let event = fixture("sqs-delivery-batch.json");
    let answer = response(invoke_process("refwire-delivery", event).await);
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]})
    );
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn the_sweep_binary_expires_lapsed_referrals_on_a_schedule_tick() {
    use refwire_core::ports::{EventStore, ProgramStore, ReferralStore};
    let (environment, table) = function_environment().await;
    let store =
        refwire_aws::DynamoStore::new(aws_sdk_dynamodb::Client::new(&moto_config().await), table);
    let program = refwire_core::programs::Program {
        id: "prg_sweep".into(),
        name: "sweep".into(),
        settings: refwire_core::programs::ReferralSettings::default(),
        created_at: chrono::Utc::now(),
    };
    store.create_program(&program, &[]).await.unwrap();
    // Opened 31 days ago with the default 30-day expiry: lapsed a day ago.
    let opened = chrono::Utc::now() - chrono::Duration::days(31);
    let request = refwire_core::referrals::NewReferral {
        user_id: "user_123".into(),
        ..Default::default()
    };
    let (referral, created) = refwire_core::referrals::Referral::open(
        request,
        &program.settings,
        "ref_sweep".into(),
        program.id.clone(),
        "SWEEPCODE1".into(),
        opened,
    );
    let created = refwire_core::events::OutboxEvent::new(
        "evt_00000000000000000000000000".into(),
        &program.id,
        created.event,
        opened,
        created.data,
    );
    store
        .insert_referral(&referral, &created, None, opened)
        .await
        .unwrap();

    let tick = fixture("schedule-tick.json");
    let answer = response(invoke_process_with("refwire-sweep", tick, environment).await);
    assert_eq!(answer, json!({"expired": 1}));
    let swept = store
        .find_referral(&program.id, "SWEEPCODE1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        swept.status,
        refwire_core::referrals::ReferralStatus::Expired
    );
    let events: Vec<String> = store
        .list_events(&program.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.event)
        .collect();
    assert_eq!(events, ["referral.created", "referral.expired"]);
}

/// `scripts/bench.sh cold-start`: each release binary started `REFWIRE_COLD_STARTS` times (default
/// 20) under this emulator with the event its test gives it, timed from spawning the process to its
/// first poll for an event and to its response; beside them the floor of this harness and machine:
/// a function that only echoes its event (bench/src/lambda_echo.rs), and `true` (spawn -> exit).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: scripts/bench.sh cold-start runs it on the release binaries"]
async fn cold_starts() {
    let runs: usize = std::env::var("REFWIRE_COLD_STARTS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(20);
    let milliseconds = |mut times: Vec<Duration>| {
        times.sort();
        let at = |fraction| refwire_bench::percentile(&times, fraction).as_secs_f64() * 1000.0;
        format!("{:7.2} {:7.2}", at(0.5), at(0.9))
    };
    let bare: Vec<Duration> = (0..runs)
        .map(|_| {
            let spawned = Instant::now();
            assert!(Command::new("true").status().unwrap().success());
            spawned.elapsed()
        })
        .collect();
    let (environment, _) = function_environment().await;
    // The same function trusting no certificates (an empty file and directory instead of the
    // system's): what loading the roots, which the SDK's HTTPS client does at start, costs here.
    let no_roots = tempfile::tempdir().unwrap();
    let empty = no_roots.path().join("none.pem");
    std::fs::write(&empty, "").unwrap();
    let mut without_roots = environment.clone();
    without_roots.push(("SSL_CERT_FILE".into(), empty.display().to_string()));
    without_roots.push(("SSL_CERT_DIR".into(), no_roots.path().display().to_string()));
    println!("{runs} starts of each, ms from spawning the process (median, p90):");
    println!("{:<26} {:>15}   {:>15}", "", "first poll", "response");
    println!("{:<26} {:>15}   {} (exit)", "true", "", milliseconds(bare));
    for (label, name, event, environment) in [
        (
            "lambda-echo",
            "lambda-echo",
            json!({"echo": true}),
            &environment,
        ),
        (
            "refwire-api",
            "refwire-api",
            program_creation_event(),
            &environment,
        ),
        (
            "refwire-fanout",
            "refwire-fanout",
            fixture("dynamodb-stream-batch.json"),
            &environment,
        ),
        (
            "refwire-delivery",
            "refwire-delivery",
            fixture("sqs-delivery-batch.json"),
            &environment,
        ),
        (
            "refwire-sweep",
            "refwire-sweep",
            fixture("schedule-tick.json"),
            &environment,
        ),
        (
            "refwire-sweep, no roots",
            "refwire-sweep",
            fixture("schedule-tick.json"),
            &without_roots,
        ),
    ] {
        let (mut polls, mut answers) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let invocation = start_process(name, event.clone(), environment.clone()).await;
            response(invocation.outcome);
            polls.push(invocation.first_poll.unwrap());
            answers.push(invocation.answered);
        }
        println!(
            "{label:<26} {}   {}",
            milliseconds(polls),
            milliseconds(answers)
        );
    }
}
