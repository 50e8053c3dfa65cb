//! The API Lambda: configuration and clients once per cold start, then the Router under lambda_http,
//! on DynamoDB (with SQS and EventBridge Scheduler for webhook jobs).

use refwire_aws::config::{AwsSettings, sdk_config};
use refwire_aws::wiring;
use refwire_core::service::Refwire;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let settings = AwsSettings::from_env()?;
    let sdk = sdk_config().await;
    let app = Refwire::new(wiring::deps(&sdk, &settings), wiring::config_from_env());
    lambda_http::run(refwire_api::router(Arc::new(app))).await
}
