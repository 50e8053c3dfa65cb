//! Waitlists (ReferralLoop): participants in a 1-based order. Joining appends; a referral moves the
//! referrer up by the waitlist's boost; an operator can move or remove a signup.
//!
//! The order is a total order of rank keys ([`rank`]): each signup holds a key, and its position is
//! one more than the number of keys before it, so a move rewrites one signup only. Every change to
//! a waitlist's order is one store transaction conditioned on the waitlist's version, so changes
//! to one waitlist are serialised and the positions their events report are exact.
//!
//! Events: `signup.created` (with its position), `signup.position_changed` for the signup that was
//! moved (a boost or an operator's move; the signups it passes shift by one without an event each,
//! which would be a storm), and `signup.deleted`.

pub mod rank;

use crate::conflicts::{Revision, Try, retry_on_conflict, written};
use crate::error::{Error, StoreError};
use crate::events::{self, OutboxEvent};
use crate::ids::{ParticipantId, ProgramId, ReferralCode, WaitlistId};
use crate::participants::NewParticipant;
use crate::referrals::Change;
use crate::service::{Principal, Refwire, page_limit, unknown_cursor};
use crate::time::{self, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const DEFAULT_BOOST: u32 = 1;
/// A boost reads the signups it passes in one go, so it is bounded.
pub const MAX_BOOST: u32 = 100;
/// Above every rank: where "before the end" starts.
pub const END_OF_ORDER: &str = "~";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waitlist {
    /// A UUID, as ReferralLoop's `waitlist_id`.
    pub id: WaitlistId,
    pub program_id: ProgramId,
    pub name: String,
    /// Positions a referrer moves up for each signup that joins with their code.
    pub boost: u32,
    pub signup_count: u64,
    #[serde(with = "time::millis")]
    pub created_at: Timestamp,
    /// Increases with every change to the waitlist's order.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signup {
    /// A UUID, as ReferralLoop's signup `id`.
    pub id: String,
    pub waitlist_id: WaitlistId,
    pub program_id: ProgramId,
    pub participant_id: ParticipantId,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The participant's own code: friends who join with it boost this signup.
    pub referral_code: ReferralCode,
    /// `<rank key>#<signup id>`: the byte order of ranks is the waitlist order.
    pub rank: String,
    #[serde(with = "time::millis")]
    pub created_at: Timestamp,
    pub version: u64,
}

impl Signup {
    fn rank_key(&self) -> &str {
        self.rank.split_once('#').map_or(&self.rank, |(key, _)| key)
    }
}

/// Ranks are index sort keys: DynamoDB allows 1024 bytes.
const MAX_RANK_BYTES: usize = 1024;

/// The rank of the signup `signup_id` placed between two neighbours' keys. Keys only grow when
/// the same gap is split thousands of times; past the limit the move is refused.
fn rank_between(
    low: Option<&Signup>,
    high: Option<&Signup>,
    signup_id: &str,
) -> Result<String, Error> {
    let key = rank::between(low.map(Signup::rank_key), high.map(Signup::rank_key));
    let rank = format!("{key}#{signup_id}");
    if rank.len() > MAX_RANK_BYTES {
        return Err(Error::conflict(
            "waitlist_gap_full",
            "no room is left between these two places; move one of the neighbours first",
        ));
    }
    Ok(rank)
}

/// One transaction on a waitlist's order: the waitlist (its count updated) with at most one signup
/// created, moved and deleted; the waitlist and the moved signup each at their next version.
#[derive(Debug, Clone)]
pub struct SignupChange {
    pub waitlist: Revision<Waitlist>,
    pub created: Option<Signup>,
    pub moved: Option<Revision<Signup>>,
    pub deleted: Option<Signup>,
    pub events: Vec<OutboxEvent>,
}

/// A signup with where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedSignup {
    pub signup: Signup,
    pub position: u64,
}

/// The waitlist use cases.
pub struct Waitlists<'a> {
    app: &'a Refwire,
}

impl Refwire {
    pub fn waitlists(&self) -> Waitlists<'_> {
        Waitlists { app: self }
    }
}

impl Waitlists<'_> {
    pub async fn create(
        &self,
        principal: &Principal,
        name: &str,
        boost: Option<u32>,
    ) -> Result<Waitlist, Error> {
        principal.require_secret()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "must be 1-200 printable characters",
            ));
        }
        let boost = boost.unwrap_or(DEFAULT_BOOST);
        if boost > MAX_BOOST {
            return Err(Error::validation(
                "boost",
                format!("must be between 0 and {MAX_BOOST} positions"),
            ));
        }
        let waitlist = Waitlist {
            id: self.app.ids.new_uuid().into(),
            program_id: principal.program_id.clone(),
            name: name.to_string(),
            boost,
            signup_count: 0,
            created_at: self.app.clock.now(),
            version: 1,
        };
        self.app.store.insert_waitlist(&waitlist).await?;
        Ok(waitlist)
    }

    pub async fn list(&self, principal: &Principal) -> Result<Vec<Waitlist>, Error> {
        principal.require_secret()?;
        Ok(self.app.store.list_waitlists(&principal.program_id).await?)
    }

    pub async fn get(&self, principal: &Principal, waitlist_id: &str) -> Result<Waitlist, Error> {
        principal.require_secret()?;
        self.waitlist(principal, waitlist_id).await
    }

    async fn waitlist(&self, principal: &Principal, waitlist_id: &str) -> Result<Waitlist, Error> {
        self.app
            .store
            .get_waitlist(&principal.program_id, waitlist_id)
            .await?
            .ok_or(Error::NotFound("waitlist"))
    }

    /// Signs a person up (joining the program as a participant if they are new); returns their
    /// signup and whether it is new. Any key may do this: it is what a public signup form calls.
    /// A signup whose participant was referred boosts the referrer's signup in the same waitlist.
    pub async fn join(
        &self,
        principal: &Principal,
        waitlist_id: &str,
        person: NewParticipant,
    ) -> Result<(PlacedSignup, bool), Error> {
        if person.email.is_none() {
            return Err(Error::validation("email", "email is required"));
        }
        self.waitlist(principal, waitlist_id).await?;
        let (participant, _) = self
            .app
            .participants()
            .join_with_any_key(principal, person)
            .await?;
        let (store, participant) = (&self.app.store, &participant);
        retry_on_conflict((), |()| async move {
            let waitlist = self.waitlist(principal, waitlist_id).await?;
            if let Some(existing) = store.find_signup(waitlist_id, &participant.id).await? {
                return Ok(Try::Done((self.placed(existing).await?, false)));
            }
            let now = self.app.clock.now();
            let last = store
                .signups_before(waitlist_id, END_OF_ORDER, 1)
                .await?
                .into_iter()
                .next();
            let id = self.app.ids.new_uuid();
            let signup = Signup {
                rank: rank_between(last.as_ref(), None, &id)?,
                id,
                waitlist_id: waitlist.id.clone(),
                program_id: waitlist.program_id.clone(),
                participant_id: participant.id.clone(),
                email: participant.email.clone(),
                name: participant.name.clone(),
                referral_code: participant.referral_code.clone(),
                created_at: now,
                version: 1,
            };
            let position = waitlist.signup_count + 1;
            let created = Change {
                event: events::SIGNUP_CREATED,
                data: json!({
                    "id": signup.id,
                    "email": signup.email,
                    "name": signup.name,
                    "position": position,
                    "referral_code": signup.referral_code,
                    "created_at": time::format(&now),
                }),
            };
            let mut events = vec![self.signup_event(&waitlist, created, now)];
            let boosted = match &participant.referred_by {
                Some(referrer) => self.boosted(&waitlist, referrer, now).await?,
                None => None,
            };
            let moved = boosted.map(|(moved, event)| {
                events.push(event);
                moved
            });
            let mut next = waitlist.clone();
            next.signup_count += 1;
            let change = SignupChange {
                waitlist: Revision::next(next),
                created: Some(signup.clone()),
                moved,
                deleted: None,
                events,
            };
            let placed = (PlacedSignup { signup, position }, true);
            match store.write_signups(&change).await {
                // The same person signed up meanwhile: the next try returns their signup.
                Err(StoreError::ParticipantExists) => Ok(Try::Again(())),
                result => written(result, placed),
            }
        })
        .await
    }

    /// The referrer's signup moved up by the waitlist's boost, with its event; `None` when the
    /// referrer has no signup in this waitlist, the boost is 0, or they are first already.
    async fn boosted(
        &self,
        waitlist: &Waitlist,
        referrer_id: &str,
        now: Timestamp,
    ) -> Result<Option<(Revision<Signup>, OutboxEvent)>, Error> {
        let store = &self.app.store;
        let Some(signup) = store.find_signup(&waitlist.id, referrer_id).await? else {
            return Ok(None);
        };
        let old = store.count_before(&waitlist.id, &signup.rank).await? + 1;
        let new = old.saturating_sub(u64::from(waitlist.boost)).max(1);
        if new == old {
            return Ok(None);
        }
        Ok(Some(self.moved(waitlist, signup, old, new, now).await?))
    }

    /// `signup` (now at `old`) placed at position `new`, with its `signup.position_changed` event.
    async fn moved(
        &self,
        waitlist: &Waitlist,
        mut signup: Signup,
        old: u64,
        new: u64,
        now: Timestamp,
    ) -> Result<(Revision<Signup>, OutboxEvent), Error> {
        let store = &self.app.store;
        let (low, high) = if new < old {
            // Between the signups now at new - 1 and new, which are all ahead of it.
            let passed = old - new;
            let ahead = store
                .signups_before(&waitlist.id, &signup.rank, page(passed + 1))
                .await?;
            let high = ahead.get(passed as usize - 1).cloned();
            let low = ahead.get(passed as usize).cloned();
            (low, high)
        } else {
            // Between the signups now at new and new + 1, which are all behind it.
            let behind = store.signups_from(&waitlist.id, new - 1, 2).await?;
            (behind.first().cloned(), behind.get(1).cloned())
        };
        signup.rank = rank_between(low.as_ref(), high.as_ref(), &signup.id)?;
        let change = Change {
            event: events::SIGNUP_POSITION_CHANGED,
            data: json!({
                "id": signup.id,
                "email": signup.email,
                "old_position": old,
                "new_position": new,
                "position_change": new as i64 - old as i64,
            }),
        };
        let event = self.signup_event(waitlist, change, now);
        Ok((Revision::next(signup), event))
    }

    async fn placed(&self, signup: Signup) -> Result<PlacedSignup, Error> {
        let position = self
            .app
            .store
            .count_before(&signup.waitlist_id, &signup.rank)
            .await?
            + 1;
        Ok(PlacedSignup { signup, position })
    }

    /// One signup with its current position; any key (a person reads their own place).
    pub async fn signup(
        &self,
        principal: &Principal,
        waitlist_id: &str,
        signup_id: &str,
    ) -> Result<PlacedSignup, Error> {
        self.waitlist(principal, waitlist_id).await?;
        let signup = self
            .app
            .store
            .get_signup(waitlist_id, signup_id)
            .await?
            .ok_or(Error::NotFound("signup"))?;
        self.placed(signup).await
    }

    /// Signups by position; the cursor is the position the next page starts after.
    pub async fn signups(
        &self,
        principal: &Principal,
        waitlist_id: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<PlacedSignup>, Option<String>), Error> {
        principal.require_secret()?;
        let limit = page_limit(limit)?;
        let offset = match cursor {
            None => 0,
            Some(cursor) => cursor
                .parse::<u64>()
                .map_err(|_| unknown_cursor("cursor"))?,
        };
        self.waitlist(principal, waitlist_id).await?;
        let mut rows = self
            .app
            .store
            .signups_from(waitlist_id, offset, limit + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let placed: Vec<PlacedSignup> = rows
            .into_iter()
            .zip(offset + 1..)
            .map(|(signup, position)| PlacedSignup { signup, position })
            .collect();
        let next = more.then(|| (offset + u64::from(limit)).to_string());
        Ok((placed, next))
    }

    /// Moves a signup to `position` (past the end means last).
    pub async fn move_to(
        &self,
        principal: &Principal,
        waitlist_id: &str,
        signup_id: &str,
        position: u64,
    ) -> Result<PlacedSignup, Error> {
        principal.require_secret()?;
        if position == 0 {
            return Err(Error::validation("position", "positions start at 1"));
        }
        let store = &self.app.store;
        retry_on_conflict((), |()| async move {
            let waitlist = self.waitlist(principal, waitlist_id).await?;
            let current = self.signup(principal, waitlist_id, signup_id).await?;
            let target = position.min(waitlist.signup_count);
            if target == current.position {
                return Ok(Try::Done(current));
            }
            let now = self.app.clock.now();
            let (moved, event) = self
                .moved(&waitlist, current.signup, current.position, target, now)
                .await?;
            let change = SignupChange {
                waitlist: Revision::next(waitlist.clone()),
                created: None,
                moved: Some(moved.clone()),
                deleted: None,
                events: vec![event],
            };
            let placed = PlacedSignup {
                signup: moved.record,
                position: target,
            };
            written(store.write_signups(&change).await, placed)
        })
        .await
    }

    /// Removes a signup (the participant stays); everyone behind moves up by one.
    pub async fn remove(
        &self,
        principal: &Principal,
        waitlist_id: &str,
        signup_id: &str,
    ) -> Result<(), Error> {
        principal.require_secret()?;
        let store = &self.app.store;
        retry_on_conflict((), |()| async move {
            let waitlist = self.waitlist(principal, waitlist_id).await?;
            let signup = store
                .get_signup(waitlist_id, signup_id)
                .await?
                .ok_or(Error::NotFound("signup"))?;
            let now = self.app.clock.now();
            let change = Change {
                event: events::SIGNUP_DELETED,
                data: json!({"id": signup.id, "email": signup.email}),
            };
            let mut next = waitlist.clone();
            next.signup_count = next.signup_count.saturating_sub(1);
            let change = SignupChange {
                events: vec![self.signup_event(&waitlist, change, now)],
                waitlist: Revision::next(next),
                created: None,
                moved: None,
                deleted: Some(signup),
            };
            written(store.write_signups(&change).await, ())
        })
        .await
    }

    /// An event about this waitlist: ReferralLoop subscriptions filter and envelope by its id.
    fn signup_event(&self, waitlist: &Waitlist, change: Change, now: Timestamp) -> OutboxEvent {
        let mut event = self.app.outbox_event(&waitlist.program_id, change, now);
        event.waitlist_id = Some(waitlist.id.clone());
        event
    }
}

/// A read size for `count` signups (boosts are bounded, so this never truncates).
fn page(count: u64) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}
