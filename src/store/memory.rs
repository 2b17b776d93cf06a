//! The embedded store: plain maps behind one mutex, for a single instance.
//! A std mutex is right here: it is never held across an `.await`, and every
//! critical section is a few map operations.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Store, StoreError, SubscriberRecord};
use crate::domain::credentials::{TokenHash, TokenOwner};
use crate::domain::phone::PhoneNumber;
use crate::domain::session::{Session, SessionId};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    subscribers: HashMap<PhoneNumber, SubscriberRecord>,
    by_forwarding_number: HashMap<PhoneNumber, BTreeSet<PhoneNumber>>,
    tokens: HashMap<TokenHash, TokenOwner>,
    sessions: HashMap<SessionId, Expiring<Session>>,
    writes_since_sweep: u32,
}

struct Expiring<T> {
    value: T,
    deadline: Instant,
}

/// Expired sessions are dropped when read, and swept every this many writes
/// so that memory stays bounded by the live ones.
const SWEEP_EVERY_WRITES: u32 = 1024;

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-written
        // in a way later readers would misread, so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn unindex(&mut self, old: &SubscriberRecord) {
        let number = &old.subscriber.number;
        if let Some(set) = self
            .by_forwarding_number
            .get_mut(&old.subscriber.forwarding_number)
        {
            set.remove(number);
            if set.is_empty() {
                self.by_forwarding_number
                    .remove(&old.subscriber.forwarding_number);
            }
        }
        for (hash, _) in old.credentials.owners(number) {
            self.tokens.remove(hash);
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn put_subscriber(&self, record: &SubscriberRecord) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let number = &record.subscriber.number;
        let previous = inner.subscribers.insert(number.clone(), record.clone());
        if let Some(old) = &previous {
            inner.unindex(old);
        }
        inner
            .by_forwarding_number
            .entry(record.subscriber.forwarding_number.clone())
            .or_default()
            .insert(number.clone());
        for (hash, owner) in record.credentials.owners(number) {
            inner.tokens.insert(hash.clone(), owner);
        }
        Ok(previous.is_some())
    }

    async fn subscriber(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        Ok(self.lock().subscribers.get(number).cloned())
    }

    async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(old) = inner.subscribers.remove(number) else {
            return Ok(false);
        };
        inner.unindex(&old);
        Ok(true)
    }

    async fn subscribers_forwarding_to(
        &self,
        forwarding_number: &PhoneNumber,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let inner = self.lock();
        let Some(numbers) = inner.by_forwarding_number.get(forwarding_number) else {
            return Ok(Vec::new());
        };
        Ok(numbers
            .iter()
            .filter_map(|n| inner.subscribers.get(n).cloned())
            .collect())
    }

    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        Ok(self.lock().tokens.get(hash).cloned())
    }

    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.writes_since_sweep += 1;
        if inner.writes_since_sweep >= SWEEP_EVERY_WRITES {
            inner.writes_since_sweep = 0;
            inner.sessions.retain(|_, s| s.deadline > now);
        }
        inner.sessions.insert(
            session.id.clone(),
            Expiring {
                value: session.clone(),
                deadline: now + ttl,
            },
        );
        Ok(())
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.sessions.get(id) {
            Some(s) if s.deadline > now => Ok(Some(s.value.clone())),
            Some(_) => {
                inner.sessions.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }
}
