//! Deployment choices, and the one loader that reads them from the environment for every runtime
//! (the Lambda functions and refwire-local).

use crate::programs::OperatorKey;
use crate::webhooks::url_rules::TargetPolicy;

/// Deployment choices.
#[derive(Clone)]
pub struct Config {
    /// Guards program and key creation; `None` disables those routes.
    pub operator_key: Option<OperatorKey>,
    /// `Strict` everywhere but refwire-local's `--allow-loopback-http`.
    pub target_policy: TargetPolicy,
    /// A webhook whose deliveries have all failed for this long is disabled.
    pub disable_after: chrono::Duration,
}

/// The operator key's SHA-256 in hex: what template.yaml gives the API function, so the key itself
/// is in no function's configuration.
pub const OPERATOR_KEY_SHA256_ENV: &str = "REFWIRE_OPERATOR_KEY_SHA256";
/// The operator key itself (refwire-local, development and tests).
pub const OPERATOR_KEY_ENV: &str = "REFWIRE_OPERATOR_KEY";
/// How many days of only failed deliveries disable a webhook.
pub const DISABLE_AFTER_ENV: &str = "REFWIRE_DISABLE_AFTER_DAYS";
const DEFAULT_DISABLE_AFTER_DAYS: i64 = 5;
const MAX_DISABLE_AFTER_DAYS: i64 = 90;

impl Default for Config {
    fn default() -> Self {
        Config {
            operator_key: None,
            target_policy: TargetPolicy::Strict,
            disable_after: chrono::Duration::days(DEFAULT_DISABLE_AFTER_DAYS),
        }
    }
}

impl Config {
    /// The production configuration from the process environment.
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Strict URL rules, the operator key from [`OPERATOR_KEY_SHA256_ENV`] or else
    /// [`OPERATOR_KEY_ENV`] (neither set, or empty: none), and the disable window from
    /// [`DISABLE_AFTER_ENV`] (unset: 5 days), each variable read through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let operator_key = match (set(OPERATOR_KEY_SHA256_ENV), set(OPERATOR_KEY_ENV)) {
            (Some(hash), _) => Some(OperatorKey::from_sha256_hex(&hash).ok_or_else(|| {
                format!("{OPERATOR_KEY_SHA256_ENV} must be the key's SHA-256 as 64 hex digits")
            })?),
            (None, Some(key)) => Some(OperatorKey::from_plaintext(&key)),
            (None, None) => None,
        };
        let disable_after = match set(DISABLE_AFTER_ENV) {
            None => chrono::Duration::days(DEFAULT_DISABLE_AFTER_DAYS),
            Some(text) => match text.trim().parse::<i64>() {
                Ok(days) if (1..=MAX_DISABLE_AFTER_DAYS).contains(&days) => {
                    chrono::Duration::days(days)
                }
                _ => {
                    return Err(format!(
                        "{DISABLE_AFTER_ENV} must be a whole number of days from 1 to {MAX_DISABLE_AFTER_DAYS}, not {text:?}"
                    ));
                }
            },
        };
        Ok(Config {
            operator_key,
            disable_after,
            ..Config::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(variables: &[(&str, &str)]) -> Result<Config, String> {
        let variables: HashMap<String, String> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Config::from_lookup(|name| variables.get(name).cloned())
    }

    #[test]
    fn the_disable_window_defaults_to_five_days_and_is_validated() {
        assert_eq!(load(&[]).unwrap().disable_after, chrono::Duration::days(5));
        let blank = [(DISABLE_AFTER_ENV, " ")];
        assert_eq!(
            load(&blank).unwrap().disable_after,
            chrono::Duration::days(5)
        );
        let fortnight = [(DISABLE_AFTER_ENV, "14")];
        assert_eq!(
            load(&fortnight).unwrap().disable_after,
            chrono::Duration::days(14)
        );
        for bad in ["0", "91", "-1", "five", "1.5"] {
            let err = load(&[(DISABLE_AFTER_ENV, bad)]).err().unwrap();
            assert!(
                err.starts_with("REFWIRE_DISABLE_AFTER_DAYS must be"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_operator_key_comes_from_its_hash_first() {
        let (plaintext, key) = OperatorKey::generate();
        let from_hash = load(&[
            (OPERATOR_KEY_SHA256_ENV, key.hash()),
            (OPERATOR_KEY_ENV, "rw_op_other"),
        ])
        .unwrap();
        assert!(from_hash.operator_key.unwrap().verify(&plaintext));
        let from_key = load(&[
            (OPERATOR_KEY_SHA256_ENV, ""),
            (OPERATOR_KEY_ENV, &plaintext),
        ])
        .unwrap();
        assert!(from_key.operator_key.unwrap().verify(&plaintext));
        assert!(
            load(&[(OPERATOR_KEY_ENV, "")])
                .unwrap()
                .operator_key
                .is_none()
        );
        let refused = load(&[(OPERATOR_KEY_SHA256_ENV, "not-a-hash")])
            .err()
            .unwrap();
        assert!(
            refused.starts_with("REFWIRE_OPERATOR_KEY_SHA256 must be"),
            "{refused}"
        );
    }
}
