//! `EventStore`: outbox events, one item each; the DynamoDB stream of their inserts feeds fan-out.

use super::programs::program_pk;
use super::{DynamoStore, Index, Record, SortRange, Step};
use refwire_core::StoreError;
use refwire_core::events::OutboxEvent;
use refwire_core::ports::EventStore;

/// The `kind` of outbox items: the stream filter of the fan-out function selects inserts of it.
const EVENT_KIND: &str = "EVENT";

fn event_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

fn idempotency_pk(program_id: &str, key: &str) -> String {
    format!("IDEMPOTENCY#{program_id}#{key}")
}

impl DynamoStore {
    pub(super) fn event_record(&self, event: &OutboxEvent) -> Result<Record, StoreError> {
        let mut record =
            Record::new(event_pk(&event.id), EVENT_KIND, EVENT_KIND).with_doc(event)?;
        record.program_id = Some(event.program_id.clone());
        // Event ids are time-ordered, so the program's events sort in write order.
        record.gsi1pk = Some(format!("{}#EVENTS", program_pk(&event.program_id)));
        record.gsi1sk = Some(event.id.to_string());
        if let Some(code) = event.data["referral_code"].as_str() {
            record.gsi3pk = Some(referral_events_partition(&event.program_id, code));
            record.gsi3sk = Some(event.id.to_string());
        }
        record.ttl = Some(self.ttl_from(event.timestamp.timestamp_millis()));
        Ok(record)
    }
}

/// A referral's events, in the index that also lists a referrer's referrals.
fn referral_events_partition(program_id: &str, referral_code: &str) -> String {
    format!("{}#REFERRAL#{referral_code}#EVENTS", program_pk(program_id))
}

#[async_trait::async_trait]
impl EventStore for DynamoStore {
    async fn list_events(
        &self,
        program_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let partition = format!("{}#EVENTS", program_pk(program_id));
        let range = after.map_or(SortRange::All, SortRange::After);
        let mut events = Vec::new();
        self.query_index(Index::Owner, &partition, range, true, |record| {
            events.push(record.doc()?);
            Ok(events.len() < limit as usize)
        })
        .await?;
        Ok(events)
    }

    async fn referral_events(
        &self,
        program_id: &str,
        referral_code: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let partition = referral_events_partition(program_id, referral_code);
        let mut events = Vec::new();
        self.query_index(
            Index::Referrer,
            &partition,
            SortRange::All,
            true,
            |record| {
                events.push(record.doc()?);
                Ok(events.len() < limit as usize)
            },
        )
        .await?;
        Ok(events)
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<OutboxEvent>, StoreError> {
        self.get_doc(&event_pk(event_id), EVENT_KIND).await
    }

    async fn publish_event(
        &self,
        event: &OutboxEvent,
        idempotency_key: Option<&str>,
    ) -> Result<OutboxEvent, StoreError> {
        let mut steps = self.event_puts(std::slice::from_ref(event))?;
        if let Some(key) = idempotency_key {
            let mut claim = Record::new(
                idempotency_pk(&event.program_id, key),
                "IDEMPOTENCY",
                "IDEMPOTENCY",
            );
            claim.target = Some(event.id.to_string());
            claim.ttl = Some(self.ttl_from(event.timestamp.timestamp_millis()));
            steps.push(Step::new(
                self.put_new(&claim)?,
                StoreError::VersionConflict,
            ));
        }
        match self.transact(steps).await {
            Ok(()) => Ok(event.clone()),
            // The key was used: the first event stands.
            Err(StoreError::VersionConflict) if idempotency_key.is_some() => {
                let key = idempotency_key.unwrap_or_default();
                let claim = self
                    .get_record(&idempotency_pk(&event.program_id, key), "IDEMPOTENCY")
                    .await?
                    .ok_or(StoreError::VersionConflict)?;
                let first = claim.target.ok_or(StoreError::VersionConflict)?;
                self.get_event(&first)
                    .await?
                    .ok_or(StoreError::VersionConflict)
            }
            Err(err) => Err(err),
        }
    }
}

/// The outbox event in a stream record's new image, or `None` for any other item's change (the
/// stream carries every write; the fan-out function's filter should already pass only events).
pub fn outbox_event_from_image(
    image: serde_dynamo::Item,
) -> Result<Option<OutboxEvent>, StoreError> {
    let record: Record = serde_dynamo::from_item(image).map_err(super::unavailable)?;
    if record.kind != EVENT_KIND {
        return Ok(None);
    }
    record.doc().map(Some)
}
