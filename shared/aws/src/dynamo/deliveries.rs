//! `DeliveryStore`: one item per delivery with its attempt log, listed per webhook through gsi1 by
//! creation time; a page after a delivery starts below that delivery's gsi1 sort key.

use super::webhooks::webhook_pk;
use super::{DynamoStore, Index, Record, SortRange, Step, millis_key};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use refwire_core::StoreError;
use refwire_core::deliveries::{Delivery, DeliveryState};
use refwire_core::ports::{DeliveryPage, DeliveryStore};
use refwire_core::time::Timestamp;

fn delivery_pk(delivery_id: &str) -> String {
    format!("DELIVERY#{delivery_id}")
}

fn log_partition(webhook_id: &str) -> String {
    format!("{}#DELIVERIES", webhook_pk(webhook_id))
}

fn log_key(delivery: &Delivery) -> String {
    format!(
        "{}#{}",
        millis_key(delivery.created_at.timestamp_millis()),
        delivery.id
    )
}

impl DynamoStore {
    fn delivery_record(&self, delivery: &Delivery) -> Result<Record, StoreError> {
        let mut record =
            Record::new(delivery_pk(&delivery.id), "DELIVERY", "DELIVERY").with_doc(delivery)?;
        record.version = Some(delivery.version);
        record.program_id = Some(delivery.program_id.clone());
        record.gsi1pk = Some(log_partition(&delivery.webhook_id));
        record.gsi1sk = Some(log_key(delivery));
        record.ttl = Some(self.ttl_from(delivery.created_at.timestamp_millis()));
        Ok(record)
    }
}

/// How long a rate-limit window item is kept (DynamoDB's TTL removes it later still).
const SEND_WINDOW_SECONDS: i64 = 120;

#[async_trait::async_trait]
impl DeliveryStore for DynamoStore {
    /// One UpdateItem: `ADD sends :1` on the window's item, returning the new count.
    async fn count_send(&self, webhook_id: &str, second: i64) -> Result<u64, StoreError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                "pk",
                AttributeValue::S(format!("{}#SENDS", webhook_pk(webhook_id))),
            )
            .key("sk", AttributeValue::S(second.to_string()))
            .update_expression("ADD sends :one SET #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N((second + SEND_WINDOW_SECONDS).to_string()),
            )
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(super::unavailable)?;
        output
            .attributes
            .as_ref()
            .and_then(|attributes| attributes.get("sends"))
            .and_then(|sends| sends.as_n().ok())
            .and_then(|sends| sends.parse().ok())
            .ok_or_else(|| StoreError::failed("UpdateItem returned no count"))
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        let put = self.put_new(&self.delivery_record(delivery)?)?;
        match self
            .transact(vec![Step::new(put, StoreError::VersionConflict)])
            .await
        {
            Ok(()) => Ok(delivery.clone()),
            Err(StoreError::VersionConflict) => self
                .get_delivery(&delivery.id)
                .await?
                .ok_or(StoreError::VersionConflict),
            Err(err) => Err(err),
        }
    }

    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
        self.get_doc(&delivery_pk(delivery_id), "DELIVERY").await
    }

    async fn update_delivery(
        &self,
        delivery: &Delivery,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let put = self.put_versioned(&self.delivery_record(delivery)?, expected_version)?;
        self.transact(vec![Step::new(put, StoreError::VersionConflict)])
            .await
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        state: Option<DeliveryState>,
        after: Option<&Delivery>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError> {
        let after = after.map(log_key);
        let range = after.as_deref().map_or(SortRange::All, SortRange::Before);
        let mut page: Vec<Delivery> = Vec::new();
        self.query_index(
            Index::Owner,
            &log_partition(webhook_id),
            range,
            false,
            |record| {
                let delivery: Delivery = record.doc()?;
                if state.is_none_or(|state| delivery.state == state) {
                    page.push(delivery);
                }
                Ok(page.len() <= limit as usize)
            },
        )
        .await?;
        Ok(DeliveryPage::from_rows(page, limit))
    }

    async fn failed_deliveries_since(
        &self,
        webhook_id: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let from = millis_key(since.timestamp_millis());
        let mut failed = Vec::new();
        self.query_index(
            Index::Owner,
            &log_partition(webhook_id),
            SortRange::AtOrAfter(&from),
            true,
            |record| {
                let delivery: Delivery = record.doc()?;
                if delivery.state == DeliveryState::Failed {
                    failed.push(delivery);
                }
                Ok(failed.len() < limit as usize)
            },
        )
        .await?;
        Ok(failed)
    }
}
