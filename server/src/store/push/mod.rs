//! Where destinations' Web Push subscriptions are kept (docs/api.md): a
//! store of its own beside the subscribers and sessions, with the same two
//! backends. A subscriber's subscriptions are kept together (one Redis key,
//! the subscriber's hash tag), so that the ring report reads every
//! destination's in one round trip.

mod memory;
mod on_redis;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::push::PushSubscription;

pub use self::memory::MemoryPushStore;
pub use self::on_redis::RedisPushStore;

/// Destinations' push subscriptions, by subscriber.
#[async_trait]
pub trait PushSubscriptionStore: Send + Sync + 'static {
    /// Keeps `subscription` for its destination of `subscriber`, replacing
    /// one with the same id; past `max` for that destination, the oldest
    /// go.
    async fn add_push_subscription(
        &self,
        subscriber: &PhoneNumber,
        subscription: &PushSubscription,
        max: usize,
    ) -> Result<(), StoreError>;

    /// Every push subscription of `subscriber`'s destinations, oldest first.
    async fn push_subscriptions(
        &self,
        subscriber: &PhoneNumber,
    ) -> Result<Vec<PushSubscription>, StoreError>;

    /// Removes subscription `id` of `destination`; whether there was one.
    async fn remove_push_subscription(
        &self,
        subscriber: &PhoneNumber,
        destination: &DestinationId,
        id: &str,
    ) -> Result<bool, StoreError>;

    /// Keeps only the subscriptions of `destinations` (none when it is
    /// empty): a destination removed, or whose token was replaced, no
    /// longer hears anything through them.
    async fn retain_push_subscriptions(
        &self,
        subscriber: &PhoneNumber,
        destinations: &[DestinationId],
    ) -> Result<(), StoreError>;
}
