//! What every Lambda main builds once per cold start: logs, settings, and the adapters on DynamoDB,
//! SQS and Scheduler.

use crate::config::{AwsSettings, sdk_config};
use crate::{DynamoStore, SqsJobQueue};
use refwire_core::clock::SystemClock;
use refwire_core::dispatch::Dispatcher;
use refwire_core::ids::RandomIds;
use refwire_core::program::OperatorKey;
use refwire_core::service::{Config, DISABLE_AFTER_ENV, Deps};
use refwire_core::url_rules::TargetPolicy;
use refwire_sender::HttpSender;
use std::sync::Arc;

pub fn deps(sdk: &aws_config::SdkConfig, settings: &AwsSettings) -> Deps {
    deps_with_clients(
        aws_sdk_dynamodb::Client::new(sdk),
        aws_sdk_sqs::Client::new(sdk),
        aws_sdk_scheduler::Client::new(sdk),
        settings,
    )
}

/// As [`deps`], with clients configured by the caller (the tests count their calls).
pub fn deps_with_clients(
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    scheduler: aws_sdk_scheduler::Client,
    settings: &AwsSettings,
) -> Deps {
    let clock = Arc::new(SystemClock);
    let queue = SqsJobQueue::new(sqs, scheduler, settings.queue.clone(), clock.clone());
    Deps {
        store: Arc::new(DynamoStore::new(dynamodb, settings.table.clone())),
        queue: Arc::new(queue),
        clock,
        ids: Arc::new(RandomIds),
    }
}

/// Production rules (strict URL policy) with the operator key from the environment, if set, and the
/// webhook disable window from `REFWIRE_DISABLE_AFTER_DAYS`.
pub fn config_from_env() -> Result<Config, String> {
    let operator_key = operator_key_from(
        std::env::var(OPERATOR_KEY_SHA256_ENV).ok().as_deref(),
        std::env::var(OPERATOR_KEY_ENV).ok().as_deref(),
    )?;
    let disable_after =
        Config::disable_after_from(std::env::var(DISABLE_AFTER_ENV).ok().as_deref())?;
    Ok(Config {
        operator_key,
        disable_after,
        ..Config::default()
    })
}

/// The operator key's SHA-256 in hex: what template.yaml gives the API function, so the key itself
/// is in no function's configuration.
pub const OPERATOR_KEY_SHA256_ENV: &str = "REFWIRE_OPERATOR_KEY_SHA256";
/// The operator key itself (development and tests).
pub const OPERATOR_KEY_ENV: &str = "REFWIRE_OPERATOR_KEY";

/// The operator key from its hash, else from the key; neither set (or empty) means no operator key.
fn operator_key_from(
    sha256: Option<&str>,
    plaintext: Option<&str>,
) -> Result<Option<OperatorKey>, String> {
    match (
        sha256.filter(|hash| !hash.is_empty()),
        plaintext.filter(|key| !key.is_empty()),
    ) {
        (Some(hash), _) => OperatorKey::from_sha256_hex(hash).map(Some).ok_or_else(|| {
            format!("{OPERATOR_KEY_SHA256_ENV} must be the key's SHA-256 as 64 hex digits")
        }),
        (None, Some(key)) => Ok(Some(OperatorKey::from_plaintext(key))),
        (None, None) => Ok(None),
    }
}

/// The cold start of every function: JSON logs (level from `RUST_LOG`), settings from the
/// environment (every missing variable named), SDK clients, and the production config.
pub async fn cold_start() -> Result<(Deps, Config), String> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let settings = AwsSettings::from_env()?;
    let sdk = sdk_config().await;
    Ok((deps(&sdk, &settings), config_from_env()?))
}

/// The dispatcher of the fan-out and delivery functions: one HTTP client per process, so its
/// connection pool is reused across invocations.
pub fn dispatcher(deps: Deps, config: Config) -> Result<Dispatcher, String> {
    let sender = HttpSender::new(TargetPolicy::Strict).map_err(|err| err.to_string())?;
    Ok(Dispatcher::new(deps, Arc::new(sender), config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_key_comes_from_its_hash_first() {
        let (plaintext, key) = OperatorKey::generate();
        let from_hash = operator_key_from(Some(key.hash()), Some("rw_op_other"))
            .unwrap()
            .unwrap();
        assert!(from_hash.verify(&plaintext));
        let from_key = operator_key_from(Some(""), Some(&plaintext))
            .unwrap()
            .unwrap();
        assert!(from_key.verify(&plaintext));
        assert!(operator_key_from(None, Some("")).unwrap().is_none());
        let refused = operator_key_from(Some("not-a-hash"), None).err().unwrap();
        assert!(
            refused.starts_with("REFWIRE_OPERATOR_KEY_SHA256 must be"),
            "{refused}"
        );
    }
}
