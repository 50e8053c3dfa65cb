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
    let data = shape_data(webhook, event);
    let with_envelope = webhook.field_map.is_none();
    let (url, body, signed, content_type) = match (webhook.method, webhook.format) {
        (HttpMethod::Get, _) => {
            let query = form_encode(event, &data, with_envelope);
            let separator = if webhook.url.contains('?') { '&' } else { '?' };
            let url = format!("{}{separator}{query}", webhook.url);
            (url, Vec::new(), query.into_bytes(), None)
        }
        (HttpMethod::Post, PayloadFormat::Form) => {
            let body = form_encode(event, &data, with_envelope).into_bytes();
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

/// The fields a webhook sends. With a field map: exactly its selections, in its order (a source
/// the event lacks is null), then the hidden fields. Without one: the event data's own fields, then
/// the hidden fields. A name given twice is sent once, with the later value.
fn shape_data(webhook: &Webhook, event: &OutboxEvent) -> Value {
    let mut shaped: Map<String, Value> = match &webhook.field_map {
        Some(map) => map
            .iter()
            .map(|(source, target)| (target.to_string(), field_value(event, source)))
            .collect(),
        None => match &event.data {
            Value::Object(fields) => fields.clone(),
            other => return other.clone(),
        },
    };
    for (name, value) in &webhook.hidden_fields {
        shaped.insert(name.clone(), Value::String(value.clone()));
    }
    Value::Object(shaped)
}

/// A field map source: `$id`, `$event` or `$timestamp` (the envelope's), else a dotted path into
/// the event data, e.g. `participant.email`.
fn field_value(event: &OutboxEvent, source: &str) -> Value {
    match source {
        "$id" => Value::String(event.id.clone()),
        "$event" => Value::String(event.event.clone()),
        "$timestamp" => Value::String(time::format(&event.timestamp)),
        path => path
            .split('.')
            .try_fold(&event.data, |value, key| value.get(key))
            .cloned()
            .unwrap_or(Value::Null),
    }
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

/// Form fields: without a field map `id`, `event` and `timestamp` come first (a data field of the
/// same name takes its place); then each field. Nested values as compact JSON, null as empty.
fn form_encode(event: &OutboxEvent, data: &Value, with_envelope: bool) -> String {
    let mut fields = Map::new();
    if with_envelope {
        fields.insert("id".into(), Value::String(event.id.clone()));
        fields.insert("event".into(), Value::String(event.event.clone()));
        fields.insert(
            "timestamp".into(),
            Value::String(time::format(&event.timestamp)),
        );
    }
    if let Value::Object(data) = data {
        fields.extend(data.clone());
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in &fields {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        form.append_pair(name, &text);
    }
    form.finish()
}
