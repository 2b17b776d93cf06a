//! Where subscribers, tokens and sessions live. One trait, two backends: the
//! embedded in-memory store (one instance) and Redis (several instances
//! sharing one server). Both pass one conformance suite (`tests/api/store.rs`).

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::credentials::{Credentials, TokenHash, TokenOwner};
use crate::domain::phone::PhoneNumber;
use crate::domain::session::{Session, SessionId};
use crate::domain::subscriber::Subscriber;

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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the backend answers; `/readyz` uses it.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates or replaces a subscriber, with its forwarding-number and token
    /// indexes, in one atomic step. Returns whether it replaced one.
    async fn put_subscriber(&self, record: &SubscriberRecord) -> Result<bool, StoreError>;

    async fn subscriber(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError>;

    /// Removes a subscriber and its index entries. Returns whether it existed.
    async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError>;

    /// Every subscriber whose forwarding number is `forwarding_number`,
    /// ordered by subscriber number.
    async fn subscribers_forwarding_to(
        &self,
        forwarding_number: &PhoneNumber,
    ) -> Result<Vec<SubscriberRecord>, StoreError>;

    /// Whom the token with this hash was issued to, if anyone. The caller
    /// still checks it against the owner's current credentials.
    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError>;

    /// Writes a session that lives `ttl` from now.
    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StoreError>;

    /// A session that has not expired.
    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;
}
