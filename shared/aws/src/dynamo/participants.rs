//! `ParticipantStore`, and the program's inbound key. A participant item sits beside pointer items
//! created with `attribute_not_exists` in the same transaction, which carry the uniqueness rules:
//! - `PEMAIL#<program>#<email, lowercased>` and `PUSER#<program>#<user id>`: one participant each;
//! - `CODE#<program>#<code>`: the pointer referral codes use too, so the two kinds of code share
//!   one namespace (a join may name either).

use super::programs::program_pk;
use super::referrals::{code_pk, pointer};
use super::{DynamoStore, Index, Record, SortRange, Step, unavailable};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use refwire_core::StoreError;
use refwire_core::conflicts::{Try, retry_on_conflict};
use refwire_core::events::OutboxEvent;
use refwire_core::participants::{Participant, ParticipantKey, email_key};
use refwire_core::ports::{ParticipantPage, ParticipantStore};
use refwire_core::programs::ApiKeyRecord;

const PARTICIPANT: &str = "PARTICIPANT";
const EMAIL: &str = "PEMAIL";
const USER: &str = "PUSER";
const CODE: &str = "CODE";
const INBOUND: &str = "INBOUND";
/// Participant ids start so; referral ids (the other targets of code pointers) do not.
const PARTICIPANT_ID_PREFIX: &str = "par_";

fn participant_pk(participant_id: &str) -> String {
    format!("{PARTICIPANT}#{participant_id}")
}

fn email_pk(program_id: &str, email: &str) -> String {
    format!("{EMAIL}#{program_id}#{}", email_key(email))
}

fn user_pk(program_id: &str, user_id: &str) -> String {
    format!("{USER}#{program_id}#{user_id}")
}

fn inbound_pk(program_id: &str) -> String {
    format!("{INBOUND}#{program_id}")
}

fn participants_partition(program_id: &str) -> String {
    format!("{}#PARTICIPANTS", program_pk(program_id))
}

/// The pointer items a participant owns, as (pk, sort key).
fn pointers_of(participant: &Participant) -> Vec<(String, &'static str)> {
    let program_id = &participant.program_id;
    let mut pointers = vec![(code_pk(program_id, &participant.referral_code), CODE)];
    if let Some(email) = &participant.email {
        pointers.push((email_pk(program_id, email), EMAIL));
    }
    if let Some(user_id) = &participant.user_id {
        pointers.push((user_pk(program_id, user_id), USER));
    }
    pointers
}

impl Record {
    /// The participant in this item, with the count and version kept beside the doc.
    fn participant(&self) -> Result<Participant, StoreError> {
        let mut participant: Participant = self.doc()?;
        participant.referrals_count = self.referrals_count.unwrap_or(0);
        participant.version = self.version.unwrap_or(participant.version);
        Ok(participant)
    }
}

impl DynamoStore {
    fn participant_record(&self, participant: &Participant) -> Result<Record, StoreError> {
        let mut record = Record::new(participant_pk(&participant.id), PARTICIPANT, PARTICIPANT)
            .with_doc(participant)?;
        record.version = Some(participant.version);
        record.referrals_count = Some(participant.referrals_count);
        record.program_id = Some(participant.program_id.clone());
        record.gsi1pk = Some(participants_partition(&participant.program_id));
        record.gsi1sk = Some(participant.id.to_string());
        Ok(record)
    }

    /// Adds one to a referrer's count (and version); fails the transaction if they are gone.
    fn count_referral_step(&self, referrer_id: &str) -> Result<Step, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(participant_pk(referrer_id)))
            .key("sk", AttributeValue::S(PARTICIPANT.into()))
            .update_expression("ADD referrals_count :one, version :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(unavailable)?;
        Ok(Step::new(
            TransactWriteItem::builder().update(update).build(),
            StoreError::NotFound,
        ))
    }

    async fn participant_by_id(
        &self,
        participant_id: &str,
    ) -> Result<Option<Participant>, StoreError> {
        self.get_record(&participant_pk(participant_id), PARTICIPANT)
            .await?
            .map(|record| record.participant())
            .transpose()
    }
}

#[async_trait::async_trait]
impl ParticipantStore for DynamoStore {
    async fn insert_participant(
        &self,
        participant: &Participant,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let mut steps = vec![Step::new(
            self.put_new(&self.participant_record(participant)?)?,
            StoreError::failed("participant id collision"),
        )];
        for (pk, kind) in pointers_of(participant) {
            let taken = if kind == CODE {
                StoreError::CodeTaken
            } else {
                StoreError::ParticipantExists
            };
            let item = pointer(pk, kind, &participant.id);
            steps.push(Step::new(self.put_new(&item)?, taken));
        }
        if let Some(referrer) = &participant.referred_by {
            steps.push(self.count_referral_step(referrer)?);
        }
        steps.extend(self.event_puts(events)?);
        self.transact(steps).await
    }

    async fn get_participant(
        &self,
        program_id: &str,
        participant_id: &str,
    ) -> Result<Option<Participant>, StoreError> {
        Ok(self
            .participant_by_id(participant_id)
            .await?
            .filter(|participant| participant.program_id == program_id))
    }

    async fn find_participant(
        &self,
        program_id: &str,
        key: ParticipantKey<'_>,
    ) -> Result<Option<Participant>, StoreError> {
        let (pk, kind) = match key {
            ParticipantKey::Email(email) => (email_pk(program_id, email), EMAIL),
            ParticipantKey::UserId(user_id) => (user_pk(program_id, user_id), USER),
            ParticipantKey::Code(code) => (code_pk(program_id, code), CODE),
        };
        match self.pointer_target(&pk, kind).await? {
            Some(target) if target.starts_with(PARTICIPANT_ID_PREFIX) => {
                self.get_participant(program_id, &target).await
            }
            _ => Ok(None),
        }
    }

    async fn update_participant(
        &self,
        participant: &Participant,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let mut steps = vec![Step::new(
            self.put_versioned(&self.participant_record(participant)?, expected_version)?,
            StoreError::VersionConflict,
        )];
        steps.extend(self.event_puts(events)?);
        self.transact(steps).await
    }

    async fn delete_participant(
        &self,
        participant: &Participant,
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError> {
        let mut steps = vec![Step::new(
            self.delete_existing(participant_pk(&participant.id), PARTICIPANT)?,
            StoreError::NotFound,
        )];
        for (pk, kind) in pointers_of(participant) {
            steps.push(self.delete_step(pk, kind)?);
        }
        steps.extend(self.event_puts(events)?);
        match self.transact(steps).await {
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
        let mut rows = Vec::new();
        let range = cursor.map_or(SortRange::All, SortRange::Before);
        let partition = participants_partition(program_id);
        self.query_index(Index::Owner, &partition, range, false, |record| {
            rows.push(record.participant()?);
            Ok(rows.len() <= limit as usize)
        })
        .await?;
        Ok(ParticipantPage::from_rows(rows, limit))
    }
}

impl DynamoStore {
    /// Deletes an item that must exist (its condition failing means it is gone).
    fn delete_existing(&self, pk: String, sk: &str) -> Result<TransactWriteItem, StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_string()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// `ProgramStore::replace_inbound_key`: the `INBOUND#<program>` pointer names the current key;
    /// moving it, adding the new key and deleting the old one are one transaction.
    pub(super) async fn swap_inbound_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let program_id = &key.program_id;
        retry_on_conflict((), |()| async move {
            let previous = self
                .pointer_target(&inbound_pk(program_id), INBOUND)
                .await?;
            let program_exists = ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(program_pk(program_id)))
                .key("sk", AttributeValue::S("PROGRAM".into()))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(unavailable)?;
            let moved = pointer(inbound_pk(program_id), INBOUND, &key.key_id);
            let pointer_step = match &previous {
                None => self.put_new(&moved)?,
                Some(old) => self.put_item(
                    &moved,
                    "target = :old",
                    Some([(":old".to_string(), AttributeValue::S(old.clone()))].into()),
                )?,
            };
            let mut steps = vec![
                Step::new(
                    TransactWriteItem::builder()
                        .condition_check(program_exists)
                        .build(),
                    StoreError::NotFound,
                ),
                Step::new(pointer_step, StoreError::VersionConflict),
                self.key_step(key)?,
            ];
            if let Some(old) = previous {
                steps.push(self.delete_step(super::programs::key_pk(&old), "APIKEY")?);
            }
            match self.transact(steps).await {
                Err(StoreError::VersionConflict) => Ok(Try::Again(())),
                other => other.map(Try::Done),
            }
        })
        .await
    }
}
