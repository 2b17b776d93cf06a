//! The Redis store, shared by every instance of the service: one server, a
//! Sentinel-managed primary, or a Redis Cluster.
//!
//! Keys (all under `REDIS_KEY_PREFIX`, written `P` here). A key in braces
//! is a Redis Cluster hash tag: keys with the same tag share a slot.
//!
//! | key | what | tag |
//! |---|---|---|
//! | `P:fw:<forwarding number>` | hash of the records of the subscribers forwarding there, by number (see `subscribers.rs`) | the key itself |
//! | `P:numbers` | sorted set of `<number> <forwarding number>` (listing, and where a record is) | the key itself |
//! | `P:tk:<3 hex digits>` | hash: a token's owner, and where its record is, by 16 bytes of its hash | the key itself |
//! | `P:rate:<key>` | a fixed-window counter | the key itself |
//! | `P:{sNN}:ses` | hash of the shard's sessions: `<id>` (its version, the claim of the forwarded call that took it, its device call's field, then the session, see `stored`), `d:<subscriber>:<device call id>` (the session of a ring report, so that a retried report finds it), `c:<call id>` (the session a forwarded call took, for retries and its end); the latter two go with their session | shard `NN` |
//! | `P:{sNN}:life` | sorted set: each session by when the sweep next acts on it: the end of its lifetime while it is open (a half-millisecond score marks it open), else when its record goes (a session's TTL) | shard |
//! | `P:{sNN}:due` | sorted set of the sessions awaiting a forwarded call, by instruction time (forward deadlines) | shard |
//! | `P:{sNN}:wait:<subscriber>:<caller>` | sorted set of the sessions awaiting a forwarded call from that caller (`withheld`), by instruction time | shard |
//! | `P:{sNN}:hist:<subscriber>` | sorted set of the subscriber's listed sessions, by when they began | shard |
//! | `P:sessions` | sorted set of every listed session's id, by when it began (`GET /v1/sessions`) | the key itself |
//! | `P:sweep` | sorted set of the shards (`NN`) that have work for the sweep, by when they next have it | the key itself |
//! | `P:{sNN}:next` | when the shard next has work, as `P:sweep` was last told | shard |
//! | `P:bus` | the event bus's stream (see `notify::bus`) | the key itself |
//!
//! `NN` is the subscriber's [`Shard`] (64 of them), which every id of its
//! sessions names. So everything one session-writing script or a claim
//! touches shares one slot, and is passed in `KEYS`: a session is a field of
//! its shard's hash rather than a key of its own, so that a script that
//! finds a session id in an index can read and write it without building a
//! key name. A shard's load is 1/64 of the call traffic, so no single slot
//! is hot; subscribers and tokens, read one key at a time, spread over every
//! slot. The sweep reads `P:sweep` and visits only the shards whose work
//! is due, so an idle deployment costs one command a second.
//!
//! A subscriber's keys are written one after the other (they live in
//! different slots), in an order that keeps every reader right: see
//! `subscribers.rs`.

mod keys;
mod rate;
mod scripts;
mod sessions;
mod subscribers;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use redis::RedisError;

use self::keys::Keys;
use super::{Store, StoreError};
use crate::metrics::Metrics;
use crate::redis::RedisConnection;

/// `FORWARD_TIMEOUT_SECS`'s default.
const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct RedisStore {
    connection: RedisConnection,
    keys: Keys,
    metrics: Option<Arc<Metrics>>,
    /// How long a session told to reject waits for its forwarded call: when
    /// a shard's next forward is due, for the sweep index.
    forward_timeout: Duration,
    /// Whether subscribers of the layout before may still be there (until
    /// `index_subscribers` moved them).
    migrating: Arc<std::sync::atomic::AtomicBool>,
    /// When this instance last had the sweep look at every shard.
    visited_all: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(self.failed("PING"))
    }
}

impl RedisStore {
    /// The store on `connection` (see [`RedisConnection::open`]: lazy, so
    /// the service starts, and keeps answering what it can, while Redis is
    /// away; each command fails fast instead of hanging), with every key
    /// under `prefix`.
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            keys: Keys {
                prefix: prefix.to_owned(),
            },
            metrics: None,
            forward_timeout: DEFAULT_FORWARD_TIMEOUT,
            migrating: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            visited_all: Arc::default(),
        }
    }

    /// Sessions told to reject wait `forward_timeout` for their forwarded
    /// call (`FORWARD_TIMEOUT_SECS`): when the sweep looks at their shard.
    pub fn with_forward_timeout(mut self, forward_timeout: Duration) -> Self {
        self.forward_timeout = forward_timeout;
        self
    }

    /// Counts failed operations in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl RedisStore {
    /// Turns a Redis error into a store error, counting it.
    fn failed(&self, context: &'static str) -> impl Fn(RedisError) -> StoreError + '_ {
        move |err| {
            if let Some(metrics) = &self.metrics {
                metrics.store_error(context);
            }
            redis_error(context)(err)
        }
    }

    fn conn(&self) -> RedisConnection {
        // Cloning shares the one multiplexed connection.
        self.connection.clone()
    }
}

fn redis_error(context: &'static str) -> impl FnOnce(RedisError) -> StoreError {
    move |err| {
        let unavailable = err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_unrecoverable_error()
            // Still loading, or failing over, after the retries gave up.
            || crate::redis::says_wait(&err);
        let err = anyhow::Error::new(err).context(context);
        if unavailable {
            StoreError::Unavailable(err)
        } else {
            StoreError::Unexpected(err)
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(json: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .with_context(|| format!("decoding a stored {what}"))
        .map_err(StoreError::Unexpected)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
