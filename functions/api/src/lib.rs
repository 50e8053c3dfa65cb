//! The whole Refwire HTTP API, the dashboard and the widget as one axum Router. The Lambda
//! (`lambda/src/main.rs`, under `lambda_http`) and `refwire-local` serve this same Router; neither
//! adds routes of its own.

mod cors;
mod dashboard;
mod error;
mod extract;
mod limits;
mod openapi;
mod participants;
mod programs;
mod referrals;
mod views;
mod waitlists;
mod webhooks;

pub use error::ApiError;
pub use limits::MAX_BODY_BYTES;
pub use openapi::description as openapi_description;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{delete, get, post};
use refwire_core::service::Refwire;
use std::sync::Arc;

pub type AppState = Arc<Refwire>;

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/health", get(openapi::health))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/programs", post(programs::create_program))
        .route("/v1/programs/{program_id}/keys", post(programs::issue_key))
        .route(
            "/v1/programs/{program_id}/keys/{key_id}",
            delete(programs::revoke_key),
        )
        .route(
            "/v1/api/referral/settings",
            get(referrals::get_settings).put(referrals::update_settings),
        )
        .route("/v1/api/referral/create", post(referrals::create))
        .route("/v1/api/referral/milestone", post(referrals::milestone))
        .route(
            "/v1/api/referral/claim-reward",
            post(referrals::claim_reward),
        )
        .route(
            "/v1/api/referral/claim-referee-reward",
            post(referrals::claim_referee_reward),
        )
        .route("/v1/api/referral/leaderboard", get(referrals::leaderboard))
        .route("/v1/api/referral/stats", get(referrals::stats))
        .route("/v1/api/referral/{code}", get(referrals::get))
        .route("/v1/api/referral/{code}/events", get(referrals::events))
        .route("/v1/api/referrals", get(referrals::list))
        .route(
            "/v1/events",
            get(referrals::list_events).post(webhooks::publish_event),
        )
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/test", post(webhooks::send_test))
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route("/v1/webhooks/{id}/recover", post(webhooks::recover))
        .route("/v1/deliveries/{id}", get(webhooks::get_delivery))
        .route("/v1/deliveries/{id}/retry", post(webhooks::retry_delivery))
        .route(
            "/v1/participants",
            post(participants::join).get(participants::list),
        )
        .route(
            "/v1/participants/{id}",
            get(participants::get).delete(participants::delete),
        )
        .route("/v1/participants/{id}/qualify", post(participants::qualify))
        .route(
            "/v1/inbound/rotate-token",
            post(participants::rotate_inbound_token),
        )
        .route(
            "/webhook/{token}/qualify",
            post(participants::inbound_qualify),
        )
        .route(
            "/v1/waitlists",
            post(waitlists::create).get(waitlists::list),
        )
        .route("/v1/waitlists/{id}", get(waitlists::get))
        .route(
            "/v1/waitlists/{id}/signups",
            post(waitlists::join).get(waitlists::signups),
        )
        .route(
            "/v1/waitlists/{id}/signups/{signup_id}",
            get(waitlists::signup)
                .patch(waitlists::move_signup)
                .delete(waitlists::remove_signup),
        )
        .route("/api/v1/webhooks/subscribe", post(webhooks::subscribe))
        .route(
            "/api/v1/webhooks/unsubscribe/{id}",
            delete(webhooks::unsubscribe),
        )
        .merge(dashboard::routes())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(cors::cors))
        .layer(axum::middleware::from_fn(limits::refuse_oversized))
        .with_state(app)
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
