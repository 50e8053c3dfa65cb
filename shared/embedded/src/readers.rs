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

    /// Runs `work` on a read-only connection, off the async runtime's worker threads.
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
        tokio::task::spawn_blocking(move || {
            let connection = match readers.take_idle() {
                Some(connection) => connection,
                None => {
                    let connection = Connection::open_with_flags(
                        &readers.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(unavailable)?;
                    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                    connection
                }
            };
            let result = work(&connection);
            readers
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(connection);
            result
        })
        .await
        .map_err(|join| StoreError::unavailable("a SQLite read task failed", join))?
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }
}
