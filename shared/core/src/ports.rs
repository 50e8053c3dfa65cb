//! Port traits: what the use cases need from storage. Each adapter (SQLite, DynamoDB) implements them
//! and must pass the same conformance suite (`tests/integration/conformance.rs`).

use crate::deliveries::outgoing::OutgoingRequest;
use crate::deliveries::{Delivery, DeliveryJob, DeliveryState, SendResult};
use crate::error::StoreError;
use crate::events::OutboxEvent;
use crate::participants::{Participant, ParticipantKey};
use crate::programs::ReferralSettings;
use crate::programs::{ApiKeyRecord, Program};
use crate::referrals::{Referral, ReferralStatus};
pub use crate::referrals::{ReferralCounts, ReferrerTally};
use crate::time::Timestamp;
use crate::waitlists::{Signup, SignupChange, Waitlist};
use crate::webhooks::Webhook;
use async_trait::async_trait;
use std::time::Duration;

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
    /// Makes `key` the program's only inbound key, deleting the one it had, atomically.
    /// `NotFound` when the program does not exist.
    async fn replace_inbound_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
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

impl ReferralPage {
    /// A page from referrals read with one to spare beyond `limit` (the spare says more exist).
    pub fn from_rows(rows: Vec<Referral>, limit: u32) -> Self {
        let (referrals, next_cursor) = cut_page(rows, limit, |last| last.referral_id.clone());
        ReferralPage {
            referrals,
            next_cursor,
        }
    }
}

/// Cuts rows read with one to spare down to `limit`; when there were more, the cursor is the last
/// kept row's.
fn cut_page<T>(
    mut rows: Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if rows.len() <= limit as usize {
        return (rows, None);
    }
    rows.truncate(limit as usize);
    let cursor = rows.last().map(cursor_of);
    (rows, cursor)
}

#[async_trait]
pub trait ReferralStore: Send + Sync {
    /// Inserts a new pending referral and its `referral.created` event in one transaction, adding
    /// the referral to its program's counts and its referrer's totals in that transaction.
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
    /// The referral whose referee is `user_id`, if any (a user is referred once per program).
    async fn find_referral_by_referee(
        &self,
        program_id: &str,
        user_id: &str,
    ) -> Result<Option<Referral>, StoreError>;

    async fn find_open_referral(
        &self,
        program_id: &str,
        referrer_id: &str,
    ) -> Result<Option<Referral>, StoreError>;

    /// Replaces the referral whose stored version is `expected_version`, writing `events` and the
    /// change to the counts and totals ([`crate::referrals::CountChange`]) in the same
    /// transaction. `VersionConflict` when it changed meanwhile; `RefereeTaken` when a newly
    /// attached referee was already referred in the program.
    async fn update_referral(
        &self,
        referral: &Referral,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    async fn list_referrals(
        &self,
        program_id: &str,
        query: &ReferralQuery,
        limit: u32,
        now: Timestamp,
    ) -> Result<ReferralPage, StoreError>;

    /// The program's counts at `now`: its running counts, with lapsed pending referrals whose
    /// expiry is not written yet counted as expired. Costs the same at any program size.
    async fn count_referrals(
        &self,
        program_id: &str,
        now: Timestamp,
    ) -> Result<ReferralCounts, StoreError>;

    /// Top referrers by completed, then total, then referrer id, from the referrers' running
    /// totals (reads about `limit` of them); `pending` counts their unlapsed pending referrals.
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

#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantPage {
    pub participants: Vec<Participant>,
    pub next_cursor: Option<String>,
}

impl ParticipantPage {
    /// A page from participants read with one to spare beyond `limit`.
    pub fn from_rows(rows: Vec<Participant>, limit: u32) -> Self {
        let (participants, next_cursor) = cut_page(rows, limit, |last| last.id.to_string());
        ParticipantPage {
            participants,
            next_cursor,
        }
    }
}

/// Participants. Adapters keep `referrals_count` (and the version) outside the stored document so
/// that a join can add to the referrer's count in its own transaction; reads return both current.
#[async_trait]
pub trait ParticipantStore: Send + Sync {
    /// Inserts the participant and `events` in one transaction, adding one to the referrals count
    /// (and the version) of the participant in `referred_by`. `ParticipantExists` when the email
    /// (case-insensitively) or user id is taken in the program; `CodeTaken` when the code is in use
    /// by a participant or a referral; `NotFound` when the referrer no longer exists.
    async fn insert_participant(
        &self,
        participant: &Participant,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    async fn get_participant(
        &self,
        program_id: &str,
        participant_id: &str,
    ) -> Result<Option<Participant>, StoreError>;

    async fn find_participant(
        &self,
        program_id: &str,
        key: ParticipantKey<'_>,
    ) -> Result<Option<Participant>, StoreError>;

    /// Replaces the participant whose stored version is `expected_version`, with `events`.
    async fn update_participant(
        &self,
        participant: &Participant,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;

    /// Deletes the participant with its email, user id and code; returns whether it existed.
    async fn delete_participant(
        &self,
        participant: &Participant,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError>;

    /// A program's participants, newest first, after the participant id `cursor`.
    async fn list_participants(
        &self,
        program_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ParticipantPage, StoreError>;
}

/// Waitlists and their signups. The order is the byte order of `Signup::rank`.
#[async_trait]
pub trait WaitlistStore: Send + Sync {
    async fn insert_waitlist(&self, waitlist: &Waitlist) -> Result<(), StoreError>;
    async fn get_waitlist(
        &self,
        program_id: &str,
        waitlist_id: &str,
    ) -> Result<Option<Waitlist>, StoreError>;
    /// A program's waitlists, oldest first.
    async fn list_waitlists(&self, program_id: &str) -> Result<Vec<Waitlist>, StoreError>;
    async fn get_signup(
        &self,
        waitlist_id: &str,
        signup_id: &str,
    ) -> Result<Option<Signup>, StoreError>;
    /// The participant's signup in the waitlist, if any.
    async fn find_signup(
        &self,
        waitlist_id: &str,
        participant_id: &str,
    ) -> Result<Option<Signup>, StoreError>;
    /// Signups in order, skipping the first `offset`.
    async fn signups_from(
        &self,
        waitlist_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Signup>, StoreError>;
    /// Up to `limit` signups ranked just before `rank`, nearest first.
    async fn signups_before(
        &self,
        waitlist_id: &str,
        rank: &str,
        limit: u32,
    ) -> Result<Vec<Signup>, StoreError>;
    /// How many signups rank before `rank` (a position is this plus one).
    async fn count_before(&self, waitlist_id: &str, rank: &str) -> Result<u64, StoreError>;
    /// Writes a change of the order in one transaction: `VersionConflict` when the waitlist's (or
    /// the moved signup's) stored version is not the expected one; `ParticipantExists` when the created
    /// signup's participant already has one in the waitlist.
    async fn write_signups(&self, change: &SignupChange) -> Result<(), StoreError>;
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

    async fn get_event(&self, event_id: &str) -> Result<Option<OutboxEvent>, StoreError>;

    /// The program's events whose data names `referral_code` (`data.referral_code`), oldest
    /// first, at most `limit`: what one referral caused.
    async fn referral_events(
        &self,
        program_id: &str,
        referral_code: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, StoreError>;

    /// Writes a stand-alone event (custom events, webhook tests). With an idempotency key, a second
    /// publish with the same key in the program writes nothing and returns the first event.
    async fn publish_event(
        &self,
        event: &OutboxEvent,
        idempotency_key: Option<&str>,
    ) -> Result<OutboxEvent, StoreError>;
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError>;
    async fn get_webhook(&self, webhook_id: &str) -> Result<Option<Webhook>, StoreError>;
    /// A program's webhooks, oldest first.
    async fn list_webhooks(&self, program_id: &str) -> Result<Vec<Webhook>, StoreError>;
    /// Replaces the webhook whose stored version is `expected_version`, with `events` in the same
    /// transaction; `VersionConflict` otherwise, `NotFound` when it was deleted.
    async fn update_webhook(
        &self,
        webhook: &Webhook,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;
    /// Returns whether a webhook was deleted.
    async fn delete_webhook(&self, program_id: &str, webhook_id: &str) -> Result<bool, StoreError>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

impl DeliveryPage {
    /// A page from deliveries read with one to spare beyond `limit`; the cursor is the last
    /// delivery's id, the same on every store, so the use case can check a cursor it is given.
    pub fn from_rows(rows: Vec<Delivery>, limit: u32) -> Self {
        let (deliveries, next_cursor) = cut_page(rows, limit, |last| last.id.to_string());
        DeliveryPage {
            deliveries,
            next_cursor,
        }
    }
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Inserts the delivery unless one with its id exists; returns the stored one either way.
    async fn insert_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError>;
    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError>;
    /// Replaces the delivery whose stored version is `expected_version`.
    async fn update_delivery(
        &self,
        delivery: &Delivery,
        expected_version: u64,
    ) -> Result<(), StoreError>;
    /// A webhook's deliveries, newest first, optionally in one state, after `after` (the last
    /// delivery of the previous page, one of this webhook's).
    async fn list_deliveries(
        &self,
        webhook_id: &str,
        state: Option<DeliveryState>,
        after: Option<&Delivery>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError>;
    /// Counts one attempt starting in the webhook's window `second` (a Unix second) and returns the
    /// window's count so far, this one included; windows are kept a minute or two, no longer.
    async fn count_send(&self, webhook_id: &str, second: i64) -> Result<u64, StoreError>;
    /// A webhook's failed deliveries created at or after `since`, oldest first.
    async fn failed_deliveries_since(
        &self,
        webhook_id: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
}

/// Where delivery jobs wait until they are due.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Makes `job` due after `delay_seconds`. Enqueueing a job id again replaces or duplicates it;
    /// the delivery worker drops stale duplicates.
    async fn enqueue(&self, job: &DeliveryJob, delay_seconds: u32) -> Result<(), StoreError>;

    /// Makes every job due now; adapters with a batch call (SQS `SendMessageBatch`) override this.
    async fn enqueue_now(&self, jobs: &[DeliveryJob]) -> Result<(), StoreError> {
        for job in jobs {
            self.enqueue(job, 0).await?;
        }
        Ok(())
    }
}

/// Sends one HTTP request under a timeout. Never fails: every problem is part of the result.
#[async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, request: &OutgoingRequest, timeout: Duration) -> SendResult;
}

/// Everything the use cases need, as one object.
pub trait Store:
    ProgramStore
    + ReferralStore
    + ParticipantStore
    + WaitlistStore
    + EventStore
    + WebhookStore
    + DeliveryStore
{
}

impl<T> Store for T where
    T: ProgramStore
        + ReferralStore
        + ParticipantStore
        + WaitlistStore
        + EventStore
        + WebhookStore
        + DeliveryStore
{
}
