//! The one JSON error shape: `{"error":{"code":"...","message":"...","field":"..."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use refwire_core::Error;
use serde_json::json;

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
            Error::Unavailable => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}
