//! The delivery Lambda: configuration, clients and one HTTP client (its connection pool reused across
//! invocations) built once per cold start, then the handler per SQS batch.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (deps, config) = refwire_lambda::cold_start().await?;
    let dispatcher = Arc::new(refwire_lambda::dispatcher(deps, config)?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let dispatcher = Arc::clone(&dispatcher);
        async move { Ok::<_, Error>(refwire_delivery::handle(dispatcher, event.payload).await?) }
    }))
    .await
}
