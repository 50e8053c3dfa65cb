//! The fan-out Lambda: configuration and clients once per cold start, then the handler per batch.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use refwire_aws::config::{AwsSettings, sdk_config};
use refwire_aws::wiring;
use refwire_core::dispatch::Dispatcher;
use refwire_core::url_rules::TargetPolicy;
use refwire_sender::HttpSender;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let settings = AwsSettings::from_env()?;
    let sdk = sdk_config().await;
    let sender = HttpSender::new(TargetPolicy::Strict)?;
    let dispatcher = Arc::new(Dispatcher::new(
        wiring::deps(&sdk, &settings),
        Arc::new(sender),
        wiring::config_from_env(),
    ));
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
            let dispatcher = Arc::clone(&dispatcher);
            async move { Ok::<_, Error>(refwire_fanout::handle(&dispatcher, event.payload).await) }
        },
    ))
    .await
}
