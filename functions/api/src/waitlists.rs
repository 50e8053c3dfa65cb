//! Waitlists (ReferralLoop): signups in order, boosted by referrals.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, JsonBody, PathParams, QueryParams, created_or_existing, page_limit};
use crate::openapi::{Forbidden, PayloadTooLarge, Unauthorized, Unavailable};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use refwire_core::participants::NewParticipant;
use refwire_core::time::{self, Timestamp, TimestampSchema};
use refwire_core::waitlists::{PlacedSignup, Waitlist};
use refwire_core::whole::{self, Whole};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Serialize, ToSchema)]
#[schema(as = Waitlist)]
pub struct WaitlistView {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    /// Positions a referrer moves up for each signup that joins with their code.
    #[schema(maximum = 100)]
    boost: u32,
    signup_count: u64,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    created_at: Timestamp,
}

impl From<Waitlist> for WaitlistView {
    fn from(waitlist: Waitlist) -> Self {
        WaitlistView {
            id: waitlist.id.into(),
            name: waitlist.name,
            boost: waitlist.boost,
            signup_count: waitlist.signup_count,
            created_at: waitlist.created_at,
        }
    }
}

/// A signup with ReferralLoop's fields, plus the participant behind it.
#[derive(Serialize, ToSchema)]
#[schema(as = Signup)]
pub struct SignupView {
    #[schema(format = "uuid")]
    id: String,
    #[schema(format = "uuid")]
    waitlist_id: String,
    #[schema(required = true)]
    email: Option<String>,
    #[schema(required = true)]
    name: Option<String>,
    /// 1-based place in line.
    #[schema(minimum = 1)]
    position: u64,
    /// The participant's own code: friends who join with it move this signup up.
    referral_code: String,
    participant_id: String,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    created_at: Timestamp,
}

impl From<PlacedSignup> for SignupView {
    fn from(placed: PlacedSignup) -> Self {
        let signup = placed.signup;
        SignupView {
            id: signup.id,
            waitlist_id: signup.waitlist_id.into(),
            email: signup.email,
            name: signup.name,
            position: placed.position,
            referral_code: signup.referral_code.into(),
            participant_id: signup.participant_id.into(),
            created_at: signup.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWaitlist {
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    name: Option<String>,
    /// Positions a referrer moves up for each signup that joins with their code.
    #[schema(value_type = Option<u32>, maximum = 100, default = 1)]
    boost: Option<Whole<u32>>,
}

#[derive(Serialize, ToSchema)]
pub struct WaitlistList {
    waitlists: Vec<WaitlistView>,
}

#[utoipa::path(
    post,
    path = "/v1/waitlists",
    operation_id = "createWaitlist",
    tag = "waitlists",
    summary = "Create a waitlist",
    description = "Key: a secret key (`rw_sec_...`).",
    request_body = CreateWaitlist,
    responses(
        (status = 201, description = "The new waitlist.", body = WaitlistView),
        (status = 400, description = "`validation_failed` naming the `field`, or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateWaitlist>,
) -> ApiResult<(StatusCode, Json<WaitlistView>)> {
    let name = body
        .name
        .ok_or_else(|| ApiError::validation("name", "name is required"))?;
    let waitlist = app
        .waitlists()
        .create(&caller, &name, whole::option(body.boost))
        .await?;
    Ok((StatusCode::CREATED, Json(waitlist.into())))
}

#[utoipa::path(
    get,
    path = "/v1/waitlists",
    operation_id = "listWaitlists",
    tag = "waitlists",
    summary = "The program's waitlists, oldest first",
    description = "Key: a secret key (`rw_sec_...`).",
    responses(
        (status = 200, description = "The waitlists.", body = WaitlistList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<WaitlistList>> {
    let waitlists = app.waitlists().list(&caller).await?;
    Ok(Json(WaitlistList {
        waitlists: waitlists.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/waitlists/{id}",
    operation_id = "getWaitlist",
    tag = "waitlists",
    summary = "Read a waitlist",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The waitlist id (a UUID).")),
    responses(
        (status = 200, description = "The waitlist.", body = WaitlistView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such waitlist (or signup) in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<WaitlistView>> {
    let waitlist = app.waitlists().get(&caller, &id).await?;
    Ok(Json(waitlist.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinWaitlist {
    #[schema(value_type = String, format = Email, max_length = 254)]
    email: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9]{1,64}$")]
    referral_code: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// 201 with a new signup; 200 with the person's existing one. Publishable keys may call this.
#[utoipa::path(
    post,
    path = "/v1/waitlists/{id}/signups",
    operation_id = "joinWaitlist",
    tag = "waitlists",
    summary = "Sign up (idempotent on email)",
    description = "Key: a secret or publishable key. The person joins the program as a participant if they are new (with `referral_code`, as a referred participant); a referred signup moves the referrer's signup up by the waitlist's `boost`. Emits `signup.created` (and `signup.position_changed` for a boosted referrer).",
    params(("id" = String, Path, description = "The waitlist id (a UUID).")),
    request_body = JoinWaitlist,
    responses(
        (status = 201, description = "A new signup, last in line.", body = SignupView),
        (status = 200, description = "The person's existing signup.", body = SignupView),
        (status = 400, description = "`validation_failed` naming the `field` (also `referral_code` for an unknown code), or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 404, description = "`not_found`: no such waitlist (or signup) in the program.", body = ErrorBody),
        (status = 409, description = "`participant_mismatch`, `already_referred`, `referral_expired` or `concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn join(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<JoinWaitlist>,
) -> ApiResult<(StatusCode, Json<SignupView>)> {
    let person = NewParticipant {
        email: body.email,
        name: body.name,
        referral_code: body.referral_code,
        metadata: body.metadata,
        user_id: None,
    };
    let (placed, created) = app.waitlists().join(&caller, &id, person).await?;
    let status = created_or_existing(created);
    Ok((status, Json(placed.into())))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SignupPage {
    /// `next_cursor` of the previous page (the position it ended at).
    #[param(pattern = "^[0-9]+$")]
    cursor: Option<String>,
    /// Page size: 1-100.
    #[serde(default, deserialize_with = "page_limit")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 25)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SignupList {
    signups: Vec<SignupView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/waitlists/{id}/signups",
    operation_id = "listSignups",
    tag = "waitlists",
    summary = "Signups by position",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The waitlist id (a UUID)."), SignupPage),
    responses(
        (status = 200, description = "A page of signups, in order.", body = SignupList),
        (status = 400, description = "`validation_failed`: a bad `limit` or `cursor`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such waitlist (or signup) in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn signups(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    QueryParams(page): QueryParams<SignupPage>,
) -> ApiResult<Json<SignupList>> {
    let (placed, next_cursor) = app
        .waitlists()
        .signups(&caller, &id, page.cursor.as_deref(), page.limit)
        .await?;
    Ok(Json(SignupList {
        signups: placed.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Any key: a person reads their own place (the signup id is the capability).
#[utoipa::path(
    get,
    path = "/v1/waitlists/{id}/signups/{signup_id}",
    operation_id = "getSignup",
    tag = "waitlists",
    summary = "One signup with its current position",
    description = "Key: a secret or publishable key. (a person reads their own place; the signup id is the capability).",
    params(("id" = String, Path, description = "The waitlist id (a UUID)."), ("signup_id" = String, Path, description = "The signup id (a UUID).")),
    responses(
        (status = 200, description = "The signup.", body = SignupView),
        (status = 401, response = Unauthorized),
        (status = 404, description = "`not_found`: no such waitlist (or signup) in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn signup(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams((id, signup_id)): PathParams<(String, String)>,
) -> ApiResult<Json<SignupView>> {
    let placed = app.waitlists().signup(&caller, &id, &signup_id).await?;
    Ok(Json(placed.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveSignup {
    /// 1-based; a position past the end moves it last.
    #[schema(value_type = u64, minimum = 1)]
    position: Option<Whole<u64>>,
}

#[utoipa::path(
    patch,
    path = "/v1/waitlists/{id}/signups/{signup_id}",
    operation_id = "moveSignup",
    tag = "waitlists",
    summary = "Move a signup to a position",
    description = "Key: a secret key (`rw_sec_...`). A position past the end moves it last. Emits `signup.position_changed` for this signup only.",
    params(("id" = String, Path, description = "The waitlist id (a UUID)."), ("signup_id" = String, Path, description = "The signup id (a UUID).")),
    request_body = MoveSignup,
    responses(
        (status = 200, description = "The signup at its new position.", body = SignupView),
        (status = 400, description = "`validation_failed` (field `position`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such waitlist (or signup) in the program.", body = ErrorBody),
        (status = 409, description = "`concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn move_signup(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams((id, signup_id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<MoveSignup>,
) -> ApiResult<Json<SignupView>> {
    let Whole(position) = body
        .position
        .ok_or_else(|| ApiError::validation("position", "position is required"))?;
    let placed = app
        .waitlists()
        .move_to(&caller, &id, &signup_id, position)
        .await?;
    Ok(Json(placed.into()))
}

#[utoipa::path(
    delete,
    path = "/v1/waitlists/{id}/signups/{signup_id}",
    operation_id = "deleteSignup",
    tag = "waitlists",
    summary = "Remove a signup (the participant stays)",
    description = "Key: a secret key (`rw_sec_...`). Emits `signup.deleted`; everyone behind moves up one place.",
    params(("id" = String, Path, description = "The waitlist id (a UUID)."), ("signup_id" = String, Path, description = "The signup id (a UUID).")),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such waitlist (or signup) in the program.", body = ErrorBody),
        (status = 409, description = "`concurrent_update`.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn remove_signup(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams((id, signup_id)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    app.waitlists().remove(&caller, &id, &signup_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
