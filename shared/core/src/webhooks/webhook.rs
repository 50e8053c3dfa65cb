//! Webhook endpoints: what a program subscribes, where to, and how deliveries are shaped.

use crate::deliveries::retry::RetrySchedule;
use crate::error::Error;
use crate::events::OutboxEvent;
use crate::ids::{ProgramId, WaitlistId, WebhookId};
use crate::programs::not_null;
use crate::time::{self, Timestamp};
use crate::webhooks::url_rules::{TargetPolicy, check_target_url};
use crate::whole::Whole;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub const DEFAULT_TIMEOUT_SECONDS: u32 = 10;
pub const MAX_TIMEOUT_SECONDS: u32 = 30;
pub const MAX_CUSTOM_HEADERS: usize = 3;
const MAX_EVENT_PATTERNS: usize = 50;
const MAX_FIELDS: usize = 50;
const MAX_WAITLIST_ID_LENGTH: usize = 200;
/// How long a rotated-out secret keeps signing, unless the caller says otherwise.
pub const DEFAULT_ROTATION_GRACE_SECONDS: u32 = 86_400;
const MAX_ROTATION_GRACE_SECONDS: u32 = 7 * 86_400;

/// Headers Refwire sets itself; a custom header may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
];
const RESERVED_HEADER_PREFIXES: &[&str] = &["x-webhook-", "webhook-"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Post,
    Get,
}

/// `json`: the envelope as the body. `form`: `application/x-www-form-urlencoded` fields (the body
/// for POST, the query string for GET).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// The JSON envelope as the body.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded` fields (the body for POST, the query string for GET).
    Form,
}

/// Which envelope a receiver expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum EnvelopeStyle {
    /// `{"id","event","timestamp","data"}` (Tolinku-compatible).
    #[default]
    Refwire,
    /// `{"event_type","waitlist_id","data","timestamp"}` (ReferralLoop-compatible subscriptions).
    ReferralLoop { waitlist_id: Option<WaitlistId> },
}

/// Which fields a webhook sends and what it calls them, in the order they are sent (a JSON object
/// from source to name). A source is a dotted path into the event data (`referrer.email`) or one
/// of the envelope's `$id`, `$event`, `$timestamp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldMap(Vec<(String, String)>);

impl FieldMap {
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(source, target)| (source.as_str(), target.as_str()))
    }
}

/// Written by hand: the Rust type is a list of pairs, the JSON an object of strings.
impl utoipa::PartialSchema for FieldMap {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .additional_properties(Some(String::schema()))
            .max_properties(Some(MAX_FIELDS))
            .description(Some(
                "The fields to send and their names, in the order sent: an object from source to \
                 name. A source is a dotted path into the event data (`participant.email`, \
                 `referrer.id`) or the envelope's `$id`, `$event`, `$timestamp`; one the event \
                 lacks is sent as null (empty in a form). With a field map only these and \
                 `hidden_fields` are sent; no name may appear twice. `null` sends the envelope \
                 and every data field as is.",
            ))
            .into()
    }
}

impl ToSchema for FieldMap {}

impl Serialize for FieldMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (source, target) in &self.0 {
            map.serialize_entry(source, target)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = FieldMap;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an object from source field to the name it is sent as")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FieldMap, A::Error> {
                let mut entries: Vec<(String, String)> = Vec::new();
                while let Some((source, target)) = map.next_entry::<String, String>()? {
                    if entries.iter().any(|(seen, _)| *seen == source) {
                        return Err(serde::de::Error::custom(format!(
                            "{source:?} is listed twice"
                        )));
                    }
                    entries.push((source, target));
                }
                Ok(FieldMap(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: String,
    #[serde(with = "time::millis")]
    pub expires_at: Timestamp,
}

pub const MAX_RATE_LIMIT: u32 = 10_000;

/// How long a receiver must have failed every attempt before the circuit breaker opens.
pub const BREAKER_OPENS_AFTER: chrono::Duration = chrono::Duration::seconds(10);
pub const BREAKER_MIN_INTERVAL: chrono::Duration = chrono::Duration::seconds(30);
pub const BREAKER_MAX_INTERVAL: chrono::Duration = chrono::Duration::minutes(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub program_id: ProgramId,
    pub name: String,
    pub url: String,
    /// Patterns: an exact event name, `prefix.*`, or `*`.
    pub events: Vec<String>,
    pub active: bool,
    pub timeout_seconds: u32,
    /// At most this many attempts start per second (`None`: no limit); the rest wait their turn.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    pub retry_schedule: RetrySchedule,
    pub headers: BTreeMap<String, String>,
    pub method: HttpMethod,
    pub format: PayloadFormat,
    /// Fields to send and their names, in order: `{"participant.email": "email"}`. `None` sends
    /// the envelope and every data field as is.
    pub field_map: Option<FieldMap>,
    /// Static fields added to every payload.
    pub hidden_fields: BTreeMap<String, String>,
    pub envelope: EnvelopeStyle,
    pub secret: String,
    pub previous_secret: Option<PreviousSecret>,
    /// Why the webhook was turned off by Refwire (410 Gone, days of failures), if it was.
    pub disabled_reason: Option<String>,
    /// Start of the current unbroken run of failed attempts.
    #[serde(with = "time::millis_option")]
    pub failing_since: Option<Timestamp>,
    /// While the circuit breaker is open: when one delivery may next try the receiver (the probe);
    /// every other delivery of the webhook waits until then.
    #[serde(
        default,
        with = "time::millis_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_probe_at: Option<Timestamp>,
    /// The delivery that holds the probe: its own retries keep their schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_delivery: Option<String>,
    #[serde(with = "time::millis")]
    pub created_at: Timestamp,
    #[serde(with = "time::millis")]
    pub updated_at: Timestamp,
    pub version: u64,
}

/// Every field a caller may set. On update, absent fields keep their value (`null` clears
/// `field_map`); on create they take the defaults. The result is validated as a whole.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookFields {
    /// 1-200 characters; trimmed.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// An https URL on a public host, at most 2048 bytes: no credentials, no private, loopback or
    /// internal addresses (refwire-local with `--allow-loopback-http` also accepts http(s)
    /// receivers on this machine).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = String, max_length = 2048)]
    pub url: Option<String>,
    /// Event names (`referral.completed`), `prefix.*` patterns (`referral.*`) or `*`.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Vec<String>, min_items = 1, max_items = 50)]
    pub events: Option<Vec<String>>,
    /// Setting `true` also clears `disabled_reason` and `failing_since`.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = bool, default = true)]
    pub active: Option<bool>,
    /// Seconds to wait for the receiver's response.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = u32, minimum = 1, maximum = 30, default = 10)]
    pub timeout_seconds: Option<Whole<u32>>,
    /// At most this many attempts start per second; `null` removes the limit.
    #[serde(default, deserialize_with = "crate::programs::present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub rate_limit: Option<Option<Whole<u32>>>,
    /// Delays in seconds between attempts, after the first attempt: 1-10 delays of 1-86400 seconds.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Vec<u32>, min_items = 1, max_items = 10, default = json!([60, 300, 1800]))]
    pub retry_schedule: Option<Vec<Whole<u32>>>,
    /// Custom request headers (at most 3); names Refwire sets itself (`content-type`, `host`,
    /// `webhook-*`, `x-webhook-*`, ...) are refused; values at most 1024 printable characters.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = BTreeMap<String, String>, default = json!({}))]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = HttpMethod, default = "POST")]
    pub method: Option<HttpMethod>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = PayloadFormat, default = "json")]
    pub format: Option<PayloadFormat>,
    #[serde(default, deserialize_with = "crate::programs::present")]
    pub field_map: Option<Option<FieldMap>>,
    /// Static fields added to every payload (at most 50).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = BTreeMap<String, String>, default = json!({}))]
    pub hidden_fields: Option<BTreeMap<String, String>>,
}

impl Webhook {
    /// A new webhook from the caller's fields; `name`, `url` and `events` are required.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        fields: WebhookFields,
        id: String,
        program_id: ProgramId,
        secret: String,
        envelope: EnvelopeStyle,
        default_schedule: RetrySchedule,
        policy: TargetPolicy,
        now: Timestamp,
    ) -> Result<Webhook, Error> {
        let missing =
            |field: &'static str| Error::validation(field, format!("{field} is required"));
        let blank = Webhook {
            id: id.into(),
            program_id,
            name: fields.name.clone().ok_or_else(|| missing("name"))?,
            url: fields.url.clone().ok_or_else(|| missing("url"))?,
            events: fields.events.clone().ok_or_else(|| missing("events"))?,
            active: true,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            rate_limit: None,
            retry_schedule: default_schedule,
            headers: BTreeMap::new(),
            method: HttpMethod::Post,
            format: PayloadFormat::Json,
            field_map: None,
            hidden_fields: BTreeMap::new(),
            envelope,
            secret,
            previous_secret: None,
            disabled_reason: None,
            failing_since: None,
            next_probe_at: None,
            probe_delivery: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        blank.updated(fields, policy, now)
    }

    /// Applies a partial update and validates the whole result; on error nothing changes.
    pub fn updated(
        &self,
        fields: WebhookFields,
        policy: TargetPolicy,
        now: Timestamp,
    ) -> Result<Webhook, Error> {
        let mut next = self.clone();
        if let Some(name) = fields.name {
            next.name = name.trim().to_string();
        }
        if let Some(url) = fields.url {
            next.url = url;
        }
        if let Some(events) = fields.events {
            next.events = events;
        }
        if let Some(active) = fields.active {
            next.active = active;
            if active {
                next.disabled_reason = None;
                next.failing_since = None;
                next.next_probe_at = None;
                next.probe_delivery = None;
            }
        }
        if let Some(Whole(timeout)) = fields.timeout_seconds {
            next.timeout_seconds = timeout;
        }
        if let Some(rate_limit) = fields.rate_limit {
            next.rate_limit = rate_limit.map(|Whole(limit)| limit);
        }
        if let Some(schedule) = fields.retry_schedule {
            next.retry_schedule =
                RetrySchedule::new(schedule.into_iter().map(|Whole(delay)| delay).collect())
                    .map_err(|err| Error::validation("retry_schedule", err.to_string()))?;
        }
        if let Some(headers) = fields.headers {
            next.headers = headers;
        }
        if let Some(method) = fields.method {
            next.method = method;
        }
        if let Some(format) = fields.format {
            next.format = format;
        }
        if let Some(field_map) = fields.field_map {
            next.field_map = field_map;
        }
        if let Some(hidden) = fields.hidden_fields {
            next.hidden_fields = hidden;
        }
        next.validate(policy)?;
        next.updated_at = now;
        Ok(next)
    }

    fn validate(&mut self, policy: TargetPolicy) -> Result<(), Error> {
        if self.name.is_empty() || self.name.len() > 200 {
            return Err(Error::validation("name", "must be 1-200 characters"));
        }
        let url = check_target_url(&self.url, policy)
            .map_err(|err| Error::validation("url", err.to_string()))?;
        self.url = url.to_string();
        if self.events.is_empty() || self.events.len() > MAX_EVENT_PATTERNS {
            return Err(Error::validation(
                "events",
                format!("must list 1-{MAX_EVENT_PATTERNS} event names or patterns"),
            ));
        }
        if let Some(bad) = self
            .events
            .iter()
            .find(|pattern| !is_valid_pattern(pattern))
        {
            return Err(Error::validation(
                "events",
                format!("{bad:?} is not an event name, a `prefix.*` pattern or `*`"),
            ));
        }
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return Err(Error::validation(
                "timeout_seconds",
                format!("must be between 1 and {MAX_TIMEOUT_SECONDS}"),
            ));
        }
        if self
            .rate_limit
            .is_some_and(|limit| !(1..=MAX_RATE_LIMIT).contains(&limit))
        {
            return Err(Error::validation(
                "rate_limit",
                format!(
                    "must be between 1 and {MAX_RATE_LIMIT} deliveries per second, or null for no limit"
                ),
            ));
        }
        validate_headers(&self.headers)?;
        if let EnvelopeStyle::ReferralLoop {
            waitlist_id: Some(waitlist_id),
        } = &self.envelope
            && (waitlist_id.is_empty()
                || waitlist_id.len() > MAX_WAITLIST_ID_LENGTH
                || waitlist_id.chars().any(char::is_control))
        {
            return Err(Error::validation(
                "waitlist_id",
                format!("must be 1-{MAX_WAITLIST_ID_LENGTH} printable characters"),
            ));
        }
        if let Some(map) = &self.field_map {
            validate_field_names("field_map", map.iter())?;
            let mut targets = std::collections::BTreeSet::new();
            for (_, target) in map.iter() {
                if !targets.insert(target) || self.hidden_fields.contains_key(target) {
                    return Err(Error::validation(
                        "field_map",
                        format!("{target:?} is sent twice: each field name may appear once"),
                    ));
                }
            }
        }
        let hidden = self
            .hidden_fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()));
        validate_field_names("hidden_fields", hidden)?;
        Ok(())
    }

    /// Whether `event` is one this webhook subscribed to: a pattern matches its type and, for a
    /// ReferralLoop subscription made for one waitlist, the event is about that waitlist.
    pub fn subscribes_to(&self, event: &OutboxEvent) -> bool {
        let waitlist_matches = match &self.envelope {
            EnvelopeStyle::ReferralLoop {
                waitlist_id: Some(waitlist_id),
            } => event.waitlist_id.as_ref() == Some(waitlist_id),
            _ => true,
        };
        waitlist_matches
            && self
                .events
                .iter()
                .any(|pattern| pattern_matches(pattern, &event.event))
    }

    /// The circuit breaker is open once every attempt has failed for [`BREAKER_OPENS_AFTER`]: then
    /// the webhook's deliveries stop trying the receiver each on its own schedule. One of them,
    /// the probe, keeps its schedule; the others wait for [`Webhook::next_probe_at`], when another
    /// may take the probe if the first has stopped trying. The first success closes the breaker.
    pub fn breaker_open(&self, now: Timestamp) -> bool {
        self.failing_since
            .is_some_and(|since| now - since >= BREAKER_OPENS_AFTER)
    }

    /// While the breaker is open, whether `delivery_id` must wait (not holding the probe while
    /// another delivery may still hold it), and until when.
    pub fn breaker_wait(&self, delivery_id: &str, now: Timestamp) -> Option<Timestamp> {
        let holds_probe = self.probe_delivery.as_deref() == Some(delivery_id);
        self.next_probe_at
            .filter(|at| *at > now && self.breaker_open(now) && !holds_probe)
    }

    /// Gives `delivery_id` the probe until half as long as the receiver has been failing, within
    /// [`BREAKER_MIN_INTERVAL`] and [`BREAKER_MAX_INTERVAL`], from now. The caller writes the
    /// webhook with its version condition, which one delivery wins.
    pub fn take_probe(&mut self, delivery_id: &str, now: Timestamp) {
        let failing_for = self
            .failing_since
            .map_or(chrono::Duration::zero(), |since| now - since);
        let interval = (failing_for / 2).clamp(BREAKER_MIN_INTERVAL, BREAKER_MAX_INTERVAL);
        self.next_probe_at = Some(now + interval);
        self.probe_delivery = Some(delivery_id.to_string());
    }

    /// The secrets that sign the Standard Webhooks header now: the current one, then a rotated-out
    /// one still in its grace period.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        secrets.extend(self.secret_in_grace(now));
        secrets
    }

    /// The one secret `X-Webhook-Signature` is made with now. That header carries one signature,
    /// which receivers compare against the one secret they hold, so after a rotation it stays
    /// with the rotated-out secret until the grace period ends, then moves to the current one.
    pub fn single_signature_secret(&self, now: Timestamp) -> &str {
        self.secret_in_grace(now).unwrap_or(&self.secret)
    }

    fn secret_in_grace(&self, now: Timestamp) -> Option<&str> {
        self.previous_secret
            .as_ref()
            .filter(|previous| previous.expires_at > now)
            .map(|previous| previous.secret.as_str())
    }

    /// Replaces the secret; the old one keeps signing for `grace_seconds`.
    pub fn rotate_secret(
        &mut self,
        new_secret: String,
        grace_seconds: Option<u32>,
        now: Timestamp,
    ) -> Result<(), Error> {
        let grace = grace_seconds.unwrap_or(DEFAULT_ROTATION_GRACE_SECONDS);
        if grace > MAX_ROTATION_GRACE_SECONDS {
            return Err(Error::validation(
                "grace_seconds",
                format!("must be at most {MAX_ROTATION_GRACE_SECONDS}"),
            ));
        }
        let old = std::mem::replace(&mut self.secret, new_secret);
        self.previous_secret = (grace > 0).then(|| PreviousSecret {
            secret: old,
            expires_at: now + chrono::Duration::seconds(i64::from(grace)),
        });
        self.updated_at = now;
        Ok(())
    }
}

/// `*` matches everything, `referral.*` every event under `referral.`, anything else itself.
pub fn pattern_matches(pattern: &str, event: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => event.starts_with(prefix) && event.len() > prefix.len(),
        None => pattern == event,
    }
}

fn is_valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let name = pattern.strip_suffix(".*").unwrap_or(pattern);
    is_valid_event_name(name)
}

/// Event names: dot-separated lowercase words, e.g. `referral.completed`, `link.clicked`.
pub fn is_valid_event_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name.split('.').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), Error> {
    if headers.len() > MAX_CUSTOM_HEADERS {
        return Err(Error::validation(
            "headers",
            format!("at most {MAX_CUSTOM_HEADERS} custom headers"),
        ));
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let token = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !token {
            return Err(Error::validation(
                "headers",
                format!("{name:?} is not a valid header name"),
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str())
            || RESERVED_HEADER_PREFIXES
                .iter()
                .any(|prefix| lower.starts_with(prefix))
        {
            return Err(Error::validation(
                "headers",
                format!("{name} is set by Refwire"),
            ));
        }
        if value.len() > 1024 || value.bytes().any(|b| b.is_ascii_control()) {
            return Err(Error::validation(
                "headers",
                format!("the value of {name} must be at most 1024 printable characters"),
            ));
        }
    }
    Ok(())
}

fn validate_field_names<'a>(
    field: &'static str,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> Result<(), Error> {
    if entries.len() > MAX_FIELDS {
        return Err(Error::validation(
            field,
            format!("at most {MAX_FIELDS} entries"),
        ));
    }
    let valid = |name: &str| {
        !name.is_empty() && name.len() <= 100 && !name.bytes().any(|b| b.is_ascii_control())
    };
    let mut entries = entries;
    if entries.any(|(key, value)| {
        !valid(key) || value.len() > 1024 || (field == "field_map" && !valid(value))
    }) {
        return Err(Error::validation(
            field,
            "names must be 1-100 printable characters, values at most 1024",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn subscription(event_type: &str, waitlist_id: Option<&str>) -> Result<Webhook, Error> {
        let fields = WebhookFields {
            name: Some("subscription".into()),
            url: Some("https://example.com/hooks".into()),
            events: Some(vec![event_type.into()]),
            ..WebhookFields::default()
        };
        Webhook::create(
            fields,
            "sub_1".into(),
            "prg_1".into(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            EnvelopeStyle::ReferralLoop {
                waitlist_id: waitlist_id.map(WaitlistId::from),
            },
            RetrySchedule::of(&[60]),
            TargetPolicy::Strict,
            chrono::Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap(),
        )
    }

    fn event(name: &str, waitlist_id: Option<&str>) -> OutboxEvent {
        let mut event = OutboxEvent::new(
            "evt_1".into(),
            "prg_1",
            name,
            chrono::Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap(),
            serde_json::json!({}),
        );
        event.waitlist_id = waitlist_id.map(WaitlistId::from);
        event
    }

    #[test]
    fn the_breaker_opens_after_ten_seconds_of_failures_and_probes_at_growing_intervals() {
        let start = chrono::Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap();
        let at = |seconds: i64| start + chrono::Duration::seconds(seconds);
        let mut webhook = subscription("signup.created", None).unwrap();
        assert!(!webhook.breaker_open(at(0)));
        webhook.failing_since = Some(start);
        assert!(!webhook.breaker_open(at(9)));
        assert!(webhook.breaker_open(at(10)));
        assert_eq!(
            webhook.breaker_wait("dlv_a", at(10)),
            None,
            "nobody holds the probe yet"
        );

        webhook.take_probe("dlv_a", at(10));
        assert_eq!(webhook.next_probe_at, Some(at(40)), "at least 30 s");
        assert_eq!(webhook.breaker_wait("dlv_b", at(20)), Some(at(40)));
        assert_eq!(
            webhook.breaker_wait("dlv_a", at(20)),
            None,
            "the probe keeps its schedule"
        );
        assert_eq!(
            webhook.breaker_wait("dlv_b", at(40)),
            None,
            "the probe may change hands"
        );
        webhook.take_probe("dlv_b", at(600));
        assert_eq!(
            webhook.next_probe_at,
            Some(at(900)),
            "half the failing time"
        );
        webhook.take_probe("dlv_b", at(7200));
        assert_eq!(webhook.next_probe_at, Some(at(7800)), "at most 10 min");

        webhook.failing_since = None;
        assert_eq!(
            webhook.breaker_wait("dlv_c", at(7300)),
            None,
            "a closed breaker holds nobody"
        );
    }

    #[test]
    fn a_subscription_for_one_waitlist_receives_only_that_waitlists_events() {
        let one = subscription("signup.created", Some("wl_1")).unwrap();
        let all = subscription("signup.created", None).unwrap();
        let cases = [
            (event("signup.created", Some("wl_1")), true, true),
            (event("signup.created", Some("wl_2")), false, true),
            (event("signup.created", None), false, true),
            (event("signup.deleted", Some("wl_1")), false, false),
        ];
        for (event, for_one, for_all) in cases {
            assert_eq!(one.subscribes_to(&event), for_one, "{event:?}");
            assert_eq!(all.subscribes_to(&event), for_all, "{event:?}");
        }
        // Refwire webhooks have no waitlist filter.
        let mut webhook = all.clone();
        webhook.envelope = EnvelopeStyle::Refwire;
        assert!(webhook.subscribes_to(&event("signup.created", Some("wl_2"))));
    }

    #[test]
    fn a_waitlist_id_must_be_printable_and_not_too_long() {
        for bad in ["", "wl\n1", &"w".repeat(201)] {
            let refused = subscription("signup.created", Some(bad)).unwrap_err();
            assert!(
                matches!(
                    refused,
                    Error::Validation {
                        field: Some("waitlist_id"),
                        ..
                    }
                ),
                "{bad:?}: {refused:?}"
            );
        }
        assert!(subscription("signup.created", Some(&"w".repeat(200))).is_ok());
    }
}
