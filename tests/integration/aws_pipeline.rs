//! The serverless pipeline on moto server: the API handler with API Gateway v2 events -> DynamoDB ->
//! records read from the table's stream, handed to the fan-out handler as a DynamoDB stream event ->
//! SQS -> messages handed to the delivery handler as an SQS event -> a local HTTP receiver. Retries
//! go back through SQS with a delay, and a long one through an EventBridge Scheduler schedule.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use refwire_aws::config::AwsSettings;
use refwire_core::config::Config;
use refwire_core::conflicts::Versioned;
use refwire_core::deliveries::Dispatcher;
use refwire_core::service::Refwire;
use refwire_core::webhooks::url_rules::TargetPolicy;
use refwire_sender::HttpSender;
use refwire_tests::receiver::{Receiver, Reply};
use refwire_tests::{ApiResponse, apigw_event, invoke_router, moto_config, moto_stack};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";

/// Everything template.yaml would create, on moto, with the API and the two handlers wired to it.
pub(crate) struct Stack {
    router: axum::Router,
    dispatcher: Arc<Dispatcher>,
    /// The DynamoDB store the handlers use, for setting up states the API does not reach.
    store: Arc<dyn refwire_core::ports::Store>,
    sqs: aws_sdk_sqs::Client,
    scheduler: aws_sdk_scheduler::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    settings: AwsSettings,
    stream_arn: String,
    /// Where the next stream read starts, per shard.
    shard_iterators: Vec<String>,
    secret_key: String,
}

/// Records the name of every AWS operation a client starts.
#[derive(Debug, Clone, Default)]
struct CallLog(Arc<std::sync::Mutex<Vec<String>>>);

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    // After serialisation the operation's metadata is in the bag; it runs once per call, retries
    // included.
    fn read_after_serialization(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(operation) = cfg.load::<Metadata>() {
            self.0.lock().unwrap().push(operation.name().to_string());
        }
        Ok(())
    }
}

impl CallLog {
    /// The operations since the last call, counted by name.
    fn take(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for operation in self.0.lock().unwrap().drain(..) {
            *counts.entry(operation).or_insert(0) += 1;
        }
        counts
    }
}

impl Stack {
    pub(crate) async fn new() -> Stack {
        Stack::counting(CallLog::default()).await
    }

    /// A stack whose API and handlers log every AWS call they make into `calls`.
    async fn counting(calls: CallLog) -> Stack {
        let sdk = moto_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let scheduler = aws_sdk_scheduler::Client::new(&sdk);
        let settings = moto_stack(&sdk).await;
        let table = settings.table.clone();
        let deps = refwire_lambda::deps_with_clients(
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&sdk)
                    .interceptor(calls.clone())
                    .build(),
            ),
            aws_sdk_scheduler::Client::from_conf(
                aws_sdk_scheduler::config::Builder::from(&sdk)
                    .interceptor(calls)
                    .build(),
            ),
            &settings,
        );
        // The receiver listens on 127.0.0.1; production runs with TargetPolicy::Strict.
        let config = Config {
            target_policy: TargetPolicy::AllowLoopbackHttp,
            ..Config::default()
        };
        let sender = HttpSender::new(config.target_policy).unwrap();
        let dispatcher = Arc::new(Dispatcher::new(
            deps.clone(),
            Arc::new(sender),
            config.clone(),
        ));
        let store = deps.store.clone();
        let app = Arc::new(Refwire::new(deps, config));
        let created = app.create_program("AWS pipeline", None).await.unwrap();

        let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
        let stream_arn = dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap()
            .latest_stream_arn
            .unwrap();
        let mut stack = Stack {
            router: refwire_api::router(app),
            dispatcher,
            store,
            sqs,
            scheduler,
            streams,
            settings,
            stream_arn,
            shard_iterators: Vec::new(),
            secret_key: created.secret_key,
        };
        stack.shard_iterators = stack.open_shards().await;
        stack
    }

    async fn open_shards(&self) -> Vec<String> {
        let description = self
            .streams
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .unwrap();
        let mut iterators = Vec::new();
        for shard in description
            .stream_description
            .unwrap()
            .shards
            .unwrap_or_default()
        {
            let iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(shard.shard_id.unwrap())
                .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap();
            iterators.push(iterator.shard_iterator.unwrap());
        }
        iterators
    }

    /// An API Gateway event as the API function would get it.
    pub(crate) async fn invoke(&self, event: Value) -> ApiResponse {
        invoke_router(&self.router, event).await
    }

    pub(crate) async fn api(&self, method: &str, path: &str, body: Option<Value>) -> ApiResponse {
        let body = body.map(|body| body.to_string());
        invoke_router(
            &self.router,
            apigw_event(method, path, Some(&self.secret_key), body.as_deref()),
        )
        .await
    }

    /// New stream records, in the JSON shape Lambda hands the fan-out function.
    async fn stream_event(&mut self) -> Value {
        let mut records = Vec::new();
        for iterator in &mut self.shard_iterators {
            let output = self
                .streams
                .get_records()
                .shard_iterator(iterator.as_str())
                .send()
                .await
                .unwrap();
            for record in output.records.unwrap_or_default() {
                let change = record.dynamodb.unwrap();
                let image = |item: Option<std::collections::HashMap<_, _>>| {
                    serde_json::to_value(serde_dynamo::Item::from(item.unwrap_or_default()))
                        .unwrap()
                };
                records.push(json!({
                    "eventID": record.event_id,
                    "eventName": record.event_name.unwrap().as_str(),
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": REGION,
                    "eventSourceARN": self.stream_arn,
                    "dynamodb": {
                        "ApproximateCreationDateTime": change.approximate_creation_date_time.map_or(0, |at| at.secs()),
                        "Keys": image(change.keys),
                        "NewImage": image(change.new_image),
                        "SequenceNumber": change.sequence_number,
                        "SizeBytes": change.size_bytes,
                        "StreamViewType": "NEW_IMAGE",
                    },
                }));
            }
            if let Some(next) = output.next_shard_iterator {
                *iterator = next;
            }
        }
        json!({ "Records": records })
    }

    /// Runs the fan-out handler on everything new in the stream.
    pub(crate) async fn fan_out(&mut self) {
        let event: StreamEvent = serde_json::from_value(self.stream_event().await).unwrap();
        let response = refwire_fanout::handle(&self.dispatcher, event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }

    /// Receives what the queue has, waiting up to `wait_seconds` for something, as the SQS event
    /// Lambda would deliver. Short polls: moto serves one request at a time, so a long poll would
    /// hold up the other tests.
    async fn receive(&self, wait_seconds: u64) -> (Value, Vec<(String, String)>) {
        let started = Instant::now();
        let output = loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.settings.queue.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if output
                .messages
                .as_ref()
                .is_some_and(|messages| !messages.is_empty())
                || started.elapsed() >= Duration::from_secs(wait_seconds)
            {
                break output;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let messages = output.messages.unwrap_or_default();
        let records: Vec<Value> = messages
            .iter()
            .map(|message| {
                json!({
                    "messageId": message.message_id,
                    "receiptHandle": message.receipt_handle,
                    "body": message.body,
                    "md5OfBody": message.md5_of_body,
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "moto", "ApproximateFirstReceiveTimestamp": "0"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.settings.queue.queue_arn,
                    "awsRegion": REGION,
                })
            })
            .collect();
        let handles = messages
            .into_iter()
            .map(|message| (message.message_id.unwrap(), message.receipt_handle.unwrap()))
            .collect();
        (json!({ "Records": records }), handles)
    }

    /// Hands the queue's messages to the delivery handler and deletes the ones it finished, as the
    /// event source mapping does; returns how many it handled.
    pub(crate) async fn deliver(&self, wait_seconds: u64) -> usize {
        let (event, handles) = self.receive(wait_seconds).await;
        let event: SqsEvent = serde_json::from_value(event).unwrap();
        let response = refwire_delivery::handle(Arc::clone(&self.dispatcher), event)
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        for (_, receipt_handle) in &handles {
            self.sqs
                .delete_message()
                .queue_url(&self.settings.queue.queue_url)
                .receipt_handle(receipt_handle)
                .send()
                .await
                .unwrap();
        }
        handles.len()
    }
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn the_serverless_pipeline_delivers_and_retries_through_sqs_and_scheduler() {
    let mut stack = Stack::new().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(503)]);
    let created = stack
        .api(
            "POST",
            "/v1/webhooks",
            Some(json!({"name": "crm", "url": receiver.url, "events": ["referral.created"], "retry_schedule": [2, 3600]})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let webhook_id = created.body["id"].as_str().unwrap().to_string();
    let secret = created.body["signing_secret"].as_str().unwrap().to_string();

    let referral = stack
        .api(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_123"})),
        )
        .await;
    assert_eq!(referral.status, 201, "{referral:?}");
    stack.fan_out().await;

    // Attempt 1 fails; attempt 2 waits in SQS with DelaySeconds=2.
    assert_eq!(stack.deliver(1).await, 1);
    assert_eq!(receiver.received().len(), 1);
    let sent_retry = Instant::now();
    let deliveries = stack
        .api(
            "GET",
            &format!("/v1/webhooks/{webhook_id}/deliveries"),
            None,
        )
        .await;
    let delivery = &deliveries.body["deliveries"][0];
    assert_eq!(
        (delivery["state"].as_str(), delivery["last_status"].as_u64()),
        (Some("retrying"), Some(500))
    );
    let delivery_id = delivery["id"].as_str().unwrap().to_string();
    let mut handled = 0;
    while handled == 0 {
        handled = stack.deliver(1).await;
        assert!(
            sent_retry.elapsed() < Duration::from_secs(20),
            "the delayed retry never arrived"
        );
    }
    assert!(
        sent_retry.elapsed() >= Duration::from_secs(1),
        "the SQS delay was not applied"
    );
    assert_eq!(receiver.received().len(), 2);

    // Attempt 3 is an hour away: beyond SQS's 15 minutes, so it is a one-time schedule.
    let schedule_name = format!("{delivery_id}-3");
    let schedule = stack
        .scheduler
        .get_schedule()
        .group_name(&stack.settings.queue.schedule_group)
        .name(&schedule_name)
        .send()
        .await
        .expect("attempt 3 is scheduled");
    let expression = schedule.schedule_expression.clone().unwrap();
    let due = chrono::NaiveDateTime::parse_from_str(&expression, "at(%Y-%m-%dT%H:%M:%S)")
        .expect(&expression)
        .and_utc();
    let from_now = due - chrono::Utc::now();
    assert!(
        (3500..=3600).contains(&from_now.num_seconds()),
        "{expression}"
    );
    assert_eq!(
        schedule.schedule_expression_timezone.as_deref(),
        Some("UTC")
    );
    assert_eq!(
        schedule
            .action_after_completion
            .as_ref()
            .map(|action| action.as_str()),
        Some("DELETE")
    );
    assert_eq!(
        schedule
            .flexible_time_window
            .as_ref()
            .map(|window| window.mode.as_str()),
        Some("OFF")
    );
    let target = schedule.target.clone().unwrap();
    assert_eq!(target.arn, stack.settings.queue.queue_arn);
    assert_eq!(target.role_arn, stack.settings.queue.scheduler_role_arn);
    let input = target.input.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&input).unwrap(),
        json!({"delivery_id": delivery_id, "attempt": 3, "webhook_id": webhook_id})
    );
    assert_eq!(
        stack.deliver(0).await,
        0,
        "nothing else is queued meanwhile"
    );

    // The schedule fires: Scheduler sends its input to the queue.
    stack
        .sqs
        .send_message()
        .queue_url(&stack.settings.queue.queue_url)
        .message_body(input)
        .send()
        .await
        .unwrap();
    assert_eq!(stack.deliver(1).await, 1);
    let received = receiver.received();
    assert_eq!(receiver.attempts(), ["1", "2", "3"]);
    for request in &received {
        assert_eq!(request.header("x-webhook-event"), "referral.created");
        assert_eq!(
            request.header("x-webhook-signature"),
            refwire_core::deliveries::signing::legacy_hex_signature(&secret, &request.body)
        );
    }
    let delivery = stack
        .api("GET", &format!("/v1/deliveries/{delivery_id}"), None)
        .await;
    assert_eq!(delivery.body["state"], "succeeded");
    assert_eq!(delivery.body["attempt_log"].as_array().unwrap().len(), 3);

    // A redelivered stream record or queue message sends nothing more.
    stack
        .sqs
        .send_message()
        .queue_url(&stack.settings.queue.queue_url)
        .message_body(json!({"delivery_id": delivery_id, "attempt": 3}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stack.deliver(1).await, 1);
    assert_eq!(receiver.received().len(), 3);
}

#[test]
fn the_tests_create_the_table_template_yaml_declares() {
    let template = include_str!("../../template.yaml");
    for (index, partition, sort) in refwire_aws::dynamo::table::KEYS {
        if let Some(index) = index {
            assert!(template.contains(&format!("IndexName: {index}")), "{index}");
        }
        for (attribute, key_type) in [(partition, "HASH"), (sort, "RANGE")] {
            assert!(
                template.contains(&format!(
                    "{{ AttributeName: {attribute}, AttributeType: S }}"
                )),
                "{attribute}"
            );
            assert!(
                template.contains(&format!(
                    "{{ AttributeName: {attribute}, KeyType: {key_type} }}"
                )),
                "{attribute}"
            );
        }
    }
    for index in refwire_aws::dynamo::table::KEYS_ONLY_INDEXES {
        let declared = template
            .split("- IndexName: ")
            .find(|section| section.starts_with(index))
            .unwrap();
        assert!(declared.contains("ProjectionType: KEYS_ONLY"), "{index}");
    }
    let (local_index, local_sort) = refwire_aws::dynamo::table::LOCAL_INDEX;
    assert!(template.contains(&format!("IndexName: {local_index}")));
    for expected in [
        format!("{{ AttributeName: {local_sort}, AttributeType: S }}"),
        format!("{{ AttributeName: {local_sort}, KeyType: RANGE }}"),
    ] {
        assert!(template.contains(&expected), "{expected}");
    }
    assert!(template.contains("StreamViewType: NEW_IMAGE"));
    assert!(template.contains("AttributeName: ttl"));
}

/// The AWS operations behind the main routes and one delivery, measured on moto. README's table
/// ("Cost per call") is this table; the test keeps them in step.
const OPERATIONS_PER_CALL: &[(&str, &[(&str, usize)])] = &[
    (
        "POST /v1/webhooks",
        &[("GetItem", 1), ("TransactWriteItems", 1)],
    ),
    (
        "POST /v1/api/referral/create",
        &[("GetItem", 4), ("TransactWriteItems", 1)],
    ),
    (
        "POST /v1/api/referral/milestone (signed_up)",
        &[("GetItem", 5), ("TransactWriteItems", 1)],
    ),
    (
        "POST /v1/api/referral/milestone (completes)",
        &[("GetItem", 6), ("TransactWriteItems", 1)],
    ),
    (
        "POST /v1/api/referral/claim-reward",
        &[("GetItem", 4), ("TransactWriteItems", 1)],
    ),
    ("GET /v1/api/referral/{code}", &[("GetItem", 3)]),
    (
        "fan-out of one event to 1 webhook",
        &[
            ("Query", 1),
            ("SendMessageBatch", 1),
            ("TransactWriteItems", 1),
        ],
    ),
    (
        "delivery attempt that succeeds",
        &[("GetItem", 3), ("TransactWriteItems", 2)],
    ),
    (
        "POST /v1/participants",
        &[("GetItem", 3), ("TransactWriteItems", 1)],
    ),
    (
        "POST /v1/participants (with a participant's code)",
        &[("GetItem", 11), ("TransactWriteItems", 3)],
    ),
    (
        "POST /v1/participants/{id}/qualify",
        &[("GetItem", 10), ("TransactWriteItems", 2)],
    ),
    (
        "POST /webhook/{token}/qualify",
        &[("GetItem", 11), ("TransactWriteItems", 2)],
    ),
    (
        "POST /v1/waitlists/{id}/signups (new person, referred: boosts the referrer)",
        &[("GetItem", 16), ("Query", 2), ("TransactWriteItems", 4)],
    ),
    (
        "GET /v1/waitlists/{id}/signups/{signup_id}",
        &[("GetItem", 3), ("Query", 1)],
    ),
    (
        "GET /v1/api/referral/stats (10 referrals)",
        &[("BatchGetItem", 1), ("GetItem", 1), ("Query", 1)],
    ),
    (
        "GET /v1/api/referral/leaderboard (10 referrals)",
        &[("GetItem", 1), ("Query", 1)],
    ),
    (
        "GET /v1/api/referral/stats (10,000 referrals)",
        &[("BatchGetItem", 1), ("GetItem", 1), ("Query", 1)],
    ),
    (
        "GET /v1/api/referral/leaderboard (10,000 referrals)",
        &[("GetItem", 1), ("Query", 1)],
    ),
];

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn numbers_keep_the_callers_digits_through_dynamodb_its_stream_and_sqs() {
    let mut stack = Stack::new().await;
    let receiver = Receiver::start().await;
    let hook = json!({"name": "numbers", "url": receiver.url, "events": ["link.clicked", "referral.completed"]});
    assert_eq!(
        stack.api("POST", "/v1/webhooks", Some(hook)).await.status,
        201
    );
    let settings = json!({"reward_type": "credit", "reward_value": 5});
    let updated = stack
        .api("PUT", "/v1/api/referral/settings", Some(settings))
        .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    let data = r#"{"n":99999999999999999999999999999,"x":5,"y":5.0,"z":0.1,"e":1.50e-7}"#;
    let custom: Value =
        serde_json::from_str(&format!(r#"{{"event": "link.clicked", "data": {data}}}"#)).unwrap();
    assert_eq!(
        stack.api("POST", "/v1/events", Some(custom)).await.status,
        202
    );
    let created = stack
        .api(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_123"})),
        )
        .await;
    let code = created.body["referral_code"].as_str().unwrap().to_string();
    for milestone in [
        json!({"referral_code": code, "milestone": "signed_up", "referred_user_id": "user_456"}),
        json!({"referral_code": code, "milestone": "completed"}),
    ] {
        let reached = stack
            .api("POST", "/v1/api/referral/milestone", Some(milestone))
            .await;
        assert_eq!(reached.status, 200, "{reached:?}");
    }

    // The stream event as bytes, as the Lambda runtime parses it, and the image as fan-out reads it.
    let stream_text = stack.stream_event().await.to_string();
    let batch: StreamEvent = serde_json::from_str(&stream_text).unwrap();
    let clicked = batch
        .records
        .iter()
        .filter_map(|record| {
            refwire_aws::dynamo::outbox_event_from_image(record.change.new_image.clone()).unwrap()
        })
        .find(|event| event.event == "link.clicked")
        .expect("the custom event is in the stream");
    assert_eq!(clicked.data.to_string(), data);
    let response = refwire_fanout::handle(&stack.dispatcher, batch).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let started = Instant::now();
    while receiver.received().len() < 2 {
        stack.deliver(1).await;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "deliveries missing"
        );
    }

    receiver.assert_numbers_kept(data);
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn operations_per_call_are_as_documented() {
    let calls = CallLog::default();
    let mut stack = Stack::counting(calls.clone()).await;
    let receiver = Receiver::start().await;
    let mut measured: Vec<(&str, std::collections::BTreeMap<String, usize>)> = Vec::new();
    calls.take();

    let hook = json!({"name": "crm", "url": receiver.url, "events": ["referral.completed"]});
    assert_eq!(
        stack.api("POST", "/v1/webhooks", Some(hook)).await.status,
        201
    );
    measured.push(("POST /v1/webhooks", calls.take()));
    let created = stack
        .api(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_123"})),
        )
        .await;
    measured.push(("POST /v1/api/referral/create", calls.take()));
    let code = created.body["referral_code"].as_str().unwrap().to_string();
    let signed_up =
        json!({"referral_code": code, "milestone": "signed_up", "referred_user_id": "user_456"});
    assert_eq!(
        stack
            .api("POST", "/v1/api/referral/milestone", Some(signed_up))
            .await
            .status,
        200
    );
    measured.push(("POST /v1/api/referral/milestone (signed_up)", calls.take()));
    let completed = json!({"referral_code": code, "milestone": "completed"});
    assert_eq!(
        stack
            .api("POST", "/v1/api/referral/milestone", Some(completed))
            .await
            .status,
        200
    );
    measured.push(("POST /v1/api/referral/milestone (completes)", calls.take()));
    let claim = json!({"referral_code": code});
    assert_eq!(
        stack
            .api("POST", "/v1/api/referral/claim-reward", Some(claim))
            .await
            .status,
        200
    );
    measured.push(("POST /v1/api/referral/claim-reward", calls.take()));
    assert_eq!(
        stack
            .api("GET", &format!("/v1/api/referral/{code}"), None)
            .await
            .status,
        200
    );
    measured.push(("GET /v1/api/referral/{code}", calls.take()));

    // Of the stream's records, fan-out gets the referral.completed event (the webhook's one).
    let mut completed_only: StreamEvent =
        serde_json::from_value(stack.stream_event().await).unwrap();
    completed_only.records.retain(|record| {
        let event = refwire_aws::dynamo::outbox_event_from_image(record.change.new_image.clone());
        // Deletions (the open-referral pointer) have no new image: not an event either.
        matches!(event, Ok(Some(event)) if event.event == "referral.completed")
    });
    assert_eq!(completed_only.records.len(), 1);
    refwire_fanout::handle(&stack.dispatcher, completed_only).await;
    measured.push(("fan-out of one event to 1 webhook", calls.take()));
    let (batch, _) = stack.receive(5).await;
    let response = refwire_delivery::handle(
        Arc::clone(&stack.dispatcher),
        serde_json::from_value(batch).unwrap(),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(receiver.received().len(), 1);
    measured.push((
        "delivery attempt that succeeds",
        calls
            .take()
            .into_iter()
            .filter(|(name, _)| name != "ReceiveMessage")
            .collect(),
    ));

    // Participants and waitlists (fan-out and delivery of their events cost as above).
    let ann = stack
        .api(
            "POST",
            "/v1/participants",
            Some(json!({"email": "ann@example.com"})),
        )
        .await;
    assert_eq!(ann.status, 201, "{ann:?}");
    measured.push(("POST /v1/participants", calls.take()));
    let ann_code = ann.body["referral_code"].clone();
    let bob = stack
        .api(
            "POST",
            "/v1/participants",
            Some(json!({"email": "bob@example.com", "referral_code": ann_code})),
        )
        .await;
    assert_eq!(bob.status, 201, "{bob:?}");
    measured.push((
        "POST /v1/participants (with a participant's code)",
        calls.take(),
    ));
    let bob_id = bob.body["id"].as_str().unwrap();
    let qualified = stack
        .api("POST", &format!("/v1/participants/{bob_id}/qualify"), None)
        .await;
    assert_eq!(qualified.status, 200, "{qualified:?}");
    measured.push(("POST /v1/participants/{id}/qualify", calls.take()));
    let carol = stack
        .api(
            "POST",
            "/v1/participants",
            Some(json!({"email": "carol@example.com", "referral_code": ann_code})),
        )
        .await;
    let inbound = stack.api("POST", "/v1/inbound/rotate-token", None).await;
    let token = inbound.body["token"].as_str().unwrap();
    calls.take();
    let form = format!("code={}", carol.body["referral_code"].as_str().unwrap());
    let mut event = apigw_event(
        "POST",
        &format!("/webhook/{token}/qualify"),
        None,
        Some(&form),
    );
    event["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
    assert_eq!(stack.invoke(event).await.status, 200);
    measured.push(("POST /webhook/{token}/qualify", calls.take()));
    let waitlist = stack
        .api("POST", "/v1/waitlists", Some(json!({"name": "Launch"})))
        .await;
    let signups = format!(
        "/v1/waitlists/{}/signups",
        waitlist.body["id"].as_str().unwrap()
    );
    let dave = stack
        .api("POST", &signups, Some(json!({"email": "dave@example.com"})))
        .await;
    stack
        .api("POST", &signups, Some(json!({"email": "erin@example.com"})))
        .await;
    calls.take();
    let referred = json!({"email": "fay@example.com", "referral_code": dave.body["referral_code"]});
    let boosted = stack.api("POST", &signups, Some(referred)).await;
    assert_eq!(boosted.status, 201, "{boosted:?}");
    measured.push((
        "POST /v1/waitlists/{id}/signups (new person, referred: boosts the referrer)",
        calls.take(),
    ));
    let read = stack
        .api(
            "GET",
            &format!("{signups}/{}", dave.body["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(read.body["position"], 1);
    measured.push(("GET /v1/waitlists/{id}/signups/{signup_id}", calls.take()));

    // Stats and the leaderboard cost the same at any program size.
    for (referrers, per_referrer, stats_call, leaderboard_call) in [
        (
            1,
            10,
            "GET /v1/api/referral/stats (10 referrals)",
            "GET /v1/api/referral/leaderboard (10 referrals)",
        ),
        (
            100,
            100,
            "GET /v1/api/referral/stats (10,000 referrals)",
            "GET /v1/api/referral/leaderboard (10,000 referrals)",
        ),
    ] {
        let started = Instant::now();
        let key = program_of(&stack, referrers, per_referrer).await;
        let size = referrers * per_referrer;
        println!("wrote {size} referrals in {:.1?}", started.elapsed());
        calls.take();
        let call = |path: &str| stack.invoke(apigw_event("GET", path, Some(&key), None));
        let stats = call("/v1/api/referral/stats").await;
        let tenth = size / 10;
        assert_eq!(
            stats.body,
            json!({"total": size, "pending": tenth, "completed": 6 * tenth, "expired": 3 * tenth,
                   "conversion_rate": 0.6, "rewards_claimed": 3 * tenth})
        );
        measured.push((stats_call, calls.take()));
        let board = call("/v1/api/referral/leaderboard").await.body;
        let board = board["leaderboard"].as_array().unwrap().clone();
        assert_eq!(board.len(), referrers.min(25));
        assert_eq!(
            board[0],
            json!({"rank": 1, "referrer_id": "referrer_zqcopy00", "user_name": "Referrer zqcopy00",
                   "total": per_referrer, "completed": per_referrer / 10 * 6,
                   "pending": per_referrer / 10})
        );
        assert_eq!(
            board.last().unwrap()["referrer_id"],
            format!("referrer_zqcopy{:02}", board.len() - 1)
        );
        measured.push((leaderboard_call, calls.take()));
    }

    let cost = |call: &str| &measured.iter().find(|(named, _)| *named == call).unwrap().1;
    for call in ["stats", "leaderboard"] {
        assert_eq!(
            cost(&format!("GET /v1/api/referral/{call} (10 referrals)")),
            cost(&format!("GET /v1/api/referral/{call} (10,000 referrals)")),
            "{call} costs the same at any program size"
        );
    }
    println!("| call | AWS operations |\n|---|---|");
    for (call, operations) in &measured {
        let listed: Vec<String> = operations
            .iter()
            .map(|(name, count)| format!("{name} x{count}"))
            .collect();
        println!("| {call} | {} |", listed.join(", "));
    }
    let documented: Vec<(&str, std::collections::BTreeMap<String, usize>)> = OPERATIONS_PER_CALL
        .iter()
        .map(|(call, operations)| {
            (
                *call,
                operations
                    .iter()
                    .map(|(name, count)| (name.to_string(), *count))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(measured, documented);
}

/// Stands for the copy number in every identifier of the referrals `program_of` writes.
const COPY: &str = "zqcopy00";

/// A program of `referrers` referrers with `per_referrer` referrals each, every one with a referee:
/// of every ten, six completed (three with the referrer's reward claimed), three expired and one
/// pending. Returns the program's secret key.
///
/// One referrer's referrals go through the DynamoDB store's own insert (into a scratch table: moto
/// copies the whole table on every transaction, and keeps much of each copy, so 10,000 inserts
/// would take many minutes and gigabytes); the other referrers get copies of every item it wrote,
/// with `COPY` in their identifiers renumbered, and the program's counts items times the copies
/// (counts add up, whichever item holds them).
async fn program_of(stack: &Stack, referrers: usize, per_referrer: usize) -> String {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    use refwire_core::ids::{Ids, RandomIds};
    use refwire_core::programs::{KeyKind, Program, issue_key};
    let now = chrono::Utc::now();
    let program = Program {
        id: RandomIds.new_id("prg").into(),
        name: format!("{referrers} x {per_referrer} referrals"),
        settings: Default::default(),
        created_at: now,
    };
    let key = issue_key(&program.id, KeyKind::Secret, now);
    stack
        .store
        .create_program(&program, std::slice::from_ref(&key.record))
        .await
        .unwrap();
    let client = aws_sdk_dynamodb::Client::new(&moto_config().await);
    let written = one_referrers_referrals(&client, &program, per_referrer).await;
    let mut puts = Vec::new();
    for item in written {
        if item["kind"].as_s().unwrap() == "COUNTS" {
            let mut counts = item.clone();
            for value in counts.values_mut() {
                if let Ok(number) = value.as_n() {
                    let total = number.parse::<usize>().unwrap() * referrers;
                    *value = AttributeValue::N(total.to_string());
                }
            }
            puts.push(counts);
            continue;
        }
        let text = serde_json::to_string(&serde_dynamo::Item::from(item)).unwrap();
        for copy in 0..referrers {
            let renamed = text.replace(COPY, &format!("zqcopy{copy:02}"));
            let item: serde_dynamo::Item = serde_json::from_str(&renamed).unwrap();
            puts.push(item.into());
        }
    }
    for batch in puts.chunks(25) {
        let requests = batch.iter().map(|item| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .unwrap(),
                )
                .build()
        });
        let output = client
            .batch_write_item()
            .request_items(&stack.settings.table, requests.collect())
            .send()
            .await
            .unwrap();
        assert!(output.unprocessed_items.unwrap_or_default().is_empty());
    }
    key.plaintext
}

/// Inserts `count` referrals of the referrer `referrer_<COPY>` in `program` (states as `program_of`
/// says) with the DynamoDB store into a scratch table with the table's keys only (inserts read by
/// key), and returns every item written.
async fn one_referrers_referrals(
    client: &aws_sdk_dynamodb::Client,
    program: &refwire_core::programs::Program,
    count: usize,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    use refwire_core::events::OutboxEvent;
    use refwire_core::ids::{Ids, RandomIds};
    use refwire_core::ports::ReferralStore;
    use refwire_core::referrals::{NewReferral, Referral, ReferralStatus, RewardSide};
    let scratch = RandomIds.new_id("scratch");
    let mut table = client
        .create_table()
        .table_name(&scratch)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, key_type) in [("pk", KeyType::Hash), ("sk", KeyType::Range)] {
        table = table
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(key_type)
                    .build()
                    .unwrap(),
            );
    }
    table.send().await.unwrap();
    let store = refwire_aws::DynamoStore::new(client.clone(), scratch.clone());
    let settings = &program.settings;
    let now = chrono::Utc::now();
    for n in 0..count {
        let request = NewReferral {
            user_id: format!("referrer_{COPY}"),
            user_name: Some(format!("Referrer {COPY}")),
            ..Default::default()
        };
        let (mut referral, change) = Referral::open(
            request,
            settings,
            format!("ref_{COPY}_{n:04}"),
            program.id.clone(),
            format!("{COPY}{n:04}").into(),
            now,
        );
        let event = OutboxEvent::new(
            format!("evt_{COPY}_{n:04}"),
            &program.id,
            change.event,
            now,
            change.data,
        );
        let referee = format!("friend_{COPY}_{n:04}");
        match n % 10 {
            0 => referral.referred_user_id = Some(referee),
            1..=3 => {
                referral.referred_user_id = Some(referee);
                referral.status = ReferralStatus::Expired;
            }
            kind => {
                let milestone = &settings.referral_reward_milestone;
                referral
                    .record_milestone(settings, milestone, Some(&referee), now)
                    .unwrap();
                if kind <= 6 {
                    referral.claim_reward(RewardSide::Referrer).unwrap();
                }
            }
        }
        store
            .insert_referral(&referral, &event, None, now)
            .await
            .unwrap();
    }
    let items = client
        .scan()
        .table_name(&scratch)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    client
        .delete_table()
        .table_name(&scratch)
        .send()
        .await
        .unwrap();
    items
}

/// The DynamoDB cost of reading a waitlist position and of a boost in a large waitlist, measured
/// on moto: `scripts/bench.sh waitlist-costs` runs it (100,000 signups unless
/// `REFWIRE_WAITLIST_SIGNUPS` says otherwise). The default test run skips it: filling the waitlist
/// takes minutes. Moto answers a Query in one page whatever its size, so the pages and read units
/// AWS would use are derived from the measured size of one index entry, as DynamoDB bills them.
#[tokio::test]
#[ignore = "a measurement: scripts/bench.sh waitlist-costs"]
async fn waitlist_costs_at_scale() {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    use refwire_core::waitlists::rank;
    let signups: usize = std::env::var("REFWIRE_WAITLIST_SIGNUPS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(100_000);
    let calls = CallLog::default();
    let stack = Stack::counting(calls.clone()).await;
    let created = stack
        .api(
            "POST",
            "/v1/waitlists",
            Some(json!({"name": "Launch", "boost": 100})),
        )
        .await;
    let waitlist_id = created.body["id"].as_str().unwrap().to_string();
    let path = format!("/v1/waitlists/{waitlist_id}/signups");
    let first = stack
        .api("POST", &path, Some(json!({"email": "first@example.com"})))
        .await;
    assert_eq!(first.status, 201, "{first:?}");

    // The rest are copies of the first signup's item (as docs/dynamodb.md lays it out), written
    // with BatchWriteItem: moto copies every table on each transaction, so 100,000 joins through
    // the API would take hours there.
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto_config().await);
    let table = stack.settings.table.clone();
    let partition = AttributeValue::S(format!("WAITLIST#{waitlist_id}"));
    let get = |sk: String| {
        dynamodb
            .get_item()
            .table_name(&table)
            .key("pk", partition.clone())
            .key("sk", AttributeValue::S(sk))
    };
    let first_id = first.body["id"].as_str().unwrap();
    let template = get(format!("SIGNUP#{first_id}"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let entry_bytes: usize = template
        .iter()
        .map(|(name, value)| name.len() + value.as_s().or(value.as_n()).map_or(8, String::len))
        .sum();
    let mut doc: Value = serde_json::from_str(template["doc"].as_s().unwrap()).unwrap();
    let mut last_key = doc["rank"]
        .as_str()
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let mut batch = Vec::new();
    for n in 0..signups {
        let id = format!("00000000-0000-4000-8000-{n:012}");
        last_key = rank::between(Some(&last_key), None);
        doc["id"] = json!(id);
        doc["rank"] = json!(format!("{last_key}#{id}"));
        doc["email"] = json!(format!("bulk{n}@example.com"));
        doc["participant_id"] = json!(format!("par_bulk{n}"));
        let mut item = template.clone();
        item.insert("sk".into(), AttributeValue::S(format!("SIGNUP#{id}")));
        item.insert(
            "lsi1sk".into(),
            AttributeValue::S(format!("{last_key}#{id}")),
        );
        item.insert("doc".into(), AttributeValue::S(doc.to_string()));
        batch.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build(),
        );
        if batch.len() == 25 || n + 1 == signups {
            let output = dynamodb
                .batch_write_item()
                .request_items(&table, std::mem::take(&mut batch))
                .send()
                .await
                .unwrap();
            assert!(output.unprocessed_items.unwrap_or_default().is_empty());
        }
    }
    let mut waitlist = get("WAITLIST".into()).send().await.unwrap().item.unwrap();
    let mut waitlist_doc: Value = serde_json::from_str(waitlist["doc"].as_s().unwrap()).unwrap();
    waitlist_doc["signup_count"] = json!(signups + 1);
    waitlist.insert("doc".into(), AttributeValue::S(waitlist_doc.to_string()));
    dynamodb
        .put_item()
        .table_name(&table)
        .set_item(Some(waitlist))
        .send()
        .await
        .unwrap();
    eprintln!("filled {signups} signups in {:?}", started.elapsed());

    let last = signups as u64 + 2;
    let ann = stack
        .api("POST", &path, Some(json!({"email": "ann@example.com"})))
        .await;
    assert_eq!(ann.body["position"], last, "{ann:?}");
    let ann_signup = format!("{path}/{}", ann.body["id"].as_str().unwrap());
    calls.take();
    assert_eq!(
        stack.api("GET", &ann_signup, None).await.body["position"],
        last
    );
    let position_read = calls.take();
    let bob = json!({"email": "bob@example.com", "referral_code": ann.body["referral_code"]});
    assert_eq!(stack.api("POST", &path, Some(bob)).await.status, 201);
    let boosted_join = calls.take();
    assert_eq!(
        stack.api("GET", &ann_signup, None).await.body["position"],
        last - 100
    );

    // A position read counts the entries ahead through lsi1 (a strongly consistent Query); a boost
    // counts them once to learn the old position.
    let scanned = (last - 1) as usize * entry_bytes;
    let pages = scanned.div_ceil(1 << 20);
    let read_units = scanned.div_ceil(4096);
    println!(
        "index entry: {entry_bytes} bytes; counting {} entries reads {:.1} MB: {pages} Query pages and {read_units} read units on AWS",
        last - 1,
        scanned as f64 / 1e6
    );
    println!("| call at {signups} signups (last place) | operations on moto | on AWS |");
    println!("|---|---|---|");
    for (call, counts) in [
        ("GET /v1/waitlists/{id}/signups/{signup_id}", position_read),
        (
            "POST /v1/waitlists/{id}/signups (referred: boosts the last signup by 100)",
            boosted_join,
        ),
    ] {
        let operations: Vec<String> = counts
            .iter()
            .map(|(operation, count)| format!("{operation} ×{count}"))
            .collect();
        println!(
            "| `{call}` | {} | the Query counting the position: {pages} pages, {read_units} RCU |",
            operations.join(", ")
        );
    }
}

/// A counting stack whose webhook's receiver fails attempt 1 slowly (so that copies of its job
/// overlap) and then succeeds, with the one retry 2 s later; returns the first job as the SQS event
/// Lambda would hand over, with the message's receipt handle, and the call log emptied.
async fn a_failing_first_job(calls: &CallLog) -> (Stack, Receiver, Value, String) {
    let mut stack = Stack::counting(calls.clone()).await;
    let receiver = Receiver::start().await;
    receiver.script([
        Reply::status(500).after(Duration::from_millis(500)),
        Reply::status(200),
    ]);
    let created = stack
        .api(
            "POST",
            "/v1/webhooks",
            Some(json!({"name": "crm", "url": receiver.url, "events": ["referral.created"], "retry_schedule": [2]})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let referral = stack
        .api(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_123"})),
        )
        .await;
    assert_eq!(referral.status, 201, "{referral:?}");
    stack.fan_out().await;
    let (event, handles) = stack.receive(5).await;
    assert_eq!(handles.len(), 1, "{event}");
    calls.take();
    (stack, receiver, event, handles[0].1.clone())
}

/// After the duplicated first attempt: it reached the receiver once and queued one retry, which
/// then makes attempt 2, once.
async fn assert_one_send_per_attempt(
    stack: &Stack,
    receiver: &Receiver,
    calls: &CallLog,
    receipt_handle: &str,
) {
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        calls.take().get("SendMessage"),
        Some(&1),
        "one retry queued"
    );
    stack
        .sqs
        .delete_message()
        .queue_url(&stack.settings.queue.queue_url)
        .receipt_handle(receipt_handle)
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    while stack.deliver(1).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the retry never arrived"
        );
    }
    assert_eq!(receiver.attempts(), ["1", "2"]);
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn both_copies_of_a_job_in_one_batch_send_once_and_queue_one_retry() {
    let calls = CallLog::default();
    let (stack, receiver, mut event, receipt_handle) = a_failing_first_job(&calls).await;
    // Fan-out ran twice for the stream batch: the same job in two messages, handed over together.
    let records = event["Records"].as_array_mut().unwrap();
    let mut copy = records[0].clone();
    copy["messageId"] = json!(format!("{}-copy", copy["messageId"].as_str().unwrap()));
    records.push(copy);
    let event: SqsEvent = serde_json::from_value(event).unwrap();
    let response = refwire_delivery::handle(Arc::clone(&stack.dispatcher), event)
        .await
        .unwrap();
    // The losing copy is either reported back (the attempt was still in flight) or dropped.
    assert!(response.batch_item_failures.len() <= 1, "{response:?}");
    assert_one_send_per_attempt(&stack, &receiver, &calls, &receipt_handle).await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn two_invocations_with_the_same_job_send_once_and_queue_one_retry() {
    let calls = CallLog::default();
    let (stack, receiver, event, receipt_handle) = a_failing_first_job(&calls).await;
    let event: SqsEvent = serde_json::from_value(event).unwrap();
    let (first, second) = tokio::join!(
        refwire_delivery::handle(Arc::clone(&stack.dispatcher), event.clone()),
        refwire_delivery::handle(Arc::clone(&stack.dispatcher), event),
    );
    let failures =
        first.unwrap().batch_item_failures.len() + second.unwrap().batch_item_failures.len();
    assert!(failures <= 1, "only the losing copy may go back to SQS");
    assert_one_send_per_attempt(&stack, &receiver, &calls, &receipt_handle).await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn an_open_breaker_holds_deliveries_in_sqs_until_the_probe_and_a_success_closes_it() {
    let calls = CallLog::default();
    let mut stack = Stack::counting(calls.clone()).await;
    let receiver = Receiver::start().await;
    let created = stack
        .api(
            "POST",
            "/v1/webhooks",
            Some(json!({"name": "crm", "url": receiver.url, "events": ["referral.created"]})),
        )
        .await;
    let webhook_id = created.body["id"].as_str().unwrap().to_string();
    // The receiver has failed every attempt for a minute; the next probe is due in 2 s.
    let mut webhook = stack.store.get_webhook(&webhook_id).await.unwrap().unwrap();
    let now = chrono::Utc::now();
    webhook.failing_since = Some(now - chrono::Duration::seconds(60));
    webhook.next_probe_at = Some(now + chrono::Duration::seconds(2));
    let expected_version = webhook.next_version();
    stack
        .store
        .update_webhook(&webhook, expected_version, &[])
        .await
        .unwrap();

    stack
        .api(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "user_1"})),
        )
        .await;
    stack.fan_out().await;
    calls.take();
    assert_eq!(stack.deliver(5).await, 1);
    assert!(
        receiver.received().is_empty(),
        "the delivery waits for the probe"
    );
    // What waiting costs, as docs/webhooks.md states it.
    assert_eq!(
        handler_operations(&calls),
        operations(&[
            ("GetItem", 3),
            ("SendMessage", 1),
            ("TransactWriteItems", 1)
        ])
    );
    let log = stack
        .api(
            "GET",
            &format!("/v1/webhooks/{webhook_id}/deliveries"),
            None,
        )
        .await;
    assert_eq!(log.body["deliveries"][0]["attempts"], 0);
    assert_eq!(log.body["deliveries"][0]["state"], "pending");

    // Its job comes back through SQS (DelaySeconds) when the probe is due; it is the probe, the
    // receiver answers, and the breaker closes.
    let started = Instant::now();
    while receiver.received().is_empty() && started.elapsed() < Duration::from_secs(20) {
        stack.deliver(1).await;
    }
    assert_eq!(receiver.received().len(), 1);
    let healed = stack.store.get_webhook(&webhook_id).await.unwrap().unwrap();
    assert_eq!(
        (
            healed.failing_since,
            healed.next_probe_at,
            healed.probe_delivery
        ),
        (None, None, None)
    );
}

#[tokio::test]
#[cfg_attr(
    not(feature = "emulators"),
    ignore = "needs moto server and the receivers' tools: scripts/test.sh runs it"
)]
async fn a_rate_limit_holds_the_excess_in_sqs_and_counts_in_dynamodb() {
    let calls = CallLog::default();
    let mut stack = Stack::counting(calls.clone()).await;
    let receiver = Receiver::start().await;
    let created = stack
        .api(
            "POST",
            "/v1/webhooks",
            Some(json!({"name": "crm", "url": receiver.url, "events": ["referral.created"], "rate_limit": 1})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let webhook_id = created.body["id"].as_str().unwrap().to_string();
    // An attempt of a rate-limited webhook costs one UpdateItem more than any attempt.
    stack
        .api(
            "POST",
            "/v1/api/referral/create",
            Some(json!({"user_id": "first"})),
        )
        .await;
    stack.fan_out().await;
    calls.take();
    assert_eq!(stack.deliver(5).await, 1);
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        handler_operations(&calls),
        operations(&[("GetItem", 3), ("TransactWriteItems", 2), ("UpdateItem", 1)])
    );
    for user in ["a", "b", "c"] {
        stack
            .api(
                "POST",
                "/v1/api/referral/create",
                Some(json!({"user_id": user})),
            )
            .await;
    }
    stack.fan_out().await;
    // The three jobs in one batch, handled within milliseconds: at one attempt per second at most
    // two go out (two only if a second boundary falls in between); the rest wait in SQS.
    if stack.deliver(5).await == 3 {
        assert!(
            receiver.received().len() < 3,
            "{}",
            receiver.received().len()
        );
    }
    let started = Instant::now();
    while receiver.received().len() < 4 && started.elapsed() < Duration::from_secs(20) {
        stack.deliver(1).await;
    }
    assert_eq!(receiver.received().len(), 4);
    let log = stack
        .api(
            "GET",
            &format!("/v1/webhooks/{webhook_id}/deliveries"),
            None,
        )
        .await;
    for delivery in log.body["deliveries"].as_array().unwrap() {
        assert_eq!(delivery["attempts"], 1, "{delivery}");
    }
}

fn operations(counts: &[(&str, usize)]) -> std::collections::BTreeMap<String, usize> {
    counts
        .iter()
        .map(|(name, count)| (name.to_string(), *count))
        .collect()
}

/// The operations the delivery handler made since the last look, without the event source
/// mapping's own receive and delete (the test plays it).
fn handler_operations(calls: &CallLog) -> std::collections::BTreeMap<String, usize> {
    calls
        .take()
        .into_iter()
        .filter(|(name, _)| name != "ReceiveMessage" && name != "DeleteMessage")
        .collect()
}
