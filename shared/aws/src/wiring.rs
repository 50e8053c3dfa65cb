//! What every Lambda main builds once per cold start: the adapters on DynamoDB, SQS and Scheduler.

use crate::config::AwsSettings;
use crate::{DynamoStore, SqsJobQueue};
use refwire_core::clock::SystemClock;
use refwire_core::ids::RandomIds;
use refwire_core::program::OperatorKey;
use refwire_core::service::{Config, Deps};
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

/// Production rules (strict URL policy) with the operator key from `REFWIRE_OPERATOR_KEY`, if set.
pub fn config_from_env() -> Config {
    let operator_key = std::env::var("REFWIRE_OPERATOR_KEY")
        .ok()
        .filter(|key| !key.is_empty())
        .map(|key| OperatorKey::from_plaintext(&key));
    Config {
        operator_key,
        ..Config::default()
    }
}
