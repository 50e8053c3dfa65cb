//! Participants and the inbound qualify webhook (Referral Factory's `POST /webhook/{token}/qualify`).

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{
    Caller, JsonBody, PathParams, QueryParams, RawBody, created_or_existing, page_limit,
    parse_json, refuse_control_characters,
};
use crate::openapi::{Forbidden, PayloadTooLarge, Unauthorized, Unavailable};
use crate::views::ParticipantView;
use axum::Json;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, StatusCode, Uri};
use refwire_core::Error;
use refwire_core::participants::NewParticipant;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

type ApiResult<T> = Result<T, ApiError>;

/// At least one of `email` and `user_id`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ParticipantJoin)]
pub struct JoinRequest {
    /// Unique in the program, compared case-insensitively.
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    /// Your id for this person, unique in the program.
    #[schema(min_length = 1, max_length = 256)]
    user_id: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// Who referred them: a participant's code or a referral code.
    #[schema(pattern = "^[A-Za-z0-9]{1,64}$")]
    referral_code: Option<String>,
    /// At most 16 KB of JSON.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// 201 with a new participant; 200 with the existing one for a known email or user id.
#[utoipa::path(
    post,
    path = "/v1/participants",
    operation_id = "joinParticipant",
    tag = "participants",
    summary = "Join the program (idempotent on email and user_id)",
    description = "Key: a secret key (`rw_sec_...`). Joining with `referral_code` (a participant's code or a referral code) reports the program's first milestone on the referrer's referral, with the newcomer as referee; caps and rules of the referral API apply.",
    request_body = JoinRequest,
    responses(
        (status = 201, description = "A new participant.", body = ParticipantView),
        (status = 200, description = "The participant with this email or user_id, unchanged.", body = ParticipantView),
        (status = 400, description = "`validation_failed` naming the `field` (also `referral_code` when no participant or referral has the code, and `user_id` when the referrer has `referral_max_per_user` pending referrals), or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, description = "`participant_mismatch` (the email and the user_id belong to two participants), `already_referred`, `referral_expired`, `referrals_disabled` or `concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn join(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<JoinRequest>,
) -> ApiResult<(StatusCode, Json<ParticipantView>)> {
    let request = NewParticipant {
        email: body.email,
        user_id: body.user_id,
        name: body.name,
        referral_code: body.referral_code,
        metadata: body.metadata,
    };
    let (participant, created) = app.participants().join(&caller, request).await?;
    let status = created_or_existing(created);
    Ok((status, Json(participant.into())))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Compared case-insensitively.
    email: Option<String>,
    /// The participant's own code, case-insensitive.
    #[param(pattern = "^[A-Za-z0-9]{1,64}$")]
    code: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size: 1-100.
    #[serde(default, deserialize_with = "page_limit")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 25)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ParticipantPage {
    participants: Vec<ParticipantView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/participants",
    operation_id = "listParticipants",
    tag = "participants",
    summary = "List participants newest first, or find one by email or code",
    description = "Key: a secret key (`rw_sec_...`).",
    params(ListParams),
    responses(
        (status = 200, description = "A page of participants.", body = ParticipantPage),
        (status = 400, description = "`validation_failed`: a bad `limit`, `cursor` or `code`, or both `email` and `code`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<ParticipantPage>> {
    let page = app
        .participants()
        .list(
            &caller,
            params.email.as_deref(),
            params.code.as_deref(),
            params.cursor.as_deref(),
            params.limit,
        )
        .await?;
    Ok(Json(ParticipantPage {
        participants: page.participants.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/participants/{id}",
    operation_id = "getParticipant",
    tag = "participants",
    summary = "Read a participant",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The participant id (`par_...`).")),
    responses(
        (status = 200, description = "The participant.", body = ParticipantView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no participant with this id in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<ParticipantView>> {
    let participant = app.participants().get(&caller, &id).await?;
    Ok(Json(participant.into()))
}

#[utoipa::path(
    delete,
    path = "/v1/participants/{id}",
    operation_id = "deleteParticipant",
    tag = "participants",
    summary = "Delete a participant (emits participant.deleted; their referrals stay)",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The participant id (`par_...`).")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no participant with this id in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<StatusCode> {
    app.participants().delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/v1/participants/{id}/qualify",
    operation_id = "qualifyParticipant",
    tag = "participants",
    summary = "Qualify a referred participant (idempotent)",
    description = "Key: a secret key (`rw_sec_...`). Reports the reward milestone on the participant's referral, which completes it (`referral.completed`, rewards), and marks them qualified (`participant.qualified`). A repeat returns the same participant.",
    params(("id" = String, Path, description = "The participant id (`par_...`).")),
    responses(
        (status = 200, description = "The qualified participant.", body = ParticipantView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no participant with this id in the program.", body = ErrorBody),
        (status = 409, description = "`not_referred` (the participant joined directly), `referral_expired` or `concurrent_update`.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn qualify(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<ParticipantView>> {
    let participant = app.participants().qualify(&caller, &id).await?;
    Ok(Json(participant.into()))
}

#[derive(Serialize, ToSchema)]
pub struct InboundUrl {
    #[schema(
        format = "uri",
        example = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook/rw_in_.../qualify"
    )]
    qualify_url: String,
    token: String,
    /// The ways the code may be sent.
    accepts: [&'static str; 3],
}

/// Issues the program's inbound token; the URL (with the token) is shown only in this response.
#[utoipa::path(
    post,
    path = "/v1/inbound/rotate-token",
    operation_id = "rotateInboundToken",
    tag = "participants",
    summary = "Issue the program's inbound qualify URL (replaces the previous one)",
    description = "Key: a secret key (`rw_sec_...`). The URL contains a secret token, shown only in this response and stored as a hash. The previous token stops working at once.",
    responses(
        (status = 201, description = "The new inbound URL.", body = InboundUrl),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn rotate_inbound_token(
    State(app): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<InboundUrl>)> {
    let token = app.participants().rotate_inbound_token(&caller).await?;
    let qualify_url = format!("{}/webhook/{token}/qualify", public_base_url(&headers));
    Ok((
        StatusCode::CREATED,
        Json(InboundUrl {
            qualify_url,
            token,
            accepts: [
                "form code=<code>",
                "JSON {\"code\": \"<code>\"}",
                "query ?code=<code>",
            ],
        }),
    ))
}

/// Where clients reached this server: the Host header, over https when a proxy (API Gateway)
/// says so.
fn public_base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|proto| proto.to_str().ok())
        .filter(|proto| *proto == "https" || *proto == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// The participant's code, as a form field or JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeField {
    code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InboundQualified {
    qualified: bool,
    participant: ParticipantView,
}

/// `POST /webhook/{token}/qualify`: no API key; the token is the secret. The code may come as a
/// form field (`curl -d "code=..."`), as JSON, or in the query string.
#[utoipa::path(
    post,
    path = "/webhook/{token}/qualify",
    operation_id = "inboundQualify",
    tag = "participants",
    summary = "Referral Factory's inbound webhook: qualify a referred participant by their code",
    description = "No API key: the token in the path is the secret. The code may be sent as a form field (`code=...`, as `curl -d` sends it), as JSON `{\"code\": \"...\"}`, or as the query parameter `code`. Repeating it answers 200 with the same result.",
    params(("token" = String, Path), ("code" = Option<String>, Query, description = "The participant's code, when the body does not carry it.")),
    request_body(content((Option<CodeField> = "application/x-www-form-urlencoded"), (Option<CodeField> = "application/json"))),
    security(()),
    responses(
        (status = 200, description = "The participant, qualified.", body = InboundQualified),
        (status = 400, description = "`validation_failed` (field `code`): no code, or not letters and digits.", body = ErrorBody),
        (status = 404, description = "`not_found`: no participant has this code (\"participant not found\"), or the token is not the program's current inbound token (answered exactly like an unknown route).", body = ErrorBody),
        (status = 409, description = "`not_referred`, `referral_expired` or `concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn inbound_qualify(
    State(app): State<AppState>,
    PathParams(token): PathParams<String>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<InboundQualified>> {
    let code = inbound_code(&uri, &headers, &body)?;
    refuse_control_characters("code", &code)?;
    match app.participants().qualify_inbound(&token, &code).await {
        Ok(participant) => Ok(Json(InboundQualified {
            qualified: participant.qualified,
            participant: participant.into(),
        })),
        // A wrong token answers exactly as a route that does not exist.
        Err(Error::NotFound("route")) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for POST {}", uri.path()),
        )),
        Err(err) => Err(err.into()),
    }
}

fn inbound_code(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if is_json {
        parse_json::<CodeField>(body)?.code
    } else {
        form_code(body)?
    };
    let from_query = match uri.query() {
        Some(query) => form_code(query.as_bytes())?,
        None => None,
    };
    from_body
        .or(from_query)
        .ok_or_else(|| ApiError::validation("code", "send the participant's code as code=<code>"))
}

/// The `code` field of a form-encoded body or query string.
fn form_code(form: &[u8]) -> Result<Option<String>, ApiError> {
    let mut code = None;
    for (name, value) in url::form_urlencoded::parse(form) {
        if name == "code" {
            if code.is_some() {
                return Err(ApiError::validation("code", "give one code"));
            }
            code = Some(value.into_owned());
        }
    }
    Ok(code)
}
