//! Webhook use cases: endpoint management, the delivery log, resends and custom events.

pub mod url_rules;
mod webhook;

pub use webhook::*;

use crate::conflicts::{Versioned, retry_on_conflict, written};
use crate::deliveries::outgoing::{OutgoingRequest, build_request};
use crate::deliveries::retry::RetrySchedule;
use crate::deliveries::signing::generate_signing_secret;
use crate::deliveries::{Delivery, DeliveryState};
use crate::error::{Error, StoreError};
use crate::events::{self, OutboxEvent, RESERVED_EVENT_PREFIXES};
use crate::ids::WaitlistId;
use crate::js_json::{self, NUMBER_OUT_OF_RANGE};
use crate::ports::DeliveryPage;
use crate::referrals::Change;
use crate::service::{Principal, Refwire, page_limit, unknown_cursor};
use crate::time::Timestamp;
use crate::whole::Whole;
use serde_json::{Value, json};

/// ReferralLoop documents this schedule for its subscriptions: +1 min, +5 min, +15 min, +1 h.
pub const REFERRAL_LOOP_RETRY_SCHEDULE: [u32; 4] = [60, 300, 900, 3600];
/// ReferralLoop asks receivers to respond within 5 seconds.
pub const REFERRAL_LOOP_TIMEOUT_SECONDS: u32 = 5;
const MAX_CUSTOM_EVENT_BYTES: usize = 64 * 1024;
const RECOVER_BATCH: u32 = 1000;

impl Refwire {
    /// Creates a webhook; the returned one carries its signing secret, shown to the caller only now.
    pub async fn create_webhook(
        &self,
        principal: &Principal,
        fields: WebhookFields,
    ) -> Result<Webhook, Error> {
        self.insert_webhook(
            principal,
            "wh",
            fields,
            EnvelopeStyle::Refwire,
            RetrySchedule::default(),
        )
        .await
    }

    /// ReferralLoop-compatible subscription (`sub_<ulid>`): one event type, ReferralLoop's envelope,
    /// timeout and schedule; with a `waitlist_id`, only that waitlist's events.
    pub async fn subscribe(
        &self,
        principal: &Principal,
        event_type: String,
        target_url: String,
        waitlist_id: Option<String>,
    ) -> Result<Webhook, Error> {
        let fields = WebhookFields {
            name: Some(format!("Subscription to {event_type}")),
            url: Some(target_url),
            events: Some(vec![event_type]),
            timeout_seconds: Some(Whole(REFERRAL_LOOP_TIMEOUT_SECONDS)),
            ..Default::default()
        };
        let envelope = EnvelopeStyle::ReferralLoop {
            waitlist_id: waitlist_id.map(WaitlistId::from),
        };
        self.insert_webhook(
            principal,
            "sub",
            fields,
            envelope,
            RetrySchedule::of(&REFERRAL_LOOP_RETRY_SCHEDULE),
        )
        .await
        .map_err(|err| match err {
            Error::Validation {
                field: Some("url"),
                message,
            } => Error::validation("target_url", message),
            Error::Validation {
                field: Some("events"),
                message,
            } => Error::validation("event_type", message),
            other => other,
        })
    }

    async fn insert_webhook(
        &self,
        principal: &Principal,
        id_prefix: &str,
        fields: WebhookFields,
        envelope: EnvelopeStyle,
        default_schedule: RetrySchedule,
    ) -> Result<Webhook, Error> {
        principal.require_secret()?;
        let webhook = Webhook::create(
            fields,
            self.ids.new_id(id_prefix),
            principal.program_id.clone(),
            generate_signing_secret(),
            envelope,
            default_schedule,
            self.config.target_policy,
            self.clock.now(),
        )?;
        self.store.insert_webhook(&webhook).await?;
        Ok(webhook)
    }

    pub async fn list_webhooks(&self, principal: &Principal) -> Result<Vec<Webhook>, Error> {
        principal.require_secret()?;
        Ok(self.store.list_webhooks(&principal.program_id).await?)
    }

    pub async fn get_webhook(
        &self,
        principal: &Principal,
        webhook_id: &str,
    ) -> Result<Webhook, Error> {
        principal.require_secret()?;
        self.store
            .get_webhook(webhook_id)
            .await?
            .filter(|webhook| webhook.program_id == principal.program_id)
            .ok_or(Error::NotFound("webhook"))
    }

    pub async fn update_webhook(
        &self,
        principal: &Principal,
        webhook_id: &str,
        fields: WebhookFields,
    ) -> Result<Webhook, Error> {
        self.change_webhook(principal, webhook_id, |webhook, now| {
            *webhook = webhook.updated(fields.clone(), self.config.target_policy, now)?;
            Ok(())
        })
        .await
    }

    /// Rotates the signing secret; the old one keeps signing for `grace_seconds` (default 1 day).
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        webhook_id: &str,
        grace_seconds: Option<u32>,
    ) -> Result<Webhook, Error> {
        let secret = generate_signing_secret();
        self.change_webhook(principal, webhook_id, |webhook, now| {
            webhook.rotate_secret(secret.clone(), grace_seconds, now)
        })
        .await
    }

    pub async fn delete_webhook(
        &self,
        principal: &Principal,
        webhook_id: &str,
    ) -> Result<(), Error> {
        principal.require_secret()?;
        if self
            .store
            .delete_webhook(&principal.program_id, webhook_id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound("webhook"))
        }
    }

    /// Queues the test event for this webhook only.
    pub async fn send_test(
        &self,
        principal: &Principal,
        webhook_id: &str,
    ) -> Result<OutboxEvent, Error> {
        let webhook = self.get_webhook(principal, webhook_id).await?;
        if !webhook.active {
            return Err(Error::conflict(
                "webhook_inactive",
                "activate the webhook before testing it",
            ));
        }
        let change = Change {
            event: events::WEBHOOK_TEST,
            // Tolinku's documented test payload, whose `appspace_id` is our program id.
            data: json!({
                "message": "This is a test webhook from Refwire.",
                "webhook_id": webhook.id,
                "appspace_id": webhook.program_id,
                "program_id": webhook.program_id,
            }),
        };
        let mut event = self.outbox_event(&principal.program_id, change, self.clock.now());
        event.target_webhook = Some(webhook.id);
        Ok(self.store.publish_event(&event, None).await?)
    }

    /// Publishes a custom event (e.g. `link.clicked`) to the program's subscribers.
    pub async fn publish_custom_event(
        &self,
        principal: &Principal,
        name: &str,
        data: Value,
        idempotency_key: Option<&str>,
    ) -> Result<OutboxEvent, Error> {
        principal.require_secret()?;
        if !is_valid_event_name(name) {
            return Err(Error::validation(
                "event",
                "must be dot-separated lowercase words, e.g. link.clicked",
            ));
        }
        if RESERVED_EVENT_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || name == events::WEBHOOK_TEST
        {
            return Err(Error::validation(
                "event",
                format!("{name} is reserved for Refwire's own events"),
            ));
        }
        if !data.is_object() || data.to_string().len() > MAX_CUSTOM_EVENT_BYTES {
            return Err(Error::validation(
                "data",
                "must be a JSON object of at most 64 KB",
            ));
        }
        if !js_json::numbers_fit_in_doubles(&data) {
            return Err(Error::validation("data", NUMBER_OUT_OF_RANGE));
        }
        if idempotency_key.is_some_and(|key| key.is_empty() || key.len() > 200) {
            return Err(Error::validation(
                "idempotency_key",
                "must be 1-200 characters",
            ));
        }
        let event = OutboxEvent::new(
            self.ids.new_id("evt"),
            &principal.program_id,
            name,
            self.clock.now(),
            data,
        );
        Ok(self.store.publish_event(&event, idempotency_key).await?)
    }

    pub async fn list_deliveries(
        &self,
        principal: &Principal,
        webhook_id: &str,
        state: Option<DeliveryState>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<DeliveryPage, Error> {
        let webhook = self.get_webhook(principal, webhook_id).await?;
        let limit = page_limit(limit)?;
        // The cursor is the id of the previous page's last delivery; anything else would list
        // from an arbitrary place, so it must name one of this webhook's deliveries.
        let after = match cursor {
            Some(cursor) => Some(
                self.store
                    .get_delivery(cursor)
                    .await?
                    .filter(|delivery| delivery.webhook_id == webhook.id)
                    .ok_or_else(|| unknown_cursor("cursor"))?,
            ),
            None => None,
        };
        Ok(self
            .store
            .list_deliveries(&webhook.id, state, after.as_ref(), limit)
            .await?)
    }

    pub async fn get_delivery(
        &self,
        principal: &Principal,
        delivery_id: &str,
    ) -> Result<Delivery, Error> {
        principal.require_secret()?;
        self.store
            .get_delivery(delivery_id)
            .await?
            .filter(|delivery| delivery.program_id == principal.program_id)
            .ok_or(Error::NotFound("delivery"))
    }

    /// The request a delivery's next attempt sends, for the delivery log: method, URL, headers and
    /// body as the webhook is configured now (signatures carry the current time, so they differ
    /// from any earlier attempt's). `None` once the webhook is deleted or the event has expired
    /// from the outbox.
    pub async fn delivery_request(
        &self,
        principal: &Principal,
        delivery: &Delivery,
    ) -> Result<Option<OutgoingRequest>, Error> {
        principal.require_secret()?;
        let webhook = self
            .store
            .get_webhook(&delivery.webhook_id)
            .await?
            .filter(|webhook| webhook.program_id == principal.program_id);
        let (Some(webhook), Some(event)) =
            (webhook, self.store.get_event(&delivery.event_id).await?)
        else {
            return Ok(None);
        };
        let attempt = u32::try_from(delivery.attempts.len()).unwrap_or(u32::MAX);
        Ok(Some(build_request(
            &webhook,
            &event,
            attempt.saturating_add(1),
            self.clock.now(),
        )))
    }

    /// Sends a finished delivery again, starting a new round of its webhook's retry schedule.
    pub async fn retry_delivery(
        &self,
        principal: &Principal,
        delivery_id: &str,
    ) -> Result<Delivery, Error> {
        let delivery = self.get_delivery(principal, delivery_id).await?;
        if !delivery.state.is_final() {
            return Err(Error::conflict(
                "delivery_in_progress",
                "this delivery is still being attempted",
            ));
        }
        let webhook = self.get_webhook(principal, &delivery.webhook_id).await?;
        if !webhook.active {
            return Err(Error::conflict(
                "webhook_inactive",
                "activate the webhook before resending",
            ));
        }
        self.resend(delivery, self.clock.now()).await
    }

    /// Resends every failed delivery of the webhook created since `since`; returns how many.
    pub async fn recover(
        &self,
        principal: &Principal,
        webhook_id: &str,
        since: Timestamp,
    ) -> Result<usize, Error> {
        let webhook = self.get_webhook(principal, webhook_id).await?;
        if !webhook.active {
            return Err(Error::conflict(
                "webhook_inactive",
                "activate the webhook before recovering",
            ));
        }
        let failed = self
            .store
            .failed_deliveries_since(&webhook.id, since, RECOVER_BATCH)
            .await?;
        let mut resent = 0;
        for delivery in failed {
            match self.resend(delivery, self.clock.now()).await {
                Ok(_) => resent += 1,
                Err(Error::Conflict { .. }) => {} // resent concurrently by someone else
                Err(err) => return Err(err),
            }
        }
        Ok(resent)
    }

    async fn resend(&self, mut delivery: Delivery, now: Timestamp) -> Result<Delivery, Error> {
        delivery.restart(now);
        let expected_version = delivery.next_version();
        // Queue first: if the process dies before the update, the job finds the delivery final
        // and is dropped, and the caller's resend can simply be repeated.
        self.queue.enqueue(&delivery.job(), 0).await?;
        match self
            .store
            .update_delivery(&delivery, expected_version)
            .await
        {
            Ok(()) => Ok(delivery),
            Err(StoreError::VersionConflict) => Err(Error::conflict(
                "concurrent_update",
                "the delivery changed meanwhile; reload it and retry",
            )),
            Err(err) => Err(err.into()),
        }
    }

    /// Loads a webhook of the caller's program, applies `change`, writes it (retrying on conflicts).
    async fn change_webhook<F>(
        &self,
        principal: &Principal,
        webhook_id: &str,
        change: F,
    ) -> Result<Webhook, Error>
    where
        F: Fn(&mut Webhook, Timestamp) -> Result<(), Error>,
    {
        let change = &change;
        retry_on_conflict((), |()| async move {
            let mut webhook = self.get_webhook(principal, webhook_id).await?;
            change(&mut webhook, self.clock.now())?;
            let expected_version = webhook.next_version();
            match self
                .store
                .update_webhook(&webhook, expected_version, &[])
                .await
            {
                Err(StoreError::NotFound) => Err(Error::NotFound("webhook")),
                result => written(result, webhook),
            }
        })
        .await
    }
}
