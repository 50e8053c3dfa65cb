//! The expiry-sweep Lambda, run every minute by an EventBridge schedule (template.yaml).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use refwire_aws::config::{AwsSettings, sdk_config};
use refwire_aws::wiring;
use refwire_core::service::Refwire;
use std::sync::Arc;
use std::time::Duration;

/// Well inside the function's 60 s timeout.
const BUDGET: Duration = Duration::from_secs(40);

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let settings = AwsSettings::from_env()?;
    let sdk = sdk_config().await;
    let app = Arc::new(Refwire::new(
        wiring::deps(&sdk, &settings),
        wiring::config_from_env(),
    ));
    lambda_runtime::run(service_fn(|_tick: LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(refwire_sweep::sweep(&app, BUDGET).await?) }
    }))
    .await
}
