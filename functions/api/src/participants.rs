//! Participants and the inbound qualify webhook (Referral Factory's `POST /webhook/{token}/qualify`).

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, QueryParams, RawBody, created_or_existing, parse_json};
use crate::views::ParticipantView;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, StatusCode, Uri};
use refwire_core::Error;
use refwire_core::participants::NewParticipant;
use serde::Deserialize;
use serde_json::{Value, json};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    email: Option<String>,
    user_id: Option<String>,
    name: Option<String>,
    referral_code: Option<String>,
    metadata: Option<Value>,
}

/// 201 with a new participant; 200 with the existing one for a known email or user id.
pub async fn join(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<JoinRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let request = NewParticipant {
        email: body.email,
        user_id: body.user_id,
        name: body.name,
        referral_code: body.referral_code,
        metadata: body.metadata,
    };
    let (participant, created) = app.participants().join(&caller, request).await?;
    let status = created_or_existing(created);
    Ok((status, Json(json!(ParticipantView::of(&participant)))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    email: Option<String>,
    code: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<Value>> {
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
    let participants: Vec<_> = page.participants.iter().map(ParticipantView::of).collect();
    Ok(Json(
        json!({ "participants": participants, "next_cursor": page.next_cursor }),
    ))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let participant = app.participants().get(&caller, &id).await?;
    Ok(Json(json!(ParticipantView::of(&participant))))
}

pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.participants().delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn qualify(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let participant = app.participants().qualify(&caller, &id).await?;
    Ok(Json(json!(ParticipantView::of(&participant))))
}

/// Issues the program's inbound token; the URL (with the token) is shown only in this response.
pub async fn rotate_inbound_token(
    State(app): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let token = app.participants().rotate_inbound_token(&caller).await?;
    let qualify_url = format!("{}/webhook/{token}/qualify", public_base_url(&headers));
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "qualify_url": qualify_url,
            "token": token,
            "accepts": ["form code=<code>", "JSON {\"code\": \"<code>\"}", "query ?code=<code>"],
        })),
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

#[derive(Deserialize)]
pub struct CodeField {
    code: Option<String>,
}

/// `POST /webhook/{token}/qualify`: no API key; the token is the secret. The code may come as a
/// form field (`curl -d "code=..."`), as JSON, or in the query string.
pub async fn inbound_qualify(
    State(app): State<AppState>,
    Path(token): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    let code = inbound_code(&uri, &headers, &body)?;
    match app.participants().qualify_inbound(&token, &code).await {
        Ok(participant) => Ok(Json(json!({
            "qualified": participant.qualified,
            "participant": ParticipantView::of(&participant),
        }))),
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
