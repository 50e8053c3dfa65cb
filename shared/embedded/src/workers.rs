//! The local stand-ins for the fan-out and delivery Lambdas: the outbox table plays the DynamoDB
//! stream and the jobs table plays SQS. Each pass is a plain function (tests drive them step by
//! step under a manual clock); `run_*` loop them for refwire-local.

use crate::{EmbeddedQueue, EmbeddedStore};
use refwire_core::Error;
use refwire_core::dispatch::Dispatcher;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Outbox events fanned out per pass.
const FAN_OUT_BATCH: u32 = 100;
/// Jobs claimed per pass; they are sent concurrently, like the records of one SQS batch.
const DELIVERY_BATCH: u32 = 32;
/// A claimed job becomes due again if not finished by then (above the 30 s maximum timeout), so a
/// worker that dies mid-send loses nothing.
const JOB_LEASE: Duration = Duration::from_secs(90);
/// The longest a worker sleeps before looking again, in case a wake-up was missed.
const IDLE_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Workers {
    store: EmbeddedStore,
    queue: EmbeddedQueue,
    dispatcher: Arc<Dispatcher>,
}

impl Workers {
    pub fn new(store: EmbeddedStore, queue: EmbeddedQueue, dispatcher: Arc<Dispatcher>) -> Self {
        Workers {
            store,
            queue,
            dispatcher,
        }
    }

    /// Fans out the events written since the last pass; returns how many. The cursor moves past an
    /// event only after its deliveries are stored and queued, so a crash repeats work (harmless:
    /// delivery ids are deterministic) and never skips it.
    pub async fn fan_out_pass(&self) -> Result<usize, Error> {
        let events = self.store.unfanned_events(FAN_OUT_BATCH).await?;
        for (seq, event) in &events {
            self.dispatcher.fan_out(event).await?;
            self.store.advance_fanout_cursor(*seq).await?;
        }
        Ok(events.len())
    }

    /// Sends every job that is due now, concurrently; returns how many jobs were taken.
    pub async fn delivery_pass(&self) -> Result<usize, Error> {
        let claimed = self.queue.claim_due(DELIVERY_BATCH, JOB_LEASE).await?;
        let count = claimed.len();
        let mut sends = JoinSet::new();
        for job in claimed {
            let (dispatcher, queue) = (Arc::clone(&self.dispatcher), self.queue.clone());
            sends.spawn(async move {
                match dispatcher.deliver(&job.job).await {
                    // Sent, dropped or abandoned: the job leaves the queue.
                    Ok(outcome) if outcome.is_done() => {
                        queue.complete(&job).await.map_err(Error::from)
                    }
                    // Left leased, it comes back when the lease runs out, like an SQS message.
                    Ok(_) => Ok(()),
                    Err(err) => Err(err),
                }
            });
        }
        while let Some(joined) = sends.join_next().await {
            if let Ok(Err(err)) = joined {
                tracing::warn!(%err, "delivery job failed; it will be retried when its lease ends");
            }
        }
        Ok(count)
    }

    /// Runs passes until neither worker finds anything to do; for tests under a manual clock.
    pub async fn run_until_idle(&self) -> Result<(), Error> {
        while self.fan_out_pass().await? + self.delivery_pass().await? > 0 {}
        Ok(())
    }

    /// The fan-out loop of refwire-local: wakes on every outbox write.
    pub async fn run_fan_out(self) {
        loop {
            match self.fan_out_pass().await {
                Ok(0) => self.store.outbox_changed(IDLE_WAIT).await,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(%err, "fan-out pass failed; retrying");
                    tokio::time::sleep(IDLE_WAIT).await;
                }
            }
        }
    }

    /// The delivery loop of refwire-local: wakes when a job is queued or the next one is due.
    pub async fn run_delivery(self) {
        loop {
            match self.delivery_pass().await {
                Ok(0) => {
                    let wait = match self.queue.next_due_in().await {
                        Ok(Some(due_in)) => due_in.min(IDLE_WAIT),
                        _ => IDLE_WAIT,
                    };
                    self.queue.queued(wait).await;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(%err, "delivery pass failed; retrying");
                    tokio::time::sleep(IDLE_WAIT).await;
                }
            }
        }
    }
}
