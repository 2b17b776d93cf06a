//! Push subscriptions in process (the memory store's deployment).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::PushSubscriptionStore;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::push::PushSubscription;
use crate::store::StoreError;

/// A std mutex: never held across an `.await`, each section a few vector
/// operations.
#[derive(Default)]
pub struct MemoryPushStore {
    subscriptions: Mutex<HashMap<PhoneNumber, Vec<PushSubscription>>>,
}

impl MemoryPushStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PhoneNumber, Vec<PushSubscription>>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl PushSubscriptionStore for MemoryPushStore {
    async fn add_push_subscription(
        &self,
        subscriber: &PhoneNumber,
        subscription: &PushSubscription,
        max: usize,
    ) -> Result<(), StoreError> {
        let mut all = self.lock();
        let kept = all.entry(subscriber.clone()).or_default();
        kept.retain(|s| s.id != subscription.id);
        kept.push(subscription.clone());
        let mine = |s: &PushSubscription| s.destination_id == subscription.destination_id;
        let mut excess = kept.iter().filter(|s| mine(s)).count().saturating_sub(max);
        kept.retain(|s| {
            if excess > 0 && mine(s) {
                excess -= 1;
                return false;
            }
            true
        });
        Ok(())
    }

    async fn push_subscriptions(
        &self,
        subscriber: &PhoneNumber,
    ) -> Result<Vec<PushSubscription>, StoreError> {
        Ok(self.lock().get(subscriber).cloned().unwrap_or_default())
    }

    async fn remove_push_subscription(
        &self,
        subscriber: &PhoneNumber,
        destination: &DestinationId,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut all = self.lock();
        let Some(kept) = all.get_mut(subscriber) else {
            return Ok(false);
        };
        let before = kept.len();
        kept.retain(|s| !(s.id == id && s.destination_id == *destination));
        Ok(kept.len() < before)
    }

    async fn retain_push_subscriptions(
        &self,
        subscriber: &PhoneNumber,
        destinations: &[DestinationId],
    ) -> Result<(), StoreError> {
        let mut all = self.lock();
        if let Some(kept) = all.get_mut(subscriber) {
            kept.retain(|s| destinations.contains(&s.destination_id));
            if kept.is_empty() {
                all.remove(subscriber);
            }
        }
        Ok(())
    }
}
