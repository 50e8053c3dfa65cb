//! The job queue on AWS: SQS `DelaySeconds` covers delays up to 15 minutes; a longer delay becomes a
//! one-time EventBridge Scheduler schedule that sends the same message to the same queue at the due
//! time and then deletes itself.

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use refwire_core::StoreError;
use refwire_core::deliveries::DeliveryJob;
use refwire_core::ports::JobQueue;
use refwire_core::time::Clock;
use std::sync::Arc;

/// The longest delay SQS itself can hold a message for.
pub const MAX_SQS_DELAY_SECONDS: u32 = 900;
/// Entries per `SendMessageBatch` call (the SQS maximum).
const BATCH_SIZE: usize = 10;

/// Where jobs go, from the function's environment (template.yaml sets these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTarget {
    pub queue_url: String,
    pub queue_arn: String,
    pub schedule_group: String,
    /// The role EventBridge Scheduler assumes to send to the queue.
    pub scheduler_role_arn: String,
}

pub struct SqsJobQueue {
    sqs: aws_sdk_sqs::Client,
    scheduler: aws_sdk_scheduler::Client,
    target: QueueTarget,
    clock: Arc<dyn Clock>,
}

/// A schedule's name: unique per attempt of a delivery, so scheduling it twice is one schedule.
pub fn schedule_name(job: &DeliveryJob) -> String {
    job.id()
}

/// The message body of a job (the delivery function parses it back).
pub fn job_body(job: &DeliveryJob) -> Result<String, StoreError> {
    serde_json::to_string(job)
        .map_err(|err| StoreError::unavailable("encoding a delivery job", err))
}

/// The jobs of `chunk` whose batch entries (ids = their index in the chunk) SQS refused.
fn refused_jobs<'a>(
    chunk: &'a [DeliveryJob],
    entry_ids: impl Iterator<Item = &'a str>,
) -> Result<Vec<&'a DeliveryJob>, StoreError> {
    entry_ids
        .map(|id| {
            id.parse::<usize>()
                .ok()
                .and_then(|index| chunk.get(index))
                .ok_or_else(|| {
                    StoreError::failed(format!("SQS reported an unknown batch entry {id}"))
                })
        })
        .collect()
}

impl SqsJobQueue {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        scheduler: aws_sdk_scheduler::Client,
        target: QueueTarget,
        clock: Arc<dyn Clock>,
    ) -> Self {
        SqsJobQueue {
            sqs,
            scheduler,
            target,
            clock,
        }
    }

    async fn schedule(&self, job: &DeliveryJob, delay_seconds: u32) -> Result<(), StoreError> {
        let due = self.clock.now() + chrono::Duration::seconds(i64::from(delay_seconds));
        let target = Target::builder()
            .arn(&self.target.queue_arn)
            .role_arn(&self.target.scheduler_role_arn)
            .input(job_body(job)?)
            .build()
            .map_err(|err| StoreError::unavailable("schedule target", err))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|err| StoreError::unavailable("schedule window", err))?;
        let result = self
            .scheduler
            .create_schedule()
            .name(schedule_name(job))
            .group_name(&self.target.schedule_group)
            .schedule_expression(format!("at({})", due.format("%Y-%m-%dT%H:%M:%S")))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The same attempt was already scheduled (a redelivered job): nothing to add.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(StoreError::unavailable("CreateSchedule", err)),
        }
    }
}

#[async_trait::async_trait]
impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, job: &DeliveryJob, delay_seconds: u32) -> Result<(), StoreError> {
        if delay_seconds > MAX_SQS_DELAY_SECONDS {
            return self.schedule(job, delay_seconds).await;
        }
        self.sqs
            .send_message()
            .queue_url(&self.target.queue_url)
            .message_body(job_body(job)?)
            .delay_seconds(delay_seconds as i32)
            .send()
            .await
            .map_err(|err| StoreError::unavailable("SendMessage", err))?;
        Ok(())
    }

    /// `SendMessageBatch` in chunks of ten; entries SQS refused are sent once more one by one.
    async fn enqueue_now(&self, jobs: &[DeliveryJob]) -> Result<(), StoreError> {
        for chunk in jobs.chunks(BATCH_SIZE) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(index, job)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(job_body(job)?)
                        .build()
                        .map_err(|err| StoreError::unavailable("batch entry", err))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .sqs
                .send_message_batch()
                .queue_url(&self.target.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|err| StoreError::unavailable("SendMessageBatch", err))?;
            let ids = output.failed().iter().map(|entry| entry.id());
            for job in refused_jobs(chunk, ids)? {
                tracing::warn!(job = %job.id(), "SQS refused a batch entry; sending it alone");
                self.enqueue(job, 0).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(attempt: u32) -> DeliveryJob {
        DeliveryJob {
            delivery_id: "dlv_1".into(),
            attempt,
            webhook_id: "wh_1".into(),
            waits_until: None,
        }
    }

    #[test]
    fn refused_batch_entries_map_back_to_their_jobs() {
        let chunk = [job(1), job(2), job(3)];
        let refused = refused_jobs(&chunk, ["2", "0"].into_iter()).unwrap();
        assert_eq!(refused, [&chunk[2], &chunk[0]]);
        assert!(refused_jobs(&chunk, std::iter::empty()).unwrap().is_empty());
        assert!(refused_jobs(&chunk, ["3"].into_iter()).is_err());
        assert!(refused_jobs(&chunk, ["x"].into_iter()).is_err());
    }

    #[test]
    fn a_job_has_one_schedule_name_per_attempt_and_a_json_body() {
        assert_eq!(schedule_name(&job(3)), "dlv_1-3");
        assert_eq!(
            job_body(&job(3)).unwrap(),
            r#"{"delivery_id":"dlv_1","attempt":3,"webhook_id":"wh_1"}"#
        );
        // Messages queued before jobs carried their webhook still parse.
        let queued_before: DeliveryJob =
            serde_json::from_str(r#"{"delivery_id":"dlv_1","attempt":3}"#).unwrap();
        assert_eq!(queued_before.webhook_id, "");
    }
}
