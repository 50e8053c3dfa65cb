//! The fan-out and delivery Lambda handlers on recorded-shape event JSON (infra/events/): which
//! records they act on, and how they report partial batch failures.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use refwire_core::deliveries::{DeliveryIds, delivery_id};
use refwire_core::ports::DeliveryStore;
use refwire_tests::TestApp;
use serde_json::{Value, json};
use std::sync::Arc;

const STREAM_BATCH: &str = include_str!("../../infra/events/dynamodb-stream-batch.json");
const SQS_BATCH: &str = include_str!("../../infra/events/sqs-delivery-batch.json");
const EVENT_ID: &str = "evt_01JR0000000000000000000000";

/// The stream fixture, its events moved into the test app's program. Its ApproximateCreationDateTime
/// is spelled as Lambda sends it (`1.7756586E9`): serde_json's `arbitrary_precision` keeps such a
/// number as text, and the event types must still read it as a time.
fn stream_batch(t: &TestApp) -> Value {
    serde_json::from_str(&STREAM_BATCH.replace("prg_1", &t.program_id)).unwrap()
}

#[tokio::test]
async fn fan_out_acts_only_on_inserted_outbox_events() {
    let t = TestApp::new().await;
    let (webhook_id, _) = t
        .create_webhook(
            "https://hooks.example.com/in",
            json!({"events": ["referral.*"]}),
        )
        .await;
    let batch: StreamEvent = serde_json::from_value(stream_batch(&t)).unwrap();
    let response = refwire_fanout::handle(&t.dispatcher, batch).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": []})
    );
    // The fixture's stream image is of an event stored before deliveries had ordered ids.
    let delivery = t
        .store
        .get_delivery(&delivery_id(EVENT_ID, DeliveryIds::Digest, &webhook_id))
        .await
        .unwrap()
        .expect("a delivery for the event");
    assert_eq!(delivery.event, "referral.created");
    // The guard update and the code pointer in the same batch made nothing.
    assert_eq!(t.deliveries(&webhook_id).await.len(), 1);
}

#[tokio::test]
async fn fan_out_skips_a_malformed_record_and_fans_out_the_ones_behind_it() {
    let t = TestApp::new().await;
    let (webhook_id, _) = t
        .create_webhook("https://hooks.example.com/in", json!({"events": ["*"]}))
        .await;
    let mut batch = stream_batch(&t);
    let records = batch["Records"].as_array_mut().unwrap();
    // A corrupt event record before a good one: retrying it could never succeed, and reporting it
    // would hold up the good one behind it.
    let mut corrupt = records[2].clone();
    corrupt["dynamodb"]["NewImage"]["doc"] = json!({"S": "{not json"});
    corrupt["dynamodb"]["Keys"]["pk"] = json!({"S": "EVENT#evt_01JR0000000000000000000001"});
    corrupt["dynamodb"]["SequenceNumber"] = json!("300");
    records.insert(2, corrupt);
    let batch: StreamEvent = serde_json::from_value(batch).unwrap();
    let response = refwire_fanout::handle(&t.dispatcher, batch).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": []})
    );
    let delivery = t
        .store
        .get_delivery(&delivery_id(EVENT_ID, DeliveryIds::Digest, &webhook_id))
        .await
        .unwrap();
    assert!(
        delivery.is_some(),
        "the good record behind it is fanned out"
    );
    assert_eq!(t.deliveries(&webhook_id).await.len(), 1);
}

#[tokio::test]
async fn delivery_reports_only_the_messages_it_could_not_process() {
    let t = TestApp::new().await;
    let batch: SqsEvent = serde_json::from_str(SQS_BATCH).unwrap();
    let response = refwire_delivery::handle(Arc::clone(&t.dispatcher), batch)
        .await
        .unwrap();
    // The job for an unknown delivery is dropped (done); the malformed body goes back to SQS,
    // and after five receives to the dead-letter queue.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]})
    );
}

#[tokio::test]
async fn a_failing_message_without_a_message_id_fails_the_whole_batch() {
    let t = TestApp::new().await;
    let mut batch: Value = serde_json::from_str(SQS_BATCH).unwrap();
    // The malformed message loses its id: it cannot be named, so nothing may be reported as done.
    batch["Records"][1]
        .as_object_mut()
        .unwrap()
        .remove("messageId");
    let batch: SqsEvent = serde_json::from_value(batch).unwrap();
    let outcome = refwire_delivery::handle(Arc::clone(&t.dispatcher), batch).await;
    assert!(
        matches!(outcome, Err(refwire_delivery::UnnamedFailure)),
        "{outcome:?}"
    );

    // Without an id but processed, a message needs no name.
    let mut batch: Value = serde_json::from_str(SQS_BATCH).unwrap();
    let records = batch["Records"].as_array_mut().unwrap();
    records.truncate(1);
    records[0].as_object_mut().unwrap().remove("messageId");
    let batch: SqsEvent = serde_json::from_value(batch).unwrap();
    let response = refwire_delivery::handle(Arc::clone(&t.dispatcher), batch)
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
}
