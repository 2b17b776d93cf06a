//! Bearer tokens for phones and destinations. A token is shown once, when it
//! is made; only its SHA-256 is stored. Lookups go by hash, and the hash is
//! then compared in constant time against the owner's current one, so that a
//! stale index entry (a rotated token) can never authenticate.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ids::DestinationId;
use super::phone::PhoneNumber;
use super::subscriber::Subscriber;

/// A freshly made bearer token, shown to the admin once.
#[derive(Clone)]
pub struct NewToken(SecretString);

impl NewToken {
    pub fn generate(prefix: &str) -> Self {
        use base64::Engine as _;
        let bytes: [u8; 32] = rand::random();
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Self(SecretString::from(format!("{prefix}{body}")))
    }

    /// A token the operator chose (`SUBSCRIBERS_FILE`).
    pub(crate) fn chosen(token: String) -> Self {
        Self(SecretString::from(token))
    }

    pub(crate) fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.expose_secret())
    }

    /// The token itself, for the one response that shows it.
    pub fn reveal(&self) -> &str {
        self.0.expose_secret()
    }
}

/// SHA-256 of a token; what the store keeps and indexes by.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

/// Hex in JSON (and the API), the 32 bytes themselves in a binary format
/// (the compact session encoding, `store::encoding`).
impl Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            Self::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
        } else {
            let bytes = <serde_bytes::ByteBuf>::deserialize(d)?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(Self)
                .map_err(|_| serde::de::Error::invalid_length(bytes.len(), &"32 bytes"))
        }
    }
}

impl TokenHash {
    pub(crate) fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `self` and `other` are the same hash, in constant time.
    pub(crate) fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    pub(crate) fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl TryFrom<String> for TokenHash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(|e| format!("bad token hash: {e}"))?;
        Ok(Self(out))
    }
}

impl From<TokenHash> for String {
    fn from(h: TokenHash) -> String {
        h.to_hex()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// Whom a bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    Device {
        subscriber: PhoneNumber,
    },
    Destination {
        subscriber: PhoneNumber,
        destination: DestinationId,
    },
}

impl TokenOwner {
    pub fn subscriber(&self) -> &PhoneNumber {
        match self {
            Self::Device { subscriber } | Self::Destination { subscriber, .. } => subscriber,
        }
    }
}

/// The hashes of a subscriber's current tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub device: TokenHash,
    pub destinations: BTreeMap<DestinationId, TokenHash>,
}

impl Credentials {
    /// Every (hash, owner) pair, for the store's token index.
    pub(crate) fn owners<'a>(
        &'a self,
        subscriber: &'a PhoneNumber,
    ) -> impl Iterator<Item = (&'a TokenHash, TokenOwner)> + 'a {
        std::iter::once((
            &self.device,
            TokenOwner::Device {
                subscriber: subscriber.clone(),
            },
        ))
        .chain(self.destinations.iter().map(move |(id, hash)| {
            (
                hash,
                TokenOwner::Destination {
                    subscriber: subscriber.clone(),
                    destination: id.clone(),
                },
            )
        }))
    }

    /// Whether `presented` is the current token of `owner`.
    pub(crate) fn authenticates(&self, owner: &TokenOwner, presented: &TokenHash) -> bool {
        let current = match owner {
            TokenOwner::Device { .. } => Some(&self.device),
            TokenOwner::Destination { destination, .. } => self.destinations.get(destination),
        };
        current.is_some_and(|h| h.matches(presented))
    }
}

/// The tokens made by one registration, to show in its response.
#[derive(Default)]
pub struct IssuedTokens {
    pub device: Option<NewToken>,
    pub destinations: BTreeMap<DestinationId, NewToken>,
}

/// How to treat tokens when a subscriber is written.
#[derive(Clone)]
pub enum TokenPolicy {
    /// Keep the tokens of the previous record; make new ones only where there
    /// are none (a new subscriber, a new destination).
    KeepExisting,
    /// Replace every token (`?rotate_tokens=true`).
    Rotate,
    /// Tokens the operator chose (`SUBSCRIBERS_FILE`); the rest as `KeepExisting`.
    Chosen {
        device: Option<NewToken>,
        destinations: BTreeMap<DestinationId, NewToken>,
    },
}

pub(crate) const DEVICE_TOKEN_PREFIX: &str = "rrd_";
pub(crate) const DESTINATION_TOKEN_PREFIX: &str = "rrt_";
/// Capabilities in `accept_url` / `decline_url`.
pub(crate) const CAPABILITY_PREFIX: &str = "rrc_";

impl Credentials {
    /// The credentials of `subscriber` after a write under `policy`, given the
    /// previous ones, and the tokens that were made (to be shown once).
    pub fn issue(
        subscriber: &Subscriber,
        previous: Option<&Credentials>,
        policy: TokenPolicy,
    ) -> (Credentials, IssuedTokens) {
        let (previous, mut chosen_device, mut chosen_destinations) = match policy {
            TokenPolicy::KeepExisting => (previous, None, BTreeMap::new()),
            TokenPolicy::Rotate => (None, None, BTreeMap::new()),
            TokenPolicy::Chosen {
                device,
                destinations,
            } => (previous, device, destinations),
        };
        let mut issued = IssuedTokens::default();

        let device = match (chosen_device.take(), previous) {
            (Some(token), _) => token.hash(),
            (None, Some(prev)) => prev.device.clone(),
            (None, None) => {
                let token = NewToken::generate(DEVICE_TOKEN_PREFIX);
                let hash = token.hash();
                issued.device = Some(token);
                hash
            }
        };
        let destinations = subscriber
            .destinations
            .iter()
            .map(|d| {
                let kept = previous.and_then(|p| p.destinations.get(&d.id)).cloned();
                let hash = match (chosen_destinations.remove(&d.id), kept) {
                    (Some(token), _) => token.hash(),
                    (None, Some(hash)) => hash,
                    (None, None) => {
                        let token = NewToken::generate(DESTINATION_TOKEN_PREFIX);
                        let hash = token.hash();
                        issued.destinations.insert(d.id.clone(), token);
                        hash
                    }
                };
                (d.id.clone(), hash)
            })
            .collect();
        (
            Credentials {
                device,
                destinations,
            },
            issued,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;
    use crate::domain::subscriber::SubscriberSpec;

    fn subscriber(ids: &[&str]) -> Subscriber {
        let destinations: Vec<_> = ids
            .iter()
            .map(|id| serde_json::json!({"id": id, "kind": "client", "address": id}))
            .collect();
        let spec: SubscriberSpec = serde_json::from_value(serde_json::json!({
            "forwarding_number": "+12025550100", "destinations": destinations
        }))
        .unwrap();
        spec.parse(
            PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
            crate::domain::subscriber::SpecRules {
                region: Region::default(),
                webhooks_can_be_signed: true,
                webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
            },
        )
        .unwrap()
    }

    fn id(s: &str) -> DestinationId {
        DestinationId::parse(s).unwrap()
    }

    #[test]
    fn a_new_subscriber_gets_a_token_for_the_device_and_each_destination() {
        let (creds, issued) =
            Credentials::issue(&subscriber(&["a", "b"]), None, TokenPolicy::KeepExisting);
        let device = issued.device.expect("device token");
        assert!(device.reveal().starts_with(DEVICE_TOKEN_PREFIX));
        assert!(device.reveal().len() > 40);
        assert_eq!(creds.device, device.hash());
        assert_eq!(issued.destinations.len(), 2);
        for (id, token) in &issued.destinations {
            assert!(token.reveal().starts_with(DESTINATION_TOKEN_PREFIX));
            assert_eq!(creds.destinations[id], token.hash());
        }
        assert_ne!(
            issued.destinations[&id("a")].reveal(),
            issued.destinations[&id("b")].reveal()
        );
    }

    #[test]
    fn a_replace_keeps_tokens_and_only_new_destinations_get_one() {
        let (first, _) =
            Credentials::issue(&subscriber(&["a", "b"]), None, TokenPolicy::KeepExisting);
        let (second, issued) = Credentials::issue(
            &subscriber(&["b", "c"]),
            Some(&first),
            TokenPolicy::KeepExisting,
        );
        assert_eq!(second.device, first.device);
        assert!(issued.device.is_none());
        assert_eq!(second.destinations[&id("b")], first.destinations[&id("b")]);
        assert!(
            !second.destinations.contains_key(&id("a")),
            "removed destination keeps no token"
        );
        assert_eq!(
            issued.destinations.keys().collect::<Vec<_>>(),
            vec![&id("c")]
        );
    }

    #[test]
    fn rotation_replaces_every_token() {
        let (first, _) = Credentials::issue(&subscriber(&["a"]), None, TokenPolicy::KeepExisting);
        let (second, issued) =
            Credentials::issue(&subscriber(&["a"]), Some(&first), TokenPolicy::Rotate);
        assert!(issued.device.is_some() && issued.destinations.contains_key(&id("a")));
        assert_ne!(second.device, first.device);
        assert_ne!(second.destinations[&id("a")], first.destinations[&id("a")]);
    }

    #[test]
    fn only_the_current_token_of_the_owner_authenticates() {
        let (creds, issued) =
            Credentials::issue(&subscriber(&["a"]), None, TokenPolicy::KeepExisting);
        let number = PhoneNumber::parse("+12025550199", Region::default()).unwrap();
        let device = TokenOwner::Device {
            subscriber: number.clone(),
        };
        let dest = TokenOwner::Destination {
            subscriber: number,
            destination: id("a"),
        };
        let device_hash = issued.device.unwrap().hash();
        assert!(creds.authenticates(&device, &device_hash));
        assert!(!creds.authenticates(&dest, &device_hash));
        assert!(!creds.authenticates(&device, &TokenHash::of("guess")));
    }

    #[test]
    fn hashes_round_trip_as_hex_and_never_print() {
        let h = TokenHash::of("rrd_x");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json.len(), 66);
        assert_eq!(serde_json::from_str::<TokenHash>(&json).unwrap(), h);
        assert_eq!(format!("{h:?}"), "TokenHash(..)");
    }
}
