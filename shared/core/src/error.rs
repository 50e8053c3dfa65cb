//! Errors the use cases return. The HTTP layer maps each variant to a status and the JSON error shape;
//! messages here are written for API users and never contain internal detail.

use std::borrow::Cow;
use std::sync::Arc;

/// A failure of a use case, phrased for the API caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: nothing was changed.
    #[error("{message}")]
    Validation {
        field: Option<&'static str>,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well formed but the resource's state forbids it (expired, not completed, ...).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("this API key may not perform this action")]
    Forbidden,
    /// The store failed. The cause is kept for the one log line written where this becomes a 503
    /// (or a worker's retry), never shown to the caller.
    #[error("the data store is temporarily unavailable")]
    Unavailable(#[source] StoreError),
}

impl Error {
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Error::Validation {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }
}

/// Why a store call failed: what the adapter was doing and, when there is one, the error underneath.
/// Shared (`Arc`) so that one failed commit can be reported to every caller whose write it held.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{context}")]
pub struct StoreFailure {
    context: Cow<'static, str>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// What a store adapter reports. `Unavailable` carries the internal cause for logs only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the record changed since it was read. The use case re-reads and retries.
    #[error("the record was modified concurrently")]
    VersionConflict,
    /// The referrer already has the maximum number of pending referrals.
    #[error("referral limit reached")]
    LimitReached,
    /// A generated referral code collided with an existing one.
    #[error("referral code already exists")]
    CodeTaken,
    /// The referrer already has a pending referral without a referee (it is reused instead).
    #[error("an open referral already exists")]
    OpenReferralExists,
    /// A participant with this email or user id exists in the program.
    #[error("participant already exists")]
    ParticipantExists,
    /// The referee was already referred in this program.
    #[error("referee already referred")]
    RefereeTaken,
    #[error("record not found")]
    NotFound,
    #[error(transparent)]
    Unavailable(StoreFailure),
}

impl StoreError {
    /// The store failed while doing `context`, because of `source`.
    pub fn unavailable(
        context: impl Into<Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable(StoreFailure {
            context: context.into(),
            source: Some(Arc::new(source)),
        })
    }

    /// The store failed in a way `context` describes in full (no underlying error).
    pub fn failed(context: impl Into<Cow<'static, str>>) -> Self {
        StoreError::Unavailable(StoreFailure {
            context: context.into(),
            source: None,
        })
    }
}

/// Displays an error with its whole chain of causes, `outer: inner: innermost`, for log lines.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Error::NotFound("resource"),
            StoreError::LimitReached => {
                Error::validation("user_id", "Maximum referrals per user reached")
            }
            StoreError::RefereeTaken => Error::conflict(
                "already_referred",
                "this user has already been referred in this program",
            ),
            StoreError::VersionConflict
            | StoreError::ParticipantExists
            | StoreError::CodeTaken
            | StoreError::OpenReferralExists => Error::conflict(
                "concurrent_update",
                "the referral was modified concurrently; retry the request",
            ),
            StoreError::Unavailable(_) => Error::Unavailable(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_store_keeps_its_cause_for_the_log_but_not_for_the_caller() {
        let io = std::io::Error::other("disk I/O error");
        let err = Error::from(StoreError::unavailable("committing the transaction", io));
        assert_eq!(err.to_string(), "the data store is temporarily unavailable");
        assert_eq!(
            ErrorChain(&err).to_string(),
            "the data store is temporarily unavailable: committing the transaction: disk I/O error"
        );
        let bare = Error::from(StoreError::failed("the SQLite thread has stopped"));
        assert_eq!(
            ErrorChain(&bare).to_string(),
            "the data store is temporarily unavailable: the SQLite thread has stopped"
        );
    }
}
