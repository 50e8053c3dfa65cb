//! The fan-out Lambda: configuration and clients once per cold start, then the handler per batch.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (deps, config) = refwire_lambda::cold_start().await?;
    let dispatcher = Arc::new(refwire_lambda::dispatcher(deps, config)?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| {
        let dispatcher = Arc::clone(&dispatcher);
        async move { Ok::<_, Error>(refwire_fanout::handle(&dispatcher, event.payload).await) }
    }))
    .await
}
