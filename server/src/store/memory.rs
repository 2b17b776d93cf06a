//! The embedded store: plain maps behind one mutex, for a single instance.
//! A std mutex is right here: it is never held across an `.await`, and every
//! critical section is a few map operations.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    ForwardedCallSubscribers, HISTORY_CAP, RateLimits, SWEEP_GRACE, SessionCreated, SessionStore,
    Store, StoreError, SubscriberRecord, SubscriberStore, Swept, WindowCount,
};
use crate::domain::credentials::{TokenHash, TokenOwner};
use crate::domain::ids::CallSid;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{Claim, Session, SessionId};
use crate::domain::time::Timestamp;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    subscribers: HashMap<PhoneNumber, SubscriberRecord>,
    by_forwarding_number: HashMap<PhoneNumber, BTreeSet<PhoneNumber>>,
    tokens: HashMap<TokenHash, TokenOwner>,
    sessions: HashMap<SessionId, StoredSession>,
    /// Sessions awaiting a forwarded call, by subscriber and caller, ordered
    /// by instruction time.
    awaiting: HashMap<(PhoneNumber, Caller), BTreeSet<(i64, SessionId)>>,
    /// Every session awaiting a forwarded call, by instruction time: the
    /// forward deadlines.
    due: BTreeSet<(i64, SessionId)>,
    /// Every session that is not over, by the end of its lifetime.
    idle: BTreeSet<(Instant, SessionId)>,
    /// Each subscriber's listed sessions, by when they began: at most
    /// `HISTORY_CAP`.
    history: HashMap<PhoneNumber, BTreeSet<(i64, SessionId)>>,
    device_calls: HashMap<(PhoneNumber, String), SessionId>,
    /// The session each forwarded call took, for retried webhooks.
    calls: HashMap<CallSid, SessionId>,
    windows: HashMap<String, (u64, Instant)>,
    writes_since_sweep: u32,
}

struct StoredSession {
    session: Session,
    /// Kept apart from the session, as in Redis: a write of a session read
    /// before the claim must not undo the claim.
    claim: Option<Claim>,
    /// When the record goes.
    deadline: Instant,
    /// When its lifetime runs out, unless it is over; its entry in `idle`.
    idle_until: Option<Instant>,
    /// Writes and claims so far.
    version: u64,
}

impl StoredSession {
    fn view(&self) -> Session {
        let mut session = self.session.clone();
        session.set_version(self.version);
        if let Some(claim) = &self.claim
            && session.call_sid().is_none()
        {
            session.apply_claim(claim.clone());
        }
        session
    }
}

/// Expired entries are dropped when read, and swept every this many writes
/// so that memory stays bounded by the live ones.
const SWEEP_EVERY_WRITES: u32 = 1024;

impl MemoryStore {
    /// Every subscriber forwarding to `forwarding_number`, by number.
    fn forwarding_to(&self, forwarding_number: &PhoneNumber) -> Vec<SubscriberRecord> {
        let inner = self.lock();
        let Some(numbers) = inner.by_forwarding_number.get(forwarding_number) else {
            return Vec::new();
        };
        numbers
            .iter()
            .filter_map(|n| inner.subscribers.get(n).cloned())
            .collect()
    }

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

fn awaiting_key(session: &Session) -> (PhoneNumber, Caller) {
    (session.subscriber().clone(), session.caller().clone())
}

fn instructed_millis(session: &Session) -> i64 {
    session
        .timeline()
        .instructed_at
        .map_or(0, |t| t.unix_millis())
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

    fn live_session(&mut self, id: &SessionId, now: Instant) -> Option<&mut StoredSession> {
        if self.sessions.get(id).is_some_and(|s| s.deadline <= now) {
            self.sessions.remove(id);
        }
        self.sessions.get_mut(id)
    }

    fn write_session(&mut self, session: &Session, ttl: Duration, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY_WRITES {
            self.writes_since_sweep = 0;
            self.sweep(now);
        }
        let (claim, previous_version) = match self.sessions.remove(session.id()) {
            Some(old) => {
                if let Some(until) = old.idle_until {
                    self.idle.remove(&(until, session.id().clone()));
                }
                (old.claim, Some(old.version))
            }
            None => (None, None),
        };
        let index = self.awaiting.entry(awaiting_key(session)).or_default();
        // Keyed by id, whatever time an earlier write carried.
        index.retain(|(_, id)| id != session.id());
        self.due.retain(|(_, id)| id != session.id());
        if session.awaits_forwarded_call() && claim.is_none() {
            let entry = (instructed_millis(session), session.id().clone());
            index.insert(entry.clone());
            self.due.insert(entry);
        }
        if let Some(call_id) = session.device_call_id() {
            self.device_calls.insert(
                (session.subscriber().clone(), call_id.to_owned()),
                session.id().clone(),
            );
        }
        let listed = self
            .history
            .entry(session.subscriber().clone())
            .or_default();
        listed.insert((session.began_at_millis(), session.id().clone()));
        let mut dropped = Vec::new();
        while listed.len() > HISTORY_CAP {
            dropped.extend(listed.pop_first().map(|(_, id)| id));
        }
        // An ended session that drops out of the history goes; one not over
        // yet stays.
        for id in dropped {
            if self.sessions.get(&id).is_some_and(|s| s.view().is_over()) {
                self.sessions.remove(&id);
            }
        }
        let mut stored = StoredSession {
            session: session.clone(),
            claim,
            deadline: now + ttl,
            idle_until: None,
            // A new session starts at 0, as a fresh `Session` does.
            version: previous_version.map_or(0, |v| v + 1),
        };
        self.set_lifetime(&mut stored, ttl, now);
        self.sessions.insert(session.id().clone(), stored);
    }

    /// `stored` was just written: it lives `ttl` from `now`, and one not
    /// over yet is kept longer, for the sweep to end it.
    fn set_lifetime(&mut self, stored: &mut StoredSession, ttl: Duration, now: Instant) {
        let id = stored.session.id().clone();
        if let Some(until) = stored.idle_until.take() {
            self.idle.remove(&(until, id.clone()));
        }
        stored.deadline = now + ttl;
        if !stored.view().is_over() {
            stored.idle_until = Some(now + ttl);
            stored.deadline += SWEEP_GRACE;
            self.idle.insert((now + ttl, id));
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.sessions.retain(|_, s| s.deadline > now);
        let sessions = &self.sessions;
        self.awaiting.retain(|_, index| {
            index.retain(|(_, id)| sessions.contains_key(id));
            !index.is_empty()
        });
        self.due.retain(|(_, id)| sessions.contains_key(id));
        self.idle.retain(|(_, id)| sessions.contains_key(id));
        self.history.retain(|_, listed| {
            listed.retain(|(_, id)| sessions.contains_key(id));
            !listed.is_empty()
        });
        self.device_calls.retain(|_, id| sessions.contains_key(id));
        self.calls.retain(|_, id| sessions.contains_key(id));
        self.windows.retain(|_, (_, ends)| *ends > now);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl SubscriberStore for MemoryStore {
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

    async fn some_subscribers(&self, limit: usize) -> Result<Vec<SubscriberRecord>, StoreError> {
        Ok(self
            .lock()
            .subscribers
            .values()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn list_subscribers(
        &self,
        after: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let inner = self.lock();
        let mut numbers: Vec<&PhoneNumber> = inner
            .subscribers
            .keys()
            .filter(|n| after.is_none_or(|a| n.as_str() > a.as_str()))
            .collect();
        numbers.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(numbers
            .into_iter()
            .take(limit)
            .filter_map(|n| inner.subscribers.get(n).cloned())
            .collect())
    }

    async fn index_subscribers(&self) -> Result<usize, StoreError> {
        // The map is the index.
        Ok(self.lock().subscribers.len())
    }

    async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(old) = inner.subscribers.remove(number) else {
            return Ok(false);
        };
        inner.unindex(&old);
        Ok(true)
    }

    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        Ok(self.lock().tokens.get(hash).cloned())
    }

    async fn candidates_for_forwarded_call(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Result<ForwardedCallSubscribers, StoreError> {
        Ok(ForwardedCallSubscribers {
            forwarded_from: forwarded_from.and_then(|n| self.lock().subscribers.get(n).cloned()),
            forwarding_to: Some(self.forwarding_to(to)),
        })
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        session: &Session,
        ttl: Duration,
    ) -> Result<SessionCreated, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(call_id) = session.device_call_id() {
            let key = (session.subscriber().clone(), call_id.to_owned());
            if let Some(existing) = inner.device_calls.get(&key).cloned() {
                // This very session: written already (as a resent create is
                // on Redis), not a retried report.
                if existing == *session.id() && inner.live_session(&existing, now).is_some() {
                    return Ok(SessionCreated::Created);
                }
                if let Some(stored) = inner.live_session(&existing, now) {
                    return Ok(SessionCreated::Existing(Box::new(stored.view())));
                }
            }
        }
        inner.write_session(session, ttl, now);
        Ok(SessionCreated::Created)
    }

    async fn update_session(
        &self,
        session: &mut Session,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let current = inner.live_session(session.id(), now).map(|s| s.version);
        if current != Some(session.version()) {
            return Ok(false);
        }
        inner.write_session(session, ttl, now);
        session.set_version(session.version() + 1);
        Ok(true)
    }

    async fn open_sessions(&self, subscriber: &PhoneNumber) -> Result<Vec<SessionId>, StoreError> {
        let now = Instant::now();
        let inner = self.lock();
        Ok(inner
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline > now && s.session.subscriber() == subscriber)
            .filter(|(_, s)| !s.view().is_over())
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn session_history(&self, subscriber: &PhoneNumber) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let inner = self.lock();
        let Some(listed) = inner.history.get(subscriber) else {
            return Ok(Vec::new());
        };
        Ok(listed
            .iter()
            .rev()
            .filter_map(|(_, id)| inner.sessions.get(id))
            .filter(|s| s.deadline > now)
            .map(StoredSession::view)
            .collect())
    }

    async fn recent_sessions(
        &self,
        after: Option<(i64, &SessionId)>,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let now = Instant::now();
        let inner = self.lock();
        let mut listed: Vec<&(i64, SessionId)> = inner
            .history
            .values()
            .flatten()
            .filter(|(began, id)| {
                after.is_none_or(|(b, a)| (*began, id.as_str()) < (b, a.as_str()))
            })
            .collect();
        listed.sort_unstable_by(|a, b| (b.0, b.1.as_str()).cmp(&(a.0, a.1.as_str())));
        Ok(listed
            .into_iter()
            .filter_map(|(_, id)| inner.sessions.get(id))
            .filter(|s| s.deadline > now)
            .take(limit)
            .map(StoredSession::view)
            .collect())
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self
            .lock()
            .live_session(id, Instant::now())
            .map(|s| s.view()))
    }

    async fn claim_session(
        &self,
        subscribers: &[PhoneNumber],
        caller: &Caller,
        claim: &Claim,
        not_instructed_before: Timestamp,
        unreported: Option<&Session>,
        ttl: Duration,
    ) -> Result<Option<Session>, StoreError> {
        let now = Instant::now();
        let cutoff = not_instructed_before.unix_millis();
        let mut inner = self.lock();
        if let Some(earlier) = inner.calls.get(&claim.call_sid).cloned()
            && let Some(stored) = inner.live_session(&earlier, now)
        {
            return Ok(Some(stored.view()));
        }
        loop {
            // The most recent entry across the candidates' indexes.
            let best = subscribers
                .iter()
                .filter_map(|s| {
                    let index = inner.awaiting.get(&(s.clone(), caller.clone()))?;
                    index.last().map(|e| (s.clone(), e.clone()))
                })
                .filter(|(_, (instructed, _))| *instructed >= cutoff)
                .max_by_key(|(_, (instructed, _))| *instructed);
            let Some((subscriber, entry)) = best else {
                break;
            };
            if let Some(index) = inner.awaiting.get_mut(&(subscriber, caller.clone())) {
                index.remove(&entry);
            }
            inner.due.remove(&entry);
            if let Some(mut stored) = inner.sessions.remove(&entry.1)
                && stored.deadline > now
                && stored.claim.is_none()
            {
                stored.claim = Some(claim.clone());
                stored.version += 1;
                inner.set_lifetime(&mut stored, ttl, now);
                let view = stored.view();
                inner.sessions.insert(entry.1.clone(), stored);
                inner.calls.insert(claim.call_sid.clone(), entry.1);
                return Ok(Some(view));
            }
            // The entry outlived its session, or a claim took it already:
            // drop it and look again.
        }
        match unreported {
            Some(session) => {
                inner.write_session(session, ttl, now);
                inner
                    .calls
                    .insert(claim.call_sid.clone(), session.id().clone());
                Ok(inner.live_session(session.id(), now).map(|s| s.view()))
            }
            None => Ok(None),
        }
    }

    async fn awaiting_sessions(
        &self,
        subscriber: &PhoneNumber,
        caller: &Caller,
    ) -> Result<Vec<SessionId>, StoreError> {
        Ok(self
            .lock()
            .awaiting
            .get(&(subscriber.clone(), caller.clone()))
            .map(|index| index.iter().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default())
    }

    async fn sweep(&self, instructed_before: Timestamp, limit: usize) -> Result<Swept, StoreError> {
        Ok(Swept {
            overdue: self.take_due_forwards(instructed_before, limit),
            idle: self.take_idle_sessions(limit),
        })
    }

    async fn session_for_call(
        &self,
        call_sid: &CallSid,
        _subscribers: &[PhoneNumber],
    ) -> Result<Option<SessionId>, StoreError> {
        Ok(self.lock().calls.get(call_sid).cloned())
    }
}

impl MemoryStore {
    fn take_due_forwards(&self, instructed_before: Timestamp, limit: usize) -> Vec<SessionId> {
        let cutoff = instructed_before.unix_millis();
        let mut inner = self.lock();
        let due: Vec<_> = inner
            .due
            .iter()
            .take_while(|(instructed, _)| *instructed < cutoff)
            .take(limit)
            .cloned()
            .collect();
        for entry in &due {
            inner.due.remove(entry);
        }
        due.into_iter().map(|(_, id)| id).collect()
    }

    fn take_idle_sessions(&self, limit: usize) -> Vec<(SessionId, u64)> {
        let now = Instant::now();
        let mut inner = self.lock();
        let due: Vec<_> = inner
            .idle
            .iter()
            .take_while(|(until, _)| *until <= now)
            .take(limit)
            .cloned()
            .collect();
        let mut taken = Vec::with_capacity(due.len());
        for entry in due {
            inner.idle.remove(&entry);
            if let Some(stored) = inner.sessions.get_mut(&entry.1) {
                stored.idle_until = None;
                taken.push((entry.1, stored.version));
            }
        }
        taken
    }
}

#[async_trait]
impl RateLimits for MemoryStore {
    async fn hit(&self, key: &str, window: Duration) -> Result<WindowCount, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let entry = inner
            .windows
            .entry(key.to_owned())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok(WindowCount {
            hits: entry.0,
            resets_in: entry.1 - now,
        })
    }
}
