//! Where subscribers, tokens and sessions live. Three traits by concern
//! ([`SubscriberStore`], [`SessionStore`], [`RateLimits`]), joined in
//! [`Store`]; two backends: the embedded in-memory store (one instance) and
//! Redis (several instances sharing one server, a Sentinel-managed primary
//! or a Redis Cluster). Both pass one conformance suite (`tests/api/store.rs`).

pub mod encoding;
mod memory;
pub mod push;
mod redis;
pub(crate) mod stored;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::credentials::{Credentials, TokenHash, TokenOwner};
use crate::domain::ids::CallSid;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{Claim, Session, SessionId};
use crate::domain::subscriber::Subscriber;
use crate::domain::time::Timestamp;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

/// A subscriber as stored: its configuration and the hashes of its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberRecord {
    pub subscriber: Subscriber,
    pub credentials: Credentials,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend did not answer (down, unreachable, timed out).
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Everything the service keeps, by concern. A backend is chosen once, at
/// start ([`crate::startup`]); nothing else knows which.
#[async_trait]
pub trait Store: SubscriberStore + SessionStore + RateLimits {
    /// Answers when the backend answers; `/readyz` uses it.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Subscribers, and the indexes that find them: by forwarding number, by
/// token, in number order.
#[async_trait]
pub trait SubscriberStore: Send + Sync + 'static {
    /// Creates or replaces a subscriber, with its forwarding-number and token
    /// indexes, in one atomic step. Returns whether it replaced one.
    async fn put_subscriber(&self, record: &SubscriberRecord) -> Result<bool, StoreError>;

    async fn subscriber(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError>;

    /// Creates or replaces many subscribers, as [`SubscriberStore::put_subscriber`]
    /// does each (an import): on Redis all at once, in the round trips of
    /// one.
    async fn put_subscribers(&self, records: &[SubscriberRecord]) -> Result<(), StoreError> {
        for record in records {
            self.put_subscriber(record).await?;
        }
        Ok(())
    }

    /// Many subscribers at once, each when it exists: on Redis one round
    /// trip (the reads share the connection).
    async fn subscribers(
        &self,
        numbers: &[PhoneNumber],
    ) -> Result<Vec<Option<SubscriberRecord>>, StoreError> {
        let mut found = Vec::with_capacity(numbers.len());
        for number in numbers {
            found.push(self.subscriber(number).await?);
        }
        Ok(found)
    }

    /// Up to `limit` subscribers, in no particular order: what an instance
    /// remembers at start, so that it can dial them while the store is down.
    async fn some_subscribers(&self, limit: usize) -> Result<Vec<SubscriberRecord>, StoreError>;

    /// Up to `limit` subscribers, in number order (E.164 as text), starting
    /// after `after` (from the first when `None`). Redis keeps a sorted
    /// index, written with the subscriber in one step.
    async fn list_subscribers(
        &self,
        after: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<SubscriberRecord>, StoreError>;

    /// Puts every stored subscriber into the index [`Store::list_subscribers`]
    /// reads (subscribers written before the index existed are not in it);
    /// returns how many it saw. Run once at start; idempotent.
    async fn index_subscribers(&self) -> Result<usize, StoreError>;

    /// Removes a subscriber and its index entries. Returns whether it existed.
    async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError>;

    /// Whom the token with this hash was issued to, if anyone. The caller
    /// still checks it against the owner's current credentials.
    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError>;

    /// [`SubscriberStore::token_owner`] and the owner's record, when both
    /// are there: on Redis in two round trips.
    async fn token_subscriber(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(TokenOwner, SubscriberRecord)>, StoreError> {
        let Some(owner) = self.token_owner(hash).await? else {
            return Ok(None);
        };
        Ok(self
            .subscriber(owner.subscriber())
            .await?
            .map(|record| (owner, record)))
    }

    /// What a forwarded call's subscribers are found from: subscriber
    /// `forwarded_from` (when given), and every subscriber forwarding to
    /// `to`; [`ForwardedCallSubscribers::candidates`] applies the rule. One
    /// round trip.
    async fn candidates_for_forwarded_call(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Result<ForwardedCallSubscribers, StoreError>;
}

/// The subscribers read for a forwarded call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardedCallSubscribers {
    /// Subscriber `forwarded_from`, when one was named and is stored.
    pub forwarded_from: Option<SubscriberRecord>,
    /// Every subscriber forwarding to the called number, in number order;
    /// `None` when not read (`forwarded_from` was found).
    pub forwarding_to: Option<Vec<SubscriberRecord>>,
}

impl ForwardedCallSubscribers {
    /// The subscribers the call may belong to: `forwarded_from` when it is
    /// a subscriber, otherwise every subscriber forwarding to the number.
    pub fn candidates(self) -> Vec<SubscriberRecord> {
        match self.forwarded_from {
            Some(record) => vec![record],
            None => self.forwarding_to.unwrap_or_default(),
        }
    }
}

/// Sessions, and the indexes over them: awaiting a forwarded call, open,
/// due, idle, each subscriber's history.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Writes a new session that lives `ttl` from now, unless the phone
    /// already reported this call (same subscriber and `device_call_id`):
    /// then nothing is written and that session is returned.
    async fn create_session(
        &self,
        session: &Session,
        ttl: Duration,
    ) -> Result<SessionCreated, StoreError>;

    /// Writes a session read earlier, unless someone wrote it (or a
    /// forwarded call claimed it) since: then nothing is written and the
    /// answer is `false`, and the caller reads it again and decides again.
    /// Otherwise the session lives `ttl` from now, is listed in the matching
    /// index while it [awaits a forwarded call](Session::awaits_forwarded_call)
    /// and no claim took it, and `session.version` moves on.
    async fn update_session(
        &self,
        session: &mut Session,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// The sessions of `subscriber` still kept, newest first (by
    /// [`Session::began_at_millis`], then by id, both descending): the open
    /// ones, and ended ones until their record goes (the flow keeps an ended
    /// session `HISTORY_TTL_SECS`). At most the newest [`HISTORY_CAP`]: a
    /// write of a session lists it, and drops the oldest past the cap.
    async fn session_history(&self, subscriber: &PhoneNumber) -> Result<Vec<Session>, StoreError>;

    /// Up to `limit` sessions of every subscriber still kept, newest first
    /// (by [`Session::began_at_millis`], then by id, both descending),
    /// after `after` (a session's start and id) when given. Redis keeps one
    /// global index for it, so its cost does not depend on the number of
    /// subscribers.
    async fn recent_sessions(
        &self,
        after: Option<(i64, &SessionId)>,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError>;

    /// The sessions of `subscriber` that are not over yet.
    async fn open_sessions(&self, subscriber: &PhoneNumber) -> Result<Vec<SessionId>, StoreError>;

    /// A session that has not expired, with its claim applied.
    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// Claims for a forwarded call the session it belongs to: of the
    /// sessions of `subscribers` awaiting a forwarded call from `caller`
    /// that were instructed at `not_instructed_before` or later, the most
    /// recently instructed. Atomic: of concurrent claims, across instances,
    /// exactly one gets a given session. When none is found and
    /// `unreported` is given, that session is stored instead (the call
    /// matched no ring report) and returned. A call that already took a
    /// session (a retried webhook: same `claim.call_sid`) gets that session
    /// again. One round trip.
    async fn claim_session(
        &self,
        subscribers: &[PhoneNumber],
        caller: &Caller,
        claim: &Claim,
        not_instructed_before: Timestamp,
        unreported: Option<&Session>,
        ttl: Duration,
    ) -> Result<Option<Session>, StoreError>;

    /// The sessions of `subscriber` awaiting a forwarded call from `caller`.
    async fn awaiting_sessions(
        &self,
        subscriber: &PhoneNumber,
        caller: &Caller,
    ) -> Result<Vec<SessionId>, StoreError>;

    /// Takes up to `limit` sessions that await a forwarded call since before
    /// `instructed_before` (oldest first), and up to `limit` sessions whose
    /// lifetime ran out with no outcome, each with its version then; drops
    /// the records whose time came. Each session is handed out once, to one
    /// caller, across instances. A write of a session that is not over lists
    /// it as idle `ttl` after that write, and keeps its record
    /// [`SWEEP_GRACE`] longer (on Redis: until a sweep takes it, then the
    /// grace), so that the sweep's write can still end it. On Redis an idle deployment's sweep is one command,
    /// whatever the number of shards.
    async fn sweep(&self, instructed_before: Timestamp, limit: usize) -> Result<Swept, StoreError>;

    /// The session the forwarded call `call_sid` took, if any. `subscribers`
    /// are those it was likely for (forwarded to from the number it
    /// called): the Redis store looks where their sessions are first, one
    /// shard instead of all 64; it finds the session without them too.
    async fn session_for_call(
        &self,
        call_sid: &CallSid,
        subscribers: &[PhoneNumber],
    ) -> Result<Option<SessionId>, StoreError>;
}

/// Fixed-window counters for rate limits.
#[async_trait]
pub trait RateLimits: Send + Sync + 'static {
    /// Counts one hit on `key` in a fixed window of `window`; returns the
    /// hits so far in this window and the time until it resets.
    async fn hit(&self, key: &str, window: Duration) -> Result<WindowCount, StoreError>;
}

/// How much longer than its TTL a session with no outcome is kept: the
/// sweep that ends it runs every second on every instance, so this only
/// matters when every instance is down at the time (it ends the session when
/// one is back within the grace).
pub const SWEEP_GRACE: Duration = Duration::from_secs(60);

/// How many sessions of one subscriber [`Store::session_history`] keeps.
pub const HISTORY_CAP: usize = 200;

/// What a sweep took (see [`SessionStore::sweep`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Sessions whose forwarded call is overdue.
    pub overdue: Vec<SessionId>,
    /// Sessions whose lifetime ran out, with their version when taken.
    pub idle: Vec<(SessionId, u64)>,
}

/// The outcome of [`Store::create_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCreated {
    Created,
    /// The phone reported this call before: its session.
    Existing(Box<Session>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub hits: u64,
    pub resets_in: Duration,
}
