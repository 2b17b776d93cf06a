//! Voluntary Application Server Identification (RFC 8292): the service's
//! P-256 key (`VAPID_PRIVATE_KEY`), its public half that browsers subscribe
//! with, and the `Authorization: vapid t=…, k=…` header of every push, an
//! ES256 JWT for the push service's origin.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::SecretKey;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde::Serialize;
use url::Url;

/// How long a VAPID token is good for: push services refuse more than 24 h.
const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The service's VAPID identity: key and subject. The key never prints.
#[derive(Clone)]
pub struct Vapid {
    signing: SigningKey,
    /// The public key, uncompressed, base64url: what `GET /v1/push/key`
    /// answers and every push's `k=`.
    public_key: String,
    subject: String,
}

impl fmt::Debug for Vapid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Vapid {
    /// From `VAPID_PRIVATE_KEY` (base64url of the 32-byte scalar) and
    /// `VAPID_SUBJECT` (a `mailto:` or `https:` URL); the problem with
    /// either, naming which.
    pub fn parse(private_key: &str, subject: &str) -> Result<Self, (&'static str, String)> {
        let bytes = URL_SAFE_NO_PAD
            .decode(private_key.trim().trim_end_matches('='))
            .map_err(|_| ("VAPID_PRIVATE_KEY", "is not base64url".to_owned()))?;
        if bytes.len() != 32 {
            return Err((
                "VAPID_PRIVATE_KEY",
                format!(
                    "must be 32 bytes (a P-256 private scalar), got {}",
                    bytes.len()
                ),
            ));
        }
        let secret = SecretKey::from_slice(&bytes)
            .map_err(|_| ("VAPID_PRIVATE_KEY", "is not a P-256 private key".to_owned()))?;
        let subject = subject.trim();
        let valid_subject = Url::parse(subject).is_ok_and(|u| match u.scheme() {
            "mailto" => u.path().contains('@'),
            "https" => u.host().is_some(),
            _ => false,
        });
        if !valid_subject {
            return Err((
                "VAPID_SUBJECT",
                "must be a mailto: address or an https: URL".to_owned(),
            ));
        }
        Ok(Self {
            public_key: URL_SAFE_NO_PAD.encode(secret.public_key().to_sec1_bytes()),
            signing: SigningKey::from(secret),
            subject: subject.to_owned(),
        })
    }

    /// The public key browsers subscribe with (`applicationServerKey`).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The `Authorization` header of a push to `endpoint`, at `now_secs`
    /// (Unix time): `vapid t=<ES256 JWT>, k=<public key>`.
    pub(crate) fn authorization(&self, endpoint: &Url, now_secs: i64) -> String {
        #[derive(Serialize)]
        struct Header {
            typ: &'static str,
            alg: &'static str,
        }
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: &'a str,
            exp: i64,
            sub: &'a str,
        }
        let origin = endpoint.origin().ascii_serialization();
        let json = |value: Result<Vec<u8>, serde_json::Error>| {
            URL_SAFE_NO_PAD.encode(value.expect("plain structs serialise"))
        };
        let signing_input = format!(
            "{}.{}",
            json(serde_json::to_vec(&Header {
                typ: "JWT",
                alg: "ES256"
            })),
            json(serde_json::to_vec(&Claims {
                aud: &origin,
                exp: now_secs + TOKEN_LIFETIME.as_secs() as i64,
                sub: &self.subject,
            }))
        );
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        format!(
            "vapid t={signing_input}.{}, k={}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes()),
            self.public_key
        )
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier as _;

    use super::*;

    const KEY: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";

    #[test]
    fn the_header_is_an_es256_token_for_the_endpoints_origin_signed_by_the_key() {
        let vapid = Vapid::parse(KEY, "mailto:ops@example.com").unwrap();
        assert_eq!(
            vapid.public_key(),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
        let endpoint = Url::parse("https://push.example.net:8443/wpush/v2/abc?x=1").unwrap();
        let header = vapid.authorization(&endpoint, 1_800_000_000);
        let (token, key) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(key, vapid.public_key());
        let (input, signature) = token.rsplit_once('.').unwrap();
        let verifying =
            VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(key).unwrap()).unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        verifying.verify(input.as_bytes(), &signature).unwrap();
        let part = |i: usize| -> serde_json::Value {
            serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(input.split('.').nth(i).unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(part(0), serde_json::json!({"typ": "JWT", "alg": "ES256"}));
        assert_eq!(
            part(1),
            serde_json::json!({
                "aud": "https://push.example.net:8443",
                "exp": 1_800_000_000 + 12 * 3600,
                "sub": "mailto:ops@example.com"
            })
        );
        assert!(!format!("{vapid:?}").contains(KEY));
    }

    #[test]
    fn a_bad_key_or_subject_is_named() {
        for (key, subject, variable) in [
            ("", "mailto:a@b.c", "VAPID_PRIVATE_KEY"),
            ("c2hvcnQ", "mailto:a@b.c", "VAPID_PRIVATE_KEY"),
            // The scalar 0 is no key.
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "mailto:a@b.c",
                "VAPID_PRIVATE_KEY",
            ),
            ("not base64 at all!", "mailto:a@b.c", "VAPID_PRIVATE_KEY"),
            (KEY, "ops@example.com", "VAPID_SUBJECT"),
            (KEY, "http://example.com", "VAPID_SUBJECT"),
            (KEY, "mailto:nobody", "VAPID_SUBJECT"),
        ] {
            assert_eq!(
                Vapid::parse(key, subject).unwrap_err().0,
                variable,
                "{key} {subject}"
            );
        }
        assert!(Vapid::parse(KEY, "https://relay.example.com/contact").is_ok());
    }
}
