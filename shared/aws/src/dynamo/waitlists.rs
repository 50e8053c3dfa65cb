//! `WaitlistStore`. A waitlist and its signups share one partition, `WAITLIST#<id>`: the waitlist
//! item (`sk` = `WAITLIST`) and one item per signup (`sk` = `SIGNUP#<id>`, `lsi1sk` = its rank). The
//! local index `lsi1` orders the signups by rank and, unlike a GSI, can be read with strong
//! consistency, so positions (counts of ranks before) are exact. `WSIGNUP#<waitlist>#<participant>`
//! pointers keep one signup per participant.

use super::programs::program_pk;
use super::referrals::pointer;
use super::table::LOCAL_INDEX;
use super::{DynamoStore, Index, Record, SortRange, Step, count_matches, millis_key, unavailable};
use aws_sdk_dynamodb::types::AttributeValue;
use refwire_core::StoreError;
use refwire_core::ports::WaitlistStore;
use refwire_core::waitlists::{Signup, SignupChange, Waitlist};
use std::collections::HashMap;

const WAITLIST: &str = "WAITLIST";
const SIGNUP_POINTER: &str = "WSIGNUP";

fn waitlist_pk(waitlist_id: &str) -> String {
    format!("{WAITLIST}#{waitlist_id}")
}

fn signup_sk(signup_id: &str) -> String {
    format!("SIGNUP#{signup_id}")
}

fn signup_pointer_pk(waitlist_id: &str, participant_id: &str) -> String {
    format!("{SIGNUP_POINTER}#{waitlist_id}#{participant_id}")
}

/// Which part of a waitlist's rank order a query reads.
enum RankRange<'a> {
    /// Every signup, from the first.
    All,
    /// Signups ranked before this rank.
    Before(&'a str),
}

impl DynamoStore {
    fn waitlist_record(&self, waitlist: &Waitlist) -> Result<Record, StoreError> {
        let mut record =
            Record::new(waitlist_pk(&waitlist.id), WAITLIST, WAITLIST).with_doc(waitlist)?;
        record.version = Some(waitlist.version);
        record.program_id = Some(waitlist.program_id.clone());
        record.gsi1pk = Some(format!("{}#WAITLISTS", program_pk(&waitlist.program_id)));
        record.gsi1sk = Some(format!(
            "{}#{}",
            millis_key(waitlist.created_at.timestamp_millis()),
            waitlist.id
        ));
        Ok(record)
    }

    fn signup_record(&self, signup: &Signup) -> Result<Record, StoreError> {
        let mut record = Record::new(
            waitlist_pk(&signup.waitlist_id),
            &signup_sk(&signup.id),
            "SIGNUP",
        )
        .with_doc(signup)?;
        record.version = Some(signup.version);
        record.lsi1sk = Some(signup.rank.clone());
        Ok(record)
    }

    /// Reads the waitlist's signups in `range` through the local index with strong consistency,
    /// in rank order (`forward`) or reversed, at most `limit` of them after skipping `skip`.
    async fn query_ranks(
        &self,
        waitlist_id: &str,
        range: RankRange<'_>,
        forward: bool,
        skip: u64,
        limit: u32,
    ) -> Result<Vec<Signup>, StoreError> {
        let (index, sort) = LOCAL_INDEX;
        let mut condition = "pk = :pk".to_string();
        let mut values = HashMap::from([(
            ":pk".to_string(),
            AttributeValue::S(waitlist_pk(waitlist_id)),
        )]);
        if let RankRange::Before(rank) = range {
            condition.push_str(&format!(" AND {sort} < :rank"));
            values.insert(":rank".into(), AttributeValue::S(rank.to_string()));
        }
        let mut items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(forward)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut skipped = 0;
        let mut signups = Vec::new();
        while signups.len() < limit as usize {
            let Some(item) = items.next().await else {
                break;
            };
            if skipped < skip {
                skipped += 1;
                continue;
            }
            signups.push(Record::from_item(item.map_err(unavailable)?)?.doc()?);
        }
        Ok(signups)
    }
}

#[async_trait::async_trait]
impl WaitlistStore for DynamoStore {
    async fn insert_waitlist(&self, waitlist: &Waitlist) -> Result<(), StoreError> {
        let record = self.waitlist_record(waitlist)?;
        self.transact(vec![Step::new(
            self.put_new(&record)?,
            StoreError::failed("waitlist id collision"),
        )])
        .await
    }

    async fn get_waitlist(
        &self,
        program_id: &str,
        waitlist_id: &str,
    ) -> Result<Option<Waitlist>, StoreError> {
        Ok(self
            .get_doc::<Waitlist>(&waitlist_pk(waitlist_id), WAITLIST)
            .await?
            .filter(|waitlist| waitlist.program_id == program_id))
    }

    async fn list_waitlists(&self, program_id: &str) -> Result<Vec<Waitlist>, StoreError> {
        let mut waitlists = Vec::new();
        let partition = format!("{}#WAITLISTS", program_pk(program_id));
        self.query_index(Index::Owner, &partition, SortRange::All, true, |record| {
            waitlists.push(record.doc()?);
            Ok(true)
        })
        .await?;
        Ok(waitlists)
    }

    async fn get_signup(
        &self,
        waitlist_id: &str,
        signup_id: &str,
    ) -> Result<Option<Signup>, StoreError> {
        self.get_doc(&waitlist_pk(waitlist_id), &signup_sk(signup_id))
            .await
    }

    async fn find_signup(
        &self,
        waitlist_id: &str,
        participant_id: &str,
    ) -> Result<Option<Signup>, StoreError> {
        let pointer_pk = signup_pointer_pk(waitlist_id, participant_id);
        match self.pointer_target(&pointer_pk, SIGNUP_POINTER).await? {
            Some(signup_id) => self.get_signup(waitlist_id, &signup_id).await,
            None => Ok(None),
        }
    }

    async fn signups_from(
        &self,
        waitlist_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<Signup>, StoreError> {
        self.query_ranks(waitlist_id, RankRange::All, true, offset, limit)
            .await
    }

    async fn signups_before(
        &self,
        waitlist_id: &str,
        rank: &str,
        limit: u32,
    ) -> Result<Vec<Signup>, StoreError> {
        self.query_ranks(waitlist_id, RankRange::Before(rank), false, 0, limit)
            .await
    }

    async fn count_before(&self, waitlist_id: &str, rank: &str) -> Result<u64, StoreError> {
        let (index, sort) = LOCAL_INDEX;
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!("pk = :pk AND {sort} < :rank"))
            .expression_attribute_values(":pk", AttributeValue::S(waitlist_pk(waitlist_id)))
            .expression_attribute_values(":rank", AttributeValue::S(rank.to_string()))
            .consistent_read(true);
        count_matches(query).await
    }

    async fn write_signups(&self, change: &SignupChange) -> Result<(), StoreError> {
        let waitlist = &change.waitlist.record;
        let mut steps = vec![Step::new(
            self.put_versioned(
                &self.waitlist_record(waitlist)?,
                change.waitlist.expected_version,
            )?,
            StoreError::VersionConflict,
        )];
        if let Some(signup) = &change.created {
            steps.push(Step::new(
                self.put_new(&self.signup_record(signup)?)?,
                StoreError::failed("signup id collision"),
            ));
            let taken = pointer(
                signup_pointer_pk(&waitlist.id, &signup.participant_id),
                SIGNUP_POINTER,
                &signup.id,
            );
            steps.push(Step::new(
                self.put_new(&taken)?,
                StoreError::ParticipantExists,
            ));
        }
        if let Some(moved) = &change.moved {
            steps.push(Step::new(
                self.put_versioned(&self.signup_record(&moved.record)?, moved.expected_version)?,
                StoreError::VersionConflict,
            ));
        }
        if let Some(signup) = &change.deleted {
            steps.push(self.delete_step(waitlist_pk(&waitlist.id), &signup_sk(&signup.id))?);
            steps.push(self.delete_step(
                signup_pointer_pk(&waitlist.id, &signup.participant_id),
                SIGNUP_POINTER,
            )?);
        }
        steps.extend(self.event_puts(&change.events)?);
        self.transact(steps).await
    }
}
