//! Identifier and code generation.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Referral-code alphabet without look-alikes (0/O, 1/I/L), so codes survive being read aloud or retyped.
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// The id port: lexicographically time-ordered ids (ULIDs) with a type prefix, and referral codes.
pub trait Ids: Send + Sync {
    fn new_id(&self, prefix: &str) -> String;
    fn referral_code(&self, length: usize) -> String;
    /// A random (version 4) UUID, for ids that ReferralLoop's payloads show as UUIDs.
    fn new_uuid(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

pub struct RandomIds;

impl Ids for RandomIds {
    fn new_id(&self, prefix: &str) -> String {
        // Monotonic within a millisecond, so ids created in a row sort in creation order (lists
        // page newest first by id); on the astronomically rare overflow, fall back to a fresh one.
        static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
        let id = GENERATOR
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .generate()
            .unwrap_or_else(|_| ulid::Ulid::new());
        format!("{prefix}_{id}")
    }

    fn referral_code(&self, length: usize) -> String {
        let mut rng = rand::rng();
        (0..length)
            .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
            .collect()
    }
}

/// Random URL-safe token characters for API key material.
pub fn random_token(length: usize) -> String {
    const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..length)
        .map(|_| TOKEN_ALPHABET[rng.random_range(0..TOKEN_ALPHABET.len())] as char)
        .collect()
}

/// Whether `id` is an id `RandomIds::new_id(prefix)` could have made: the prefix, `_`, and a ULID
/// written as the ulid crate writes it (upper case), since ids are compared as text.
pub fn is_prefixed_ulid(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|text| {
            ulid::Ulid::from_string(text).is_ok_and(|ulid| ulid.to_string() == text)
        })
}

/// An identifier with a type of its own, so that one kind of id cannot be passed where another is
/// meant. Stored and sent as a plain string; reads as `&str` wherever one is expected.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }

        string_id!(@common $name);
    };
    (@common $name:ident) => {
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

string_id!(
    /// A program's id: `prg_<ULID>`.
    ProgramId
);
string_id!(
    /// A webhook's id: `wh_<ULID>`, or `sub_<ULID>` for a ReferralLoop subscription.
    WebhookId
);

string_id!(
    /// A participant's id: `par_<ULID>`.
    ParticipantId
);
string_id!(
    /// A waitlist's id: `wl_<ULID>`.
    WaitlistId
);
string_id!(
    /// An outbox event's id: `evt_<ULID>`, in the order the events were written.
    EventId
);
string_id!(
    /// A delivery's id: `dlv_`, then its event's ULID and a digest of its event and webhook ids (see
    /// [`crate::deliveries::delivery_id`]).
    DeliveryId
);

string_id!(
    /// A referral code. Codes are matched case-insensitively: one a person typed becomes a
    /// `ReferralCode` through [`ReferralCode::typed`].
    ReferralCode
);

impl ReferralCode {
    /// A code as a person typed it, normalised: trimmed and upper-cased.
    pub fn typed(text: &str) -> ReferralCode {
        ReferralCode(text.trim().to_ascii_uppercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_only_the_unambiguous_alphabet() {
        let code = RandomIds.referral_code(64);
        assert_eq!(code.len(), 64);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        for ambiguous in ['0', 'O', '1', 'I', 'L'] {
            assert!(!CODE_ALPHABET.contains(&(ambiguous as u8)));
        }
    }

    #[test]
    fn only_ids_as_generated_are_prefixed_ulids() {
        let id = RandomIds.new_id("ref");
        assert!(is_prefixed_ulid(&id, "ref"));
        assert!(!is_prefixed_ulid(&id, "evt"));
        assert!(!is_prefixed_ulid(&id.to_lowercase(), "ref"));
        assert!(!is_prefixed_ulid(&format!("{id}0"), "ref"));
        assert!(!is_prefixed_ulid("ref_garbage", "ref"));
        assert!(!is_prefixed_ulid("ref", "ref"));
    }

    #[test]
    fn ids_are_prefixed_and_time_ordered() {
        let first = RandomIds.new_id("evt");
        assert!(first.starts_with("evt_") && first.len() == 30, "{first}");
        // Many in the same millisecond still come out in order.
        let ids: Vec<String> = (0..1000).map(|_| RandomIds.new_id("evt")).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(first < ids[0]);
    }

    #[test]
    fn typed_codes_are_normalised_and_ids_serialise_as_plain_strings() {
        assert_eq!(ReferralCode::typed("  xytf3dcca3 "), "XYTF3DCCA3");
        let program: ProgramId = serde_json::from_str("\"prg_1\"").unwrap();
        assert_eq!(program, "prg_1");
        assert_eq!(serde_json::to_string(&program).unwrap(), "\"prg_1\"");
        // Read where a `&str` is expected, compared and displayed as the text itself.
        let text: &str = &program;
        assert_eq!(text, "prg_1");
        assert_eq!(WebhookId::from("wh_1").to_string(), "wh_1");
    }
}
