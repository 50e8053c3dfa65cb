//! Referrals: the lifecycle of a referrer's code (open, milestones, completion at the reward
//! milestone, reward claims, expiry), the program's counts and leaderboard, and the expiry sweep.

mod counts;
mod referral;

pub use counts::*;
pub use referral::*;

use crate::conflicts::{Try, Versioned, retry_on_conflict, written};
use crate::error::{Error, StoreError};
use crate::events::OutboxEvent;
use crate::ids::{ReferralCode, is_prefixed_ulid};
use crate::ports::{ReferralPage, ReferralQuery};
use crate::service::{Principal, Refwire, page_limit, unknown_cursor};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq)]
pub struct ReferralStats {
    pub counts: ReferralCounts,
    /// completed / total, 0 when there are none; rounded to 4 decimals.
    pub conversion_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardEntry {
    pub rank: u32,
    pub tally: ReferrerTally,
}

impl Refwire {
    // --- referrals ------------------------------------------------------------------------------

    /// Returns the referral and whether it was newly created (an open code is reused otherwise).
    pub async fn create_referral(
        &self,
        principal: &Principal,
        request: NewReferral,
    ) -> Result<(Referral, bool), Error> {
        request.validate()?;
        let program = self.program(principal).await?;
        let settings = &program.settings;
        if !settings.enabled {
            return Err(Error::conflict(
                "referrals_disabled",
                "referrals are disabled for this program",
            ));
        }
        let (program, request) = (&program, &request);
        retry_on_conflict((), |()| async move {
            let now = self.clock.now();
            let open = self
                .store
                .find_open_referral(&program.id, &request.user_id)
                .await?;
            if let Some(open) = open {
                if !open.is_lapsed(now) {
                    return Ok(Try::Done((open, false)));
                }
                // Expire it (emitting referral.expired) so that a fresh code can take its place.
                self.change_referral(&program.id, &open.referral_code, |_, _| Ok(Vec::new()))
                    .await?;
                return Ok(Try::Again(()));
            }
            let code = self.ids.referral_code(usize::from(settings.code_length));
            let (referral, change) = Referral::open(
                request.clone(),
                settings,
                self.ids.new_id("ref"),
                program.id.clone(),
                code.into(),
                now,
            );
            let event = self.outbox_event(&program.id, change, now);
            match self
                .store
                .insert_referral(&referral, &event, settings.referral_max_per_user, now)
                .await
            {
                Ok(()) => Ok(Try::Done((referral, true))),
                // Another request opened a referral for this referrer meanwhile (the next try
                // returns it), or the generated code collided.
                Err(StoreError::CodeTaken | StoreError::OpenReferralExists) => Ok(Try::Again(())),
                Err(err) => Err(err.into()),
            }
        })
        .await
    }

    /// Reading a referral applies a due expiry (and emits `referral.expired`) first.
    pub async fn get_referral(&self, principal: &Principal, code: &str) -> Result<Referral, Error> {
        self.change_referral(&principal.program_id, code, |_, _| Ok(Vec::new()))
            .await
    }

    pub async fn report_milestone(
        &self,
        principal: &Principal,
        code: &str,
        milestone: &str,
        referee: Option<&str>,
    ) -> Result<Referral, Error> {
        principal.require_secret()?;
        let settings = self.program(principal).await?.settings;
        self.change_referral(&principal.program_id, code, |referral, now| {
            referral.record_milestone(&settings, milestone, referee, now)
        })
        .await
    }

    pub async fn claim_reward(
        &self,
        principal: &Principal,
        code: &str,
        side: RewardSide,
    ) -> Result<Referral, Error> {
        principal.require_secret()?;
        self.change_referral(&principal.program_id, code, |referral, _| {
            Ok(referral.claim_reward(side)?.into_iter().collect())
        })
        .await
    }

    pub async fn list_referrals(
        &self,
        principal: &Principal,
        query: &ReferralQuery,
        limit: Option<u32>,
    ) -> Result<ReferralPage, Error> {
        principal.require_secret()?;
        let limit = page_limit(limit)?;
        // The cursor is a referral id, a position in the id order both stores list by; checking
        // its shape is enough (a well-formed id of a deleted referral still marks a place), and
        // anything else would compare as text and list an arbitrary part of the program.
        if let Some(cursor) = &query.cursor
            && !is_prefixed_ulid(cursor, "ref")
        {
            return Err(unknown_cursor("cursor"));
        }
        Ok(self
            .store
            .list_referrals(&principal.program_id, query, limit, self.clock.now())
            .await?)
    }

    pub async fn stats(&self, principal: &Principal) -> Result<ReferralStats, Error> {
        principal.require_secret()?;
        let counts = self
            .store
            .count_referrals(&principal.program_id, self.clock.now())
            .await?;
        let conversion_rate = if counts.total == 0 {
            0.0
        } else {
            (counts.completed as f64 / counts.total as f64 * 10_000.0).round() / 10_000.0
        };
        Ok(ReferralStats {
            counts,
            conversion_rate,
        })
    }

    pub async fn leaderboard(
        &self,
        principal: &Principal,
        limit: Option<u32>,
    ) -> Result<Vec<LeaderboardEntry>, Error> {
        let limit = page_limit(limit)?;
        let tallies = self
            .store
            .top_referrers(&principal.program_id, limit, self.clock.now())
            .await?;
        Ok(tallies
            .into_iter()
            .zip(1..)
            .map(|(tally, rank)| LeaderboardEntry { rank, tally })
            .collect())
    }

    /// Expires up to `batch` lapsed referrals across all programs, each emitting `referral.expired`.
    /// Returns how many this call expired.
    pub async fn sweep_expired(&self, batch: u32) -> Result<usize, Error> {
        let lapsed = self.store.lapsed_referrals(self.clock.now(), batch).await?;
        let mut expired = 0;
        for referral in lapsed {
            let before = referral.status;
            let after = self
                .change_referral(&referral.program_id, &referral.referral_code, |_, _| {
                    Ok(Vec::new())
                })
                .await?;
            if after.status != before {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Loads a referral, applies a due expiry, runs `mutation`, and writes the result with its events
    /// if anything changed, retrying from a fresh read when another writer got there first.
    /// When the mutation refuses, a due expiry is still persisted before the refusal is returned.
    pub(crate) async fn change_referral<F>(
        &self,
        program_id: &str,
        code: &str,
        mutation: F,
    ) -> Result<Referral, Error>
    where
        F: Fn(&mut Referral, Timestamp) -> Result<Vec<Change>, Error>,
    {
        let (code, mutation) = (&ReferralCode::typed(code), &mutation);
        retry_on_conflict((), |()| async move {
            let now = self.clock.now();
            let original = self
                .store
                .find_referral(program_id, code)
                .await?
                .ok_or(Error::NotFound("referral"))?;
            let mut referral = original.clone();
            let mut changes: Vec<Change> = referral.expire_if_lapsed(now).into_iter().collect();
            let outcome = mutation(&mut referral, now);
            if let Ok(more) = &outcome {
                changes.extend(more.iter().cloned());
            }
            if referral == original {
                return outcome.map(|_| Try::Done(referral));
            }
            let expected_version = referral.next_version();
            let events: Vec<OutboxEvent> = changes
                .into_iter()
                .map(|change| self.outbox_event(program_id, change, now))
                .collect();
            let result = self
                .store
                .update_referral(&referral, expected_version, &events)
                .await;
            // The mutation's own refusal (say, a milestone out of order) is reported once the
            // expiry it came with is written.
            match written(result, referral)? {
                Try::Done(referral) => outcome.map(|_| Try::Done(referral)),
                Try::Again(()) => Ok(Try::Again(())),
            }
        })
        .await
    }
}
