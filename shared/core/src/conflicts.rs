//! Optimistic concurrency: a use case reads what it changes, decides, and writes on the condition that
//! nothing changed meanwhile. When the store reports that something did, the whole try runs again
//! from a fresh read. Every such loop goes through [`retry_on_conflict`]: the use cases', and the
//! adapters' own where one store write needs several conditional items.
//!
//! Each conditional write names the version it expects stored (the one its record was read at);
//! [`Versioned::next_version`] moves the record on and gives that version, so no adapter has to
//! work it out.

use crate::error::{Error, StoreError};

/// Tries before a request gives up with 409 `concurrent_update`. Contention ends quickly in
/// practice: a repeated milestone or a re-read record usually has nothing left to write.
pub const MAX_TRIES: usize = 64;

/// What one try came to.
pub enum Try<T, S = ()> {
    /// Written (or nothing needed writing): the use case's result.
    Done(T),
    /// Lost a race: read again and redo, carrying `S` (what this try learnt) to the next one.
    Again(S),
}

/// A record written under optimistic concurrency: its `version` goes up by one with every write.
pub trait Versioned {
    fn version_mut(&mut self) -> &mut u64;

    /// Moves the record to its next version and returns the one it was read at: the version its
    /// write expects to find stored.
    fn next_version(&mut self) -> u64 {
        let version = self.version_mut();
        let expected = *version;
        *version += 1;
        expected
    }
}

/// A record moved to its next version, with the version its write expects stored: for a
/// transaction that writes several records.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision<T> {
    pub record: T,
    pub expected_version: u64,
}

impl<T: Versioned> Revision<T> {
    pub fn next(mut record: T) -> Self {
        let expected_version = record.next_version();
        Revision {
            record,
            expected_version,
        }
    }
}

macro_rules! versioned {
    ($($record:ty),*) => {
        $(impl Versioned for $record {
            fn version_mut(&mut self) -> &mut u64 {
                &mut self.version
            }
        })*
    };
}

versioned!(
    crate::referrals::Referral,
    crate::participants::Participant,
    crate::webhooks::Webhook,
    crate::deliveries::Delivery,
    crate::waitlists::Waitlist,
    crate::waitlists::Signup
);

/// `Done(value)` when the write succeeded, `Again` when the store saw a concurrent change.
pub fn written<T>(result: Result<(), StoreError>, value: T) -> Result<Try<T>, Error> {
    match result {
        Ok(()) => Ok(Try::Done(value)),
        Err(StoreError::VersionConflict) => Ok(Try::Again(())),
        Err(err) => Err(err.into()),
    }
}

/// Runs `attempt` from `state` until it is done or fails, at most [`MAX_TRIES`] times; each try
/// gets the state the previous one handed on.
pub async fn retry_on_conflict<S, T, E, Fut>(
    mut state: S,
    mut attempt: impl FnMut(S) -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<Try<T, S>, E>>,
    E: From<StoreError>,
{
    for _ in 0..MAX_TRIES {
        match attempt(state).await? {
            Try::Done(value) => return Ok(value),
            Try::Again(next) => state = next,
        }
    }
    Err(StoreError::VersionConflict.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_try_runs_again_after_each_conflict_until_done() {
        let result: Result<i32, Error> = retry_on_conflict(1, |tries| async move {
            Ok(if tries < 3 {
                Try::Again(tries + 1)
            } else {
                Try::Done(tries)
            })
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn endless_conflicts_end_in_a_concurrent_update_error() {
        let tries = std::cell::Cell::new(0);
        let result: Result<(), Error> = retry_on_conflict((), |()| {
            tries.set(tries.get() + 1);
            async { written(Err(StoreError::VersionConflict), ()) }
        })
        .await;
        assert_eq!(tries.get(), MAX_TRIES);
        assert!(matches!(
            result,
            Err(Error::Conflict {
                code: "concurrent_update",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn other_store_errors_end_the_retries_at_once() {
        let tries = std::cell::Cell::new(0);
        let result: Result<(), Error> = retry_on_conflict((), |()| {
            tries.set(tries.get() + 1);
            async { written(Err(StoreError::NotFound), ()) }
        })
        .await;
        assert_eq!(tries.get(), 1);
        assert!(matches!(result, Err(Error::NotFound(_))));
    }
}
