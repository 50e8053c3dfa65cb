//! The fan-out handler: each new outbox event in a DynamoDB stream batch becomes one delivery (and its
//! first job) per active subscribed webhook. Records are handled in stream order; when fan-out fails
//! (the table or the queue is unavailable) the response names that record's sequence number, and
//! Lambda retries the batch from there (ReportBatchItemFailures). Fan-out is idempotent, so a retried
//! record does no harm.
//!
//! A record whose image is not an outbox event can never succeed: retrying it would hold up every
//! record behind it in the shard until Lambda's retries ran out, and the failure destination would
//! then get only the batch's position, which the log line below already gives. So it is logged once
//! as permanent, with its sequence number and keys (never its contents), and skipped; the records
//! behind it are fanned out.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use refwire_aws::dynamo::outbox_event_from_image;
use refwire_core::ErrorChain;
use refwire_core::deliveries::Dispatcher;

pub async fn handle(dispatcher: &Dispatcher, batch: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in batch.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let sequence_number = record.change.sequence_number.clone();
        let keys = serde_json::to_string(&record.change.keys).unwrap_or_default();
        let event = match outbox_event_from_image(record.change.new_image) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(_) => {
                tracing::error!(sequence_number = ?sequence_number, %keys, "permanent failure: the stream record is not a valid outbox event; skipped, never retried");
                continue;
            }
        };
        match dispatcher.fan_out(&event).await {
            Ok(deliveries) => {
                tracing::info!(event_id = %event.id, event = %event.event, deliveries, "fanned out");
            }
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), sequence_number = ?sequence_number, "fan-out failed; the batch is retried from this record");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = sequence_number;
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    response
}
