//! The process-local subscriber cache: every subscriber, in memory, kept
//! current by the event bus, so that a voice webhook for a known forwarding
//! number finds its subscriber without asking the store (its one round trip
//! is then the claim).
//!
//! How it stays right:
//! - At start it loads every subscriber (`Store::list_subscribers`, page by
//!   page), after the listing index took in those written before it existed.
//! - This instance's own writes (registry: put, do-not-disturb, delete)
//!   change it at once, and are announced on the bus
//!   (`SubscriberChanged`); on that news every instance, this one included,
//!   reads the subscriber again (or drops it). News is handled by one task,
//!   in bus order, so a later read never loses to an earlier one.
//! - It vouches for itself only while it can: after a complete load, and
//!   while the bus reader stays on the connection it had when that load
//!   began. A reconnect (Redis went away, or restarted and lost the
//!   stream; an instance that could not publish then told only itself), a
//!   reader that fell behind its buffer, or a failed re-read makes it unsure
//!   until a reload; every minute it reloads anyway, which bounds what a
//!   lost message could cost (a crash between a write and its publish).
//! - While unsure, the voice routes ask the store, as without a cache; when
//!   the store fails they dial from what the cache holds (last known).
//!
//! The window: a subscriber written on another instance reaches this one
//! when the bus delivers the news and the re-read answers, about a
//! millisecond later. A number the cache does not know at all is asked of
//! the store (one round trip, as the claim it replaces would be), which
//! closes the window for a new subscriber. A change to a known subscriber
//! (destinations, rules, a forwarding number moved or now shared) that a
//! webhook races by that millisecond is answered with the subscriber as it
//! was: the same answer the webhook would have had arriving a moment
//! earlier, and carrier forwarding itself only follows a change after the
//! user dials the forwarding codes, seconds later.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::Subscriber;
use crate::metrics::Metrics;
use crate::notify::bus::{EventBus, SubscriberNews};
use crate::store::{LastKnownSubscribers, Store, StoreError};

/// How often a kept cache reloads everything even without news of a gap.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// Subscribers read per page while loading.
const LOAD_PAGE: usize = 1000;
/// The first and the longest wait before a failed load is tried again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The subscribers this process knows, and whether it vouches that they are
/// all of them, as stored now. `Default` is a cache no bus keeps: it never
/// vouches, and only remembers (what the tests of other parts use).
#[derive(Default)]
pub struct SubscriberCache {
    known: LastKnownSubscribers,
    bus: Option<EventBus>,
    /// The bus reader's connection count when the last complete load began;
    /// 0 while unsure.
    loaded_at: AtomicU64,
    metrics: Option<Arc<Metrics>>,
}

impl SubscriberCache {
    /// A cache kept by `bus` once [`SubscriberCache::keeper`] runs.
    pub fn new(bus: EventBus, metrics: Arc<Metrics>) -> Self {
        Self {
            bus: Some(bus),
            metrics: Some(metrics),
            ..Self::default()
        }
    }

    /// Whether it holds every subscriber, current to the bus's news.
    pub fn is_fresh(&self) -> bool {
        let loaded_at = self.loaded_at.load(Ordering::Acquire);
        loaded_at != 0
            && self
                .bus
                .as_ref()
                .is_some_and(|bus| bus.reader_connections() == loaded_at)
    }

    /// The subscribers a forwarded call may belong to (the store's rule),
    /// when the cache vouches for them; `None` when it cannot, or knows no
    /// subscriber for these numbers (then ask the store).
    pub fn candidates(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Option<Vec<Arc<Subscriber>>> {
        if !self.is_fresh() {
            return None;
        }
        let found = self.known.candidates(forwarded_from, to);
        (!found.is_empty()).then_some(found)
    }

    /// What the cache holds for a forwarded call, vouched for or not: for
    /// when the store fails.
    pub fn last_known_candidates(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Vec<Arc<Subscriber>> {
        self.known.candidates(forwarded_from, to)
    }

    /// Subscriber `number` as last known, vouched for or not.
    pub fn last_known(&self, number: &PhoneNumber) -> Option<Arc<Subscriber>> {
        self.known.get(number)
    }

    /// Subscribers just read from the store. Remembered while the cache is
    /// unsure (for the next outage); a kept cache takes only the bus's news,
    /// since a read that raced a removal would bring the removed one back.
    pub fn read<'a>(&self, subscribers: impl IntoIterator<Item = &'a Subscriber>) {
        if !self.is_fresh() {
            self.known.remember(subscribers);
        }
    }

    /// This instance wrote `subscriber`: known at once here, and news for
    /// every instance.
    pub async fn written(&self, subscriber: &Subscriber) {
        self.known.remember([subscriber]);
        if let Some(bus) = &self.bus {
            bus.subscriber_changed(&subscriber.number).await;
        }
    }

    /// This instance removed subscriber `number`.
    pub async fn removed(&self, number: &PhoneNumber) {
        self.known.forget(number);
        if let Some(bus) = &self.bus {
            bus.subscriber_changed(number).await;
        }
    }

    /// How many subscribers it holds.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    fn unsure(&self) {
        self.loaded_at.store(0, Ordering::Release);
        self.report();
    }

    fn report(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.subscriber_cache_fresh(self.is_fresh());
        }
    }

    /// What keeps this cache: it listens from now on, so that nothing
    /// written after its first load begins is missed. Load once with
    /// [`CacheKeeper::load`] (before serving), then [`CacheKeeper::run`].
    pub fn keeper(self: &Arc<Self>, store: Arc<dyn Store>) -> CacheKeeper {
        CacheKeeper {
            news: self.bus.as_ref().map(EventBus::watch_subscribers),
            cache: self.clone(),
            store,
            indexed: false,
        }
    }
}

/// The task that loads the cache and applies the bus's news to it.
pub struct CacheKeeper {
    cache: Arc<SubscriberCache>,
    store: Arc<dyn Store>,
    news: Option<broadcast::Receiver<SubscriberNews>>,
    /// Whether the listing index took in the subscribers written before it.
    indexed: bool,
}

impl CacheKeeper {
    /// Reads every subscriber into the cache; it vouches for them from now
    /// on if the bus reader was listening when the load began. How many.
    pub async fn load(&mut self) -> Result<usize, StoreError> {
        let connections_at_start = self
            .cache
            .bus
            .as_ref()
            .map_or(0, EventBus::reader_connections);
        if !self.indexed {
            // Subscribers stored before the listing index would be missing
            // from a load, and so unknown to a cache that vouches.
            self.store.index_subscribers().await?;
            self.indexed = true;
        }
        let mut all = Vec::new();
        let mut after: Option<PhoneNumber> = None;
        loop {
            let page = self
                .store
                .list_subscribers(after.as_ref(), LOAD_PAGE)
                .await?;
            let more = page.len() == LOAD_PAGE;
            after = page.last().map(|r| r.subscriber.number.clone());
            all.extend(page.into_iter().map(|r| r.subscriber));
            if !more {
                break;
            }
        }
        let count = all.len();
        self.cache.known.replace_all(all);
        self.cache
            .loaded_at
            .store(connections_at_start, Ordering::Release);
        self.cache.report();
        Ok(count)
    }

    /// Reads subscriber `number` again into the cache.
    async fn refresh(&self, number: &PhoneNumber) -> Result<(), StoreError> {
        match self.store.subscriber(number).await? {
            Some(record) => self.cache.known.remember([&record.subscriber]),
            None => self.cache.known.forget(number),
        }
        Ok(())
    }

    /// Applies the bus's news until `stop`, reloading after a gap (at once
    /// unsure) and every [`RECONCILE_EVERY`] (still vouching meanwhile).
    pub async fn run(mut self, stop: CancellationToken) {
        let Some(mut news) = self.news.take() else {
            return;
        };
        let mut retry = RETRY_FIRST;
        // When to load next: now if the first load did not vouch.
        let mut load_at = if self.cache.is_fresh() {
            Instant::now() + RECONCILE_EVERY
        } else {
            Instant::now()
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(load_at) => {
                    match self.load().await {
                        Ok(count) => {
                            tracing::debug!(count, fresh = self.cache.is_fresh(), "subscriber cache loaded");
                            retry = RETRY_FIRST;
                            load_at = Instant::now() + RECONCILE_EVERY;
                        }
                        Err(err) => {
                            tracing::warn!(error = format!("{err:#}"), "could not load the subscriber cache; the voice routes ask the store meanwhile");
                            self.cache.unsure();
                            load_at = Instant::now() + retry;
                            retry = (retry * 2).min(RETRY_MAX);
                        }
                    }
                }
                received = news.recv() => {
                    let gap = match received {
                        Ok(SubscriberNews::Changed(number)) => {
                            self.refresh(&number).await.err().map(|err| format!("{err:#}"))
                        }
                        Ok(SubscriberNews::Resumed) => (!self.cache.is_fresh())
                            .then(|| "the bus reader connected again".to_owned()),
                        Err(RecvError::Lagged(missed)) => {
                            Some(format!("fell behind the bus by {missed} messages"))
                        }
                        Err(RecvError::Closed) => return,
                    };
                    if let Some(why) = gap {
                        tracing::info!(why, "subscriber cache unsure; reloading");
                        self.cache.unsure();
                        load_at = Instant::now();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;
    use crate::domain::subscriber::{SpecRules, SubscriberSpec};
    use crate::store::{MemoryStore, SubscriberRecord, SubscriberStore as _};

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, Region::default()).unwrap()
    }

    fn subscriber(number_: &str, forwarding: &str, address: &str) -> Subscriber {
        let spec: SubscriberSpec = serde_json::from_value(serde_json::json!({
            "forwarding_number": forwarding,
            "destinations": [{"id": "desk", "kind": "phone", "address": address}]
        }))
        .unwrap();
        spec.parse(
            number(number_),
            SpecRules {
                region: Region::default(),
                webhooks_can_be_signed: true,
                webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
            },
        )
        .unwrap()
    }

    async fn stored(store: &MemoryStore, s: &Subscriber) {
        let record = SubscriberRecord {
            subscriber: s.clone(),
            credentials: crate::domain::credentials::Credentials::issue(
                s,
                None,
                crate::domain::credentials::TokenPolicy::Rotate,
            )
            .0,
        };
        store.put_subscriber(&record).await.unwrap();
    }

    fn kept(store: Arc<MemoryStore>) -> (Arc<SubscriberCache>, CacheKeeper) {
        let cache = Arc::new(SubscriberCache::new(
            EventBus::in_process(),
            Arc::new(Metrics::default()),
        ));
        let keeper = cache.keeper(store);
        (cache, keeper)
    }

    fn numbers(found: &[Arc<Subscriber>]) -> Vec<&str> {
        found.iter().map(|s| s.number.as_str()).collect()
    }

    /// Polls `done` every millisecond of paused time, up to 10 s of it.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_cache_not_loaded_vouches_for_nothing() {
        let store = Arc::new(MemoryStore::new());
        stored(
            &store,
            &subscriber("+12025550199", "+12025550100", "+12025550201"),
        )
        .await;
        let (cache, _keeper) = kept(store);
        assert!(!cache.is_fresh());
        assert_eq!(cache.candidates(None, &number("+12025550100")), None);
    }

    #[tokio::test]
    async fn a_loaded_cache_answers_by_forwarding_number_in_number_order_and_forwarded_from_first()
    {
        let store = Arc::new(MemoryStore::new());
        for s in [
            subscriber("+12025550199", "+12025550100", "+12025550201"),
            subscriber("+12025550198", "+12025550100", "+12025550202"),
            subscriber("+12025550197", "+12025550111", "+12025550203"),
        ] {
            stored(&store, &s).await;
        }
        let (cache, mut keeper) = kept(store);
        assert_eq!(keeper.load().await.unwrap(), 3);
        assert!(cache.is_fresh());

        let shared = cache.candidates(None, &number("+12025550100")).unwrap();
        assert_eq!(numbers(&shared), ["+12025550198", "+12025550199"]);
        let named = cache
            .candidates(Some(&number("+12025550197")), &number("+12025550100"))
            .unwrap();
        assert_eq!(numbers(&named), ["+12025550197"], "ForwardedFrom wins");
        let unknown_from = cache
            .candidates(Some(&number("+12025550000")), &number("+12025550111"))
            .unwrap();
        assert_eq!(numbers(&unknown_from), ["+12025550197"]);
        assert_eq!(
            cache.candidates(None, &number("+12025559999")),
            None,
            "an unknown number is asked of the store"
        );
    }

    #[tokio::test]
    async fn a_load_pages_through_more_than_one_page() {
        let store = Arc::new(MemoryStore::new());
        for n in 0..LOAD_PAGE + 5 {
            stored(
                &store,
                &subscriber(&format!("+1303555{n:04}"), "+12025550100", "+12025550201"),
            )
            .await;
        }
        let (cache, mut keeper) = kept(store);
        assert_eq!(keeper.load().await.unwrap(), LOAD_PAGE + 5);
        assert_eq!(cache.len(), LOAD_PAGE + 5);
    }

    #[tokio::test]
    async fn own_writes_apply_at_once_and_a_move_leaves_the_old_forwarding_number() {
        let store = Arc::new(MemoryStore::new());
        let (cache, mut keeper) = kept(store);
        keeper.load().await.unwrap();
        let alice = subscriber("+12025550199", "+12025550100", "+12025550201");
        cache.written(&alice).await;
        assert_eq!(
            numbers(&cache.candidates(None, &number("+12025550100")).unwrap()),
            ["+12025550199"]
        );
        let moved = subscriber("+12025550199", "+12025550111", "+12025550201");
        cache.written(&moved).await;
        assert_eq!(cache.candidates(None, &number("+12025550100")), None);
        assert!(cache.candidates(None, &number("+12025550111")).is_some());
        cache.removed(&moved.number).await;
        assert_eq!(cache.candidates(None, &number("+12025550111")), None);
        assert_eq!(cache.last_known(&moved.number), None);
    }

    #[tokio::test(start_paused = true)]
    async fn news_from_the_bus_is_read_again_from_the_store() {
        let store = Arc::new(MemoryStore::new());
        let bus = EventBus::in_process();
        let cache = Arc::new(SubscriberCache::new(
            bus.clone(),
            Arc::new(Metrics::default()),
        ));
        let mut keeper = cache.keeper(store.clone());
        keeper.load().await.unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(keeper.run(stop.clone()));

        // Another instance wrote it: only the store and the bus know.
        let alice = subscriber("+12025550199", "+12025550100", "+12025550201");
        stored(&store, &alice).await;
        bus.subscriber_changed(&alice.number).await;
        until("the cache knows alice", || {
            cache.candidates(None, &number("+12025550100")).is_some()
        })
        .await;

        store.delete_subscriber(&alice.number).await.unwrap();
        bus.subscriber_changed(&alice.number).await;
        until("the cache forgets alice", || {
            cache.last_known(&alice.number).is_none()
        })
        .await;
        assert!(cache.is_fresh());
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_read_does_not_bring_back_what_a_kept_cache_dropped() {
        let store = Arc::new(MemoryStore::new());
        let (cache, mut keeper) = kept(store);
        keeper.load().await.unwrap();
        let alice = subscriber("+12025550199", "+12025550100", "+12025550201");
        cache.read([&alice]);
        assert_eq!(cache.last_known(&alice.number), None);

        // Unsure, it remembers what it reads, for an outage.
        let unkept = SubscriberCache::default();
        unkept.read([&alice]);
        assert!(unkept.last_known(&alice.number).is_some());
        assert_eq!(unkept.candidates(None, &number("+12025550100")), None);
        assert_eq!(
            numbers(&unkept.last_known_candidates(None, &number("+12025550100"))),
            ["+12025550199"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_makes_it_unsure_until_a_reload_vouches_again() {
        let store = Arc::new(MemoryStore::new());
        let bus = EventBus::in_process();
        let cache = Arc::new(SubscriberCache::new(
            bus.clone(),
            Arc::new(Metrics::default()),
        ));
        let mut keeper = cache.keeper(store.clone());
        keeper.load().await.unwrap();
        // A cache that falls behind the bus's buffer has lost news.
        for n in 0..SUBSCRIBER_NEWS_OVERFLOW {
            bus.subscriber_changed(&number(&format!("+1303555{n:04}")))
                .await;
        }
        let alice = subscriber("+12025550199", "+12025550100", "+12025550201");
        stored(&store, &alice).await;
        let stop = CancellationToken::new();
        let task = tokio::spawn(keeper.run(stop.clone()));
        // Within 10 s, long before the minute's reconcile: only the reload
        // after the gap reads alice, whose news was never sent.
        until("a reload after the gap reads alice", || {
            cache.candidates(None, &number("+12025550100")).is_some()
        })
        .await;
        stop.cancel();
        task.await.unwrap();
    }

    /// More news than the bus buffers for one receiver.
    const SUBSCRIBER_NEWS_OVERFLOW: usize = 1100;
}
