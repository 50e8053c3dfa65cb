//! The use cases' common ground: [`Refwire`], the one type the HTTP layer and the workers call, with
//! the adapters a runtime plugs in ([`Deps`]) and the authenticated caller ([`Principal`]). Its use
//! cases live with their feature: `programs`, `referrals`, `events`, `webhooks`, `participants`,
//! `waitlists` (and `deliveries` for the fan-out and delivery workers' `Dispatcher`). Every decision
//! is made in this crate, so the Lambda functions and refwire-local behave identically over any store.

use crate::config::Config;
use crate::error::Error;
use crate::events::OutboxEvent;
use crate::ids::{Ids, ProgramId};
use crate::ports::{JobQueue, Store};
use crate::programs::KeyKind;
use crate::referrals::Change;
use crate::time::{Clock, Timestamp};
use std::sync::Arc;

pub const DEFAULT_PAGE_LIMIT: u32 = 25;
pub const MAX_PAGE_LIMIT: u32 = 100;

/// An authenticated caller: a key of one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub program_id: ProgramId,
    pub kind: KeyKind,
}

impl Principal {
    pub(crate) fn require_secret(&self) -> Result<(), Error> {
        match self.kind {
            KeyKind::Secret => Ok(()),
            KeyKind::Publishable | KeyKind::Inbound => Err(Error::Forbidden),
        }
    }
}

/// The adapters a runtime plugs in.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn Ids>,
}

pub struct Refwire {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) queue: Arc<dyn JobQueue>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn Ids>,
    pub(crate) config: Config,
}

impl Refwire {
    pub fn new(deps: Deps, config: Config) -> Self {
        Refwire {
            store: deps.store,
            queue: deps.queue,
            clock: deps.clock,
            ids: deps.ids,
            config,
        }
    }

    pub(crate) fn outbox_event(
        &self,
        program_id: &str,
        change: Change,
        now: Timestamp,
    ) -> OutboxEvent {
        OutboxEvent::new(
            self.ids.new_id("evt"),
            program_id,
            change.event,
            now,
            change.data,
        )
    }
}

/// A page cursor the API did not hand out (or that no longer marks a place).
pub(crate) fn unknown_cursor(field: &'static str) -> Error {
    Error::validation(field, "not a cursor this API returned")
}

/// `None` gives the default; anything outside 1 to the maximum is refused, as the API description
/// declares.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, Error> {
    match limit {
        None => Ok(DEFAULT_PAGE_LIMIT),
        Some(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(Error::validation(
            "limit",
            format!("must be between 1 and {MAX_PAGE_LIMIT}"),
        )),
    }
}
