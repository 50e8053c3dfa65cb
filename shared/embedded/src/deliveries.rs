//! `DeliveryStore` on SQLite.

use crate::{CachedSql, EmbeddedStore, from_json, to_json, unavailable};
use refwire_core::StoreError;
use refwire_core::deliveries::{Delivery, DeliveryState};
use refwire_core::ports::{DeliveryPage, DeliveryStore};
use refwire_core::time::Timestamp;
use rusqlite::params;

#[async_trait::async_trait]
impl DeliveryStore for EmbeddedStore {
    async fn count_send(&self, webhook_id: &str, second: i64) -> Result<u64, StoreError> {
        let webhook_id = webhook_id.to_string();
        self.run(move |conn| {
            // Windows past the last minute are no longer read.
            conn.prepare_cached("DELETE FROM send_windows WHERE webhook_id = ?1 AND second < ?2")
                .and_then(|mut delete| delete.execute(params![webhook_id, second - 60]))
                .map_err(unavailable)?;
            conn.prepare_cached(
                "INSERT INTO send_windows (webhook_id, second, sends) VALUES (?1, ?2, 1)
                 ON CONFLICT (webhook_id, second) DO UPDATE SET sends = sends + 1
                 RETURNING sends",
            )
            .and_then(|mut count| count.query_row(params![webhook_id, second], |row| row.get(0)))
            .map_err(unavailable)
        })
        .await
    }

    async fn insert_delivery(&self, delivery: &Delivery) -> Result<Delivery, StoreError> {
        let delivery = delivery.clone();
        self.run(move |conn| {
            let tx = &*conn;
            tx.execute_cached(
                "INSERT INTO deliveries (id, webhook_id, state, created_at, version, doc, due_at, next_attempt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
                params![
                    delivery.id.as_str(),
                    delivery.webhook_id.as_str(),
                    delivery.state.as_str(),
                    delivery.created_at.timestamp_millis(),
                    delivery.version,
                    to_json(&delivery)?,
                    due_at_millis(&delivery),
                    delivery.next_attempt(),
                ],
            )
            .map_err(unavailable)?;
            let doc: String = tx
                .query_row_cached(
                    "SELECT doc FROM deliveries WHERE id = ?1",
                    [delivery.id.as_str()],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            from_json(&doc)
        })
        .await
    }

    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
        self.doc_by_id("SELECT doc FROM deliveries WHERE id = ?1", delivery_id)
            .await
    }

    async fn update_delivery(
        &self,
        delivery: &Delivery,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let delivery = delivery.clone();
        self.run(move |conn| {
            let updated = conn
                .execute_cached(
                    "UPDATE deliveries SET state = ?3, version = ?4, doc = ?5, due_at = ?6, next_attempt = ?7
                     WHERE id = ?1 AND version = ?2",
                    params![
                        delivery.id.as_str(),
                        expected_version,
                        delivery.state.as_str(),
                        delivery.version,
                        to_json(&delivery)?,
                        due_at_millis(&delivery),
                        delivery.next_attempt(),
                    ],
                )
                .map_err(unavailable)?;
            if updated == 0 {
                return Err(StoreError::VersionConflict);
            }
            Ok(())
        })
        .await
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        state: Option<DeliveryState>,
        after: Option<&Delivery>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError> {
        let webhook_id = webhook_id.to_string();
        let after = after.map(|delivery| delivery.id.to_string());
        self.read(move |conn| {
            let mut query = conn
                .prepare_cached(
                    "SELECT doc FROM deliveries
                     WHERE webhook_id = ?1 AND (?2 IS NULL OR state = ?2)
                       AND (?3 IS NULL OR seq < (SELECT seq FROM deliveries WHERE id = ?3))
                     ORDER BY seq DESC LIMIT ?4",
                )
                .map_err(unavailable)?;
            let rows = query
                .query_map(
                    params![
                        webhook_id,
                        state.map(DeliveryState::as_str),
                        after,
                        limit + 1
                    ],
                    |row| row.get::<_, String>(0),
                )
                .map_err(unavailable)?;
            let page: Vec<Delivery> = rows
                .map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect::<Result<_, StoreError>>()?;
            Ok(DeliveryPage::from_rows(page, limit))
        })
        .await
    }

    async fn failed_deliveries_since(
        &self,
        webhook_id: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let webhook_id = webhook_id.to_string();
        self.read(move |conn| {
            let mut query = conn
                .prepare_cached(
                    "SELECT doc FROM deliveries
                     WHERE webhook_id = ?1 AND state = 'failed' AND created_at >= ?2
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(unavailable)?;
            let docs = query
                .query_map(
                    params![webhook_id, since.timestamp_millis(), limit],
                    |row| row.get::<_, String>(0),
                )
                .map_err(unavailable)?;
            docs.map(|doc| from_json(&doc.map_err(unavailable)?))
                .collect()
        })
        .await
    }
}

/// The row's `due_at`: the delivery is its own job in refwire-local's queue (see `queue`).
fn due_at_millis(delivery: &Delivery) -> Option<i64> {
    delivery.due_at().map(|due| due.timestamp_millis())
}
