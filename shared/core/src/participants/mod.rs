//! Participants: the people of a program (Referral Factory's users, Refir's leads), each with a
//! profile and a referral code of their own.
//!
//! They are not a second referral system. A participant's referrals are ordinary referrals of the
//! referrer: joining with someone's code attaches the newcomer to the referrer's open referral by
//! reporting the program's first milestone, and qualifying reports the reward milestone, so the
//! lifecycle, its events, rewards, caps and expiry are the ones `referral.rs` defines.

use crate::conflicts::{Try, Versioned, retry_on_conflict, written};
use crate::error::{Error, StoreError};
use crate::events;
use crate::ids::{ParticipantId, ProgramId, ReferralCode, is_prefixed_ulid};
use crate::ports::ParticipantPage;
use crate::programs::ReferralSettings;
use crate::programs::{KeyKind, issue_key};
use crate::referrals::{Change, NewReferral, Referral, validate_user_id};
use crate::service::{Principal, Refwire, page_limit, unknown_cursor};
use crate::time::{self, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

const MAX_EMAIL_LENGTH: usize = 254;
const MAX_NAME_LENGTH: usize = 200;
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// `direct`: joined without a referral code; `referred`: with another participant's (or a
/// referral's) code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Joined without a referral code.
    Direct,
    /// Joined with another participant's (or a referral's) code.
    Referred,
}

impl Source {
    /// As Referral Factory's outbound webhooks write it (`source=Referred`).
    pub fn label(self) -> &'static str {
        match self {
            Source::Direct => "Direct",
            Source::Referred => "Referred",
        }
    }
}

/// Who someone is, as events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantSummary {
    pub id: ParticipantId,
    pub email: Option<String>,
    pub name: Option<String>,
    pub code: ReferralCode,
}

impl ParticipantSummary {
    /// How a message names the person: name, else email, else id.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// The stored participant. `version` increases with every write, including the referrer-count
/// increments other participants' joins make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    /// `par_<ulid>`.
    pub id: ParticipantId,
    pub program_id: ProgramId,
    /// The caller's own id for this person, unique in the program.
    pub user_id: Option<String>,
    /// Unique in the program, compared case-insensitively; kept as given.
    pub email: Option<String>,
    pub name: Option<String>,
    /// Their own code: others join with it.
    pub referral_code: ReferralCode,
    pub referral_url: String,
    /// The participant whose code they joined with.
    pub referred_by: Option<ParticipantId>,
    /// The code of the referral that links them to their referrer.
    pub referred_via: Option<ReferralCode>,
    pub source: Source,
    /// How many participants joined with their code.
    pub referrals_count: u64,
    pub qualified: bool,
    #[serde(with = "time::millis_option")]
    pub qualified_at: Option<Timestamp>,
    pub metadata: Option<serde_json::Value>,
    #[serde(with = "time::millis")]
    pub created_at: Timestamp,
    pub version: u64,
}

impl Participant {
    /// The id the referral lifecycle knows them by: their `user_id`, else their participant id.
    pub fn user_key(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.id)
    }

    pub fn summary(&self) -> ParticipantSummary {
        ParticipantSummary {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            code: self.referral_code.clone(),
        }
    }

    /// The whole profile as events carry it; `date` is the join day (Referral Factory's field).
    fn event_view(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "user_id": self.user_id,
            "email": self.email,
            "name": self.name,
            "code": self.referral_code,
            "url": self.referral_url,
            "source": self.source,
            "source_label": self.source.label(),
            "referred_by": self.referred_by,
            "referrals_count": self.referrals_count,
            "qualified": self.qualified,
            "date": self.created_at.format("%Y-%m-%d").to_string(),
            "created_at": time::format(&self.created_at),
        })
    }

    /// `participant.*` event data: the participant, their referrer (if any) and a sentence.
    fn change(
        &self,
        event: &'static str,
        referrer: Option<&ParticipantSummary>,
        message: String,
    ) -> Change {
        Change {
            event,
            data: json!({
                "participant": self.event_view(),
                "referrer": referrer,
                "message": message,
            }),
        }
    }
}

/// What a caller supplies to join a program.
#[derive(Debug, Clone, Default)]
pub struct NewParticipant {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub name: Option<String>,
    /// A participant's code or a referral code: who referred them.
    pub referral_code: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

impl NewParticipant {
    /// Validates and normalises (trims; the email's case is kept but compared lowercased).
    fn validated(mut self) -> Result<NewParticipant, Error> {
        self.email = self.email.map(|email| email.trim().to_string());
        self.name = self.name.map(|name| name.trim().to_string());
        if self.email.is_none() && self.user_id.is_none() {
            return Err(Error::validation(
                "email",
                "give an email, a user_id, or both",
            ));
        }
        if let Some(email) = &self.email {
            validate_email(email)?;
        }
        if let Some(user_id) = &self.user_id {
            validate_user_id("user_id", user_id)?;
        }
        if let Some(name) = &self.name
            && (name.is_empty() || name.chars().count() > MAX_NAME_LENGTH || has_control(name))
        {
            return Err(Error::validation(
                "name",
                "must be 1-200 printable characters",
            ));
        }
        if let Some(code) = &self.referral_code
            && !is_plausible_code(code)
        {
            return Err(Error::validation(
                "referral_code",
                "must be 1-64 letters and digits",
            ));
        }
        if let Some(metadata) = &self.metadata
            && (!metadata.is_object() || metadata.to_string().len() > MAX_METADATA_BYTES)
        {
            return Err(Error::validation(
                "metadata",
                "must be a JSON object of at most 16 KB",
            ));
        }
        Ok(self)
    }
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

fn validate_email(email: &str) -> Result<(), Error> {
    let well_formed = email.len() <= MAX_EMAIL_LENGTH
        && !has_control(email)
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if well_formed {
        Ok(())
    } else {
        Err(Error::validation(
            "email",
            "must be an email address such as ann@example.com",
        ))
    }
}

/// Emails are unique per program regardless of case.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Codes are letters and digits; anything else cannot be one, so it is refused before a lookup.
pub fn is_plausible_code(code: &str) -> bool {
    let code = code.trim();
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// How a participant is looked up besides by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantKey<'a> {
    /// Already lowercased with [`email_key`].
    Email(&'a str),
    UserId(&'a str),
    /// Already normalised (upper case).
    Code(&'a str),
}

/// The participant use cases, over the same adapters as the referral use cases they build on.
pub struct Participants<'a> {
    app: &'a Refwire,
}

impl Refwire {
    pub fn participants(&self) -> Participants<'_> {
        Participants { app: self }
    }
}

impl Participants<'_> {
    /// Joins the program; returns the participant and whether they are new. Joining again with the
    /// same email or user id returns the existing participant (and finishes attaching them to their
    /// referrer if an earlier attempt was cut short).
    pub async fn join(
        &self,
        principal: &Principal,
        request: NewParticipant,
    ) -> Result<(Participant, bool), Error> {
        principal.require_secret()?;
        self.join_with_any_key(principal, request).await
    }

    /// [`Participants::join`] for callers that already decided a publishable key may join (a
    /// waitlist signup form).
    pub(crate) async fn join_with_any_key(
        &self,
        principal: &Principal,
        request: NewParticipant,
    ) -> Result<(Participant, bool), Error> {
        let request = request.validated()?;
        let program = self.app.program(principal).await?;
        let (program, request) = (&program, &request);
        let settings = &program.settings;
        retry_on_conflict((), |()| async move {
            if let Some(existing) = self.existing(&program.id, request).await? {
                let attached = self.attach_to_referrer(existing, settings).await?;
                return Ok(Try::Done((attached, false)));
            }
            let referrer = match &request.referral_code {
                Some(code) => Some(self.referral_to_join(principal, code).await?),
                None => None,
            };
            if let (Some(user_id), Some(_)) = (&request.user_id, &referrer)
                && self
                    .app
                    .store
                    .find_referral_by_referee(&program.id, user_id)
                    .await?
                    .is_some()
            {
                return Err(StoreError::RefereeTaken.into());
            }
            let now = self.app.clock.now();
            let code = self
                .app
                .ids
                .referral_code(usize::from(settings.code_length));
            let participant = Participant {
                id: self.app.ids.new_id("par").into(),
                program_id: program.id.clone(),
                user_id: request.user_id.clone(),
                email: request.email.clone(),
                name: request.name.clone(),
                referral_url: settings.referral_url(&code),
                referral_code: code.into(),
                referred_by: referrer
                    .as_ref()
                    .and_then(|referral| referral.referrer_participant.as_ref())
                    .map(|summary| summary.id.clone()),
                referred_via: referrer
                    .as_ref()
                    .map(|referral| referral.referral_code.clone()),
                source: if referrer.is_some() {
                    Source::Referred
                } else {
                    Source::Direct
                },
                referrals_count: 0,
                qualified: false,
                qualified_at: None,
                metadata: request.metadata.clone(),
                created_at: now,
                version: 1,
            };
            let referrer_summary = referrer
                .as_ref()
                .and_then(|referral| referral.referrer_participant.clone());
            let message = match &referrer {
                Some(referral) => format!(
                    "{} joined, referred by {}.",
                    participant.summary().label(),
                    referral
                        .referrer_participant
                        .as_ref()
                        .map_or_else(|| referral.referrer_id.clone(), ParticipantSummary::label)
                ),
                None => format!("{} joined.", participant.summary().label()),
            };
            let change = participant.change(
                events::PARTICIPANT_CREATED,
                referrer_summary.as_ref(),
                message,
            );
            let event = self.app.outbox_event(&program.id, change, now);
            match self
                .app
                .store
                .insert_participant(&participant, std::slice::from_ref(&event))
                .await
            {
                Ok(()) => {
                    let attached = self.attach_to_referrer(participant, settings).await?;
                    Ok(Try::Done((attached, true)))
                }
                // Someone joined with the same email or user id meanwhile (the next try returns
                // them), or the generated code collided.
                Err(StoreError::ParticipantExists | StoreError::CodeTaken) => Ok(Try::Again(())),
                Err(StoreError::NotFound) => Err(Error::validation(
                    "referral_code",
                    "the participant who owns this code was deleted",
                )),
                Err(err) => Err(err.into()),
            }
        })
        .await
    }

    /// The participant this request names by email or user id, if any; a request whose email and
    /// user id belong to two different participants is refused.
    async fn existing(
        &self,
        program_id: &str,
        request: &NewParticipant,
    ) -> Result<Option<Participant>, Error> {
        let store = &self.app.store;
        let by_email = match &request.email {
            Some(email) => {
                store
                    .find_participant(program_id, ParticipantKey::Email(&email_key(email)))
                    .await?
            }
            None => None,
        };
        let by_user = match &request.user_id {
            Some(user_id) => {
                store
                    .find_participant(program_id, ParticipantKey::UserId(user_id))
                    .await?
            }
            None => None,
        };
        match (by_email, by_user) {
            (Some(first), Some(second)) if first.id != second.id => Err(Error::conflict(
                "participant_mismatch",
                "this email and this user_id belong to two different participants",
            )),
            (Some(found), _) | (None, Some(found)) => Ok(Some(found)),
            (None, None) => Ok(None),
        }
    }

    /// The referral a newcomer joins through: for a participant's code, that referrer's open
    /// referral (made now if they have none, counting towards their cap); for a referral code,
    /// that referral.
    async fn referral_to_join(&self, principal: &Principal, code: &str) -> Result<Referral, Error> {
        let code = ReferralCode::typed(code);
        let program_id = &principal.program_id;
        if let Some(referrer) = self
            .app
            .store
            .find_participant(program_id, ParticipantKey::Code(&code))
            .await?
        {
            let request = NewReferral {
                user_id: referrer.user_key().to_string(),
                user_name: referrer.name.clone(),
                referrer: Some(referrer.summary()),
                ..NewReferral::default()
            };
            let (referral, _) = self.app.create_referral(principal, request).await?;
            return Ok(referral);
        }
        match self.app.store.find_referral(program_id, &code).await? {
            Some(referral) => Ok(referral),
            None => Err(Error::validation(
                "referral_code",
                "no participant or referral in this program has this code",
            )),
        }
    }

    /// Attaches a referred participant to their referral by reporting the program's first
    /// milestone with them as the referee. If another newcomer took the referrer's open referral
    /// first, the participant moves to the referrer's next open referral.
    async fn attach_to_referrer(
        &self,
        participant: Participant,
        settings: &ReferralSettings,
    ) -> Result<Participant, Error> {
        let first = settings
            .referral_milestones
            .first()
            .cloned()
            .unwrap_or_else(|| settings.referral_reward_milestone.clone());
        let (first, summary) = (&first, &participant.summary());
        let user_key = &participant.user_key().to_string();
        let store = &self.app.store;
        // Each try hands on the participant as last written (or read again after a conflict).
        retry_on_conflict(participant, |participant| async move {
            let Some(via) = participant.referred_via.clone() else {
                return Ok(Try::Done(participant));
            };
            let attached = self
                .app
                .change_referral(&participant.program_id, &via, |referral, now| {
                    referral.record_participant_milestone(settings, first, user_key, summary, now)
                })
                .await;
            let referrer_id = match (attached, &participant.referred_by) {
                (Ok(_), _) => return Ok(Try::Done(participant)),
                (
                    Err(Error::Conflict {
                        code: "referee_mismatch",
                        ..
                    }),
                    Some(referrer_id),
                ) => referrer_id.clone(),
                (Err(err), _) => return Err(err),
            };
            // Another newcomer took the referrer's open referral first: move to their next one.
            let referrer = store
                .get_participant(&participant.program_id, &referrer_id)
                .await?
                .ok_or(Error::NotFound("referrer"))?;
            let principal = Principal {
                program_id: participant.program_id.clone(),
                kind: KeyKind::Secret,
            };
            let next = self
                .referral_to_join(&principal, &referrer.referral_code)
                .await?;
            let mut moved = participant.clone();
            moved.referred_via = Some(next.referral_code);
            let expected_version = moved.next_version();
            Ok(Try::Again(
                match store
                    .update_participant(&moved, expected_version, &[])
                    .await
                {
                    Ok(()) => moved,
                    Err(StoreError::VersionConflict) => store
                        .get_participant(&participant.program_id, &participant.id)
                        .await?
                        .ok_or(Error::NotFound("participant"))?,
                    Err(err) => return Err(err.into()),
                },
            ))
        })
        .await
    }

    pub async fn get(&self, principal: &Principal, id: &str) -> Result<Participant, Error> {
        principal.require_secret()?;
        self.app
            .store
            .get_participant(&principal.program_id, id)
            .await?
            .ok_or(Error::NotFound("participant"))
    }

    /// Looks a participant up by email or code (at most one matches), or lists them newest first.
    pub async fn list(
        &self,
        principal: &Principal,
        email: Option<&str>,
        code: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ParticipantPage, Error> {
        principal.require_secret()?;
        let limit = page_limit(limit)?;
        let program_id = &principal.program_id;
        let store = &self.app.store;
        let found = match (email, code) {
            (Some(_), Some(_)) => {
                return Err(Error::validation(
                    "code",
                    "search by email or by code, not both",
                ));
            }
            (Some(email), None) => {
                let email = email_key(email);
                store
                    .find_participant(program_id, ParticipantKey::Email(&email))
                    .await?
            }
            (None, Some(code)) => {
                if !is_plausible_code(code) {
                    return Err(Error::validation("code", "must be 1-64 letters and digits"));
                }
                let code = ReferralCode::typed(code);
                store
                    .find_participant(program_id, ParticipantKey::Code(&code))
                    .await?
            }
            (None, None) => {
                if cursor.is_some_and(|cursor| !is_prefixed_ulid(cursor, "par")) {
                    return Err(unknown_cursor("cursor"));
                }
                return Ok(store.list_participants(program_id, cursor, limit).await?);
            }
        };
        Ok(ParticipantPage {
            participants: found.into_iter().collect(),
            next_cursor: None,
        })
    }

    /// Qualifies a referred participant: reports the reward milestone on their referral (which
    /// completes it, with its events and rewards) and marks them qualified. Repeating it returns
    /// the same result.
    pub async fn qualify(&self, principal: &Principal, id: &str) -> Result<Participant, Error> {
        let participant = self.get(principal, id).await?;
        self.qualify_participant(participant).await
    }

    /// Issues the program's inbound token (Referral Factory's inbound webhook URL), replacing the
    /// previous one at once; returns the token, shown only now (it is stored as a hash).
    pub async fn rotate_inbound_token(&self, principal: &Principal) -> Result<String, Error> {
        principal.require_secret()?;
        let issued = issue_key(
            &principal.program_id,
            KeyKind::Inbound,
            self.app.clock.now(),
        );
        self.app
            .store
            .replace_inbound_key(&issued.record)
            .await
            .map_err(|err| match err {
                StoreError::NotFound => Error::NotFound("program"),
                other => other.into(),
            })?;
        Ok(issued.plaintext)
    }

    /// `POST /webhook/{token}/qualify`: qualifies the participant with `code` in the token's
    /// program. A token that is not a current inbound token is `NotFound`, like an unknown route.
    pub async fn qualify_inbound(&self, token: &str, code: &str) -> Result<Participant, Error> {
        let principal = match self.app.principal_of(token).await {
            Ok(principal) if principal.kind == KeyKind::Inbound => principal,
            Ok(_) | Err(Error::Unauthorized) => return Err(Error::NotFound("route")),
            Err(err) => return Err(err),
        };
        self.qualify_by_code(&principal.program_id, code).await
    }

    /// Qualifies the participant with this code.
    async fn qualify_by_code(&self, program_id: &str, code: &str) -> Result<Participant, Error> {
        if !is_plausible_code(code) {
            return Err(Error::validation("code", "must be 1-64 letters and digits"));
        }
        let participant = self
            .app
            .store
            .find_participant(program_id, ParticipantKey::Code(&ReferralCode::typed(code)))
            .await?
            .ok_or(Error::NotFound("participant"))?;
        self.qualify_participant(participant).await
    }

    async fn qualify_participant(&self, participant: Participant) -> Result<Participant, Error> {
        let program_id = participant.program_id.clone();
        let Some(via) = participant.referred_via.clone() else {
            return Err(Error::conflict(
                "not_referred",
                "only a referred participant can qualify; this one joined directly",
            ));
        };
        let settings = self
            .app
            .store
            .get_program(&program_id)
            .await?
            .ok_or(Error::NotFound("program"))?
            .settings;
        // First make sure the referral knows them (a join cut short may not have attached them).
        let participant = self.attach_to_referrer(participant, &settings).await?;
        let via = participant.referred_via.clone().unwrap_or(via);
        let user_key = participant.user_key().to_string();
        let summary = participant.summary();
        let referral = self
            .app
            .change_referral(&program_id, &via, |referral, now| {
                referral.record_participant_milestone(
                    &settings,
                    &settings.referral_reward_milestone,
                    &user_key,
                    &summary,
                    now,
                )
            })
            .await?;
        let (program_id, participant, summary, referral) =
            (&program_id, &participant, &summary, &referral);
        retry_on_conflict((), |()| async move {
            let mut current = self
                .app
                .store
                .get_participant(program_id, &participant.id)
                .await?
                .ok_or(Error::NotFound("participant"))?;
            if current.qualified {
                return Ok(Try::Done(current));
            }
            let now = self.app.clock.now();
            current.qualified = true;
            current.qualified_at = Some(now);
            let expected_version = current.next_version();
            let message = format!(
                "{} qualified: referral {} is complete.",
                summary.label(),
                referral.referral_code
            );
            let change = current.change(
                events::PARTICIPANT_QUALIFIED,
                referral.referrer_participant.as_ref(),
                message,
            );
            let event = self.app.outbox_event(program_id, change, now);
            let result = self
                .app
                .store
                .update_participant(&current, expected_version, &[event])
                .await;
            written(result, current)
        })
        .await
    }

    /// Deletes a participant (their referrals stay, as history); emits `participant.deleted`.
    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<(), Error> {
        let participant = self.get(principal, id).await?;
        let now = self.app.clock.now();
        let message = format!("{} was removed.", participant.summary().label());
        let change = participant.change(events::PARTICIPANT_DELETED, None, message);
        let event = self.app.outbox_event(&participant.program_id, change, now);
        if self
            .app
            .store
            .delete_participant(&participant, &[event])
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound("participant"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> NewParticipant {
        NewParticipant {
            email: Some(" Ann@Example.com ".into()),
            name: Some("Ann".into()),
            ..NewParticipant::default()
        }
    }

    #[test]
    fn a_join_needs_an_email_or_a_user_id_and_sane_fields() {
        let ok = request().validated().unwrap();
        assert_eq!(ok.email.as_deref(), Some("Ann@Example.com"));
        assert_eq!(email_key(ok.email.as_deref().unwrap()), "ann@example.com");

        let field = |request: NewParticipant| match request.validated() {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert_eq!(field(NewParticipant::default()), Some("email"));
        for bad in ["ann", "ann@", "@example.com", "a b@example.com", "a@b@c"] {
            let mut bad_email = request();
            bad_email.email = Some(bad.into());
            assert_eq!(field(bad_email), Some("email"), "{bad}");
        }
        let mut bad_name = request();
        bad_name.name = Some("Ann\u{0}".into());
        assert_eq!(field(bad_name), Some("name"));
        let mut bad_code = request();
        bad_code.referral_code = Some("ABC-123".into());
        assert_eq!(field(bad_code), Some("referral_code"));
        let mut bad_metadata = request();
        bad_metadata.metadata = Some(json!([1]));
        assert_eq!(field(bad_metadata), Some("metadata"));
        let mut blank_user = request();
        blank_user.user_id = Some(" ".into());
        assert_eq!(field(blank_user), Some("user_id"));
    }

    /// Referral Factory's documented example of an outbound webhook (a GET with the fields in the
    /// query string), made from a participant.created event with the same people in it.
    #[test]
    fn a_field_map_reproduces_referral_factorys_outbound_example() {
        use crate::deliveries::outgoing::build_request;
        use crate::webhooks::url_rules::TargetPolicy;
        use crate::webhooks::{EnvelopeStyle, HttpMethod, Webhook, WebhookFields};
        use chrono::TimeZone;
        const EXAMPLE: &str = "referrer_id=261470&referrer_code=zgLAYb&referrer_first_name=Jessica&referrer_email=support%2Bjessica%40referral-factory.com&id=261471&code=zruTPh&first_name=Byron&email=support%2Bbyron%40referral-factory.com&url=https%3A%2F%2Fwebhooks.referral-factory.com%2FzruTPh%2Fjoin&source=Referred&date=2022-06-09&referrals_count=0&campaign_id=4815";
        let joined = chrono::Utc.with_ymd_and_hms(2022, 6, 9, 12, 0, 0).unwrap();
        let byron = Participant {
            id: "261471".into(),
            program_id: "prg_1".into(),
            user_id: None,
            email: Some("support+byron@referral-factory.com".into()),
            name: Some("Byron".into()),
            referral_code: "zruTPh".into(),
            referral_url: "https://webhooks.referral-factory.com/zruTPh/join".into(),
            referred_by: Some("261470".into()),
            referred_via: Some("R1".into()),
            source: Source::Referred,
            referrals_count: 0,
            qualified: false,
            qualified_at: None,
            metadata: None,
            created_at: joined,
            version: 1,
        };
        let jessica = ParticipantSummary {
            id: "261470".into(),
            email: Some("support+jessica@referral-factory.com".into()),
            name: Some("Jessica".into()),
            code: "zgLAYb".into(),
        };
        let change = byron.change(events::PARTICIPANT_CREATED, Some(&jessica), String::new());
        let event = crate::events::OutboxEvent::new(
            "evt_1".into(),
            "prg_1",
            change.event,
            joined,
            change.data,
        );
        let field_map = json!({
            "referrer.id": "referrer_id", "referrer.code": "referrer_code",
            "referrer.name": "referrer_first_name", "referrer.email": "referrer_email",
            "participant.id": "id", "participant.code": "code", "participant.name": "first_name",
            "participant.email": "email", "participant.url": "url",
            "participant.source_label": "source", "participant.date": "date",
            "participant.referrals_count": "referrals_count",
        });
        let fields = WebhookFields {
            name: Some("Referral Factory".into()),
            url: Some("https://hooks.example.com/new-user".into()),
            events: Some(vec![events::PARTICIPANT_CREATED.into()]),
            method: Some(HttpMethod::Get),
            field_map: Some(Some(serde_json::from_value(field_map).unwrap())),
            hidden_fields: Some([("campaign_id".to_string(), "4815".to_string())].into()),
            ..WebhookFields::default()
        };
        let webhook = Webhook::create(
            fields,
            "wh_1".into(),
            "prg_1".into(),
            crate::deliveries::signing::generate_signing_secret(),
            EnvelopeStyle::Refwire,
            crate::deliveries::retry::RetrySchedule::default(),
            TargetPolicy::Strict,
            joined,
        )
        .unwrap();
        let request = build_request(&webhook, &event, 1, joined);
        assert_eq!(
            request.url,
            format!("https://hooks.example.com/new-user?{EXAMPLE}")
        );
        assert!(request.body.is_empty());
    }

    #[test]
    fn labels_prefer_the_name_then_the_email_then_the_id() {
        let mut summary = ParticipantSummary {
            id: "par_1".into(),
            email: Some("ann@example.com".into()),
            name: Some("Ann".into()),
            code: "ABC".into(),
        };
        assert_eq!(summary.label(), "Ann");
        summary.name = None;
        assert_eq!(summary.label(), "ann@example.com");
        summary.email = None;
        assert_eq!(summary.label(), "par_1");
    }
}
