//! Programs: their keys (secret, publishable, inbound; the operator key), their settings, and the
//! dashboard's sessions. The use cases authenticate callers and manage programs, keys and settings.

mod program;
pub mod sessions;
mod settings;

pub use program::*;
pub use settings::*;

use crate::error::{Error, StoreError};
use crate::service::{Principal, Refwire};

/// A program just created, with the only copy of its keys' plaintext.
#[derive(Debug)]
pub struct CreatedProgram {
    pub program: Program,
    pub secret_key: String,
    pub publishable_key: String,
}

impl Refwire {
    // --- authentication ---

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
            id: self.ids.new_id("prg").into(),
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
}
