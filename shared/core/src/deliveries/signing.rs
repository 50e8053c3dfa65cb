//! Webhook signatures, two schemes on every delivery:
//! - `X-Webhook-Signature`: lowercase hex HMAC-SHA256 keyed by the whole secret string over the exact
//!   bytes sent, which is what Tolinku's receivers (`crypto.createHmac('sha256', secret)`) verify;
//! - Standard Webhooks (`webhook-signature: v1,<base64>`): keyed by the base64-decoded part of the
//!   secret after `whsec_`, over `{id}.{timestamp}.{body}`; space-separated during secret rotation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const SECRET_PREFIX: &str = "whsec_";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("a signing secret starts with whsec_")]
    MissingPrefix,
    #[error("a signing secret is whsec_ followed by base64")]
    InvalidBase64,
    #[error("a signing secret needs key bytes after whsec_")]
    Empty,
}

/// `whsec_` + base64 of 32 random bytes.
pub fn generate_signing_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Tolinku-compatible: hex HMAC-SHA256 keyed by the full secret string (prefix included).
pub fn legacy_hex_signature(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac(secret.as_bytes(), &[body]))
}

/// The decoded key of a `whsec_` secret, for Standard Webhooks signatures.
#[derive(Clone)]
pub struct SigningKey {
    key: Vec<u8>,
}

impl SigningKey {
    pub fn parse(secret: &str) -> Result<SigningKey, SigningError> {
        let encoded = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SigningError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SigningError::InvalidBase64)?;
        if key.is_empty() {
            return Err(SigningError::Empty);
        }
        Ok(SigningKey { key })
    }

    fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let timestamp = timestamp.to_string();
        hmac(
            &self.key,
            &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        )
    }
}

/// One `v1,<base64>` signature.
pub fn standard_signature(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(key.sign(msg_id, timestamp, body)))
}

/// The `webhook-signature` header value: one signature per key, space-separated.
pub fn standard_signature_header(
    keys: &[SigningKey],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    keys.iter()
        .map(|key| standard_signature(key, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1` signature in `header_value` was made with `secret` (constant-time compare).
pub fn verify_standard(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header_value: &str,
) -> bool {
    let Ok(key) = SigningKey::parse(secret) else {
        return false;
    };
    let expected = key.sign(msg_id, timestamp, body);
    header_value
        .split(' ')
        .filter_map(|signature| signature.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| bool::from(candidate.as_slice().ct_eq(&expected)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's reference vector (used by its official libraries' tests).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        let key = SigningKey::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            standard_signature(&key, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD),
            SPEC_SIGNATURE
        );
        assert!(verify_standard(
            SPEC_SECRET,
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_PAYLOAD,
            SPEC_SIGNATURE
        ));
    }

    #[test]
    fn standard_verification_rejects_tampering() {
        let other = generate_signing_secret();
        let cases = [
            (
                SPEC_SECRET,
                SPEC_MSG_ID,
                SPEC_TIMESTAMP,
                &br#"{"test": 2432232315}"#[..],
            ),
            (SPEC_SECRET, "msg_other", SPEC_TIMESTAMP, SPEC_PAYLOAD),
            (SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP + 1, SPEC_PAYLOAD),
            (other.as_str(), SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD),
        ];
        for (secret, id, timestamp, body) in cases {
            assert!(!verify_standard(
                secret,
                id,
                timestamp,
                body,
                SPEC_SIGNATURE
            ));
        }
        assert!(!verify_standard(
            SPEC_SECRET,
            SPEC_MSG_ID,
            SPEC_TIMESTAMP,
            SPEC_PAYLOAD,
            "v2,abc v1,!!"
        ));
    }

    #[test]
    fn rotation_signs_with_both_secrets() {
        let (old, new) = (generate_signing_secret(), generate_signing_secret());
        let keys = [
            SigningKey::parse(&new).unwrap(),
            SigningKey::parse(&old).unwrap(),
        ];
        let header = standard_signature_header(&keys, "evt_1", 1700000000, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify_standard(&old, "evt_1", 1700000000, b"{}", &header));
        assert!(verify_standard(&new, "evt_1", 1700000000, b"{}", &header));
    }

    #[test]
    fn legacy_signature_is_hex_hmac_of_the_full_secret() {
        // RFC 4231-style check against a well-known HMAC-SHA256 value.
        assert_eq!(
            legacy_hex_signature("key", b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn generated_secrets_parse_and_bad_ones_do_not() {
        let secret = generate_signing_secret();
        assert!(secret.starts_with("whsec_") && secret.len() == 6 + 44);
        assert!(SigningKey::parse(&secret).is_ok());
        assert_eq!(
            SigningKey::parse("sk_abc").err(),
            Some(SigningError::MissingPrefix)
        );
        assert_eq!(
            SigningKey::parse("whsec_***").err(),
            Some(SigningError::InvalidBase64)
        );
        assert_eq!(SigningKey::parse("whsec_").err(), Some(SigningError::Empty));
    }
}
