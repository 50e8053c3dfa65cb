//! Webhook routes: endpoints, the delivery log, resends, custom events, and the
//! ReferralLoop-compatible subscribe/unsubscribe pair.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, QueryParams, query_filter};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use refwire_core::delivery::{Delivery, DeliveryState};
use refwire_core::time::{self, Timestamp};
use refwire_core::webhook::{EnvelopeStyle, Webhook, WebhookFields};
use serde::Deserialize;
use serde_json::{Value, json};

type ApiResult<T> = Result<T, ApiError>;

/// A webhook as the API shows it: never its secrets.
fn webhook_view(webhook: &Webhook) -> Value {
    json!({
        "id": webhook.id,
        "name": webhook.name,
        "url": webhook.url,
        "events": webhook.events,
        "active": webhook.active,
        "timeout_seconds": webhook.timeout_seconds,
        "rate_limit": webhook.rate_limit,
        "retry_schedule": webhook.retry_schedule,
        "headers": webhook.headers,
        "method": webhook.method,
        "format": webhook.format,
        "field_map": webhook.field_map,
        "hidden_fields": webhook.hidden_fields,
        "disabled_reason": webhook.disabled_reason,
        "failing_since": webhook.failing_since.as_ref().map(time::format),
        "previous_secret_expires_at": webhook.previous_secret.as_ref().map(|previous| time::format(&previous.expires_at)),
        "created_at": time::format(&webhook.created_at),
        "updated_at": time::format(&webhook.updated_at),
    })
}

/// The view plus the signing secret, for the one response that shows it. `signingSecret` is the
/// spelling Tolinku's client code reads.
fn webhook_with_secret(webhook: &Webhook) -> Value {
    let mut view = webhook_view(webhook);
    view["signing_secret"] = json!(webhook.secret);
    view["signingSecret"] = json!(webhook.secret);
    view
}

fn delivery_summary(delivery: &Delivery) -> Value {
    let last = delivery.last_attempt();
    json!({
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event": delivery.event,
        "state": delivery.state.as_str(),
        "attempts": delivery.attempts.len(),
        "last_status": last.and_then(|attempt| attempt.status),
        "last_error": last.and_then(|attempt| attempt.error.clone()),
        "response_ms": last.map(|attempt| attempt.response_ms),
        "next_attempt_at": delivery.next_attempt_at.as_ref().map(time::format),
        "created_at": time::format(&delivery.created_at),
    })
}

fn delivery_detail(delivery: &Delivery) -> Value {
    let mut view = delivery_summary(delivery);
    view["attempt_log"] = delivery
        .attempts
        .iter()
        .map(|attempt| {
            json!({
                "n": attempt.n,
                "at": time::format(&attempt.at),
                "status": attempt.status,
                "response_ms": attempt.response_ms,
                "error": attempt.error,
                "response_excerpt": attempt.response_excerpt,
            })
        })
        .collect();
    view
}

pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(fields): JsonBody<WebhookFields>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let webhook = app.create_webhook(&caller, fields).await?;
    Ok((StatusCode::CREATED, Json(webhook_with_secret(&webhook))))
}

pub async fn list(State(app): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<Value>> {
    let webhooks = app.list_webhooks(&caller).await?;
    let views: Vec<Value> = webhooks.iter().map(webhook_view).collect();
    Ok(Json(json!({ "webhooks": views })))
}

pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(webhook_view(&app.get_webhook(&caller, &id).await?)))
}

pub async fn update(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(fields): JsonBody<WebhookFields>,
) -> ApiResult<Json<Value>> {
    Ok(Json(webhook_view(
        &app.update_webhook(&caller, &id, fields).await?,
    )))
}

pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.delete_webhook(&caller, &id).await?;
    Ok(Json(json!({ "id": id, "deleted": true })))
}

pub async fn send_test(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event = app.send_test(&caller, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "event_id": event.id, "webhook_id": id })),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    grace_seconds: Option<u32>,
}

/// The body is optional: `{}` or nothing keeps the default grace period.
pub async fn rotate_secret(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let request: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let webhook = app
        .rotate_secret(&caller, &id, request.grace_seconds)
        .await?;
    Ok(Json(webhook_with_secret(&webhook)))
}

#[derive(Deserialize)]
pub struct DeliveryParams {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn list_deliveries(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<DeliveryParams>,
) -> ApiResult<Json<Value>> {
    let state = query_filter(
        params.state,
        "state",
        "pending, retrying, succeeded, failed",
        DeliveryState::parse,
    )?;
    let page = app
        .list_deliveries(&caller, &id, state, params.cursor.as_deref(), params.limit)
        .await?;
    let deliveries: Vec<Value> = page.deliveries.iter().map(delivery_summary).collect();
    Ok(Json(
        json!({ "deliveries": deliveries, "next_cursor": page.next_cursor }),
    ))
}

pub async fn get_delivery(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(delivery_detail(
        &app.get_delivery(&caller, &id).await?,
    )))
}

pub async fn retry_delivery(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let delivery = app.retry_delivery(&caller, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_summary(&delivery))))
}

#[derive(Deserialize)]
pub struct RecoverParams {
    since: String,
}

pub async fn recover(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<RecoverParams>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let since: Timestamp = time::parse(&params.since).ok_or_else(|| {
        ApiError::validation(
            "since",
            "must be an RFC 3339 time, e.g. 2026-04-08T14:30:00Z",
        )
    })?;
    let resent = app.recover(&caller, &id, since).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "webhook_id": id, "resent": resent })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    event: String,
    data: Value,
    idempotency_key: Option<String>,
}

pub async fn publish_event(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<PublishEvent>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event = app
        .publish_custom_event(
            &caller,
            &body.event,
            body.data,
            body.idempotency_key.as_deref(),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!(event.envelope()))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    event_type: String,
    target_url: String,
    waitlist_id: Option<String>,
}

fn subscription_view(webhook: &Webhook) -> Value {
    json!({
        "subscription": {
            "id": webhook.id,
            "event_type": webhook.events.first(),
            "target_url": webhook.url,
            "is_active": webhook.active,
            "created_at": time::format(&webhook.created_at),
        }
    })
}

/// ReferralLoop's `POST /api/v1/webhooks/subscribe`; the response adds the signing secret, shown once.
pub async fn subscribe(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<Subscribe>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let webhook = app
        .subscribe(&caller, body.event_type, body.target_url, body.waitlist_id)
        .await?;
    let mut view = subscription_view(&webhook);
    view["subscription"]["signing_secret"] = json!(webhook.secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// ReferralLoop's `DELETE /api/v1/webhooks/unsubscribe/{id}`: only subscriptions, not other webhooks.
pub async fn unsubscribe(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let webhook = app.get_webhook(&caller, &id).await?;
    if !matches!(webhook.envelope, EnvelopeStyle::ReferralLoop { .. }) {
        return Err(refwire_core::Error::NotFound("subscription").into());
    }
    app.delete_webhook(&caller, &id).await?;
    let mut view = subscription_view(&webhook);
    view["subscription"]["is_active"] = json!(false);
    Ok(Json(view))
}
