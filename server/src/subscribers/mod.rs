//! Subscribers: one home. [`Subscribers`] owns the store's subscribers, the
//! bounded cache ([`cache`]) and the order in which a question is answered:
//! the cache when it vouches, else the store, else (the store failed) what
//! this process last knew. The call flow asks it one question per webhook
//! ([`Subscribers::for_forwarded_call`], [`Subscribers::current`]); the
//! registry ([`registry`]) and the admin's operations ([`admin`]) write
//! through it, and nothing else feeds the cache.

pub mod admin;
pub mod cache;
pub mod import;
pub mod listing;
pub mod registry;

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use self::cache::{Cache, Cached};
use self::import::{ImportProgress, ImportStatus};
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::Subscriber;
use crate::metrics::{LookupSource, Metrics};
use crate::notify::bus::{EventBus, SubscriberChange, SubscriberNews};
use crate::store::{Store, StoreError, SubscriberRecord};

pub use self::admin::AdminService;
pub use self::registry::{Registration, Registry, RegistryError};

/// The subscribers of a forwarded call, and where they were found.
#[derive(Debug, Clone)]
pub struct Found {
    pub subscribers: Vec<Arc<Subscriber>>,
    pub source: LookupSource,
}

/// How many subscribers an instance reads at start, in the background, so
/// that it can dial them should the store go away before they are asked
/// for.
const WARM_UP: usize = 10_000;

pub struct Subscribers {
    store: Arc<dyn Store>,
    cache: Cache,
    bus: EventBus,
    metrics: Arc<Metrics>,
    /// The import of `SUBSCRIBERS_FILE`, when one was started.
    import: std::sync::Mutex<Option<Arc<ImportProgress>>>,
}

impl Subscribers {
    /// Subscribers in `store`, at most `cache_entries` of them cached, kept
    /// current by `bus` once [`Subscribers::keep`] runs.
    pub fn new(
        store: Arc<dyn Store>,
        bus: EventBus,
        metrics: Arc<Metrics>,
        cache_entries: usize,
    ) -> Self {
        let subscribers = Self {
            store,
            cache: Cache::new(cache_entries),
            bus,
            metrics,
            import: std::sync::Mutex::default(),
        };
        subscribers
            .cache
            .new_epoch(subscribers.bus.reader_connections());
        subscribers.report();
        subscribers
    }

    /// Subscribers in `store` for one process alone (tools, tests): the
    /// news of its writes goes nowhere else.
    pub fn in_process(store: Arc<dyn Store>, cache_entries: usize) -> Self {
        Self::new(store, EventBus::in_process(), Arc::default(), cache_entries)
    }

    /// The store behind them (the registry writes there).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The bus their news goes out on.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Whom a call forwarded from `forwarded_from` (when the provider says)
    /// to `to` may be for: subscriber `forwarded_from` when it is one,
    /// otherwise everyone forwarding to `to`.
    pub async fn for_forwarded_call(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Found {
        let readers = self.bus.reader_connections();
        let found = match self.cache.candidates(forwarded_from, to, readers) {
            Cached::Known(subscribers) => Found {
                subscribers,
                source: LookupSource::Cache,
            },
            Cached::Unknown => {
                let ticket = self.cache.read_began();
                match self
                    .store
                    .candidates_for_forwarded_call(forwarded_from, to)
                    .await
                {
                    Ok(read) => {
                        let from: Option<Subscriber> =
                            read.forwarded_from.as_ref().map(|r| r.subscriber.clone());
                        let all: Option<Vec<Subscriber>> = read
                            .forwarding_to
                            .as_ref()
                            .map(|all| all.iter().map(|r| r.subscriber.clone()).collect());
                        self.cache.found_for_forwarded_call(
                            ticket,
                            forwarded_from.map(|n| (n, from.as_ref())),
                            all.as_deref().map(|all| (to, all)),
                        );
                        self.metrics.subscriber_cache_entries(self.cache.len());
                        Found {
                            subscribers: read
                                .candidates()
                                .into_iter()
                                .map(|r| Arc::new(r.subscriber))
                                .collect(),
                            source: LookupSource::Store,
                        }
                    }
                    Err(err) => {
                        tracing::error!(
                            error = format!("{err:#}"),
                            "store failed; using last known subscribers"
                        );
                        Found {
                            subscribers: self.cache.last_known_candidates(forwarded_from, to),
                            source: LookupSource::LastKnown,
                        }
                    }
                }
            }
        };
        self.metrics.subscriber_lookup(found.source);
        found
    }

    /// Subscriber `number` as it is now; when the store fails, as this
    /// process last knew it.
    pub async fn current(&self, number: &PhoneNumber) -> Option<Arc<Subscriber>> {
        if let Cached::Known(found) = self.cache.subscriber(number, self.bus.reader_connections()) {
            return found;
        }
        let ticket = self.cache.read_began();
        match self.store.subscriber(number).await {
            Ok(record) => {
                let found = record.map(|r| r.subscriber);
                self.cache.found(ticket, number, found.as_ref());
                found.map(Arc::new)
            }
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "store failed; using last known subscriber"
                );
                self.cache.last_known(number)
            }
        }
    }

    /// The stored record of subscriber `number`, read from the store.
    pub async fn record(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        self.store.subscriber(number).await
    }

    /// This instance wrote `subscriber` (which forwarded to
    /// `old_forwarding` before): known here at once, and news for every
    /// instance.
    pub(crate) async fn written(
        &self,
        subscriber: &Subscriber,
        old_forwarding: Option<&PhoneNumber>,
    ) {
        self.cache.changed(&subscriber.number, Some(subscriber));
        let mut forwarding = vec![subscriber.forwarding_number.clone()];
        forwarding.extend(
            old_forwarding
                .filter(|f| **f != subscriber.forwarding_number)
                .cloned(),
        );
        self.bus
            .subscribers_changed(SubscriberChange {
                numbers: vec![subscriber.number.clone()],
                forwarding,
            })
            .await;
    }

    /// This instance removed subscriber `number`, which forwarded to
    /// `forwarding`.
    pub(crate) async fn removed(&self, number: &PhoneNumber, forwarding: Option<&PhoneNumber>) {
        self.cache.changed(number, None);
        self.bus
            .subscribers_changed(SubscriberChange {
                numbers: vec![number.clone()],
                forwarding: forwarding.into_iter().cloned().collect(),
            })
            .await;
    }

    pub(crate) fn importing(&self, progress: Arc<ImportProgress>) {
        *self.import.lock().unwrap_or_else(|p| p.into_inner()) = Some(progress);
    }

    /// How the import of `SUBSCRIBERS_FILE` is going, when there is one.
    pub fn import_status(&self) -> Option<ImportStatus> {
        self.import
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|p| p.status())
    }

    /// This instance imported `numbers` (which forwarded, before and after,
    /// to `forwarding`): dropped here, and one piece of news for every
    /// instance.
    pub(crate) async fn imported(&self, numbers: Vec<PhoneNumber>, forwarding: Vec<PhoneNumber>) {
        self.cache.dropped(&numbers, &forwarding);
        self.bus
            .subscribers_changed(SubscriberChange {
                numbers,
                forwarding,
            })
            .await;
    }

    /// How many subscribers the cache holds.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache vouches for what it holds.
    pub fn is_fresh(&self) -> bool {
        self.cache.is_fresh(self.bus.reader_connections())
    }

    fn report(&self) {
        self.metrics.subscriber_cache_fresh(self.is_fresh());
        self.metrics.subscriber_cache_entries(self.cache.len());
    }

    /// Reads up to [`WARM_UP`] subscribers into the cache: the last-known
    /// copy, should the store go away before they are asked for. A read like
    /// any other: news that comes meanwhile wins.
    pub async fn warm_up(self: Arc<Self>) {
        // Subscribers stored before the listing index existed join it.
        if let Err(err) = self.store.index_subscribers().await {
            tracing::warn!(
                error = format!("{err:#}"),
                "could not index the subscribers"
            );
        }
        let ticket = self.cache.read_began();
        let limit = WARM_UP.min(self.cache.capacity());
        match self.store.some_subscribers(limit).await {
            Ok(records) => {
                for record in &records {
                    self.cache
                        .found(ticket, &record.subscriber.number, Some(&record.subscriber));
                }
                tracing::info!(count = records.len(), "subscribers cached");
            }
            Err(err) => tracing::warn!(
                error = format!("{err:#}"),
                "cannot read the subscribers yet; the voice routes ask the store"
            ),
        }
        self.report();
    }

    /// Keeps the cache current until `stop`: applies the bus's news in bus
    /// order, and drops what it vouched for after a gap.
    pub async fn keep(self: Arc<Self>, stop: CancellationToken) {
        let mut news = self.bus.watch_subscribers();
        loop {
            let received = tokio::select! {
                () = stop.cancelled() => return,
                received = news.recv() => received,
            };
            match received {
                Ok(SubscriberNews::Changed(change)) => self.apply(change).await,
                Ok(SubscriberNews::Resumed) => {
                    if !self.is_fresh() {
                        tracing::info!(
                            "the bus reader connected again; the subscriber cache drops what it vouched for"
                        );
                        self.cache.new_epoch(self.bus.reader_connections());
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(
                        missed,
                        "the subscriber cache fell behind the bus; it drops what it vouched for"
                    );
                    self.cache.new_epoch(self.bus.reader_connections());
                }
                Err(RecvError::Closed) => return,
            }
            self.report();
        }
    }

    /// Applies news of a change: what the cache holds of a changed
    /// subscriber is read again; the rest is dropped.
    async fn apply(&self, change: SubscriberChange) {
        let (held, others): (Vec<&PhoneNumber>, Vec<&PhoneNumber>) =
            change.numbers.iter().partition(|n| self.cache.holds(n));
        if !others.is_empty() || held.is_empty() {
            let others: Vec<PhoneNumber> = others.into_iter().cloned().collect();
            self.cache.dropped(&others, &change.forwarding);
        }
        for number in held {
            match self.store.subscriber(number).await {
                Ok(record) => self
                    .cache
                    .changed(number, record.as_ref().map(|r| &r.subscriber)),
                Err(err) => {
                    tracing::debug!(error = format!("{err:#}"), subscriber = %number, "could not read a changed subscriber; no longer vouched for");
                    self.cache.unsure(number, &change.forwarding);
                }
            }
        }
    }
}
