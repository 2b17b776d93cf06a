//! Standard Webhooks signatures (<https://www.standardwebhooks.com>) for the
//! notifications sent to destinations' `webhook_url`s (docs/api.md).
//!
//! This module owns both sides of the scheme: [`sign`] produces the
//! `webhook-id`, `webhook-timestamp` and `webhook-signature` headers of one
//! delivery, and [`verify`] is what a receiver does with them (our tests'
//! receiver uses it; it is also the reference for users). Following the
//! standard exactly is the point: a receiver's existing Standard Webhooks or
//! Svix library must accept what we send.
//!
//! The signed content is `"{id}.{timestamp}.{body}"`, the MAC is
//! HMAC-SHA256 with the key decoded from `whsec_<base64>`, and the header is
//! `v1,<base64 MAC>`, possibly several space-separated ones while a key is
//! being rotated.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret as _, SecretBox};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::rotation::Rotating;

/// The decoded key of `WEBHOOK_SECRET` (`whsec_<base64>`).
#[derive(Clone)]
pub struct WebhookSecret(std::sync::Arc<SecretBox<Vec<u8>>>);

impl WebhookSecret {
    pub fn parse(raw: &str) -> Result<Self, String> {
        use base64::Engine as _;
        let encoded = raw
            .strip_prefix("whsec_")
            .ok_or("must be in the form whsec_<base64>")?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "must be in the form whsec_<base64> (the part after whsec_ is not valid base64)")?;
        if key.len() < 16 {
            return Err("must hold a key of at least 16 bytes".into());
        }
        Ok(Self(std::sync::Arc::new(SecretBox::new(Box::new(key)))))
    }

    /// The raw HMAC key.
    pub(crate) fn key(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// The version prefix of the symmetric (HMAC-SHA256) signature scheme.
const V1_PREFIX: &str = "v1,";

/// The values of the three headers of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`: the same for every retry of one event, so receivers can
    /// deduplicate.
    pub id: String,
    /// `webhook-timestamp`: unix seconds of this attempt.
    pub timestamp: i64,
    /// `webhook-signature`: `v1,<base64>`, one per secret, space-separated.
    pub signature: String,
}

/// The three headers for one delivery of `body`. Retries reuse `id` but sign
/// again with a fresh `timestamp`, so that receivers' replay window holds.
/// While the secret rotates, the body is signed with each value (the
/// current first), so that a receiver holding either verifies it.
pub fn sign(
    secrets: &Rotating<WebhookSecret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> SignedHeaders {
    let timestamp_text = timestamp.to_string();
    let mut signature = String::with_capacity(2 * (V1_PREFIX.len() + 45));
    for (_, secret) in secrets.values() {
        if !signature.is_empty() {
            signature.push(' ');
        }
        signature.push_str(V1_PREFIX);
        BASE64.encode_string(mac(secret, id, &timestamp_text, body), &mut signature);
    }
    SignedHeaders {
        id: id.to_owned(),
        timestamp,
        signature,
    }
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// One of the three headers is absent or empty; names the header.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a whole number of unix seconds.
    #[error("webhook-timestamp is not a unix timestamp in seconds")]
    BadTimestamp,
    /// Older than the tolerance: possibly a replay.
    #[error("webhook-timestamp is too old")]
    TooOld,
    /// Further in the future than the tolerance.
    #[error("webhook-timestamp is too far in the future")]
    TooNew,
    /// No `v1` signature in `webhook-signature` matches the content.
    #[error("no matching signature")]
    NoMatchingSignature,
}

/// What a receiver does with a delivery: checks that the three headers are
/// present, that `|now - timestamp| <= tolerance_secs`, and that at least one
/// `v1,` entry of the space-separated `signatures` matches `body`. Entries of
/// other versions or that are not base64 are skipped, not errors: the header
/// may legitimately carry schemes this receiver does not know.
///
/// `timestamp` and `signatures` are the header values as received, because
/// the MAC covers the timestamp exactly as it was sent.
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if id.is_empty() {
        return Err(VerifyError::MissingHeader("webhook-id"));
    }
    if timestamp.is_empty() {
        return Err(VerifyError::MissingHeader("webhook-timestamp"));
    }
    if signatures.trim().is_empty() {
        return Err(VerifyError::MissingHeader("webhook-signature"));
    }
    // Digits only: `i64::from_str` would also take a sign, and a timestamp
    // spelled differently from what was signed could never match anyway.
    if !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::BadTimestamp);
    }
    let sent_at: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    // Saturating: a hostile timestamp must not overflow the comparison.
    if now.saturating_sub(sent_at) > tolerance_secs {
        return Err(VerifyError::TooOld);
    }
    if sent_at.saturating_sub(now) > tolerance_secs {
        return Err(VerifyError::TooNew);
    }

    let expected = mac(secret, id, timestamp, body);
    // Every entry is compared in constant time and the results are combined
    // without short-circuiting, so timing says nothing about how close a
    // forged signature came.
    let matched = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix(V1_PREFIX))
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .fold(Choice::from(0), |matched, candidate| {
            matched | candidate.as_slice().ct_eq(expected.as_slice())
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// HMAC-SHA256 of `"{id}.{timestamp}.{body}"`, fed in pieces so that the body
/// is never copied.
fn mac(secret: &WebhookSecret, id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.key())
        .expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks reference vector (the same one the svix and
    /// standard-webhooks libraries test against).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const TOLERANCE: i64 = 300;

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    fn check(signatures: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
        verify(
            &secret(),
            ID,
            &TIMESTAMP.to_string(),
            signatures,
            body,
            now,
            TOLERANCE,
        )
    }

    #[test]
    fn signing_reproduces_the_reference_vector() {
        // Interoperability, not just self-consistency: a round trip through
        // our own verify would pass with the separator or key decoding wrong.
        let headers = sign(&Rotating::single(secret()), ID, TIMESTAMP, BODY);
        assert_eq!(
            headers,
            SignedHeaders {
                id: ID.into(),
                timestamp: TIMESTAMP,
                signature: SIGNATURE.into(),
            }
        );
    }

    #[test]
    fn the_reference_vector_verifies() {
        assert_eq!(check(SIGNATURE, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn what_we_sign_verifies_within_the_tolerance() {
        let body = br#"{"type":"call.ringing","data":{}}"#;
        let headers = sign(&Rotating::single(secret()), "msg_1", 1_700_000_000, body);
        let timestamp = headers.timestamp.to_string();
        for now in [
            1_700_000_000 - TOLERANCE,
            1_700_000_000,
            1_700_000_000 + TOLERANCE,
        ] {
            assert_eq!(
                verify(
                    &secret(),
                    &headers.id,
                    &timestamp,
                    &headers.signature,
                    body,
                    now,
                    TOLERANCE
                ),
                Ok(()),
                "now={now}"
            );
        }
    }

    #[test]
    fn a_tampered_body_fails() {
        assert_eq!(
            check(SIGNATURE, br#"{"test": 2432232315}"#, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn a_tampered_id_or_timestamp_fails() {
        let s = secret();
        let ts = TIMESTAMP.to_string();
        assert_eq!(
            verify(&s, "msg_other", &ts, SIGNATURE, BODY, TIMESTAMP, TOLERANCE),
            Err(VerifyError::NoMatchingSignature)
        );
        let later = (TIMESTAMP + 1).to_string();
        assert_eq!(
            verify(&s, ID, &later, SIGNATURE, BODY, TIMESTAMP, TOLERANCE),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn another_key_fails() {
        let other = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(
            verify(
                &other,
                ID,
                &TIMESTAMP.to_string(),
                SIGNATURE,
                BODY,
                TIMESTAMP,
                TOLERANCE
            ),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn old_and_future_timestamps_fail_before_the_signature_is_checked() {
        assert_eq!(
            check(SIGNATURE, BODY, TIMESTAMP + TOLERANCE + 1),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            check(SIGNATURE, BODY, TIMESTAMP - TOLERANCE - 1),
            Err(VerifyError::TooNew)
        );
        // Extremes do not overflow.
        assert_eq!(check(SIGNATURE, BODY, i64::MAX), Err(VerifyError::TooOld));
        assert_eq!(check(SIGNATURE, BODY, i64::MIN), Err(VerifyError::TooNew));
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for ts in [
            "abc",
            "-1614265330",
            "+1614265330",
            "1614265330.5",
            " 1614265330",
            "99999999999999999999",
        ] {
            assert_eq!(
                verify(&secret(), ID, ts, SIGNATURE, BODY, TIMESTAMP, TOLERANCE),
                Err(VerifyError::BadTimestamp),
                "{ts:?}"
            );
        }
    }

    #[test]
    fn missing_headers_are_named() {
        let s = secret();
        let ts = TIMESTAMP.to_string();
        assert_eq!(
            verify(&s, "", &ts, SIGNATURE, BODY, TIMESTAMP, TOLERANCE),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verify(&s, ID, "", SIGNATURE, BODY, TIMESTAMP, TOLERANCE),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
        assert_eq!(
            verify(&s, ID, &ts, "  ", BODY, TIMESTAMP, TOLERANCE),
            Err(VerifyError::MissingHeader("webhook-signature"))
        );
    }

    #[test]
    fn a_rotating_secret_signs_with_each_value_and_either_verifies() {
        let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let both = Rotating::parse(&format!("{SECRET},{other}"), WebhookSecret::parse).unwrap();
        let headers = sign(&both, ID, TIMESTAMP, BODY);
        let entries: Vec<&str> = headers.signature.split(' ').collect();
        assert_eq!(entries.len(), 2, "{}", headers.signature);
        // The current secret's signature first: the reference vector's.
        assert_eq!(entries[0], SIGNATURE);
        assert!(entries[1].starts_with(V1_PREFIX) && entries[1] != SIGNATURE);
        for receiver_secret in [SECRET, other] {
            let receiver_secret = WebhookSecret::parse(receiver_secret).unwrap();
            let ts = TIMESTAMP.to_string();
            assert_eq!(
                verify(
                    &receiver_secret,
                    ID,
                    &ts,
                    &headers.signature,
                    BODY,
                    TIMESTAMP,
                    TOLERANCE
                ),
                Ok(())
            );
        }
    }

    #[test]
    fn one_valid_signature_among_several_passes() {
        // As during a key rotation: the old key's signature, then ours.
        let rotated = format!("v1,Zm9yZ2VkIHNpZ25hdHVyZSBvZiB0aGlydHl0d28h {SIGNATURE}");
        assert_eq!(check(&rotated, BODY, TIMESTAMP), Ok(()));
        let last_first = format!("{SIGNATURE} v1,bm9wZQ==");
        assert_eq!(check(&last_first, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn garbage_entries_are_ignored_not_fatal() {
        let garbage = [
            "v1,",
            "v1,!!!not-base64!!!",
            "v1,bm9wZQ==",
            "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ",",
            "é,ü",
        ];
        for entry in garbage {
            assert_eq!(
                check(entry, BODY, TIMESTAMP),
                Err(VerifyError::NoMatchingSignature),
                "{entry:?}"
            );
        }
        let all = format!("{}  {SIGNATURE}\t", garbage.join(" "));
        assert_eq!(check(&all, BODY, TIMESTAMP), Ok(()));
    }
}
