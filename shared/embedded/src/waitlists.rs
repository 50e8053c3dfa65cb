//! `WaitlistStore` on SQLite: positions are counts over the `(waitlist_id, rank)` index.

use crate::{CachedSql, EmbeddedStore, from_json, to_json, unavailable};
use refwire_core::StoreError;
use refwire_core::ports::WaitlistStore;
use refwire_core::waitlists::{Signup, SignupChange, Waitlist};
use rusqlite::{ErrorCode, OptionalExtension, params};

fn signups_of(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Signup>, StoreError> {
    let docs = statement
        .query_map(params, |row| row.get::<_, String>(0))
        .map_err(unavailable)?;
    docs.map(|doc| from_json(&doc.map_err(unavailable)?))
        .collect()
}

fn write_error(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &err
        && failure.code == ErrorCode::ConstraintViolation
        && message.contains("signups.participant_id")
    {
        return StoreError::ParticipantExists;
    }
    unavailable(err)
}

/// Replaces the row `id` whose version is `expected_version`; `VersionConflict` otherwise.
fn update_versioned(
    tx: &rusqlite::Connection,
    sql: &str,
    id: &str,
    expected_version: u64,
    version: u64,
    extra: Option<&str>,
    doc: String,
) -> Result<(), StoreError> {
    let updated = match extra {
        Some(rank) => tx.execute_cached(sql, params![id, expected_version, version, doc, rank]),
        None => tx.execute_cached(sql, params![id, expected_version, version, doc]),
    }
    .map_err(write_error)?;
    if updated == 0 {
        return Err(StoreError::VersionConflict);
    }
    Ok(())
}

#[async_trait::async_trait]
impl WaitlistStore for EmbeddedStore {
    async fn insert_waitlist(&self, waitlist: &Waitlist) -> Result<(), StoreError> {
        let waitlist = waitlist.clone();
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO waitlists (id, program_id, version, doc) VALUES (?1, ?2, ?3, ?4)",
                params![
                    waitlist.id.as_str(),
                    waitlist.program_id.as_str(),
                    waitlist.version,
                    to_json(&waitlist)?
                ],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn get_waitlist(
        &self,
        program_id: &str,
        waitlist_id: &str,
    ) -> Result<Option<Waitlist>, StoreError> {
        Ok(self
            .doc_by_id::<Waitlist>("SELECT doc FROM waitlists WHERE id = ?1", waitlist_id)
            .await?
            .filter(|waitlist| waitlist.program_id == program_id))
    }

    async fn list_waitlists(&self, program_id: &str) -> Result<Vec<Waitlist>, StoreError> {
        let program_id = program_id.to_string();
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached("SELECT doc FROM waitlists WHERE program_id = ?1 ORDER BY rowid")
                .map_err(unavailable)?;
            let docs = statement
                .query_map([program_id], |row| row.get::<_, String>(0))
                .map_err(unavailable)?;
            docs.map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn get_signup(
        &self,
        waitlist_id: &str,
        signup_id: &str,
    ) -> Result<Option<Signup>, StoreError> {
        Ok(self
            .doc_by_id::<Signup>("SELECT doc FROM signups WHERE id = ?1", signup_id)
            .await?
            .filter(|signup| signup.waitlist_id == waitlist_id))
    }

    async fn find_signup(
        &self,
        waitlist_id: &str,
        participant_id: &str,
    ) -> Result<Option<Signup>, StoreError> {
        let (waitlist_id, participant_id) = (waitlist_id.to_string(), participant_id.to_string());
        self.read(move |conn| {
            let doc: Option<String> = conn
                .query_row_cached(
                    "SELECT doc FROM signups WHERE waitlist_id = ?1 AND participant_id = ?2",
                    [waitlist_id, participant_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn signups_from(
        &self,
        waitlist_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Signup>, StoreError> {
        let waitlist_id = waitlist_id.to_string();
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT doc FROM signups WHERE waitlist_id = ?1
                     ORDER BY rank LIMIT ?2 OFFSET ?3",
                )
                .map_err(unavailable)?;
            signups_of(&mut statement, params![waitlist_id, limit, offset])
        })
        .await
    }

    async fn signups_before(
        &self,
        waitlist_id: &str,
        rank: &str,
        limit: u32,
    ) -> Result<Vec<Signup>, StoreError> {
        let (waitlist_id, rank) = (waitlist_id.to_string(), rank.to_string());
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT doc FROM signups WHERE waitlist_id = ?1 AND rank < ?2
                     ORDER BY rank DESC LIMIT ?3",
                )
                .map_err(unavailable)?;
            signups_of(&mut statement, params![waitlist_id, rank, limit])
        })
        .await
    }

    async fn count_before(&self, waitlist_id: &str, rank: &str) -> Result<u64, StoreError> {
        let (waitlist_id, rank) = (waitlist_id.to_string(), rank.to_string());
        self.read(move |conn| {
            conn.query_row_cached(
                "SELECT COUNT(*) FROM signups WHERE waitlist_id = ?1 AND rank < ?2",
                [waitlist_id, rank],
                |row| row.get(0),
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn write_signups(&self, change: &SignupChange) -> Result<(), StoreError> {
        let change = change.clone();
        let events = change.events.clone();
        self.write_with_events(&events, move |tx| {
            let waitlist = &change.waitlist.record;
            update_versioned(
                tx,
                "UPDATE waitlists SET version = ?3, doc = ?4 WHERE id = ?1 AND version = ?2",
                &waitlist.id,
                change.waitlist.expected_version,
                waitlist.version,
                None,
                to_json(waitlist)?,
            )?;
            if let Some(signup) = &change.created {
                tx.execute_cached(
                    "INSERT INTO signups (id, waitlist_id, participant_id, rank, version, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        signup.id.as_str(),
                        signup.waitlist_id.as_str(),
                        signup.participant_id.as_str(),
                        signup.rank,
                        signup.version,
                        to_json(signup)?
                    ],
                )
                .map_err(write_error)?;
            }
            if let Some(moved) = &change.moved {
                let signup = &moved.record;
                update_versioned(
                    tx,
                    "UPDATE signups SET version = ?3, doc = ?4, rank = ?5 WHERE id = ?1 AND version = ?2",
                    &signup.id,
                    moved.expected_version,
                    signup.version,
                    Some(&signup.rank),
                    to_json(signup)?,
                )?;
            }
            if let Some(signup) = &change.deleted {
                tx.execute_cached("DELETE FROM signups WHERE id = ?1", [&signup.id])
                    .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }
}
