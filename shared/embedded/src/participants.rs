//! `ParticipantStore` on SQLite. Email, user id and code uniqueness are the schema's.

use crate::{CachedSql, EmbeddedStore, from_json, to_json, unavailable};
use refwire_core::StoreError;
use refwire_core::events::OutboxEvent;
use refwire_core::participants::{Participant, ParticipantKey, email_key};
use refwire_core::ports::{ParticipantPage, ParticipantStore};
use rusqlite::{ErrorCode, OptionalExtension, params};

/// The columns a read needs: the document, then what is kept beside it.
const SELECT: &str = "SELECT doc, referrals_count, version FROM participants";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, u64, u64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn participant_of(
    (doc, referrals_count, version): (String, u64, u64),
) -> Result<Participant, StoreError> {
    let mut participant: Participant = from_json(&doc)?;
    participant.referrals_count = referrals_count;
    participant.version = version;
    Ok(participant)
}

fn write_error(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &err
        && failure.code == ErrorCode::ConstraintViolation
    {
        if message.contains("participants.email_key") || message.contains("participants.user_id") {
            return StoreError::ParticipantExists;
        }
        if message.contains("participants.code") || message == "code taken" {
            return StoreError::CodeTaken;
        }
    }
    unavailable(err)
}

impl EmbeddedStore {
    async fn participant_where(
        &self,
        condition: &'static str,
        program_id: &str,
        value: &str,
    ) -> Result<Option<Participant>, StoreError> {
        let (program_id, value) = (program_id.to_string(), value.to_string());
        self.read(move |conn| {
            let row = conn
                .query_row_cached(
                    &format!("{SELECT} WHERE program_id = ?1 AND {condition} = ?2"),
                    [program_id, value],
                    read_row,
                )
                .optional()
                .map_err(unavailable)?;
            row.map(participant_of).transpose()
        })
        .await
    }
}

#[async_trait::async_trait]
impl ParticipantStore for EmbeddedStore {
    async fn insert_participant(
        &self,
        participant: &Participant,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let participant = participant.clone();
        self.write_with_events(events, move |tx| {
            tx.execute_cached(
                "INSERT INTO participants
                     (id, program_id, email_key, user_id, code, referrals_count, version, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    participant.id.as_str(),
                    participant.program_id.as_str(),
                    participant.email.as_deref().map(email_key),
                    participant.user_id,
                    participant.referral_code.as_str(),
                    participant.referrals_count,
                    participant.version,
                    to_json(&participant)?,
                ],
            )
            .map_err(write_error)?;
            if let Some(referrer) = &participant.referred_by {
                let counted = tx
                    .execute_cached(
                        "UPDATE participants
                         SET referrals_count = referrals_count + 1, version = version + 1
                         WHERE program_id = ?1 AND id = ?2",
                        [participant.program_id.as_str(), referrer],
                    )
                    .map_err(unavailable)?;
                if counted == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            Ok(())
        })
        .await
    }

    async fn get_participant(
        &self,
        program_id: &str,
        participant_id: &str,
    ) -> Result<Option<Participant>, StoreError> {
        self.participant_where("id", program_id, participant_id)
            .await
    }

    async fn find_participant(
        &self,
        program_id: &str,
        key: ParticipantKey<'_>,
    ) -> Result<Option<Participant>, StoreError> {
        let (column, value) = match key {
            ParticipantKey::Email(email) => ("email_key", email),
            ParticipantKey::UserId(user_id) => ("user_id", user_id),
            ParticipantKey::Code(code) => ("code", code),
        };
        self.participant_where(column, program_id, value).await
    }

    async fn update_participant(
        &self,
        participant: &Participant,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let participant = participant.clone();
        self.write_with_events(events, move |tx| {
            let updated = tx
                .execute_cached(
                    "UPDATE participants SET version = ?3, doc = ?4
                     WHERE id = ?1 AND version = ?2",
                    params![
                        participant.id.as_str(),
                        expected_version,
                        participant.version,
                        to_json(&participant)?,
                    ],
                )
                .map_err(write_error)?;
            if updated == 0 {
                return Err(StoreError::VersionConflict);
            }
            Ok(())
        })
        .await
    }

    async fn delete_participant(
        &self,
        participant: &Participant,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError> {
        let participant = participant.clone();
        let deleted = self
            .write_with_events(events, move |tx| {
                let deleted = tx
                    .execute_cached(
                        "DELETE FROM participants WHERE program_id = ?1 AND id = ?2",
                        [participant.program_id.as_str(), &participant.id],
                    )
                    .map_err(unavailable)?;
                // Nothing to delete: roll back rather than write the event.
                if deleted == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await;
        match deleted {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn list_participants(
        &self,
        program_id: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ParticipantPage, StoreError> {
        let program_id = program_id.to_string();
        let cursor = cursor.map(str::to_string);
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "{SELECT} WHERE program_id = ?1 AND (?2 IS NULL OR id < ?2)
                     ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![program_id, cursor, limit + 1], read_row)
                .map_err(unavailable)?;
            let participants = rows
                .map(|row| participant_of(row.map_err(unavailable)?))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ParticipantPage::from_rows(participants, limit))
        })
        .await
    }
}
