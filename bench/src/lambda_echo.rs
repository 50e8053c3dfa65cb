//! The smallest Lambda function on lambda_runtime: answers each event with itself. The cold-start
//! benchmark (`scripts/bench.sh cold-start`) starts it beside the Refwire functions as the floor of
//! the runtime, the harness and the machine.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move { Ok::<_, Error>(event.payload) },
    ))
    .await
}
