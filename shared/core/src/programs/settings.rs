//! Per-program referral settings (Tolinku's "referral settings" of an Appspace) and their validation.

use crate::error::Error;
use crate::js_json::NUMBER_OUT_OF_RANGE;
use crate::whole::{self, Whole};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RewardType {
    None,
    Points,
    Credit,
    Discount,
    Custom,
}

/// A reward amount: a number (`5`, `10.5`) or a label (`"10%"`, `"free month"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RewardValue {
    Amount(serde_json::Number),
    Label(String),
}

/// Written by hand: the derive cannot express the bounds `validate_reward` checks.
impl utoipa::PartialSchema for RewardValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .description(Some(
                "A reward amount (a non-negative number such as `5` or `10.5`) or a label \
                 (`\"10%\"`, `\"free month\"`, 1-200 characters).",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(200)),
            )
            .into()
    }
}

impl ToSchema for RewardValue {}

/// A program's referral settings. The defaults are what a new program starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReferralSettings {
    /// When false, new referrals are refused with 409 `referrals_disabled`.
    #[schema(default = true)]
    pub enabled: bool,
    /// Days until a pending referral expires; `null`: referrals never expire.
    #[schema(required = true, minimum = 1, maximum = 3650, default = 30)]
    pub referral_expiration_days: Option<u32>,
    /// Maximum pending referrals per referrer; `null`: unlimited.
    #[schema(required = true, minimum = 1)]
    pub referral_max_per_user: Option<u32>,
    /// Milestone names in funnel order (1-64 characters of a-z, 0-9, `_ . -`, each listed once); a
    /// referral's `milestone` is the furthest one reached.
    #[schema(value_type = Vec<MilestoneName>, min_items = 1, max_items = 20, default = json!(["signed_up", "first_purchase", "completed"]))]
    pub referral_milestones: Vec<String>,
    /// Must be one of `referral_milestones`; reaching it completes the referral.
    #[schema(default = "completed")]
    pub referral_reward_milestone: String,
    pub reward_type: RewardType,
    /// The referrer's reward; must be `null` while `reward_type` is `none`.
    #[schema(required = true)]
    pub reward_value: Option<RewardValue>,
    pub referee_reward_type: RewardType,
    /// The referred user's reward; must be `null` while `referee_reward_type` is `none`.
    #[schema(required = true)]
    pub referee_reward_value: Option<RewardValue>,
    /// An http(s) URL containing `{code}`, which is replaced by the referral code.
    #[schema(max_length = 512, default = "https://example.com/r/{code}")]
    pub referral_url_template: String,
    /// Length of generated referral codes.
    #[schema(minimum = 6, maximum = 32, default = 10)]
    pub code_length: u8,
    /// Web origins (`https://shop.example.com`) whose pages may call the publishable-key routes
    /// from a browser (CORS); empty means none. Secret-key routes never answer another origin.
    #[serde(default)]
    #[schema(required = true, max_items = 20, default = json!([]))]
    pub allowed_origins: Vec<String>,
}

/// The schema of a milestone name (milestones are plain strings in the Rust types).
pub struct MilestoneName;

impl utoipa::PartialSchema for MilestoneName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^[a-z0-9_.-]{1,64}$"))
            .description(Some("1-64 characters of a-z, 0-9, `_ . -`."))
            .into()
    }
}

impl ToSchema for MilestoneName {}

impl Default for ReferralSettings {
    fn default() -> Self {
        ReferralSettings {
            enabled: true,
            referral_expiration_days: Some(30),
            referral_max_per_user: None,
            referral_milestones: ["signed_up", "first_purchase", "completed"]
                .map(String::from)
                .to_vec(),
            referral_reward_milestone: "completed".into(),
            reward_type: RewardType::None,
            reward_value: None,
            referee_reward_type: RewardType::None,
            referee_reward_value: None,
            referral_url_template: "https://example.com/r/{code}".into(),
            code_length: 10,
            allowed_origins: Vec::new(),
        }
    }
}

pub const MIN_CODE_LENGTH: u8 = 6;
pub const MAX_CODE_LENGTH: u8 = 32;
const MAX_MILESTONES: usize = 20;
const MAX_EXPIRATION_DAYS: u32 = 3650;
const MAX_ALLOWED_ORIGINS: usize = 20;

/// A partial update of ReferralSettings: absent fields keep their current value (for a new
/// program, the defaults), `null` clears a nullable field. The result is validated as a whole.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    /// When false, new referrals are refused with 409 `referrals_disabled`.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = bool)]
    pub enabled: Option<bool>,
    /// Days until a pending referral expires; `null`: referrals never expire.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    pub referral_expiration_days: Option<Option<Whole<u32>>>,
    /// Maximum pending referrals per referrer; `null`: unlimited.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1)]
    pub referral_max_per_user: Option<Option<Whole<u32>>>,
    /// Milestone names in funnel order (1-64 characters of a-z, 0-9, `_ . -`, each listed once); a
    /// referral's `milestone` is the furthest one reached.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Vec<MilestoneName>, min_items = 1, max_items = 20)]
    pub referral_milestones: Option<Vec<String>>,
    /// Must be one of `referral_milestones`; reaching it completes the referral.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = String)]
    pub referral_reward_milestone: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = RewardType)]
    pub reward_type: Option<RewardType>,
    /// The referrer's reward; must be `null` while `reward_type` is `none`.
    #[serde(default, deserialize_with = "present")]
    pub reward_value: Option<Option<RewardValue>>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = RewardType)]
    pub referee_reward_type: Option<RewardType>,
    /// The referred user's reward; must be `null` while `referee_reward_type` is `none`.
    #[serde(default, deserialize_with = "present")]
    pub referee_reward_value: Option<Option<RewardValue>>,
    /// An http(s) URL containing `{code}`, which is replaced by the referral code.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = String, max_length = 512)]
    pub referral_url_template: Option<String>,
    /// Length of generated referral codes.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = u8, minimum = 6, maximum = 32)]
    pub code_length: Option<Whole<u8>>,
    /// Web origins (scheme, host, optional port) whose pages may call the publishable-key routes
    /// from a browser; replaces the list.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Vec<String>, max_items = 20)]
    pub allowed_origins: Option<Vec<String>>,
}

/// Distinguishes an explicit `null` (`Some(None)`) from an absent field (`None`, via `#[serde(default)]`).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An optional field that may be absent but not `null`: `null` would read as "absent" and silently
/// keep the old value, while the description says the field is not nullable.
pub fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

impl ReferralSettings {
    /// Applies an update and validates the result as a whole; on error `self` is unchanged.
    pub fn updated(&self, update: SettingsUpdate) -> Result<ReferralSettings, Error> {
        let mut next = self.clone();
        if let Some(enabled) = update.enabled {
            next.enabled = enabled;
        }
        if let Some(days) = update.referral_expiration_days {
            next.referral_expiration_days = whole::option(days);
        }
        if let Some(max) = update.referral_max_per_user {
            next.referral_max_per_user = whole::option(max);
        }
        if let Some(milestones) = update.referral_milestones {
            next.referral_milestones = milestones;
        }
        if let Some(milestone) = update.referral_reward_milestone {
            next.referral_reward_milestone = milestone;
        }
        if let Some(reward_type) = update.reward_type {
            next.reward_type = reward_type;
        }
        if let Some(value) = update.reward_value {
            next.reward_value = value;
        }
        if let Some(reward_type) = update.referee_reward_type {
            next.referee_reward_type = reward_type;
        }
        if let Some(value) = update.referee_reward_value {
            next.referee_reward_value = value;
        }
        if let Some(template) = update.referral_url_template {
            next.referral_url_template = template;
        }
        if let Some(Whole(length)) = update.code_length {
            next.code_length = length;
        }
        if let Some(origins) = update.allowed_origins {
            next.allowed_origins.clear();
            for origin in origins {
                let origin = web_origin(&origin)?;
                if !next.allowed_origins.contains(&origin) {
                    next.allowed_origins.push(origin);
                }
            }
        }
        next.validate()?;
        Ok(next)
    }

    pub fn validate(&self) -> Result<(), Error> {
        if let Some(days) = self.referral_expiration_days
            && !(1..=MAX_EXPIRATION_DAYS).contains(&days)
        {
            return Err(Error::validation(
                "referral_expiration_days",
                format!("must be between 1 and {MAX_EXPIRATION_DAYS}, or null for no expiry"),
            ));
        }
        if self.referral_max_per_user == Some(0) {
            return Err(Error::validation(
                "referral_max_per_user",
                "must be at least 1, or null for unlimited",
            ));
        }
        if self.referral_milestones.is_empty() || self.referral_milestones.len() > MAX_MILESTONES {
            return Err(Error::validation(
                "referral_milestones",
                format!("must list between 1 and {MAX_MILESTONES} milestones"),
            ));
        }
        for (index, milestone) in self.referral_milestones.iter().enumerate() {
            if !is_valid_milestone_name(milestone) {
                return Err(Error::validation(
                    "referral_milestones",
                    format!("milestone {milestone:?} must be 1-64 characters of a-z, 0-9, _ . -"),
                ));
            }
            if self.referral_milestones[..index].contains(milestone) {
                return Err(Error::validation(
                    "referral_milestones",
                    format!("milestone {milestone:?} is listed twice"),
                ));
            }
        }
        if !self
            .referral_milestones
            .contains(&self.referral_reward_milestone)
        {
            return Err(Error::validation(
                "referral_reward_milestone",
                "must be one of referral_milestones",
            ));
        }
        validate_reward("reward_value", self.reward_type, &self.reward_value)?;
        validate_reward(
            "referee_reward_value",
            self.referee_reward_type,
            &self.referee_reward_value,
        )?;
        let template = &self.referral_url_template;
        let scheme_ok = template.starts_with("https://") || template.starts_with("http://");
        if !scheme_ok || !template.contains("{code}") || template.len() > 512 {
            return Err(Error::validation(
                "referral_url_template",
                "must be an http(s) URL of at most 512 characters containing {code}",
            ));
        }
        if !(MIN_CODE_LENGTH..=MAX_CODE_LENGTH).contains(&self.code_length) {
            return Err(Error::validation(
                "code_length",
                format!("must be between {MIN_CODE_LENGTH} and {MAX_CODE_LENGTH}"),
            ));
        }
        if self.allowed_origins.len() > MAX_ALLOWED_ORIGINS {
            return Err(Error::validation(
                "allowed_origins",
                format!("must list at most {MAX_ALLOWED_ORIGINS} origins"),
            ));
        }
        Ok(())
    }

    /// Whether a page on `origin` (a request's `Origin` header) may use the publishable key.
    pub fn allows_origin(&self, origin: &str) -> bool {
        web_origin(origin).is_ok_and(|origin| self.allowed_origins.contains(&origin))
    }

    pub fn milestone_position(&self, milestone: &str) -> Option<usize> {
        self.referral_milestones.iter().position(|m| m == milestone)
    }

    pub fn referral_url(&self, code: &str) -> String {
        self.referral_url_template.replace("{code}", code)
    }
}

/// An origin as browsers send it (`https://shop.example.com`, `http://localhost:3000`): scheme,
/// host and port only; anything with a path, query, credentials or a wildcard is refused.
fn web_origin(text: &str) -> Result<String, Error> {
    let refuse = || {
        Error::validation(
            "allowed_origins",
            format!(
                "{text:?} is not an origin such as https://shop.example.com (scheme, host and optional port; no path)"
            ),
        )
    };
    let url = url::Url::parse(text).map_err(|_| refuse())?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !text.trim_end_matches('/').ends_with('/')
        && !text.contains('*');
    if !bare {
        return Err(refuse());
    }
    Ok(url.origin().ascii_serialization())
}

fn is_valid_milestone_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

fn validate_reward(
    field: &'static str,
    reward_type: RewardType,
    value: &Option<RewardValue>,
) -> Result<(), Error> {
    match value {
        Some(RewardValue::Label(label)) if label.is_empty() || label.len() > 200 => Err(
            Error::validation(field, "a text reward value must be 1-200 characters"),
        ),
        Some(RewardValue::Amount(amount)) if amount.as_f64().is_none() => {
            Err(Error::validation(field, NUMBER_OUT_OF_RANGE))
        }
        Some(RewardValue::Amount(amount)) if amount.as_f64().is_some_and(|v| v < 0.0) => {
            Err(Error::validation(field, "must not be negative"))
        }
        Some(_) if reward_type == RewardType::None => Err(Error::validation(
            field,
            "a reward value needs a reward type other than none",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: &str) -> SettingsUpdate {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn allowed_origins_are_kept_as_browsers_send_them_and_anything_else_is_refused() {
        let settings = ReferralSettings::default()
            .updated(update(
                r#"{"allowed_origins": ["https://Shop.Example.com", "http://localhost:3000/", "https://shop.example.com:443"]}"#,
            ))
            .unwrap();
        assert_eq!(
            settings.allowed_origins,
            ["https://shop.example.com", "http://localhost:3000"]
        );
        assert!(settings.allows_origin("https://shop.example.com"));
        assert!(settings.allows_origin("http://localhost:3000"));
        assert!(!settings.allows_origin("http://shop.example.com"));
        assert!(!settings.allows_origin("null"));
        for refused in [
            "*",
            "https://*.example.com",
            "shop.example.com",
            "https://shop.example.com/path",
            "https://shop.example.com?x=1",
            "https://user@shop.example.com",
            "ftp://shop.example.com",
        ] {
            let json = serde_json::json!({ "allowed_origins": [refused] }).to_string();
            let err = ReferralSettings::default().updated(update(&json));
            assert!(err.is_err(), "{refused} was accepted");
        }
    }

    #[test]
    fn defaults_are_valid_and_match_the_documented_ones() {
        let settings = ReferralSettings::default();
        settings.validate().unwrap();
        assert_eq!(settings.referral_expiration_days, Some(30));
        assert_eq!(settings.code_length, 10);
        assert_eq!(settings.referral_reward_milestone, "completed");
        assert_eq!(settings.referral_url("ABC"), "https://example.com/r/ABC");
    }

    #[test]
    fn update_distinguishes_null_from_absent() {
        let base = ReferralSettings {
            referral_max_per_user: Some(3),
            ..Default::default()
        };
        let kept = base.updated(update(r#"{"enabled": false}"#)).unwrap();
        assert_eq!(kept.referral_max_per_user, Some(3));
        assert!(!kept.enabled);
        let cleared = base
            .updated(update(r#"{"referral_max_per_user": null}"#))
            .unwrap();
        assert_eq!(cleared.referral_max_per_user, None);
    }

    #[test]
    fn invalid_updates_are_refused_with_the_field() {
        let base = ReferralSettings::default();
        let cases = [
            (
                r#"{"referral_reward_milestone": "paid"}"#,
                "referral_reward_milestone",
            ),
            (r#"{"referral_milestones": []}"#, "referral_milestones"),
            (
                r#"{"referral_milestones": ["a", "a"], "referral_reward_milestone": "a"}"#,
                "referral_milestones",
            ),
            (
                r#"{"referral_milestones": ["Has Space"], "referral_reward_milestone": "Has Space"}"#,
                "referral_milestones",
            ),
            (
                r#"{"referral_expiration_days": 0}"#,
                "referral_expiration_days",
            ),
            (r#"{"referral_max_per_user": 0}"#, "referral_max_per_user"),
            (r#"{"code_length": 5}"#, "code_length"),
            (r#"{"code_length": 33}"#, "code_length"),
            (
                r#"{"referral_url_template": "https://example.com/r/"}"#,
                "referral_url_template",
            ),
            (
                r#"{"referral_url_template": "ftp://x/{code}"}"#,
                "referral_url_template",
            ),
            (r#"{"reward_value": 5}"#, "reward_value"),
            (
                r#"{"reward_type": "credit", "reward_value": -1}"#,
                "reward_value",
            ),
            // Beyond a double: serde_json keeps such numbers (arbitrary_precision), Refwire refuses them.
            (
                r#"{"reward_type": "credit", "reward_value": -1e400}"#,
                "reward_value",
            ),
            (
                r#"{"referee_reward_type": "credit", "referee_reward_value": 1e400}"#,
                "referee_reward_value",
            ),
        ];
        for (json, field) in cases {
            match base.updated(update(json)) {
                Err(Error::Validation { field: Some(f), .. }) => assert_eq!(f, field, "{json}"),
                other => panic!("{json}: expected a validation error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn reward_amounts_keep_the_digits_they_were_given() {
        let settings = ReferralSettings::default()
            .updated(update(
                r#"{"reward_type": "credit", "reward_value": 5, "referee_reward_type": "points", "referee_reward_value": 2.50}"#,
            ))
            .unwrap();
        let stored = serde_json::to_string(&settings).unwrap();
        assert!(stored.contains(r#""reward_value":5,"#), "{stored}");
        assert!(
            stored.contains(r#""referee_reward_value":2.50,"#),
            "{stored}"
        );
        let loaded: ReferralSettings = serde_json::from_str(&stored).unwrap();
        assert_eq!(serde_json::to_string(&loaded).unwrap(), stored);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<SettingsUpdate>(r#"{"enabeld": true}"#).is_err());
    }
}
