//! The subscribers this process has seen, kept so that the voice routes can
//! still dial when the store does not answer (a CPaaS must never play
//! "application error"). Written on every successful read or write of a
//! subscriber; read only when the store fails.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::Subscriber;

#[derive(Default)]
pub struct LastKnownSubscribers {
    by_number: RwLock<HashMap<PhoneNumber, Arc<Subscriber>>>,
}

impl LastKnownSubscribers {
    pub fn remember<'a>(&self, subscribers: impl IntoIterator<Item = &'a Subscriber>) {
        // Usually nothing changed: look under the shared lock, write only
        // what is new, so that concurrent webhooks do not queue here.
        let changed: Vec<&Subscriber> = {
            let map = self.by_number.read().unwrap_or_else(|p| p.into_inner());
            subscribers
                .into_iter()
                .filter(|s| map.get(&s.number).is_none_or(|known| **known != **s))
                .collect()
        };
        if changed.is_empty() {
            return;
        }
        let mut map = self.by_number.write().unwrap_or_else(|p| p.into_inner());
        for s in changed {
            map.insert(s.number.clone(), Arc::new(s.clone()));
        }
    }

    pub fn forget(&self, number: &PhoneNumber) {
        self.by_number
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(number);
    }

    pub fn get(&self, number: &PhoneNumber) -> Option<Arc<Subscriber>> {
        self.by_number
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(number)
            .cloned()
    }

    /// The same rule as the store's: `forwarded_from` if known, else every
    /// subscriber forwarding to `to`, ordered by number.
    pub fn candidates(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Vec<Arc<Subscriber>> {
        let map = self.by_number.read().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = forwarded_from.and_then(|n| map.get(n)) {
            return vec![s.clone()];
        }
        let mut found: Vec<_> = map
            .values()
            .filter(|s| s.forwarding_number == *to)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.number.cmp(&b.number));
        found
    }
}
