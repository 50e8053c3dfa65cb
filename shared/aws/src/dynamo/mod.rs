//! The store ports on one DynamoDB table (single-table design; see docs/dynamodb.md).
//!
//! Every item has `pk`/`sk`, a `kind`, and the entity itself as a JSON `doc`, so a round trip is
//! exact (event data keeps its field order, which the signed envelope depends on). Index attributes
//! (`gsi1pk`/`gsi1sk` ... ) are written beside it. Every change and the outbox events it causes go in
//! one `TransactWriteItems`, whose conditions carry the uniqueness rules and optimistic versions.

mod deliveries;
mod events;
pub use events::outbox_event_from_image;
mod participants;
mod programs;
mod referrals;
pub mod table;
mod waitlists;
mod webhooks;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, Select, TransactWriteItem};
use refwire_core::StoreError;
use refwire_core::events::OutboxEvent;
use refwire_core::ids::ProgramId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// How long outbox events and delivery logs are kept: 30 days by default.
pub const DEFAULT_RETENTION_DAYS: i64 = 30;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention_seconds: i64,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            retention_seconds: DEFAULT_RETENTION_DAYS * 86_400,
        }
    }

    /// The expiry (epoch seconds, DynamoDB TTL) of an item written at `written_ms`.
    fn ttl_from(&self, written_ms: i64) -> i64 {
        written_ms / 1000 + self.retention_seconds
    }

    /// Reads one item by key with a strongly consistent read.
    async fn get_record(&self, pk: &str, sk: &str) -> Result<Option<Record>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_string()))
            .key("sk", AttributeValue::S(sk.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(Record::from_item).transpose()
    }

    /// Deletes an item that belongs to `program_id`; whether one was deleted.
    async fn delete_owned(
        &self,
        pk: String,
        sk: &str,
        program_id: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_string()))
            .condition_expression("program_id = :program")
            .expression_attribute_values(":program", AttributeValue::S(program_id.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err.as_service_error().and_then(|service| service.code())
                    == Some("ConditionalCheckFailedException") =>
            {
                Ok(false)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    /// What a pointer item (code, email, referee, ...) points at, if it exists.
    async fn pointer_target(&self, pk: &str, sk: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_record(pk, sk)
            .await?
            .and_then(|record| record.target))
    }

    /// The JSON document of one item, if it exists.
    async fn get_doc<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_record(pk, sk)
            .await?
            .map(|record| record.doc())
            .transpose()
    }

    fn put_item(
        &self,
        record: &Record,
        condition: &str,
        values: Option<HashMap<String, AttributeValue>>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record.to_item()?))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A put that must create the item.
    fn put_new(&self, record: &Record) -> Result<TransactWriteItem, StoreError> {
        self.put_item(record, "attribute_not_exists(pk)", None)
    }

    /// A put that must replace an existing item.
    fn put_existing(&self, record: &Record) -> Result<TransactWriteItem, StoreError> {
        self.put_item(record, "attribute_exists(pk)", None)
    }

    /// A put that replaces the item only if its stored version is `expected_version`.
    fn put_versioned(
        &self,
        record: &Record,
        expected_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let values = HashMap::from([(
            ":expected".to_string(),
            AttributeValue::N(expected_version.to_string()),
        )]);
        self.put_item(record, "version = :expected", Some(values))
    }

    fn event_puts(&self, events: &[OutboxEvent]) -> Result<Vec<Step>, StoreError> {
        events
            .iter()
            .map(|event| {
                Ok(Step::new(
                    self.put_new(&self.event_record(event)?)?,
                    StoreError::VersionConflict,
                ))
            })
            .collect()
    }

    /// Runs `steps` as one transaction. When a condition fails, the error is the failing step's.
    async fn transact(&self, steps: Vec<Step>) -> Result<(), StoreError> {
        let (items, meanings): (Vec<_>, Vec<_>) = steps
            .into_iter()
            .map(|step| (step.item, step.on_condition_failed))
            .unzip();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service)) => match service.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled.cancellation_reasons();
                    for (reason, meaning) in reasons.iter().zip(meanings) {
                        match reason.code() {
                            Some("ConditionalCheckFailed") => return Err(meaning),
                            Some("TransactionConflict") => return Err(StoreError::VersionConflict),
                            _ => {}
                        }
                    }
                    Err(StoreError::failed(format!(
                        "transaction cancelled: {reasons:?}"
                    )))
                }
                _ => Err(unavailable(SdkError::ServiceError(service))),
            },
            Err(other) => Err(unavailable(other)),
        }
    }

    /// A Query of the items of `partition` in `index` within `range`.
    fn query_request(
        &self,
        index: Index,
        partition: &str,
        range: SortRange<'_>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let (pk_name, sk_name) = index.key_names();
        let mut condition = format!("{pk_name} = :pk");
        let mut values =
            HashMap::from([(":pk".to_string(), AttributeValue::S(partition.to_string()))]);
        let bound = match range {
            SortRange::All => None,
            SortRange::Before(sk) => Some(("<", sk)),
            SortRange::After(sk) => Some((">", sk)),
            SortRange::AtOrAfter(sk) => Some((">=", sk)),
            SortRange::AtOrBefore(sk) => Some(("<=", sk)),
        };
        if let Some((operator, sk)) = bound {
            condition.push_str(&format!(" AND {sk_name} {operator} :sk"));
            values.insert(":sk".into(), AttributeValue::S(sk.to_string()));
        }
        self.client
            .query()
            .table_name(&self.table)
            .index_name(index.name())
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
    }

    /// Feeds `take` every item of `partition` in `index` within `range`, in sort-key order
    /// (`forward` or reversed), page by page, until `take` returns false.
    async fn query_index(
        &self,
        index: Index,
        partition: &str,
        range: SortRange<'_>,
        forward: bool,
        mut take: impl FnMut(Record) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut pages = self
            .query_request(index, partition, range)
            .scan_index_forward(forward)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let record = Record::from_item(item.map_err(unavailable)?)?;
            if !take(record)? {
                break;
            }
        }
        Ok(())
    }

    /// The first `limit` items of `partition` in `index`, in sort-key order: one Query that reads
    /// only those.
    async fn query_first(
        &self,
        index: Index,
        partition: &str,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        let output = self
            .query_request(index, partition, SortRange::All)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(Record::from_item)
            .collect()
    }

    /// How many items `partition` has in `index` within `range` (a Query per 1 MB of index read).
    async fn count_index(
        &self,
        index: Index,
        partition: &str,
        range: SortRange<'_>,
    ) -> Result<u64, StoreError> {
        count_matches(self.query_request(index, partition, range)).await
    }

    /// The items with these keys (`pk`, `sk`), read strongly consistently with BatchGetItem (one
    /// call for up to 100 keys, more only for keys DynamoDB left unprocessed), in no set order.
    async fn get_many(&self, keys: &[(String, &str)]) -> Result<Vec<Item>, StoreError> {
        let keys = keys
            .iter()
            .map(|(pk, sk)| {
                HashMap::from([
                    ("pk".to_string(), AttributeValue::S(pk.clone())),
                    ("sk".to_string(), AttributeValue::S(sk.to_string())),
                ])
            })
            .collect();
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(unavailable)?,
        );
        let mut items = Vec::new();
        while let Some(keys) = request.take() {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(
                output
                    .responses
                    .and_then(|mut tables| tables.remove(&self.table))
                    .unwrap_or_default(),
            );
            request = output
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(&self.table));
        }
        Ok(items)
    }
}

/// Which of `shards` a key belongs to: FNV-1a, so it never changes between builds or runs.
fn shard_of(key: &str, shards: u32) -> u32 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(shards)) as u32
}

/// One write of a transaction and what its condition failing means.
struct Step {
    item: TransactWriteItem,
    on_condition_failed: StoreError,
}

impl Step {
    fn new(item: TransactWriteItem, on_condition_failed: StoreError) -> Self {
        Step {
            item,
            on_condition_failed,
        }
    }
}

/// The global secondary indexes, by what they group.
#[derive(Debug, Clone, Copy)]
enum Index {
    /// A program's referrals, events, webhooks and referrers (by rank: the leaderboard), and a
    /// webhook's deliveries, in order.
    Owner,
    /// Pending referrals by expiry, in shards, for the sweep.
    Expiry,
    /// A referrer's referrals; a referral's events.
    Referrer,
    /// A program's pending referrals that can expire, by expiry (keys only: it is counted).
    ProgramExpiry,
}

impl Index {
    fn name(self) -> &'static str {
        match self {
            Index::Owner => "gsi1",
            Index::Expiry => "gsi2",
            Index::Referrer => "gsi3",
            Index::ProgramExpiry => "gsi4",
        }
    }

    fn key_names(self) -> (&'static str, &'static str) {
        match self {
            Index::Owner => ("gsi1pk", "gsi1sk"),
            Index::Expiry => ("gsi2pk", "gsi2sk"),
            Index::Referrer => ("gsi3pk", "gsi3sk"),
            Index::ProgramExpiry => ("gsi4pk", "gsi4sk"),
        }
    }
}

enum SortRange<'a> {
    All,
    Before(&'a str),
    After(&'a str),
    AtOrAfter(&'a str),
    AtOrBefore(&'a str),
}

/// The attributes an item may have; absent ones are not written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    pk: String,
    sk: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    doc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    program_id: Option<ProgramId>,
    /// What a pointer item (code, open referral, referee, idempotency key) points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi3pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi3sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi4pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi4sk: Option<String>,
    /// A referrer guard's pending referrals: referral id -> expiry in ms (`i64::MAX`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<HashMap<String, i64>>,
    /// A signup's rank: the sort key of the local index `lsi1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lsi1sk: Option<String>,
    /// A participant's referrals count, kept beside its doc so joins can add to it atomically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    referrals_count: Option<u64>,
    /// Epoch seconds after which DynamoDB deletes the item (events, idempotency keys, deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

impl Record {
    fn new(pk: String, sk: &str, kind: &str) -> Self {
        Record {
            pk,
            sk: sk.to_string(),
            kind: kind.to_string(),
            ..Record::default()
        }
    }

    fn with_doc<T: Serialize>(mut self, doc: &T) -> Result<Self, StoreError> {
        self.doc = Some(serde_json::to_string(doc).map_err(unavailable)?);
        Ok(self)
    }

    fn doc<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        let doc = self
            .doc
            .as_deref()
            .ok_or_else(|| StoreError::failed(format!("item {} has no doc", self.pk)))?;
        serde_json::from_str(doc).map_err(unavailable)
    }

    fn to_item(&self) -> Result<Item, StoreError> {
        serde_dynamo::to_item(self).map_err(unavailable)
    }

    fn from_item(item: Item) -> Result<Self, StoreError> {
        serde_dynamo::from_item(item).map_err(unavailable)
    }
}

/// Sort keys that order by time: milliseconds, zero-padded.
fn millis_key(ms: i64) -> String {
    format!("{ms:013}")
}

/// How many items `query` matches, counted page by page (a Query per 1 MB of index read).
async fn count_matches(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<u64, StoreError> {
    let mut pages = query.select(Select::Count).into_paginator().send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        count += u64::try_from(page.map_err(unavailable)?.count).unwrap_or(0);
    }
    Ok(count)
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::unavailable("DynamoDB call failed", err)
}
