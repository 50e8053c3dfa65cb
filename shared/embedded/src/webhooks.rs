//! `WebhookStore` on SQLite.

use crate::{CachedSql, EmbeddedStore, from_json, insert_events, to_json, unavailable};
use refwire_core::StoreError;
use refwire_core::events::OutboxEvent;
use refwire_core::ports::WebhookStore;
use refwire_core::webhooks::Webhook;
use rusqlite::{OptionalExtension, params};

#[async_trait::async_trait]
impl WebhookStore for EmbeddedStore {
    async fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let webhook = webhook.clone();
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO webhooks (id, program_id, version, doc) VALUES (?1, ?2, ?3, ?4)",
                params![
                    webhook.id.as_str(),
                    webhook.program_id.as_str(),
                    webhook.version,
                    to_json(&webhook)?
                ],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn get_webhook(&self, webhook_id: &str) -> Result<Option<Webhook>, StoreError> {
        self.doc_by_id("SELECT doc FROM webhooks WHERE id = ?1", webhook_id)
            .await
    }

    async fn list_webhooks(&self, program_id: &str) -> Result<Vec<Webhook>, StoreError> {
        let program_id = program_id.to_string();
        self.read(move |conn| {
            let mut query = conn
                .prepare_cached("SELECT doc FROM webhooks WHERE program_id = ?1 ORDER BY seq")
                .map_err(unavailable)?;
            let docs = query
                .query_map([program_id], |row| row.get::<_, String>(0))
                .map_err(unavailable)?;
            docs.map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn update_webhook(
        &self,
        webhook: &Webhook,
        expected_version: u64,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError> {
        let webhook = webhook.clone();
        let events = events.to_vec();
        let wrote_events = !events.is_empty();
        self.run(move |conn| {
            let tx = &*conn;
            let updated = tx
                .execute_cached(
                    "UPDATE webhooks SET version = ?3, doc = ?4 WHERE id = ?1 AND version = ?2",
                    params![
                        webhook.id.as_str(),
                        expected_version,
                        webhook.version,
                        to_json(&webhook)?
                    ],
                )
                .map_err(unavailable)?;
            if updated == 0 {
                let exists = tx
                    .query_row_cached(
                        "SELECT 1 FROM webhooks WHERE id = ?1",
                        [webhook.id.as_str()],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(unavailable)?;
                return Err(match exists {
                    Some(()) => StoreError::VersionConflict,
                    None => StoreError::NotFound,
                });
            }
            insert_events(tx, &events)?;
            Ok(())
        })
        .await?;
        if wrote_events {
            self.notify_outbox();
        }
        Ok(())
    }

    async fn delete_webhook(&self, program_id: &str, webhook_id: &str) -> Result<bool, StoreError> {
        let (program_id, webhook_id) = (program_id.to_string(), webhook_id.to_string());
        self.run(move |conn| {
            conn.execute_cached(
                "DELETE FROM webhooks WHERE program_id = ?1 AND id = ?2",
                [program_id, webhook_id],
            )
            .map(|deleted| deleted > 0)
            .map_err(unavailable)
        })
        .await
    }
}
