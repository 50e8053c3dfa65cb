//! The local stand-ins for the fan-out and delivery Lambdas: the outbox table plays the DynamoDB
//! stream and the deliveries' own rows play SQS. Each pass is a plain function (tests drive them step by
//! step under a manual clock); `run_*` loop them for refwire-local.

use refwire_core::deliveries::Dispatcher;
use refwire_core::{Error, ErrorChain};
use refwire_embedded::{ClaimedJob, EmbeddedQueue, EmbeddedStore, WebhookRoom};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Outbox events fanned out per pass.
const FAN_OUT_BATCH: u32 = 100;
/// Jobs claimed per pass of the step-by-step worker; they are sent concurrently, like the
/// records of one SQS batch.
const DELIVERY_BATCH: u32 = 32;
/// Attempts refwire-local's delivery engine has in flight at once, over all webhooks.
const MAX_IN_FLIGHT: usize = 256;
/// The engine claims jobs in chunks of at least this many free slots (or when idle): each claim is
/// a query, which is not worth making for every single freed slot.
const CLAIM_CHUNK: usize = 16;
/// Attempts of one webhook in flight at once: a slow or dead receiver holds at most this many of
/// the engine's slots, and everyone else's deliveries keep flowing.
pub const MAX_IN_FLIGHT_PER_WEBHOOK: u32 = 32;
/// A claimed job becomes due again if not finished by then (above the 30 s maximum timeout), so a
/// send that failed to finish (its store write failed) is tried again.
const JOB_LEASE: Duration = Duration::from_secs(90);
/// When a job whose attempt another copy holds is looked at again (claims last the webhook's
/// timeout plus 30 s, so a dead holder's lapses within a few looks).
const IN_FLIGHT_RECHECK: Duration = Duration::from_secs(10);
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
        let Some(&(last_seq, _)) = events.last() else {
            return Ok(0);
        };
        // The pass's events fan out concurrently, so their store calls share group commits; the
        // cursor moves past them once all are done, and a failure leaves them all to the next pass.
        let mut fanning = JoinSet::new();
        for (_, event) in events {
            let dispatcher = Arc::clone(&self.dispatcher);
            fanning.spawn(async move { dispatcher.fan_out(&event).await });
        }
        let count = fanning.len();
        for fanned in fanning.join_all().await {
            fanned?;
        }
        self.store.advance_fanout_cursor(last_seq).await?;
        Ok(count)
    }

    /// Sends every job that is due now, concurrently, and waits for them all; returns how many
    /// jobs were taken. Tests drive delivery step by step with this.
    pub async fn delivery_pass(&self) -> Result<usize, Error> {
        let claimed = self
            .queue
            .claim_due(DELIVERY_BATCH, JOB_LEASE, None)
            .await?;
        let count = claimed.len();
        let mut sends = JoinSet::new();
        for job in claimed {
            sends.spawn(self.clone().send(job));
        }
        sends.join_all().await;
        Ok(count)
    }

    /// Makes the attempt a claimed job asks for.
    async fn send(self, job: ClaimedJob) {
        match self.dispatcher.deliver(&job.job).await {
            // Sent, dropped, abandoned or deferred: the delivery's row says when it is due again.
            Ok(outcome) if outcome.is_done() => self.queue.complete(&job),
            // Another copy holds the attempt: look again soon, as its claim may have lapsed by
            // then (its holder died), and drop the job once the attempt is recorded.
            Ok(_) => self.queue.look_again_in(&job, IN_FLIGHT_RECHECK),
            // The hold stays until its lease ends, and the job is tried again then.
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), "delivery job failed; it will be retried when its lease ends")
            }
        }
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
                    tracing::warn!(error = %ErrorChain(&err), "fan-out pass failed; retrying");
                    tokio::time::sleep(IDLE_WAIT).await;
                }
            }
        }
    }

    /// The delivery engine of refwire-local. Jobs flow continuously: whenever a slot is free the
    /// next due job starts (no batch waits for its slowest send), up to `MAX_IN_FLIGHT` in all and
    /// `MAX_IN_FLIGHT_PER_WEBHOOK` per webhook, so one slow receiver delays only its own deliveries.
    pub async fn run_delivery(self) {
        let mut running = JoinSet::new();
        let mut sends = InFlight::default();
        loop {
            while let Some(ended) = running.try_join_next_with_id() {
                sends.finished(task_id(&ended));
            }
            let free = MAX_IN_FLIGHT.saturating_sub(running.len());
            let slots_full = free < CLAIM_CHUNK && !running.is_empty();
            let claimed = if slots_full {
                Ok(Vec::new())
            } else {
                self.queue
                    .claim_due(free as u32, JOB_LEASE, Some(&sends.room))
                    .await
            };
            match claimed {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        let webhook_id = job.job.webhook_id.to_string();
                        let task = running.spawn(self.clone().send(job));
                        sends.started(task.id(), webhook_id);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %ErrorChain(&err), "claiming delivery jobs failed; retrying")
                }
            }
            // Nothing to start: wait for a send to finish, a job to be queued, or the next due one.
            // While the slots are full, or every due job's webhook is at its limit (a job is due
            // but none was claimed), only a finished send makes room: waiting for the due time
            // instead would spin.
            let wait = if slots_full {
                IDLE_WAIT
            } else {
                match self.queue.next_due_in().await {
                    Ok(Some(due_in)) if !due_in.is_zero() || running.is_empty() => {
                        due_in.min(IDLE_WAIT)
                    }
                    _ => IDLE_WAIT,
                }
            };
            tokio::select! {
                Some(ended) = running.join_next_with_id(), if !running.is_empty() => {
                    sends.finished(task_id(&ended));
                }
                () = self.queue.queued(wait) => {}
            }
        }
    }
}

/// The engine's running sends: which webhook each is for (so a slot is freed even when a send
/// panicked), and the room that leaves each webhook.
struct InFlight {
    webhook_of: std::collections::HashMap<tokio::task::Id, String>,
    room: WebhookRoom,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            webhook_of: std::collections::HashMap::new(),
            room: WebhookRoom {
                per_webhook: MAX_IN_FLIGHT_PER_WEBHOOK,
                in_flight: std::collections::HashMap::new(),
            },
        }
    }
}

impl InFlight {
    fn started(&mut self, task: tokio::task::Id, webhook_id: String) {
        *self.room.in_flight.entry(webhook_id.clone()).or_default() += 1;
        self.webhook_of.insert(task, webhook_id);
    }

    fn finished(&mut self, task: tokio::task::Id) {
        let Some(webhook_id) = self.webhook_of.remove(&task) else {
            return;
        };
        if let Some(count) = self.room.in_flight.get_mut(&webhook_id) {
            *count -= 1;
            if *count == 0 {
                self.room.in_flight.remove(&webhook_id);
            }
        }
    }
}

/// The task a joined send ran in, whether it returned or panicked.
fn task_id<T>(ended: &Result<(tokio::task::Id, T), tokio::task::JoinError>) -> tokio::task::Id {
    match ended {
        Ok((id, _)) => *id,
        Err(err) => err.id(),
    }
}
