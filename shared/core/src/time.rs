//! Time: timestamps (UTC with millisecond precision, written as `2026-04-08T14:30:00.000Z`
//! everywhere — API, events, storage — so every runtime formats them identically) and the clock port.

use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Mutex;

pub type Timestamp = DateTime<Utc>;

pub fn format(ts: &Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The OpenAPI schema of every timestamp the API writes (chrono's type has none of its own).
pub struct TimestampSchema;

impl utoipa::PartialSchema for TimestampSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "UTC with millisecond precision, always written as `2026-04-08T14:30:00.000Z`.",
            ))
            .examples(["2026-04-08T14:30:00.000Z"])
            .into()
    }
}

impl utoipa::ToSchema for TimestampSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
}

pub fn parse(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|ts| ts.with_timezone(&Utc))
}

/// Serde adapter for `Timestamp` fields.
pub mod millis {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ts: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse(&text).ok_or_else(|| D::Error::custom("expected an RFC 3339 timestamp"))
    }
}

/// Serde adapter for `Option<Timestamp>` fields.
pub mod millis_option {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(
        ts: &Option<Timestamp>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => serializer.serialize_str(&super::format(ts)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| {
                super::parse(&text)
                    .ok_or_else(|| D::Error::custom("expected an RFC 3339 timestamp"))
            })
            .transpose()
    }
}

// --- the clock port: use cases never read the system time directly, so tests can move time ---

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that only moves when told to: for tests of expiry and retry schedules.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_with_milliseconds_and_z() {
        let ts = Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap();
        assert_eq!(format(&ts), "2026-04-08T14:30:00.000Z");
        assert_eq!(parse("2026-04-08T14:30:00.000Z"), Some(ts));
    }
}
