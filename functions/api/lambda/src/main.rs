//! The API Lambda: configuration and clients once per cold start, then the Router under lambda_http,
//! on DynamoDB (with SQS and EventBridge Scheduler for webhook jobs).

use refwire_core::service::Refwire;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let (deps, config) = refwire_lambda::cold_start().await?;
    lambda_http::run(refwire_api::router(Arc::new(Refwire::new(deps, config)))).await
}
