//! The subscribers this process knows, by number and by forwarding number.
//! The voice routes read it: first, when the subscriber cache
//! (`crate::subscriber_cache`) vouches for it being complete; and when the
//! store does not answer, so that they can still dial (a CPaaS must never
//! play "application error").

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::Subscriber;

#[derive(Default)]
pub struct LastKnownSubscribers {
    map: RwLock<Known>,
}

#[derive(Default)]
struct Known {
    by_number: HashMap<PhoneNumber, Arc<Subscriber>>,
    /// Subscriber numbers by forwarding number, each list in number order:
    /// a voice webhook looks up its `To` here instead of scanning everyone.
    by_forwarding: HashMap<PhoneNumber, Vec<PhoneNumber>>,
}

impl Known {
    fn insert(&mut self, subscriber: Arc<Subscriber>) {
        self.remove(&subscriber.number);
        let numbers = self
            .by_forwarding
            .entry(subscriber.forwarding_number.clone())
            .or_default();
        if let Err(at) = numbers.binary_search(&subscriber.number) {
            numbers.insert(at, subscriber.number.clone());
        }
        self.by_number.insert(subscriber.number.clone(), subscriber);
    }

    fn remove(&mut self, number: &PhoneNumber) {
        let Some(old) = self.by_number.remove(number) else {
            return;
        };
        if let Some(numbers) = self.by_forwarding.get_mut(&old.forwarding_number) {
            numbers.retain(|n| n != number);
            if numbers.is_empty() {
                self.by_forwarding.remove(&old.forwarding_number);
            }
        }
    }
}

impl LastKnownSubscribers {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Known> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn remember<'a>(&self, subscribers: impl IntoIterator<Item = &'a Subscriber>) {
        // Usually nothing changed: look under the shared lock, write only
        // what is new, so that concurrent webhooks do not queue here.
        let changed: Vec<&Subscriber> = {
            let map = self.read();
            subscribers
                .into_iter()
                .filter(|s| {
                    map.by_number
                        .get(&s.number)
                        .is_none_or(|known| **known != **s)
                })
                .collect()
        };
        if changed.is_empty() {
            return;
        }
        let mut map = self.write();
        for s in changed {
            map.insert(Arc::new(s.clone()));
        }
    }

    pub fn forget(&self, number: &PhoneNumber) {
        self.write().remove(number);
    }

    /// Replaces everything known with `subscribers` (a reload of all).
    pub fn replace_all(&self, subscribers: impl IntoIterator<Item = Subscriber>) {
        let mut known = Known::default();
        for s in subscribers {
            known.insert(Arc::new(s));
        }
        *self.write() = known;
    }

    pub fn len(&self) -> usize {
        self.read().by_number.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, number: &PhoneNumber) -> Option<Arc<Subscriber>> {
        self.read().by_number.get(number).cloned()
    }

    /// The same rule as the store's: `forwarded_from` if known, else every
    /// subscriber forwarding to `to`, ordered by number.
    pub fn candidates(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Vec<Arc<Subscriber>> {
        let map = self.read();
        if let Some(s) = forwarded_from.and_then(|n| map.by_number.get(n)) {
            return vec![s.clone()];
        }
        map.by_forwarding
            .get(to)
            .into_iter()
            .flatten()
            .filter_map(|n| map.by_number.get(n).cloned())
            .collect()
    }
}
