//! The subscriber cache of one process: bounded, kept current by the bus,
//! and never guessing.
//!
//! - **What it holds.** At most `SUBSCRIBER_CACHE_ENTRIES` subscribers, the
//!   most recently used (least recently used goes first), each with the
//!   epoch it was read in; which forwarding numbers it knows *every*
//!   subscriber of (read together from the store); and, for
//!   [`NEGATIVE_TTL`], numbers that are no subscriber and forwarding
//!   numbers nobody forwards to (as many as subscribers at most).
//! - **What changes an entry.** This instance's own writes, at once; the
//!   others' through the bus's news, which updates what it holds of a
//!   subscriber (the keeper reads it again) or drops it. Each news message
//!   moves a counter on, so that a webhook's store read that raced it is
//!   not kept as vouched for (it might predate the change).
//! - **When it may have missed news** (the bus reader reconnected, or fell
//!   behind its buffer), it drops what it vouched for at once: a new epoch
//!   begins, and what earlier epochs read is only the *last known* copy,
//!   read when the store fails so that a voice webhook can still dial. It
//!   never reloads everything: what is asked for is read again, one at a
//!   time.
//!
//! The window: a subscriber written on another instance reaches this one
//! when the bus delivers the news (about a millisecond); a webhook racing
//! that millisecond is answered as if it had come a moment earlier.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::Subscriber;

/// How long "no such subscriber" and "nobody forwards to this number" are
/// believed. News of a write drops them sooner.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// The default of `SUBSCRIBER_CACHE_ENTRIES`.
pub const DEFAULT_ENTRIES: usize = 50_000;

/// A map that forgets its least recently used entry past its capacity.
struct Lru<K, V> {
    capacity: usize,
    entries: HashMap<K, (V, u64)>,
    /// Keys by when they were last used.
    order: BTreeMap<u64, K>,
    clock: u64,
}

impl<K: Clone + Eq + Hash, V> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The value of `key`, now the most recently used.
    fn get(&mut self, key: &K) -> Option<&V> {
        let tick = self.tick();
        let (_, used) = self.entries.get_mut(key)?;
        let key = self.order.remove(used).expect("every entry is ordered");
        *used = tick;
        self.order.insert(tick, key.clone());
        self.entries.get(&key).map(|(v, _)| v)
    }

    /// The value of `key`, leaving the order as it is.
    fn peek(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// Inserts `key`; returns the entries that made room for it.
    fn insert(&mut self, key: K, value: V) -> Vec<(K, V)> {
        self.remove(&key);
        let tick = self.tick();
        self.order.insert(tick, key.clone());
        self.entries.insert(key, (value, tick));
        let mut evicted = Vec::new();
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((value, _)) = self.entries.remove(&oldest) {
                evicted.push((oldest, value));
            }
        }
        evicted
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let (value, used) = self.entries.remove(key)?;
        self.order.remove(&used);
        Some(value)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }
}

/// What the cache says of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached<T> {
    /// Vouched for: current as of the last news.
    Known(T),
    /// Not cached, or not vouched for: ask the store.
    Unknown,
}

/// A negative entry's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Absent {
    /// This number is no subscriber.
    Subscriber(PhoneNumber),
    /// No subscriber forwards to this number.
    Forwarding(PhoneNumber),
}

struct Entry {
    subscriber: Arc<Subscriber>,
    /// The epoch it was read in; 0: never vouched for (last known only).
    epoch: u64,
}

struct State {
    subscribers: Lru<PhoneNumber, Entry>,
    /// The cached subscribers by forwarding number, each list in number order.
    by_forwarding: HashMap<PhoneNumber, Vec<PhoneNumber>>,
    /// Forwarding numbers whose every subscriber is cached, with the epoch
    /// that read them all.
    complete: HashMap<PhoneNumber, u64>,
    absent: Lru<Absent, Instant>,
    /// Vouched entries carry this epoch; a gap in the news begins another.
    epoch: u64,
    /// Moves on with every piece of news and every gap: a store read that
    /// began before it moved may predate a change.
    news: u64,
    /// The bus reader's connection count when this epoch began.
    reader_at: u64,
}

/// The cache. Its lock is held for map operations only, never across a
/// store read.
pub struct Cache {
    state: Mutex<State>,
}

/// Where the news counter stood when a store read began: see
/// [`Cache::read_began`].
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket {
    news: u64,
    epoch: u64,
}

impl Cache {
    /// A cache of at most `capacity` subscribers (and as many negative
    /// entries). It vouches for nothing until [`Cache::new_epoch`] names
    /// the bus reader's connection it trusts.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                subscribers: Lru::new(capacity),
                by_forwarding: HashMap::new(),
                complete: HashMap::new(),
                absent: Lru::new(capacity),
                epoch: 1,
                news: 0,
                reader_at: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, when the cache vouches for it: the bus reader is on the
    /// connection (`reader_connections`) this epoch began with.
    fn vouching(&self, reader_connections: u64) -> Option<MutexGuard<'_, State>> {
        let state = self.lock();
        (state.reader_at != 0 && state.reader_at == reader_connections).then_some(state)
    }

    /// Whether it vouches for what it holds: the bus reader is on the
    /// connection (`reader_connections`) this epoch began with.
    pub fn is_fresh(&self, reader_connections: u64) -> bool {
        self.vouching(reader_connections).is_some()
    }

    /// Drops what it vouched for (kept as last known) and the negative
    /// entries: news may have been missed. Vouches again from now on, for
    /// as long as the bus reader stays on connection `reader_connections`.
    pub fn new_epoch(&self, reader_connections: u64) {
        let mut state = self.lock();
        state.epoch += 1;
        state.news += 1;
        state.reader_at = reader_connections;
        state.complete.clear();
        state.absent.clear();
    }

    /// To call before a store read whose answer goes into the cache.
    pub fn read_began(&self) -> ReadTicket {
        let state = self.lock();
        ReadTicket {
            news: state.news,
            epoch: state.epoch,
        }
    }

    /// The subscribers a forwarded call may belong to, by the store's rule
    /// (`forwarded_from` when it is a subscriber, else everyone forwarding to
    /// `to`), when the cache vouches for the answer (an empty one included).
    pub fn candidates(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
        reader_connections: u64,
    ) -> Cached<Vec<Arc<Subscriber>>> {
        let Some(mut state) = self.vouching(reader_connections) else {
            return Cached::Unknown;
        };
        let now = Instant::now();
        if let Some(number) = forwarded_from {
            match state.vouched(number, now) {
                Cached::Known(Some(subscriber)) => return Cached::Known(vec![subscriber]),
                Cached::Known(None) => {}
                Cached::Unknown => return Cached::Unknown,
            }
        }
        state.forwarding_to(to, now)
    }

    /// Subscriber `number` when the cache vouches for it (or for its
    /// absence).
    pub fn subscriber(
        &self,
        number: &PhoneNumber,
        reader_connections: u64,
    ) -> Cached<Option<Arc<Subscriber>>> {
        match self.vouching(reader_connections) {
            Some(mut state) => state.vouched(number, Instant::now()),
            None => Cached::Unknown,
        }
    }

    /// What a store read begun at `ticket` found for a forwarded call:
    /// `forwarded_from` (when asked: `Some(found)`) and every subscriber
    /// forwarding to `to` (when read: `Some(all)`). Vouched for when no
    /// news came meanwhile; remembered as last known either way.
    pub fn found_for_forwarded_call(
        &self,
        ticket: ReadTicket,
        forwarded_from: Option<(&PhoneNumber, Option<&Subscriber>)>,
        to: Option<(&PhoneNumber, &[Subscriber])>,
    ) {
        let mut state = self.lock();
        let epoch = state.epoch_for(ticket);
        let now = Instant::now();
        if let Some((number, found)) = forwarded_from {
            state.remember(number, found, epoch, now);
        }
        if let Some((forwarding, all)) = to {
            for subscriber in all {
                state.remember(&subscriber.number, Some(subscriber), epoch, now);
            }
            if epoch != 0 {
                state.all_of(forwarding, epoch, now);
            }
        }
    }

    /// What a store read begun at `ticket` found for subscriber `number`.
    pub fn found(&self, ticket: ReadTicket, number: &PhoneNumber, found: Option<&Subscriber>) {
        let mut state = self.lock();
        let epoch = state.epoch_for(ticket);
        state.remember(number, found, epoch, Instant::now());
    }

    /// Subscriber `number` as last known, vouched for or not: for when the
    /// store fails.
    pub fn last_known(&self, number: &PhoneNumber) -> Option<Arc<Subscriber>> {
        self.lock()
            .subscribers
            .peek(number)
            .map(|e| e.subscriber.clone())
    }

    /// The candidates of a forwarded call among what it last knew, vouched
    /// for or not: for when the store fails.
    pub fn last_known_candidates(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Vec<Arc<Subscriber>> {
        let state = self.lock();
        if let Some(entry) = forwarded_from.and_then(|n| state.subscribers.peek(n)) {
            return vec![entry.subscriber.clone()];
        }
        state
            .by_forwarding
            .get(to)
            .into_iter()
            .flatten()
            .filter_map(|n| state.subscribers.peek(n))
            .map(|e| e.subscriber.clone())
            .collect()
    }

    /// News of a change: `number` is now `now_is` (`None`: removed), read
    /// by the keeper (or written by this instance) after the change. Keeps
    /// what it knew of the forwarding numbers involved complete.
    pub fn changed(&self, number: &PhoneNumber, now_is: Option<&Subscriber>) {
        let mut state = self.lock();
        state.news += 1;
        let epoch = state.epoch;
        let at = Instant::now();
        let was_complete = now_is.and_then(|s| state.complete.get(&s.forwarding_number).copied());
        state.forget(number);
        state.absent.remove(&Absent::Subscriber(number.clone()));
        if let Some(subscriber) = now_is {
            state
                .absent
                .remove(&Absent::Forwarding(subscriber.forwarding_number.clone()));
            state.remember(number, Some(subscriber), epoch, at);
            if was_complete == Some(epoch) {
                state
                    .complete
                    .insert(subscriber.forwarding_number.clone(), epoch);
            }
        } else {
            state.remember(number, None, epoch, at);
        }
    }

    /// News that `numbers` changed, when they are not worth reading again
    /// (none is cached): drops any negative entry of theirs and of
    /// `forwarding`, and stops vouching that it knows everyone forwarding
    /// to `forwarding`.
    pub fn dropped(&self, numbers: &[PhoneNumber], forwarding: &[PhoneNumber]) {
        let mut state = self.lock();
        state.news += 1;
        for number in numbers {
            state.forget(number);
            state.absent.remove(&Absent::Subscriber(number.clone()));
        }
        for number in forwarding {
            state.complete.remove(number);
            state.absent.remove(&Absent::Forwarding(number.clone()));
        }
    }

    /// News of a change to `number` that could not be read again (the
    /// store failed): no longer vouched for, kept as last known (the store
    /// is down: it may be what a call needs).
    pub fn unsure(&self, number: &PhoneNumber, forwarding: &[PhoneNumber]) {
        let mut state = self.lock();
        state.news += 1;
        if let Some(entry) = state.subscribers.entries.get_mut(number) {
            entry.0.epoch = 0;
            let held = entry.0.subscriber.forwarding_number.clone();
            state.complete.remove(&held);
        }
        state.absent.remove(&Absent::Subscriber(number.clone()));
        for f in forwarding {
            state.complete.remove(f);
            state.absent.remove(&Absent::Forwarding(f.clone()));
        }
    }

    /// Whether it vouches for subscriber `number`: news of it is then
    /// worth reading again rather than just dropping.
    pub fn holds(&self, number: &PhoneNumber) -> bool {
        let state = self.lock();
        state
            .subscribers
            .peek(number)
            .is_some_and(|e| e.epoch == state.epoch)
    }

    /// How many subscribers it holds at most.
    pub fn capacity(&self) -> usize {
        self.lock().subscribers.capacity
    }

    /// How many subscribers it holds (vouched for or last known).
    pub fn len(&self) -> usize {
        self.lock().subscribers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many negative entries it holds (expired ones included until
    /// they are looked at or make room).
    pub fn negative_len(&self) -> usize {
        self.lock().absent.len()
    }
}

impl State {
    /// The epoch a read begun at `ticket` may be vouched for in: 0 (last
    /// known only) when news or a gap came meanwhile.
    fn epoch_for(&self, ticket: ReadTicket) -> u64 {
        if ticket.news == self.news && ticket.epoch == self.epoch && self.reader_at != 0 {
            self.epoch
        } else {
            0
        }
    }

    fn vouched(&mut self, number: &PhoneNumber, now: Instant) -> Cached<Option<Arc<Subscriber>>> {
        let epoch = self.epoch;
        if let Some(entry) = self.subscribers.get(number)
            && entry.epoch == epoch
        {
            return Cached::Known(Some(entry.subscriber.clone()));
        }
        if self.negative(Absent::Subscriber(number.clone()), now) {
            return Cached::Known(None);
        }
        Cached::Unknown
    }

    fn forwarding_to(&mut self, to: &PhoneNumber, now: Instant) -> Cached<Vec<Arc<Subscriber>>> {
        if self.complete.get(to) == Some(&self.epoch) {
            let numbers = self.by_forwarding.get(to).cloned().unwrap_or_default();
            let mut found = Vec::with_capacity(numbers.len());
            for number in &numbers {
                match self.subscribers.get(number) {
                    Some(entry) => found.push(entry.subscriber.clone()),
                    // Complete marks go with evictions; never here.
                    None => return Cached::Unknown,
                }
            }
            return Cached::Known(found);
        }
        if self.negative(Absent::Forwarding(to.clone()), now) {
            return Cached::Known(Vec::new());
        }
        Cached::Unknown
    }

    /// Whether `key` is a negative entry still believed.
    fn negative(&mut self, key: Absent, now: Instant) -> bool {
        match self.absent.get(&key) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.absent.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Keeps what was read of `number` (`None`: no such subscriber) in
    /// `epoch` (0: last known only).
    fn remember(
        &mut self,
        number: &PhoneNumber,
        found: Option<&Subscriber>,
        epoch: u64,
        now: Instant,
    ) {
        match found {
            Some(subscriber) => {
                self.absent.remove(&Absent::Subscriber(number.clone()));
                // A vouched entry is not replaced by an older read.
                if epoch == 0
                    && self
                        .subscribers
                        .peek(number)
                        .is_some_and(|e| e.epoch == self.epoch)
                {
                    return;
                }
                self.forget(number);
                self.by_forwarding
                    .entry(subscriber.forwarding_number.clone())
                    .or_default()
                    .push(number.clone());
                let list = self
                    .by_forwarding
                    .get_mut(&subscriber.forwarding_number)
                    .expect("just added");
                list.sort();
                list.dedup();
                let entry = Entry {
                    subscriber: Arc::new(subscriber.clone()),
                    epoch,
                };
                for (gone, entry) in self.subscribers.insert(number.clone(), entry) {
                    self.unlist(&gone, &entry.subscriber.forwarding_number);
                }
            }
            None if epoch != 0 => {
                self.forget(number);
                self.absent
                    .insert(Absent::Subscriber(number.clone()), now + NEGATIVE_TTL);
            }
            None => {}
        }
    }

    /// Marks `forwarding` as having all its subscribers cached (an empty
    /// set as a negative entry).
    fn all_of(&mut self, forwarding: &PhoneNumber, epoch: u64, now: Instant) {
        let listed = self
            .by_forwarding
            .get(forwarding)
            .is_some_and(|l| !l.is_empty());
        if listed {
            self.complete.insert(forwarding.clone(), epoch);
        } else {
            self.absent
                .insert(Absent::Forwarding(forwarding.clone()), now + NEGATIVE_TTL);
        }
    }

    /// Drops subscriber `number` (and with it the completeness of its
    /// forwarding number, unless the caller restores it).
    fn forget(&mut self, number: &PhoneNumber) {
        if let Some(entry) = self.subscribers.remove(number) {
            self.unlist(number, &entry.subscriber.forwarding_number);
        }
    }

    fn unlist(&mut self, number: &PhoneNumber, forwarding: &PhoneNumber) {
        self.complete.remove(forwarding);
        if let Some(list) = self.by_forwarding.get_mut(forwarding) {
            list.retain(|n| n != number);
            if list.is_empty() {
                self.by_forwarding.remove(forwarding);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;
    use crate::domain::subscriber::{SpecRules, SubscriberSpec};

    /// The bus reader's connection the tests' cache trusts.
    const READER: u64 = 1;

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, Region::default()).unwrap()
    }

    fn subscriber(number_: &str, forwarding: &str) -> Subscriber {
        let spec: SubscriberSpec = serde_json::from_value(serde_json::json!({
            "forwarding_number": forwarding,
            "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
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

    fn cache(capacity: usize) -> Cache {
        let cache = Cache::new(capacity);
        cache.new_epoch(READER);
        cache
    }

    /// What a store read found of subscriber `s`, as a voice webhook reads it.
    fn read(cache: &Cache, s: &Subscriber) {
        let ticket = cache.read_began();
        cache.found_for_forwarded_call(
            ticket,
            None,
            Some((&s.forwarding_number, std::slice::from_ref(s))),
        );
    }

    fn numbers(found: Cached<Vec<Arc<Subscriber>>>) -> Option<Vec<String>> {
        match found {
            Cached::Known(all) => Some(all.iter().map(|s| s.number.to_string()).collect()),
            Cached::Unknown => None,
        }
    }

    #[test]
    fn it_holds_at_most_its_capacity_and_forgets_the_least_recently_used() {
        let cache = cache(2);
        let [a, b, c] = [
            subscriber("+12025550191", "+12025550101"),
            subscriber("+12025550192", "+12025550102"),
            subscriber("+12025550193", "+12025550103"),
        ];
        read(&cache, &a);
        read(&cache, &b);
        // A is used again: B is now the least recently used.
        assert!(numbers(cache.candidates(None, &a.forwarding_number, READER)).is_some());
        read(&cache, &c);

        assert_eq!(cache.len(), 2);
        assert_eq!(
            numbers(cache.candidates(None, &a.forwarding_number, READER)),
            Some(vec!["+12025550191".into()])
        );
        assert_eq!(
            numbers(cache.candidates(None, &b.forwarding_number, READER)),
            None,
            "evicted: asked of the store, never answered as nobody"
        );
        assert!(cache.last_known(&b.number).is_none());
    }

    #[test]
    fn a_forwarding_number_is_answered_only_while_all_its_subscribers_are_held() {
        let cache = cache(2);
        let shared = "+12025550100";
        let (a, b) = (
            subscriber("+12025550191", shared),
            subscriber("+12025550192", shared),
        );
        let ticket = cache.read_began();
        cache.found_for_forwarded_call(
            ticket,
            None,
            Some((&number(shared), &[a.clone(), b.clone()])),
        );
        assert_eq!(
            numbers(cache.candidates(None, &number(shared), READER)),
            Some(vec!["+12025550191".into(), "+12025550192".into()])
        );
        // Another subscriber pushes one of the two out.
        read(&cache, &subscriber("+12025550193", "+12025550103"));
        assert_eq!(
            numbers(cache.candidates(None, &number(shared), READER)),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_number_is_answered_as_nobody_for_a_while_then_asked_again() {
        let cache = cache(10);
        let nobody = number("+12025550177");
        let ticket = cache.read_began();
        cache.found_for_forwarded_call(
            ticket,
            Some((&number("+12025550199"), None)),
            Some((&nobody, &[])),
        );
        assert_eq!(
            numbers(cache.candidates(Some(&number("+12025550199")), &nobody, READER)),
            Some(vec![])
        );
        tokio::time::advance(NEGATIVE_TTL).await;
        assert_eq!(numbers(cache.candidates(None, &nobody, READER)), None);
    }

    #[test]
    fn news_updates_what_it_holds_and_drops_the_negative_entries_it_concerns() {
        let cache = cache(10);
        let alice = subscriber("+12025550191", "+12025550101");
        read(&cache, &alice);
        let ticket = cache.read_began();
        cache.found(ticket, &number("+12025550192"), None);

        let moved = subscriber("+12025550191", "+12025550102");
        cache.changed(&alice.number, Some(&moved));
        assert_eq!(
            numbers(cache.candidates(None, &alice.forwarding_number, READER)),
            None,
            "the number it left is asked of the store"
        );
        assert_eq!(
            cache.subscriber(&alice.number, READER),
            Cached::Known(Some(Arc::new(moved)))
        );

        // Bob registers: news drops "no such subscriber".
        cache.dropped(&[number("+12025550192")], &[number("+12025550102")]);
        assert_eq!(
            cache.subscriber(&number("+12025550192"), READER),
            Cached::Unknown
        );
    }

    #[test]
    fn a_read_that_raced_news_is_kept_as_last_known_only() {
        let cache = cache(10);
        let alice = subscriber("+12025550191", "+12025550101");
        let ticket = cache.read_began();
        // News arrives while the read is on its way back.
        cache.dropped(std::slice::from_ref(&alice.number), &[]);
        cache.found(ticket, &alice.number, Some(&alice));
        assert_eq!(cache.subscriber(&alice.number, READER), Cached::Unknown);
        assert!(cache.last_known(&alice.number).is_some());
    }

    #[test]
    fn missed_news_drops_what_it_vouched_for_but_keeps_a_last_known_copy() {
        let cache = cache(10);
        let alice = subscriber("+12025550191", "+12025550101");
        read(&cache, &alice);
        assert!(cache.is_fresh(READER));

        // The bus reader reconnected: news may have been lost meanwhile.
        assert!(!cache.is_fresh(READER + 1));
        assert_eq!(
            numbers(cache.candidates(None, &alice.forwarding_number, READER + 1)),
            None
        );
        cache.new_epoch(READER + 1);
        assert_eq!(
            numbers(cache.candidates(None, &alice.forwarding_number, READER + 1)),
            None,
            "never stale: asked of the store again"
        );
        assert_eq!(
            cache
                .last_known_candidates(None, &alice.forwarding_number)
                .len(),
            1,
            "still there for an outage"
        );
    }
}
