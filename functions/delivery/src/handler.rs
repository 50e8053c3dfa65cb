//! The delivery handler: each SQS message is one job (one attempt of one delivery). Messages of a
//! batch are sent concurrently, up to a bound; the ones that could not be processed are reported
//! back (ReportBatchItemFailures) so SQS redelivers only them, and after five receives the queue's
//! redrive policy moves them to the dead-letter queue. A job the dispatcher drops or abandons is done;
//! a copy of a job whose attempt another copy holds is reported back, to be looked at again later.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use refwire_core::ErrorChain;
use refwire_core::deliveries::DeliveryJob;
use refwire_core::deliveries::Dispatcher;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Attempts in flight at once within one batch.
const MAX_CONCURRENT_SENDS: usize = 10;

/// A message that must be retried cannot be named in a partial batch response: it has no
/// `messageId` (SQS always sets one; other senders might not), or its task panicked. The handler fails the whole invocation instead: SQS then redelivers every message of
/// the batch, and the ones already done are dropped as stale duplicates.
#[derive(Debug, thiserror::Error)]
#[error(
    "a message that could not be processed has no messageId (or its task panicked); the whole batch goes back to SQS"
)]
pub struct UnnamedFailure;

pub async fn handle(
    dispatcher: Arc<Dispatcher>,
    batch: SqsEvent,
) -> Result<SqsBatchResponse, UnnamedFailure> {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_SENDS));
    let mut sends = JoinSet::new();
    for message in batch.records {
        let (dispatcher, slots) = (Arc::clone(&dispatcher), Arc::clone(&slots));
        sends.spawn(async move {
            let message_id = message.message_id.filter(|id| !id.is_empty());
            let Ok(_slot) = slots.acquire_owned().await else {
                return Err(message_id);
            };
            let job: DeliveryJob = match serde_json::from_str(message.body.as_deref().unwrap_or_default()) {
                Ok(job) => job,
                Err(err) => {
                    tracing::warn!(?message_id, %err, "not a delivery job; leaving it to the dead-letter queue");
                    return Err(message_id);
                }
            };
            match dispatcher.deliver(&job).await {
                Ok(outcome) if outcome.is_done() => {
                    tracing::info!(job = %job.id(), ?outcome, "job done");
                    Ok(())
                }
                Ok(outcome) => {
                    tracing::info!(job = %job.id(), ?outcome, "another copy of the job holds this attempt; SQS redelivers this one later");
                    Err(message_id)
                }
                Err(err) => {
                    tracing::warn!(job = %job.id(), error = %ErrorChain(&err), "job failed; SQS will redeliver it");
                    Err(message_id)
                }
            }
        });
    }
    let mut response = SqsBatchResponse::default();
    let mut unnamed = false;
    while let Some(joined) = sends.join_next().await {
        match joined {
            Ok(Err(Some(message_id))) => {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                response.batch_item_failures.push(failure);
            }
            Ok(Err(None)) | Err(_) => unnamed = true,
            Ok(Ok(())) => {}
        }
    }
    if unnamed {
        tracing::error!("{UnnamedFailure}");
        return Err(UnnamedFailure);
    }
    Ok(response)
}
