//! Extractors whose every rejection is the JSON error shape (axum's own reject in plain text).

use crate::AppState;
use crate::error::ApiError;
use crate::limits::payload_too_large;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use refwire_core::service::Principal;
use serde::de::DeserializeOwned;
use std::error::Error;
use subtle::ConstantTimeEq;

/// 201 for something the call created, 200 for the existing thing an idempotent call returned.
pub fn created_or_existing(created: bool) -> axum::http::StatusCode {
    if created {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::OK
    }
}

/// A JSON body. Malformed JSON is 400 `invalid_json`; a wrong type or missing field is 400
/// `validation_failed` naming the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The body's bytes, whatever their type; too large is 413 `payload_too_large`, and a body that
/// stops arriving (refwire-local's body timeout) is 408 `request_timeout`.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large()
                } else if timed_out(&rejection) {
                    ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        "the request body did not arrive in time",
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_body",
                        "could not read the request body",
                    )
                }
            })
    }
}

/// Whether reading the body failed because tower-http's body timeout ran out; axum wraps that error
/// a few levels deep.
fn timed_out(rejection: &BytesRejection) -> bool {
    std::iter::successors(Some(rejection as &dyn Error), |err| (*err).source())
        .any(|err| err.is::<tower_http::timeout::TimeoutError>())
}

pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            ApiError::validation(path.trim_start_matches('.'), strip_position(&inner))
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("request body is not valid JSON: {}", strip_position(&inner)),
            )
        }
    })?;
    deserializer.end().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "trailing characters after the JSON body",
        )
    })?;
    Ok(value)
}

/// serde_json appends " at line 1 column 12"; the message reads better without it.
fn strip_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_string(),
        None => text,
    }
}

/// An optional query filter: absent is `None`; a value `parse` does not know is 400
/// `validation_failed` naming `field` and listing the `allowed` values.
pub fn query_filter<T>(
    value: Option<String>,
    field: &str,
    allowed: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    value
        .map(|value| {
            parse(&value)
                .ok_or_else(|| ApiError::validation(field, format!("must be one of {allowed}")))
        })
        .transpose()
}

/// Query-string parameters; a bad value is 400 `validation_failed`.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    rejection.body_text(),
                )
            })
    }
}

/// The API key from `X-API-Key: <key>` or `Authorization: Bearer <key>`.
fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(key) = parts.headers.get("x-api-key") {
        return key.to_str().ok().map(str::trim);
    }
    let authorization = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// A caller authenticated by a program's API key, or by a dashboard session cookie together with
/// that session's CSRF token in `X-CSRF-Token` (a cookie alone is never enough). A page on another
/// origin is held to the program's `allowed_origins` before the handler runs.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = match presented_key(parts) {
            Some(key) => state.authenticate(key).await?,
            None => session_principal(parts, state).await?,
        };
        if let Some(origin) = crate::cors::foreign_origin(&parts.headers) {
            crate::cors::check_origin(state, &principal, origin).await?;
        }
        Ok(Caller(principal))
    }
}

async fn session_principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let token =
        crate::dashboard::session_token(&parts.headers).ok_or(refwire_core::Error::Unauthorized)?;
    let session = state.dashboard_session(&token).await?;
    let presented = parts
        .headers
        .get(crate::dashboard::CSRF_HEADER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    if !bool::from(presented.ct_eq(session.csrf_token.as_bytes())) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "a dashboard session must send its X-CSRF-Token",
        ));
    }
    Ok(session.principal)
}

/// A caller holding the operator key.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or(refwire_core::Error::Unauthorized)?;
        state.authenticate_operator(key)?;
        Ok(Operator)
    }
}
