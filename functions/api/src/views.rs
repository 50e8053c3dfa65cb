//! Response bodies: field names are Tolinku's, so existing client code reads them unchanged.

use refwire_core::participants::{Participant, Source};
use refwire_core::referral::{MilestoneEntry, Referral, ReferralStatus};
use refwire_core::settings::{RewardType, RewardValue};
use refwire_core::time::{self, Timestamp};
use serde::Serialize;

#[derive(Serialize)]
pub struct ReferralView<'a> {
    referral_id: &'a str,
    referral_code: &'a str,
    referral_url: &'a str,
    referrer_id: &'a str,
    user_name: Option<&'a str>,
    referred_user_id: Option<&'a str>,
    status: ReferralStatus,
    milestone: Option<&'a str>,
    milestone_history: &'a [MilestoneEntry],
    reward_type: RewardType,
    reward_value: &'a Option<RewardValue>,
    referee_reward_type: RewardType,
    referee_reward_value: &'a Option<RewardValue>,
    reward_claimed: bool,
    referee_reward_claimed: bool,
    metadata: &'a Option<serde_json::Value>,
    #[serde(with = "time::millis")]
    created_at: Timestamp,
    #[serde(with = "time::millis_option")]
    completed_at: Option<Timestamp>,
    #[serde(with = "time::millis_option")]
    expires_at: Option<Timestamp>,
    /// Fraud-review fields, only in secret-key listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    review: Option<ReviewView<'a>>,
}

#[derive(Serialize)]
struct ReviewView<'a> {
    ip: Option<&'a str>,
    device_id: Option<&'a str>,
}

impl<'a> ReferralView<'a> {
    pub fn public(referral: &'a Referral) -> Self {
        ReferralView {
            referral_id: &referral.referral_id,
            referral_code: &referral.referral_code,
            referral_url: &referral.referral_url,
            referrer_id: &referral.referrer_id,
            user_name: referral.user_name.as_deref(),
            referred_user_id: referral.referred_user_id.as_deref(),
            status: referral.status,
            milestone: referral.milestone.as_deref(),
            milestone_history: &referral.milestone_history,
            reward_type: referral.reward_type,
            reward_value: &referral.reward_value,
            referee_reward_type: referral.referee_reward_type,
            referee_reward_value: &referral.referee_reward_value,
            reward_claimed: referral.reward_claimed,
            referee_reward_claimed: referral.referee_reward_claimed,
            metadata: &referral.metadata,
            created_at: referral.created_at,
            completed_at: referral.completed_at,
            expires_at: referral.expires_at,
            review: None,
        }
    }

    pub fn with_review(referral: &'a Referral) -> Self {
        ReferralView {
            review: Some(ReviewView {
                ip: referral.ip.as_deref(),
                device_id: referral.device_id.as_deref(),
            }),
            ..ReferralView::public(referral)
        }
    }
}

/// A participant as the API shows it.
#[derive(Serialize)]
pub struct ParticipantView<'a> {
    id: &'a str,
    user_id: Option<&'a str>,
    email: Option<&'a str>,
    name: Option<&'a str>,
    referral_code: &'a str,
    referral_url: &'a str,
    referred_by: Option<&'a str>,
    referred_via: Option<&'a str>,
    source: Source,
    referrals_count: u64,
    qualified: bool,
    #[serde(with = "time::millis_option")]
    qualified_at: Option<Timestamp>,
    metadata: &'a Option<serde_json::Value>,
    #[serde(with = "time::millis")]
    created_at: Timestamp,
}

impl<'a> ParticipantView<'a> {
    pub fn of(participant: &'a Participant) -> Self {
        ParticipantView {
            id: &participant.id,
            user_id: participant.user_id.as_deref(),
            email: participant.email.as_deref(),
            name: participant.name.as_deref(),
            referral_code: &participant.referral_code,
            referral_url: &participant.referral_url,
            referred_by: participant.referred_by.as_deref(),
            referred_via: participant.referred_via.as_deref(),
            source: participant.source,
            referrals_count: participant.referrals_count,
            qualified: participant.qualified,
            qualified_at: participant.qualified_at,
            metadata: &participant.metadata,
            created_at: participant.created_at,
        }
    }
}
