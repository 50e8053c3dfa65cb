//! The dashboard at `/dashboard/`: a sign-in page, then one page of plain JavaScript that works
//! through the same JSON API as every client, authenticated by a session cookie and its CSRF
//! token. Every asset is compiled into the binary, so it works the same in refwire-local and
//! behind API Gateway, and nothing is fetched from anywhere else.
//!
//! Only the sign-in page (and the widget, `/refwire.js`) is served without a session.

mod export;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::RawBody;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HOST, LOCATION, ORIGIN,
    REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cookie::{Cookie, SameSite};
use refwire_core::Error;
use refwire_core::programs::sessions::{DashboardSession, SESSION_LIFETIME};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub const SESSION_COOKIE: &str = "refwire_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

const STYLE: &str = include_str!("../../assets/dashboard.css");
const SIGN_IN_PAGE: &str = include_str!("../../assets/sign-in.html");
const APP_PAGE: &str = include_str!("../../assets/app.html");
const APP_SCRIPT: &str = include_str!("../../assets/app.js");
const WIDGET_SCRIPT: &str = include_str!("../../assets/refwire.js");

/// Scripts only from this server, the one inline stylesheet by its hash, no frames, no plugins,
/// and forms and fetches only to this origin.
static CONTENT_SECURITY_POLICY_VALUE: LazyLock<HeaderValue> = LazyLock::new(|| {
    let style_hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'sha256-{style_hash}'; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).expect("the policy is ASCII")
});

pub fn routes() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard/") }))
        .route("/dashboard", get(|| async { Redirect::to("/dashboard/") }))
        .route("/dashboard/", get(home))
        .route("/dashboard/sign-in", post(sign_in))
        .route("/dashboard/sign-out", post(sign_out))
        .route("/dashboard/app.js", get(app_script))
        .route("/dashboard/export/referrals.csv", get(export::referrals))
        .route(
            "/dashboard/export/participants.csv",
            get(export::participants),
        )
        .layer(axum::middleware::from_fn(page_headers));
    pages.route("/refwire.js", get(widget_script))
}

/// The headers every dashboard response carries.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY_VALUE.clone(),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it Chrome sends `Origin: null` with the page's own form posts.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The session cookie's value, if the request has one.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == SESSION_COOKIE)
        .map(|cookie| cookie.value().to_string())
}

/// The request's session: `None` without one or with one that is expired, forged or revoked.
pub(crate) async fn session(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<Option<DashboardSession>, ApiError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    match app.dashboard_session(&token).await {
        Ok(session) => Ok(Some(session)),
        Err(Error::Unauthorized) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// A page or asset that needs a session; without one, 401 and nothing of the page.
pub(crate) async fn require_session(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<DashboardSession, ApiError> {
    session(app, headers)
        .await?
        .ok_or_else(|| Error::Unauthorized.into())
}

async fn home(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(session) = session(&app, &headers).await? else {
        return Ok(sign_in_page(StatusCode::OK, ""));
    };
    let program = app.program(&session.principal).await?;
    let config = serde_json::json!({
        "csrf_token": session.csrf_token,
        "program": {"id": program.id, "name": program.name},
        "event_types": refwire_core::events::BUILT_IN_EVENTS,
    });
    Ok(html(
        StatusCode::OK,
        APP_PAGE
            .replace("{{style}}", STYLE)
            .replace("{{config}}", &script_safe_json(&config))
            .replace("{{csrf_token}}", &session.csrf_token),
    ))
}

async fn app_script(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    require_session(&app, &headers).await?;
    Ok(javascript(APP_SCRIPT))
}

/// The widget is meant for other sites' pages, so it is served to any origin.
async fn widget_script() -> Response {
    let mut response = javascript(WIDGET_SCRIPT);
    response.headers_mut().insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `key=<secret key>` from the sign-in form, exchanged for the session cookie. The key arrives in
/// the body of a POST only, so it is never in a URL or an access log.
async fn sign_in(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    if !same_origin_form(&headers) {
        return Ok(sign_in_page(
            StatusCode::FORBIDDEN,
            "This sign-in form was sent from another site.",
        ));
    }
    let key = form_field(&body, "key").unwrap_or_default();
    match app.open_dashboard_session(key.trim()).await {
        Ok(session) => {
            let cookie = session_cookie(
                session.token,
                secure(&headers),
                cookie::time::Duration::seconds(SESSION_LIFETIME.num_seconds()),
            );
            Ok(redirect_with_cookie(cookie))
        }
        Err(Error::Unauthorized) => Ok(sign_in_page(
            StatusCode::UNAUTHORIZED,
            "That is not a secret key of a program here. Keys start with rw_sec_.",
        )),
        Err(other) => Err(other.into()),
    }
}

/// Ends the session in this browser; the form carries the CSRF token, like every other change.
async fn sign_out(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let session = require_session(&app, &headers).await?;
    let presented = form_field(&body, "csrf_token").unwrap_or_default();
    if !same_origin_form(&headers) || presented != session.csrf_token {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "the sign-out form did not carry this session's CSRF token",
        ));
    }
    let cookie = session_cookie(
        String::new(),
        secure(&headers),
        cookie::time::Duration::ZERO,
    );
    Ok(redirect_with_cookie(cookie))
}

fn session_cookie(value: String, secure: bool, max_age: cookie::time::Duration) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .build()
}

fn redirect_with_cookie(cookie: Cookie<'static>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static("/dashboard/"));
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.insert(SET_COOKIE, value);
    }
    response
}

/// Whether the page was reached over https: API Gateway says so in `X-Forwarded-Proto`;
/// refwire-local serves plain http on loopback.
fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// A form posted by a page of this origin. Browsers send `Origin` with every POST (and
/// `Sec-Fetch-Site` where they have it); a request without `Origin` comes from no browser, where a
/// forged form cannot come from.
fn same_origin_form(headers: &HeaderMap) -> bool {
    let fetched_from_here = headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() == b"same-origin");
    let origin_is_here =
        headers.contains_key(HOST) && crate::cors::foreign_origin(headers).is_none();
    headers.get(ORIGIN).is_none() || fetched_from_here || origin_is_here
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.into_owned())
}

fn sign_in_page(status: StatusCode, error: &str) -> Response {
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(
            r#"<p class="error" role="alert">{}</p>"#,
            escape_html(error)
        )
    };
    html(
        status,
        SIGN_IN_PAGE
            .replace("{{style}}", STYLE)
            .replace("{{error}}", &error),
    )
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn javascript(source: &'static str) -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        source,
    )
        .into_response()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// JSON that can sit inside a `<script type="application/json">` element: `<` is escaped so no
/// value can close the element.
fn script_safe_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}
