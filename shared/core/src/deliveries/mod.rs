//! Fan-out and delivery: the decisions both runtimes share. The Lambda functions and refwire-local's
//! workers only feed events and jobs in and move the resulting requests.

mod delivery;
pub mod outgoing;
pub mod retry;
pub mod signing;

pub use delivery::*;

use crate::config::Config;
use crate::conflicts::{Try, Versioned, retry_on_conflict};
use crate::deliveries::outgoing::build_request;
use crate::error::{Error, StoreError};
use crate::events::{self, OutboxEvent};
use crate::ports::Sender;
use crate::service::Deps;
use crate::time::Timestamp;
use crate::webhooks::url_rules::check_target_url;
use crate::webhooks::{BREAKER_MIN_INTERVAL, Webhook};
use futures_util::future::try_join_all;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long a claim outlives the webhook's timeout: the reads, the record and the queueing around
/// the send. Claims (at most 60 s) lapse well before another copy of the job comes back: SQS
/// redelivers after its 360 s visibility timeout, refwire-local's job lease is 90 s.
const CLAIM_MARGIN_SECONDS: i64 = 30;

pub struct Dispatcher {
    deps: Deps,
    sender: Arc<dyn Sender>,
    config: Config,
}

/// What happened to a job, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Sent(Verdict),
    /// A duplicate or stale job: the attempt it asks for was already made or is not due.
    Dropped,
    /// Not sent because the webhook is gone, inactive, or its event expired.
    Abandoned,
    /// Not sent because another copy of the job holds the attempt (or changed the delivery just
    /// before this one could claim it). This copy is not done: it comes back later and is dropped
    /// once the attempt is recorded, or makes the attempt if the holder died before recording it.
    InFlight,
    /// Not sent yet, without being charged an attempt: the webhook's circuit breaker is open and
    /// another delivery holds the probe, or its rate limit is used up for now. The job was queued
    /// again for when it may go.
    Deferred,
}

impl JobOutcome {
    /// Whether the job can leave the queue; an `InFlight` copy stays for a later look.
    pub fn is_done(self) -> bool {
        self != JobOutcome::InFlight
    }
}

/// What the circuit breaker says to a delivery.
enum Passage {
    Go(Box<Webhook>),
    Wait(Timestamp),
}

impl Dispatcher {
    pub fn new(deps: Deps, sender: Arc<dyn Sender>, config: Config) -> Self {
        Dispatcher {
            deps,
            sender,
            config,
        }
    }

    /// Creates one delivery per active subscribed webhook and queues its first attempt; returns how
    /// many deliveries the event has. Safe to run again for the same event: ids are deterministic.
    pub async fn fan_out(&self, event: &OutboxEvent) -> Result<usize, Error> {
        let store = &self.deps.store;
        let webhooks: Vec<Webhook> = match &event.target_webhook {
            Some(target) => store.get_webhook(target).await?.into_iter().collect(),
            None => store.list_webhooks(&event.program_id).await?,
        };
        let subscribed = webhooks.into_iter().filter(|webhook| {
            webhook.active
                && webhook.program_id == event.program_id
                && (event.target_webhook.is_some() || webhook.subscribes_to(event))
        });
        let now = self.deps.clock.now();
        let fresh: Vec<Delivery> = subscribed
            .map(|webhook| Delivery::new(event, &webhook.id, now))
            .collect();
        // Inserted together, so an embedded store commits them at once rather than one by one.
        let stored =
            try_join_all(fresh.iter().map(|delivery| store.insert_delivery(delivery))).await?;
        // A delivery that has made no attempt yet may have lost its first job to a crash.
        let first_attempts: Vec<DeliveryJob> = stored
            .iter()
            .filter(|delivery| delivery.attempts.is_empty() && !delivery.state.is_final())
            .map(Delivery::job)
            .collect();
        self.deps.queue.enqueue_now(&first_attempts).await?;
        Ok(stored.len())
    }

    /// Makes the attempt a job asks for, records it, and queues the next one if the schedule says so.
    pub async fn deliver(&self, job: &DeliveryJob) -> Result<JobOutcome, Error> {
        let store = &self.deps.store;
        let Some(mut delivery) = store.get_delivery(&job.delivery_id).await? else {
            return Ok(JobOutcome::Dropped);
        };
        if !delivery.awaits(job) {
            return Ok(JobOutcome::Dropped);
        }
        if delivery.in_flight(job, self.deps.clock.now()) {
            return Ok(JobOutcome::InFlight);
        }
        let webhook = store
            .get_webhook(&delivery.webhook_id)
            .await?
            .filter(|webhook| webhook.active);
        let event = store.get_event(&delivery.event_id).await?;
        let (Some(webhook), Some(event)) = (webhook, event) else {
            let reason = "not sent: the webhook is disabled or deleted, or the event has expired";
            delivery.abandon(reason, self.deps.clock.now());
            let expected_version = delivery.next_version();
            return match store.update_delivery(&delivery, expected_version).await {
                Ok(()) | Err(StoreError::VersionConflict) => Ok(JobOutcome::Abandoned),
                Err(err) => Err(err.into()),
            };
        };

        let webhook = match self.through_breaker(webhook, &delivery.id).await? {
            Passage::Go(webhook) => *webhook,
            Passage::Wait(until) => return self.defer(delivery, until).await,
        };
        if let Some(until) = self.over_rate_limit(&webhook).await? {
            return self.defer(delivery, until).await;
        }

        // Claim before sending: of copies of this job running at once, one moves the version on.
        let lease = i64::from(webhook.timeout_seconds) + CLAIM_MARGIN_SECONDS;
        delivery.claim(
            job,
            self.deps.clock.now() + chrono::Duration::seconds(lease),
        );
        let expected_version = delivery.next_version();
        match store.update_delivery(&delivery, expected_version).await {
            Ok(()) => {}
            Err(StoreError::VersionConflict) => return Ok(JobOutcome::InFlight),
            Err(err) => return Err(err.into()),
        }

        let result = self.attempt(&webhook, &event, job.attempt).await;
        let now = self.deps.clock.now();
        let verdict = delivery.record_attempt(result, &webhook.retry_schedule, now);
        let expected_version = delivery.next_version();
        if let Verdict::RetryIn { seconds } = verdict {
            // Queue before recording: a crash in between re-sends this attempt rather than losing the next.
            self.deps.queue.enqueue(&delivery.job(), seconds).await?;
        }
        match store.update_delivery(&delivery, expected_version).await {
            Ok(()) => {}
            Err(StoreError::VersionConflict) => return Ok(JobOutcome::Dropped),
            Err(err) => return Err(err.into()),
        }
        self.track_health(webhook, verdict, now).await?;
        Ok(JobOutcome::Sent(verdict))
    }

    /// Lets a delivery through the webhook's circuit breaker: always while it is closed; while it
    /// is open, only as the probe (kept, or taken with a versioned write of the webhook that one
    /// delivery wins). The others wait for the next probe.
    async fn through_breaker(
        &self,
        mut webhook: Webhook,
        delivery_id: &str,
    ) -> Result<Passage, Error> {
        let now = self.deps.clock.now();
        if !webhook.breaker_open(now) {
            return Ok(Passage::Go(Box::new(webhook)));
        }
        if let Some(until) = webhook.breaker_wait(delivery_id, now) {
            return Ok(Passage::Wait(until));
        }
        webhook.take_probe(delivery_id, now);
        let expected_version = webhook.next_version();
        match self
            .deps
            .store
            .update_webhook(&webhook, expected_version, &[])
            .await
        {
            Ok(()) => Ok(Passage::Go(Box::new(webhook))),
            // Another delivery took the probe, or the webhook changed (a success may have closed
            // the breaker): go by what it is now.
            Err(StoreError::VersionConflict) => {
                let fresh = self.deps.store.get_webhook(&webhook.id).await?;
                Ok(match fresh {
                    Some(fresh) if !fresh.breaker_open(now) => Passage::Go(Box::new(fresh)),
                    Some(fresh) => Passage::Wait(
                        fresh
                            .breaker_wait(delivery_id, now)
                            .unwrap_or(now + BREAKER_MIN_INTERVAL),
                    ),
                    None => Passage::Wait(now + BREAKER_MIN_INTERVAL),
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// With a `rate_limit`, when this attempt may start if not now. Every attempt is counted in
    /// its second's window, those over the limit too: the n-th one over waits n / limit seconds
    /// more, so a backlog is spread over the coming seconds instead of all trying again at once.
    async fn over_rate_limit(&self, webhook: &Webhook) -> Result<Option<Timestamp>, Error> {
        let Some(limit) = webhook.rate_limit.map(u64::from) else {
            return Ok(None);
        };
        let now = self.deps.clock.now();
        let second = now.timestamp();
        let count = self.deps.store.count_send(&webhook.id, second).await?;
        if count <= limit {
            return Ok(None);
        }
        let seconds_later = 1 + (count - limit - 1) / limit;
        let wait = i64::try_from(seconds_later).unwrap_or(i64::MAX / 2);
        Ok(Timestamp::from_timestamp(second.saturating_add(wait), 0))
    }

    /// Puts the delivery's next attempt off until `until` without making it: its job is queued
    /// again for then, and the delivery log shows when.
    async fn defer(&self, mut delivery: Delivery, until: Timestamp) -> Result<JobOutcome, Error> {
        let now = self.deps.clock.now();
        let seconds = u32::try_from((until - now).num_seconds().max(1)).unwrap_or(u32::MAX);
        // Queue before recording, as with retries: a crash in between leaves a spare job, not none.
        let job = DeliveryJob {
            waits_until: Some(until.timestamp_millis()),
            ..delivery.job()
        };
        self.deps.queue.enqueue(&job, seconds).await?;
        delivery.next_attempt_at = Some(until);
        let expected_version = delivery.next_version();
        match self
            .deps
            .store
            .update_delivery(&delivery, expected_version)
            .await
        {
            Ok(()) | Err(StoreError::VersionConflict) => Ok(JobOutcome::Deferred),
            Err(err) => Err(err.into()),
        }
    }

    async fn attempt(&self, webhook: &Webhook, event: &OutboxEvent, attempt: u32) -> SendResult {
        // Checked again at send time: the rules may have changed since the webhook was saved, and
        // literal-IP hosts never reach the sender's resolver, which vets every resolved address.
        if let Err(refused) = check_target_url(&webhook.url, self.config.target_policy) {
            return SendResult {
                error: Some(refused.to_string()),
                ..SendResult::default()
            };
        }
        let request = build_request(webhook, event, attempt, self.deps.clock.now());
        let timeout = Duration::from_secs(u64::from(webhook.timeout_seconds));
        self.sender.send(&request, timeout).await
    }

    /// Success clears the webhook's failure streak; 410 disables it at once; a streak of failures
    /// longer than `disable_after` disables it. Disabling emits `webhook.disabled`.
    async fn track_health(
        &self,
        loaded: Webhook,
        verdict: Verdict,
        now: Timestamp,
    ) -> Result<(), Error> {
        let webhook_id = &loaded.id.clone();
        let verdict = &verdict;
        // The first try uses the webhook `deliver` loaded; after a conflict it is read again.
        retry_on_conflict(Some(loaded), |fresh| async move {
            let mut webhook = match fresh {
                Some(webhook) => webhook,
                None => match self.deps.store.get_webhook(webhook_id).await? {
                    Some(webhook) => webhook,
                    None => return Ok(Try::Done(())),
                },
            };
            let disable_reason = match verdict {
                Verdict::Delivered if webhook.failing_since.is_none() => return Ok(Try::Done(())),
                Verdict::Delivered => {
                    webhook.failing_since = None;
                    webhook.next_probe_at = None;
                    webhook.probe_delivery = None;
                    None
                }
                Verdict::Gone => Some("the receiver answered 410 Gone".to_string()),
                Verdict::RetryIn { .. } | Verdict::GaveUp => {
                    let streak_starts = webhook.failing_since.is_none();
                    let since = *webhook.failing_since.get_or_insert(now);
                    let days = self.config.disable_after.num_hours() as f64 / 24.0;
                    let reason = (now - since >= self.config.disable_after)
                        .then(|| format!("every delivery failed for {days} days"));
                    // A failure inside a running streak changes nothing to write.
                    if reason.is_none() && !streak_starts {
                        return Ok(Try::Done(()));
                    }
                    reason
                }
            };
            let mut emitted = Vec::new();
            if let Some(reason) = disable_reason {
                if !webhook.active {
                    return Ok(Try::Done(()));
                }
                webhook.active = false;
                emitted.push(OutboxEvent::new(
                    self.deps.ids.new_id("evt"),
                    &webhook.program_id,
                    events::WEBHOOK_DISABLED,
                    now,
                    json!({"webhook_id": webhook.id, "name": webhook.name, "url": webhook.url, "reason": reason}),
                ));
                webhook.disabled_reason = Some(reason);
            }
            let expected_version = webhook.next_version();
            webhook.updated_at = now;
            match self.deps.store.update_webhook(&webhook, expected_version, &emitted).await {
                Ok(()) | Err(StoreError::NotFound) => Ok(Try::Done(())),
                Err(StoreError::VersionConflict) => Ok(Try::Again(None)),
                Err(err) => Err(err.into()),
            }
        })
        .await
    }
}
