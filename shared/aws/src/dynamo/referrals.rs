//! `ReferralStore`. Besides the referral item, the rules the schema enforces in SQLite are pointer
//! items created with `attribute_not_exists` in the same transaction:
//! - `CODE#<program>#<code>`: one referral per code (and the lookup by code);
//! - `OPEN#<program>#<referrer>`: at most one open referral (pending, no referee) per referrer;
//! - `REFEREE#<program>#<user>`: a user is referred once per program;
//! - `REFERRER#<program>#<referrer>`: a versioned guard listing the referrer's pending referrals
//!   with their expiry, so the pending cap is counted and enforced atomically (a GSI read could lag).

use super::programs::program_pk;
use super::{DynamoStore, Index, Record, SortRange, Step, millis_key, unavailable};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use refwire_core::StoreError;
use refwire_core::events::OutboxEvent;
use refwire_core::ports::{
    ReferralCounts, ReferralPage, ReferralQuery, ReferralStore, ReferrerTally,
};
use refwire_core::referrals::{Referral, ReferralStatus};
use refwire_core::time::Timestamp;
use std::collections::{BTreeMap, HashMap};

/// Attempts at an insert whose pending-cap guard changed under it.
const GUARD_RETRIES: usize = 8;
/// The sweep's index partition: pending referrals that can expire, by expiry.
const EXPIRING: &str = "EXPIRING";
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
            record.gsi2pk = Some(EXPIRING.into());
            record.gsi2sk = Some(format!(
                "{}#{}",
                millis_key(expires_at.timestamp_millis()),
                referral.referral_id
            ));
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

    /// Writes `guard` (already changed) conditioned on the version it was read at.
    fn guard_step(&self, mut guard: Record) -> Result<Step, StoreError> {
        let seen = guard.version.unwrap_or(0);
        guard.version = Some(seen + 1);
        let item = if seen == 0 {
            self.put_new(&guard)?
        } else {
            self.put_versioned(&guard)?
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
        for _ in 0..GUARD_RETRIES {
            let mut guard = self.guard(program_id, referrer_id).await?;
            let pending = guard.pending.get_or_insert_with(HashMap::new);
            let now_ms = now.timestamp_millis();
            pending.retain(|_, expires_ms| *expires_ms > now_ms);
            if max_pending.is_some_and(|max| pending.len() >= max as usize) {
                return Err(StoreError::LimitReached);
            }
            let expires_ms = referral
                .expires_at
                .map_or(NEVER, |at| at.timestamp_millis());
            pending.insert(referral.referral_id.clone(), expires_ms);

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
            steps.extend(self.event_puts(std::slice::from_ref(event))?);
            match self.transact(steps).await {
                // Another insert or completion for this referrer got in first: count again.
                Err(StoreError::VersionConflict) => continue,
                other => return other,
            }
        }
        Err(StoreError::VersionConflict)
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
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let stored: Referral = self
            .get_doc(&referral_pk(&referral.referral_id), "REFERRAL")
            .await?
            .ok_or(StoreError::VersionConflict)?;
        if stored.version + 1 != referral.version {
            return Err(StoreError::VersionConflict);
        }
        let program_id = &referral.program_id;
        // The versioned put goes first, so a stale write reports a conflict, not a side rule.
        let mut steps = vec![Step::new(
            self.put_versioned(&self.referral_record(referral)?)?,
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
        if stored.status == ReferralStatus::Pending && referral.status != ReferralStatus::Pending {
            let mut guard = self.guard(program_id, &referral.referrer_id).await?;
            if let Some(pending) = guard.pending.as_mut() {
                pending.remove(&referral.referral_id);
            }
            steps.push(self.guard_step(guard)?);
        }
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

    /// Reads the program's whole partition of gsi1: O(referrals) per call (see docs/dynamodb.md).
    async fn count_referrals(
        &self,
        program_id: &str,
        now: Timestamp,
    ) -> Result<ReferralCounts, StoreError> {
        let mut counts = ReferralCounts::default();
        self.each_referral(program_id, None, None, |referral| {
            counts.total += 1;
            match effective_status(&referral, now) {
                ReferralStatus::Pending => counts.pending += 1,
                ReferralStatus::Completed => counts.completed += 1,
                ReferralStatus::Expired => counts.expired += 1,
            }
            counts.rewards_claimed +=
                u64::from(referral.reward_claimed) + u64::from(referral.referee_reward_claimed);
            true
        })
        .await?;
        Ok(counts)
    }

    async fn top_referrers(
        &self,
        program_id: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ReferrerTally>, StoreError> {
        let mut tallies: BTreeMap<String, ReferrerTally> = BTreeMap::new();
        // Newest first, so the first user name seen per referrer is the most recent one.
        self.each_referral(program_id, None, None, |referral| {
            let tally = tallies
                .entry(referral.referrer_id.clone())
                .or_insert_with(|| ReferrerTally {
                    referrer_id: referral.referrer_id.clone(),
                    user_name: None,
                    total: 0,
                    completed: 0,
                    pending: 0,
                });
            if tally.user_name.is_none() {
                tally.user_name = referral.user_name.clone();
            }
            tally.total += 1;
            match effective_status(&referral, now) {
                ReferralStatus::Completed => tally.completed += 1,
                ReferralStatus::Pending => tally.pending += 1,
                ReferralStatus::Expired => {}
            }
            true
        })
        .await?;
        let mut ranked: Vec<ReferrerTally> = tallies.into_values().collect();
        ranked.sort_by(|a, b| {
            b.completed
                .cmp(&a.completed)
                .then(b.total.cmp(&a.total))
                .then(a.referrer_id.cmp(&b.referrer_id))
        });
        ranked.truncate(limit as usize);
        Ok(ranked)
    }

    async fn lapsed_referrals(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Referral>, StoreError> {
        // `~` sorts after every id character, so this takes every expiry up to and including now.
        let until = format!("{}#~", millis_key(now.timestamp_millis()));
        let mut lapsed = Vec::new();
        self.query_index(
            Index::Expiry,
            EXPIRING,
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
        Ok(lapsed)
    }
}
