//! The fan-out handler: each new outbox event in a DynamoDB stream batch becomes one delivery (and its
//! first job) per active subscribed webhook. Records are handled in stream order; on a failure the
//! response names that record's sequence number, and Lambda retries the batch from there
//! (ReportBatchItemFailures). Fan-out is idempotent, so a retried record does no harm.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use refwire_aws::dynamo::outbox_event_from_image;
use refwire_core::dispatch::Dispatcher;

pub async fn handle(dispatcher: &Dispatcher, batch: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in batch.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let sequence_number = record.change.sequence_number.clone();
        let outcome = match outbox_event_from_image(record.change.new_image) {
            Ok(Some(event)) => dispatcher.fan_out(&event).await.map(|deliveries| {
                tracing::info!(event_id = %event.id, event = %event.event, deliveries, "fanned out");
            }),
            Ok(None) => Ok(()),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = outcome {
            tracing::warn!(%err, sequence_number = ?sequence_number, "fan-out failed; the batch is retried from this record");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = sequence_number;
            response.batch_item_failures.push(failure);
            break;
        }
    }
    response
}
