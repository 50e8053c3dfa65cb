//! The referral lifecycle as pure state transitions: each returns the events it causes, and the
//! service persists the new state and those events together.

use crate::error::Error;
use crate::events;
use crate::ids::{ProgramId, ReferralCode};
use crate::js_json::{self, NUMBER_OUT_OF_RANGE};
use crate::participants::ParticipantSummary;
use crate::programs::{ReferralSettings, RewardType, RewardValue};
use crate::time::{self, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    Pending,
    Completed,
    Expired,
}

impl ReferralStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Pending => "pending",
            ReferralStatus::Completed => "completed",
            ReferralStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Completed, Self::Expired]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MilestoneEntry {
    pub milestone: String,
    #[serde(with = "time::millis")]
    #[schema(value_type = time::TimestampSchema)]
    pub timestamp: Timestamp,
}

/// Who a reward goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardSide {
    Referrer,
    Referee,
}

impl RewardSide {
    pub fn as_str(self) -> &'static str {
        match self {
            RewardSide::Referrer => "referrer",
            RewardSide::Referee => "referee",
        }
    }
}

/// The stored referral. `version` increases with every write (optimistic concurrency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub referral_id: String,
    pub program_id: ProgramId,
    pub referral_code: ReferralCode,
    pub referral_url: String,
    pub referrer_id: String,
    pub user_name: Option<String>,
    pub referred_user_id: Option<String>,
    pub status: ReferralStatus,
    pub milestone: Option<String>,
    pub milestone_history: Vec<MilestoneEntry>,
    pub reward_type: RewardType,
    pub reward_value: Option<RewardValue>,
    pub referee_reward_type: RewardType,
    pub referee_reward_value: Option<RewardValue>,
    pub reward_claimed: bool,
    pub referee_reward_claimed: bool,
    pub metadata: Option<serde_json::Value>,
    /// Kept for fraud review; never sent in events.
    pub ip: Option<String>,
    pub device_id: Option<String>,
    #[serde(with = "time::millis")]
    pub created_at: Timestamp,
    #[serde(with = "time::millis_option")]
    pub completed_at: Option<Timestamp>,
    #[serde(with = "time::millis_option")]
    pub expires_at: Option<Timestamp>,
    /// The referrer and referee as participants, when the referral was made through them; events
    /// carry these so receivers get the people, not just user ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_participant: Option<ParticipantSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referee_participant: Option<ParticipantSummary>,
    pub version: u64,
}

/// What a caller supplies to create a referral.
#[derive(Debug, Clone, Default)]
pub struct NewReferral {
    pub user_id: String,
    pub user_name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub device_id: Option<String>,
    /// Set when the referrer is a participant.
    pub referrer: Option<ParticipantSummary>,
}

/// A change the lifecycle made, before it is given an event id.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub event: &'static str,
    pub data: serde_json::Value,
}

const MAX_ID_LENGTH: usize = 256;
const MAX_METADATA_BYTES: usize = 16 * 1024;

impl NewReferral {
    pub fn validate(&self) -> Result<(), Error> {
        validate_user_id("user_id", &self.user_id)?;
        if self
            .user_name
            .as_ref()
            .is_some_and(|n| n.len() > MAX_ID_LENGTH)
        {
            return Err(Error::validation(
                "user_name",
                "must be at most 256 characters",
            ));
        }
        if let Some(metadata) = &self.metadata {
            if !metadata.is_object() {
                return Err(Error::validation("metadata", "must be a JSON object"));
            }
            if metadata.to_string().len() > MAX_METADATA_BYTES {
                return Err(Error::validation(
                    "metadata",
                    "must be at most 16 KB of JSON",
                ));
            }
            if !js_json::numbers_fit_in_doubles(metadata) {
                return Err(Error::validation("metadata", NUMBER_OUT_OF_RANGE));
            }
        }
        if let Some(ip) = &self.ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(Error::validation("ip", "must be an IPv4 or IPv6 address"));
        }
        if self
            .device_id
            .as_ref()
            .is_some_and(|d| d.is_empty() || d.len() > MAX_ID_LENGTH)
        {
            return Err(Error::validation("device_id", "must be 1-256 characters"));
        }
        Ok(())
    }
}

pub fn validate_user_id(field: &'static str, user_id: &str) -> Result<(), Error> {
    if user_id.trim().is_empty() || user_id.len() > MAX_ID_LENGTH {
        return Err(Error::validation(field, "must be 1-256 characters"));
    }
    Ok(())
}

impl Referral {
    /// A new pending referral, with the reward terms of the program at the time it was made.
    pub fn open(
        request: NewReferral,
        settings: &ReferralSettings,
        referral_id: String,
        program_id: ProgramId,
        code: ReferralCode,
        now: Timestamp,
    ) -> (Referral, Change) {
        let expires_at = settings
            .referral_expiration_days
            .map(|days| now + chrono::Duration::days(i64::from(days)));
        let referral = Referral {
            referral_id,
            program_id,
            referral_url: settings.referral_url(&code),
            referral_code: code,
            referrer_id: request.user_id,
            user_name: request.user_name,
            referred_user_id: None,
            status: ReferralStatus::Pending,
            milestone: None,
            milestone_history: Vec::new(),
            reward_type: settings.reward_type,
            reward_value: settings.reward_value.clone(),
            referee_reward_type: settings.referee_reward_type,
            referee_reward_value: settings.referee_reward_value.clone(),
            reward_claimed: false,
            referee_reward_claimed: false,
            metadata: request.metadata,
            ip: request.ip,
            device_id: request.device_id,
            created_at: now,
            completed_at: None,
            expires_at,
            referrer_participant: request.referrer,
            referee_participant: None,
            version: 1,
        };
        let message = format!(
            "{} got referral code {}.",
            referral.referrer_label(),
            referral.referral_code
        );
        let change = Change {
            event: events::REFERRAL_CREATED,
            data: referral.with_people(
                json!({
                    "referral_code": referral.referral_code,
                    "referrer_id": referral.referrer_id,
                    "referral_url": referral.referral_url,
                }),
                message,
            ),
        };
        (referral, change)
    }

    /// A pending referral past its expiry date is expired, whoever looks at it first.
    pub fn is_lapsed(&self, now: Timestamp) -> bool {
        self.status == ReferralStatus::Pending && self.expires_at.is_some_and(|at| at <= now)
    }

    /// Applies a due expiry; returns the `referral.expired` change if it happened now.
    pub fn expire_if_lapsed(&mut self, now: Timestamp) -> Option<Change> {
        if !self.is_lapsed(now) {
            return None;
        }
        self.status = ReferralStatus::Expired;
        let message = format!(
            "Referral {} of {} expired.",
            self.referral_code,
            self.referrer_label()
        );
        Some(Change {
            event: events::REFERRAL_EXPIRED,
            data: self.with_people(
                json!({
                    "referral_code": self.referral_code,
                    "referrer_id": self.referrer_id,
                    "referred_user_id": self.referred_user_id,
                    "expires_at": self.expires_at.as_ref().map(time::format),
                }),
                message,
            ),
        })
    }

    /// Records a reported milestone. Repeating a milestone already reached changes nothing (clients
    /// retry), and reaching the reward milestone completes a pending referral exactly once.
    pub fn record_milestone(
        &mut self,
        settings: &ReferralSettings,
        milestone: &str,
        referee: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<Change>, Error> {
        let Some(position) = settings.milestone_position(milestone) else {
            return Err(Error::validation(
                "milestone",
                format!(
                    "unknown milestone {milestone:?}; configured milestones: {}",
                    settings.referral_milestones.join(", ")
                ),
            ));
        };
        if self.status == ReferralStatus::Expired {
            return Err(Error::conflict(
                "referral_expired",
                "this referral has expired and can no longer progress",
            ));
        }
        let mut changes = Vec::new();
        if let Some(referee) = referee {
            self.attach_referee(referee)?;
        }
        if self
            .milestone_history
            .iter()
            .any(|entry| entry.milestone == milestone)
        {
            return Ok(changes);
        }
        self.milestone_history.push(MilestoneEntry {
            milestone: milestone.to_string(),
            timestamp: now,
        });
        let furthest = self
            .milestone
            .as_deref()
            .and_then(|current| settings.milestone_position(current));
        if furthest.is_none_or(|furthest| position > furthest) {
            self.milestone = Some(milestone.to_string());
        }
        let message = format!(
            "{}, referred by {}, reached {milestone} (referral {}).",
            self.referee_label(),
            self.referrer_label(),
            self.referral_code
        );
        changes.push(Change {
            event: events::REFERRAL_MILESTONE_REACHED,
            data: self.with_people(
                json!({
                    "referral_code": self.referral_code,
                    "referrer_id": self.referrer_id,
                    "referred_user_id": self.referred_user_id,
                    "milestone": milestone,
                }),
                message,
            ),
        });
        if self.status == ReferralStatus::Pending && milestone == settings.referral_reward_milestone
        {
            self.status = ReferralStatus::Completed;
            self.completed_at = Some(now);
            let message = format!(
                "{} referred {}: referral {} is complete.",
                self.referrer_label(),
                self.referee_label(),
                self.referral_code
            );
            changes.push(Change {
                event: events::REFERRAL_COMPLETED,
                data: self.with_people(
                    json!({
                        "referral_code": self.referral_code,
                        "referrer_id": self.referrer_id,
                        "referred_user_id": self.referred_user_id,
                        "milestone": milestone,
                        "reward_type": self.reward_type,
                        "reward_value": self.reward_value,
                        "referee_reward_type": self.referee_reward_type,
                        "referee_reward_value": self.referee_reward_value,
                    }),
                    message,
                ),
            });
        }
        Ok(changes)
    }

    /// [`Referral::record_milestone`] for a referee who is a participant: the referral keeps their
    /// summary (for events) once they are its referee.
    pub fn record_participant_milestone(
        &mut self,
        settings: &ReferralSettings,
        milestone: &str,
        user_key: &str,
        participant: &ParticipantSummary,
        now: Timestamp,
    ) -> Result<Vec<Change>, Error> {
        let before = self.referee_participant.clone();
        if self
            .referred_user_id
            .as_deref()
            .is_none_or(|referee| referee == user_key)
        {
            self.referee_participant = Some(participant.clone());
        }
        let recorded = self.record_milestone(settings, milestone, Some(user_key), now);
        if recorded.is_err() {
            self.referee_participant = before;
        }
        recorded
    }

    fn attach_referee(&mut self, referee: &str) -> Result<(), Error> {
        validate_user_id("referred_user_id", referee)?;
        if referee == self.referrer_id {
            return Err(Error::validation(
                "referred_user_id",
                "self-referral: the referred user is the referrer",
            ));
        }
        match &self.referred_user_id {
            Some(existing) if existing != referee => Err(Error::conflict(
                "referee_mismatch",
                "this referral already belongs to another referred user",
            )),
            Some(_) => Ok(()),
            None => {
                self.referred_user_id = Some(referee.to_string());
                Ok(())
            }
        }
    }

    /// Marks a reward claimed. Claiming twice is not an error and changes nothing (handlers retry).
    pub fn claim_reward(&mut self, side: RewardSide) -> Result<Option<Change>, Error> {
        if self.status != ReferralStatus::Completed {
            return Err(Error::conflict(
                "not_completed",
                "rewards can be claimed only once the referral is completed",
            ));
        }
        let (claimed, reward_type, reward_value) = match side {
            RewardSide::Referrer => (
                &mut self.reward_claimed,
                self.reward_type,
                &self.reward_value,
            ),
            RewardSide::Referee => (
                &mut self.referee_reward_claimed,
                self.referee_reward_type,
                &self.referee_reward_value,
            ),
        };
        if *claimed {
            return Ok(None);
        }
        *claimed = true;
        let data = json!({
            "referral_code": self.referral_code,
            "referrer_id": self.referrer_id,
            "referred_user_id": self.referred_user_id,
            "side": side.as_str(),
            "reward_type": reward_type,
            "reward_value": reward_value,
        });
        let recipient = match side {
            RewardSide::Referrer => self.referrer_label(),
            RewardSide::Referee => self.referee_label(),
        };
        let message = format!(
            "The {} reward of referral {} was claimed for {recipient}.",
            side.as_str(),
            self.referral_code
        );
        Ok(Some(Change {
            event: events::REWARD_CLAIMED,
            data: self.with_people(data, message),
        }))
    }

    fn referrer_label(&self) -> String {
        self.referrer_participant
            .as_ref()
            .map_or_else(|| self.referrer_id.clone(), ParticipantSummary::label)
    }

    fn referee_label(&self) -> String {
        match (&self.referee_participant, &self.referred_user_id) {
            (Some(referee), _) => referee.label(),
            (None, Some(user_id)) => user_id.clone(),
            (None, None) => "a referred user".to_string(),
        }
    }

    /// Adds the people (where they are participants) and a sentence for humans (Slack, CRM notes)
    /// to an event's data, after its Tolinku-compatible fields.
    fn with_people(&self, mut data: serde_json::Value, message: String) -> serde_json::Value {
        if let Some(fields) = data.as_object_mut() {
            for (name, person) in [
                ("referrer", &self.referrer_participant),
                ("referee", &self.referee_participant),
            ] {
                if let Some(person) = person {
                    fields.insert(name.into(), json!(person));
                }
            }
            fields.insert("message".into(), message.into());
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap()
    }

    fn settings() -> ReferralSettings {
        ReferralSettings {
            reward_type: RewardType::Credit,
            reward_value: Some(RewardValue::Amount(5.into())),
            ..Default::default()
        }
    }

    fn pending() -> Referral {
        let request = NewReferral {
            user_id: "user_123".into(),
            ..Default::default()
        };
        let (referral, change) = Referral::open(
            request,
            &settings(),
            "ref_1".into(),
            "prg_1".into(),
            "ABC1234567".into(),
            now(),
        );
        assert_eq!(change.event, events::REFERRAL_CREATED);
        assert_eq!(
            change.data["referral_url"],
            "https://example.com/r/ABC1234567"
        );
        referral
    }

    fn events_of(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.event).collect()
    }

    #[test]
    fn opens_pending_with_expiry_and_reward_terms() {
        let referral = pending();
        assert_eq!(referral.status, ReferralStatus::Pending);
        assert_eq!(referral.expires_at, Some(now() + Duration::days(30)));
        assert_eq!(referral.reward_type, RewardType::Credit);
    }

    #[test]
    fn reward_milestone_completes_exactly_once() {
        let mut referral = pending();
        let s = settings();
        let first = referral
            .record_milestone(&s, "signed_up", Some("user_456"), now())
            .unwrap();
        assert_eq!(events_of(&first), [events::REFERRAL_MILESTONE_REACHED]);
        let done = referral
            .record_milestone(&s, "completed", None, now())
            .unwrap();
        assert_eq!(
            events_of(&done),
            [
                events::REFERRAL_MILESTONE_REACHED,
                events::REFERRAL_COMPLETED
            ]
        );
        assert_eq!(done[1].data["referred_user_id"], "user_456");
        assert_eq!(done[1].data["milestone"], "completed");
        assert_eq!(referral.status, ReferralStatus::Completed);
        assert_eq!(referral.completed_at, Some(now()));
        let again = referral
            .record_milestone(&s, "completed", None, now())
            .unwrap();
        assert!(again.is_empty(), "a repeated milestone changes nothing");
        assert_eq!(referral.milestone_history.len(), 2);
    }

    #[test]
    fn milestone_tracks_the_furthest_reached() {
        let mut referral = pending();
        let s = settings();
        referral
            .record_milestone(&s, "first_purchase", None, now())
            .unwrap();
        referral
            .record_milestone(&s, "signed_up", None, now())
            .unwrap();
        assert_eq!(referral.milestone.as_deref(), Some("first_purchase"));
        assert_eq!(referral.status, ReferralStatus::Pending);
    }

    #[test]
    fn unknown_milestone_is_refused_without_change() {
        let mut referral = pending();
        let before = referral.clone();
        let err = referral
            .record_milestone(&settings(), "paid", None, now())
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Validation {
                field: Some("milestone"),
                ..
            }
        ));
        assert_eq!(referral, before);
    }

    #[test]
    fn expired_referral_never_completes() {
        let mut referral = pending();
        let later = now() + Duration::days(30);
        assert!(referral.is_lapsed(later));
        let change = referral.expire_if_lapsed(later).unwrap();
        assert_eq!(change.event, events::REFERRAL_EXPIRED);
        assert!(referral.expire_if_lapsed(later).is_none(), "expires once");
        let err = referral
            .record_milestone(&settings(), "completed", None, later)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Conflict {
                code: "referral_expired",
                ..
            }
        ));
        assert_eq!(referral.status, ReferralStatus::Expired);
    }

    #[test]
    fn completed_referrals_do_not_expire() {
        let mut referral = pending();
        referral
            .record_milestone(&settings(), "completed", None, now())
            .unwrap();
        assert!(!referral.is_lapsed(now() + Duration::days(365)));
    }

    #[test]
    fn self_referral_and_second_referee_are_refused() {
        let mut referral = pending();
        let s = settings();
        let err = referral
            .record_milestone(&s, "signed_up", Some("user_123"), now())
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Validation {
                field: Some("referred_user_id"),
                ..
            }
        ));
        referral
            .record_milestone(&s, "signed_up", Some("user_456"), now())
            .unwrap();
        let err = referral
            .record_milestone(&s, "first_purchase", Some("user_789"), now())
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Conflict {
                code: "referee_mismatch",
                ..
            }
        ));
    }

    #[test]
    fn claims_need_completion_and_are_idempotent() {
        let mut referral = pending();
        let err = referral.claim_reward(RewardSide::Referrer).unwrap_err();
        assert!(matches!(
            err,
            Error::Conflict {
                code: "not_completed",
                ..
            }
        ));
        referral
            .record_milestone(&settings(), "completed", None, now())
            .unwrap();
        let change = referral
            .claim_reward(RewardSide::Referrer)
            .unwrap()
            .unwrap();
        assert_eq!(change.event, events::REWARD_CLAIMED);
        assert_eq!(change.data["side"], "referrer");
        assert_eq!(change.data["reward_value"], 5);
        assert!(
            referral
                .claim_reward(RewardSide::Referrer)
                .unwrap()
                .is_none()
        );
        assert!(!referral.referee_reward_claimed);
        let referee = referral.claim_reward(RewardSide::Referee).unwrap().unwrap();
        assert_eq!(referee.data["side"], "referee");
        assert!(referral.reward_claimed && referral.referee_reward_claimed);
    }

    #[test]
    fn new_referral_input_is_validated() {
        let bad = [
            NewReferral {
                user_id: " ".into(),
                ..Default::default()
            },
            NewReferral {
                user_id: "u".repeat(257),
                ..Default::default()
            },
            NewReferral {
                user_id: "u".into(),
                ip: Some("not-an-ip".into()),
                ..Default::default()
            },
            NewReferral {
                user_id: "u".into(),
                metadata: Some(json!([1])),
                ..Default::default()
            },
            NewReferral {
                user_id: "u".into(),
                device_id: Some(String::new()),
                ..Default::default()
            },
        ];
        for request in bad {
            assert!(request.validate().is_err(), "{request:?}");
        }
        let good = NewReferral {
            user_id: "u".into(),
            ip: Some("2001:db8::1".into()),
            metadata: Some(json!({"campaign": "spring"})),
            ..Default::default()
        };
        good.validate().unwrap();
    }
}
