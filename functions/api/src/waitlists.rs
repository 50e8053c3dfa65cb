//! Waitlists (ReferralLoop): signups in order, boosted by referrals.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, QueryParams, created_or_existing};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use refwire_core::participants::NewParticipant;
use refwire_core::time::{self, Timestamp};
use refwire_core::waitlists::{PlacedSignup, Waitlist};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Serialize)]
struct WaitlistView<'a> {
    id: &'a str,
    name: &'a str,
    boost: u32,
    signup_count: u64,
    #[serde(with = "time::millis")]
    created_at: Timestamp,
}

impl<'a> WaitlistView<'a> {
    fn of(waitlist: &'a Waitlist) -> Self {
        WaitlistView {
            id: &waitlist.id,
            name: &waitlist.name,
            boost: waitlist.boost,
            signup_count: waitlist.signup_count,
            created_at: waitlist.created_at,
        }
    }
}

/// A signup with ReferralLoop's fields, plus the participant behind it.
#[derive(Serialize)]
struct SignupView<'a> {
    id: &'a str,
    waitlist_id: &'a str,
    email: Option<&'a str>,
    name: Option<&'a str>,
    position: u64,
    referral_code: &'a str,
    participant_id: &'a str,
    #[serde(with = "time::millis")]
    created_at: Timestamp,
}

impl<'a> SignupView<'a> {
    fn of(placed: &'a PlacedSignup) -> Self {
        let signup = &placed.signup;
        SignupView {
            id: &signup.id,
            waitlist_id: &signup.waitlist_id,
            email: signup.email.as_deref(),
            name: signup.name.as_deref(),
            position: placed.position,
            referral_code: &signup.referral_code,
            participant_id: &signup.participant_id,
            created_at: signup.created_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWaitlist {
    name: Option<String>,
    boost: Option<u32>,
}

pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateWaitlist>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = body
        .name
        .ok_or_else(|| ApiError::validation("name", "name is required"))?;
    let waitlist = app.waitlists().create(&caller, &name, body.boost).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!(WaitlistView::of(&waitlist))),
    ))
}

pub async fn list(State(app): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<Value>> {
    let waitlists = app.waitlists().list(&caller).await?;
    let views: Vec<_> = waitlists.iter().map(WaitlistView::of).collect();
    Ok(Json(json!({ "waitlists": views })))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let waitlist = app.waitlists().get(&caller, &id).await?;
    Ok(Json(json!(WaitlistView::of(&waitlist))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinWaitlist {
    email: Option<String>,
    name: Option<String>,
    referral_code: Option<String>,
    metadata: Option<Value>,
}

/// 201 with a new signup; 200 with the person's existing one. Publishable keys may call this.
pub async fn join(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<JoinWaitlist>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let person = NewParticipant {
        email: body.email,
        name: body.name,
        referral_code: body.referral_code,
        metadata: body.metadata,
        user_id: None,
    };
    let (placed, created) = app.waitlists().join(&caller, &id, person).await?;
    let status = created_or_existing(created);
    Ok((status, Json(json!(SignupView::of(&placed)))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupPage {
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn signups(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    QueryParams(page): QueryParams<SignupPage>,
) -> ApiResult<Json<Value>> {
    let (placed, next_cursor) = app
        .waitlists()
        .signups(&caller, &id, page.cursor.as_deref(), page.limit)
        .await?;
    let views: Vec<_> = placed.iter().map(SignupView::of).collect();
    Ok(Json(
        json!({ "signups": views, "next_cursor": next_cursor }),
    ))
}

/// Any key: a person reads their own place (the signup id is the capability).
pub async fn signup(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path((id, signup_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let placed = app.waitlists().signup(&caller, &id, &signup_id).await?;
    Ok(Json(json!(SignupView::of(&placed))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveSignup {
    position: Option<u64>,
}

pub async fn move_signup(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path((id, signup_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<MoveSignup>,
) -> ApiResult<Json<Value>> {
    let position = body
        .position
        .ok_or_else(|| ApiError::validation("position", "position is required"))?;
    let placed = app
        .waitlists()
        .move_to(&caller, &id, &signup_id, position)
        .await?;
    Ok(Json(json!(SignupView::of(&placed))))
}

pub async fn remove_signup(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path((id, signup_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.waitlists().remove(&caller, &id, &signup_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
