//! Size limits checked before any route runs, so an oversized request is refused at once, in the
//! JSON error shape, without reading its body. HTTP servers below the Router (hyper in
//! refwire-local, API Gateway on AWS) have larger limits of their own; these are Refwire's.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Request bodies above this get 413: the largest body the API takes (a webhook with its field
/// maps, a custom event's data) is a few KB, and buffering a body costs memory per request.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// URIs (path and query) above this get 414: the longest the API uses is a route with two ids and
/// a few query parameters, far below, and 8 KB is what common proxies let through.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// A header section above this gets 431: a key and the usual headers take well under 1 KB, and
/// headers are held in memory whole before any route runs.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body is larger than 256 KB",
    )
}

/// Refuses a request whose URI, header section or declared `Content-Length` is over its limit.
/// A body without a declared length (chunked) is still cut off at the limit while it is read.
pub async fn refuse_oversized(request: Request, next: Next) -> Response {
    if let Some(error) = oversized(&request) {
        return error.into_response();
    }
    next.run(request).await
}

fn oversized(request: &Request) -> Option<ApiError> {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |path| path.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "the request URI is longer than 8 KB",
        ));
    }
    // Counted as sent: "name: value\r\n".
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "the request headers are larger than 16 KB",
        ));
    }
    // An unparsable Content-Length never gets here: hyper and API Gateway refuse it first.
    let declared_length: u64 = request
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    (declared_length > MAX_BODY_BYTES as u64).then(payload_too_large)
}
