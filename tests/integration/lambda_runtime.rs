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

struct RuntimeApi {
    address: String,
    event: Value,
    outcome: Arc<Mutex<Option<Outcome>>>,
}

type Shared = (Value, Arc<Mutex<Option<Outcome>>>);

async fn next_invocation(State((event, outcome)): State<Shared>) -> (HeaderMap, axum::Json<Value>) {
    // One event per process: later polls wait, as the service's long poll does, until the test ends.
    if outcome.lock().unwrap().is_some() {
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
    (headers, axum::Json(event))
}

async fn invocation_response(
    State((_, outcome)): State<Shared>,
    Path(_id): Path<String>,
    body: Bytes,
) -> &'static str {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    *outcome.lock().unwrap() = Some(Outcome::Response(value));
    "{}"
}

async fn invocation_error(State((_, outcome)): State<Shared>, body: Bytes) -> &'static str {
    *outcome.lock().unwrap() = Some(Outcome::Error(String::from_utf8_lossy(&body).into_owned()));
    "{}"
}

impl RuntimeApi {
    async fn start(event: Value) -> RuntimeApi {
        let outcome = Arc::new(Mutex::new(None));
        let state: Shared = (event.clone(), outcome.clone());
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
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi {
            address,
            event,
            outcome,
        }
    }

    async fn outcome(&self, process: &mut Child) -> Outcome {
        let started = Instant::now();
        loop {
            if let Some(outcome) = self.outcome.lock().unwrap().clone() {
                return outcome;
            }
            if let Some(status) = process.try_wait().unwrap() {
                panic!(
                    "the function exited with {status} before answering {}",
                    self.event
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no answer to {}",
                self.event
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
    let api = RuntimeApi::start(event).await;
    let mut process = Command::new(binary(name))
        .envs(environment)
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let outcome = api.outcome(&mut process).await;
    let _ = process.kill();
    let _ = process.wait();
    outcome
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

/// The API function creates a program (with the operator key) in the given environment.
async fn create_a_program(environment: Vec<(String, String)>) {
    let body = json!({"name": "Lambda runtime test"}).to_string();
    let mut event = apigw_event(
        "POST",
        "/v1/programs",
        Some("rw_op_lambda-runtime-test-operator-key"),
        Some(&body),
    );
    event["headers"]["content-type"] = json!("application/json");
    let answer = response(invoke_process_with("refwire-api", event, environment).await);
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
    let event: Value = serde_json::from_str(include_str!(
        "../../infra/events/dynamodb-stream-batch.json"
    ))
    .unwrap();
    let answer = response(invoke_process("refwire-fanout", event).await);
    assert_eq!(answer, json!({"batchItemFailures": []}));
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn the_delivery_binary_answers_an_sqs_event() {
    let event: Value =
        serde_json::from_str(include_str!("../../infra/events/sqs-delivery-batch.json")).unwrap();
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

    let tick: Value =
        serde_json::from_str(include_str!("../../infra/events/schedule-tick.json")).unwrap();
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
