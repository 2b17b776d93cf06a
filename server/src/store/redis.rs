//! The Redis store, shared by every instance of the service: one server, a
//! Sentinel-managed primary, or a Redis Cluster.
//!
//! Keys (all under `REDIS_KEY_PREFIX`, written `P` here). A key in braces
//! is a Redis Cluster hash tag: keys with the same tag share a slot.
//!
//! | key | what | tag |
//! |---|---|---|
//! | `P:sub:<number>` | hash: `record` (the subscriber as JSON), `fwd` (its forwarding number), `tokens` (its token hashes) | the key itself |
//! | `P:fwd:<forwarding number>` | set of the subscribers forwarding there | the key itself |
//! | `P:tok:<token hash>` | the token's owner, `<number>` or `<number> <destination id>` | the key itself |
//! | `P:subs` | sorted set of every subscriber's number (listing) | the key itself |
//! | `P:rate:<key>` | a fixed-window counter | the key itself |
//! | `P:{sNN}:ses` | hash of the shard's sessions: `<id>` (the session, see `encoding`), `<id>:v` (its version), `<id>:c` (the claim of the forwarded call that took it) | shard `NN` |
//! | `P:{sNN}:gone` | sorted set: when each session's record goes (a session's TTL) | shard |
//! | `P:{sNN}:due` | sorted set of the sessions awaiting a forwarded call, by instruction time (forward deadlines) | shard |
//! | `P:{sNN}:idle` | sorted set of the sessions not over yet, by the end of their lifetime on Redis's clock | shard |
//! | `P:{sNN}:wait:<subscriber>:<caller>` | sorted set of the sessions awaiting a forwarded call from that caller (`withheld`), by instruction time | shard |
//! | `P:{sNN}:open:<subscriber>` | set of the subscriber's sessions not over yet | shard |
//! | `P:{sNN}:hist:<subscriber>` | sorted set of the subscriber's listed sessions, by when they began | shard |
//! | `P:{sNN}:dcid:<subscriber>:<device call id>` | the session of a ring report, so that a retried report finds it | shard |
//! | `P:{sNN}:call:<call id>` | the session a forwarded call took, for retries and its end | shard |
//! | `P:bus` | the event bus's stream (see `notify::bus`) | the key itself |
//!
//! `NN` is the subscriber's [`Shard`] (64 of them), which every id of its
//! sessions names. So everything one session-writing script or a claim
//! touches shares one slot, and is passed in `KEYS`: a session is a field of
//! its shard's hash rather than a key of its own, so that a script that
//! finds a session id in an index can read and write it without building a
//! key name. A shard's load is 1/64 of the call traffic, so no single slot
//! is hot; subscribers and tokens, read one key at a time, spread over every
//! slot. The sweeps visit the 64 shards concurrently.
//!
//! A subscriber's keys are written one after the other (they live in
//! different slots), in an order that keeps every reader right: new token
//! keys before the record (a token is checked against the record's
//! credentials anyway), the record, then the indexes; what a write leaves
//! stale (an old token key, a forwarding-set entry of a subscriber that
//! moved) is ignored by the readers.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::connection::RedisConnection;
use super::encoding::encode_session;
use anyhow::Context as _;
use async_trait::async_trait;
use futures_util::future::{join_all, try_join_all};
use redis::{AsyncCommands as _, RedisError, Script};

use super::{
    HISTORY_CAP, RateLimits, SWEEP_GRACE, SessionCreated, SessionStore, Store, StoreError,
    SubscriberRecord, SubscriberStore, WindowCount,
};
use crate::domain::credentials::{TokenHash, TokenOwner};
use crate::domain::ids::{CallSid, DestinationId};
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{Claim, Session, SessionId, Shard};
use crate::domain::time::Timestamp;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct RedisStore {
    connection: RedisConnection,
    keys: Keys,
    metrics: Option<Arc<Metrics>>,
}

/// KEYS: subscriber hash. ARGV: record JSON, forwarding number, token
/// hashes (space-separated).
/// Writes the record; returns the forwarding number and token hashes it
/// replaced ({} when there was none).
static SWAP_SUBSCRIBER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local old = redis.call('HMGET', KEYS[1], 'fwd', 'tokens')
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'fwd', ARGV[2], 'tokens', ARGV[3])
if old[1] then return {old[1], old[2] or ''} end
return {}
",
    )
});

/// KEYS: subscriber hash. Deletes it; returns the forwarding number and
/// token hashes it had ({} when there was none).
static TAKE_SUBSCRIBER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local old = redis.call('HMGET', KEYS[1], 'fwd', 'tokens')
redis.call('DEL', KEYS[1])
if old[1] then return {old[1], old[2] or ''} end
return {}
",
    )
});

/// Shared by the session scripts: Redis's clock, and how a session is kept
/// in its shard (`sessions` the shard's hash, `gone` when each record goes).
static SESSION_LUA: LazyLock<String> =
    LazyLock::new(|| format!("local HISTORY_CAP = {HISTORY_CAP}\n{SESSION_LUA_BODY}"));
const SESSION_LUA_BODY: &str = r"
local function now_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
-- {data, version, claim} of a session whose record has not gone, or false.
local function live(sessions, gone, id, now)
  local ends = redis.call('ZSCORE', gone, id)
  if not ends or tonumber(ends) <= now then return false end
  local s = redis.call('HMGET', sessions, id, id .. ':v', id .. ':c')
  if not s[1] then return false end
  return s
end
local function forget(sessions, gone, id)
  redis.call('HDEL', sessions, id, id .. ':v', id .. ':c')
  redis.call('ZREM', gone, id)
end
-- A session not over yet: listed in idle until ttl from now, its record
-- kept grace longer, so that the sweep can end it.
local function keep_open(gone, idle, id, ttl, grace, now)
  redis.call('ZADD', idle, now + tonumber(ttl), id)
  redis.call('ZADD', gone, now + tonumber(ttl) + tonumber(grace), id)
end
-- Lists a session in its subscriber's history (newest HISTORY_CAP kept),
-- which lives at least as long as the session's record. An ended session
-- that drops out goes (one not over yet, listed in idle, stays).
local function list_session(history, idle, sessions, gone, id, began, kept)
  redis.call('ZADD', history, began, id)
  for _, old in ipairs(redis.call('ZRANGE', history, 0, -(HISTORY_CAP + 1))) do
    if not redis.call('ZSCORE', idle, old) then forget(sessions, gone, old) end
  end
  redis.call('ZREMRANGEBYRANK', history, 0, -(HISTORY_CAP + 1))
  if redis.call('PTTL', history) < tonumber(kept) then redis.call('PEXPIRE', history, kept) end
end
";

/// Writing a session: its data, version and lifetime, its entry in the
/// matching index (listed while it awaits a forwarded call, unless a claim
/// took it), the forward deadlines, the subscriber's open sessions and
/// history, and its device-call key. KEYS (shared by the three scripts
/// below): sessions, gone, matching index, open set, due, idle, history,
/// device-call key (optional). ARGV: data, TTL in ms, '1' when it awaits a
/// forwarded call, id, instruction time (ms), '1' when it is over, grace in
/// ms, when it began (ms), then what each script adds.
static WRITE_SESSION_LUA: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}{}",
        *SESSION_LUA,
        r"
local function write_session(now)
  local sessions, gone, index, open, due, idle, history, device_call = unpack(KEYS, 1, 8)
  local data, ttl, awaiting, id, instructed, over, grace, began = unpack(ARGV, 1, 8)
  if live(sessions, gone, id, now) then
    redis.call('HINCRBY', sessions, id .. ':v', 1)
  else
    redis.call('HSET', sessions, id .. ':v', 0)
  end
  redis.call('HSET', sessions, id, data)
  if awaiting == '1' and redis.call('HEXISTS', sessions, id .. ':c') == 0 then
    redis.call('ZADD', index, instructed, id)
    redis.call('PEXPIRE', index, ttl)
    redis.call('ZADD', due, instructed, id)
  else
    redis.call('ZREM', index, id)
    redis.call('ZREM', due, id)
  end
  local kept = tonumber(ttl)
  if over == '1' then
    redis.call('SREM', open, id)
    redis.call('ZREM', idle, id)
    redis.call('ZADD', gone, now + kept, id)
  else
    kept = kept + tonumber(grace)
    redis.call('SADD', open, id)
    redis.call('PEXPIRE', open, kept)
    keep_open(gone, idle, id, ttl, grace, now)
  end
  if device_call then redis.call('SET', device_call, id, 'PX', kept) end
  list_session(history, idle, sessions, gone, id, began, kept)
end
"
    )
});

/// KEYS and ARGV: as for writing one.
/// Returns nothing when written, or the earlier session's {data, version,
/// claim} when the device-call key names a live one.
static CREATE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *WRITE_SESSION_LUA,
        r"
local now = now_ms()
if KEYS[8] then
  local existing = redis.call('GET', KEYS[8])
  -- The key naming this very session is this script's own earlier write
  -- (resent after the connection dropped): not a retried report.
  if existing == ARGV[4] then return false end
  if existing then
    local old = live(KEYS[1], KEYS[2], existing, now)
    if old then return old end
  end
end
write_session(now)
return false
"
    ))
});

/// KEYS and ARGV: as for writing one, then the version the session was read
/// at. Returns 0, writing nothing, when the stored version differs (or the
/// session is gone).
static UPDATE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *WRITE_SESSION_LUA,
        r"
local now = now_ms()
local current = live(KEYS[1], KEYS[2], ARGV[4], now)
if not current or current[2] ~= ARGV[9] then return 0 end
write_session(now)
return 1
"
    ))
});

/// KEYS: sessions, gone. ARGV: id. Returns {data, version, claim} or false.
static READ_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *SESSION_LUA,
        r"
return live(KEYS[1], KEYS[2], ARGV[1], now_ms())
"
    ))
});

/// KEYS: a subscriber's history, sessions, gone.
/// Returns {data, version, claim or '', …} of its listed sessions, newest
/// first; entries whose session went are dropped from the history.
static SESSION_HISTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *SESSION_LUA,
        r"
local now = now_ms()
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local s = live(KEYS[2], KEYS[3], id, now)
  if s then
    out[#out + 1] = s[1]
    out[#out + 1] = s[2] or ''
    out[#out + 1] = s[3] or ''
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"
    ))
});

/// The claim of a forwarded call within one shard.
/// KEYS: sessions, gone, due, idle, the call's key, then the matching
/// indexes of the candidate subscribers of this shard for this caller, then
/// (with a session to store when none is found) its subscriber's history.
/// ARGV: how many matching indexes, the earliest instruction time (ms)
/// still claimable, claim JSON, TTL in ms, the time (ms) after which the
/// caller has given up waiting, grace in ms, then optionally the id, data
/// and start (ms) of a session to store when none is found.
/// Returns {data, version, claim} of the session taken, or false.
///
/// Taking an entry out of its index is the claim: Redis runs one script at
/// a time, and every index a session is listed in lives in the session's
/// shard, so two webhooks can never take the same entry, across instances.
/// The most recently instructed entry wins; one older than the cutoff is
/// never claimed (its call was not forwarded, and the sweep expires it).
/// The call's key remembers the session it took, so that a retried webhook
/// for the same call gets the same session.
static CLAIM_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *SESSION_LUA,
        r"
local sessions, gone, due, idle, call = unpack(KEYS, 1, 5)
local indexes = tonumber(ARGV[1])
local cutoff, claim, ttl, grace = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[6]
local now = now_ms()
-- A claim that reaches Redis after its caller gave up (Redis was frozen)
-- must not take a session nobody will dial.
if now > tonumber(ARGV[5]) then return false end
local earlier = redis.call('GET', call)
if earlier then
  local old = live(sessions, gone, earlier, now)
  if old then return old end
end
while true do
  local best_key, best_id, best_score
  for i = 6, 5 + indexes do
    local entry = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
    if entry[1] then
      local score = tonumber(entry[2])
      if score >= cutoff and (not best_score or score > best_score) then
        best_key, best_id, best_score = KEYS[i], entry[1], score
      end
    end
  end
  if not best_key then break end
  redis.call('ZREM', best_key, best_id)
  redis.call('ZREM', due, best_id)
  if live(sessions, gone, best_id, now)
      and redis.call('HSETNX', sessions, best_id .. ':c', claim) == 1 then
    redis.call('HINCRBY', sessions, best_id .. ':v', 1)
    keep_open(gone, idle, best_id, ttl, grace, now)
    redis.call('SET', call, best_id, 'PX', ttl)
    return redis.call('HMGET', sessions, best_id, best_id .. ':v', best_id .. ':c')
  end
end
if ARGV[7] then
  local id, data = ARGV[7], ARGV[8]
  redis.call('HSET', sessions, id, data, id .. ':v', 0)
  keep_open(gone, idle, id, ttl, grace, now)
  list_session(KEYS[6 + indexes], idle, sessions, gone, id, ARGV[9], tonumber(ttl) + tonumber(grace))
  redis.call('SET', call, id, 'PX', ttl)
  return {data, '0', false}
end
return false
"
    ))
});

/// What a claim spanning shards looks at first, in one shard.
/// KEYS: sessions, gone, the call's key, then matching indexes.
/// ARGV: the earliest instruction time (ms) still claimable.
/// Returns {1 when the call already took a live session of this shard,
/// else 0; the instruction time of the best claimable entry, or -1}.
static PEEK_CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *SESSION_LUA,
        r"
local now = now_ms()
local earlier = redis.call('GET', KEYS[3])
if earlier and live(KEYS[1], KEYS[2], earlier, now) then return {1, -1} end
local cutoff, best = tonumber(ARGV[1]), -1
for i = 4, #KEYS do
  local entry = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if entry[1] and tonumber(entry[2]) >= cutoff and tonumber(entry[2]) > best then
    best = tonumber(entry[2])
  end
end
return {0, best}
"
    ))
});

/// KEYS: a shard's forward deadlines. ARGV: ids. Takes those still listed
/// out of them and returns them: each is taken once, whichever instance
/// asks.
static TAKE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local taken = {}
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then taken[#taken + 1] = id end
end
return taken
",
    )
});

/// KEYS: a shard's lifetimes, sessions, gone. ARGV: how many.
/// Drops the records whose time has come (the sessions' TTL), and returns
/// {id, end of lifetime, …} of up to that many sessions whose lifetime ran
/// out, on Redis's clock, oldest first.
static IDLE_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *SESSION_LUA,
        r"
local idle, sessions, gone = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', gone, '-inf', now, 'LIMIT', 0, 500)) do
  forget(sessions, gone, id)
end
return redis.call('ZRANGEBYSCORE', idle, '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[1])
"
    ))
});

/// KEYS: a shard's lifetimes, sessions, gone. ARGV: ids.
/// Takes those still listed out of the lifetimes and returns {id, version,
/// …} of those whose record is still kept: each is taken once, whichever
/// instance asks, with its version at that moment (a change made later
/// starts a new lifetime, and the sweep's write at the old version fails).
static TAKE_IDLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *SESSION_LUA,
        r"
local now, out = now_ms(), {}
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local s = live(KEYS[2], KEYS[3], id, now)
    if s then
      out[#out + 1] = id
      out[#out + 1] = s[2]
    end
  end
end
return out
"
    ))
});

/// KEYS: counter. ARGV: window in ms. Returns {hits, ms until reset}.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}
",
    )
});

/// How long a command may take before the caller gives up on it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How far this host's clock and Redis's may disagree: a claim's deadline
/// is read on Redis's clock. (A claim applied late within this margin is
/// still harmless: the call's final status callback ends its session.)
const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(4);

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A stored session as the scripts hand it back: data, version, claim.
type StoredSession = (Vec<u8>, Option<String>, Option<String>);

/// A session from its stored `data`, `version` and `claim`.
fn decode_session(
    data: &[u8],
    version: Option<&str>,
    claim: Option<&str>,
) -> Result<Session, StoreError> {
    let mut session = super::encoding::decode_session(data)
        .context("decoding a stored session")
        .map_err(StoreError::Unexpected)?;
    session.set_version(version.and_then(|v| v.parse().ok()).unwrap_or(0));
    if let Some(claim) = claim
        && session.call_sid().is_none()
    {
        session.apply_claim(decode::<Claim>(claim, "claim")?);
    }
    Ok(session)
}

fn stored_session((data, version, claim): StoredSession) -> Result<Session, StoreError> {
    decode_session(&data, version.as_deref(), claim.as_deref())
}

/// The names of the keys (see the module's table).
#[derive(Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn plain(&self, kind: &str, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + id.len() + 2);
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(kind);
        key.push(':');
        key.push_str(id);
        key
    }

    fn subscriber(&self, number: &PhoneNumber) -> String {
        self.plain("sub", number.as_str())
    }

    fn forwarding(&self, forwarding_number: &PhoneNumber) -> String {
        self.plain("fwd", forwarding_number.as_str())
    }

    fn token(&self, hash_hex: &str) -> String {
        self.plain("tok", hash_hex)
    }

    /// The sorted set of every subscriber's number (score 0: by number).
    fn subscribers(&self) -> String {
        format!("{}:subs", self.prefix)
    }

    fn rate(&self, key: &str) -> String {
        self.plain("rate", key)
    }

    fn shard(&self, shard: Shard) -> ShardKeys {
        ShardKeys {
            base: format!("{}:{{s{:02}}}", self.prefix, shard.index()),
        }
    }
}

/// The keys of one shard; they share its hash tag.
struct ShardKeys {
    base: String,
}

impl ShardKeys {
    fn key(&self, parts: &[&str]) -> String {
        let mut key = self.base.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    fn sessions(&self) -> String {
        self.key(&["ses"])
    }

    fn gone(&self) -> String {
        self.key(&["gone"])
    }

    fn due(&self) -> String {
        self.key(&["due"])
    }

    fn idle(&self) -> String {
        self.key(&["idle"])
    }

    fn awaiting(&self, subscriber: &PhoneNumber, caller: &Caller) -> String {
        self.key(&["wait", subscriber.as_str(), caller.key()])
    }

    fn open(&self, subscriber: &PhoneNumber) -> String {
        self.key(&["open", subscriber.as_str()])
    }

    fn history(&self, subscriber: &PhoneNumber) -> String {
        self.key(&["hist", subscriber.as_str()])
    }

    fn device_call(&self, subscriber: &PhoneNumber, call_id: &str) -> String {
        self.key(&["dcid", subscriber.as_str(), call_id])
    }

    fn call(&self, call_sid: &CallSid) -> String {
        self.key(&["call", call_sid.as_str()])
    }
}

impl RedisStore {
    /// Turns a Redis error into a store error, counting it.
    fn failed(&self, context: &'static str) -> impl Fn(RedisError) -> StoreError + '_ {
        move |err| {
            if let Some(metrics) = &self.metrics {
                metrics.store_error(context);
            }
            redis_error(context)(err)
        }
    }

    fn conn(&self) -> RedisConnection {
        // Cloning shares the one multiplexed connection.
        self.connection.clone()
    }

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
            .key(shard.gone())
            .key(shard.awaiting(subscriber, session.caller()))
            .key(shard.open(subscriber))
            .key(shard.due())
            .key(shard.idle())
            .key(shard.history(subscriber));
        if let Some(call_id) = session.device_call_id() {
            invocation.key(shard.device_call(subscriber, call_id));
        }
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
            .arg(session.began_at_millis());
    }

    /// The records of these subscriber numbers, those that exist.
    async fn records(&self, numbers: &[String]) -> Result<Vec<SubscriberRecord>, StoreError> {
        let reads = numbers.iter().map(|number| async move {
            let mut conn = self.conn();
            let json: Option<String> = conn
                .hget(self.keys.plain("sub", number), "record")
                .await
                .map_err(self.failed("reading subscribers"))?;
            json.map(|j| decode::<SubscriberRecord>(&j, "subscriber"))
                .transpose()
        });
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
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
            .key(keys.gone())
            .key(keys.due())
            .key(keys.idle())
            .key(keys.call(&claim.call_sid));
        for subscriber in subscribers {
            invocation.key(keys.awaiting(subscriber, caller));
        }
        invocation
            .arg(subscribers.len())
            .arg(not_instructed_before.unix_millis())
            .arg(serde_json::to_string(claim).context("encoding a claim")?)
            .arg(millis(ttl))
            .arg(
                Timestamp::now()
                    .after(RESPONSE_TIMEOUT + CLOCK_SKEW_ALLOWANCE)
                    .unix_millis(),
            )
            .arg(millis(SWEEP_GRACE));
        if let Some(session) = unreported {
            invocation
                .key(keys.history(session.subscriber()))
                .arg(session.id().as_str())
                .arg(encode_session(session))
                .arg(session.began_at_millis());
        }
        let claimed: Option<StoredSession> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("claiming a session"))?;
        claimed.map(stored_session).transpose()
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
        invocation
            .key(keys.sessions())
            .key(keys.gone())
            .key(keys.call(call_sid));
        for subscriber in subscribers {
            invocation.key(keys.awaiting(subscriber, caller));
        }
        let (taken, best): (i64, i64) = invocation
            .arg(not_instructed_before.unix_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("claiming a session"))?;
        Ok((taken == 1, (best >= 0).then_some(best)))
    }

    /// The oldest `limit` of what the shards listed (id and score), oldest
    /// first. Listing is a read; the take that follows is atomic per shard,
    /// so an entry is still handed out once when instances sweep together.
    fn oldest(listed: Vec<(Shard, Vec<(String, f64)>)>, limit: usize) -> Vec<(Shard, String)> {
        let mut oldest: Vec<(f64, Shard, String)> = listed
            .into_iter()
            .flat_map(|(shard, entries)| entries.into_iter().map(move |(id, at)| (at, shard, id)))
            .collect();
        oldest.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
        oldest.truncate(limit);
        oldest
            .into_iter()
            .map(|(_, shard, id)| (shard, id))
            .collect()
    }

    async fn candidates(
        &self,
        prefer: Option<&PhoneNumber>,
        forwarding_number: &PhoneNumber,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let preferred = async {
            match prefer {
                Some(number) => self.subscriber(number).await,
                None => Ok(None),
            }
        };
        let members = async {
            let mut conn = self.conn();
            conn.smembers::<_, Vec<String>>(self.keys.forwarding(forwarding_number))
                .await
                .map_err(self.failed("reading subscribers by forwarding number"))
        };
        let (preferred, members) = futures_util::future::try_join(preferred, members).await?;
        if let Some(record) = preferred {
            return Ok(vec![record]);
        }
        let mut records: Vec<SubscriberRecord> = self
            .records(&members)
            .await?
            .into_iter()
            // A subscriber that moved and whose old entry is still there.
            .filter(|r| r.subscriber.forwarding_number == *forwarding_number)
            .collect();
        records.sort_by(|a, b| a.subscriber.number.cmp(&b.subscriber.number));
        Ok(records)
    }
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

/// The ids of `entries`, by shard, in their order.
fn by_shard(entries: &[(Shard, String)]) -> BTreeMap<Shard, Vec<&str>> {
    let mut grouped: BTreeMap<Shard, Vec<&str>> = BTreeMap::new();
    for (shard, id) in entries {
        grouped.entry(*shard).or_default().push(id);
    }
    grouped
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(self.failed("PING"))
    }
}

#[async_trait]
impl SubscriberStore for RedisStore {
    async fn put_subscriber(&self, record: &SubscriberRecord) -> Result<bool, StoreError> {
        let subscriber = &record.subscriber;
        let json = serde_json::to_string(record).context("encoding a subscriber")?;
        let owners: Vec<(String, String)> = record
            .credentials
            .owners(&subscriber.number)
            .map(|(hash, owner)| (hash.to_hex(), encode_owner(&owner)))
            .collect();
        let hashes = owners
            .iter()
            .map(|(h, _)| h.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        // New tokens first: no reader trusts a token key without the record.
        try_join_all(owners.iter().map(|(hash, owner)| async move {
            self.conn()
                .set::<_, _, ()>(self.keys.token(hash), owner)
                .await
                .map_err(self.failed("writing a subscriber's tokens"))
        }))
        .await?;
        let replaced: Vec<String> = SWAP_SUBSCRIBER
            .key(self.keys.subscriber(&subscriber.number))
            .arg(json)
            .arg(subscriber.forwarding_number.as_str())
            .arg(&hashes)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("writing a subscriber"))?;
        let mut conn = self.conn();
        conn.sadd::<_, _, ()>(
            self.keys.forwarding(&subscriber.forwarding_number),
            subscriber.number.as_str(),
        )
        .await
        .map_err(self.failed("indexing a subscriber"))?;
        conn.zadd::<_, _, _, ()>(self.keys.subscribers(), subscriber.number.as_str(), 0)
            .await
            .map_err(self.failed("indexing a subscriber"))?;
        let Some((old_forwarding, old_hashes)) = replaced.split_first() else {
            return Ok(false);
        };
        if *old_forwarding != subscriber.forwarding_number.as_str() {
            conn.srem::<_, _, ()>(
                self.keys.plain("fwd", old_forwarding),
                subscriber.number.as_str(),
            )
            .await
            .map_err(self.failed("indexing a subscriber"))?;
        }
        let kept: Vec<&str> = hashes.split(' ').collect();
        let gone = old_hashes
            .iter()
            .flat_map(|h| h.split(' '))
            .filter(|h| !h.is_empty() && !kept.contains(h));
        try_join_all(gone.map(|hash| async move {
            self.conn()
                .del::<_, ()>(self.keys.token(hash))
                .await
                .map_err(self.failed("removing a subscriber's old tokens"))
        }))
        .await?;
        Ok(true)
    }

    async fn subscriber(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        let json: Option<String> = self
            .conn()
            .hget(self.keys.subscriber(number), "record")
            .await
            .map_err(self.failed("reading a subscriber"))?;
        json.map(|j| decode(&j, "subscriber")).transpose()
    }

    async fn some_subscribers(&self, limit: usize) -> Result<Vec<SubscriberRecord>, StoreError> {
        self.list_subscribers(None, limit).await
    }

    async fn list_subscribers(
        &self,
        after: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let mut out = Vec::new();
        let mut from = after.map_or_else(|| "-".to_owned(), |n| format!("({n}"));
        while out.len() < limit {
            let want = limit - out.len();
            let numbers: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(self.keys.subscribers())
                .arg(&from)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(want)
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("listing subscribers"))?;
            let Some(last) = numbers.last() else { break };
            from = format!("({last}");
            let records = self.records(&numbers).await?;
            // An entry without a record (left by indexing at start while
            // the subscriber was deleted) is dropped.
            let dangling: Vec<&String> = numbers
                .iter()
                .filter(|n| !records.iter().any(|r| r.subscriber.number.as_str() == *n))
                .collect();
            if !dangling.is_empty() {
                self.conn()
                    .zrem::<_, _, ()>(self.keys.subscribers(), dangling)
                    .await
                    .map_err(self.failed("listing subscribers"))?;
            }
            out.extend(records);
        }
        Ok(out)
    }

    async fn index_subscribers(&self) -> Result<usize, StoreError> {
        // Subscribers older than the index were written by a release that
        // could not run on a cluster: there is nothing to index there (and
        // a SCAN would walk one node at random).
        if self.connection.is_cluster() {
            return Ok(0);
        }
        // SCAN, not KEYS: it never blocks Redis for long, whatever the count.
        let pattern = format!("{}:sub:*", glob_escaped(&self.keys.prefix));
        let prefix = format!("{}:sub:", self.keys.prefix);
        let mut seen = 0;
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("indexing subscribers"))?;
            let numbers: Vec<&str> = batch
                .iter()
                .filter_map(|key| key.strip_prefix(&prefix))
                .collect();
            if !numbers.is_empty() {
                // A subscriber deleted meanwhile leaves an entry without a
                // record, which listing skips.
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(self.keys.subscribers());
                for number in &numbers {
                    zadd.arg(0).arg(*number);
                }
                zadd.query_async::<()>(&mut self.conn())
                    .await
                    .map_err(self.failed("indexing subscribers"))?;
            }
            seen += numbers.len();
            cursor = next;
            if cursor == 0 {
                return Ok(seen);
            }
        }
    }

    async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let taken: Vec<String> = TAKE_SUBSCRIBER
            .key(self.keys.subscriber(number))
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("deleting a subscriber"))?;
        let Some((forwarding, hashes)) = taken.split_first() else {
            return Ok(false);
        };
        let mut conn = self.conn();
        conn.srem::<_, _, ()>(self.keys.plain("fwd", forwarding), number.as_str())
            .await
            .map_err(self.failed("deleting a subscriber"))?;
        conn.zrem::<_, _, ()>(self.keys.subscribers(), number.as_str())
            .await
            .map_err(self.failed("deleting a subscriber"))?;
        let hashes = hashes
            .iter()
            .flat_map(|h| h.split(' '))
            .filter(|h| !h.is_empty());
        try_join_all(hashes.map(|hash| async move {
            self.conn()
                .del::<_, ()>(self.keys.token(hash))
                .await
                .map_err(self.failed("deleting a subscriber's tokens"))
        }))
        .await?;
        Ok(true)
    }

    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        let owner: Option<String> = self
            .conn()
            .get(self.keys.token(&hash.to_hex()))
            .await
            .map_err(self.failed("reading a token"))?;
        owner.as_deref().map(decode_owner).transpose()
    }

    async fn candidates_for_forwarded_call(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        self.candidates(forwarded_from, to).await
    }
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
        let existing: Option<StoredSession> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("creating a session"))?;
        match existing {
            None => Ok(SessionCreated::Created),
            Some(stored) => Ok(SessionCreated::Existing(Box::new(stored_session(stored)?))),
        }
    }

    async fn update_session(
        &self,
        session: &mut Session,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut invocation = UPDATE_SESSION.prepare_invoke();
        self.session_write(&mut invocation, session, ttl);
        let written: i64 = invocation
            .arg(session.version())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("updating a session"))?;
        if written == 1 {
            session.set_version(session.version() + 1);
        }
        Ok(written == 1)
    }

    async fn open_sessions(&self, subscriber: &PhoneNumber) -> Result<Vec<SessionId>, StoreError> {
        let ids: Vec<String> = self
            .conn()
            .smembers(self.keys.shard(Shard::of(subscriber)).open(subscriber))
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
            .key(shard.gone())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("reading a history"))?;
        let text = |v: &Vec<u8>| (!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned());
        raw.chunks_exact(3)
            .map(|s| decode_session(&s[0], text(&s[1]).as_deref(), text(&s[2]).as_deref()))
            .collect()
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let shard = self.keys.shard(id.shard());
        let stored: Option<StoredSession> = READ_SESSION
            .key(shard.sessions())
            .key(shard.gone())
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

    async fn take_due_forwards(
        &self,
        instructed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<SessionId>, StoreError> {
        let cutoff = format!("({}", instructed_before.unix_millis());
        let listed = Shard::all().map(|shard| {
            let cutoff = &cutoff;
            async move {
                let entries: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
                    .arg(self.keys.shard(shard).due())
                    .arg("-inf")
                    .arg(cutoff)
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut self.conn())
                    .await
                    .map_err(self.failed("taking due forwards"))?;
                Ok::<_, StoreError>((shard, entries))
            }
        });
        let oldest = Self::oldest(try_join_all(listed).await?, limit);
        let takes = by_shard(&oldest)
            .into_iter()
            .map(|(shard, ids)| async move {
                TAKE_DUE
                    .key(self.keys.shard(shard).due())
                    .arg(ids)
                    .invoke_async::<Vec<String>>(&mut self.conn())
                    .await
                    .map_err(self.failed("taking due forwards"))
            });
        let taken: HashSet<String> = try_join_all(takes).await?.into_iter().flatten().collect();
        Ok(oldest
            .into_iter()
            .filter(|(_, id)| taken.contains(id))
            .filter_map(|(_, id)| SessionId::parse(&id).ok())
            .collect())
    }

    async fn take_idle_sessions(&self, limit: usize) -> Result<Vec<(SessionId, u64)>, StoreError> {
        let listed = Shard::all().map(|shard| async move {
            let keys = self.keys.shard(shard);
            let entries: Vec<(String, f64)> = IDLE_SESSIONS
                .key(keys.idle())
                .key(keys.sessions())
                .key(keys.gone())
                .arg(limit)
                .invoke_async(&mut self.conn())
                .await
                .map_err(self.failed("taking idle sessions"))?;
            Ok::<_, StoreError>((shard, entries))
        });
        let oldest = Self::oldest(try_join_all(listed).await?, limit);
        let takes = by_shard(&oldest)
            .into_iter()
            .map(|(shard, ids)| async move {
                let keys = self.keys.shard(shard);
                TAKE_IDLE
                    .key(keys.idle())
                    .key(keys.sessions())
                    .key(keys.gone())
                    .arg(ids)
                    .invoke_async::<Vec<(String, u64)>>(&mut self.conn())
                    .await
                    .map_err(self.failed("taking idle sessions"))
            });
        Ok(try_join_all(takes)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|(id, version)| Some((SessionId::parse(&id).ok()?, version)))
            .collect())
    }

    async fn session_for_call(&self, call_sid: &CallSid) -> Result<Option<SessionId>, StoreError> {
        // Once per forwarded call (its final status), which names no
        // subscriber: ask every shard, at once.
        let reads = Shard::all().map(|shard| async move {
            self.conn()
                .get::<_, Option<String>>(self.keys.shard(shard).call(call_sid))
                .await
                .map_err(self.failed("reading the session of a call"))
        });
        Ok(try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .find_map(|id| SessionId::parse(&id).ok()))
    }
}

#[async_trait]
impl RateLimits for RedisStore {
    async fn hit(&self, key: &str, window: Duration) -> Result<WindowCount, StoreError> {
        let (hits, resets_in_ms): (u64, u64) = HIT
            .key(self.keys.rate(key))
            .arg(millis(window))
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("counting a rate limit hit"))?;
        Ok(WindowCount {
            hits,
            resets_in: Duration::from_millis(resets_in_ms),
        })
    }
}

impl RedisStore {
    /// The store on `connection` (see [`RedisConnection::open`]: lazy, so
    /// the service starts, and keeps answering what it can, while Redis is
    /// away; each command fails fast instead of hanging), with every key
    /// under `prefix`.
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            keys: Keys {
                prefix: prefix.to_owned(),
            },
            metrics: None,
        }
    }

    /// Counts failed operations in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

fn redis_error(context: &'static str) -> impl FnOnce(RedisError) -> StoreError {
    move |err| {
        let unavailable = err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_unrecoverable_error()
            // Still loading, or failing over, after the retries gave up.
            || super::connection::says_wait(&err);
        let err = anyhow::Error::new(err).context(context);
        if unavailable {
            StoreError::Unavailable(err)
        } else {
            StoreError::Unexpected(err)
        }
    }
}

/// `s` with the characters a `SCAN MATCH` pattern gives a meaning escaped.
fn glob_escaped(s: &str) -> String {
    let mut escaped = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn decode<T: serde::de::DeserializeOwned>(json: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .with_context(|| format!("decoding a stored {what}"))
        .map_err(StoreError::Unexpected)
}

fn encode_owner(owner: &TokenOwner) -> String {
    match owner {
        TokenOwner::Device { subscriber } => subscriber.to_string(),
        TokenOwner::Destination {
            subscriber,
            destination,
        } => format!("{subscriber} {destination}"),
    }
}

fn decode_owner(raw: &str) -> Result<TokenOwner, StoreError> {
    let corrupt = || StoreError::Unexpected(anyhow::anyhow!("a stored token owner is malformed"));
    let mut parts = raw.split(' ');
    let subscriber: PhoneNumber = serde_json::from_value(serde_json::Value::String(
        parts.next().unwrap_or_default().to_owned(),
    ))
    .map_err(|_| corrupt())?;
    match (parts.next(), parts.next()) {
        (None, _) => Ok(TokenOwner::Device { subscriber }),
        (Some(id), None) => Ok(TokenOwner::Destination {
            subscriber,
            destination: DestinationId::parse(id).map_err(|_| corrupt())?,
        }),
        _ => Err(corrupt()),
    }
}
