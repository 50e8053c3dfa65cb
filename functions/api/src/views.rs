//! Response bodies: field names are Tolinku's, so existing client code reads them unchanged. Each
//! is also its schema in the OpenAPI description.

use refwire_core::participants::{Participant, Source};
use refwire_core::programs::{RewardType, RewardValue};
use refwire_core::referrals::{MilestoneEntry, Referral, ReferralStatus};
use refwire_core::time::{self, Timestamp, TimestampSchema};
use serde::Serialize;
use utoipa::ToSchema;

/// A referral, with the reward terms of its program at the time it was created.
#[derive(Serialize, ToSchema)]
#[schema(as = Referral)]
pub struct ReferralView {
    referral_id: String,
    /// Matched case-insensitively.
    referral_code: String,
    referral_url: String,
    referrer_id: String,
    #[schema(required = true)]
    user_name: Option<String>,
    #[schema(required = true)]
    referred_user_id: Option<String>,
    status: ReferralStatus,
    /// The furthest milestone reached.
    #[schema(required = true)]
    milestone: Option<String>,
    milestone_history: Vec<MilestoneEntry>,
    reward_type: RewardType,
    #[schema(required = true)]
    reward_value: Option<RewardValue>,
    referee_reward_type: RewardType,
    #[schema(required = true)]
    referee_reward_value: Option<RewardValue>,
    reward_claimed: bool,
    referee_reward_claimed: bool,
    #[schema(value_type = Option<Object>, required = true)]
    metadata: Option<serde_json::Value>,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    created_at: Timestamp,
    #[serde(with = "time::millis_option")]
    #[schema(value_type = Option<TimestampSchema>, required = true)]
    completed_at: Option<Timestamp>,
    #[serde(with = "time::millis_option")]
    #[schema(value_type = Option<TimestampSchema>, required = true)]
    expires_at: Option<Timestamp>,
}

impl From<Referral> for ReferralView {
    fn from(referral: Referral) -> Self {
        ReferralView {
            referral_id: referral.referral_id,
            referral_code: referral.referral_code.into(),
            referral_url: referral.referral_url,
            referrer_id: referral.referrer_id,
            user_name: referral.user_name,
            referred_user_id: referral.referred_user_id,
            status: referral.status,
            milestone: referral.milestone,
            milestone_history: referral.milestone_history,
            reward_type: referral.reward_type,
            reward_value: referral.reward_value,
            referee_reward_type: referral.referee_reward_type,
            referee_reward_value: referral.referee_reward_value,
            reward_claimed: referral.reward_claimed,
            referee_reward_claimed: referral.referee_reward_claimed,
            metadata: referral.metadata,
            created_at: referral.created_at,
            completed_at: referral.completed_at,
            expires_at: referral.expires_at,
        }
    }
}

/// A referral as secret-key listings show it: with the fraud-review fields.
#[derive(Serialize, ToSchema)]
pub struct ReferralWithReview {
    #[serde(flatten)]
    referral: ReferralView,
    review: ReviewView,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Review)]
struct ReviewView {
    #[schema(required = true)]
    ip: Option<String>,
    #[schema(required = true)]
    device_id: Option<String>,
}

impl From<Referral> for ReferralWithReview {
    fn from(mut referral: Referral) -> Self {
        ReferralWithReview {
            review: ReviewView {
                ip: referral.ip.take(),
                device_id: referral.device_id.take(),
            },
            referral: ReferralView::from(referral),
        }
    }
}

/// A participant as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Participant)]
pub struct ParticipantView {
    #[schema(example = "par_01JC0000000000000000000000")]
    id: String,
    #[schema(required = true)]
    user_id: Option<String>,
    #[schema(required = true)]
    email: Option<String>,
    #[schema(required = true)]
    name: Option<String>,
    /// Their own code: others join with it.
    referral_code: String,
    referral_url: String,
    /// The participant whose code they joined with.
    #[schema(required = true)]
    referred_by: Option<String>,
    /// The code of the referral that links them to their referrer (`GET /v1/api/referral/{code}`).
    #[schema(required = true)]
    referred_via: Option<String>,
    source: Source,
    /// How many participants joined with their code.
    referrals_count: u64,
    qualified: bool,
    #[serde(with = "time::millis_option")]
    #[schema(value_type = Option<TimestampSchema>, required = true)]
    qualified_at: Option<Timestamp>,
    #[schema(value_type = Option<Object>, required = true)]
    metadata: Option<serde_json::Value>,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    created_at: Timestamp,
}

impl From<Participant> for ParticipantView {
    fn from(participant: Participant) -> Self {
        ParticipantView {
            id: participant.id.into(),
            user_id: participant.user_id,
            email: participant.email,
            name: participant.name,
            referral_code: participant.referral_code.into(),
            referral_url: participant.referral_url,
            referred_by: participant.referred_by.map(Into::into),
            referred_via: participant.referred_via.map(String::from),
            source: participant.source,
            referrals_count: participant.referrals_count,
            qualified: participant.qualified,
            qualified_at: participant.qualified_at,
            metadata: participant.metadata,
            created_at: participant.created_at,
        }
    }
}
