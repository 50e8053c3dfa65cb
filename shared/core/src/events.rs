//! Outbox events: written in the same transaction as the change that caused them, delivered later;
//! and the use cases that read them back (the program's feed, a referral's events).

use crate::deliveries::DeliveryIds;
use crate::error::Error;
use crate::ids::{EventId, ProgramId, WaitlistId, WebhookId};
use crate::service::{MAX_PAGE_LIMIT, Principal, Refwire, page_limit};
use crate::time::{self, Timestamp};
use serde::{Deserialize, Serialize};

pub const REFERRAL_CREATED: &str = "referral.created";
pub const REFERRAL_MILESTONE_REACHED: &str = "referral.milestone_reached";
pub const REFERRAL_COMPLETED: &str = "referral.completed";
pub const REFERRAL_EXPIRED: &str = "referral.expired";
pub const REWARD_CLAIMED: &str = "reward.claimed";
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";
pub const PARTICIPANT_CREATED: &str = "participant.created";
pub const PARTICIPANT_QUALIFIED: &str = "participant.qualified";
pub const PARTICIPANT_DELETED: &str = "participant.deleted";
pub const SIGNUP_CREATED: &str = "signup.created";
pub const SIGNUP_POSITION_CHANGED: &str = "signup.position_changed";
pub const SIGNUP_DELETED: &str = "signup.deleted";
pub const WEBHOOK_TEST: &str = "test";

/// Prefixes of Refwire's own events, which `POST /v1/events` may not publish.
pub const RESERVED_EVENT_PREFIXES: &[&str] = &[
    "referral.",
    "reward.",
    "webhook.",
    "signup.",
    "participant.",
];

/// Every event type Refwire itself emits.
pub const BUILT_IN_EVENTS: &[&str] = &[
    REFERRAL_CREATED,
    REFERRAL_MILESTONE_REACHED,
    REFERRAL_COMPLETED,
    REFERRAL_EXPIRED,
    REWARD_CLAIMED,
    WEBHOOK_DISABLED,
    PARTICIPANT_CREATED,
    PARTICIPANT_QUALIFIED,
    PARTICIPANT_DELETED,
    SIGNUP_CREATED,
    SIGNUP_POSITION_CHANGED,
    SIGNUP_DELETED,
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// `evt_<ulid>`: stable across every delivery attempt of this event.
    pub id: EventId,
    pub program_id: ProgramId,
    pub event: String,
    #[serde(with = "time::millis")]
    pub timestamp: Timestamp,
    pub data: serde_json::Value,
    /// Set for a webhook's test event: delivered to that webhook only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_webhook: Option<WebhookId>,
    /// The waitlist the event is about, if any: ReferralLoop subscriptions made for one waitlist
    /// receive only its events, and their envelope carries it. Absent from events stored before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waitlist_id: Option<WaitlistId>,
    /// How fan-out names this event's deliveries; events stored before it was kept name none and
    /// keep the ids they were first fanned out with (and are written back unchanged).
    #[serde(default, skip_serializing_if = "DeliveryIds::is_digest")]
    pub delivery_ids: DeliveryIds,
}

/// An outbox event as webhooks deliver it; field order is part of the contract (`id, event,
/// timestamp, data`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventEnvelope)]
pub struct Envelope<'a> {
    /// `evt_<ulid>`, stable across every delivery attempt.
    #[schema(example = "evt_01JR9Z5V3K8XMPN7Q2W4Y6A8C0")]
    id: &'a str,
    #[schema(example = "referral.completed")]
    event: &'a str,
    #[serde(with = "time::millis")]
    #[schema(value_type = time::TimestampSchema)]
    timestamp: Timestamp,
    #[schema(value_type = Object)]
    data: &'a serde_json::Value,
}

impl OutboxEvent {
    /// An event for every subscriber of `event` in the program, about no waitlist in particular.
    pub fn new(
        id: String,
        program_id: &str,
        event: &str,
        timestamp: Timestamp,
        data: serde_json::Value,
    ) -> OutboxEvent {
        OutboxEvent {
            id: id.into(),
            program_id: program_id.into(),
            event: event.to_string(),
            timestamp,
            data,
            target_webhook: None,
            waitlist_id: None,
            delivery_ids: DeliveryIds::Ordered,
        }
    }

    pub fn envelope(&self) -> Envelope<'_> {
        Envelope {
            id: &self.id,
            event: &self.event,
            timestamp: self.timestamp,
            data: &self.data,
        }
    }

    /// The exact bytes a receiver gets: compact JSON, no whitespace.
    pub fn envelope_json(&self) -> String {
        // Serialising borrowed strings, a timestamp and a Value into a String cannot fail.
        serde_json::to_string(&self.envelope()).unwrap_or_default()
    }
}

impl Refwire {
    pub async fn list_events(
        &self,
        principal: &Principal,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<OutboxEvent>, Error> {
        principal.require_secret()?;
        let limit = page_limit(limit)?;
        // The embedded store finds the place by the event's sequence number, so `after` must name
        // an event of the program that is still kept; otherwise the whole outbox would be replayed.
        if let Some(after) = after {
            let kept = self
                .store
                .get_event(after)
                .await?
                .is_some_and(|event| event.program_id == principal.program_id);
            if !kept {
                return Err(Error::validation(
                    "after",
                    "must be the id of an event of this program (events are kept 30 days)",
                ));
            }
        }
        Ok(self
            .store
            .list_events(&principal.program_id, after, limit)
            .await?)
    }

    /// The events a referral caused, oldest first (a referral's lifecycle has a few dozen at most).
    pub async fn referral_events(
        &self,
        principal: &Principal,
        code: &str,
    ) -> Result<Vec<OutboxEvent>, Error> {
        principal.require_secret()?;
        let referral = self.get_referral(principal, code).await?;
        Ok(self
            .store
            .referral_events(
                &principal.program_id,
                &referral.referral_code,
                MAX_PAGE_LIMIT,
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn envelope_is_compact_and_ordered() {
        let event = OutboxEvent::new(
            "evt_1".into(),
            "prg_1",
            REFERRAL_COMPLETED,
            chrono::Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap(),
            serde_json::json!({"referral_code": "ABC1234567"}),
        );
        assert_eq!(
            event.envelope_json(),
            r#"{"id":"evt_1","event":"referral.completed","timestamp":"2026-04-08T14:30:00.000Z","data":{"referral_code":"ABC1234567"}}"#
        );
    }

    #[test]
    fn waitlist_id_is_optional_in_stored_events_and_written_only_when_set() {
        let stored_before = r#"{"id":"evt_1","program_id":"prg_1","event":"link.clicked","timestamp":"2026-04-08T14:30:00.000Z","data":{}}"#;
        let mut event: OutboxEvent = serde_json::from_str(stored_before).unwrap();
        assert_eq!(event.waitlist_id, None);
        assert_eq!(serde_json::to_string(&event).unwrap(), stored_before);
        event.waitlist_id = Some("wl_1".into());
        let stored = serde_json::to_string(&event).unwrap();
        assert!(
            stored.ends_with(r#""data":{},"waitlist_id":"wl_1"}"#),
            "{stored}"
        );
        assert_eq!(serde_json::from_str::<OutboxEvent>(&stored).unwrap(), event);
    }

    #[test]
    fn envelope_keeps_the_digits_the_caller_gave() {
        let data =
            r#"{"n":99999999999999999999999999999,"x":5,"y":5.0,"z":0.1,"w":-0.0,"e":1.50e-7}"#;
        let event = OutboxEvent::new(
            "evt_1".into(),
            "prg_1",
            "link.clicked",
            chrono::Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap(),
            serde_json::from_str(data).unwrap(),
        );
        let stored: OutboxEvent =
            serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert!(
            stored
                .envelope_json()
                .ends_with(&format!(r#","data":{data}}}"#)),
            "{}",
            stored.envelope_json()
        );
    }
}
