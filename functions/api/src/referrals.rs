//! The Tolinku-compatible referral routes.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{
    Caller, JsonBody, PathParams, QueryParams, created_or_existing, page_limit, query_filter,
};
use crate::openapi::{Forbidden, PayloadTooLarge, Unauthorized, Unavailable};
use crate::views::{ReferralView, ReferralWithReview};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use refwire_core::events::{Envelope, OutboxEvent};
use refwire_core::ports::ReferralQuery;
use refwire_core::programs::{ReferralSettings, SettingsUpdate};
use refwire_core::referrals::{NewReferral, ReferralStatus, RewardSide};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

type ApiResult<T> = Result<T, ApiError>;

#[utoipa::path(
    get,
    path = "/v1/api/referral/settings",
    operation_id = "getSettings",
    tag = "referrals",
    summary = "Read the program's referral settings",
    description = "Key: a secret key (`rw_sec_...`).",
    responses(
        (status = 200, description = "The settings.", body = ReferralSettings),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_settings(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<ReferralSettings>> {
    Ok(Json(app.settings(&caller).await?))
}

#[utoipa::path(
    put,
    path = "/v1/api/referral/settings",
    operation_id = "updateSettings",
    tag = "referrals",
    summary = "Update the program's referral settings",
    description = "A partial update: absent fields keep their value, `null` clears a nullable one; nothing changes if the result is invalid. Key: a secret key (`rw_sec_...`).",
    request_body = SettingsUpdate,
    responses(
        (status = 200, description = "The settings after the update.", body = ReferralSettings),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn update_settings(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(update): JsonBody<SettingsUpdate>,
) -> ApiResult<Json<ReferralSettings>> {
    Ok(Json(app.update_settings(&caller, update).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReferral {
    /// The referrer; 1-256 characters, not blank.
    #[schema(min_length = 1, max_length = 256)]
    user_id: String,
    #[schema(max_length = 256)]
    user_name: Option<String>,
    /// At most 16 KB of JSON.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// An IPv4 or IPv6 address, kept for fraud review.
    #[schema(example = "203.0.113.7")]
    ip: Option<String>,
    /// Kept for fraud review.
    #[schema(min_length = 1, max_length = 256)]
    device_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedReferral {
    referral_code: String,
    referral_url: String,
    referral_id: String,
}

/// 201 with a new code, or 200 with the referrer's open code (pending, no referee yet) reused.
#[utoipa::path(
    post,
    path = "/v1/api/referral/create",
    operation_id = "createReferral",
    tag = "referrals",
    summary = "Create (or reuse) a referral code for a referrer",
    description = "Key: a secret or publishable key.",
    request_body = CreateReferral,
    responses(
        (status = 201, description = "A new referral code.", body = CreatedReferral),
        (status = 200, description = "The referrer's open referral (pending, no referee yet) reused.", body = CreatedReferral),
        (status = 400, description = "`validation_failed` (naming the `field`; also `user_id` when the referrer has `referral_max_per_user` pending referrals) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 409, description = "`referrals_disabled` (the program's settings have `enabled: false`) or `concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateReferral>,
) -> ApiResult<(StatusCode, Json<CreatedReferral>)> {
    let request = NewReferral {
        user_id: body.user_id,
        user_name: body.user_name,
        metadata: body.metadata,
        ip: body.ip,
        device_id: body.device_id,
        referrer: None,
    };
    let (referral, created) = app.create_referral(&caller, request).await?;
    let status = created_or_existing(created);
    Ok((
        status,
        Json(CreatedReferral {
            referral_code: referral.referral_code.into(),
            referral_url: referral.referral_url,
            referral_id: referral.referral_id,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/api/referral/{code}",
    operation_id = "getReferral",
    tag = "referrals",
    summary = "Read a referral",
    description = "A due expiry is applied (emitting `referral.expired`) before the referral is returned. Key: a secret or publishable key.",
    params(("code" = String, Path, description = "The referral code (case-insensitive).")),
    responses(
        (status = 200, description = "The referral.", body = ReferralView),
        (status = 401, response = Unauthorized),
        (status = 404, description = "`not_found`: no referral with this code in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
) -> ApiResult<Json<ReferralView>> {
    let referral = app.get_referral(&caller, &code).await?;
    Ok(Json(referral.into()))
}

#[utoipa::path(
    get,
    path = "/v1/api/referral/{code}/events",
    operation_id = "listReferralEvents",
    tag = "events",
    summary = "List the events a referral caused, oldest first",
    description = "Every event whose data names the referral's code: its creation, milestones, completion, claimed rewards, expiry. Key: a secret key (`rw_sec_...`).",
    params(("code" = String, Path, description = "The referral code (case-insensitive).")),
    responses(
        (status = 200, description = "The referral's events in the order they were written.", body = EventList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no referral with this code in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn events(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
) -> ApiResult<Response> {
    Ok(event_list(&app.referral_events(&caller, &code).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportMilestone {
    referral_code: String,
    /// One of the program's `referral_milestones`.
    milestone: String,
    /// The referred user; attached on first report. May not be the referrer.
    #[schema(min_length = 1, max_length = 256)]
    referred_user_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/api/referral/milestone",
    operation_id = "reportMilestone",
    tag = "referrals",
    summary = "Report a milestone for a referral",
    description = "Repeating a milestone already reached changes nothing; reaching `referral_reward_milestone` completes a pending referral, once. Key: a secret key (`rw_sec_...`).",
    request_body = ReportMilestone,
    responses(
        (status = 200, description = "The referral after the milestone.", body = ReferralView),
        (status = 400, description = "`validation_failed` (unknown milestone, self-referral, bad `referred_user_id`, ...) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no referral with this code in the program.", body = ErrorBody),
        (status = 409, description = "`referral_expired`, `referee_mismatch` (the referral belongs to another referred user), `already_referred` (this user was already referred in the program) or `concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn milestone(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<ReportMilestone>,
) -> ApiResult<Json<ReferralView>> {
    let referral = app
        .report_milestone(
            &caller,
            &body.referral_code,
            &body.milestone,
            body.referred_user_id.as_deref(),
        )
        .await?;
    Ok(Json(referral.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimReward {
    referral_code: String,
}

#[utoipa::path(
    post,
    path = "/v1/api/referral/claim-reward",
    operation_id = "claimReward",
    tag = "referrals",
    summary = "Claim the referrer's reward",
    description = "Claiming again changes nothing and is not an error. Key: a secret key (`rw_sec_...`).",
    request_body = ClaimReward,
    responses(
        (status = 200, description = "The referral with the referrer's reward claimed.", body = ReferralView),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no referral with this code in the program.", body = ErrorBody),
        (status = 409, description = "`not_completed` (rewards can be claimed only once the referral is completed) or `concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn claim_reward(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<ClaimReward>,
) -> ApiResult<Json<ReferralView>> {
    claim(&app, &caller, &body.referral_code, RewardSide::Referrer).await
}

#[utoipa::path(
    post,
    path = "/v1/api/referral/claim-referee-reward",
    operation_id = "claimRefereeReward",
    tag = "referrals",
    summary = "Claim the referred user's reward",
    description = "Claiming again changes nothing and is not an error. Key: a secret key (`rw_sec_...`).",
    request_body = ClaimReward,
    responses(
        (status = 200, description = "The referral with the referred user's reward claimed.", body = ReferralView),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no referral with this code in the program.", body = ErrorBody),
        (status = 409, description = "`not_completed` (rewards can be claimed only once the referral is completed) or `concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn claim_referee_reward(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<ClaimReward>,
) -> ApiResult<Json<ReferralView>> {
    claim(&app, &caller, &body.referral_code, RewardSide::Referee).await
}

async fn claim(
    app: &AppState,
    caller: &refwire_core::service::Principal,
    code: &str,
    side: RewardSide,
) -> ApiResult<Json<ReferralView>> {
    let referral = app.claim_reward(caller, code, side).await?;
    Ok(Json(referral.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitParams {
    /// Page size: 1-100.
    #[serde(default, deserialize_with = "page_limit")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 25)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct LeaderboardEntry {
    #[schema(minimum = 1)]
    rank: u32,
    referrer_id: String,
    /// The most recent `user_name` the referrer gave.
    #[schema(required = true)]
    user_name: Option<String>,
    total: u64,
    completed: u64,
    pending: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Leaderboard {
    leaderboard: Vec<LeaderboardEntry>,
}

#[utoipa::path(
    get,
    path = "/v1/api/referral/leaderboard",
    operation_id = "leaderboard",
    tag = "referrals",
    summary = "Top referrers",
    description = "Key: a secret or publishable key.",
    params(LimitParams),
    responses(
        (status = 200, description = "Referrers ranked by completed, then total referrals.", body = Leaderboard),
        (status = 400, description = "`validation_failed`: a bad `limit`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn leaderboard(
    State(app): State<AppState>,
    Caller(caller): Caller,
    QueryParams(params): QueryParams<LimitParams>,
) -> ApiResult<Json<Leaderboard>> {
    let entries = app.leaderboard(&caller, params.limit).await?;
    let leaderboard = entries
        .into_iter()
        .map(|entry| LeaderboardEntry {
            rank: entry.rank,
            referrer_id: entry.tally.referrer_id,
            user_name: entry.tally.user_name,
            total: entry.tally.total,
            completed: entry.tally.completed,
            pending: entry.tally.pending,
        })
        .collect();
    Ok(Json(Leaderboard { leaderboard }))
}

#[derive(Serialize, ToSchema)]
pub struct ReferralStats {
    total: u64,
    pending: u64,
    completed: u64,
    /// Lapsed pending referrals count as expired.
    expired: u64,
    /// completed / total rounded to 4 decimals; 0 when there are no referrals.
    #[schema(minimum = 0, maximum = 1)]
    conversion_rate: f64,
    /// Claimed rewards, referrer and referee sides counted separately.
    rewards_claimed: u64,
}

#[utoipa::path(
    get,
    path = "/v1/api/referral/stats",
    operation_id = "stats",
    tag = "referrals",
    summary = "The program's referral counts",
    description = "Key: a secret key (`rw_sec_...`).",
    responses(
        (status = 200, description = "Counts and conversion rate.", body = ReferralStats),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn stats(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<ReferralStats>> {
    let stats = app.stats(&caller).await?;
    Ok(Json(ReferralStats {
        total: stats.counts.total,
        pending: stats.counts.pending,
        completed: stats.counts.completed,
        expired: stats.counts.expired,
        conversion_rate: stats.conversion_rate,
        rewards_claimed: stats.counts.rewards_claimed,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only referrals in this status.
    #[param(value_type = Option<ReferralStatus>)]
    status: Option<String>,
    /// Only this referrer's referrals.
    referrer_id: Option<String>,
    /// Page size: 1-100.
    #[serde(default, deserialize_with = "page_limit")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 25)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page; anything else is refused with 400
    /// `validation_failed` (field `cursor`).
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReferralPage {
    referrals: Vec<ReferralWithReview>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/api/referrals",
    operation_id = "listReferrals",
    tag = "referrals",
    summary = "List referrals, newest first",
    description = "Key: a secret key (`rw_sec_...`).",
    params(ListParams),
    responses(
        (status = 200, description = "One page of referrals, with fraud-review fields.", body = ReferralPage),
        (status = 400, description = "`validation_failed`: a bad `status` or `limit`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<ReferralPage>> {
    let status = query_filter(
        params.status,
        "status",
        "pending, completed, expired",
        ReferralStatus::parse,
    )?;
    let query = ReferralQuery {
        status,
        referrer_id: params.referrer_id,
        cursor: params.cursor,
    };
    let page = app.list_referrals(&caller, &query, params.limit).await?;
    Ok(Json(ReferralPage {
        referrals: page.referrals.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// An event id: only events written after it (page with the last id seen). An id that is not
    /// a kept event of the program is refused with 400 `validation_failed` (field `after`).
    after: Option<String>,
    /// Page size: 1-100.
    #[serde(default, deserialize_with = "page_limit")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 25)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct EventList<'a> {
    events: Vec<Envelope<'a>>,
}

/// The program's outbox, oldest first; page with `after=<last event id>`.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "listEvents",
    tag = "events",
    summary = "List the program's outbox events, oldest first",
    description = "Key: a secret key (`rw_sec_...`).",
    params(EventParams),
    responses(
        (status = 200, description = "Events in the order they were written.", body = EventList),
        (status = 400, description = "`validation_failed`: a bad `limit`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list_events(
    State(app): State<AppState>,
    Caller(caller): Caller,
    QueryParams(params): QueryParams<EventParams>,
) -> ApiResult<Response> {
    let events = app
        .list_events(&caller, params.after.as_deref(), params.limit)
        .await?;
    Ok(event_list(&events))
}

/// Events as their envelopes, the shape receivers get them in.
fn event_list(events: &[OutboxEvent]) -> Response {
    let events = events.iter().map(OutboxEvent::envelope).collect();
    Json(EventList { events }).into_response()
}
