//! Telnyx's request signature: Ed25519 over `<timestamp>|<raw body>`, the
//! signature in `telnyx-signature-ed25519` (base64 of 64 bytes), the Unix
//! seconds in `telnyx-timestamp`, verified with the account's public key
//! (base64 of 32 bytes). As the official libraries do, a timestamp more than
//! 300 s from now is refused before the signature is looked at, and both
//! lengths are checked before verifying.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::domain::time::Timestamp;
use crate::providers::SignatureError;

/// How far a request's timestamp may be from now, either way.
pub(crate) const TOLERANCE_SECS: i64 = 300;

/// The public key from its base64 form (Mission Control → Keys).
pub(crate) fn parse_public_key(base64: &str) -> Result<VerifyingKey, String> {
    let bytes = BASE64
        .decode(base64.trim())
        .map_err(|_| "must be the base64 of an Ed25519 public key".to_owned())?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "must be 32 bytes (base64 of an Ed25519 public key)".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "is not a valid Ed25519 public key".to_owned())
}

/// The signed message: the timestamp's text, `|`, the body's bytes.
fn message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    message
}

/// The base64 signature Telnyx would send (tests and the simulator play
/// Telnyx with a key of their own).
pub fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    BASE64.encode(key.sign(&message(timestamp, body)).to_bytes())
}

/// Checks a request's headers against its raw body. Fails closed: a
/// missing or blank header is `Missing`, an unreadable one `Mismatch`.
pub fn verify(
    key: &VerifyingKey,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), SignatureError> {
    let (timestamp, signature) = (present(timestamp)?, present(signature)?);
    let seconds: i64 = timestamp.parse().map_err(|_| SignatureError::Mismatch)?;
    // `abs_diff`: the distance from a far-off timestamp (the header is the
    // sender's to choose) may not fit in an i64.
    if (now.unix_millis() / 1000).abs_diff(seconds) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let bytes = BASE64
        .decode(signature)
        .map_err(|_| SignatureError::Mismatch)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::Mismatch)?;
    key.verify_strict(&message(timestamp, body), &Signature::from_bytes(&bytes))
        .map_err(|_| SignatureError::Mismatch)
}

/// A header's value, or `Missing` when absent or blank.
fn present(header: Option<&str>) -> Result<&str, SignatureError> {
    header
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Derived from RFC 8032 §7.1 test 1's key.
    const PUBLIC_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const TIMESTAMP: &str = "1700000000";
    const BODY: &str = "AccountSid=acc&CallSid=v3%3Aabc&From=%2B15551112222&To=%2B15553334444";
    const SIGNATURE: &str =
        "yDWzbo/n29v/+pCaqkcszB9Dq12N9Df7HpMeVfZJs9ID26/2Tf8LaAu1/GjkblflLuUcmKuudeh0QY62SbJ6DA==";
    /// RFC 8032 §7.1 test 1's secret key.
    const SECRET: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(seconds * 1000).unwrap()
    }

    fn check(timestamp: &str, signature: &str, body: &str, now: i64) -> Result<(), SignatureError> {
        let key = parse_public_key(PUBLIC_KEY).unwrap();
        verify(
            &key,
            Some(timestamp),
            Some(signature),
            body.as_bytes(),
            at(now),
        )
    }

    #[test]
    fn the_published_vector_verifies() {
        assert_eq!(check(TIMESTAMP, SIGNATURE, BODY, 1_700_000_000), Ok(()));
    }

    #[test]
    fn signing_with_the_vectors_secret_key_gives_the_vectors_signature() {
        let key = SigningKey::from_bytes(&SECRET);
        assert_eq!(BASE64.encode(key.verifying_key().to_bytes()), PUBLIC_KEY);
        assert_eq!(sign(&key, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
    }

    #[test]
    fn a_tampered_body_timestamp_or_signature_is_refused() {
        let now = 1_700_000_000;
        let tampered_body = BODY.replace("abc", "abd");
        assert_eq!(
            check(TIMESTAMP, SIGNATURE, &tampered_body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("1700000001", SIGNATURE, BODY, now),
            Err(SignatureError::Mismatch)
        );
        let mut flipped = BASE64.decode(SIGNATURE).unwrap();
        flipped[10] ^= 1;
        assert_eq!(
            check(TIMESTAMP, &BASE64.encode(flipped), BODY, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(TIMESTAMP, "c2hvcnQ=", BODY, now),
            Err(SignatureError::Mismatch),
            "64 bytes"
        );
        assert_eq!(
            check("soon", SIGNATURE, BODY, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_timestamp_more_than_300_s_from_now_is_stale() {
        assert_eq!(check(TIMESTAMP, SIGNATURE, BODY, 1_700_000_300), Ok(()));
        assert_eq!(check(TIMESTAMP, SIGNATURE, BODY, 1_699_999_700), Ok(()));
        assert_eq!(
            check(TIMESTAMP, SIGNATURE, BODY, 1_700_000_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(TIMESTAMP, SIGNATURE, BODY, 1_699_999_699),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_timestamp_at_the_ends_of_the_i64_range_is_stale() {
        // The distance from now overflowed an i64 here (a panic in debug
        // builds; `i64::MIN` wrapped into the window in release ones).
        for timestamp in [i64::MIN, i64::MIN + 1, -9_000_000_000_000_000_000, i64::MAX] {
            assert_eq!(
                check(&timestamp.to_string(), SIGNATURE, BODY, 1_700_000_000),
                Err(SignatureError::Stale),
                "{timestamp}"
            );
        }
    }

    #[test]
    fn missing_headers_are_refused() {
        let key = parse_public_key(PUBLIC_KEY).unwrap();
        let now = at(1_700_000_000);
        assert_eq!(
            verify(&key, None, Some(SIGNATURE), BODY.as_bytes(), now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(&key, Some(TIMESTAMP), Some(" "), BODY.as_bytes(), now),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn only_a_32_byte_key_in_base64_is_a_public_key() {
        assert!(parse_public_key("not base64!").is_err());
        assert!(parse_public_key("c2hvcnQ=").is_err());
        assert!(parse_public_key(PUBLIC_KEY).is_ok());
    }
}
