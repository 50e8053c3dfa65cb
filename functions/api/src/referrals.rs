//! The Tolinku-compatible referral routes.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, QueryParams, created_or_existing, query_filter};
use crate::views::ReferralView;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use refwire_core::ports::ReferralQuery;
use refwire_core::referral::{NewReferral, ReferralStatus, RewardSide};
use refwire_core::settings::{ReferralSettings, SettingsUpdate};
use serde::Deserialize;
use serde_json::{Value, json};

type ApiResult<T> = Result<T, ApiError>;

pub async fn get_settings(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<ReferralSettings>> {
    Ok(Json(app.settings(&caller).await?))
}

pub async fn update_settings(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(update): JsonBody<SettingsUpdate>,
) -> ApiResult<Json<ReferralSettings>> {
    Ok(Json(app.update_settings(&caller, update).await?))
}

#[derive(Deserialize)]
pub struct CreateReferral {
    user_id: String,
    user_name: Option<String>,
    metadata: Option<Value>,
    ip: Option<String>,
    device_id: Option<String>,
}

/// 201 with a new code, or 200 with the referrer's open code (pending, no referee yet) reused.
pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateReferral>,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
        Json(json!({
            "referral_code": referral.referral_code,
            "referral_url": referral.referral_url,
            "referral_id": referral.referral_id,
        })),
    ))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let referral = app.get_referral(&caller, &code).await?;
    Ok(Json(json!(ReferralView::public(&referral))))
}

#[derive(Deserialize)]
pub struct ReportMilestone {
    referral_code: String,
    milestone: String,
    referred_user_id: Option<String>,
}

pub async fn milestone(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<ReportMilestone>,
) -> ApiResult<Json<Value>> {
    let referral = app
        .report_milestone(
            &caller,
            &body.referral_code,
            &body.milestone,
            body.referred_user_id.as_deref(),
        )
        .await?;
    Ok(Json(json!(ReferralView::public(&referral))))
}

#[derive(Deserialize)]
pub struct ClaimReward {
    referral_code: String,
}

pub async fn claim_reward(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<ClaimReward>,
) -> ApiResult<Json<Value>> {
    claim(&app, &caller, &body.referral_code, RewardSide::Referrer).await
}

pub async fn claim_referee_reward(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<ClaimReward>,
) -> ApiResult<Json<Value>> {
    claim(&app, &caller, &body.referral_code, RewardSide::Referee).await
}

async fn claim(
    app: &AppState,
    caller: &refwire_core::service::Principal,
    code: &str,
    side: RewardSide,
) -> ApiResult<Json<Value>> {
    let referral = app.claim_reward(caller, code, side).await?;
    Ok(Json(json!(ReferralView::public(&referral))))
}

#[derive(Deserialize)]
pub struct LimitParams {
    limit: Option<u32>,
}

pub async fn leaderboard(
    State(app): State<AppState>,
    Caller(caller): Caller,
    QueryParams(params): QueryParams<LimitParams>,
) -> ApiResult<Json<Value>> {
    let entries = app.leaderboard(&caller, params.limit).await?;
    let rows: Vec<Value> = entries
        .into_iter()
        .map(|entry| {
            json!({
                "rank": entry.rank,
                "referrer_id": entry.tally.referrer_id,
                "user_name": entry.tally.user_name,
                "total": entry.tally.total,
                "completed": entry.tally.completed,
                "pending": entry.tally.pending,
            })
        })
        .collect();
    Ok(Json(json!({ "leaderboard": rows })))
}

pub async fn stats(State(app): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<Value>> {
    let stats = app.stats(&caller).await?;
    Ok(Json(json!({
        "total": stats.counts.total,
        "pending": stats.counts.pending,
        "completed": stats.counts.completed,
        "expired": stats.counts.expired,
        "conversion_rate": stats.conversion_rate,
        "rewards_claimed": stats.counts.rewards_claimed,
    })))
}

#[derive(Deserialize)]
pub struct ListParams {
    status: Option<String>,
    referrer_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<Value>> {
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
    let referrals: Vec<Value> = page
        .referrals
        .iter()
        .map(|referral| json!(ReferralView::with_review(referral)))
        .collect();
    Ok(Json(
        json!({ "referrals": referrals, "next_cursor": page.next_cursor }),
    ))
}

#[derive(Deserialize)]
pub struct EventParams {
    after: Option<String>,
    limit: Option<u32>,
}

/// The program's outbox, oldest first; page with `after=<last event id>`.
pub async fn list_events(
    State(app): State<AppState>,
    Caller(caller): Caller,
    QueryParams(params): QueryParams<EventParams>,
) -> ApiResult<Json<Value>> {
    let events = app
        .list_events(&caller, params.after.as_deref(), params.limit)
        .await?;
    let envelopes: Vec<_> = events.iter().map(|event| event.envelope()).collect();
    Ok(Json(json!({ "events": envelopes })))
}
