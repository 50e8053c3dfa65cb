//! Port traits: what the use cases need from storage. Each adapter (SQLite, DynamoDB) implements them
//! and must pass the same conformance suite (`tests/integration/conformance.rs`).

use crate::error::StoreError;
use crate::events::OutboxEvent;
use crate::program::{ApiKeyRecord, Program};
use crate::referral::{Referral, ReferralStatus};
use crate::settings::ReferralSettings;
use crate::time::Timestamp;
use async_trait::async_trait;

#[async_trait]
pub trait ProgramStore: Send + Sync {
    /// Creates a program together with its first keys.
    async fn create_program(
        &self,
        program: &Program,
        keys: &[ApiKeyRecord],
    ) -> Result<(), StoreError>;
    async fn get_program(&self, program_id: &str) -> Result<Option<Program>, StoreError>;
    /// `NotFound` when the program does not exist.
    async fn save_settings(
        &self,
        program_id: &str,
        settings: &ReferralSettings,
    ) -> Result<(), StoreError>;
    /// `NotFound` when the key's program does not exist.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn find_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Returns whether a key was deleted.
    async fn delete_api_key(&self, program_id: &str, key_id: &str) -> Result<bool, StoreError>;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReferralQuery {
    pub status: Option<ReferralStatus>,
    pub referrer_id: Option<String>,
    /// The last `referral_id` of the previous page; pages run newest first.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReferralPage {
    pub referrals: Vec<Referral>,
    pub next_cursor: Option<String>,
}

/// Counts over a program's referrals, with lapsed pending referrals counted as expired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralCounts {
    pub total: u64,
    pub pending: u64,
    pub completed: u64,
    pub expired: u64,
    /// Claimed rewards, referrer and referee sides counted separately.
    pub rewards_claimed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerTally {
    pub referrer_id: String,
    /// The most recent `user_name` the referrer gave.
    pub user_name: Option<String>,
    pub total: u64,
    pub completed: u64,
    pub pending: u64,
}

#[async_trait]
pub trait ReferralStore: Send + Sync {
    /// Inserts a new pending referral and its `referral.created` event in one transaction.
    ///
    /// Atomically refuses with `LimitReached` when `max_pending` is set and the referrer already has
    /// that many pending, unlapsed referrals; with `OpenReferralExists` when the referrer already has a
    /// pending referral without a referee; with `CodeTaken` when the code is in use in the program.
    async fn insert_referral(
        &self,
        referral: &Referral,
        event: &OutboxEvent,
        max_pending: Option<u32>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    async fn find_referral(
        &self,
        program_id: &str,
        code: &str,
    ) -> Result<Option<Referral>, StoreError>;

    /// The referrer's pending referral that has no referee yet (lapsed or not), if any.
    async fn find_open_referral(
        &self,
        program_id: &str,
        referrer_id: &str,
    ) -> Result<Option<Referral>, StoreError>;

    /// Replaces the referral whose stored version is `referral.version - 1`, writing `events` in the
    /// same transaction. `VersionConflict` when it changed meanwhile; `RefereeTaken` when a newly
    /// attached referee was already referred in the program.
    async fn update_referral(
        &self,
        referral: &Referral,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    async fn list_referrals(
        &self,
        program_id: &str,
        query: &ReferralQuery,
        limit: u32,
        now: Timestamp,
    ) -> Result<ReferralPage, StoreError>;

    async fn count_referrals(
        &self,
        program_id: &str,
        now: Timestamp,
    ) -> Result<ReferralCounts, StoreError>;

    /// Top referrers by completed, then total, then referrer id.
    async fn top_referrers(
        &self,
        program_id: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ReferrerTally>, StoreError>;

    /// Pending referrals past their expiry, across all programs, for the expiry sweep.
    async fn lapsed_referrals(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Referral>, StoreError>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// A program's outbox events in the order they were written, after the event id `after`.
    async fn list_events(
        &self,
        program_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, StoreError>;
}

/// Everything the referral use cases need, as one object.
pub trait Store: ProgramStore + ReferralStore + EventStore {}

impl<T: ProgramStore + ReferralStore + EventStore> Store for T {}
