//! Errors the use cases return. The HTTP layer maps each variant to a status and the JSON error shape;
//! messages here are written for API users and never contain internal detail.

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
    /// The store failed; the detail is logged by the adapter, never shown to the caller.
    #[error("the data store is temporarily unavailable")]
    Unavailable,
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

/// What a store adapter reports. `Unavailable` carries the internal cause for logs only.
#[derive(Debug, thiserror::Error)]
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
    #[error("store failure: {0}")]
    Unavailable(String),
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
            StoreError::Unavailable(_) => Error::Unavailable,
        }
    }
}
