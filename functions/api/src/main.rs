//! The API Lambda: reads its configuration once at cold start, then serves the Router under lambda_http.

use refwire_core::clock::SystemClock;
use refwire_core::ids::RandomIds;
use refwire_core::program::OperatorKey;
use refwire_core::service::{Config, Deps, Refwire};
use refwire_embedded::{EmbeddedQueue, EmbeddedStore};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    // Until the DynamoDB adapter lands the function keeps its data in a SQLite file (REFWIRE_DATA_FILE).
    let data_file = std::env::var("REFWIRE_DATA_FILE").unwrap_or_else(|_| "/tmp/refwire.db".into());
    let store = EmbeddedStore::open(data_file.as_ref())?;
    let operator_key = std::env::var("REFWIRE_OPERATOR_KEY")
        .ok()
        .filter(|key| !key.is_empty())
        .map(|key| OperatorKey::from_plaintext(&key));
    let clock = Arc::new(SystemClock);
    let deps = Deps {
        queue: Arc::new(EmbeddedQueue::new(store.clone(), clock.clone())),
        store: Arc::new(store),
        clock,
        ids: Arc::new(RandomIds),
    };
    let config = Config {
        operator_key,
        ..Config::default()
    };
    let app = Refwire::new(deps, config);
    lambda_http::run(refwire_api::router(Arc::new(app))).await
}
