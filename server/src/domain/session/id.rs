//! A session's id: unguessable, and naming the shard of its subscriber.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::phone::PhoneNumber;

/// An unguessable session id: `ses_` and 22 URL-safe base64 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(
    pattern = r"^ses_[A-Za-z0-9_-]{22}$",
    example = "ses_q7Xb2mN4pR8sT1vW3yZ5aB"
)]
pub struct SessionId(String);

const SESSION_PREFIX: &str = "ses_";

/// The characters of a session id after its prefix, in the order of their
/// values (URL-safe base64).
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One of `Shard::COUNT` groups of subscribers. A subscriber's sessions
/// carry its shard in their id, so that a store can keep a subscriber's
/// sessions, and the indexes over them, together (one Redis Cluster slot),
/// and still find a session from its id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard(u8);

impl Shard {
    pub(crate) const COUNT: u8 = 64;

    /// The shard of a subscriber: FNV-1a of its number, so every instance
    /// and every release agrees.
    pub fn of(subscriber: &PhoneNumber) -> Self {
        let hash = subscriber
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        Self((hash % u64::from(Self::COUNT)) as u8)
    }

    pub(crate) fn all() -> impl Iterator<Item = Self> {
        (0..Self::COUNT).map(Self)
    }

    pub fn index(self) -> u8 {
        self.0
    }
}

impl SessionId {
    /// A fresh id for no session in particular (examples, placeholders).
    pub fn generate() -> Self {
        Self::generate_in(Shard(rand::random::<u8>() % Shard::COUNT))
    }

    /// A fresh id for a session of `subscriber`: its first character names
    /// the subscriber's shard, the other 21 are random (126 bits).
    pub(crate) fn generate_for(subscriber: &PhoneNumber) -> Self {
        Self::generate_in(Shard::of(subscriber))
    }

    fn generate_in(shard: Shard) -> Self {
        let mut id = String::with_capacity(SESSION_PREFIX.len() + 22);
        id.push_str(SESSION_PREFIX);
        id.push(char::from(ID_ALPHABET[usize::from(shard.0)]));
        let random: [u8; 21] = rand::random();
        id.extend(
            random
                .iter()
                .map(|b| char::from(ID_ALPHABET[usize::from(b % 64)])),
        );
        Self(id)
    }

    /// The shard named by the id's first character.
    pub(crate) fn shard(&self) -> Shard {
        let first = self.0.as_bytes()[SESSION_PREFIX.len()];
        let value = ID_ALPHABET.iter().position(|&c| c == first).unwrap_or(0);
        Shard(value as u8)
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = s.strip_prefix(SESSION_PREFIX).is_some_and(|rest| {
            rest.len() == 22
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("{s:?} is not a session id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sessions_id_names_its_subscribers_shard() {
        let alice =
            PhoneNumber::parse("+14155550100", crate::domain::phone::Region::default()).unwrap();
        let bob =
            PhoneNumber::parse("+14155550101", crate::domain::phone::Region::default()).unwrap();
        for _ in 0..100 {
            let id = SessionId::generate_for(&alice);
            assert_eq!(id.shard(), Shard::of(&alice));
            assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
        }
        assert_ne!(
            SessionId::generate_for(&alice),
            SessionId::generate_for(&alice)
        );
        // Neighbouring numbers land in different shards (FNV spreads them).
        assert_ne!(Shard::of(&alice), Shard::of(&bob));
        let spread: std::collections::HashSet<Shard> = (0..1000)
            .map(|n| {
                Shard::of(
                    &PhoneNumber::parse(
                        &format!("+1415555{n:04}"),
                        crate::domain::phone::Region::default(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        assert_eq!(
            spread.len(),
            usize::from(Shard::COUNT),
            "every shard is used"
        );
    }

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
        assert!(SessionId::parse("ses_short").is_err());
        assert!(SessionId::parse("abc_AAAAAAAAAAAAAAAAAAAAAA").is_err());
    }
}
