//! The exact HTTP request a delivery attempt sends: body bytes, URL and headers, signed.

use crate::deliveries::signing::{SigningKey, legacy_hex_signature, standard_signature_header};
use crate::events::OutboxEvent;
use crate::js_json;
use crate::time::{self, Timestamp};
use crate::webhooks::{EnvelopeStyle, HttpMethod, PayloadFormat, Webhook};
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
    let single_signature = legacy_hex_signature(webhook.single_signature_secret(now), &signed);
    let single_signature = match webhook.envelope {
        EnvelopeStyle::Refwire => single_signature,
        // ReferralLoop documents the header as `X-Webhook-Signature: sha256=abc123...`.
        EnvelopeStyle::ReferralLoop { .. } => format!("sha256={single_signature}"),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(content_type) = content_type {
        headers.push(("Content-Type".into(), content_type.into()));
    }
    headers.extend([
        ("User-Agent".into(), USER_AGENT.into()),
        ("X-Webhook-Event".into(), event.event.clone()),
        ("X-Webhook-Signature".into(), single_signature),
        ("X-Webhook-Id".into(), event.id.to_string()),
        ("X-Webhook-Attempt".into(), attempt.to_string()),
        ("webhook-id".into(), event.id.to_string()),
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
        "$id" => Value::String(event.id.to_string()),
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
    match &webhook.envelope {
        EnvelopeStyle::Refwire => {
            let mut shaped = event.clone();
            shaped.data = data;
            shaped.envelope_json()
        }
        // Written as JavaScript writes it back: ReferralLoop's verifier signs
        // `JSON.stringify(req.body)`, so only a body already in that form verifies there.
        EnvelopeStyle::ReferralLoop { waitlist_id } => js_json::stringify(&serde_json::json!({
            "event_type": event.event,
            "waitlist_id": event.waitlist_id.as_ref().or(waitlist_id.as_ref()),
            "data": data,
            "timestamp": time::format(&event.timestamp),
        })),
    }
}

/// Form fields: without a field map `id`, `event` and `timestamp` come first (a data field of the
/// same name takes its place); then each field. Nested values as compact JSON, null as empty.
fn form_encode(event: &OutboxEvent, data: &Value, with_envelope: bool) -> String {
    let mut fields = Map::new();
    if with_envelope {
        fields.insert("id".into(), Value::String(event.id.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliveries::retry::RetrySchedule;
    use crate::deliveries::signing::{generate_signing_secret, verify_standard};
    use crate::ids::WaitlistId;
    use crate::webhooks::WebhookFields;
    use crate::webhooks::url_rules::TargetPolicy;
    use chrono::{Duration, TimeZone};

    fn start() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap()
    }

    fn webhook(envelope: EnvelopeStyle) -> Webhook {
        let fields = WebhookFields {
            name: Some("hook".into()),
            url: Some("https://example.com/hooks".into()),
            events: Some(vec!["*".into()]),
            ..WebhookFields::default()
        };
        Webhook::create(
            fields,
            "wh_1".into(),
            "prg_1".into(),
            generate_signing_secret(),
            envelope,
            RetrySchedule::default(),
            TargetPolicy::Strict,
            start(),
        )
        .unwrap()
    }

    fn event(data: &str) -> OutboxEvent {
        OutboxEvent::new(
            "evt_1".into(),
            "prg_1",
            "link.clicked",
            start(),
            serde_json::from_str(data).unwrap(),
        )
    }

    fn header<'a>(request: &'a OutgoingRequest, name: &str) -> &'a str {
        request
            .headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
            .unwrap()
    }

    fn body(request: &OutgoingRequest) -> &str {
        std::str::from_utf8(&request.body).unwrap()
    }

    #[test]
    fn the_single_signature_header_keeps_the_previous_secret_until_the_grace_period_ends() {
        for envelope in [
            EnvelopeStyle::Refwire,
            EnvelopeStyle::ReferralLoop { waitlist_id: None },
        ] {
            let mut webhook = webhook(envelope.clone());
            let old = webhook.secret.clone();
            webhook
                .rotate_secret(generate_signing_secret(), Some(3600), start())
                .unwrap();
            let new = webhook.secret.clone();
            let prefix = match envelope {
                EnvelopeStyle::Refwire => "",
                EnvelopeStyle::ReferralLoop { .. } => "sha256=",
            };
            let during = start() + Duration::seconds(3599);
            let after = start() + Duration::seconds(3600);
            for (now, single_secret, standard_secrets) in
                [(during, &old, vec![&new, &old]), (after, &new, vec![&new])]
            {
                let request = build_request(&webhook, &event("{}"), 1, now);
                assert_eq!(
                    header(&request, "X-Webhook-Signature"),
                    format!(
                        "{prefix}{}",
                        legacy_hex_signature(single_secret, &request.body)
                    )
                );
                let standard = header(&request, "webhook-signature");
                assert_eq!(standard.split(' ').count(), standard_secrets.len());
                for secret in standard_secrets {
                    assert!(verify_standard(
                        secret,
                        "evt_1",
                        now.timestamp(),
                        &request.body,
                        standard
                    ));
                }
            }
        }
    }

    #[test]
    fn a_rotation_without_grace_switches_every_header_at_once() {
        let mut webhook = webhook(EnvelopeStyle::Refwire);
        webhook
            .rotate_secret(generate_signing_secret(), Some(0), start())
            .unwrap();
        let request = build_request(&webhook, &event("{}"), 1, start());
        assert_eq!(
            header(&request, "X-Webhook-Signature"),
            legacy_hex_signature(&webhook.secret, &request.body)
        );
        assert_eq!(header(&request, "webhook-signature").split(' ').count(), 1);
    }

    #[test]
    fn refwire_envelopes_keep_the_callers_digits() {
        let data = r#"{"n":99999999999999999999999999999,"x":5,"y":5.0,"z":0.1,"10":1,"2":2}"#;
        let request = build_request(&webhook(EnvelopeStyle::Refwire), &event(data), 1, start());
        assert_eq!(
            body(&request),
            format!(
                r#"{{"id":"evt_1","event":"link.clicked","timestamp":"2026-04-08T14:30:00.000Z","data":{data}}}"#
            )
        );
    }

    #[test]
    fn referral_loop_bodies_are_what_json_stringify_writes_back_signed_with_sha256_prefix() {
        let webhook = webhook(EnvelopeStyle::ReferralLoop { waitlist_id: None });
        let data =
            r#"{"n":99999999999999999999999999999,"x":5,"y":5.0,"z":1e21,"k":{"10":"a","2":"b"}}"#;
        let request = build_request(&webhook, &event(data), 1, start());
        assert_eq!(
            body(&request),
            r#"{"event_type":"link.clicked","waitlist_id":null,"data":{"n":1e+29,"x":5,"y":5,"z":1e+21,"k":{"2":"b","10":"a"}},"timestamp":"2026-04-08T14:30:00.000Z"}"#
        );
        assert_eq!(
            header(&request, "X-Webhook-Signature"),
            format!(
                "sha256={}",
                legacy_hex_signature(&webhook.secret, &request.body)
            )
        );
    }

    #[test]
    fn referral_loop_envelopes_carry_the_events_waitlist_else_the_subscriptions() {
        let mut about_wl_2 = event("{}");
        about_wl_2.waitlist_id = Some("wl_2".into());
        for (subscribed_to, event, expected) in [
            (Some("wl_1"), &event("{}"), Some("wl_1")),
            (None, &about_wl_2, Some("wl_2")),
            (Some("wl_2"), &about_wl_2, Some("wl_2")),
            (None, &event("{}"), None),
        ] {
            let webhook = webhook(EnvelopeStyle::ReferralLoop {
                waitlist_id: subscribed_to.map(WaitlistId::from),
            });
            let request = build_request(&webhook, event, 1, start());
            let envelope: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(envelope["waitlist_id"].as_str(), expected);
        }
    }
}
