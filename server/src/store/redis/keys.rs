//! The names of the Redis store's keys (see the table in `mod.rs`).

use crate::domain::ids::CallSid;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::Shard;

/// The names of the keys (see the module's table).
#[derive(Clone)]
pub(super) struct Keys {
    pub(super) prefix: String,
}

impl Keys {
    pub(super) fn plain(&self, kind: &str, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + id.len() + 2);
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(kind);
        key.push(':');
        key.push_str(id);
        key
    }

    /// The subscribers forwarding to `forwarding_number`: a hash of their
    /// records by number, where each subscriber's record lives.
    pub(super) fn records(&self, forwarding_number: &str) -> String {
        self.plain("fw", forwarding_number)
    }

    /// Every subscriber as `<number> <forwarding number>`, in number order:
    /// where a subscriber's record is, and the listing.
    pub(super) fn numbers(&self) -> String {
        format!("{}:numbers", self.prefix)
    }

    /// The bucket of the token index a token hash (hex) is in, and its
    /// field there: 4096 hashes, so that each stays small (Redis keeps a
    /// small hash compact) and a key's own overhead is shared.
    pub(super) fn token_entry(&self, hash_hex: &str) -> (String, Vec<u8>) {
        let bucket = self.plain("tk", &hash_hex[..3]);
        let field = hex::decode(&hash_hex[3..35]).expect("a token hash is hex");
        (bucket, field)
    }

    /// A release before 0.2's keys, read while they are moved.
    pub(super) fn subscriber(&self, number: &PhoneNumber) -> String {
        self.plain("sub", number.as_str())
    }

    pub(super) fn forwarding(&self, forwarding_number: &PhoneNumber) -> String {
        self.plain("fwd", forwarding_number.as_str())
    }

    pub(super) fn token(&self, hash_hex: &str) -> String {
        self.plain("tok", hash_hex)
    }

    /// The sorted set of every subscriber's number (score 0: by number).
    pub(super) fn subscribers(&self) -> String {
        format!("{}:subs", self.prefix)
    }

    /// Every session still listed, by when it began: `GET /v1/sessions`.
    pub(super) fn sessions(&self) -> String {
        format!("{}:sessions", self.prefix)
    }

    /// The sweep index: a sorted set of the shards (`NN`) that have work,
    /// by when they next have it.
    pub(super) fn sweep(&self) -> String {
        format!("{}:sweep", self.prefix)
    }

    pub(super) fn rate(&self, key: &str) -> String {
        self.plain("rate", key)
    }

    pub(super) fn shard(&self, shard: Shard) -> ShardKeys {
        ShardKeys {
            base: format!("{}:{{s{:02}}}", self.prefix, shard.index()),
        }
    }
}

/// The keys of one shard; they share its hash tag.
pub(super) struct ShardKeys {
    base: String,
}

impl ShardKeys {
    pub(super) fn key(&self, parts: &[&str]) -> String {
        let mut key = self.base.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    pub(super) fn sessions(&self) -> String {
        self.key(&["ses"])
    }

    /// Each session once, by when the sweep next acts on it (see
    /// `lua/session.lua`): the end of an open session's lifetime, or when
    /// an ended one's record goes.
    pub(super) fn life(&self) -> String {
        self.key(&["life"])
    }

    /// The release before's two lifetime indexes, which the sweep moves
    /// into [`Self::life`].
    pub(super) fn legacy_lifetimes(&self) -> [String; 2] {
        [self.key(&["gone"]), self.key(&["idle"])]
    }

    pub(super) fn due(&self) -> String {
        self.key(&["due"])
    }

    /// When the shard next has work, as last told to the sweep index.
    pub(super) fn next(&self) -> String {
        self.key(&["next"])
    }

    pub(super) fn awaiting(&self, subscriber: &PhoneNumber, caller: &Caller) -> String {
        self.key(&["wait", subscriber.as_str(), caller.key()])
    }

    pub(super) fn history(&self, subscriber: &PhoneNumber) -> String {
        self.key(&["hist", subscriber.as_str()])
    }
}

/// The field of a shard's sessions hash naming the session of a ring
/// report's device call id (base64url: the phone's id may hold anything).
pub(super) fn device_call_field(subscriber: &PhoneNumber, call_id: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(call_id);
    format!("d:{subscriber}:{encoded}")
}

/// The field of a shard's sessions hash naming the session a forwarded call
/// took (the scripts find it again from the claim's `call_sid`).
pub(super) fn call_field(call_sid: &CallSid) -> String {
    format!("c:{call_sid}")
}
