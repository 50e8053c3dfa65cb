//! refwire-local's delivery queue: a delivery is its own job. Its row's `due_at` says when a worker
//! should next look at it (`Delivery::due_at`: its next attempt, or the end of a claim on it; NULL
//! once final), written with the delivery, so what is due survives restarts with no row of its own
//! to insert, lease and delete per attempt. Which deliveries this process's workers hold right now
//! is kept in memory: a restart drops the holds, and the claim in a delivery's document keeps an
//! attempt that was in flight from going out again until the claim lapses.

use crate::{CachedSql, EmbeddedStore, unavailable};
use refwire_core::StoreError;
use refwire_core::deliveries::DeliveryJob;
use refwire_core::ids::DeliveryId;
use refwire_core::ports::JobQueue;
use refwire_core::time::Clock;
use rusqlite::params;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The queue reads time from the injected clock, so tests can make delayed jobs due.
#[derive(Clone)]
pub struct EmbeddedQueue {
    store: EmbeddedStore,
    clock: Arc<dyn Clock>,
}

/// The deliveries this process's workers hold, each until a time in milliseconds: one being sent
/// (until the send ends, or its lease runs out), or one put off for a while.
#[derive(Default)]
pub(crate) struct Holds(Mutex<HashMap<DeliveryId, i64>>);

impl Holds {
    fn lock(&self) -> MutexGuard<'_, HashMap<DeliveryId, i64>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How many more attempts each webhook may start: `per_webhook` minus those in flight.
#[derive(Debug, Clone, Default)]
pub struct WebhookRoom {
    pub per_webhook: u32,
    pub in_flight: HashMap<String, u32>,
}

impl WebhookRoom {
    fn unlimited() -> Self {
        WebhookRoom {
            per_webhook: u32::MAX,
            in_flight: HashMap::new(),
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

/// A job held by one worker until `held_until_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub job: DeliveryJob,
    held_until_ms: i64,
}

impl EmbeddedQueue {
    pub fn new(store: EmbeddedStore, clock: Arc<dyn Clock>) -> Self {
        EmbeddedQueue { store, clock }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Holds up to `limit` due deliveries' jobs, oldest first, for `lease`; a job not completed by
    /// then becomes due again. With `room`, no webhook gets more jobs than its room allows.
    pub async fn claim_due(
        &self,
        limit: u32,
        lease: Duration,
        room: Option<&WebhookRoom>,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = self.now_ms();
        let held_until_ms = now + lease.as_millis() as i64;
        let room = room.cloned().unwrap_or_else(WebhookRoom::unlimited);
        // Held deliveries may still be due in the file (picked, not claimed yet), so the query looks
        // past them; and a few times further than `limit`, past jobs passed over for their
        // webhook's cap. Webhooks with no room left are skipped in SQL, so a long queue of one dead
        // receiver's jobs does not hide everyone else's.
        let held = self.store.holds.lock().len() as u32;
        let look_at = limit.saturating_mul(4).saturating_add(held);
        let full = room.full_json();
        let due: Vec<DeliveryJob> = self
            .store
            .read(move |conn| {
                let mut due = conn
                    .prepare_cached(
                        "SELECT id, next_attempt, webhook_id FROM deliveries
                         WHERE due_at <= ?1 AND webhook_id NOT IN (SELECT value FROM json_each(?2))
                         ORDER BY due_at LIMIT ?3",
                    )
                    .map_err(unavailable)?;
                let rows = due
                    .query_map(params![now, full, look_at], |row| {
                        Ok(DeliveryJob {
                            delivery_id: row.get::<_, String>(0)?.into(),
                            attempt: row.get(1)?,
                            webhook_id: row.get::<_, String>(2)?.into(),
                            waits_until: None,
                        })
                    })
                    .map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(unavailable)
            })
            .await?;
        // Choosing and holding under one lock: a job is never handed to two callers at once.
        let mut holds = self.store.holds.lock();
        holds.retain(|_, until| *until > now);
        let mut taken = HashMap::<String, u32>::new();
        let chosen: Vec<ClaimedJob> = due
            .into_iter()
            .filter(|job| !holds.contains_key(&job.delivery_id))
            .filter(|job| {
                let count = taken.entry(job.webhook_id.to_string()).or_default();
                let fits = room.in_flight(&job.webhook_id) + *count < room.per_webhook;
                *count += u32::from(fits);
                fits
            })
            .take(limit as usize)
            .map(|job| ClaimedJob { job, held_until_ms })
            .collect();
        for claimed in &chosen {
            holds.insert(claimed.job.delivery_id.clone(), held_until_ms);
        }
        Ok(chosen)
    }

    /// Lets go of a finished job (unless its hold ran out and another worker holds it now): what
    /// the delivery's row says decides when it is due again, if ever.
    pub fn complete(&self, claimed: &ClaimedJob) {
        let mut holds = self.store.holds.lock();
        if holds.get(&claimed.job.delivery_id) == Some(&claimed.held_until_ms) {
            holds.remove(&claimed.job.delivery_id);
        }
    }

    /// Keeps a claimed job's delivery back for `delay`, then lets it be looked at again.
    pub fn look_again_in(&self, claimed: &ClaimedJob, delay: Duration) {
        let until = self.now_ms() + delay.as_millis() as i64;
        let mut holds = self.store.holds.lock();
        if let Some(held) = holds.get_mut(&claimed.job.delivery_id)
            && *held == claimed.held_until_ms
        {
            *held = until;
        }
    }

    /// How long until a job may be due (`None` when nothing is waiting): the earliest due delivery
    /// not held, or the earliest hold's end.
    pub async fn next_due_in(&self) -> Result<Option<Duration>, StoreError> {
        let now = self.now_ms();
        let holds: HashMap<DeliveryId, i64> = self.store.holds.lock().clone();
        let hold_ends = holds.values().min().copied();
        let look_at = holds.len() + 1;
        let next_unheld: Option<i64> = self
            .store
            .read(move |conn| {
                let mut due = conn
                    .prepare_cached(
                        "SELECT id, due_at FROM deliveries WHERE due_at IS NOT NULL
                         ORDER BY due_at LIMIT ?1",
                    )
                    .map_err(unavailable)?;
                let rows = due
                    .query_map([look_at], |row| {
                        Ok((DeliveryId::from(row.get::<_, String>(0)?), row.get(1)?))
                    })
                    .map_err(unavailable)?;
                for row in rows {
                    let (delivery_id, due_at) = row.map_err(unavailable)?;
                    if holds.get(&delivery_id).is_none_or(|until| *until <= now) {
                        return Ok(Some(due_at));
                    }
                }
                Ok(None)
            })
            .await?;
        let next = match (next_unheld, hold_ends) {
            (Some(due), Some(ends)) => Some(due.min(ends)),
            (due, ends) => due.or(ends),
        };
        Ok(next.map(|at| Duration::from_millis((at - now).max(0) as u64)))
    }

    /// Waits until a job may have been queued, or `timeout` passes.
    pub async fn queued(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.store.job_queued.notified()).await;
    }
}

/// Makes `job`'s delivery due at `due_at` (ms) if it waits for the attempt the job asks for, until
/// later. A final delivery (no `due_at`), one already due sooner, and one waiting for another
/// attempt (the job is stale) stay as they are.
fn due_no_later_than(
    conn: &rusqlite::Connection,
    job: &DeliveryJob,
    due_at: i64,
) -> Result<(), StoreError> {
    conn.execute_cached(
        "UPDATE deliveries SET due_at = ?2 WHERE id = ?1 AND next_attempt = ?3 AND due_at > ?2",
        params![job.delivery_id.as_str(), due_at, job.attempt],
    )
    .map(drop)
    .map_err(unavailable)
}

#[async_trait::async_trait]
impl JobQueue for EmbeddedQueue {
    /// The delivery's row is its job: queueing one makes it due no later than `delay_seconds` from
    /// now. A job for an attempt already made changes nothing.
    async fn enqueue(&self, job: &DeliveryJob, delay_seconds: u32) -> Result<(), StoreError> {
        let due_at = self.now_ms() + i64::from(delay_seconds) * 1000;
        let job = job.clone();
        self.store
            .run(move |conn| due_no_later_than(conn, &job, due_at))
            .await?;
        self.store.job_queued.notify_one();
        Ok(())
    }

    async fn enqueue_now(&self, jobs: &[DeliveryJob]) -> Result<(), StoreError> {
        let now = self.now_ms();
        let jobs = jobs.to_vec();
        self.store
            .run(move |conn| {
                jobs.iter()
                    .try_for_each(|job| due_no_later_than(conn, job, now))
            })
            .await?;
        self.store.job_queued.notify_one();
        Ok(())
    }
}
