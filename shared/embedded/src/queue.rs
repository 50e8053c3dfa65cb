//! The delivery queue on SQLite: jobs become due at `visible_at`, so delays survive restarts.

use crate::{EmbeddedStore, unavailable};
use refwire_core::StoreError;
use refwire_core::clock::Clock;
use refwire_core::delivery::DeliveryJob;
use refwire_core::ports::JobQueue;
use rusqlite::params;
use std::sync::Arc;
use std::time::Duration;

/// The queue reads time from the injected clock, so tests can make delayed jobs due.
#[derive(Clone)]
pub struct EmbeddedQueue {
    store: EmbeddedStore,
    clock: Arc<dyn Clock>,
}

/// How many more attempts each webhook may start: `per_webhook` minus those in flight.
#[derive(Debug, Clone, Default)]
pub struct WebhookRoom {
    pub per_webhook: u32,
    pub in_flight: std::collections::HashMap<String, u32>,
}

impl WebhookRoom {
    fn in_flight_json(&self) -> String {
        serde_json::to_string(&self.in_flight).unwrap_or_else(|_| "{}".into())
    }
}

/// A job leased to one worker until `lease_until_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub job: DeliveryJob,
    lease_until_ms: i64,
}

impl EmbeddedQueue {
    pub fn new(store: EmbeddedStore, clock: Arc<dyn Clock>) -> Self {
        EmbeddedQueue { store, clock }
    }

    /// Leases up to `limit` due jobs, oldest first, for `lease`; a job not completed by then becomes
    /// due again. With `room`, no webhook gets more jobs than its room allows.
    pub async fn claim_due(
        &self,
        limit: u32,
        lease: Duration,
        room: Option<&WebhookRoom>,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = self.clock.now().timestamp_millis();
        let lease_until_ms = now + lease.as_millis() as i64;
        let (per_webhook, in_flight) = match room {
            Some(room) => (room.per_webhook, room.in_flight_json()),
            None => (u32::MAX, "{}".to_string()),
        };
        self.store
            .run(move |conn| {
                // Each webhook's due jobs are numbered oldest first; a job is claimable while its
                // number plus the webhook's attempts already in flight stays within the limit.
                let mut claim = conn
                    .prepare_cached(
                        "UPDATE jobs SET visible_at = ?2
                         WHERE id IN (
                             SELECT id FROM (
                                 SELECT id, visible_at, webhook_id,
                                        ROW_NUMBER() OVER (PARTITION BY webhook_id ORDER BY visible_at, id) AS nth
                                 FROM jobs WHERE visible_at <= ?1
                             )
                             WHERE nth + COALESCE(json_extract(?4, '$.' || json_quote(webhook_id)), 0) <= ?5
                             ORDER BY visible_at LIMIT ?3
                         )
                         RETURNING delivery_id, attempt, webhook_id",
                    )
                    .map_err(unavailable)?;
                let rows = claim
                    .query_map(
                        params![now, lease_until_ms, limit, in_flight, per_webhook],
                        |row| {
                            Ok(DeliveryJob {
                                delivery_id: row.get(0)?,
                                attempt: row.get(1)?,
                                webhook_id: row.get(2)?,
                            })
                        },
                    )
                    .map_err(unavailable)?;
                rows.map(|job| {
                    Ok(ClaimedJob {
                        job: job.map_err(unavailable)?,
                        lease_until_ms,
                    })
                })
                .collect()
            })
            .await
    }

    /// Removes a finished job, unless it was re-leased (its lease ran out and another worker took it).
    pub async fn complete(&self, claimed: &ClaimedJob) -> Result<(), StoreError> {
        let (id, lease) = (claimed.job.id(), claimed.lease_until_ms);
        self.store
            .run(move |conn| {
                conn.execute(
                    "DELETE FROM jobs WHERE id = ?1 AND visible_at = ?2",
                    params![id, lease],
                )
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }

    /// Milliseconds until the next job is due (`None` when the queue is empty).
    pub async fn next_due_in(&self) -> Result<Option<Duration>, StoreError> {
        let now = self.clock.now().timestamp_millis();
        let next: Option<i64> = self
            .store
            .run(|conn| {
                conn.query_row("SELECT MIN(visible_at) FROM jobs", [], |row| row.get(0))
                    .map_err(unavailable)
            })
            .await?;
        Ok(next.map(|at| Duration::from_millis((at - now).max(0) as u64)))
    }

    /// Waits until a job may have been queued, or `timeout` passes.
    pub async fn queued(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.store.job_queued.notified()).await;
    }
}

#[async_trait::async_trait]
impl JobQueue for EmbeddedQueue {
    async fn enqueue(&self, job: &DeliveryJob, delay_seconds: u32) -> Result<(), StoreError> {
        let visible_at = self.clock.now().timestamp_millis() + i64::from(delay_seconds) * 1000;
        let job = job.clone();
        self.store
            .run(move |conn| {
                // The same job id queued twice is one job: it is already waiting or being sent.
                conn.execute(
                    "INSERT INTO jobs (id, delivery_id, attempt, visible_at, webhook_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO NOTHING",
                    params![
                        job.id(),
                        job.delivery_id,
                        job.attempt,
                        visible_at,
                        job.webhook_id
                    ],
                )
                .map(drop)
                .map_err(unavailable)
            })
            .await?;
        self.store.job_queued.notify_one();
        Ok(())
    }
}
