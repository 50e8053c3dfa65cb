//! Deliveries: one per (event, webhook), with every attempt recorded, and the pure decisions of what
//! an attempt's result means for the delivery and its webhook.

use crate::deliveries::retry::{AttemptOutcome, NextStep, RetrySchedule, classify, next_step};
use crate::events::OutboxEvent;
use crate::ids::{DeliveryId, EventId, ProgramId, WebhookId};
use crate::time::{self, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Receivers' response bodies are kept up to this many bytes, for the delivery log.
pub const RESPONSE_EXCERPT_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Retrying,
    Succeeded,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Retrying, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Succeeded | DeliveryState::Failed)
    }
}

/// One HTTP attempt as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub n: u32,
    #[serde(with = "time::millis")]
    pub at: Timestamp,
    /// `None` when no response came (timeout, refused connection, refused address).
    pub status: Option<u16>,
    pub response_ms: u64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// What the sender observed for one attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendResult {
    pub status: Option<u16>,
    pub retry_after: Option<String>,
    pub response_ms: u64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub program_id: ProgramId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event: String,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
    /// Attempts made before the current round of the retry schedule (a manual retry starts a round).
    pub round_start: u32,
    #[serde(with = "time::millis_option")]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(with = "time::millis")]
    pub created_at: Timestamp,
    pub version: u64,
    /// The attempt a worker is making right now, if any (absent from documents written before
    /// claims existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
}

/// A worker's hold on one attempt, taken with a versioned write before it sends: of several copies
/// of a job, only the one whose write lands sends the attempt. It lapses at `until`, so the attempt
/// of a worker that died mid-send is taken again by the next copy of its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub attempt: u32,
    #[serde(with = "time::millis")]
    pub until: Timestamp,
}

/// A queued request to make attempt `attempt` of a delivery. Its id is deterministic, so a
/// redelivered stream record or queue message maps onto the same job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub delivery_id: DeliveryId,
    pub attempt: u32,
    /// Whose job it is, so a worker can limit how many of one webhook's attempts run at once
    /// without reading the delivery first (empty in jobs queued before it was carried).
    #[serde(default)]
    pub webhook_id: WebhookId,
    /// Set on a job queued again to wait for the webhook's circuit breaker (milliseconds of the
    /// time it waits for), so it is a job of its own beside the copy that queued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits_until: Option<i64>,
}

impl DeliveryJob {
    pub fn id(&self) -> String {
        match self.waits_until {
            None => format!("{}-{}", self.delivery_id, self.attempt),
            Some(until) => format!("{}-{}-w{until}", self.delivery_id, self.attempt),
        }
    }
}

/// How an event's deliveries are named, fixed when the event is written, so that fan-out run again
/// for it names them the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryIds {
    /// `dlv_` and 32 hex digits of a digest of the (event, webhook) pair: events written before
    /// ordered ids (their documents name no scheme) keep the ids they were first fanned out with.
    #[default]
    Digest,
    /// `dlv_`, the event id's ULID, and 16 hex digits of the digest: ids sort by event time, so a
    /// B-tree store (refwire-local's SQLite file) adds new deliveries at one end of its id index
    /// instead of on a random page each, the costliest write of a delivery there.
    Ordered,
}

impl DeliveryIds {
    pub fn is_digest(&self) -> bool {
        *self == DeliveryIds::Digest
    }
}

/// The delivery id of an (event, webhook) pair: the same however often fan-out runs for it.
pub fn delivery_id(event_id: &str, scheme: DeliveryIds, webhook_id: &str) -> DeliveryId {
    let digest = hex::encode(Sha256::digest(
        format!("{event_id}\n{webhook_id}").as_bytes(),
    ));
    match scheme {
        DeliveryIds::Digest => format!("dlv_{}", &digest[..32]),
        DeliveryIds::Ordered => {
            let ulid = event_id.strip_prefix("evt_").unwrap_or(event_id);
            format!("dlv_{ulid}{}", &digest[..16])
        }
    }
    .into()
}

/// What an attempt's result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    RetryIn {
        seconds: u32,
    },
    GaveUp,
    /// 410 Gone: stop for good and disable the webhook.
    Gone,
}

impl Delivery {
    /// `event`'s delivery to the webhook `webhook_id`, due now.
    pub fn new(event: &OutboxEvent, webhook_id: &str, now: Timestamp) -> Self {
        Delivery {
            id: delivery_id(&event.id, event.delivery_ids, webhook_id),
            program_id: event.program_id.clone(),
            webhook_id: webhook_id.into(),
            event_id: event.id.clone(),
            event: event.event.clone(),
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            round_start: 0,
            next_attempt_at: Some(now),
            created_at: now,
            version: 1,
            claim: None,
        }
    }

    pub fn next_attempt(&self) -> u32 {
        self.attempts.len() as u32 + 1
    }

    pub fn job(&self) -> DeliveryJob {
        DeliveryJob {
            delivery_id: self.id.clone(),
            attempt: self.next_attempt(),
            webhook_id: self.webhook_id.clone(),
            waits_until: None,
        }
    }

    /// Whether `job` is the attempt this delivery is waiting for; anything else is a stale duplicate.
    pub fn awaits(&self, job: &DeliveryJob) -> bool {
        !self.state.is_final() && job.attempt == self.next_attempt()
    }

    /// Whether a worker holds the attempt `job` asks for at `now`: another copy must not send it.
    pub fn in_flight(&self, job: &DeliveryJob, now: Timestamp) -> bool {
        self.claim
            .is_some_and(|claim| claim.attempt == job.attempt && claim.until > now)
    }

    /// When a worker should next look at this delivery: never once it is final; while its next
    /// attempt is claimed, not before the claim lapses (its holder may have died mid-send); else at
    /// its next attempt. refwire-local's queue is this time on the delivery's own row.
    pub fn due_at(&self) -> Option<Timestamp> {
        if self.state.is_final() {
            return None;
        }
        let claimed_until = self
            .claim
            .filter(|claim| claim.attempt == self.next_attempt())
            .map(|claim| claim.until);
        self.next_attempt_at.max(claimed_until)
    }

    /// Takes the attempt `job` asks for until `until`; the caller writes it with the version
    /// condition, which only one copy of the job passes.
    pub fn claim(&mut self, job: &DeliveryJob, until: Timestamp) {
        self.claim = Some(Claim {
            attempt: job.attempt,
            until,
        });
    }

    /// Records an attempt and decides what follows, by the webhook's schedule.
    pub fn record_attempt(
        &mut self,
        result: SendResult,
        schedule: &RetrySchedule,
        now: Timestamp,
    ) -> Verdict {
        let outcome = classify(result.status, result.retry_after.as_deref());
        self.attempts.push(Attempt {
            n: self.next_attempt(),
            at: now,
            status: result.status,
            response_ms: result.response_ms,
            error: result.error,
            response_excerpt: result.response_excerpt,
        });
        self.claim = None;
        let made_in_round = self.attempts.len() as u32 - self.round_start;
        let verdict = match (outcome, next_step(schedule, made_in_round, &outcome)) {
            (AttemptOutcome::Succeeded, _) => Verdict::Delivered,
            (AttemptOutcome::Gone, _) => Verdict::Gone,
            (_, Some(NextStep::Retry { delay_seconds })) => Verdict::RetryIn {
                seconds: delay_seconds,
            },
            _ => Verdict::GaveUp,
        };
        (self.state, self.next_attempt_at) = match verdict {
            Verdict::Delivered => (DeliveryState::Succeeded, None),
            Verdict::RetryIn { seconds } => (
                DeliveryState::Retrying,
                Some(now + chrono::Duration::seconds(i64::from(seconds))),
            ),
            Verdict::GaveUp | Verdict::Gone => (DeliveryState::Failed, None),
        };
        verdict
    }

    /// Ends a delivery without sending, e.g. because its webhook was disabled or deleted.
    pub fn abandon(&mut self, reason: &str, now: Timestamp) {
        self.attempts.push(Attempt {
            n: self.next_attempt(),
            at: now,
            status: None,
            response_ms: 0,
            error: Some(reason.to_string()),
            response_excerpt: None,
        });
        self.claim = None;
        self.state = DeliveryState::Failed;
        self.next_attempt_at = None;
    }

    /// A manual resend: a new round of the retry schedule starting now.
    pub fn restart(&mut self, now: Timestamp) {
        self.round_start = self.attempts.len() as u32;
        self.state = DeliveryState::Retrying;
        self.next_attempt_at = Some(now);
    }

    pub fn last_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliveries::retry::RetrySchedule;
    use serde_json::json;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_timestamp(1_800_000_000 + second, 0).unwrap()
    }

    fn failed_attempt() -> SendResult {
        SendResult {
            status: Some(500),
            ..SendResult::default()
        }
    }

    #[test]
    fn a_delivery_is_due_at_its_next_attempt_until_a_claim_holds_it_and_never_once_final() {
        let event = OutboxEvent::new(
            "evt_1".into(),
            "prg_1",
            "referral.created",
            at(0),
            json!({}),
        );
        let mut delivery = Delivery::new(&event, "wh_1", at(0));
        assert_eq!(delivery.due_at(), Some(at(0)));

        delivery.claim(&delivery.job(), at(40));
        assert_eq!(delivery.due_at(), Some(at(40)));

        let schedule = RetrySchedule::new(vec![60]).unwrap();
        let verdict = delivery.record_attempt(failed_attempt(), &schedule, at(1));
        assert_eq!(verdict, Verdict::RetryIn { seconds: 60 });
        assert_eq!(delivery.due_at(), Some(at(61)));

        // A claim on an attempt already recorded holds nothing back.
        delivery.claim = Some(Claim {
            attempt: 1,
            until: at(100),
        });
        assert_eq!(delivery.due_at(), Some(at(61)));

        delivery.claim(&delivery.job(), at(101));
        delivery.record_attempt(failed_attempt(), &schedule, at(62));
        assert_eq!(delivery.state, DeliveryState::Failed);
        assert_eq!(delivery.due_at(), None);
    }

    #[test]
    fn an_events_deliveries_are_named_by_its_scheme_and_ordered_ones_sort_by_event() {
        let digest = delivery_id(
            "evt_01JR9Z5V3K8XMPN7Q2W4Y6A8C0",
            DeliveryIds::Digest,
            "wh_1",
        );
        assert!(digest.starts_with("dlv_") && digest.len() == 36);
        assert_eq!(
            digest,
            delivery_id(
                "evt_01JR9Z5V3K8XMPN7Q2W4Y6A8C0",
                DeliveryIds::Digest,
                "wh_1"
            )
        );

        let earlier = delivery_id(
            "evt_01JR9Z5V3K8XMPN7Q2W4Y6A8C0",
            DeliveryIds::Ordered,
            "wh_9",
        );
        let later = delivery_id(
            "evt_01JR9Z5V3M0000000000000000",
            DeliveryIds::Ordered,
            "wh_1",
        );
        assert!(earlier.starts_with("dlv_01JR9Z5V3K8XMPN7Q2W4Y6A8C0") && earlier.len() == 46);
        assert!(earlier < later);
        assert_ne!(
            earlier,
            delivery_id(
                "evt_01JR9Z5V3K8XMPN7Q2W4Y6A8C0",
                DeliveryIds::Ordered,
                "wh_1"
            )
        );

        // New events name the scheme; documents written before it name none and stay on digests.
        let event = OutboxEvent::new(
            "evt_2".into(),
            "prg_1",
            "referral.created",
            at(0),
            json!({}),
        );
        assert_eq!(event.delivery_ids, DeliveryIds::Ordered);
        let mut stored = serde_json::to_value(&event).unwrap();
        stored.as_object_mut().unwrap().remove("delivery_ids");
        let before: OutboxEvent = serde_json::from_value(stored).unwrap();
        assert_eq!(before.delivery_ids, DeliveryIds::Digest);
    }
}
