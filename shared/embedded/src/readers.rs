//! Read-only connections for work that writes nothing. In WAL mode a reader sees the last commit
//! while the writer's next group transaction is under way, so reads neither wait for that
//! transaction's fsync nor hold it up. Whatever a caller was told is committed, a later read sees.

use crate::{STATEMENT_CACHE, unavailable};
use refwire_core::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Readers open at once: more would only contend for this machine's cores and add page caches.
const MAX_READERS: usize = 4;

pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    slots: Semaphore,
}

impl Readers {
    pub fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(MAX_READERS),
        }
    }

    /// Runs `work` on a read-only connection, off the async runtime's worker threads: for queries
    /// that may scan many rows.
    pub async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| StoreError::failed("the readers are closed"))?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || readers.with_connection(work))
            .await
            .map_err(|join| StoreError::unavailable("a SQLite read task failed", join))?
    }

    /// Runs `work` on a read-only connection on the calling thread: for a lookup by key, which
    /// takes microseconds. Handing it to a blocking thread cost more than the read (a wake-up and
    /// a contended lock each), about a tenth of refwire-local's throughput under delivery load.
    pub async fn run_here<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| StoreError::failed("the readers are closed"))?;
        self.with_connection(work)
    }

    /// Runs `work` on an idle connection (opening one if none is), then returns it to the idle ones.
    fn with_connection<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let connection = match self.take_idle() {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(unavailable)?;
                connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                connection
            }
        };
        let result = work(&connection);
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(connection);
        result
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }
}
