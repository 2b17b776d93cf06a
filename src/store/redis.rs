//! The Redis store, shared by every instance of the service.
//!
//! Keys (all under `REDIS_KEY_PREFIX`, written `P` here):
//! - `P:sub:<number>`: hash with `record` (the subscriber as JSON), `fwd` (its
//!   forwarding number) and `tokens` (its token hashes, space-separated), so
//!   that the scripts below can clean the indexes without parsing JSON;
//! - `P:fwd:<forwarding number>`: set of the subscriber numbers forwarding there;
//! - `P:tok:<token hash>`: the token's owner, `<number>` or `<number> <destination id>`;
//! - `P:ses:<session id>`: the session as JSON, with the session TTL.
//!
//! Every multi-key change is one Lua script, so it is atomic and costs one
//! round trip. The scripts build index keys from the prefix, so the store
//! targets a single Redis server (or a primary with replicas), not a Cluster.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, RedisError, Script};

use super::{Store, StoreError, SubscriberRecord};
use crate::domain::credentials::{TokenHash, TokenOwner};
use crate::domain::phone::PhoneNumber;
use crate::domain::session::{Session, SessionId};
use crate::domain::subscriber::DestinationId;

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
}

/// KEYS: subscriber hash, new forwarding set.
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
for i = 6, #ARGV, 2 do redis.call('SET', prefix .. ':tok:' .. ARGV[i], ARGV[i + 1]) end
if old[1] then return 1 else return 0 end
",
    )
});

/// KEYS: subscriber hash. ARGV: prefix, number.
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
return 1
",
    )
});

/// KEYS: forwarding set. ARGV: prefix. Returns the records of its members.
static SUBSCRIBERS_FORWARDING_TO: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for _, number in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('HGET', ARGV[1] .. ':sub:' .. number, 'record')
  if record then out[#out + 1] = record end
end
return out
",
    )
});

impl RedisStore {
    /// Prepares a connection to `url` with every key under `prefix`. The
    /// connection is made lazily and remade in the background when it drops,
    /// so the service starts, and keeps answering what it can, while Redis is
    /// away; each command fails fast instead of hanging.
    pub fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .context("configuring the Redis connection")?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
        })
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

    fn conn(&self) -> ConnectionManager {
        // Cloning shares the one multiplexed connection.
        self.connection.clone()
    }
}

fn redis_error(context: &'static str) -> impl FnOnce(RedisError) -> StoreError {
    move |err| {
        let unavailable = err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_unrecoverable_error();
        let err = anyhow::Error::new(err).context(context);
        if unavailable {
            StoreError::Unavailable(err)
        } else {
            StoreError::Unexpected(err)
        }
    }
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
            .map_err(redis_error("PING"))
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
            .map_err(redis_error("writing a subscriber"))?;
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
            .map_err(redis_error("reading a subscriber"))?;
        json.map(|j| decode(&j, "subscriber")).transpose()
    }

    async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let deleted: i64 = DELETE_SUBSCRIBER
            .key(self.key("sub", number.as_str()))
            .arg(&self.prefix)
            .arg(number.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error("deleting a subscriber"))?;
        Ok(deleted == 1)
    }

    async fn subscribers_forwarding_to(
        &self,
        forwarding_number: &PhoneNumber,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let records: Vec<String> = SUBSCRIBERS_FORWARDING_TO
            .key(self.key("fwd", forwarding_number.as_str()))
            .arg(&self.prefix)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error("reading subscribers by forwarding number"))?;
        let mut records = records
            .iter()
            .map(|j| decode::<SubscriberRecord>(j, "subscriber"))
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.subscriber.number.cmp(&b.subscriber.number));
        Ok(records)
    }

    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        let owner: Option<String> = self
            .conn()
            .get(self.key("tok", &hash.to_hex()))
            .await
            .map_err(redis_error("reading a token"))?;
        owner.as_deref().map(decode_owner).transpose()
    }

    async fn put_session(&self, session: &Session, ttl: Duration) -> Result<(), StoreError> {
        let json = serde_json::to_string(session).context("encoding a session")?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.conn()
            .pset_ex::<_, _, ()>(self.key("ses", session.id.as_str()), json, ttl_ms)
            .await
            .map_err(redis_error("writing a session"))
    }

    async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let json: Option<String> = self
            .conn()
            .get(self.key("ses", id.as_str()))
            .await
            .map_err(redis_error("reading a session"))?;
        json.map(|j| decode(&j, "session")).transpose()
    }
}
