//! Webhook routes: endpoints, the delivery log, resends, custom events, and the
//! ReferralLoop-compatible subscribe/unsubscribe pair.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, JsonBody, PathParams, QueryParams, page_limit, query_filter};
use crate::openapi::{Forbidden, PayloadTooLarge, Unauthorized, Unavailable};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use refwire_core::deliveries::outgoing::OutgoingRequest;
use refwire_core::deliveries::{Attempt, Delivery, DeliveryState};
use refwire_core::events::Envelope;
use refwire_core::programs::not_null;
use refwire_core::time::{self, Timestamp, TimestampSchema};
use refwire_core::webhooks::{
    EnvelopeStyle, FieldMap, HttpMethod, PayloadFormat, Webhook, WebhookFields,
};
use refwire_core::whole::{self, Whole};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

type ApiResult<T> = Result<T, ApiError>;

/// A webhook as the API shows it: never its secrets.
#[derive(Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    id: String,
    name: String,
    url: String,
    events: Vec<String>,
    active: bool,
    timeout_seconds: u32,
    /// At most this many attempts start per second; `null`: no limit.
    #[schema(required = true, minimum = 1, maximum = 10000)]
    rate_limit: Option<u32>,
    retry_schedule: Vec<u32>,
    headers: BTreeMap<String, String>,
    method: HttpMethod,
    format: PayloadFormat,
    #[schema(required = true)]
    field_map: Option<FieldMap>,
    hidden_fields: BTreeMap<String, String>,
    /// Why Refwire turned the webhook off (410 Gone, days of failures), if it did.
    #[schema(required = true)]
    disabled_reason: Option<String>,
    /// Start of the current unbroken run of failed attempts.
    #[serde(with = "time::millis_option")]
    #[schema(value_type = Option<TimestampSchema>, required = true)]
    failing_since: Option<Timestamp>,
    /// While the circuit breaker is open (every attempt failed for 10 s or more): when deliveries
    /// other than the one probing the receiver try again.
    #[serde(with = "time::millis_option")]
    #[schema(value_type = Option<TimestampSchema>, required = true)]
    next_probe_at: Option<Timestamp>,
    /// When the rotated-out signing secret stops signing.
    #[serde(with = "time::millis_option")]
    #[schema(value_type = Option<TimestampSchema>, required = true)]
    previous_secret_expires_at: Option<Timestamp>,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    created_at: Timestamp,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    updated_at: Timestamp,
}

impl From<Webhook> for WebhookView {
    fn from(webhook: Webhook) -> Self {
        WebhookView {
            previous_secret_expires_at: webhook.previous_secret.map(|previous| previous.expires_at),
            id: webhook.id.into(),
            name: webhook.name,
            url: webhook.url,
            events: webhook.events,
            active: webhook.active,
            timeout_seconds: webhook.timeout_seconds,
            rate_limit: webhook.rate_limit,
            retry_schedule: webhook.retry_schedule.into(),
            headers: webhook.headers,
            method: webhook.method,
            format: webhook.format,
            field_map: webhook.field_map,
            hidden_fields: webhook.hidden_fields,
            disabled_reason: webhook.disabled_reason,
            failing_since: webhook.failing_since,
            next_probe_at: webhook.next_probe_at,
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
        }
    }
}

/// A webhook with its signing secret, in the only responses that show it; `signingSecret` is the
/// same value under the spelling Tolinku's client code reads.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    webhook: WebhookView,
    signing_secret: String,
    #[serde(rename = "signingSecret")]
    signing_secret_tolinku: String,
}

impl From<Webhook> for WebhookWithSecret {
    fn from(webhook: Webhook) -> Self {
        WebhookWithSecret {
            signing_secret: webhook.secret.clone(),
            signing_secret_tolinku: webhook.secret.clone(),
            webhook: webhook.into(),
        }
    }
}

/// WebhookFields with `name`, `url` and `events` required.
pub struct WebhookCreate;

impl PartialSchema for WebhookCreate {
    fn schema() -> RefOr<Schema> {
        AllOfBuilder::new()
            .item(Ref::from_schema_name(WebhookFields::name()))
            .item(
                ObjectBuilder::new()
                    .required("name")
                    .required("url")
                    .required("events"),
            )
            .into()
    }
}

impl ToSchema for WebhookCreate {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((WebhookFields::name().into(), WebhookFields::schema()));
        WebhookFields::schemas(schemas);
    }
}

/// One delivery of one event to one webhook.
#[derive(Serialize, ToSchema)]
pub struct DeliverySummary {
    id: String,
    webhook_id: String,
    event_id: String,
    event: String,
    state: DeliveryState,
    /// How many attempts were made.
    attempts: usize,
    /// HTTP status of the last attempt; `null` without attempts or when no response came.
    #[schema(required = true)]
    last_status: Option<u16>,
    #[schema(required = true)]
    last_error: Option<String>,
    /// Duration of the last attempt; `null` without attempts.
    #[schema(required = true)]
    response_ms: Option<u64>,
    #[serde(with = "time::millis_option")]
    #[schema(value_type = Option<TimestampSchema>, required = true)]
    next_attempt_at: Option<Timestamp>,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    created_at: Timestamp,
}

impl From<&Delivery> for DeliverySummary {
    fn from(delivery: &Delivery) -> Self {
        let last = delivery.last_attempt();
        DeliverySummary {
            id: delivery.id.to_string(),
            webhook_id: delivery.webhook_id.to_string(),
            event_id: delivery.event_id.to_string(),
            event: delivery.event.clone(),
            state: delivery.state,
            attempts: delivery.attempts.len(),
            last_status: last.and_then(|attempt| attempt.status),
            last_error: last.and_then(|attempt| attempt.error.clone()),
            response_ms: last.map(|attempt| attempt.response_ms),
            next_attempt_at: delivery.next_attempt_at,
            created_at: delivery.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryAttempt {
    #[schema(minimum = 1)]
    n: u32,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    at: Timestamp,
    /// `null` when no response came (timeout, refused connection, refused address).
    #[schema(required = true)]
    status: Option<u16>,
    response_ms: u64,
    #[schema(required = true)]
    error: Option<String>,
    /// The start of the receiver's response body (up to 2048 bytes).
    #[schema(required = true)]
    response_excerpt: Option<String>,
}

impl From<Attempt> for DeliveryAttempt {
    fn from(attempt: Attempt) -> Self {
        DeliveryAttempt {
            n: attempt.n,
            at: attempt.at,
            status: attempt.status,
            response_ms: attempt.response_ms,
            error: attempt.error,
            response_excerpt: attempt.response_excerpt,
        }
    }
}

/// A delivery with its attempt log.
#[derive(Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    summary: DeliverySummary,
    attempt_log: Vec<DeliveryAttempt>,
    /// What the next attempt sends, as the webhook is configured now (its signatures carry the
    /// current time, so they differ from earlier attempts'); `null` once the webhook is deleted or
    /// the event has left the outbox (after 30 days).
    #[schema(required = true)]
    request: Option<DeliveryRequest>,
}

/// An attempt's HTTP request.
#[derive(Serialize, ToSchema)]
pub struct DeliveryRequest {
    method: HttpMethod,
    /// With the payload in the query string for GET webhooks.
    url: String,
    headers: BTreeMap<String, String>,
    /// The body as text; empty for GET.
    body: String,
}

impl From<OutgoingRequest> for DeliveryRequest {
    fn from(request: OutgoingRequest) -> Self {
        DeliveryRequest {
            method: request.method,
            url: request.url,
            headers: request.headers.into_iter().collect(),
            body: String::from_utf8_lossy(&request.body).into_owned(),
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/webhooks",
    operation_id = "createWebhook",
    tag = "webhooks",
    summary = "Create a webhook",
    description = "Key: a secret key (`rw_sec_...`).",
    request_body = WebhookCreate,
    responses(
        (status = 201, description = "The webhook with its signing secret, shown only now.", body = WebhookWithSecret),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn create(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(fields): JsonBody<WebhookFields>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecret>)> {
    let webhook = app.create_webhook(&caller, fields).await?;
    Ok((StatusCode::CREATED, Json(webhook.into())))
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    webhooks: Vec<WebhookView>,
}

#[utoipa::path(
    get,
    path = "/v1/webhooks",
    operation_id = "listWebhooks",
    tag = "webhooks",
    summary = "List the program's webhooks, oldest first",
    description = "Key: a secret key (`rw_sec_...`).",
    responses(
        (status = 200, description = "The webhooks.", body = WebhookList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<WebhookList>> {
    let webhooks = app.list_webhooks(&caller).await?;
    Ok(Json(WebhookList {
        webhooks: webhooks.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    operation_id = "getWebhook",
    tag = "webhooks",
    summary = "Read a webhook",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id.")),
    responses(
        (status = 200, description = "The webhook.", body = WebhookView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no webhook with this id in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(app.get_webhook(&caller, &id).await?.into()))
}

#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    operation_id = "updateWebhook",
    tag = "webhooks",
    summary = "Update a webhook",
    description = "Absent fields keep their value; nothing changes if the result is invalid. Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id.")),
    request_body = WebhookFields,
    responses(
        (status = 200, description = "The webhook after the update.", body = WebhookView),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no webhook with this id in the program.", body = ErrorBody),
        (status = 409, description = "`concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn update(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(fields): JsonBody<WebhookFields>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(app.update_webhook(&caller, &id, fields).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct DeletedWebhook {
    id: String,
    /// Always `true`.
    deleted: bool,
}

#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    operation_id = "deleteWebhook",
    tag = "webhooks",
    summary = "Delete a webhook",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id.")),
    responses(
        (status = 200, description = "The webhook is deleted.", body = DeletedWebhook),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no webhook with this id in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<DeletedWebhook>> {
    app.delete_webhook(&caller, &id).await?;
    Ok(Json(DeletedWebhook { id, deleted: true }))
}

#[derive(Serialize, ToSchema)]
pub struct TestEvent {
    event_id: String,
    webhook_id: String,
}

#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/test",
    operation_id = "testWebhook",
    tag = "webhooks",
    summary = "Send a test event to this webhook only",
    description = "Delivers `{\"id\",\"event\":\"test\",\"timestamp\",\"data\":{\"message\":\"This is a test webhook from Refwire.\",\"webhook_id\",\"appspace_id\",\"program_id\"}}` (Tolinku's test payload; `appspace_id` is the program id). Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id.")),
    responses(
        (status = 202, description = "The `test` event, queued for this webhook.", body = TestEvent),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no webhook with this id in the program.", body = ErrorBody),
        (status = 409, description = "`webhook_inactive`: activate the webhook before testing it.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn send_test(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<TestEvent>)> {
    let event = app.send_test(&caller, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestEvent {
            event_id: event.id.into(),
            webhook_id: id,
        }),
    ))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret keeps signing, in seconds; 0 drops it at once.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = u32, minimum = 0, maximum = 604800, default = 86400)]
    grace_seconds: Option<Whole<u32>>,
}

/// The body is optional: `{}` or nothing keeps the default grace period.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    operation_id = "rotateWebhookSecret",
    tag = "webhooks",
    summary = "Rotate a webhook's signing secret",
    description = "The response shows the new secret. For the grace period the `webhook-signature` header carries signatures with both secrets, and `X-Webhook-Signature` (one signature) stays with the old secret, so receivers that hold one secret keep verifying until they switch; afterwards both headers use only the new one. The body is optional: none or `{}` keeps the default grace period. Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id.")),
    request_body = Option<RotateSecret>,
    responses(
        (status = 200, description = "The webhook with its new signing secret, shown only now.", body = WebhookWithSecret),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no webhook with this id in the program.", body = ErrorBody),
        (status = 409, description = "`concurrent_update`.", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn rotate_secret(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    body: Bytes,
) -> ApiResult<Json<WebhookWithSecret>> {
    let request: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        crate::extract::parse_json(&body)?
    };
    let webhook = app
        .rotate_secret(&caller, &id, whole::option(request.grace_seconds))
        .await?;
    Ok(Json(webhook.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this state.
    #[param(value_type = Option<DeliveryState>)]
    state: Option<String>,
    /// The `next_cursor` of the previous page; anything else is refused with 400
    /// `validation_failed` (field `cursor`).
    cursor: Option<String>,
    /// Page size: 1-100.
    #[serde(default, deserialize_with = "page_limit")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 25)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    deliveries: Vec<DeliverySummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    operation_id = "listDeliveries",
    tag = "deliveries",
    summary = "A webhook's delivery log, newest first",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id."), DeliveryParams),
    responses(
        (status = 200, description = "One page of deliveries.", body = DeliveryPage),
        (status = 400, description = "`validation_failed`: a bad `state` or `limit`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no webhook with this id in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list_deliveries(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    QueryParams(params): QueryParams<DeliveryParams>,
) -> ApiResult<Json<DeliveryPage>> {
    let state = query_filter(
        params.state,
        "state",
        "pending, retrying, succeeded, failed",
        DeliveryState::parse,
    )?;
    let page = app
        .list_deliveries(&caller, &id, state, params.cursor.as_deref(), params.limit)
        .await?;
    Ok(Json(DeliveryPage {
        deliveries: page.deliveries.iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/deliveries/{id}",
    operation_id = "getDelivery",
    tag = "deliveries",
    summary = "Read a delivery with its attempt log",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id.")),
    responses(
        (status = 200, description = "The delivery.", body = DeliveryDetail),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no delivery with this id in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_delivery(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    let delivery = app.get_delivery(&caller, &id).await?;
    let request = app.delivery_request(&caller, &delivery).await?;
    Ok(Json(DeliveryDetail {
        summary: (&delivery).into(),
        attempt_log: delivery.attempts.into_iter().map(Into::into).collect(),
        request: request.map(Into::into),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/deliveries/{id}/retry",
    operation_id = "retryDelivery",
    tag = "deliveries",
    summary = "Send a finished delivery again",
    description = "Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id.")),
    responses(
        (status = 202, description = "The delivery, queued again: a new round of its webhook's retry schedule.", body = DeliverySummary),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such delivery (or its webhook) in the program.", body = ErrorBody),
        (status = 409, description = "`delivery_in_progress` (still being attempted), `webhook_inactive` or `concurrent_update`.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn retry_delivery(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<DeliverySummary>)> {
    let delivery = app.retry_delivery(&caller, &id).await?;
    Ok((StatusCode::ACCEPTED, Json((&delivery).into())))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecoverParams {
    /// An RFC 3339 time.
    #[param(format = DateTime, example = "2026-04-08T14:30:00Z")]
    since: String,
}

#[derive(Serialize, ToSchema)]
pub struct Recovered {
    webhook_id: String,
    /// How many failed deliveries were queued again.
    resent: usize,
}

#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/recover",
    operation_id = "recoverWebhook",
    tag = "deliveries",
    summary = "Resend the webhook's failed deliveries since a time",
    description = "Each failed delivery created at or after `since` (up to 1000) starts a new round of the webhook's retry schedule. Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id."), RecoverParams),
    responses(
        (status = 202, description = "How many failed deliveries were queued again.", body = Recovered),
        (status = 400, description = "`validation_failed`: `since` is missing or not an RFC 3339 time.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no webhook with this id in the program.", body = ErrorBody),
        (status = 409, description = "`webhook_inactive`: activate the webhook before recovering.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn recover(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    QueryParams(params): QueryParams<RecoverParams>,
) -> ApiResult<(StatusCode, Json<Recovered>)> {
    let since: Timestamp = time::parse(&params.since).ok_or_else(|| {
        ApiError::validation(
            "since",
            "must be an RFC 3339 time, e.g. 2026-04-08T14:30:00Z",
        )
    })?;
    let resent = app.recover(&caller, &id, since).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Recovered {
            webhook_id: id,
            resent,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    /// Dot-separated lowercase words, e.g. `link.clicked`; the `referral.`, `reward.`, `webhook.`,
    /// `signup.` and `participant.` prefixes and `test` are reserved.
    #[schema(example = "link.clicked")]
    event: String,
    /// At most 64 KB of JSON. Numbers are delivered with the digits given (an exponent is written
    /// `e+N`/`e-N`); numbers beyond a double's range (about 1.8e308) are refused.
    #[schema(value_type = Object)]
    data: Value,
    /// A second publish with the same key in the program writes nothing and returns the first event.
    #[schema(min_length = 1, max_length = 200)]
    idempotency_key: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/events",
    operation_id = "publishEvent",
    tag = "events",
    summary = "Publish a custom event to the program's webhooks",
    description = "Key: a secret key (`rw_sec_...`).",
    request_body = PublishEvent,
    responses(
        (status = 202, description = "The event, queued for delivery (with a repeated `idempotency_key`, the first event).", body = Envelope),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn publish_event(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<PublishEvent>,
) -> ApiResult<Response> {
    let event = app
        .publish_custom_event(
            &caller,
            &body.event,
            body.data,
            body.idempotency_key.as_deref(),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(event.envelope())).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// An event name, a `prefix.*` pattern or `*`.
    event_type: String,
    /// An https URL on a public host.
    target_url: String,
    /// Only events about this waitlist are delivered; without it, every event of the type. The
    /// envelope's `waitlist_id` is the event's, else this one, else null.
    #[schema(min_length = 1, max_length = 200)]
    waitlist_id: Option<String>,
}

/// A ReferralLoop-compatible subscription (a webhook with ReferralLoop's envelope and retry
/// schedule).
#[derive(Serialize, ToSchema)]
pub struct Subscription {
    /// `sub_<ulid>`; also the webhook id under `/v1/webhooks`.
    #[schema(example = "sub_01JR9Z5V3K8XMPN7Q2W4Y6A8C0")]
    id: String,
    event_type: String,
    target_url: String,
    is_active: bool,
    #[serde(with = "time::millis")]
    #[schema(value_type = TimestampSchema)]
    created_at: Timestamp,
    /// Only in the subscribe response, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionResponse {
    subscription: Subscription,
}

impl SubscriptionResponse {
    fn of(webhook: Webhook, is_active: bool, signing_secret: Option<String>) -> Self {
        SubscriptionResponse {
            subscription: Subscription {
                event_type: webhook.events.into_iter().next().unwrap_or_default(),
                id: webhook.id.into(),
                target_url: webhook.url,
                is_active,
                created_at: webhook.created_at,
                signing_secret,
            },
        }
    }
}

/// ReferralLoop's `POST /api/v1/webhooks/subscribe`; the response adds the signing secret, shown once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/subscribe",
    operation_id = "subscribe",
    tag = "subscriptions",
    summary = "Subscribe a URL to one event type (ReferralLoop-compatible)",
    description = "Deliveries use ReferralLoop's envelope `{event_type, waitlist_id, data, timestamp}`, written exactly as JavaScript's `JSON.stringify` writes it back (so ReferralLoop's documented verifier accepts it), signed in `X-Webhook-Signature: sha256=<hex>`, with a 5 s timeout and ReferralLoop's retry schedule (+1 min, +5 min, +15 min, +1 h). Key: a secret key (`rw_sec_...`).",
    request_body = Subscribe,
    responses(
        (status = 201, description = "The subscription with its signing secret (`signing_secret`), shown only now.", body = SubscriptionResponse),
        (status = 400, description = "`validation_failed` (naming the `field`) or `invalid_json`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn subscribe(
    State(app): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<Subscribe>,
) -> ApiResult<(StatusCode, Json<SubscriptionResponse>)> {
    let webhook = app
        .subscribe(&caller, body.event_type, body.target_url, body.waitlist_id)
        .await?;
    let (active, secret) = (webhook.active, webhook.secret.clone());
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionResponse::of(webhook, active, Some(secret))),
    ))
}

/// ReferralLoop's `DELETE /api/v1/webhooks/unsubscribe/{id}`: only subscriptions, not other webhooks.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/unsubscribe/{id}",
    operation_id = "unsubscribe",
    tag = "subscriptions",
    summary = "Delete a subscription (ReferralLoop-compatible)",
    description = "Only subscriptions made with `/api/v1/webhooks/subscribe`; other webhooks are not found here. Key: a secret key (`rw_sec_...`).",
    params(("id" = String, Path, description = "The webhook id.")),
    responses(
        (status = 200, description = "The deleted subscription, with `is_active: false`.", body = SubscriptionResponse),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no subscription with this id in the program.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn unsubscribe(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<SubscriptionResponse>> {
    let webhook = app.get_webhook(&caller, &id).await?;
    if !matches!(webhook.envelope, EnvelopeStyle::ReferralLoop { .. }) {
        return Err(refwire_core::Error::NotFound("subscription").into());
    }
    app.delete_webhook(&caller, &id).await?;
    Ok(Json(SubscriptionResponse::of(webhook, false, None)))
}
