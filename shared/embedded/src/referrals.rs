//! `ReferralStore` on SQLite.

use crate::{CachedSql, EmbeddedStore, from_json, insert_events, to_json, unavailable};
use refwire_core::StoreError;
use refwire_core::events::OutboxEvent;
use refwire_core::ports::{ReferralPage, ReferralQuery, ReferralStore};
use refwire_core::referrals::Referral;
use refwire_core::referrals::{CountChange, ReferralCounts, ReferrerTally, ReferrerTotals};
use refwire_core::time::Timestamp;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

/// The status a reader sees: a pending referral past `expires_at` (milliseconds in `?1`) is expired.
const EFFECTIVE_STATUS: &str = "(CASE WHEN status = 'pending' AND expires_at IS NOT NULL \
     AND expires_at <= ?1 THEN 'expired' ELSE status END)";

/// A referrer's pending referrals that have not lapsed by `?1` (ms), with the program in `?2` and
/// the referrer in `?3`: what the pending cap counts, and the leaderboard's `pending`.
const UNLAPSED_PENDING: &str = "SELECT COUNT(*) FROM referrals
     WHERE program_id = ?2 AND referrer_id = ?3 AND status = 'pending'
       AND (expires_at IS NULL OR expires_at > ?1)";

fn millis(ts: &Timestamp) -> i64 {
    ts.timestamp_millis()
}

fn rewards_claimed(referral: &Referral) -> i64 {
    i64::from(referral.reward_claimed) + i64::from(referral.referee_reward_claimed)
}

/// Maps the schema's uniqueness rules to the store errors the use cases act on.
fn write_error(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &err
        && failure.code == ErrorCode::ConstraintViolation
    {
        if message.contains("referrals.referred_user_id") {
            return StoreError::RefereeTaken;
        }
        if message.contains("referrals.code") || message == "code taken" {
            return StoreError::CodeTaken;
        }
        if message.contains("referrals.referrer_id") {
            return StoreError::OpenReferralExists;
        }
    }
    unavailable(err)
}

/// Adds a referral write to its program's counts and its referrer's totals, in the write's
/// transaction (`before` is `None` for a new referral).
fn record_counts(
    tx: &Connection,
    before: Option<&Referral>,
    after: &Referral,
) -> Result<(), StoreError> {
    let change = CountChange::between(before, after);
    if !change.is_none() {
        tx.execute_cached(
            "INSERT INTO referral_counts
                 (program_id, total, pending, completed, expired, rewards_claimed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (program_id) DO UPDATE SET
                 total = total + excluded.total,
                 pending = pending + excluded.pending,
                 completed = completed + excluded.completed,
                 expired = expired + excluded.expired,
                 rewards_claimed = rewards_claimed + excluded.rewards_claimed",
            params![
                after.program_id.as_str(),
                change.total,
                change.pending,
                change.completed,
                change.expired,
                change.rewards_claimed,
            ],
        )
        .map_err(unavailable)?;
    }
    if ReferrerTotals::changed_by(before, after) {
        let mut totals = tx
            .query_row_cached(
                "SELECT total, completed, user_name, named_by FROM referrer_totals
                 WHERE program_id = ?1 AND referrer_id = ?2",
                params![after.program_id.as_str(), after.referrer_id],
                |row| {
                    Ok(ReferrerTotals {
                        total: row.get(0)?,
                        completed: row.get(1)?,
                        user_name: row.get(2)?,
                        named_by: row.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(unavailable)?
            .unwrap_or_default();
        totals.record(before, after);
        tx.execute_cached(
            "INSERT OR REPLACE INTO referrer_totals
                 (program_id, referrer_id, total, completed, user_name, named_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                after.program_id.as_str(),
                after.referrer_id,
                totals.total,
                totals.completed,
                totals.user_name,
                totals.named_by,
            ],
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

fn docs_to_referrals(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Referral>, StoreError> {
    let docs = statement
        .query_map(params, |row| row.get::<_, String>(0))
        .map_err(unavailable)?;
    docs.map(|doc| from_json(&doc.map_err(unavailable)?))
        .collect()
}

#[async_trait::async_trait]
impl ReferralStore for EmbeddedStore {
    async fn insert_referral(
        &self,
        referral: &Referral,
        event: &OutboxEvent,
        max_pending: Option<u32>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let referral = referral.clone();
        let event = event.clone();
        self.run(move |conn| {
            // The group transaction holds the write lock, so the cap check and insert are atomic.
            let tx = &*conn;
            if let Some(max_pending) = max_pending {
                let pending: u32 = tx
                    .query_row_cached(
                        UNLAPSED_PENDING,
                        params![millis(&now), referral.program_id.as_str(), referral.referrer_id],
                        |row| row.get(0),
                    )
                    .map_err(unavailable)?;
                if pending >= max_pending {
                    return Err(StoreError::LimitReached);
                }
            }
            tx.execute_cached(
                "INSERT INTO referrals (referral_id, program_id, code, referrer_id, referred_user_id,
                     user_name, status, expires_at, rewards_claimed, version, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    referral.referral_id,
                    referral.program_id.as_str(),
                    referral.referral_code.as_str(),
                    referral.referrer_id,
                    referral.referred_user_id,
                    referral.user_name,
                    referral.status.as_str(),
                    referral.expires_at.as_ref().map(millis),
                    rewards_claimed(&referral),
                    referral.version,
                    to_json(&referral)?,
                ],
            )
            .map_err(write_error)?;
            record_counts(tx, None, &referral)?;
            insert_events(tx, std::slice::from_ref(&event))?;
            Ok(())
        })
        .await?;
        self.notify_outbox();
        Ok(())
    }

    async fn find_referral(
        &self,
        program_id: &str,
        code: &str,
    ) -> Result<Option<Referral>, StoreError> {
        let (program_id, code) = (program_id.to_string(), code.to_string());
        self.read(move |conn| {
            let doc: Option<String> = conn
                .query_row_cached(
                    "SELECT doc FROM referrals WHERE program_id = ?1 AND code = ?2",
                    [program_id, code],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn find_referral_by_referee(
        &self,
        program_id: &str,
        user_id: &str,
    ) -> Result<Option<Referral>, StoreError> {
        let (program_id, user_id) = (program_id.to_string(), user_id.to_string());
        self.read(move |conn| {
            let doc: Option<String> = conn
                .query_row_cached(
                    "SELECT doc FROM referrals WHERE program_id = ?1 AND referred_user_id = ?2",
                    [program_id, user_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn find_open_referral(
        &self,
        program_id: &str,
        referrer_id: &str,
    ) -> Result<Option<Referral>, StoreError> {
        let (program_id, referrer_id) = (program_id.to_string(), referrer_id.to_string());
        self.read(move |conn| {
            let doc: Option<String> = conn
                .query_row_cached(
                    "SELECT doc FROM referrals
                     WHERE program_id = ?1 AND referrer_id = ?2
                       AND status = 'pending' AND referred_user_id IS NULL",
                    [program_id, referrer_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn update_referral(
        &self,
        referral: &Referral,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let referral = referral.clone();
        self.write_with_events(events, move |tx| {
            let stored: Option<String> = tx
                .query_row_cached(
                    "SELECT doc FROM referrals WHERE referral_id = ?1 AND version = ?2",
                    params![referral.referral_id, expected_version],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let stored: Referral = from_json(&stored.ok_or(StoreError::VersionConflict)?)?;
            tx.execute_cached(
                "UPDATE referrals SET referred_user_id = ?3, user_name = ?4, status = ?5,
                         expires_at = ?6, rewards_claimed = ?7, version = ?8, doc = ?9
                     WHERE referral_id = ?1 AND version = ?2",
                params![
                    referral.referral_id,
                    expected_version,
                    referral.referred_user_id,
                    referral.user_name,
                    referral.status.as_str(),
                    referral.expires_at.as_ref().map(millis),
                    rewards_claimed(&referral),
                    referral.version,
                    to_json(&referral)?,
                ],
            )
            .map_err(write_error)?;
            record_counts(tx, Some(&stored), &referral)
        })
        .await
    }

    async fn list_referrals(
        &self,
        program_id: &str,
        query: &ReferralQuery,
        limit: u32,
        now: Timestamp,
    ) -> Result<ReferralPage, StoreError> {
        let program_id = program_id.to_string();
        let query = query.clone();
        self.read(move |conn| {
            let sql = format!(
                "SELECT doc FROM referrals
                 WHERE program_id = ?2
                   AND (?3 IS NULL OR referrer_id = ?3)
                   AND (?4 IS NULL OR {EFFECTIVE_STATUS} = ?4)
                   AND (?5 IS NULL OR referral_id < ?5)
                 ORDER BY referral_id DESC LIMIT ?6"
            );
            let mut statement = conn.prepare_cached(&sql).map_err(unavailable)?;
            let referrals = docs_to_referrals(
                &mut statement,
                params![
                    millis(&now),
                    program_id,
                    query.referrer_id,
                    query.status.map(|status| status.as_str()),
                    query.cursor,
                    limit + 1,
                ],
            )?;
            Ok(ReferralPage::from_rows(referrals, limit))
        })
        .await
    }

    async fn count_referrals(
        &self,
        program_id: &str,
        now: Timestamp,
    ) -> Result<ReferralCounts, StoreError> {
        let program_id = program_id.to_string();
        self.read(move |conn| {
            let stored = conn
                .query_row_cached(
                    "SELECT total, pending, completed, expired, rewards_claimed
                     FROM referral_counts WHERE program_id = ?1",
                    [&program_id],
                    |row| {
                        Ok(ReferralCounts {
                            total: row.get(0)?,
                            pending: row.get(1)?,
                            completed: row.get(2)?,
                            expired: row.get(3)?,
                            rewards_claimed: row.get(4)?,
                        })
                    },
                )
                .optional()
                .map_err(unavailable)?
                .unwrap_or_default();
            let lapsed: u64 = conn
                .query_row_cached(
                    "SELECT COUNT(*) FROM referrals
                     WHERE program_id = ?1 AND status = 'pending' AND expires_at <= ?2",
                    params![program_id, millis(&now)],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            Ok(stored.with_lapsed(lapsed))
        })
        .await
    }

    async fn top_referrers(
        &self,
        program_id: &str,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<ReferrerTally>, StoreError> {
        let program_id = program_id.to_string();
        self.read(move |conn| {
            let mut ranked = conn
                .prepare_cached(
                    "SELECT referrer_id, total, completed, user_name FROM referrer_totals
                     WHERE program_id = ?1
                     ORDER BY completed DESC, total DESC, referrer_id ASC
                     LIMIT ?2",
                )
                .map_err(unavailable)?;
            let rows = ranked
                .query_map(params![program_id, limit], |row| {
                    let totals = ReferrerTotals {
                        total: row.get(1)?,
                        completed: row.get(2)?,
                        user_name: row.get(3)?,
                        named_by: None,
                    };
                    Ok((row.get::<_, String>(0)?, totals))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let mut pending = conn.prepare_cached(UNLAPSED_PENDING).map_err(unavailable)?;
            rows.into_iter()
                .map(|(referrer_id, totals)| {
                    let count = pending
                        .query_row(params![millis(&now), program_id, referrer_id], |row| {
                            row.get(0)
                        })
                        .map_err(unavailable)?;
                    Ok(totals.tally(referrer_id, count))
                })
                .collect()
        })
        .await
    }

    async fn lapsed_referrals(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Referral>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT doc FROM referrals
                     WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?1
                     ORDER BY expires_at LIMIT ?2",
                )
                .map_err(unavailable)?;
            docs_to_referrals(&mut statement, params![millis(&now), limit])
        })
        .await
    }
}
