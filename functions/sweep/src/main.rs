//! The expiry-sweep Lambda, run every minute by an EventBridge schedule (template.yaml).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use refwire_core::service::Refwire;
use std::sync::Arc;
use std::time::Duration;

/// Well inside the function's 60 s timeout.
const BUDGET: Duration = Duration::from_secs(40);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (deps, config) = refwire_lambda::cold_start().await?;
    let app = Arc::new(Refwire::new(deps, config));
    lambda_runtime::run(service_fn(|_tick: LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(refwire_sweep::sweep(&app, BUDGET).await?) }
    }))
    .await
}
