//! Stats and the leaderboard from running totals. Every referral write tells its store what it
//! changes ([`CountChange`]); the store adds that to the program's counts and the referrer's totals
//! in the write's own transaction, so reading them costs the same at any program size.
//!
//! Totals count statuses as stored. A pending referral past its expiry stays pending in them until
//! something writes the expiry (a read of it, a write, or the sweep); readers count those lapsed
//! referrals separately ([`ReferralCounts::with_lapsed`]), so what they report is exact at `now`.

use crate::referrals::{Referral, ReferralStatus};
use serde::{Deserialize, Serialize};

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

impl ReferralCounts {
    /// Counts as stored, with `lapsed` of the pending referrals past their expiry: those are
    /// expired to a reader, whether or not the expiry has been written yet.
    pub fn with_lapsed(self, lapsed: u64) -> Self {
        // An index read just after the expiry was written may still list it: never below zero.
        let lapsed = lapsed.min(self.pending);
        ReferralCounts {
            pending: self.pending - lapsed,
            expired: self.expired + lapsed,
            ..self
        }
    }

    /// Adds up counts kept in parts (shards), each as stored.
    pub fn sum(parts: impl IntoIterator<Item = CountChange>) -> Self {
        let total = parts
            .into_iter()
            .fold(CountChange::default(), |sum, part| sum.plus(&part));
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        ReferralCounts {
            total: count(total.total),
            pending: count(total.pending),
            completed: count(total.completed),
            expired: count(total.expired),
            rewards_claimed: count(total.rewards_claimed),
        }
    }
}

/// A referrer's line on the leaderboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerTally {
    pub referrer_id: String,
    /// The most recent `user_name` the referrer gave.
    pub user_name: Option<String>,
    pub total: u64,
    pub completed: u64,
    pub pending: u64,
}

/// What one referral write adds to its program's counts, by stored status (negative when a
/// referral leaves a status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountChange {
    pub total: i64,
    pub pending: i64,
    pub completed: i64,
    pub expired: i64,
    pub rewards_claimed: i64,
}

impl CountChange {
    /// The change from writing `after` over `before` (`None` for a new referral).
    pub fn between(before: Option<&Referral>, after: &Referral) -> Self {
        let added = Self::of(after);
        match before {
            Some(before) => added.minus(&Self::of(before)),
            None => added,
        }
    }

    /// What one referral contributes.
    fn of(referral: &Referral) -> Self {
        let is = |status| i64::from(referral.status == status);
        CountChange {
            total: 1,
            pending: is(ReferralStatus::Pending),
            completed: is(ReferralStatus::Completed),
            expired: is(ReferralStatus::Expired),
            rewards_claimed: i64::from(referral.reward_claimed)
                + i64::from(referral.referee_reward_claimed),
        }
    }

    fn plus(&self, other: &Self) -> Self {
        self.combined(other, |a, b| a + b)
    }

    fn minus(&self, other: &Self) -> Self {
        self.combined(other, |a, b| a - b)
    }

    fn combined(&self, other: &Self, op: impl Fn(i64, i64) -> i64) -> Self {
        CountChange {
            total: op(self.total, other.total),
            pending: op(self.pending, other.pending),
            completed: op(self.completed, other.completed),
            expired: op(self.expired, other.expired),
            rewards_claimed: op(self.rewards_claimed, other.rewards_claimed),
        }
    }

    pub fn is_none(&self) -> bool {
        *self == CountChange::default()
    }

    /// The counts by name, for stores that keep each in its own column or attribute.
    pub fn fields(&self) -> [(&'static str, i64); 5] {
        [
            ("total", self.total),
            ("pending", self.pending),
            ("completed", self.completed),
            ("expired", self.expired),
            ("rewards_claimed", self.rewards_claimed),
        ]
    }

    /// Counts stored by name (as [`CountChange::fields`] names them); a missing one is zero.
    pub fn from_fields(value_of: impl Fn(&str) -> i64) -> Self {
        CountChange {
            total: value_of("total"),
            pending: value_of("pending"),
            completed: value_of("completed"),
            expired: value_of("expired"),
            rewards_claimed: value_of("rewards_claimed"),
        }
    }
}

/// A referrer's running totals, as stores keep them. Their pending count is not among them: stores
/// count the referrer's unlapsed pending referrals where they enforce the pending cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferrerTotals {
    pub total: u64,
    pub completed: u64,
    pub user_name: Option<String>,
    /// The referral `user_name` came from: the referrer's latest (by id) that gave one.
    pub named_by: Option<String>,
}

impl ReferrerTotals {
    /// Takes in one write of one of the referrer's referrals (`before` is `None` for a new one).
    pub fn record(&mut self, before: Option<&Referral>, after: &Referral) {
        let change = CountChange::between(before, after);
        self.total = self.total.saturating_add_signed(change.total);
        self.completed = self.completed.saturating_add_signed(change.completed);
        if let Some(name) = &after.user_name
            && self
                .named_by
                .as_ref()
                .is_none_or(|named_by| *named_by <= after.referral_id)
        {
            self.user_name = Some(name.clone());
            self.named_by = Some(after.referral_id.clone());
        }
    }

    /// Whether a write changes the referrer's totals or pending referrals, so that stores read
    /// and write them only then.
    pub fn changed_by(before: Option<&Referral>, after: &Referral) -> bool {
        let change = CountChange::between(before, after);
        change.total != 0
            || change.completed != 0
            || change.pending != 0
            || before.is_none_or(|before| before.user_name != after.user_name)
    }

    pub fn tally(self, referrer_id: String, pending: u64) -> ReferrerTally {
        ReferrerTally {
            referrer_id,
            user_name: self.user_name,
            total: self.total,
            completed: self.completed,
            pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::programs::ReferralSettings;
    use crate::referrals::{NewReferral, RewardSide};
    use chrono::{TimeZone, Utc};

    fn opened(id: &str, name: Option<&str>) -> Referral {
        let request = NewReferral {
            user_id: "ann".into(),
            user_name: name.map(str::to_string),
            ..Default::default()
        };
        let now = Utc.with_ymd_and_hms(2026, 4, 8, 14, 30, 0).unwrap();
        let settings = ReferralSettings::default();
        Referral::open(request, &settings, id.into(), "prg".into(), id.into(), now).0
    }

    fn completed(referral: &Referral) -> Referral {
        let mut done = referral.clone();
        let settings = ReferralSettings::default();
        let milestone = settings.referral_reward_milestone.clone();
        done.record_milestone(&settings, &milestone, Some("friend"), done.created_at)
            .unwrap();
        done
    }

    #[test]
    fn a_lifecycle_moves_each_referral_between_counts() {
        let new = opened("ref_1", None);
        let done = completed(&new);
        let mut claimed = done.clone();
        claimed.claim_reward(RewardSide::Referrer).unwrap();
        let lapsing = opened("ref_2", None);
        let mut expired = lapsing.clone();
        expired.expire_if_lapsed(lapsing.expires_at.unwrap());
        let writes = [
            CountChange::between(None, &new),
            CountChange::between(Some(&new), &done),
            CountChange::between(Some(&done), &claimed),
            CountChange::between(None, &lapsing),
            CountChange::between(Some(&lapsing), &expired),
        ];
        assert!(CountChange::between(Some(&claimed), &claimed).is_none());
        let counts = ReferralCounts::sum(writes);
        assert_eq!(
            counts,
            ReferralCounts {
                total: 2,
                pending: 0,
                completed: 1,
                expired: 1,
                rewards_claimed: 1,
            }
        );
    }

    #[test]
    fn lapsed_pending_referrals_read_as_expired_but_never_below_zero() {
        let stored = ReferralCounts {
            total: 5,
            pending: 2,
            completed: 2,
            expired: 1,
            rewards_claimed: 0,
        };
        let read = stored.clone().with_lapsed(1);
        assert_eq!((read.pending, read.expired), (1, 2));
        let read = stored.with_lapsed(7);
        assert_eq!((read.pending, read.expired, read.total), (0, 3, 5));
    }

    #[test]
    fn totals_keep_the_name_of_the_latest_referral_that_gave_one() {
        let mut totals = ReferrerTotals::default();
        let (first, second, third) = (
            opened("ref_1", Some("Ann")),
            opened("ref_3", Some("Annie")),
            opened("ref_2", Some("A.")),
        );
        for referral in [&first, &second, &third, &opened("ref_4", None)] {
            totals.record(None, referral);
        }
        assert_eq!(
            totals.user_name.as_deref(),
            Some("Annie"),
            "ref_3 is the latest"
        );
        assert_eq!(totals.total, 4);
        totals.record(Some(&first), &completed(&first));
        assert_eq!((totals.total, totals.completed), (4, 1));
    }

    #[test]
    fn only_status_and_name_changes_concern_the_referrer() {
        let new = opened("ref_1", Some("Ann"));
        assert!(ReferrerTotals::changed_by(None, &new));
        let done = completed(&new);
        assert!(ReferrerTotals::changed_by(Some(&new), &done));
        let mut claimed = done.clone();
        claimed.claim_reward(RewardSide::Referee).unwrap();
        assert!(!ReferrerTotals::changed_by(Some(&done), &claimed));
        assert!(!CountChange::between(Some(&done), &claimed).is_none());
    }
}
