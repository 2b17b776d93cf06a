//! The admin's operations on subscribers: what a registration or a removal
//! means beyond the registry (capabilities revoked, open sessions ended,
//! live streams made to authenticate again), in one place, so that every
//! route that changes subscribers (the API, the console) does the same.

use std::sync::Arc;

use super::listing::{Page, SubscriberCursor};
use super::registry::{Registration, Registry, RegistryError};
use crate::domain::credentials::TokenPolicy;
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::{Subscriber, SubscriberSpec};
use crate::flow::CallFlow;
use crate::store::StoreError;

#[derive(Clone)]
pub struct AdminService {
    registry: Registry,
    flow: Arc<CallFlow>,
}

impl AdminService {
    pub fn new(registry: Registry, flow: Arc<CallFlow>) -> Self {
        Self { registry, flow }
    }

    /// Creates or replaces subscriber `number`. With `rotate_tokens`, every
    /// token is new and the capabilities handed out before (the
    /// `accept_url` / `decline_url` of calls still ringing) stop working;
    /// after a rotation or a replace, open streams authenticate again (old
    /// tokens or destinations may be gone).
    pub async fn put_subscriber(
        &self,
        number: PhoneNumber,
        spec: SubscriberSpec,
        rotate_tokens: bool,
    ) -> Result<Registration, RegistryError> {
        let policy = if rotate_tokens {
            TokenPolicy::Rotate
        } else {
            TokenPolicy::KeepExisting
        };
        let registration = self.registry.register(number, spec, policy).await?;
        let number = &registration.subscriber.number;
        if rotate_tokens {
            self.flow.revoke_capabilities(number).await;
        }
        if rotate_tokens || !registration.created {
            self.flow.bus().credentials_changed(number).await;
            // Browsers subscribed with a replaced token, or for a
            // destination that went, hear no more.
            let kept: Vec<_> = if rotate_tokens {
                Vec::new()
            } else {
                registration
                    .subscriber
                    .destinations
                    .iter()
                    .map(|d| d.id.clone())
                    .collect()
            };
            self.flow.destinations_changed(number, &kept).await;
        }
        Ok(registration)
    }

    /// A page of subscribers in number order, after `after`.
    pub async fn list_subscribers(
        &self,
        after: Option<&SubscriberCursor>,
        limit: usize,
    ) -> Result<Page<Subscriber, SubscriberCursor>, StoreError> {
        // One more than asked: whether there is a next page.
        let mut items = self
            .registry
            .list(after.map(|c| &c.0), limit.saturating_add(1))
            .await?;
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            SubscriberCursor(items[limit - 1].number.clone())
        });
        Ok(Page { items, next })
    }

    /// Removes subscriber `number`: its open sessions end `cancelled` (its
    /// destinations hear it) and its streams close. Whether it existed.
    pub async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let Some(subscriber) = self.registry.subscriber(number).await? else {
            return Ok(false);
        };
        if !self.registry.remove(number).await? {
            return Ok(false);
        }
        self.flow.subscriber_removed(&subscriber).await;
        self.flow.bus().credentials_changed(number).await;
        self.flow.destinations_changed(number, &[]).await;
        Ok(true)
    }
}
