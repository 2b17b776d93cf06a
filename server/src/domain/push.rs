//! A destination's Web Push subscription (docs/api.md): a browser's
//! `PushSubscription` (its push service's endpoint, its P-256 key and auth
//! secret), parsed once, at the edge. Its id comes from its endpoint, so
//! that a browser that registers the same subscription again replaces it.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use url::Url;

use super::error::FieldError;
use super::ids::DestinationId;
use super::time::Timestamp;
use super::webhook_target::{TargetPolicy, parse_webhook_url};

/// How many push subscriptions one destination keeps: a new one beyond
/// them replaces the oldest.
pub const MAX_PER_DESTINATION: usize = 5;

/// The prefix of a push subscription's id.
const ID_PREFIX: &str = "psub_";

/// One browser's push subscription, for one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    /// `psub_` and 22 base64url characters, from the endpoint.
    pub id: String,
    pub destination_id: DestinationId,
    /// Where the push service takes pushes for this browser.
    pub endpoint: Url,
    /// The browser's P-256 key, uncompressed (65 bytes), base64url.
    pub p256dh: String,
    /// The browser's auth secret (16 bytes), base64url.
    pub auth: String,
    pub created_at: Timestamp,
}

impl PushSubscription {
    /// A browser's `PushSubscription` for `destination`, checked: the
    /// endpoint follows the `webhook_url` rules (https to a public host;
    /// private or plain http only with `ALLOW_PRIVATE_WEBHOOKS`), `p256dh`
    /// is a 65-byte uncompressed point, `auth` is 16 bytes.
    pub fn parse(
        destination_id: DestinationId,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        policy: TargetPolicy,
        now: Timestamp,
    ) -> Result<Self, FieldError> {
        let endpoint = parse_webhook_url(endpoint, policy)
            .map_err(|problem| FieldError::new("endpoint", problem))?;
        if endpoint.scheme() != "https" && policy == TargetPolicy::PublicOnly {
            return Err(FieldError::new("endpoint", "must be an https:// URL"));
        }
        let key = decode(p256dh)
            .filter(|k| k.len() == 65 && k[0] == 0x04)
            .ok_or_else(|| {
                FieldError::new(
                    "keys.p256dh",
                    "must be a P-256 public key: 65 bytes (uncompressed), base64url",
                )
            })?;
        let secret = decode(auth)
            .filter(|a| a.len() == 16)
            .ok_or_else(|| FieldError::new("keys.auth", "must be 16 bytes, base64url"))?;
        let digest = Sha256::digest(endpoint.as_str().as_bytes());
        Ok(Self {
            id: format!("{ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(&digest[..16])),
            destination_id,
            endpoint,
            p256dh: URL_SAFE_NO_PAD.encode(key),
            auth: URL_SAFE_NO_PAD.encode(secret),
            created_at: now,
        })
    }

    /// The browser's key, as the encryption takes it.
    pub fn key(&self) -> Option<Vec<u8>> {
        decode(&self.p256dh)
    }

    /// The browser's auth secret.
    pub fn auth_secret(&self) -> Option<Vec<u8>> {
        decode(&self.auth)
    }

    /// Whether `id` could be a push subscription's id (anything else names
    /// none: 404).
    pub fn is_id(id: &str) -> bool {
        id.strip_prefix(ID_PREFIX).is_some_and(|rest| {
            rest.len() == 22
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
    }
}

/// Base64url, with or without padding (browsers write it without; some
/// libraries with).
fn decode(raw: &str) -> Option<Vec<u8>> {
    let raw = raw.trim();
    URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(raw))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256DH: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn parse(endpoint: &str, p256dh: &str, auth: &str) -> Result<PushSubscription, FieldError> {
        PushSubscription::parse(
            DestinationId::parse("laptop").unwrap(),
            endpoint,
            p256dh,
            auth,
            TargetPolicy::PublicOnly,
            Timestamp::from_unix_millis(1_800_000_000_000).unwrap(),
        )
    }

    #[test]
    fn a_browsers_subscription_is_read_and_its_id_comes_from_its_endpoint() {
        let endpoint = "https://fcm.googleapis.com/fcm/send/abc";
        let one = parse(endpoint, P256DH, AUTH).unwrap();
        assert!(PushSubscription::is_id(&one.id), "{}", one.id);
        assert_eq!(
            one.id,
            parse(endpoint, P256DH, &format!("{AUTH}==")).unwrap().id
        );
        assert_ne!(
            one.id,
            parse("https://fcm.googleapis.com/fcm/send/abd", P256DH, AUTH)
                .unwrap()
                .id
        );
        assert_eq!(one.key().unwrap().len(), 65);
        assert_eq!(one.auth_secret().unwrap().len(), 16);
    }

    #[test]
    fn bad_keys_and_endpoints_name_their_field() {
        let endpoint = "https://push.example.com/x";
        for (endpoint, p256dh, auth, field) in [
            (endpoint, "BCVx", AUTH, "keys.p256dh"),
            // A compressed point is 33 bytes.
            (
                endpoint,
                "AyVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcx",
                AUTH,
                "keys.p256dh",
            ),
            (endpoint, P256DH, "BTBZMqHH6r4Tts7J", "keys.auth"),
            (endpoint, P256DH, "not base64!", "keys.auth"),
            ("http://push.example.com/x", P256DH, AUTH, "endpoint"),
            ("https://127.0.0.1/x", P256DH, AUTH, "endpoint"),
            (
                "https://user:pw@push.example.com/x",
                P256DH,
                AUTH,
                "endpoint",
            ),
            ("push.example.com", P256DH, AUTH, "endpoint"),
        ] {
            let err = parse(endpoint, p256dh, auth).unwrap_err();
            assert_eq!(err.field, field, "{endpoint} {p256dh} {auth}: {err}");
        }
        assert!(!PushSubscription::is_id("psub_short"));
        assert!(!PushSubscription::is_id("../etc/passwd"));
    }
}
