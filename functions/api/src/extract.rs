//! Extractors whose every rejection is the JSON error shape (axum's own reject in plain text).

use crate::AppState;
use crate::error::ApiError;
use crate::limits::payload_too_large;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use refwire_core::service::Principal;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
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

/// A JSON body. Malformed JSON is 400 `invalid_json`; a wrong type, a missing or unknown field, or
/// a control character in a string is 400 `validation_failed` naming the field.
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
    // Syntax first, so that every error of the typed parse below is about the content (serde_json
    // reports some of those, such as `null` for an enum, as syntax errors).
    let document: Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("request body is not valid JSON: {}", strip_position(&err)),
        )
    })?;
    // From the bytes, not the document: numbers keep the digits they were given.
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let message = strip_position(err.inner());
        ApiError::validation(&field_at_fault(&path, &message), message)
    })?;
    refuse_control_characters_in(&document, "", true)?;
    Ok(value)
}

/// The field a deserialization error is about: its path (which ends in the field for an unknown
/// one), or for a missing field, which serde reports at the enclosing object, that field under it.
fn field_at_fault(path: &str, message: &str) -> String {
    let path = path.trim_start_matches('.');
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match missing {
        Some(name) if path.is_empty() => name.to_string(),
        Some(name) => format!("{path}.{name}"),
        None => path.to_string(),
    }
}

/// Refuses a control character (NUL, newline, escape, DEL, ...) in an id, code, name or any other
/// string: none of them can mean one, and some stores, logs and receivers mishandle them.
pub fn refuse_control_characters(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Every key and string in a JSON body, except inside the free-form `metadata` and `data` objects,
/// which are the caller's own JSON and are delivered as given.
fn refuse_control_characters_in(value: &Value, path: &str, top: bool) -> Result<(), ApiError> {
    match value {
        Value::String(text) => refuse_control_characters(path, text),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(index, item)| {
            refuse_control_characters_in(item, &format!("{path}[{index}]"), false)
        }),
        Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            refuse_control_characters(&field, key)?;
            if top && (key == "metadata" || key == "data") {
                return Ok(());
            }
            refuse_control_characters_in(item, &field, false)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// `limit=`: parsed here so that text, fractions and numbers too large for any page get a clear
/// message; the service checks the range (1-100).
pub fn page_limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map(Some)
        .map_err(|_| D::Error::custom("must be a whole number between 1 and 100"))
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

/// Query-string parameters; a bad value (or a control character in one) is 400
/// `validation_failed` naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default().as_bytes();
        for (name, value) in url::form_urlencoded::parse(query) {
            refuse_control_characters(&name, &value)?;
        }
        let deserializer = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query));
        serde_path_to_error::deserialize(deserializer)
            .map(QueryParams)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                ApiError::validation(&field_at_fault(&path, &message), message)
            })
    }
}

/// Path parameters; a control character in one is 400 `validation_failed` naming it.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let not_utf8 = |_| ApiError::validation("", "path parameters must be UTF-8 text");
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(not_utf8)?;
        for (name, value) in &raw {
            refuse_control_characters(name, value)?;
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParams(value))
            .map_err(|rejection| ApiError::validation("", rejection.body_text()))
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
