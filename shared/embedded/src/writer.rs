//! Group commit. One thread owns the SQLite connection and runs every piece of store work. Work
//! that arrives while a commit is under way waits for it, and then all of it runs in one
//! transaction, each piece in its own savepoint (an error undoes only that piece's writes), with one
//! COMMIT, so one WAL fsync (`synchronous=FULL`), for the lot. A caller gets its result only after
//! the commit that made its writes durable: concurrent requests share an fsync, and none is
//! answered before its write is on disk.
//!
//! Checkpoints (copying the WAL back into the database file) run on a thread of their own, on a
//! second connection: run inside the writer's commits, as SQLite does by default, each took up to
//! 20 ms, and the pieces queued behind it waited. The writer still checkpoints every 1,000 pages
//! (SQLite's default), but finds nearly everything copied already; only its checkpoint can start
//! the WAL over (no commit comes in between), which keeps the file from growing under steady load.

use crate::CachedSql;
use refwire_core::StoreError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// The most pieces of work one transaction takes; later ones go in the next.
const MAX_BATCH: usize = 512;
/// How long the checkpointer lets commits gather after being woken by one: a checkpoint copies
/// each changed page once however many commits changed it.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// Hands a piece of work its result once its transaction has committed, or the commit's error.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A piece of work: whether it succeeded (a failed one's savepoint is rolled back) and how to
/// complete it. Dropping either one unrun fails its caller with `Unavailable`.
type Work = Box<dyn FnOnce(&mut Connection) -> (bool, Completion) + Send>;

pub struct Writer {
    queue: mpsc::Sender<Work>,
}

impl Writer {
    /// Starts the thread that owns `connection` (to the data file at `path`), and the checkpointer;
    /// the writer ends when the last `Writer` handle is dropped, and the checkpointer with it.
    pub fn start(connection: Connection, path: &Path) -> Result<Writer, StoreError> {
        let checkpoints = Connection::open(path)
            .and_then(|checkpoints| {
                checkpoints.busy_timeout(Duration::from_secs(5))?;
                Ok(checkpoints)
            })
            .map_err(|err| StoreError::unavailable("opening the checkpoint connection", err))?;
        let (commits, committed) = mpsc::channel();
        std::thread::Builder::new()
            .name("refwire-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoints, committed))
            .map_err(|err| StoreError::unavailable("starting the checkpoint thread", err))?;
        let (queue, work) = mpsc::channel();
        std::thread::Builder::new()
            .name("refwire-sqlite".into())
            .spawn(move || write_loop(connection, work, commits))
            .map_err(|err| StoreError::unavailable("starting the SQLite thread", err))?;
        Ok(Writer { queue })
    }

    /// Runs `work` on the connection inside the next group transaction; returns its result after
    /// that transaction committed.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |connection| {
            let outcome = work(connection);
            let succeeded = outcome.is_ok();
            let complete: Completion = Box::new(move |committed| {
                let _ = reply.send(committed.and(outcome));
            });
            (succeeded, complete)
        });
        self.queue
            .send(work)
            .map_err(|_| StoreError::failed("the SQLite thread has stopped"))?;
        result
            .await
            .map_err(|_| StoreError::failed("the transaction holding this write did not commit"))?
    }
}

fn write_loop(mut connection: Connection, work: mpsc::Receiver<Work>, commits: mpsc::Sender<()>) {
    while let Ok(first) = work.recv() {
        let batch: Vec<Work> = std::iter::once(first)
            .chain(work.try_iter().take(MAX_BATCH - 1))
            .collect();
        run_batch(&mut connection, batch);
        let _ = commits.send(());
    }
}

/// Checkpoints the WAL after commits, at most once per `CHECKPOINT_INTERVAL`. PASSIVE: it copies
/// what no reader still needs and never blocks the writer.
fn checkpoint_loop(connection: Connection, committed: mpsc::Receiver<()>) {
    while committed.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        committed.try_iter().for_each(drop);
        if let Err(err) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %err, "SQLite checkpoint failed; the next commit retries it");
        }
    }
}

/// Runs one of the transaction's own statements, prepared once per connection.
fn control(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.execute_cached(sql, []).map(drop)
}

fn run_batch(connection: &mut Connection, batch: Vec<Work>) {
    if let Err(err) = control(connection, "BEGIN IMMEDIATE") {
        tracing::error!(error = %err, "SQLite could not begin a transaction");
        return;
    }
    let mut completions = Vec::with_capacity(batch.len());
    for work in batch {
        if control(connection, "SAVEPOINT work").is_err() {
            return abandon(connection);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| work(connection)));
        let succeeded = matches!(outcome, Ok((true, _)));
        let undone = succeeded || control(connection, "ROLLBACK TO work").is_ok();
        // SQLite ends the whole transaction on some errors (a full disk, an I/O error): then nothing
        // in this batch is written, and every caller in it is told so.
        if connection.is_autocommit() || !undone || control(connection, "RELEASE work").is_err() {
            return abandon(connection);
        }
        // A panicked piece lost its completion with it; its caller gets `Unavailable`.
        if let Ok((_, complete)) = outcome {
            completions.push(complete);
        }
    }
    match control(connection, "COMMIT") {
        Ok(()) => completions
            .into_iter()
            .for_each(|complete| complete(Ok(()))),
        Err(err) => {
            abandon(connection);
            // Each caller logs the cause where its request fails.
            let failure = StoreError::unavailable("committing the SQLite transaction", err);
            for complete in completions {
                complete(Err(failure.clone()));
            }
        }
    }
}

fn abandon(connection: &mut Connection) {
    if !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
}
