//! Programs (tenants) and API keys.
//!
//! A key reads `rw_sec_<key id>_<secret>` (or `rw_pub_...`). Only its SHA-256 is stored; it is found by
//! its key id and its hash compared in constant time, so neither the store nor timing reveals a key.

use crate::ids::ProgramId;
use crate::programs::ReferralSettings;
use crate::time::{self, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub id: ProgramId,
    pub name: String,
    pub settings: ReferralSettings,
    #[serde(with = "time::millis")]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Server-side: everything in its program.
    Secret,
    /// Safe to ship in a client app: create/get referrals and read the leaderboard.
    Publishable,
    /// The secret in a program's inbound webhook URL (`/webhook/<token>/qualify`): it can only
    /// qualify participants, and is no API key.
    Inbound,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "rw_sec_",
            KeyKind::Publishable => "rw_pub_",
            KeyKind::Inbound => "rw_in_",
        }
    }
}

/// What the store keeps of a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub program_id: ProgramId,
    pub kind: KeyKind,
    /// Lowercase hex SHA-256 of the whole key string.
    pub key_hash: String,
    #[serde(with = "time::millis")]
    pub created_at: Timestamp,
}

/// A freshly generated key: the plaintext is returned to the caller once, the record is stored.
pub struct IssuedKey {
    pub plaintext: String,
    pub record: ApiKeyRecord,
}

const KEY_ID_LENGTH: usize = 12;
const KEY_SECRET_LENGTH: usize = 32;

pub fn issue_key(program_id: &str, kind: KeyKind, now: Timestamp) -> IssuedKey {
    let key_id = crate::ids::random_token(KEY_ID_LENGTH).to_ascii_lowercase();
    let plaintext = format!(
        "{}{key_id}_{}",
        kind.prefix(),
        crate::ids::random_token(KEY_SECRET_LENGTH)
    );
    IssuedKey {
        record: ApiKeyRecord {
            key_id,
            program_id: program_id.into(),
            kind,
            key_hash: sha256_hex(&plaintext),
            created_at: now,
        },
        plaintext,
    }
}

/// A presented key split into its parts, before it is checked against the store.
#[derive(Debug, PartialEq)]
pub struct PresentedKey<'a> {
    pub kind: KeyKind,
    pub key_id: &'a str,
    raw: &'a str,
}

impl<'a> PresentedKey<'a> {
    pub fn parse(raw: &'a str) -> Option<Self> {
        let (kind, rest) = [KeyKind::Secret, KeyKind::Publishable, KeyKind::Inbound]
            .into_iter()
            .find_map(|kind| raw.strip_prefix(kind.prefix()).map(|rest| (kind, rest)))?;
        let (key_id, secret) = rest.split_once('_')?;
        let well_formed = key_id.len() == KEY_ID_LENGTH
            && secret.len() == KEY_SECRET_LENGTH
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        well_formed.then_some(PresentedKey { kind, key_id, raw })
    }

    /// True when this key is the one the record was issued for.
    pub fn matches(&self, record: &ApiKeyRecord) -> bool {
        let presented = sha256_hex(self.raw);
        record.kind == self.kind
            && bool::from(presented.as_bytes().ct_eq(record.key_hash.as_bytes()))
    }
}

/// The operator key (from the environment or refwire-local's data file) guards program creation.
#[derive(Clone)]
pub struct OperatorKey {
    hash: String,
}

pub const OPERATOR_KEY_PREFIX: &str = "rw_op_";

impl OperatorKey {
    /// Generates a new operator key; returns the plaintext (shown once) and the verifier to keep.
    pub fn generate() -> (String, OperatorKey) {
        let plaintext = format!("{OPERATOR_KEY_PREFIX}{}", crate::ids::random_token(40));
        let key = OperatorKey::from_plaintext(&plaintext);
        (plaintext, key)
    }

    pub fn from_plaintext(plaintext: &str) -> OperatorKey {
        OperatorKey {
            hash: sha256_hex(plaintext),
        }
    }

    pub fn from_hash(hash: String) -> OperatorKey {
        OperatorKey { hash }
    }

    /// The verifier for a key known only by its SHA-256 (lowercase hex, as `sha256sum` prints it),
    /// so a deployment need not hold the key itself; `None` unless it is 64 hex digits.
    pub fn from_sha256_hex(hash: &str) -> Option<OperatorKey> {
        let hash = hash.trim().to_ascii_lowercase();
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(OperatorKey { hash })
    }

    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn verify(&self, presented: &str) -> bool {
        bool::from(sha256_hex(presented).as_bytes().ct_eq(self.hash.as_bytes()))
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_parse_and_match_only_their_record() {
        let now = chrono::Utc::now();
        let secret = issue_key("prg_1", KeyKind::Secret, now);
        let publishable = issue_key("prg_1", KeyKind::Publishable, now);
        assert!(secret.plaintext.starts_with("rw_sec_"));
        assert!(publishable.plaintext.starts_with("rw_pub_"));
        assert!(!secret.record.key_hash.contains(&secret.plaintext));

        let presented = PresentedKey::parse(&secret.plaintext).unwrap();
        assert_eq!(presented.key_id, secret.record.key_id);
        assert!(presented.matches(&secret.record));
        assert!(!presented.matches(&publishable.record));

        let mut tampered = secret.plaintext.clone();
        tampered.pop();
        tampered.push('#');
        assert!(PresentedKey::parse(&tampered).is_none());
        assert!(PresentedKey::parse("rw_sec_short_x").is_none());
        assert!(PresentedKey::parse("Bearer rw_sec_").is_none());
    }

    #[test]
    fn an_operator_key_known_by_its_sha256_verifies_the_key() {
        let (plaintext, key) = OperatorKey::generate();
        let by_hash = OperatorKey::from_sha256_hex(&key.hash().to_ascii_uppercase()).unwrap();
        assert!(by_hash.verify(&plaintext));
        assert!(!by_hash.verify("rw_op_wrong"));
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63)] {
            assert!(OperatorKey::from_sha256_hex(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn operator_key_verifies_only_itself() {
        let (plaintext, key) = OperatorKey::generate();
        assert!(key.verify(&plaintext));
        assert!(!key.verify("rw_op_wrong"));
        assert!(OperatorKey::from_hash(key.hash().to_string()).verify(&plaintext));
    }
}
