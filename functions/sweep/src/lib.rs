//! The expiry sweep on AWS: a scheduled invocation expires lapsed pending referrals in batches, each
//! one an ordinary versioned write with its `referral.expired` event (so the event is emitted once,
//! whoever expires the referral first: a read, a write, or this sweep).

use refwire_core::ErrorChain;
use refwire_core::service::Refwire;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Referrals expired per batch.
const BATCH: u32 = 200;

/// Sweeps until nothing lapsed is left or `budget` is spent (the next tick carries on).
pub async fn sweep(app: &Refwire, budget: Duration) -> Result<Value, refwire_core::Error> {
    let started = Instant::now();
    let mut expired = 0;
    loop {
        let lapsed = app
            .sweep_expired(BATCH)
            .await
            .inspect_err(|err| tracing::error!(error = %ErrorChain(err), "expiry sweep failed"))?;
        expired += lapsed;
        if lapsed < BATCH as usize || started.elapsed() >= budget {
            return Ok(json!({ "expired": expired }));
        }
    }
}
