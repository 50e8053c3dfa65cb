//! Test support shared by the integration tests: an app over a real store in a temp dir, driven
//! through the same `lambda_http` adapter the Lambda runtime uses, with real API Gateway v2 events.

pub mod local;
pub mod receiver;
pub mod script_receiver;
pub mod tls;

use axum::Router;
use chrono::TimeZone;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent};
use refwire_core::config::Config;
use refwire_core::deliveries::Dispatcher;
use refwire_core::programs::OperatorKey;
use refwire_core::service::Refwire;
use refwire_core::time::ManualClock;
use refwire_core::webhooks::url_rules::TargetPolicy;
use refwire_embedded::EmbeddedStore;
use refwire_local::{LocalRuntime, Workers};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

pub const OPERATOR_KEY: &str = "rw_op_test-operator-key";

/// The API Gateway HTTP API (payload 2.0) event every request is built from.
const APIGW_V2_FIXTURE: &str = include_str!("../infra/events/apigw-v2-request.json");

/// The Node.js that runs the test receivers and JavaScript checks: `REFWIRE_TEST_NODE` (scripts/test.sh
/// sets it to the one it installs into .venv), else `node` on the PATH.
pub fn node() -> String {
    std::env::var("REFWIRE_TEST_NODE").unwrap_or_else(|_| "node".into())
}

/// The Python with the receivers' packages: `REFWIRE_TEST_PYTHON` (scripts/test.sh sets it to
/// .venv's), else `python3` on the PATH.
pub fn python() -> String {
    std::env::var("REFWIRE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn start_time() -> refwire_core::time::Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap()
}

/// A request the API must refuse: method, path, body, then the status and the field it names.
pub type Refusal = (&'static str, String, Option<Value>, u16, &'static str);

/// A response as API Gateway would return it to the client.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Value,
    pub body: Value,
}

pub struct TestApp {
    pub app: Arc<Refwire>,
    pub store: Arc<EmbeddedStore>,
    pub clock: Arc<ManualClock>,
    /// The fan-out and delivery workers over the same store, sending over real HTTP.
    pub workers: Workers,
    /// The dispatcher the workers (and the Lambda handlers) drive.
    pub dispatcher: Arc<Dispatcher>,
    pub program_id: String,
    pub secret_key: String,
    pub publishable_key: String,
    router: Router,
    dir: tempfile::TempDir,
}

impl TestApp {
    /// A fresh data file with one program (default settings) and its keys; production URL rules.
    pub async fn new() -> TestApp {
        TestApp::with_policy(TargetPolicy::Strict).await
    }

    /// As [`TestApp::new`], but webhooks may target receivers on 127.0.0.1, as with
    /// `refwire-local --allow-loopback-http`.
    pub async fn with_loopback_receivers() -> TestApp {
        TestApp::with_policy(TargetPolicy::AllowLoopbackHttp).await
    }

    async fn with_policy(target_policy: TargetPolicy) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("refwire.db")).unwrap());
        let clock = Arc::new(ManualClock::new(start_time()));
        let config = Config {
            operator_key: Some(OperatorKey::from_plaintext(OPERATOR_KEY)),
            target_policy,
            ..Config::default()
        };
        let LocalRuntime {
            app,
            dispatcher,
            workers,
            ..
        } = LocalRuntime::compose(store.as_ref().clone(), clock.clone(), config).unwrap();
        let created = app.create_program("Test program", None).await.unwrap();
        TestApp {
            router: refwire_api::router(app.clone()),
            program_id: created.program.id.into(),
            secret_key: created.secret_key,
            publishable_key: created.publishable_key,
            app,
            store,
            clock,
            workers,
            dispatcher,
            dir,
        }
    }

    /// The SQLite file the store writes.
    pub fn data_file(&self) -> std::path::PathBuf {
        self.dir.path().join("refwire.db")
    }

    /// Serves the same Router over real TCP on 127.0.0.1 (for truly parallel clients); returns its URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = self.router.clone();
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    /// Sends a request through `lambda_http` as the Lambda runtime would: an API Gateway v2 event
    /// deserialised into the runtime's request type, the adapter, and the serialised response.
    pub async fn call(
        &self,
        method: &str,
        path_and_query: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> ApiResponse {
        let event = apigw_event(method, path_and_query, key, body);
        self.invoke(event).await
    }

    pub async fn invoke(&self, event: Value) -> ApiResponse {
        invoke_router(&self.router, event).await
    }

    /// As [`TestApp::invoke`], returning API Gateway's whole response JSON.
    pub async fn invoke_raw(&self, event: Value) -> Value {
        invoke_router_raw(&self.router, event).await
    }

    pub async fn secret(&self, method: &str, path: &str, body: Option<Value>) -> ApiResponse {
        let body = body.map(|body| body.to_string());
        self.call(method, path, Some(&self.secret_key), body.as_deref())
            .await
    }

    /// Creates a referral for `user_id` and returns its code.
    pub async fn create_referral(&self, user_id: &str) -> String {
        let response = self
            .secret(
                "POST",
                "/v1/api/referral/create",
                Some(json!({"user_id": user_id})),
            )
            .await;
        assert!(matches!(response.status, 200 | 201), "{response:?}");
        response.body["referral_code"].as_str().unwrap().to_string()
    }

    pub async fn milestone(
        &self,
        code: &str,
        milestone: &str,
        referee: Option<&str>,
    ) -> ApiResponse {
        let mut body = json!({"referral_code": code, "milestone": milestone});
        if let Some(referee) = referee {
            body["referred_user_id"] = json!(referee);
        }
        self.secret("POST", "/v1/api/referral/milestone", Some(body))
            .await
    }

    /// Sends each secret-key request and asserts it is refused with `status` in the JSON error
    /// shape, naming `field` when one is given (`""`: none checked).
    pub async fn assert_refused(&self, cases: &[Refusal]) {
        for (method, path, body, status, field) in cases {
            let response = self.secret(method, path, body.clone()).await;
            assert_eq!(
                response.status, *status,
                "{method} {path} {body:?}: {response:?}"
            );
            assert!(response.body["error"]["code"].is_string(), "{response:?}");
            if !field.is_empty() {
                assert_eq!(
                    response.body["error"]["field"], *field,
                    "{method} {path}: {response:?}"
                );
            }
        }
    }

    /// All outbox events of the test program, oldest first.
    pub async fn events(&self) -> Vec<refwire_core::events::OutboxEvent> {
        use refwire_core::ports::EventStore;
        self.store
            .list_events(&self.program_id, None, 10_000)
            .await
            .unwrap()
    }

    /// Everything a request could change: settings, every referral and every outbox event.
    pub async fn snapshot(&self) -> Value {
        use refwire_core::ports::{ReferralQuery, ReferralStore};
        let referrals = self
            .store
            .list_referrals(
                &self.program_id,
                &ReferralQuery::default(),
                10_000,
                refwire_core::time::Clock::now(self.clock.as_ref()),
            )
            .await
            .unwrap();
        let settings = self.store_program().await.settings;
        json!({
            "settings": serde_json::to_value(settings).unwrap(),
            "referrals": serde_json::to_value(&referrals.referrals).unwrap(),
            "events": serde_json::to_value(self.events().await).unwrap(),
        })
    }

    async fn store_program(&self) -> refwire_core::programs::Program {
        use refwire_core::ports::ProgramStore;
        self.store
            .get_program(&self.program_id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Creates a webhook from `fields` (name and events defaulted) and returns (id, signing secret).
    pub async fn create_webhook(&self, url: &str, fields: Value) -> (String, String) {
        let mut body = json!({"name": "test hook", "url": url, "events": ["*"]});
        for (name, value) in fields.as_object().expect("an object of fields") {
            body[name] = value.clone();
        }
        let response = self.secret("POST", "/v1/webhooks", Some(body)).await;
        assert_eq!(response.status, 201, "{response:?}");
        (
            response.body["id"].as_str().unwrap().to_string(),
            response.body["signing_secret"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    /// Runs the fan-out and delivery workers until nothing is due at the current (manual) time.
    pub async fn pump(&self) {
        self.workers.run_until_idle().await.unwrap();
    }

    /// Moves the clock forward, then runs whatever became due.
    pub async fn advance_and_pump(&self, seconds: i64) {
        self.clock.advance(chrono::Duration::seconds(seconds));
        self.pump().await;
    }

    /// A webhook's delivery log, newest first.
    pub async fn deliveries(&self, webhook_id: &str) -> Vec<Value> {
        let response = self
            .secret(
                "GET",
                &format!("/v1/webhooks/{webhook_id}/deliveries"),
                None,
            )
            .await;
        assert_eq!(response.status, 200, "{response:?}");
        response.body["deliveries"].as_array().unwrap().clone()
    }

    /// One delivery with its attempt log.
    pub async fn delivery(&self, delivery_id: &str) -> Value {
        let response = self
            .secret("GET", &format!("/v1/deliveries/{delivery_id}"), None)
            .await;
        assert_eq!(response.status, 200, "{response:?}");
        response.body
    }

    pub async fn event_names(&self) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .map(|event| event.event)
            .collect()
    }
}

/// `REFWIRE_TEST_AWS_ENDPOINT`: the moto server scripts/test.sh starts on 127.0.0.1.
pub const AWS_ENDPOINT_ENV: &str = "REFWIRE_TEST_AWS_ENDPOINT";

/// SDK configuration for the moto server: its endpoint, a fixed region, dummy credentials.
pub async fn moto_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var(AWS_ENDPOINT_ENV).unwrap_or_else(|_| {
        panic!("{AWS_ENDPOINT_ENV} is not set: run the tests with scripts/test.sh, which starts moto server")
    });
    refwire_aws::config::sdk_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "moto", "moto", None, None, "moto",
        ))
        .load()
        .await
}

/// A fresh copy of what template.yaml creates for the functions, on moto: the table, the deliveries
/// queue and a schedule group, named uniquely so tests can run side by side.
pub async fn moto_stack(sdk: &aws_config::SdkConfig) -> refwire_aws::config::AwsSettings {
    use refwire_core::ids::Ids;
    let suffix = refwire_core::ids::RandomIds.new_id("t");
    let table = format!("refwire-{suffix}");
    refwire_aws::dynamo::table::create(&aws_sdk_dynamodb::Client::new(sdk), &table)
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("deliveries-{suffix}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(arn.clone())
        .send()
        .await
        .unwrap();
    let queue_arn = attributes.attributes.unwrap()[&arn].clone();
    let schedule_group = format!("refwire-{suffix}");
    aws_sdk_scheduler::Client::new(sdk)
        .create_schedule_group()
        .name(&schedule_group)
        .send()
        .await
        .unwrap();
    refwire_aws::config::AwsSettings {
        table,
        queue: refwire_aws::queue::QueueTarget {
            queue_url,
            queue_arn,
            schedule_group,
            scheduler_role_arn: "arn:aws:iam::123456789012:role/refwire-scheduler".into(),
        },
    }
}

/// Runs `event` through `lambda_http` as the Lambda runtime would: an API Gateway v2 event
/// deserialised into the runtime's request type, the adapter over `router`, the serialised response.
pub async fn invoke_router(router: &Router, event: Value) -> ApiResponse {
    let response = invoke_router_raw(router, event).await;
    let body = response["body"].as_str().unwrap_or_default();
    ApiResponse {
        status: response["statusCode"].as_u64().unwrap() as u16,
        headers: response["headers"].clone(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

/// The API Gateway v2 response JSON itself, for what [`ApiResponse`] leaves out (non-JSON bodies,
/// `cookies`).
pub async fn invoke_router_raw(router: &Router, event: Value) -> Value {
    let request: LambdaRequest = serde_json::from_value(event).expect("a valid API Gateway event");
    let adapter = Adapter::from(router.clone());
    let response = adapter
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the adapter never fails");
    serde_json::to_value(response).unwrap()
}

/// Builds an API Gateway HTTP API event from the recorded fixture.
pub fn apigw_event(
    method: &str,
    path_and_query: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Value {
    let mut event: Value = serde_json::from_str(APIGW_V2_FIXTURE).unwrap();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!(query);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    let headers = event["headers"].as_object_mut().unwrap();
    headers.remove("content-length");
    if let Some(key) = key {
        headers.insert("x-api-key".into(), json!(key));
    }
    match body {
        Some(body) => event["body"] = json!(body),
        None => {
            event.as_object_mut().unwrap().remove("body");
        }
    }
    event
}
