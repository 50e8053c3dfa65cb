//! Cross-origin calls from browsers: only the publishable-key routes answer another origin, and
//! only origins the program lists in its `allowed_origins` setting.
//!
//! A preflight carries no key, so it cannot name a program: it is answered for any origin on the
//! publishable routes. The check that matters runs when the real request is authenticated
//! ([`check_origin`], from the `Caller` extractor), before anything is changed: a publishable key
//! from an unlisted origin, and a secret key or dashboard session from any other origin, are 403.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use refwire_core::programs::KeyKind;
use refwire_core::service::Principal;

/// The routes a publishable key may call (`*` is one path segment). Secret-only routes that share
/// a pattern (`/v1/api/referral/stats`) still refuse a publishable key.
const PUBLISHABLE_ROUTES: &[&str] = &[
    "/v1/api/referral/*",
    "/v1/waitlists/*/signups",
    "/v1/waitlists/*/signups/*",
];

/// The `Origin` of a request made by a page on another origin; `None` for same-origin requests and
/// for clients that are no browser (they send no `Origin`).
pub fn foreign_origin(headers: &HeaderMap) -> Option<&str> {
    let origin = headers.get(ORIGIN)?.to_str().unwrap_or("null");
    let own_host = headers.get(HOST).and_then(|host| host.to_str().ok());
    let origin_host = url::Url::parse(origin).ok().and_then(|url| {
        let host = url.host_str()?.to_string();
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    });
    let same = matches!((own_host, origin_host), (Some(own), Some(theirs)) if own.eq_ignore_ascii_case(&theirs));
    (!same).then_some(origin)
}

/// Refuses a cross-origin request the program has not allowed.
pub async fn check_origin(
    app: &AppState,
    principal: &Principal,
    origin: &str,
) -> Result<(), ApiError> {
    let allowed = match principal.kind {
        KeyKind::Publishable => app.program(principal).await?.settings.allows_origin(origin),
        KeyKind::Secret | KeyKind::Inbound => false,
    };
    if allowed {
        return Ok(());
    }
    let message = match principal.kind {
        KeyKind::Publishable => format!(
            "origin {origin} is not in this program's allowed_origins (PUT /v1/api/referral/settings)"
        ),
        KeyKind::Secret | KeyKind::Inbound => {
            "secret keys work only from servers; a web page uses the publishable key".to_string()
        }
    };
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        message,
    ))
}

/// Answers preflights and adds `Access-Control-Allow-Origin` on the publishable routes.
pub async fn cors(request: Request, next: Next) -> Response {
    let origin = foreign_origin(request.headers())
        .filter(|_| is_publishable_route(request.uri().path()))
        .and_then(|origin| HeaderValue::from_str(origin).ok());
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, x-api-key, content-type"),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(VARY, HeaderValue::from_static("Origin"));
    response
}

fn is_publishable_route(path: &str) -> bool {
    PUBLISHABLE_ROUTES.iter().any(|pattern| {
        let mut segments = path.split('/');
        let mut wanted = pattern.split('/');
        loop {
            match (segments.next(), wanted.next()) {
                (None, None) => return true,
                (Some(segment), Some("*")) if !segment.is_empty() => {}
                (Some(segment), Some(literal)) if segment == literal => {}
                _ => return false,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishable_routes_match_whole_segments() {
        assert!(is_publishable_route("/v1/api/referral/create"));
        assert!(is_publishable_route("/v1/waitlists/abc/signups"));
        assert!(is_publishable_route("/v1/waitlists/abc/signups/sgn_1"));
        assert!(!is_publishable_route("/v1/waitlists/abc"));
        assert!(!is_publishable_route("/v1/api/referral/"));
        assert!(!is_publishable_route("/v1/api/referral/a/b"));
        assert!(!is_publishable_route("/v1/webhooks"));
    }

    #[test]
    fn only_another_host_is_a_foreign_origin() {
        let headers = |origin: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(HOST, HeaderValue::from_static("refwire.example.com"));
            headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
            headers
        };
        assert_eq!(
            foreign_origin(&headers("https://refwire.example.com")),
            None
        );
        assert_eq!(
            foreign_origin(&headers("https://shop.example.com")),
            Some("https://shop.example.com")
        );
        assert_eq!(foreign_origin(&headers("null")), Some("null"));
        assert_eq!(foreign_origin(&HeaderMap::new()), None);
    }
}
