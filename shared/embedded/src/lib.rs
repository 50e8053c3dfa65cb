//! Refwire on one SQLite file (WAL mode). Every state change and the outbox event it causes are written
//! in one transaction; uniqueness rules (codes, referees, one open code per referrer) are enforced by
//! the schema, so they hold under any concurrency.

mod deliveries;
mod participants;
mod queue;
mod readers;
mod referrals;
mod schema;
mod waitlists;
mod webhooks;
mod writer;

pub use queue::{ClaimedJob, EmbeddedQueue, WebhookRoom};

use refwire_core::StoreError;
use refwire_core::events::OutboxEvent;
use refwire_core::ports::{EventStore, ProgramStore};
use refwire_core::programs::ReferralSettings;
use refwire_core::programs::{ApiKeyRecord, Program};
use refwire_core::time::Timestamp;
use rusqlite::{Connection, OptionalExtension, Params, Row, params};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Notify;

/// Statements run through the connection's prepared-statement cache. Parsing the same SQL again on
/// every call took about a quarter of refwire-local's CPU under delivery load.
pub(crate) trait CachedSql {
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, row: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl CachedSql for Connection {
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, row: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, row)
    }
}

/// Statements each connection keeps prepared: more than the store's distinct statements.
const STATEMENT_CACHE: usize = 128;

/// The embedded store. Cloning shares the connection.
#[derive(Clone)]
pub struct EmbeddedStore {
    /// The one thread that owns the connection and group-commits all work that writes.
    writer: Arc<writer::Writer>,
    /// Read-only connections for the work that only reads.
    readers: Arc<readers::Readers>,
    /// Signalled after a commit that wrote outbox events, so the fan-out worker need not poll fast.
    outbox_written: Arc<Notify>,
    /// Signalled after a job is queued.
    job_queued: Arc<Notify>,
    /// The deliveries this process's delivery workers hold (see `queue`).
    holds: Arc<queue::Holds>,
}

impl EmbeddedStore {
    /// Opens (creating and migrating if needed) the data file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut connection = Connection::open(path).map_err(unavailable)?;
        schema::prepare(&mut connection).map_err(unavailable)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(EmbeddedStore {
            writer: Arc::new(writer::Writer::start(connection, path)?),
            readers: Arc::new(readers::Readers::new(path.to_path_buf())),
            outbox_written: Arc::new(Notify::new()),
            job_queued: Arc::new(Notify::new()),
            holds: Arc::default(),
        })
    }

    /// Waits until outbox events may have been written, or `timeout` passes.
    pub async fn outbox_changed(&self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.outbox_written.notified()).await;
    }

    pub(crate) fn notify_outbox(&self) {
        self.outbox_written.notify_one();
    }

    /// Outbox events written after the fan-out cursor, oldest first, with their sequence numbers.
    pub async fn unfanned_events(&self, limit: u32) -> Result<Vec<(i64, OutboxEvent)>, StoreError> {
        self.read(move |conn| {
            let mut query = conn
                .prepare_cached(
                    "SELECT seq, doc FROM outbox
                     WHERE seq > COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fanout_seq'), 0)
                     ORDER BY seq LIMIT ?1",
                )
                .map_err(unavailable)?;
            let rows = query
                .query_map([limit], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
                .map_err(unavailable)?;
            rows.map(|row| {
                let (seq, doc) = row.map_err(unavailable)?;
                Ok((seq, from_json(&doc)?))
            })
            .collect()
        })
        .await
    }

    /// Deletes what is kept for a limited time (30 days; DynamoDB does it with TTL): outbox events
    /// written before `cutoff` that fan-out has passed (their idempotency keys go with them), and
    /// finished deliveries with their attempt logs created before it. Returns how many rows went.
    pub async fn purge_before(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let (cutoff_text, cutoff_ms) = (
            refwire_core::time::format(&cutoff),
            cutoff.timestamp_millis(),
        );
        self.run(move |conn| {
            let tx = &*conn;
            let events = tx
                .execute_cached(
                    "DELETE FROM outbox
                     WHERE seq <= COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fanout_seq'), 0)
                       AND json_extract(doc, '$.timestamp') < ?1",
                    [cutoff_text],
                )
                .map_err(unavailable)?;
            let deliveries = tx
                .execute_cached(
                    "DELETE FROM deliveries WHERE created_at < ?1 AND state IN ('succeeded', 'failed')",
                    [cutoff_ms],
                )
                .map_err(unavailable)?;
            Ok(events + deliveries)
        })
        .await
    }

    /// Records that every event up to `seq` has been fanned out.
    pub async fn advance_fanout_cursor(&self, seq: i64) -> Result<(), StoreError> {
        self.set_meta("fanout_seq", &seq.to_string()).await
    }

    /// Runs SQLite work on the store's own thread, atomically: inside a transaction shared with
    /// whatever other work is waiting (group commit, see `writer`), in a savepoint of its own that
    /// an error rolls back. Returns once that transaction has committed.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.run(work).await
    }

    /// Runs SQLite work that only reads on a read-only connection: it sees every commit made before
    /// it started, and does not wait for the writer.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.readers.run(work).await
    }

    /// Runs `work` in one transaction with `events` written beside it, and wakes the fan-out worker
    /// when there were events. An error from `work` rolls everything back.
    async fn write_with_events<T, F>(
        &self,
        events: &[OutboxEvent],
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let events = events.to_vec();
        let wakes = !events.is_empty();
        let written = self
            .run(move |conn| {
                let tx = &*conn;
                let written = work(tx)?;
                insert_events(tx, &events)?;
                Ok(written)
            })
            .await?;
        if wakes {
            self.notify_outbox();
        }
        Ok(written)
    }

    /// The JSON document of the one row `sql` (taking the id as `?1`) selects, if any.
    async fn doc_by_id<T>(&self, sql: &'static str, id: &str) -> Result<Option<T>, StoreError>
    where
        T: serde::de::DeserializeOwned,
    {
        self.readers
            .run_here(|conn| {
                let doc: Option<String> = conn
                    .query_row_cached(sql, [id], |row| row.get(0))
                    .optional()
                    .map_err(unavailable)?;
                doc.as_deref().map(from_json).transpose()
            })
            .await
    }

    /// A value from the instance's own key/value table (refwire-local keeps its bootstrap state here).
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.read(move |conn| {
            conn.query_row_cached("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }
}

pub(crate) fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::unavailable("SQLite call failed", err)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(unavailable)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(unavailable)
}

pub(crate) fn insert_events(tx: &Connection, events: &[OutboxEvent]) -> Result<(), StoreError> {
    let mut insert = tx
        .prepare_cached("INSERT INTO outbox (id, program_id, event, doc) VALUES (?1, ?2, ?3, ?4)")
        .map_err(unavailable)?;
    for event in events {
        insert
            .execute(params![
                event.id.as_str(),
                event.program_id.as_str(),
                event.event,
                to_json(event)?
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl ProgramStore for EmbeddedStore {
    async fn create_program(
        &self,
        program: &Program,
        keys: &[ApiKeyRecord],
    ) -> Result<(), StoreError> {
        let program = program.clone();
        let keys = keys.to_vec();
        self.run(move |conn| {
            let tx = &*conn;
            tx.execute_cached(
                "INSERT INTO programs (id, doc) VALUES (?1, ?2)",
                params![program.id.as_str(), to_json(&program)?],
            )
            .map_err(unavailable)?;
            for key in &keys {
                insert_key(tx, key)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_program(&self, program_id: &str) -> Result<Option<Program>, StoreError> {
        self.doc_by_id("SELECT doc FROM programs WHERE id = ?1", program_id)
            .await
    }

    async fn save_settings(
        &self,
        program_id: &str,
        settings: &ReferralSettings,
    ) -> Result<(), StoreError> {
        let program_id = program_id.to_string();
        let settings = settings.clone();
        self.run(move |conn| {
            let tx = &*conn;
            let doc: String = tx
                .query_row_cached(
                    "SELECT doc FROM programs WHERE id = ?1",
                    [&program_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?
                .ok_or(StoreError::NotFound)?;
            let mut program: Program = from_json(&doc)?;
            program.settings = settings;
            tx.execute_cached(
                "UPDATE programs SET doc = ?2 WHERE id = ?1",
                params![program_id, to_json(&program)?],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |conn| {
            let tx = &*conn;
            require_program(tx, &key.program_id)?;
            insert_key(tx, &key)?;
            Ok(())
        })
        .await
    }

    async fn find_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.doc_by_id("SELECT doc FROM api_keys WHERE key_id = ?1", key_id)
            .await
    }

    async fn replace_inbound_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |conn| {
            let tx = &*conn;
            require_program(tx, &key.program_id)?;
            tx.execute_cached(
                "DELETE FROM api_keys WHERE program_id = ?1 AND json_extract(doc, '$.kind') = 'inbound'",
                [key.program_id.as_str()],
            )
            .map_err(unavailable)?;
            insert_key(tx, &key)?;
            Ok(())
        })
        .await
    }

    async fn delete_api_key(&self, program_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let (program_id, key_id) = (program_id.to_string(), key_id.to_string());
        self.run(move |conn| {
            conn.execute_cached(
                "DELETE FROM api_keys WHERE program_id = ?1 AND key_id = ?2",
                [program_id, key_id],
            )
            .map(|deleted| deleted > 0)
            .map_err(unavailable)
        })
        .await
    }
}

/// `NotFound` unless the program exists.
fn require_program(tx: &Connection, program_id: &str) -> Result<(), StoreError> {
    tx.query_row_cached("SELECT 1 FROM programs WHERE id = ?1", [program_id], |_| {
        Ok(())
    })
    .optional()
    .map_err(unavailable)?
    .ok_or(StoreError::NotFound)
}

fn insert_key(tx: &Connection, key: &ApiKeyRecord) -> Result<(), StoreError> {
    tx.execute_cached(
        "INSERT INTO api_keys (key_id, program_id, doc) VALUES (?1, ?2, ?3)",
        params![key.key_id, key.program_id.as_str(), to_json(key)?],
    )
    .map(drop)
    .map_err(unavailable)
}

#[async_trait::async_trait]
impl EventStore for EmbeddedStore {
    async fn referral_events(
        &self,
        program_id: &str,
        referral_code: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let (program_id, referral_code) = (program_id.to_string(), referral_code.to_string());
        self.read(move |conn| {
            let mut query = conn
                .prepare_cached(
                    "SELECT doc FROM outbox
                     WHERE program_id = ?1 AND json_extract(doc, '$.data.referral_code') = ?2
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(unavailable)?;
            let docs = query
                .query_map(params![program_id, referral_code, limit], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            docs.map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn list_events(
        &self,
        program_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let program_id = program_id.to_string();
        let after = after.map(str::to_string);
        self.read(move |conn| {
            let mut query = conn
                .prepare_cached(
                    "SELECT doc FROM outbox
                     WHERE program_id = ?1
                       AND seq > COALESCE((SELECT seq FROM outbox WHERE id = ?2), 0)
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(unavailable)?;
            let docs = query
                .query_map(params![program_id, after, limit], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            docs.map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<OutboxEvent>, StoreError> {
        self.doc_by_id("SELECT doc FROM outbox WHERE id = ?1", event_id)
            .await
    }

    async fn publish_event(
        &self,
        event: &OutboxEvent,
        idempotency_key: Option<&str>,
    ) -> Result<OutboxEvent, StoreError> {
        let event = event.clone();
        let key = idempotency_key.map(str::to_string);
        let stored = self
            .run(move |conn| {
                let tx = &*conn;
                let inserted = tx
                    .execute_cached(
                        "INSERT INTO outbox (id, program_id, event, doc, idempotency_key)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (program_id, idempotency_key) WHERE idempotency_key IS NOT NULL
                         DO NOTHING",
                        params![
                            event.id.as_str(),
                            event.program_id.as_str(),
                            event.event,
                            to_json(&event)?,
                            key
                        ],
                    )
                    .map_err(unavailable)?;
                let stored = if inserted == 1 {
                    event
                } else {
                    let doc: String = tx
                        .query_row_cached(
                            "SELECT doc FROM outbox WHERE program_id = ?1 AND idempotency_key = ?2",
                            params![event.program_id.as_str(), key],
                            |row| row.get(0),
                        )
                        .map_err(unavailable)?;
                    from_json(&doc)?
                };
                Ok(stored)
            })
            .await?;
        self.notify_outbox();
        Ok(stored)
    }
}
