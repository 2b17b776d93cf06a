//! The JSON Web Tokens (RFC 7519) providers' softphone SDKs log in with,
//! signed HS256 here: a header and claims serialised in their fields'
//! order, base64url without padding, and the HMAC-SHA256 of both.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

/// `header.claims.signature`, signed with `key`.
pub(crate) fn hs256(
    header: &impl Serialize,
    claims: &impl Serialize,
    key: &[u8],
) -> Result<String, serde_json::Error> {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    );
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

/// The claims of a JWT, read without checking its signature: what a token
/// a provider minted says of its own lifetime.
pub(crate) fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let claims = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515 Appendix A.1: HS256, the header and claims as that example
    /// writes them (its JSON has line breaks, so only the signature over
    /// its exact encoding is checked, through the same HMAC).
    #[test]
    fn the_signature_is_the_hmac_of_the_signing_input() {
        #[derive(Serialize)]
        struct Header {
            alg: &'static str,
        }
        #[derive(Serialize)]
        struct Claims {
            sub: &'static str,
        }
        let token = hs256(
            &Header { alg: "HS256" },
            &Claims { sub: "alice" },
            b"secret",
        )
        .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"HS256"}"#
        );
        assert_eq!(
            unverified_claims(&token).unwrap(),
            serde_json::json!({"sub": "alice"})
        );
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"secret").unwrap();
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .expect("signed with the key");
        assert_eq!(unverified_claims("not.a-token"), None);
    }
}
