//! The one JSON error shape: `{"error":{"code":"...","message":"...","field":"..."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use refwire_core::{Error, ErrorChain};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into()).filter(|field: &String| !field.is_empty());
        self
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", message).with_field(field)
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::Validation { field, .. } => {
                let error = ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", message);
                match field {
                    Some(field) => error.with_field(field),
                    None => error,
                }
            }
            Error::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            Error::Conflict { code, .. } => ApiError::new(StatusCode::CONFLICT, code, message),
            Error::Unauthorized => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message),
            Error::Forbidden => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            Error::Unavailable(_) => {
                // The one place a store failure is logged: the caller sees only the generic message.
                tracing::error!(error = %ErrorChain(&err), "answering 503");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

/// The one error shape of every 4xx/5xx response. Known codes: `validation_failed`,
/// `invalid_json`, `invalid_body` (400), `unauthorized` (401), `forbidden` (403), `not_found` (404),
/// `method_not_allowed` (405), `request_timeout` (408), `referral_expired`, `not_completed`,
/// `already_referred`, `referee_mismatch`, `referrals_disabled`, `not_referred`,
/// `participant_mismatch`, `waitlist_gap_full`, `webhook_inactive`, `delivery_in_progress`,
/// `concurrent_update` (409), `payload_too_large` (413), `uri_too_long` (414), `headers_too_large`
/// (431), `unavailable` (503); refwire-local also answers `malformed_request` (400) to a request
/// that is not HTTP/1.1 at all.
#[derive(Serialize, ToSchema)]
#[schema(as = Error, example = json!({"error": {"code": "validation_failed", "message": "unknown milestone \"paid\"; configured milestones: signed_up, first_purchase, completed", "field": "milestone"}}))]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// Machine-readable error code.
    #[schema(example = "validation_failed")]
    code: &'static str,
    /// Human-readable explanation; never contains secrets or internal detail.
    message: String,
    /// The request field at fault, for `validation_failed` errors that concern one field.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON error body, for a server that must write the response itself.
    pub fn body(self) -> Vec<u8> {
        serde_json::to_vec(&self.into_body()).unwrap_or_default()
    }

    fn into_body(self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.into_body())).into_response()
    }
}
