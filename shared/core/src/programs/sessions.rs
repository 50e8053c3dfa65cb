//! Dashboard sessions: a secret key, pasted once into the sign-in form, becomes a signed, expiring
//! cookie, so the browser never holds the key itself.
//!
//! The cookie reads `v1.<key id>.<expiry ms>.<signature>`. The signature is an HMAC-SHA256 keyed
//! by the stored hash of the secret key it was opened with, so a session needs no state of its own,
//! works the same on every Lambda instance, and ends when that key is revoked. Whoever could forge
//! one could read the key table, or already holds the key.
//!
//! Every request a session makes also carries a CSRF token derived from the session by another
//! HMAC: a page may show it, since it cannot be turned back into the cookie.

use crate::error::Error;
use crate::programs::{ApiKeyRecord, KeyKind};
use crate::service::{Principal, Refwire};
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A session lasts a working day; signing in again starts a new one.
pub const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(12);
const VERSION: &str = "v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardSession {
    /// The cookie's value.
    pub token: String,
    pub csrf_token: String,
    pub expires_at: Timestamp,
    pub principal: Principal,
}

impl Refwire {
    /// Opens a session for a secret key (publishable keys cannot sign in).
    pub async fn open_dashboard_session(&self, presented: &str) -> Result<DashboardSession, Error> {
        let record = self.key_record_of(presented).await?;
        if record.kind != KeyKind::Secret {
            return Err(Error::Unauthorized);
        }
        let expires_at = self.clock.now() + SESSION_LIFETIME;
        let claims = format!(
            "{VERSION}.{}.{}",
            record.key_id,
            expires_at.timestamp_millis()
        );
        let token = format!("{claims}.{}", sign(&record, "session", &claims));
        Ok(DashboardSession {
            csrf_token: sign(&record, "csrf", &token),
            token,
            expires_at,
            principal: Principal {
                program_id: record.program_id,
                kind: KeyKind::Secret,
            },
        })
    }

    /// The session a cookie stands for: refused when malformed, forged, expired, or when its key
    /// has been revoked.
    pub async fn dashboard_session(&self, token: &str) -> Result<DashboardSession, Error> {
        let (claims, signature) = token.rsplit_once('.').ok_or(Error::Unauthorized)?;
        let mut parts = claims.split('.');
        let (Some(VERSION), Some(key_id), Some(expiry), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Unauthorized);
        };
        let expires_at = expiry
            .parse::<i64>()
            .ok()
            .and_then(Timestamp::from_timestamp_millis)
            .filter(|expires_at| *expires_at > self.clock.now())
            .ok_or(Error::Unauthorized)?;
        let record = self
            .store
            .find_api_key(key_id)
            .await?
            .filter(|record| record.kind == KeyKind::Secret)
            .ok_or(Error::Unauthorized)?;
        let expected = sign(&record, "session", claims);
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return Err(Error::Unauthorized);
        }
        Ok(DashboardSession {
            csrf_token: sign(&record, "csrf", token),
            token: token.to_string(),
            expires_at,
            principal: Principal {
                program_id: record.program_id,
                kind: KeyKind::Secret,
            },
        })
    }
}

/// HMAC-SHA256 under the key's stored hash, with a purpose label so a session signature is never
/// also a valid CSRF token.
fn sign(record: &ApiKeyRecord, purpose: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(record.key_hash.as_bytes()).expect("HMAC takes any key");
    mac.update(purpose.as_bytes());
    mac.update(b"\n");
    mac.update(message.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}
