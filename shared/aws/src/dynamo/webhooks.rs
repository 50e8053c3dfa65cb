//! `WebhookStore`: one item per webhook, listed per program through gsi1.

use super::programs::program_pk;
use super::{DynamoStore, Index, Record, SortRange, Step};
use refwire_core::StoreError;
use refwire_core::events::OutboxEvent;
use refwire_core::ports::WebhookStore;
use refwire_core::webhooks::Webhook;

pub(super) fn webhook_pk(webhook_id: &str) -> String {
    format!("WEBHOOK#{webhook_id}")
}

impl DynamoStore {
    fn webhook_record(&self, webhook: &Webhook) -> Result<Record, StoreError> {
        let mut record =
            Record::new(webhook_pk(&webhook.id), "WEBHOOK", "WEBHOOK").with_doc(webhook)?;
        record.version = Some(webhook.version);
        record.program_id = Some(webhook.program_id.clone());
        record.gsi1pk = Some(format!("{}#WEBHOOKS", program_pk(&webhook.program_id)));
        record.gsi1sk = Some(format!(
            "{}#{}",
            super::millis_key(webhook.created_at.timestamp_millis()),
            webhook.id
        ));
        Ok(record)
    }
}

#[async_trait::async_trait]
impl WebhookStore for DynamoStore {
    async fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let put = self.put_new(&self.webhook_record(webhook)?)?;
        self.transact(vec![Step::new(
            put,
            StoreError::failed("webhook id collision"),
        )])
        .await
    }

    async fn get_webhook(&self, webhook_id: &str) -> Result<Option<Webhook>, StoreError> {
        self.get_doc(&webhook_pk(webhook_id), "WEBHOOK").await
    }

    async fn list_webhooks(&self, program_id: &str) -> Result<Vec<Webhook>, StoreError> {
        let partition = format!("{}#WEBHOOKS", program_pk(program_id));
        let mut webhooks = Vec::new();
        self.query_index(Index::Owner, &partition, SortRange::All, true, |record| {
            webhooks.push(record.doc()?);
            Ok(true)
        })
        .await?;
        Ok(webhooks)
    }

    async fn update_webhook(
        &self,
        webhook: &Webhook,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let mut steps = vec![Step::new(
            self.put_versioned(&self.webhook_record(webhook)?, expected_version)?,
            StoreError::VersionConflict,
        )];
        steps.extend(self.event_puts(events)?);
        match self.transact(steps).await {
            Err(StoreError::VersionConflict) if self.get_webhook(&webhook.id).await?.is_none() => {
                Err(StoreError::NotFound)
            }
            other => other,
        }
    }

    async fn delete_webhook(&self, program_id: &str, webhook_id: &str) -> Result<bool, StoreError> {
        self.delete_owned(webhook_pk(webhook_id), "WEBHOOK", program_id)
            .await
    }
}
