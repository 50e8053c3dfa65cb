//! The delivery queue on SQLite: jobs become due at `visible_at`, so delays survive restarts.

use crate::{CachedSql, EmbeddedStore, unavailable};
use refwire_core::StoreError;
use refwire_core::deliveries::DeliveryJob;
use refwire_core::ports::JobQueue;
use refwire_core::time::Clock;
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
    fn unlimited() -> Self {
        WebhookRoom {
            per_webhook: u32::MAX,
            in_flight: std::collections::HashMap::new(),
        }
    }

    fn in_flight(&self, webhook_id: &str) -> u32 {
        self.in_flight.get(webhook_id).copied().unwrap_or(0)
    }

    /// The webhooks with no room left, as a JSON array for SQL.
    fn full_json(&self) -> String {
        let full: Vec<&String> = self
            .in_flight
            .iter()
            .filter(|(_, count)| **count >= self.per_webhook)
            .map(|(webhook_id, _)| webhook_id)
            .collect();
        serde_json::to_string(&full).unwrap_or_else(|_| "[]".into())
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
        let room = room.cloned().unwrap_or_else(WebhookRoom::unlimited);
        self.store
            .run(move |conn| {
                // Webhooks with no room left are skipped in SQL, so a long queue of one dead
                // receiver's jobs does not hide everyone else's; the rest is capped here. Looking
                // a few times further than `limit` leaves room for jobs passed over for their cap.
                let mut due = conn
                    .prepare_cached(
                        "SELECT id, delivery_id, attempt, webhook_id FROM jobs
                         WHERE visible_at <= ?1 AND webhook_id NOT IN (SELECT value FROM json_each(?2))
                         ORDER BY visible_at LIMIT ?3",
                    )
                    .map_err(unavailable)?;
                let rows = due
                    .query_map(
                        params![now, room.full_json(), limit.saturating_mul(4)],
                        |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                DeliveryJob {
                                    delivery_id: row.get::<_, String>(1)?.into(),
                                    attempt: row.get(2)?,
                                    webhook_id: row.get::<_, String>(3)?.into(),
                                    // The row's id already tells a waiting copy apart.
                                    waits_until: None,
                                },
                            ))
                        },
                    )
                    .map_err(unavailable)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)?;
                let mut taken = std::collections::HashMap::<String, u32>::new();
                let chosen: Vec<(String, DeliveryJob)> = rows
                    .into_iter()
                    .filter(|(_, job)| {
                        let count = taken.entry(job.webhook_id.to_string()).or_default();
                        let fits = room.in_flight(&job.webhook_id) + *count < room.per_webhook;
                        *count += u32::from(fits);
                        fits
                    })
                    .take(limit as usize)
                    .collect();
                let ids: Vec<&str> = chosen.iter().map(|(id, _)| id.as_str()).collect();
                conn.execute_cached(
                    "UPDATE jobs SET visible_at = ?1, leased = 1 WHERE id IN (SELECT value FROM json_each(?2))",
                    params![lease_until_ms, serde_json::to_string(&ids).map_err(unavailable)?],
                )
                .map_err(unavailable)?;
                Ok(chosen
                    .into_iter()
                    .map(|(_, job)| ClaimedJob {
                        job,
                        lease_until_ms,
                    })
                    .collect())
            })
            .await
    }

    /// Removes a finished job, unless it was re-leased (its lease ran out and another worker took it).
    pub async fn complete(&self, claimed: &ClaimedJob) -> Result<(), StoreError> {
        let (id, lease) = (claimed.job.id(), claimed.lease_until_ms);
        self.store
            .run(move |conn| {
                conn.execute_cached(
                    "DELETE FROM jobs WHERE id = ?1 AND visible_at = ?2",
                    params![id, lease],
                )
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }

    /// Hands a claimed job back to be looked at again after `delay`, instead of at its lease's end.
    pub async fn look_again_in(
        &self,
        claimed: &ClaimedJob,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let (id, lease) = (claimed.job.id(), claimed.lease_until_ms);
        let visible_at = self.clock.now().timestamp_millis() + delay.as_millis() as i64;
        self.store
            .run(move |conn| {
                conn.execute_cached(
                    "UPDATE jobs SET visible_at = ?3, leased = 0 WHERE id = ?1 AND visible_at = ?2",
                    params![id, lease, visible_at],
                )
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }

    /// Makes every leased job due now. refwire-local calls it at start, before its workers run:
    /// whatever is leased then was held by a process that is gone.
    pub async fn release_leases(&self) -> Result<usize, StoreError> {
        let now = self.clock.now().timestamp_millis();
        self.store
            .run(move |conn| {
                conn.execute_cached(
                    "UPDATE jobs SET visible_at = ?1, leased = 0 WHERE leased = 1",
                    [now],
                )
                .map_err(unavailable)
            })
            .await
    }

    /// Milliseconds until the next job is due (`None` when the queue is empty).
    pub async fn next_due_in(&self) -> Result<Option<Duration>, StoreError> {
        let now = self.clock.now().timestamp_millis();
        let next: Option<i64> = self
            .store
            .read(|conn| {
                conn.query_row_cached("SELECT MIN(visible_at) FROM jobs", [], |row| row.get(0))
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
                conn.execute_cached(
                    "INSERT INTO jobs (id, delivery_id, attempt, visible_at, webhook_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO NOTHING",
                    params![
                        job.id(),
                        job.delivery_id.as_str(),
                        job.attempt,
                        visible_at,
                        job.webhook_id.as_str()
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
