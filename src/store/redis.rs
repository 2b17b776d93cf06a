//! The Redis store, shared by every instance of the service.
//!
//! Keys (all under `REDIS_KEY_PREFIX`, written `P` here):
//! - `P:sub:<number>`: hash with `record` (the subscriber as JSON), `fwd` (its
//!   forwarding number) and `tokens` (its token hashes, space-separated), so
//!   that the scripts below can clean the indexes without parsing JSON;
//! - `P:fwd:<forwarding number>`: set of the subscriber numbers forwarding there;
//! - `P:tok:<token hash>`: the token's owner, `<number>` or `<number> <destination id>`;
//! - `P:ses:<session id>`: hash with `data` (the session as JSON) and, once a
//!   forwarded call took it, `claim`; with the session TTL;
//! - `P:wait:<subscriber>:<caller>`: sorted set of the sessions awaiting a
//!   forwarded call from that caller (`withheld` for withheld callers), scored
//!   by report time;
//! - `P:open:<subscriber>`: set of the subscriber's sessions not over yet;
//! - `P:due`: sorted set of every session awaiting a forwarded call, by
//!   instruction time (the forward deadlines);
//! - `P:idle`: sorted set of every session not over yet, by the end of its
//!   lifetime on Redis's clock (the sweep ends those with no outcome);
//! - `P:dcid:<subscriber>:<device call id>`: the session of a ring report, so
//!   that a retried report finds it;
//! - `P:call:<call id>`: the session a forwarded call took, for retries;
//! - `P:rate:<key>`: a fixed-window counter.
//!
//! Every multi-key change is one Lua script, so it is atomic and costs one
//! round trip. The scripts build index keys from the prefix, so the store
//! targets a single Redis server (or a primary with replicas), not a Cluster.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::connection::RedisConnection;
use anyhow::Context as _;
use async_trait::async_trait;
use redis::{AsyncCommands as _, RedisError, Script};

use super::{
    HISTORY_CAP, SWEEP_GRACE, SessionCreated, Store, StoreError, SubscriberRecord, WindowCount,
};
use crate::domain::credentials::{TokenHash, TokenOwner};
use crate::domain::dial::CallSid;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{Claim, Session, SessionId, Timestamp};
use crate::domain::subscriber::DestinationId;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct RedisStore {
    connection: RedisConnection,
    prefix: String,
    metrics: Option<Arc<Metrics>>,
}

/// KEYS: subscriber hash, new forwarding set, the index of subscribers.
/// ARGV: prefix, number, record JSON, forwarding number, token hashes
/// (space-separated), then (hash, owner) pairs.
static PUT_SUBSCRIBER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local prefix, number = ARGV[1], ARGV[2]
local old = redis.call('HMGET', KEYS[1], 'fwd', 'tokens')
if old[1] then redis.call('SREM', prefix .. ':fwd:' .. old[1], number) end
if old[2] then
  for hash in string.gmatch(old[2], '%S+') do redis.call('DEL', prefix .. ':tok:' .. hash) end
end
redis.call('HSET', KEYS[1], 'record', ARGV[3], 'fwd', ARGV[4], 'tokens', ARGV[5])
redis.call('SADD', KEYS[2], number)
redis.call('ZADD', KEYS[3], 0, number)
for i = 6, #ARGV, 2 do redis.call('SET', prefix .. ':tok:' .. ARGV[i], ARGV[i + 1]) end
if old[1] then return 1 else return 0 end
",
    )
});

/// KEYS: subscriber hash, the index of subscribers. ARGV: prefix, number.
static DELETE_SUBSCRIBER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local prefix, number = ARGV[1], ARGV[2]
local old = redis.call('HMGET', KEYS[1], 'fwd', 'tokens')
if not old[1] then return 0 end
redis.call('SREM', prefix .. ':fwd:' .. old[1], number)
if old[2] then
  for hash in string.gmatch(old[2], '%S+') do redis.call('DEL', prefix .. ':tok:' .. hash) end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], number)
return 1
",
    )
});

/// KEYS: forwarding set. ARGV: prefix, a subscriber number to prefer or ''.
/// Returns that subscriber's record when it exists, else the records of the
/// set's members.
static CANDIDATES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[2] ~= '' then
  local record = redis.call('HGET', ARGV[1] .. ':sub:' .. ARGV[2], 'record')
  if record then return {record} end
end
local out = {}
for _, number in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('HGET', ARGV[1] .. ':sub:' .. number, 'record')
  if record then out[#out + 1] = record end
end
return out
",
    )
});

/// KEYS: the index of subscribers. ARGV: prefix, the number to start after
/// ('' from the first), how many.
/// Returns the records, in number order. An index entry without a record
/// (left by indexing at start while the subscriber was deleted) is dropped.
static LIST_SUBSCRIBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local want = tonumber(ARGV[3])
local out = {}
while #out < want do
  local numbers = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, want - #out)
  if #numbers == 0 then break end
  for _, number in ipairs(numbers) do
    local record = redis.call('HGET', ARGV[1] .. ':sub:' .. number, 'record')
    if record then out[#out + 1] = record else redis.call('ZREM', KEYS[1], number) end
  end
  from = '(' .. numbers[#numbers]
end
return out
",
    )
});

/// KEYS: a subscriber's history. ARGV: prefix.
/// Returns {data, version, claim or '', …} of its listed sessions, newest
/// first; entries whose session expired are dropped from the index.
static SESSION_HISTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local s = redis.call('HMGET', ARGV[1] .. ':ses:' .. id, 'data', 'version', 'claim')
  if s[1] then
    out[#out + 1] = s[1]
    out[#out + 1] = s[2] or ''
    out[#out + 1] = s[3] or ''
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
",
    )
});

/// Shared by the session-writing scripts: Redis's clock in ms, and how a
/// session that is not over is kept: listed in `idle` until `ttl` from now,
/// its record `grace` longer, so that the sweep can end it.
static LIFETIME_LUA: LazyLock<String> =
    LazyLock::new(|| format!("local HISTORY_CAP = {HISTORY_CAP}\n{LIFETIME_LUA_BODY}"));
const LIFETIME_LUA_BODY: &str = r"
local function now_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
-- Lists a session in its subscriber's history (newest HISTORY_CAP kept),
-- which lives at least as long as the session's record. An ended session
-- that drops out goes (one not over yet, listed in idle, stays).
local function list_session(history_key, idle_key, session_key, id, began, kept)
  redis.call('ZADD', history_key, began, id)
  local sessions = string.sub(session_key, 1, #session_key - #id)
  for _, old in ipairs(redis.call('ZRANGE', history_key, 0, -(HISTORY_CAP + 1))) do
    if not redis.call('ZSCORE', idle_key, old) then redis.call('DEL', sessions .. old) end
  end
  redis.call('ZREMRANGEBYRANK', history_key, 0, -(HISTORY_CAP + 1))
  local left = redis.call('PTTL', history_key)
  if left < tonumber(kept) then redis.call('PEXPIRE', history_key, kept) end
end
local function keep_open(session_key, idle_key, id, ttl, grace)
  redis.call('ZADD', idle_key, now_ms() + tonumber(ttl), id)
  redis.call('PEXPIRE', session_key, tonumber(ttl) + tonumber(grace))
end
";

/// Writing a session: its data and lifetime, its entry in the matching index
/// (listed while it awaits a forwarded call, unless a claim took it), in
/// the subscriber's set of open sessions and the lifetimes, and the TTL of
/// its device-call key. Shared by the three scripts below.
static WRITE_SESSION_LUA: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}{}",
        *LIFETIME_LUA,
        r"
local function write_session(session_key, index_key, open_key, due_key, idle_key, history_key, device_call_key, data, ttl, awaiting, id, instructed, over, grace, began)
  if redis.call('EXISTS', session_key) == 1 then
    redis.call('HINCRBY', session_key, 'version', 1)
  else
    redis.call('HSET', session_key, 'version', 0)
  end
  redis.call('HSET', session_key, 'data', data)
  if awaiting == '1' and redis.call('HEXISTS', session_key, 'claim') == 0 then
    redis.call('ZADD', index_key, instructed, id)
    redis.call('PEXPIRE', index_key, ttl)
    redis.call('ZADD', due_key, instructed, id)
  else
    redis.call('ZREM', index_key, id)
    redis.call('ZREM', due_key, id)
  end
  local kept = ttl
  if over == '1' then
    redis.call('SREM', open_key, id)
    redis.call('ZREM', idle_key, id)
    redis.call('PEXPIRE', session_key, ttl)
  else
    kept = tonumber(ttl) + tonumber(grace)
    redis.call('SADD', open_key, id)
    redis.call('PEXPIRE', open_key, kept)
    keep_open(session_key, idle_key, id, ttl, grace)
  end
  if device_call_key then redis.call('SET', device_call_key, id, 'PX', kept) end
  list_session(history_key, idle_key, session_key, id, began, kept)
end
"
    )
});

/// KEYS: session hash, matching index, open set, forward deadlines,
/// lifetimes, the subscriber's history, device-call key (optional).
/// ARGV: session JSON, TTL in ms, '1' when it awaits a forwarded call,
/// session id, instruction time, '1' when it is over, grace in ms, when it
/// began (ms), prefix.
/// Returns nothing when written, or the earlier session's {data, claim}
/// when the device-call key names a live one.
static CREATE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *WRITE_SESSION_LUA,
        r"
if KEYS[7] then
  local existing = redis.call('GET', KEYS[7])
  -- The key naming this very session is this script's own earlier write
  -- (resent after the connection dropped): not a retried report.
  if existing == ARGV[4] then return false end
  if existing then
    local old = redis.call('HMGET', ARGV[9] .. ':ses:' .. existing, 'data', 'version', 'claim')
    if old[1] then return old end
  end
end
write_session(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], unpack(ARGV, 1, 8))
return false
"
    ))
});

/// KEYS: as for creating one.
/// ARGV: session JSON, TTL in ms, '1' when it awaits a forwarded call,
/// session id, instruction time, '1' when it is over, grace in ms, when it
/// began (ms), the version the session was read at.
/// Returns 0, writing nothing, when the stored version differs.
static UPDATE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *WRITE_SESSION_LUA,
        r"
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[9] then return 0 end
write_session(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], unpack(ARGV, 1, 8))
return 1
"
    ))
});

/// KEYS and ARGV: as for creating one, without the prefix.
static PUT_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *WRITE_SESSION_LUA,
        r"
write_session(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], unpack(ARGV, 1, 8))
return 1
"
    ))
});

/// KEYS: the forward deadlines, the lifetimes, then the matching indexes of
/// the candidate subscribers for this caller.
/// ARGV: prefix, the earliest instruction time (ms) still claimable, claim
/// JSON, TTL in ms, the call's id, the time (ms) after which the caller has
/// given up waiting, grace in ms, then optionally the id and JSON of a
/// session to store when none is found, its subscriber's history key and
/// when it began (ms).
/// Taking an entry out of its index is the claim: Redis runs one script at a
/// time, so two webhooks can never take the same entry. The most recently
/// instructed entry wins; one older than the cutoff is never claimed (its
/// call was not forwarded, and the sweep expires it). The call's id
/// remembers the session it took, so that a retried webhook for the same
/// call gets the same session.
static CLAIM_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *LIFETIME_LUA,
        r"
-- A claim that reaches Redis after its caller gave up (Redis was frozen)
-- must not take a session nobody will dial.
if now_ms() > tonumber(ARGV[6]) then
  return false
end
local cutoff = tonumber(ARGV[2])
local call_key = ARGV[1] .. ':call:' .. ARGV[5]
local earlier = redis.call('GET', call_key)
if earlier then
  local old = redis.call('HMGET', ARGV[1] .. ':ses:' .. earlier, 'data', 'version', 'claim')
  if old[1] then return old end
end
while true do
  local best_key, best_id, best_score
  for i = 3, #KEYS do
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
  redis.call('ZREM', KEYS[1], best_id)
  local session = ARGV[1] .. ':ses:' .. best_id
  local data = redis.call('HGET', session, 'data')
  if data and redis.call('HSETNX', session, 'claim', ARGV[3]) == 1 then
    redis.call('HINCRBY', session, 'version', 1)
    keep_open(session, KEYS[2], best_id, ARGV[4], ARGV[7])
    redis.call('SET', call_key, best_id, 'PX', ARGV[4])
    return {data, redis.call('HGET', session, 'version'), ARGV[3]}
  end
end
if ARGV[8] then
  local session = ARGV[1] .. ':ses:' .. ARGV[8]
  redis.call('HSET', session, 'data', ARGV[9], 'version', 0)
  keep_open(session, KEYS[2], ARGV[8], ARGV[4], ARGV[7])
  list_session(ARGV[10], KEYS[2], session, ARGV[8], ARGV[11], tonumber(ARGV[4]) + tonumber(ARGV[7]))
  redis.call('SET', call_key, ARGV[8], 'PX', ARGV[4])
  return {ARGV[9], '0'}
end
return false
"
    ))
});

/// KEYS: the forward deadlines. ARGV: the instruction time (ms) before
/// which a session is overdue, how many to take.
/// Returns the ids taken: each is taken once, whichever instance asks.
static TAKE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do redis.call('ZREM', KEYS[1], id) end
return due
",
    )
});

/// KEYS: the lifetimes. ARGV: prefix, how many to take.
/// Returns {id, version, …} of the sessions whose lifetime ran out (on
/// Redis's clock): each is taken once, whichever instance asks.
static TAKE_IDLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{}{}",
        *LIFETIME_LUA,
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, ARGV[2])
local taken = {}
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local version = redis.call('HGET', ARGV[1] .. ':ses:' .. id, 'version')
  if version then
    taken[#taken + 1] = id
    taken[#taken + 1] = version
  end
end
return taken
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

/// A session from its stored `data`, `version` and `claim`.
fn decode_session(
    data: &str,
    version: Option<&str>,
    claim: Option<&str>,
) -> Result<Session, StoreError> {
    let mut session: Session = decode(data, "session")?;
    session.set_version(version.and_then(|v| v.parse().ok()).unwrap_or(0));
    if let Some(claim) = claim
        && session.call_sid().is_none()
    {
        session.apply_claim(decode::<Claim>(claim, "claim")?);
    }
    Ok(session)
}

impl RedisStore {
    /// The store on `connection` (see [`RedisConnection::open`]: lazy, so
    /// the service starts, and keeps answering what it can, while Redis is
    /// away; each command fails fast instead of hanging), with every key
    /// under `prefix`.
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            prefix: prefix.to_owned(),
            metrics: None,
        }
    }

    /// Counts failed operations in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Turns a Redis error into a store error, counting it.
    fn failed(&self, context: &'static str) -> impl FnOnce(RedisError) -> StoreError + '_ {
        move |err| {
            if let Some(metrics) = &self.metrics {
                metrics.store_error(context);
            }
            redis_error(context)(err)
        }
    }

    fn key(&self, kind: &str, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + id.len() + 2);
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(kind);
        key.push(':');
        key.push_str(id);
        key
    }

    /// The keys and arguments shared by the session-writing scripts.
    fn session_write(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        session: &Session,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(session).context("encoding a session")?;
        invocation
            .key(self.key("ses", session.id().as_str()))
            .key(self.awaiting_key(session.subscriber(), session.caller()))
            .key(self.key("open", session.subscriber().as_str()))
            .key(self.due_key())
            .key(self.idle_key())
            .key(self.history_key(session.subscriber()));
        if let Some(call_id) = session.device_call_id() {
            invocation.key(self.key("dcid", &format!("{}:{call_id}", session.subscriber())));
        }
        invocation
            .arg(json)
            .arg(millis(ttl))
            .arg(if session.awaits_forwarded_call() {
                "1"
            } else {
                "0"
            })
            .arg(session.id().as_str())
            .arg(
                session
                    .timeline()
                    .instructed_at
                    .map_or(0, |t| t.unix_millis()),
            )
            .arg(if session.is_over() { "1" } else { "0" })
            .arg(millis(SWEEP_GRACE))
            .arg(session.began_at_millis());
        Ok(())
    }

    /// The sorted set of sessions awaiting a forwarded call, by instruction
    /// time: the forward deadlines.
    fn due_key(&self) -> String {
        format!("{}:due", self.prefix)
    }

    /// The sorted set of sessions not over yet, by the end of their lifetime.
    fn idle_key(&self) -> String {
        format!("{}:idle", self.prefix)
    }

    /// The sorted set of every subscriber's number (score 0: by number).
    fn subscribers_key(&self) -> String {
        format!("{}:subs", self.prefix)
    }

    /// The sorted set of a subscriber's listed sessions, by when they began.
    fn history_key(&self, subscriber: &PhoneNumber) -> String {
        self.key("hist", subscriber.as_str())
    }

    fn awaiting_key(&self, subscriber: &PhoneNumber, caller: &Caller) -> String {
        self.key("wait", &format!("{subscriber}:{}", caller.key()))
    }

    fn conn(&self) -> RedisConnection {
        // Cloning shares the one multiplexed connection.
        self.connection.clone()
    }
}

impl RedisStore {
    async fn candidates(
        &self,
        prefer: Option<&PhoneNumber>,
        forwarding_number: &PhoneNumber,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let records: Vec<String> = CANDIDATES
            .key(self.key("fwd", forwarding_number.as_str()))
            .arg(&self.prefix)
            .arg(prefer.map_or("", PhoneNumber::as_str))
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("reading subscribers by forwarding number"))?;
        let mut records = records
            .iter()
            .map(|j| decode::<SubscriberRecord>(j, "subscriber"))
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.subscriber.number.cmp(&b.subscriber.number));
        Ok(records)
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

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(self.failed("PING"))
    }

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

        let mut invocation = PUT_SUBSCRIBER.prepare_invoke();
        invocation
            .key(self.key("sub", subscriber.number.as_str()))
            .key(self.key("fwd", subscriber.forwarding_number.as_str()))
            .key(self.subscribers_key())
            .arg(&self.prefix)
            .arg(subscriber.number.as_str())
            .arg(json)
            .arg(subscriber.forwarding_number.as_str())
            .arg(hashes);
        for (hash, owner) in &owners {
            invocation.arg(hash).arg(owner);
        }
        let replaced: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("writing a subscriber"))?;
        Ok(replaced == 1)
    }

    async fn subscriber(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        let json: Option<String> = self
            .conn()
            .hget(self.key("sub", number.as_str()), "record")
            .await
            .map_err(self.failed("reading a subscriber"))?;
        json.map(|j| decode(&j, "subscriber")).transpose()
    }

    async fn some_subscribers(&self, limit: usize) -> Result<Vec<SubscriberRecord>, StoreError> {
        // SCAN, not KEYS: it never blocks Redis for long, whatever the count.
        let pattern = format!("{}:sub:*", glob_escaped(&self.prefix));
        let mut keys: Vec<String> = Vec::new();
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
                .map_err(self.failed("listing subscribers"))?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 || keys.len() >= limit {
                break;
            }
        }
        keys.truncate(limit);
        let mut records = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.hget(key, "record");
            }
            let raw: Vec<Option<String>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("reading subscribers"))?;
            for json in raw.into_iter().flatten() {
                records.push(decode(&json, "subscriber")?);
            }
        }
        Ok(records)
    }

    async fn list_subscribers(
        &self,
        after: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let raw: Vec<String> = LIST_SUBSCRIBERS
            .key(self.subscribers_key())
            .arg(&self.prefix)
            .arg(after.map_or("", PhoneNumber::as_str))
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("listing subscribers"))?;
        raw.iter().map(|json| decode(json, "subscriber")).collect()
    }

    async fn index_subscribers(&self) -> Result<usize, StoreError> {
        // SCAN, not KEYS: it never blocks Redis for long, whatever the count.
        let pattern = format!("{}:sub:*", glob_escaped(&self.prefix));
        let prefix = format!("{}:sub:", self.prefix);
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
                zadd.arg(self.subscribers_key());
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
        let deleted: i64 = DELETE_SUBSCRIBER
            .key(self.key("sub", number.as_str()))
            .key(self.subscribers_key())
            .arg(&self.prefix)
            .arg(number.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("deleting a subscriber"))?;
        Ok(deleted == 1)
    }

    async fn subscribers_forwarding_to(
        &self,
        forwarding_number: &PhoneNumber,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        self.candidates(None, forwarding_number).await
    }

    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        let owner: Option<String> = self
            .conn()
            .get(self.key("tok", &hash.to_hex()))
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

    async fn create_session(
        &self,
        session: &Session,
        ttl: Duration,
    ) -> Result<SessionCreated, StoreError> {
        let mut invocation = CREATE_SESSION.prepare_invoke();
        self.session_write(&mut invocation, session, ttl)?;
        let existing: Option<(String, Option<String>, Option<String>)> = invocation
            .arg(&self.prefix)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("creating a session"))?;
        match existing {
            None => Ok(SessionCreated::Created),
            Some((data, version, claim)) => Ok(SessionCreated::Existing(Box::new(decode_session(
                &data,
                version.as_deref(),
                claim.as_deref(),
            )?))),
        }
    }

    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StoreError> {
        let mut invocation = PUT_SESSION.prepare_invoke();
        self.session_write(&mut invocation, session, ttl)?;
        invocation
            .invoke_async::<()>(&mut self.conn())
            .await
            .map_err(self.failed("writing a session"))
    }

    async fn update_session(
        &self,
        session: &mut Session,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut invocation = UPDATE_SESSION.prepare_invoke();
        self.session_write(&mut invocation, session, ttl)?;
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
            .smembers(self.key("open", subscriber.as_str()))
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
        let raw: Vec<String> = SESSION_HISTORY
            .key(self.history_key(subscriber))
            .arg(&self.prefix)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("reading a history"))?;
        raw.chunks_exact(3)
            .map(|s| {
                let present = |v: &String| (!v.is_empty()).then(|| v.clone());
                decode_session(&s[0], present(&s[1]).as_deref(), present(&s[2]).as_deref())
            })
            .collect()
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let (data, version, claim): (Option<String>, Option<String>, Option<String>) =
            redis::cmd("HMGET")
                .arg(self.key("ses", id.as_str()))
                .arg("data")
                .arg("version")
                .arg("claim")
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("reading a session"))?;
        data.map(|d| decode_session(&d, version.as_deref(), claim.as_deref()))
            .transpose()
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
        let claim_json = serde_json::to_string(claim).context("encoding a claim")?;
        let mut invocation = CLAIM_SESSION.prepare_invoke();
        invocation.key(self.due_key()).key(self.idle_key());
        for subscriber in subscribers {
            invocation.key(self.awaiting_key(subscriber, caller));
        }
        invocation
            .arg(&self.prefix)
            .arg(not_instructed_before.unix_millis())
            .arg(claim_json)
            .arg(millis(ttl))
            .arg(claim.call_sid.as_str())
            .arg(
                Timestamp::now()
                    .after(RESPONSE_TIMEOUT + CLOCK_SKEW_ALLOWANCE)
                    .unix_millis(),
            )
            .arg(millis(SWEEP_GRACE));
        if let Some(session) = unreported {
            let json = serde_json::to_string(session).context("encoding a session")?;
            invocation
                .arg(session.id().as_str())
                .arg(json)
                .arg(self.history_key(session.subscriber()))
                .arg(session.began_at_millis());
        }
        let claimed: Option<Vec<Option<String>>> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("claiming a session"))?;
        claimed
            .map(|parts| match parts.as_slice() {
                [Some(data), version] => decode_session(data, version.as_deref(), None),
                [Some(data), version, claim] => {
                    decode_session(data, version.as_deref(), claim.as_deref())
                }
                _ => Err(StoreError::Unexpected(anyhow::anyhow!(
                    "the claim script answered oddly"
                ))),
            })
            .transpose()
    }

    async fn awaiting_sessions(
        &self,
        subscriber: &PhoneNumber,
        caller: &Caller,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ids: Vec<String> = self
            .conn()
            .zrange(self.awaiting_key(subscriber, caller), 0, -1)
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
        let ids: Vec<String> = TAKE_DUE
            .key(self.due_key())
            .arg(instructed_before.unix_millis())
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("taking due forwards"))?;
        Ok(ids
            .iter()
            .filter_map(|id| SessionId::parse(id).ok())
            .collect())
    }

    async fn take_idle_sessions(&self, limit: usize) -> Result<Vec<(SessionId, u64)>, StoreError> {
        let taken: Vec<(String, u64)> = TAKE_IDLE
            .key(self.idle_key())
            .arg(&self.prefix)
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("taking idle sessions"))?;
        Ok(taken
            .into_iter()
            .filter_map(|(id, version)| Some((SessionId::parse(&id).ok()?, version)))
            .collect())
    }

    async fn session_for_call(&self, call_sid: &CallSid) -> Result<Option<SessionId>, StoreError> {
        let id: Option<String> = self
            .conn()
            .get(self.key("call", call_sid.as_str()))
            .await
            .map_err(self.failed("reading the session of a call"))?;
        Ok(id.and_then(|id| SessionId::parse(&id).ok()))
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<WindowCount, StoreError> {
        let (hits, resets_in_ms): (u64, u64) = HIT
            .key(self.key("rate", key))
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
