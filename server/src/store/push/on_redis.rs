//! Push subscriptions on Redis: one sorted set per subscriber,
//! `<prefix>:push:{<number>}`, whose members are `<id>\n<subscription as
//! JSON>` scored by when they were added (oldest first). One key, so every
//! change is one atomic script on a cluster too; a subscriber's whole set is
//! one read.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{RedisError, Script};

use super::PushSubscriptionStore;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::push::PushSubscription;
use crate::redis::RedisConnection;
use crate::store::StoreError;

pub struct RedisPushStore {
    connection: RedisConnection,
    prefix: String,
}

/// Adds ARGV[2] (member) for id ARGV[1] of destination ARGV[5] at score
/// ARGV[3], dropping the member with the same id, then the oldest of that
/// destination's past ARGV[4].
const ADD: &str = r"
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local id = ARGV[1] .. '\n'
local mine = {}
for _, member in ipairs(members) do
  if string.sub(member, 1, #id) == id then
    redis.call('ZREM', KEYS[1], member)
  elseif cjson.decode(string.sub(member, string.find(member, '\n') + 1)).destination_id == ARGV[5] then
    table.insert(mine, member)
  end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local excess = #mine + 1 - tonumber(ARGV[4])
for i = 1, excess do
  redis.call('ZREM', KEYS[1], mine[i])
end
return 1
";

/// Removes the member of id ARGV[1] whose destination is ARGV[2]; 1 when
/// there was one.
const REMOVE: &str = r"
local id = ARGV[1] .. '\n'
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, #id) == id
     and cjson.decode(string.sub(member, #id + 1)).destination_id == ARGV[2] then
    redis.call('ZREM', KEYS[1], member)
    return 1
  end
end
return 0
";

/// Removes every member whose destination is not one of ARGV.
const RETAIN: &str = r"
local keep = {}
for _, destination in ipairs(ARGV) do keep[destination] = true end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local subscription = cjson.decode(string.sub(member, string.find(member, '\n') + 1))
  if not keep[subscription.destination_id] then
    redis.call('ZREM', KEYS[1], member)
  end
end
return 1
";

static ADD_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ADD));
static REMOVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REMOVE));
static RETAIN_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RETAIN));

impl RedisPushStore {
    /// Push subscriptions on the Redis of `connection` (the store's), their
    /// keys under `prefix`.
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            prefix: prefix.to_owned(),
        }
    }

    fn key(&self, subscriber: &PhoneNumber) -> String {
        format!("{}:push:{{{}}}", self.prefix, subscriber.as_str())
    }
}

fn failed(context: &'static str) -> impl FnOnce(RedisError) -> StoreError {
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

#[async_trait]
impl PushSubscriptionStore for RedisPushStore {
    async fn add_push_subscription(
        &self,
        subscriber: &PhoneNumber,
        subscription: &PushSubscription,
        max: usize,
    ) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(subscription).map_err(|e| StoreError::Unexpected(e.into()))?;
        let _: i64 = ADD_SCRIPT
            .prepare_invoke()
            .key(self.key(subscriber))
            .arg(&subscription.id)
            .arg(format!("{}\n{json}", subscription.id))
            .arg(subscription.created_at.unix_millis())
            .arg(max)
            .arg(subscription.destination_id.as_str())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed("adding a push subscription"))?;
        Ok(())
    }

    async fn push_subscriptions(
        &self,
        subscriber: &PhoneNumber,
    ) -> Result<Vec<PushSubscription>, StoreError> {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.key(subscriber))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed("reading push subscriptions"))?;
        Ok(members
            .iter()
            .filter_map(|member| {
                let (_, json) = member.split_once('\n')?;
                match serde_json::from_str(json) {
                    Ok(subscription) => Some(subscription),
                    Err(err) => {
                        tracing::warn!(error = %err, "ignored an unreadable push subscription");
                        None
                    }
                }
            })
            .collect())
    }

    async fn remove_push_subscription(
        &self,
        subscriber: &PhoneNumber,
        destination: &DestinationId,
        id: &str,
    ) -> Result<bool, StoreError> {
        let removed: i64 = REMOVE_SCRIPT
            .prepare_invoke()
            .key(self.key(subscriber))
            .arg(id)
            .arg(destination.as_str())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed("removing a push subscription"))?;
        Ok(removed == 1)
    }

    async fn retain_push_subscriptions(
        &self,
        subscriber: &PhoneNumber,
        destinations: &[DestinationId],
    ) -> Result<(), StoreError> {
        if destinations.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(self.key(subscriber))
                .query_async(&mut self.connection.clone())
                .await
                .map_err(failed("removing push subscriptions"))?;
            return Ok(());
        }
        let mut invocation = RETAIN_SCRIPT.prepare_invoke();
        invocation.key(self.key(subscriber));
        for destination in destinations {
            invocation.arg(destination.as_str());
        }
        let _: i64 = invocation
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed("removing push subscriptions"))?;
        Ok(())
    }
}
