//! `ReferralStore`. Besides the referral item, the rules the schema enforces in SQLite are pointer
//! items created with `attribute_not_exists` in the same transaction:
//! - `CODE#<program>#<code>`: one referral per code (and the lookup by code);
//! - `OPEN#<program>#<referrer>`: at most one open referral (pending, no referee) per referrer;
//! - `REFEREE#<program>#<user>`: a user is referred once per program;
//! - `REFERRER#<program>#<referrer>`: a versioned guard listing the referrer's pending referrals
//!   with their expiry, so the pending cap is counted and enforced atomically (a GSI read could lag).
//!   It also holds the referrer's totals and, in gsi1, their place on the leaderboard.
//!
//! The program's counts are spread over `COUNTS#<program>#<shard>` items, each changed with `ADD` in
//! the transaction of the write it counts.

use super::programs::program_pk;
use super::{DynamoStore, Index, Record, SortRange, Step, millis_key, shard_of, unavailable};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use refwire_core::StoreError;
use refwire_core::conflicts::{Try, retry_on_conflict};
use refwire_core::events::OutboxEvent;
use refwire_core::ports::{ReferralPage, ReferralQuery, ReferralStore};
use refwire_core::referrals::{CountChange, ReferralCounts, ReferrerTally, ReferrerTotals};
use refwire_core::referrals::{Referral, ReferralStatus};
use refwire_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The sweep's index (gsi2) is spread over `EXPIRING#<shard>` partitions by referral id: one index
/// partition takes about 1,000 writes a second, and every pending referral that can expire is in it.
const EXPIRY_SHARDS: u32 = 8;
/// Items a program's counts are spread over, by referral id. Transactions that change one item at
/// the same time conflict (one is cancelled and retried), so one counts item per program would make
/// concurrent referral writes retry each other; stats read all of them with one BatchGetItem.
const COUNT_SHARDS: u32 = 16;
/// Never-expiring pending referrals in a guard.
const NEVER: i64 = i64::MAX;

fn referral_pk(referral_id: &str) -> String {
    format!("REFERRAL#{referral_id}")
}

pub(super) fn code_pk(program_id: &str, code: &str) -> String {
    format!("CODE#{program_id}#{code}")
}

fn open_pk(program_id: &str, referrer_id: &str) -> String {
    format!("OPEN#{program_id}#{referrer_id}")
}

fn referee_pk(program_id: &str, user_id: &str) -> String {
    format!("REFEREE#{program_id}#{user_id}")
}

fn guard_pk(program_id: &str, referrer_id: &str) -> String {
    format!("REFERRER#{program_id}#{referrer_id}")
}

fn referrer_partition(program_id: &str, referrer_id: &str) -> String {
    format!("{}#REFERRER#{referrer_id}", program_pk(program_id))
}

fn counts_pk(program_id: &str, shard: u32) -> String {
    format!("COUNTS#{program_id}#{shard}")
}

fn leaderboard_partition(program_id: &str) -> String {
    format!("{}#LEADERBOARD", program_pk(program_id))
}

fn expiring_partition(shard: u32) -> String {
    format!("EXPIRING#{shard}")
}

fn lapsing_partition(program_id: &str) -> String {
    format!("{}#EXPIRING", program_pk(program_id))
}

/// Expiry index sort keys up to this one are due at `now` (`~` sorts after every id character).
fn due_by(now: Timestamp) -> String {
    format!("{}#~", millis_key(now.timestamp_millis()))
}

/// A leaderboard place as a gsi1 sort key: ascending order is completed (most first), then total
/// (most first), then referrer id, as in SQLite.
fn rank_key(totals: &ReferrerTotals, referrer_id: &str) -> String {
    format!(
        "{:020}#{:020}#{referrer_id}",
        u64::MAX - totals.completed,
        u64::MAX - totals.total
    )
}

/// A guard's document: whose it is and their totals.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Tally {
    referrer_id: String,
    #[serde(flatten)]
    totals: ReferrerTotals,
}

fn is_open(referral: &Referral) -> bool {
    referral.status == ReferralStatus::Pending && referral.referred_user_id.is_none()
}

/// The status a reader sees: a pending referral past its expiry is expired.
fn effective_status(referral: &Referral, now: Timestamp) -> ReferralStatus {
    if referral.is_lapsed(now) {
        ReferralStatus::Expired
    } else {
        referral.status
    }
}

pub(super) fn pointer(pk: String, kind: &str, referral_id: &str) -> Record {
    let mut record = Record::new(pk, kind, kind);
    record.target = Some(referral_id.to_string());
    record
}

impl DynamoStore {
    fn referral_record(&self, referral: &Referral) -> Result<Record, StoreError> {
        let mut record = Record::new(referral_pk(&referral.referral_id), "REFERRAL", "REFERRAL")
            .with_doc(referral)?;
        record.version = Some(referral.version);
        record.program_id = Some(referral.program_id.clone());
        record.gsi1pk = Some(format!("{}#REFERRALS", program_pk(&referral.program_id)));
        record.gsi1sk = Some(referral.referral_id.clone());
        record.gsi3pk = Some(referrer_partition(
            &referral.program_id,
            &referral.referrer_id,
        ));
        record.gsi3sk = Some(referral.referral_id.clone());
        if let (ReferralStatus::Pending, Some(expires_at)) = (referral.status, referral.expires_at)
        {
            let by_expiry = format!(
                "{}#{}",
                millis_key(expires_at.timestamp_millis()),
                referral.referral_id
            );
            let shard = shard_of(&referral.referral_id, EXPIRY_SHARDS);
            record.gsi2pk = Some(expiring_partition(shard));
            record.gsi2sk = Some(by_expiry.clone());
            record.gsi4pk = Some(lapsing_partition(&referral.program_id));
            record.gsi4sk = Some(by_expiry);
        }
        Ok(record)
    }

    pub(super) fn delete_step(&self, pk: String, sk: &str) -> Result<Step, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_string()))
            .build()
            .map_err(unavailable)?;
        Ok(Step::new(
            TransactWriteItem::builder().delete(delete).build(),
            StoreError::VersionConflict,
        ))
    }

    /// The referrer's guard as stored (version 0 when there is none yet).
    async fn guard(&self, program_id: &str, referrer_id: &str) -> Result<Record, StoreError> {
        let pk = guard_pk(program_id, referrer_id);
        Ok(self
            .get_record(&pk, "REFERRER")
            .await?
            .unwrap_or_else(|| Record {
                version: Some(0),
                ..Record::new(pk, "REFERRER", "REFERRER")
            }))
    }

    /// Takes a write of one of the guard's referrer's referrals into the guard: its pending
    /// referrals, the referrer's totals and their leaderboard place.
    fn record_in_guard(
        &self,
        guard: &mut Record,
        before: Option<&Referral>,
        after: &Referral,
    ) -> Result<(), StoreError> {
        let pending = guard.pending.get_or_insert_with(HashMap::new);
        if after.status == ReferralStatus::Pending {
            let expires_ms = after.expires_at.map_or(NEVER, |at| at.timestamp_millis());
            pending.insert(after.referral_id.clone(), expires_ms);
        } else {
            pending.remove(&after.referral_id);
        }
        let mut tally: Tally = match guard.doc {
            Some(_) => guard.doc()?,
            None => Tally::default(),
        };
        tally.referrer_id.clone_from(&after.referrer_id);
        tally.totals.record(before, after);
        guard.gsi1pk = Some(leaderboard_partition(&after.program_id));
        guard.gsi1sk = Some(rank_key(&tally.totals, &after.referrer_id));
        guard.doc = Some(serde_json::to_string(&tally).map_err(unavailable)?);
        Ok(())
    }

    /// Adds a write's change to one of its program's counts items, if it changes the counts.
    fn counts_step(
        &self,
        before: Option<&Referral>,
        after: &Referral,
    ) -> Result<Option<Step>, StoreError> {
        let change = CountChange::between(before, after);
        if change.is_none() {
            return Ok(None);
        }
        let shard = shard_of(&after.referral_id, COUNT_SHARDS);
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(counts_pk(&after.program_id, shard)))
            .key("sk", AttributeValue::S("COUNTS".into()))
            .expression_attribute_values(":kind", AttributeValue::S("COUNTS".into()));
        let mut added = Vec::new();
        // Names go through placeholders: `total` is a reserved word.
        for (name, value) in change.fields() {
            if value != 0 {
                added.push(format!("#{name} :{name}"));
                update = update
                    .expression_attribute_names(format!("#{name}"), name)
                    .expression_attribute_values(
                        format!(":{name}"),
                        AttributeValue::N(value.to_string()),
                    );
            }
        }
        let update = update
            .update_expression(format!("SET kind = :kind ADD {}", added.join(", ")))
            .build()
            .map_err(unavailable)?;
        Ok(Some(Step::new(
            TransactWriteItem::builder().update(update).build(),
            StoreError::VersionConflict,
        )))
    }

    /// Writes `guard` (already changed) conditioned on the version it was read at.
    fn guard_step(&self, mut guard: Record) -> Result<Step, StoreError> {
        let seen = guard.version.unwrap_or(0);
        guard.version = Some(seen + 1);
        let item = if seen == 0 {
            self.put_new(&guard)?
        } else {
            self.put_versioned(&guard, seen)?
        };
        Ok(Step::new(item, StoreError::VersionConflict))
    }

    /// The referral a pointer item points at.
    async fn follow(&self, pointer_pk: &str, kind: &str) -> Result<Option<Referral>, StoreError> {
        let Some(target) = self.pointer_target(pointer_pk, kind).await? else {
            return Ok(None);
        };
        self.get_doc(&referral_pk(&target), "REFERRAL").await
    }

    /// Every referral of a program (or of one referrer), newest first, until `take` says stop.
    async fn each_referral(
        &self,
        program_id: &str,
        referrer_id: Option<&str>,
        before: Option<&str>,
        mut take: impl FnMut(Referral) -> bool,
    ) -> Result<(), StoreError> {
        let (index, partition) = match referrer_id {
            Some(referrer) => (Index::Referrer, referrer_partition(program_id, referrer)),
            None => (
                Index::Owner,
                format!("{}#REFERRALS", program_pk(program_id)),
            ),
        };
        let range = before.map_or(SortRange::All, SortRange::Before);
        self.query_index(index, &partition, range, false, |record| {
            Ok(take(record.doc()?))
        })
        .await
    }
}

#[async_trait::async_trait]
impl ReferralStore for DynamoStore {
    async fn insert_referral(
        &self,
        referral: &Referral,
        event: &OutboxEvent,
        max_pending: Option<u32>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (program_id, referrer_id) = (&referral.program_id, &referral.referrer_id);
        retry_on_conflict((), |()| async move {
            let mut guard = self.guard(program_id, referrer_id).await?;
            let pending = guard.pending.get_or_insert_with(HashMap::new);
            let now_ms = now.timestamp_millis();
            pending.retain(|_, expires_ms| *expires_ms > now_ms);
            if max_pending.is_some_and(|max| pending.len() >= max as usize) {
                return Err(StoreError::LimitReached);
            }
            self.record_in_guard(&mut guard, None, referral)?;

            let mut steps = vec![
                Step::new(
                    self.put_new(&self.referral_record(referral)?)?,
                    StoreError::failed("referral id collision"),
                ),
                Step::new(
                    self.put_new(&pointer(
                        code_pk(program_id, &referral.referral_code),
                        "CODE",
                        &referral.referral_id,
                    ))?,
                    StoreError::CodeTaken,
                ),
            ];
            if is_open(referral) {
                let open = pointer(
                    open_pk(program_id, referrer_id),
                    "OPEN",
                    &referral.referral_id,
                );
                steps.push(Step::new(
                    self.put_new(&open)?,
                    StoreError::OpenReferralExists,
                ));
            }
            if let Some(referee) = &referral.referred_user_id {
                let taken = pointer(
                    referee_pk(program_id, referee),
                    "REFEREE",
                    &referral.referral_id,
                );
                steps.push(Step::new(self.put_new(&taken)?, StoreError::RefereeTaken));
            }
            steps.push(self.guard_step(guard)?);
            steps.extend(self.counts_step(None, referral)?);
            steps.extend(self.event_puts(std::slice::from_ref(event))?);
            match self.transact(steps).await {
                // Another write for this referrer (or of the counts item) got in first: again.
                Err(StoreError::VersionConflict) => Ok(Try::Again(())),
                other => other.map(Try::Done),
            }
        })
        .await
    }

    async fn find_referral(
        &self,
        program_id: &str,
        code: &str,
    ) -> Result<Option<Referral>, StoreError> {
        self.follow(&code_pk(program_id, code), "CODE").await
    }

    async fn find_referral_by_referee(
        &self,
        program_id: &str,
        user_id: &str,
    ) -> Result<Option<Referral>, StoreError> {
        self.follow(&referee_pk(program_id, user_id), "REFEREE")
            .await
    }

    async fn find_open_referral(
        &self,
        program_id: &str,
        referrer_id: &str,
    ) -> Result<Option<Referral>, StoreError> {
        self.follow(&open_pk(program_id, referrer_id), "OPEN").await
    }

    async fn update_referral(
        &self,
        referral: &Referral,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let stored: Referral = self
            .get_doc(&referral_pk(&referral.referral_id), "REFERRAL")
            .await?
            .ok_or(StoreError::VersionConflict)?;
        if stored.version != expected_version {
            return Err(StoreError::VersionConflict);
        }
        let program_id = &referral.program_id;
        // The versioned put goes first, so a stale write reports a conflict, not a side rule.
        let mut steps = vec![Step::new(
            self.put_versioned(&self.referral_record(referral)?, expected_version)?,
            StoreError::VersionConflict,
        )];
        if let (None, Some(referee)) = (&stored.referred_user_id, &referral.referred_user_id) {
            let taken = pointer(
                referee_pk(program_id, referee),
                "REFEREE",
                &referral.referral_id,
            );
            steps.push(Step::new(self.put_new(&taken)?, StoreError::RefereeTaken));
        }
        if is_open(&stored) && !is_open(referral) {
            steps.push(self.delete_step(open_pk(program_id, &referral.referrer_id), "OPEN")?);
        }
        if ReferrerTotals::changed_by(Some(&stored), referral) {
            let mut guard = self.guard(program_id, &referral.referrer_id).await?;
            self.record_in_guard(&mut guard, Some(&stored), referral)?;
            steps.push(self.guard_step(guard)?);
        }
        steps.extend(self.counts_step(Some(&stored), referral)?);
        steps.extend(self.event_puts(events)?);
        self.transact(steps).await
    }

    async fn list_referrals(
        &self,
        program_id: &str,
        query: &ReferralQuery,
        limit: u32,
        now: Timestamp,
    ) -> Result<ReferralPage, StoreError> {
        let mut referrals = Vec::new();
        self.each_referral(
            program_id,
            query.referrer_id.as_deref(),
            query.cursor.as_deref(),
            |referral| {
                if query
                    .status
                    .is_none_or(|status| effective_status(&referral, now) == status)
                {
                    referrals.push(referral);
                }
                referrals.len() <= limit as usize
            },
        )
        .await?;
        Ok(ReferralPage::from_rows(referrals, limit))
    }

    /// One BatchGetItem of the counts items and one Query counting the lapsed referrals whose
    /// expiry is not written yet (normally none: the sweep writes them every minute).
    async fn count_referrals(
        &self,
        program_id: &str,
        now: Timestamp,
    ) -> Result<ReferralCounts, StoreError> {
        let keys: Vec<(String, &str)> = (0..COUNT_SHARDS)
            .map(|shard| (counts_pk(program_id, shard), "COUNTS"))
            .collect();
        let shards = self.get_many(&keys).await?;
        let stored = ReferralCounts::sum(shards.iter().map(|item| {
            CountChange::from_fields(|name| {
                item.get(name)
                    .and_then(|value| value.as_n().ok())
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0)
            })
        }));
        let lapsed = self
            .count_index(
                Index::ProgramExpiry,
                &lapsing_partition(program_id),
                SortRange::AtOrBefore(&due_by(now)),
            )
            .await?;
        Ok(stored.with_lapsed(lapsed))
    }

    /// One Query of the first `limit` guards in leaderboard order.
    async fn top_referrers(
        &self,
        program_id: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ReferrerTally>, StoreError> {
        let now_ms = now.timestamp_millis();
        self.query_first(Index::Owner, &leaderboard_partition(program_id), limit)
            .await?
            .into_iter()
            .map(|guard| {
                let tally: Tally = guard.doc()?;
                let pending = guard.pending.unwrap_or_default();
                let unlapsed = pending.values().filter(|expires| **expires > now_ms);
                Ok(tally
                    .totals
                    .tally(tally.referrer_id, unlapsed.count() as u64))
            })
            .collect()
    }

    async fn lapsed_referrals(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Referral>, StoreError> {
        let until = due_by(now);
        let mut lapsed = Vec::new();
        for shard in 0..EXPIRY_SHARDS {
            if lapsed.len() >= limit as usize {
                break;
            }
            self.query_index(
                Index::Expiry,
                &expiring_partition(shard),
                SortRange::AtOrBefore(&until),
                true,
                |record| {
                    let referral: Referral = record.doc()?;
                    if referral.is_lapsed(now) {
                        lapsed.push(referral);
                    }
                    Ok(lapsed.len() < limit as usize)
                },
            )
            .await?;
        }
        Ok(lapsed)
    }
}
