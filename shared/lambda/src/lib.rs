//! The composition of the Lambda functions: what every main builds once per cold start (logs,
//! settings, the core's configuration, and the adapters on DynamoDB, SQS and Scheduler).

use refwire_aws::config::{AwsSettings, sdk_config};
use refwire_aws::{DynamoStore, SqsJobQueue};
use refwire_core::config::Config;
use refwire_core::deliveries::Dispatcher;
use refwire_core::ids::RandomIds;
use refwire_core::service::Deps;
use refwire_core::time::SystemClock;
use refwire_core::webhooks::url_rules::TargetPolicy;
use refwire_sender::HttpSender;
use std::sync::Arc;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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

/// The cold start of every function: JSON logs (level from `RUST_LOG`), settings from the
/// environment (every missing variable named), SDK clients, and the production config.
pub async fn cold_start() -> Result<(Deps, Config), String> {
    // `RUST_LOG` as template.yaml sets it: `target=level` pairs and a default level (tracing's
    // `Targets`; `EnvFilter` would add its span and field filters, and a regex engine, to every
    // binary). Unset or unreadable, errors only.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|filter| filter.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::ERROR));
    tracing_subscriber::fmt()
        .json()
        .without_time()
        .finish()
        .with(filter)
        .init();
    let settings = AwsSettings::from_env()?;
    let sdk = sdk_config().await;
    Ok((deps(&sdk, &settings), Config::from_env()?))
}

/// The dispatcher of the fan-out and delivery functions: one HTTP client per process, so its
/// connection pool is reused across invocations.
pub fn dispatcher(deps: Deps, config: Config) -> Result<Dispatcher, String> {
    let sender = HttpSender::new(TargetPolicy::Strict).map_err(|err| err.to_string())?;
    Ok(Dispatcher::new(deps, Arc::new(sender), config))
}
