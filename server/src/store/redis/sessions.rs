//! Sessions in Redis: each a field of its shard's hash, with the shard's
//! indexes, written and claimed by one script in the shard's slot.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use futures_util::future::{join_all, try_join_all};
use redis::AsyncCommands as _;

use super::keys::{call_field, device_call_field};
use super::scripts::{
    CLAIM_SESSION, CREATE_SESSION, OPEN_SESSIONS, PEEK_CLAIM, READ_SESSION, SESSION_HISTORY,
    SWEEP_SHARD, UPDATE_SESSION,
};
use super::{RedisStore, millis};
use crate::domain::ids::CallSid;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{Claim, Session, SessionId, Shard};
use crate::domain::time::Timestamp;
use crate::redis::RESPONSE_TIMEOUT;
use crate::store::stored::{decode_claim, encode_claim, encode_session};
use crate::store::{SWEEP_GRACE, SessionCreated, SessionStore, StoreError, Swept};

/// How far this host's clock and Redis's may disagree: a claim's deadline
/// is read on Redis's clock. (A claim applied late within this margin is
/// still harmless: the call's final status callback ends its session.)
const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(4);

/// A stored session as the scripts hand it back: data, version, claim.
type StoredSession = (Vec<u8>, Option<String>, Option<String>);

/// A session from its stored `data`, `version` and `claim`.
fn decode_session(
    data: &[u8],
    version: Option<&str>,
    claim: Option<&str>,
) -> Result<Session, StoreError> {
    let mut session = crate::store::stored::decode_session(data)
        .context("decoding a stored session")
        .map_err(StoreError::Unexpected)?;
    session.set_version(version.and_then(|v| v.parse().ok()).unwrap_or(0));
    if let Some(claim) = claim
        && session.call_sid().is_none()
    {
        session.apply_claim(decode_claim(claim).map_err(StoreError::Unexpected)?);
    }
    Ok(session)
}

fn stored_session((data, version, claim): StoredSession) -> Result<Session, StoreError> {
    decode_session(&data, version.as_deref(), claim.as_deref())
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(
        &self,
        session: &Session,
        ttl: Duration,
    ) -> Result<SessionCreated, StoreError> {
        let mut invocation = CREATE_SESSION.prepare_invoke();
        self.session_write(&mut invocation, session, ttl);
        if let Some(listing) = self.listing_in_script() {
            invocation.key(listing);
        }
        let answer: Vec<redis::Value> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("creating a session"))?;
        match self.announced(session_shard(session), answer).await? {
            // Nothing: this very write, resent after its answer was lost.
            ScriptAnswer::Stored | ScriptAnswer::Nothing => {
                self.list_globally_after(session).await?;
                Ok(SessionCreated::Created)
            }
            ScriptAnswer::Session(stored) => {
                Ok(SessionCreated::Existing(Box::new(stored_session(stored)?)))
            }
        }
    }

    async fn update_session(
        &self,
        session: &mut Session,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut invocation = UPDATE_SESSION.prepare_invoke();
        self.session_write(&mut invocation, session, ttl);
        let (announce, written): (i64, i64) = invocation
            .arg(session.version())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("updating a session"))?;
        self.announce(session_shard(session), announce).await?;
        if written == 1 {
            session.set_version(session.version() + 1);
        }
        Ok(written == 1)
    }

    async fn open_sessions(&self, subscriber: &PhoneNumber) -> Result<Vec<SessionId>, StoreError> {
        let shard = self.keys.shard(Shard::of(subscriber));
        let ids: Vec<String> = OPEN_SESSIONS
            .key(shard.history(subscriber))
            .key(shard.life())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("reading open sessions"))?;
        // Entries of sessions that expired meanwhile are harmless: reading
        // such a session finds nothing.
        Ok(ids
            .iter()
            .filter_map(|id| SessionId::parse(id).ok())
            .collect())
    }

    async fn session_history(&self, subscriber: &PhoneNumber) -> Result<Vec<Session>, StoreError> {
        let shard = self.keys.shard(Shard::of(subscriber));
        let raw: Vec<Vec<u8>> = SESSION_HISTORY
            .key(shard.history(subscriber))
            .key(shard.sessions())
            .key(shard.life())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("reading a history"))?;
        let text = |v: &Vec<u8>| (!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned());
        raw.chunks_exact(3)
            .map(|s| decode_session(&s[0], text(&s[1]).as_deref(), text(&s[2]).as_deref()))
            .collect()
    }

    async fn recent_sessions(
        &self,
        after: Option<(i64, &SessionId)>,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let mut found = Vec::with_capacity(limit);
        let mut from = after.map(|(began, id)| (began, id.clone()));
        // Entries of sessions that went are skipped (and dropped): a few
        // pages at most, read a page of ids and its sessions at a time.
        while found.len() < limit {
            let want = (limit - found.len()).max(16);
            let max = from
                .as_ref()
                .map_or_else(|| "+inf".to_owned(), |(began, _)| began.to_string());
            let listed: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(self.keys.sessions())
                .arg(max)
                .arg("-inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                // Entries sharing the cursor's start, up to the cursor, are
                // read again and skipped: a few at most.
                .arg(want + 8)
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("listing sessions"))?;
            let page: Vec<(i64, SessionId)> = listed
                .iter()
                .filter_map(|(id, began)| Some((*began as i64, SessionId::parse(id).ok()?)))
                .filter(|(began, id)| {
                    from.as_ref()
                        .is_none_or(|(b, a)| (*began, id.as_str()) < (*b, a.as_str()))
                })
                .take(want)
                .collect();
            let Some(last) = page.last().cloned() else {
                break;
            };
            // A session is listed while its subscriber's history lists it
            // (the newest HISTORY_CAP of each).
            let reads = page.iter().map(|(_, id)| async move {
                let Some(session) = self.session(id).await? else {
                    return Ok::<_, StoreError>(None);
                };
                let listed: Option<f64> = self
                    .conn()
                    .zscore(
                        self.keys
                            .shard(session_shard(&session))
                            .history(session.subscriber()),
                        id.as_str(),
                    )
                    .await
                    .map_err(self.failed("listing sessions"))?;
                Ok(listed.map(|_| session))
            });
            let sessions = try_join_all(reads).await?;
            let gone: Vec<&str> = page
                .iter()
                .zip(&sessions)
                .filter(|(_, s)| s.is_none())
                .map(|((_, id), _)| id.as_str())
                .collect();
            if !gone.is_empty() {
                self.conn()
                    .zrem::<_, _, ()>(self.keys.sessions(), gone)
                    .await
                    .map_err(self.failed("listing sessions"))?;
            }
            found.extend(sessions.into_iter().flatten());
            from = Some(last);
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let shard = self.keys.shard(id.shard());
        let stored: Option<StoredSession> = READ_SESSION
            .key(shard.sessions())
            .key(shard.life())
            .arg(id.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("reading a session"))?;
        stored.map(stored_session).transpose()
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
        let mut by_shard: BTreeMap<Shard, Vec<&PhoneNumber>> = BTreeMap::new();
        for subscriber in subscribers {
            by_shard
                .entry(Shard::of(subscriber))
                .or_default()
                .push(subscriber);
        }
        if let Some(session) = unreported {
            by_shard.entry(session_shard(session)).or_default();
        }
        let request = ClaimRequest {
            caller,
            claim,
            not_instructed_before,
            ttl,
        };
        // With `store_unreported`, stores the unreported session when the
        // shard has nothing to claim.
        let claim_in = |shard: Shard, store_unreported: bool| {
            let subscribers = by_shard.get(&shard).cloned().unwrap_or_default();
            let request = &request;
            let unreported = unreported.filter(|_| store_unreported);
            async move {
                self.claim_in_shard(shard, &subscribers, request, unreported)
                    .await
            }
        };
        // The usual case, a dedicated forwarding number (or subscribers
        // sharing one that share a shard): one script, one round trip.
        if by_shard.len() == 1 {
            let shard = *by_shard.keys().next().expect("one shard");
            return claim_in(shard, true).await;
        }
        // Subscribers of several shards share the forwarding number: no
        // script may span shards, so look first, then claim shard by shard,
        // best entry first. A session is still claimed once: its entries
        // live in its own shard, and only a claim there can take them.
        // (Only an unambiguous subscriber gets an unreported session, so
        // there is none to store here but in the degenerate case above.)
        let peeks = join_all(by_shard.iter().map(|(shard, subscribers)| async move {
            let peek = self
                .peek_claim(
                    *shard,
                    subscribers,
                    caller,
                    &claim.call_sid,
                    not_instructed_before,
                )
                .await;
            (*shard, peek)
        }))
        .await;
        let mut ranked = Vec::new();
        for (shard, peek) in peeks {
            match peek? {
                // A retried webhook: that shard hands its session back.
                (true, _) => return claim_in(shard, false).await,
                (false, Some(best)) => ranked.push((best, shard)),
                (false, None) => {}
            }
        }
        ranked.sort_by(|a, b| b.cmp(a));
        for (_, shard) in ranked {
            if let Some(session) = claim_in(shard, false).await? {
                return Ok(Some(session));
            }
        }
        match unreported {
            Some(session) => claim_in(session_shard(session), true).await,
            None => Ok(None),
        }
    }

    async fn awaiting_sessions(
        &self,
        subscriber: &PhoneNumber,
        caller: &Caller,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ids: Vec<String> = self
            .conn()
            .zrange(
                self.keys
                    .shard(Shard::of(subscriber))
                    .awaiting(subscriber, caller),
                0,
                -1,
            )
            .await
            .map_err(self.failed("reading awaiting sessions"))?;
        Ok(ids
            .iter()
            .filter_map(|id| SessionId::parse(id).ok())
            .collect())
    }

    async fn sweep(&self, instructed_before: Timestamp, limit: usize) -> Result<Swept, StoreError> {
        let due: Vec<Shard> = if self.visit_every_shard_now_and_then().await? {
            Shard::all().collect()
        } else {
            // Only the shards the index says have work: an idle deployment
            // costs this one command a sweep, whatever the number of shards.
            let bound = instructed_before
                .after(self.forward_timeout)
                .max(Timestamp::now())
                .unix_millis();
            let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(self.keys.sweep())
                .arg("-inf")
                .arg(bound)
                .arg("LIMIT")
                .arg(0)
                .arg(Shard::COUNT)
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("sweeping"))?;
            due.iter()
                .filter_map(|s| shard_numbered(s.parse().ok()?))
                .collect()
        };
        let mut swept = Swept::default();
        // Earliest first, up to `limit` of each kind.
        for shard in due {
            let keys = self.keys.shard(shard);
            let [legacy_gone, legacy_idle] = keys.legacy_lifetimes();
            let (overdue, idle, next): (Vec<String>, Vec<(String, u64)>, i64) = SWEEP_SHARD
                .key(keys.due())
                .key(keys.life())
                .key(keys.sessions())
                .key(keys.next())
                .key(legacy_gone)
                .key(legacy_idle)
                .arg(instructed_before.unix_millis())
                .arg(limit - swept.overdue.len().min(limit))
                .arg(limit - swept.idle.len().min(limit))
                .arg(millis(self.forward_timeout))
                .arg(millis(SWEEP_GRACE))
                .invoke_async(&mut self.conn())
                .await
                .map_err(self.failed("sweeping"))?;
            swept
                .overdue
                .extend(overdue.iter().filter_map(|id| SessionId::parse(id).ok()));
            swept.idle.extend(
                idle.into_iter()
                    .filter_map(|(id, version)| Some((SessionId::parse(&id).ok()?, version))),
            );
            self.told_index(shard, next).await?;
        }
        Ok(swept)
    }

    async fn session_for_call(
        &self,
        call_sid: &CallSid,
        subscribers: &[PhoneNumber],
    ) -> Result<Option<SessionId>, StoreError> {
        // Once per forwarded call (its final status): where its
        // subscribers' sessions are, then (none given, or another
        // subscriber's call) every shard.
        let field = call_field(call_sid);
        let likely: BTreeSet<Shard> = subscribers.iter().map(Shard::of).collect();
        if !likely.is_empty()
            && let Some(id) = self.call_in_shards(&field, likely.iter().copied()).await?
        {
            return Ok(Some(id));
        }
        self.call_in_shards(&field, Shard::all()).await
    }
}

impl RedisStore {
    /// The keys and arguments shared by the session-writing scripts.
    fn session_write(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        session: &Session,
        ttl: Duration,
    ) {
        let shard = self.keys.shard(session_shard(session));
        let subscriber = session.subscriber();
        invocation
            .key(shard.sessions())
            .key(shard.life())
            .key(shard.awaiting(subscriber, session.caller()))
            .key(shard.due())
            .key(shard.history(subscriber))
            .key(shard.next());

        invocation
            .arg(encode_session(session))
            .arg(millis(ttl))
            .arg(flag(session.awaits_forwarded_call()))
            .arg(session.id().as_str())
            .arg(
                session
                    .timeline()
                    .instructed_at
                    .map_or(0, |t| t.unix_millis()),
            )
            .arg(flag(session.is_over()))
            .arg(millis(SWEEP_GRACE))
            .arg(session.began_at_millis())
            .arg(millis(self.forward_timeout))
            .arg(
                session
                    .device_call_id()
                    .map(|call_id| device_call_field(subscriber, call_id))
                    .unwrap_or_default(),
            );
    }

    /// A write's answer: tells the sweep index what it says to, and hands
    /// back the rest: whether the script stored what it was given, or a
    /// session's {data, version, claim}.
    async fn announced(
        &self,
        shard: Shard,
        answer: Vec<redis::Value>,
    ) -> Result<ScriptAnswer, StoreError> {
        let mut answer = answer.into_iter();
        let announce: i64 = answer
            .next()
            .map(redis::from_redis_value)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or(-1);
        self.announce(shard, announce).await?;
        let rest: Vec<redis::Value> = answer.collect();
        match rest.as_slice() {
            [] => return Ok(ScriptAnswer::Nothing),
            [redis::Value::Int(1)] => return Ok(ScriptAnswer::Stored),
            _ => {}
        }
        redis::from_redis_value(redis::Value::Array(rest))
            .map(ScriptAnswer::Session)
            .map_err(|err| {
                StoreError::Unexpected(anyhow::anyhow!("a session script's answer: {err}"))
            })
    }

    /// Tells the sweep index that `shard` has work at `at` (ms), unless it
    /// knows of earlier work (-1: nothing to tell).
    async fn announce(&self, shard: Shard, at: i64) -> Result<(), StoreError> {
        if at < 0 {
            return Ok(());
        }
        redis::cmd("ZADD")
            .arg(self.keys.sweep())
            .arg("LT")
            .arg(at)
            .arg(shard.index())
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(self.failed("indexing the sweep"))
    }

    /// After sweeping `shard`, which next has work at `next` (ms, or -1 for
    /// none): puts that in the index. A write in between that told the
    /// shard's `next` of earlier work (and the index, maybe before this
    /// instance's update landed) is read back and told again.
    async fn told_index(&self, shard: Shard, next: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        if next >= 0 {
            redis::cmd("ZADD")
                .arg(self.keys.sweep())
                .arg(next)
                .arg(shard.index())
                .query_async::<()>(&mut conn)
                .await
        } else {
            conn.zrem::<_, _, ()>(self.keys.sweep(), shard.index())
                .await
        }
        .map_err(self.failed("indexing the sweep"))?;
        let told: Option<i64> = conn
            .get(self.keys.shard(shard).next())
            .await
            .map_err(self.failed("indexing the sweep"))?;
        match told {
            Some(at) if next < 0 || at < next => self.announce(shard, at).await,
            _ => Ok(()),
        }
    }

    /// Whether this sweep is to look at every shard: the first of this
    /// instance, then one every [`VISIT_EVERY_SHARD`]. What a write could
    /// not tell the index (the process died between the two) waits that
    /// long at most, and shards written by a release without the index (or
    /// with its two lifetime indexes) are found. Such a sweep visits every
    /// shard whatever the index says, rather than marking each due in it:
    /// another instance's visit in between would put its own time back.
    async fn visit_every_shard_now_and_then(&self) -> Result<bool, StoreError> {
        let due = {
            let mut last = self.visited_all.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|at| at.elapsed() >= VISIT_EVERY_SHARD);
            if due {
                *last = Some(tokio::time::Instant::now());
            }
            due
        };
        if due {
            self.trim_global_listing().await?;
        }
        Ok(due)
    }

    /// The global index (`GET /v1/sessions`, which keeps the newest
    /// [`GLOBAL_LISTING_CAP`]), for the script that stores a new session to
    /// list it there: one round trip a new session instead of two. Not on a
    /// cluster, where it lives in another slot than the session's shard:
    /// there [`Self::list_globally_after`] lists it.
    fn listing_in_script(&self) -> Option<String> {
        (!self.connection.is_cluster()).then(|| self.keys.sessions())
    }

    /// Lists a new session in the global index, unless the script that
    /// stored it did.
    async fn list_globally_after(&self, session: &Session) -> Result<(), StoreError> {
        if self.listing_in_script().is_some() {
            return Ok(());
        }
        redis::cmd("ZADD")
            .arg(self.keys.sessions())
            .arg(session.began_at_millis())
            .arg(session.id().as_str())
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(self.failed("listing a session"))
    }

    /// Drops the global index's entries past its cap (those of sessions
    /// that went are dropped as listing meets them).
    pub(super) async fn trim_global_listing(&self) -> Result<(), StoreError> {
        self.conn()
            .zremrangebyrank::<_, ()>(self.keys.sessions(), 0, -(GLOBAL_LISTING_CAP + 1))
            .await
            .map_err(self.failed("listing sessions"))
    }

    /// One shard's claim (see [`CLAIM_SESSION`]).
    async fn claim_in_shard(
        &self,
        shard: Shard,
        subscribers: &[&PhoneNumber],
        request: &ClaimRequest<'_>,
        unreported: Option<&Session>,
    ) -> Result<Option<Session>, StoreError> {
        let ClaimRequest {
            caller,
            claim,
            not_instructed_before,
            ttl,
        } = *request;
        let keys = self.keys.shard(shard);
        let mut invocation = CLAIM_SESSION.prepare_invoke();
        invocation
            .key(keys.sessions())
            .key(keys.life())
            .key(keys.due())
            .key(keys.next());
        for subscriber in subscribers {
            invocation.key(keys.awaiting(subscriber, caller));
        }
        invocation
            .arg(subscribers.len())
            .arg(not_instructed_before.unix_millis())
            .arg(encode_claim(claim))
            .arg(millis(ttl))
            .arg(
                Timestamp::now()
                    .after(RESPONSE_TIMEOUT + CLOCK_SKEW_ALLOWANCE)
                    .unix_millis(),
            )
            .arg(millis(SWEEP_GRACE))
            .arg(millis(self.forward_timeout))
            .arg(call_field(&claim.call_sid));
        if let Some(session) = unreported {
            invocation
                .key(keys.history(session.subscriber()))
                .arg(session.id().as_str())
                .arg(encode_session(session))
                .arg(session.began_at_millis());
            if let Some(listing) = self.listing_in_script() {
                invocation.key(listing);
            }
        }
        let answer: Vec<redis::Value> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("claiming a session"))?;
        match (self.announced(shard, answer).await?, unreported) {
            // A session stored for a call no ring report announced: new, and
            // as the caller made it (at version 0, its claim applied).
            (ScriptAnswer::Stored, Some(stored)) => {
                self.list_globally_after(stored).await?;
                Ok(Some(stored.clone()))
            }
            (ScriptAnswer::Session(claimed), _) => stored_session(claimed).map(Some),
            _ => Ok(None),
        }
    }

    /// The session named by a call's field in one of `shards`. On one
    /// server in one pipeline, which costs the service and Redis several
    /// times less than a command of its own a shard; a cluster takes no
    /// pipeline across slots, so there all at once.
    async fn call_in_shards(
        &self,
        field: &str,
        shards: impl Iterator<Item = Shard>,
    ) -> Result<Option<SessionId>, StoreError> {
        let ids: Vec<Option<String>> = if self.connection.is_cluster() {
            let reads = shards.map(|shard| async move {
                self.conn()
                    .hget(self.keys.shard(shard).sessions(), field)
                    .await
            });
            try_join_all(reads).await
        } else {
            let mut pipe = redis::pipe();
            for shard in shards {
                pipe.hget(self.keys.shard(shard).sessions(), field);
            }
            pipe.query_async(&mut self.conn()).await
        }
        .map_err(self.failed("reading the session of a call"))?;
        Ok(ids
            .into_iter()
            .flatten()
            .find_map(|id| SessionId::parse(&id).ok()))
    }

    /// What [`PEEK_CLAIM`] sees in one shard: whether the call took one of
    /// its sessions already, and the best claimable entry's time.
    async fn peek_claim(
        &self,
        shard: Shard,
        subscribers: &[&PhoneNumber],
        caller: &Caller,
        call_sid: &CallSid,
        not_instructed_before: Timestamp,
    ) -> Result<(bool, Option<i64>), StoreError> {
        let keys = self.keys.shard(shard);
        let mut invocation = PEEK_CLAIM.prepare_invoke();
        invocation.key(keys.sessions()).key(keys.life());
        for subscriber in subscribers {
            invocation.key(keys.awaiting(subscriber, caller));
        }
        let (taken, best): (i64, i64) = invocation
            .arg(not_instructed_before.unix_millis())
            .arg(call_field(call_sid))
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("claiming a session"))?;
        Ok((taken == 1, (best >= 0).then_some(best)))
    }
}

/// The shard numbered `index`.
fn shard_numbered(index: u8) -> Option<Shard> {
    Shard::all().find(|s| s.index() == index)
}

/// How many sessions the global listing index keeps at most: the newest.
const GLOBAL_LISTING_CAP: isize = 1_000_000;

/// How often the sweep looks at every shard, whatever the index says.
const VISIT_EVERY_SHARD: Duration = Duration::from_secs(600);

/// What a session script answered after the time to tell the sweep index.
enum ScriptAnswer {
    Nothing,
    /// It stored the session it was given.
    Stored,
    /// {data, version, claim} of a session it found.
    Session(StoredSession),
}

/// What a forwarded call claims with, in every shard it tries.
#[derive(Clone, Copy)]
struct ClaimRequest<'a> {
    caller: &'a Caller,
    claim: &'a Claim,
    not_instructed_before: Timestamp,
    ttl: Duration,
}

/// The shard a session is kept in: its subscriber's, which its id names
/// (ids from [`SessionId::generate_for`]).
fn session_shard(session: &Session) -> Shard {
    Shard::of(session.subscriber())
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}
