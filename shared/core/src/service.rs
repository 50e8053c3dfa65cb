//! The use cases. The HTTP layer parses input and calls these; every decision is made here, so the
//! Lambda and refwire-local behave identically over any store.

use crate::clock::Clock;
use crate::config::Config;
use crate::conflicts::{Try, retry_on_conflict, written};
use crate::error::{Error, StoreError};
use crate::events::OutboxEvent;
use crate::ids::{Ids, is_prefixed_ulid, normalize_code};
use crate::ports::{JobQueue, ReferralCounts, ReferralPage, ReferralQuery, ReferrerTally, Store};
use crate::program::{ApiKeyRecord, KeyKind, PresentedKey, Program, issue_key};
use crate::referral::{Change, NewReferral, Referral, RewardSide};
use crate::settings::{ReferralSettings, SettingsUpdate};
use crate::time::Timestamp;
use std::sync::Arc;

pub const DEFAULT_PAGE_LIMIT: u32 = 25;
pub const MAX_PAGE_LIMIT: u32 = 100;

/// An authenticated caller: a key of one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub program_id: String,
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

/// A program just created, with the only copy of its keys' plaintext.
#[derive(Debug)]
pub struct CreatedProgram {
    pub program: Program,
    pub secret_key: String,
    pub publishable_key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReferralStats {
    pub counts: ReferralCounts,
    /// completed / total, 0 when there are none; rounded to 4 decimals.
    pub conversion_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardEntry {
    pub rank: u32,
    pub tally: ReferrerTally,
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

    // --- authentication -------------------------------------------------------------------------

    /// The caller of an API key (secret or publishable).
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, Error> {
        let principal = self.principal_of(presented).await?;
        if principal.kind == KeyKind::Inbound {
            return Err(Error::Unauthorized);
        }
        Ok(principal)
    }

    /// The program a presented key of any kind belongs to, with the key's kind.
    pub(crate) async fn principal_of(&self, presented: &str) -> Result<Principal, Error> {
        let record = self.key_record_of(presented).await?;
        Ok(Principal {
            program_id: record.program_id,
            kind: record.kind,
        })
    }

    /// The stored record of a presented key, once the key is checked against it.
    pub(crate) async fn key_record_of(&self, presented: &str) -> Result<ApiKeyRecord, Error> {
        let key = PresentedKey::parse(presented).ok_or(Error::Unauthorized)?;
        self.store
            .find_api_key(key.key_id)
            .await?
            .filter(|record| key.matches(record))
            .ok_or(Error::Unauthorized)
    }

    pub fn authenticate_operator(&self, presented: &str) -> Result<(), Error> {
        match &self.config.operator_key {
            Some(key) if key.verify(presented) => Ok(()),
            _ => Err(Error::Unauthorized),
        }
    }

    // --- programs and keys (operator) -----------------------------------------------------------

    pub async fn create_program(
        &self,
        name: &str,
        settings: Option<SettingsUpdate>,
    ) -> Result<CreatedProgram, Error> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(Error::validation("name", "must be 1-200 characters"));
        }
        let settings = match settings {
            Some(update) => ReferralSettings::default().updated(update)?,
            None => ReferralSettings::default(),
        };
        let now = self.clock.now();
        let program = Program {
            id: self.ids.new_id("prg"),
            name: name.to_string(),
            settings,
            created_at: now,
        };
        let secret = issue_key(&program.id, KeyKind::Secret, now);
        let publishable = issue_key(&program.id, KeyKind::Publishable, now);
        self.store
            .create_program(&program, &[secret.record, publishable.record])
            .await?;
        Ok(CreatedProgram {
            program,
            secret_key: secret.plaintext,
            publishable_key: publishable.plaintext,
        })
    }

    /// Issues another key for a program; returns `(key_id, plaintext)`.
    pub async fn issue_api_key(
        &self,
        program_id: &str,
        kind: KeyKind,
    ) -> Result<(String, String), Error> {
        let issued = issue_key(program_id, kind, self.clock.now());
        self.store
            .insert_api_key(&issued.record)
            .await
            .map_err(|err| match err {
                StoreError::NotFound => Error::NotFound("program"),
                other => other.into(),
            })?;
        Ok((issued.record.key_id, issued.plaintext))
    }

    pub async fn revoke_api_key(&self, program_id: &str, key_id: &str) -> Result<(), Error> {
        if self.store.delete_api_key(program_id, key_id).await? {
            Ok(())
        } else {
            Err(Error::NotFound("API key"))
        }
    }

    // --- settings -------------------------------------------------------------------------------

    pub async fn program(&self, principal: &Principal) -> Result<Program, Error> {
        self.store
            .get_program(&principal.program_id)
            .await?
            .ok_or(Error::NotFound("program"))
    }

    pub async fn settings(&self, principal: &Principal) -> Result<ReferralSettings, Error> {
        principal.require_secret()?;
        Ok(self.program(principal).await?.settings)
    }

    pub async fn update_settings(
        &self,
        principal: &Principal,
        update: SettingsUpdate,
    ) -> Result<ReferralSettings, Error> {
        principal.require_secret()?;
        let settings = self.program(principal).await?.settings.updated(update)?;
        self.store
            .save_settings(&principal.program_id, &settings)
            .await?;
        Ok(settings)
    }

    // --- referrals ------------------------------------------------------------------------------

    /// Returns the referral and whether it was newly created (an open code is reused otherwise).
    pub async fn create_referral(
        &self,
        principal: &Principal,
        request: NewReferral,
    ) -> Result<(Referral, bool), Error> {
        request.validate()?;
        let program = self.program(principal).await?;
        let settings = &program.settings;
        if !settings.enabled {
            return Err(Error::conflict(
                "referrals_disabled",
                "referrals are disabled for this program",
            ));
        }
        let (program, request) = (&program, &request);
        retry_on_conflict((), |()| async move {
            let now = self.clock.now();
            let open = self
                .store
                .find_open_referral(&program.id, &request.user_id)
                .await?;
            if let Some(open) = open {
                if !open.is_lapsed(now) {
                    return Ok(Try::Done((open, false)));
                }
                // Expire it (emitting referral.expired) so that a fresh code can take its place.
                self.change_referral(&program.id, &open.referral_code, |_, _| Ok(Vec::new()))
                    .await?;
                return Ok(Try::Again(()));
            }
            let code = self.ids.referral_code(usize::from(settings.code_length));
            let (referral, change) = Referral::open(
                request.clone(),
                settings,
                self.ids.new_id("ref"),
                program.id.clone(),
                code,
                now,
            );
            let event = self.outbox_event(&program.id, change, now);
            match self
                .store
                .insert_referral(&referral, &event, settings.referral_max_per_user, now)
                .await
            {
                Ok(()) => Ok(Try::Done((referral, true))),
                // Another request opened a referral for this referrer meanwhile (the next try
                // returns it), or the generated code collided.
                Err(StoreError::CodeTaken | StoreError::OpenReferralExists) => Ok(Try::Again(())),
                Err(err) => Err(err.into()),
            }
        })
        .await
    }

    /// Reading a referral applies a due expiry (and emits `referral.expired`) first.
    pub async fn get_referral(&self, principal: &Principal, code: &str) -> Result<Referral, Error> {
        self.change_referral(&principal.program_id, code, |_, _| Ok(Vec::new()))
            .await
    }

    pub async fn report_milestone(
        &self,
        principal: &Principal,
        code: &str,
        milestone: &str,
        referee: Option<&str>,
    ) -> Result<Referral, Error> {
        principal.require_secret()?;
        let settings = self.program(principal).await?.settings;
        self.change_referral(&principal.program_id, code, |referral, now| {
            referral.record_milestone(&settings, milestone, referee, now)
        })
        .await
    }

    pub async fn claim_reward(
        &self,
        principal: &Principal,
        code: &str,
        side: RewardSide,
    ) -> Result<Referral, Error> {
        principal.require_secret()?;
        self.change_referral(&principal.program_id, code, |referral, _| {
            Ok(referral.claim_reward(side)?.into_iter().collect())
        })
        .await
    }

    pub async fn list_referrals(
        &self,
        principal: &Principal,
        query: &ReferralQuery,
        limit: Option<u32>,
    ) -> Result<ReferralPage, Error> {
        principal.require_secret()?;
        let limit = page_limit(limit)?;
        // The cursor is a referral id, a position in the id order both stores list by; checking
        // its shape is enough (a well-formed id of a deleted referral still marks a place), and
        // anything else would compare as text and list an arbitrary part of the program.
        if let Some(cursor) = &query.cursor
            && !is_prefixed_ulid(cursor, "ref")
        {
            return Err(unknown_cursor("cursor"));
        }
        Ok(self
            .store
            .list_referrals(&principal.program_id, query, limit, self.clock.now())
            .await?)
    }

    pub async fn stats(&self, principal: &Principal) -> Result<ReferralStats, Error> {
        principal.require_secret()?;
        let counts = self
            .store
            .count_referrals(&principal.program_id, self.clock.now())
            .await?;
        let conversion_rate = if counts.total == 0 {
            0.0
        } else {
            (counts.completed as f64 / counts.total as f64 * 10_000.0).round() / 10_000.0
        };
        Ok(ReferralStats {
            counts,
            conversion_rate,
        })
    }

    pub async fn leaderboard(
        &self,
        principal: &Principal,
        limit: Option<u32>,
    ) -> Result<Vec<LeaderboardEntry>, Error> {
        let limit = page_limit(limit)?;
        let tallies = self
            .store
            .top_referrers(&principal.program_id, limit, self.clock.now())
            .await?;
        Ok(tallies
            .into_iter()
            .zip(1..)
            .map(|(tally, rank)| LeaderboardEntry { rank, tally })
            .collect())
    }

    pub async fn list_events(
        &self,
        principal: &Principal,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<OutboxEvent>, Error> {
        principal.require_secret()?;
        let limit = page_limit(limit)?;
        // The embedded store finds the place by the event's sequence number, so `after` must name
        // an event of the program that is still kept; otherwise the whole outbox would be replayed.
        if let Some(after) = after {
            let kept = self
                .store
                .get_event(after)
                .await?
                .is_some_and(|event| event.program_id == principal.program_id);
            if !kept {
                return Err(Error::validation(
                    "after",
                    "must be the id of an event of this program (events are kept 30 days)",
                ));
            }
        }
        Ok(self
            .store
            .list_events(&principal.program_id, after, limit)
            .await?)
    }

    /// The events a referral caused, oldest first (a referral's lifecycle has a few dozen at most).
    pub async fn referral_events(
        &self,
        principal: &Principal,
        code: &str,
    ) -> Result<Vec<OutboxEvent>, Error> {
        principal.require_secret()?;
        let referral = self.get_referral(principal, code).await?;
        Ok(self
            .store
            .referral_events(
                &principal.program_id,
                &referral.referral_code,
                MAX_PAGE_LIMIT,
            )
            .await?)
    }

    /// Expires up to `batch` lapsed referrals across all programs, each emitting `referral.expired`.
    /// Returns how many this call expired.
    pub async fn sweep_expired(&self, batch: u32) -> Result<usize, Error> {
        let lapsed = self.store.lapsed_referrals(self.clock.now(), batch).await?;
        let mut expired = 0;
        for referral in lapsed {
            let before = referral.status;
            let after = self
                .change_referral(&referral.program_id, &referral.referral_code, |_, _| {
                    Ok(Vec::new())
                })
                .await?;
            if after.status != before {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Loads a referral, applies a due expiry, runs `mutation`, and writes the result with its events
    /// if anything changed, retrying from a fresh read when another writer got there first.
    /// When the mutation refuses, a due expiry is still persisted before the refusal is returned.
    pub(crate) async fn change_referral<F>(
        &self,
        program_id: &str,
        code: &str,
        mutation: F,
    ) -> Result<Referral, Error>
    where
        F: Fn(&mut Referral, Timestamp) -> Result<Vec<Change>, Error>,
    {
        let (code, mutation) = (&normalize_code(code), &mutation);
        retry_on_conflict((), |()| async move {
            let now = self.clock.now();
            let original = self
                .store
                .find_referral(program_id, code)
                .await?
                .ok_or(Error::NotFound("referral"))?;
            let mut referral = original.clone();
            let mut changes: Vec<Change> = referral.expire_if_lapsed(now).into_iter().collect();
            let outcome = mutation(&mut referral, now);
            if let Ok(more) = &outcome {
                changes.extend(more.iter().cloned());
            }
            if referral == original {
                return outcome.map(|_| Try::Done(referral));
            }
            referral.version += 1;
            let events: Vec<OutboxEvent> = changes
                .into_iter()
                .map(|change| self.outbox_event(program_id, change, now))
                .collect();
            let result = self.store.update_referral(&referral, &events).await;
            // The mutation's own refusal (say, a milestone out of order) is reported once the
            // expiry it came with is written.
            match written(result, referral)? {
                Try::Done(referral) => outcome.map(|_| Try::Done(referral)),
                Try::Again(()) => Ok(Try::Again(())),
            }
        })
        .await
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
