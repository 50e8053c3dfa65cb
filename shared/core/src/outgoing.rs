//! The exact HTTP request a delivery attempt sends: body bytes, URL and headers, signed.

use crate::events::OutboxEvent;
use crate::signing::{SigningKey, legacy_hex_signature, standard_signature_header};
use crate::time::{self, Timestamp};
use crate::webhook::{EnvelopeStyle, HttpMethod, PayloadFormat, Webhook};
use serde_json::{Map, Value};

pub const USER_AGENT: &str = concat!("Refwire/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingRequest {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Empty for GET, whose fields travel in the query string.
    pub body: Vec<u8>,
}

/// Builds attempt `attempt` of delivering `event` to `webhook` at `now`.
///
/// What is signed is exactly what carries the payload: the body for POST, the query string for GET.
pub fn build_request(
    webhook: &Webhook,
    event: &OutboxEvent,
    attempt: u32,
    now: Timestamp,
) -> OutgoingRequest {
    let data = shape_data(webhook, &event.data);
    let (url, body, signed, content_type) = match (webhook.method, webhook.format) {
        (HttpMethod::Get, _) => {
            let query = form_encode(event, &data);
            let separator = if webhook.url.contains('?') { '&' } else { '?' };
            let url = format!("{}{separator}{query}", webhook.url);
            (url, Vec::new(), query.into_bytes(), None)
        }
        (HttpMethod::Post, PayloadFormat::Form) => {
            let body = form_encode(event, &data).into_bytes();
            let content_type = "application/x-www-form-urlencoded";
            (webhook.url.clone(), body.clone(), body, Some(content_type))
        }
        (HttpMethod::Post, PayloadFormat::Json) => {
            let body = json_envelope(webhook, event, data).into_bytes();
            (
                webhook.url.clone(),
                body.clone(),
                body,
                Some("application/json"),
            )
        }
    };
    let timestamp = now.timestamp();
    let keys: Vec<SigningKey> = webhook
        .signing_secrets(now)
        .into_iter()
        .filter_map(|secret| SigningKey::parse(secret).ok())
        .collect();
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(content_type) = content_type {
        headers.push(("Content-Type".into(), content_type.into()));
    }
    headers.extend([
        ("User-Agent".into(), USER_AGENT.into()),
        ("X-Webhook-Event".into(), event.event.clone()),
        (
            "X-Webhook-Signature".into(),
            legacy_hex_signature(&webhook.secret, &signed),
        ),
        ("X-Webhook-Id".into(), event.id.clone()),
        ("X-Webhook-Attempt".into(), attempt.to_string()),
        ("webhook-id".into(), event.id.clone()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        (
            "webhook-signature".into(),
            standard_signature_header(&keys, &event.id, timestamp, &signed),
        ),
    ]);
    headers.extend(
        webhook
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    OutgoingRequest {
        method: webhook.method,
        url,
        headers,
        body,
    }
}

/// Applies the webhook's field selection/renaming and hidden (static) fields to the event data.
fn shape_data(webhook: &Webhook, data: &Value) -> Value {
    let Value::Object(fields) = data else {
        return data.clone();
    };
    let mut shaped: Map<String, Value> = match &webhook.field_map {
        Some(map) => map
            .iter()
            .filter_map(|(from, to)| fields.get(from).map(|value| (to.clone(), value.clone())))
            .collect(),
        None => fields.clone(),
    };
    for (name, value) in &webhook.hidden_fields {
        shaped.insert(name.clone(), Value::String(value.clone()));
    }
    Value::Object(shaped)
}

fn json_envelope(webhook: &Webhook, event: &OutboxEvent, data: Value) -> String {
    let envelope = match &webhook.envelope {
        EnvelopeStyle::Refwire => {
            let mut shaped = event.clone();
            shaped.data = data;
            return shaped.envelope_json();
        }
        EnvelopeStyle::ReferralLoop { waitlist_id } => serde_json::json!({
            "event_type": event.event,
            "waitlist_id": waitlist_id,
            "data": data,
            "timestamp": time::format(&event.timestamp),
        }),
    };
    envelope.to_string()
}

/// `id`, `event`, `timestamp`, then each data field; nested values as compact JSON.
fn form_encode(event: &OutboxEvent, data: &Value) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("id", &event.id);
    form.append_pair("event", &event.event);
    form.append_pair("timestamp", &time::format(&event.timestamp));
    if let Value::Object(fields) = data {
        for (name, value) in fields {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            form.append_pair(name, &text);
        }
    }
    form.finish()
}
