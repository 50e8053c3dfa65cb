//! refwire-local's composition over the embedded store, and the workers that stand in there for the
//! fan-out and delivery Lambdas. The binary (main.rs) and the integration tests build it the same way.

pub mod workers;

pub use workers::Workers;

use refwire_core::config::Config;
use refwire_core::deliveries::Dispatcher;
use refwire_core::ids::RandomIds;
use refwire_core::service::{Deps, Refwire};
use refwire_core::time::Clock;
use refwire_embedded::{EmbeddedQueue, EmbeddedStore};
use refwire_sender::HttpSender;
use std::sync::Arc;

/// Everything refwire-local runs over one data file.
pub struct LocalRuntime {
    /// The use cases the Router serves.
    pub app: Arc<Refwire>,
    /// What the workers drive: fan-out and signed delivery attempts over real HTTP.
    pub dispatcher: Arc<Dispatcher>,
    pub workers: Workers,
    pub queue: EmbeddedQueue,
}

impl LocalRuntime {
    /// Composes the core over `store` with the given clock and configuration.
    pub fn compose(
        store: EmbeddedStore,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Result<LocalRuntime, String> {
        let queue = EmbeddedQueue::new(store.clone(), clock.clone());
        let deps = Deps {
            store: Arc::new(store.clone()),
            queue: Arc::new(queue.clone()),
            clock,
            ids: Arc::new(RandomIds),
        };
        let sender = HttpSender::new(config.target_policy)
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        let dispatcher = Arc::new(Dispatcher::new(
            deps.clone(),
            Arc::new(sender),
            config.clone(),
        ));
        Ok(LocalRuntime {
            app: Arc::new(Refwire::new(deps, config)),
            workers: Workers::new(store, queue.clone(), dispatcher.clone()),
            dispatcher,
            queue,
        })
    }
}
