//! A Redis Cluster: commands routed by key, following slot moves; the
//! connection is made on first use, so that the service starts while the
//! cluster is down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::SingleNodeRoutingInfo;
use redis::{ConnectionInfo, ErrorKind, RedisError, RedisFuture, Value};

use super::{CONNECT_TIMEOUT, timed_out};

pub(super) fn cluster_client(
    seeds: &[ConnectionInfo],
    response_timeout: Duration,
) -> redis::RedisResult<ClusterClient> {
    ClusterClient::builder(seeds.iter().cloned())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(response_timeout)
        // A moved slot or a node restarting is retried within the response
        // timeout, which bounds the whole request (retries included).
        .retries(3)
        .min_retry_wait(20)
        .max_retry_wait(200)
        .build()
}

/// A cluster connection made on first use: the crate's own connects to the
/// seeds at once and fails for good when they are down, and the service must
/// start while they are. Once made, it follows the cluster by itself
/// (reconnecting to nodes, refreshing slots).
#[derive(Clone)]
pub(super) struct LazyCluster {
    client: Arc<ClusterClient>,
    connection: Arc<tokio::sync::OnceCell<ClusterConnection>>,
}

impl LazyCluster {
    pub(super) fn new(client: ClusterClient) -> Self {
        Self {
            client: Arc::new(client),
            connection: Arc::default(),
        }
    }

    /// The connection, made now when there is none yet (one attempt at a
    /// time; a failed one leaves it to the next command).
    async fn get(&self) -> redis::RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| async {
                tokio::time::timeout(CONNECT_TIMEOUT * 2, self.client.get_async_connection())
                    .await
                    .map_err(|_| timed_out("connecting to the Redis Cluster"))?
            })
            .await
            .cloned()
    }
}

impl LazyCluster {
    /// Sends `commands` (each with its keys in one slot) as one pipeline a
    /// node, to every node at once, after reading which node serves which
    /// slots; the answers in the commands' order. The client keeps a
    /// pipeline to one slot, so a batch of a few thousand commands over as
    /// many slots would otherwise be as many requests. Each node runs its
    /// commands in their order; between nodes there is none. An error
    /// answer fails the whole (a slot moved since the map was read:
    /// `MOVED`; a script a node has not loaded: `NOSCRIPT`).
    pub(super) async fn pipelines_by_node(
        &self,
        commands: &redis::Pipeline,
    ) -> redis::RedisResult<Vec<Value>> {
        let connection = self.get().await?;
        let slots = slot_map(&mut connection.clone()).await?;
        let mut by_node: BTreeMap<&(String, u16), (redis::Pipeline, Vec<usize>)> = BTreeMap::new();
        for (i, command) in commands.cmd_iter().enumerate() {
            let slot = first_key(command)
                .map(key_slot)
                .ok_or_else(|| unexpected("a command without a key in a batch"))?;
            let node = slots
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(&slot))
                .map(|(_, _, node)| node)
                .ok_or_else(|| unexpected("a slot no node serves"))?;
            let (pipeline, indexes) = by_node.entry(node).or_default();
            pipeline.add_command(command.clone());
            indexes.push(i);
        }
        let answered = try_join_all(by_node.into_iter().map(
            |((host, port), (pipeline, indexes))| {
                let mut connection = connection.clone();
                let route = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                async move {
                    let count = pipeline.len();
                    let answers = connection.route_pipeline(pipeline, 0, count, route).await?;
                    Ok::<_, RedisError>(indexes.into_iter().zip(answers))
                }
            },
        ))
        .await?;
        let mut answers = vec![Value::Nil; commands.len()];
        for (i, answer) in answered.into_iter().flatten() {
            if let Value::ServerError(err) = answer {
                return Err(err.into());
            }
            answers[i] = answer;
        }
        Ok(answers)
    }
}

/// Which node serves which slots: `(first, last, (host, port))` of each
/// range, from `CLUSTER SLOTS`.
async fn slot_map(
    connection: &mut ClusterConnection,
) -> redis::RedisResult<Vec<(u16, u16, (String, u16))>> {
    let ranges: Vec<Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(connection)
        .await?;
    ranges
        .into_iter()
        .map(|range| {
            let Value::Array(parts) = range else {
                return Err(unexpected("CLUSTER SLOTS: a range is no array"));
            };
            let mut parts = parts.into_iter();
            let (Some(first), Some(last), Some(Value::Array(primary))) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(unexpected("CLUSTER SLOTS: a range without its primary"));
            };
            let mut primary = primary.into_iter();
            let (Some(host), Some(port)) = (primary.next(), primary.next()) else {
                return Err(unexpected("CLUSTER SLOTS: a primary without its address"));
            };
            let host: String = redis::from_redis_value(host)?;
            if host.is_empty() {
                return Err(unexpected("CLUSTER SLOTS: a primary without its host"));
            }
            Ok((
                redis::from_redis_value(first)?,
                redis::from_redis_value(last)?,
                (host, redis::from_redis_value(port)?),
            ))
        })
        .collect()
}

/// The first key of one of our commands: a script's first key, else the
/// command's first argument.
fn first_key(command: &redis::Cmd) -> Option<&[u8]> {
    let mut args = command.args_iter().filter_map(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let name = args.next()?;
    if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL") {
        // EVALSHA <sha> <number of keys> <first key> …
        args.nth(2)
    } else {
        args.next()
    }
}

/// The cluster slot of `key`: CRC16 (XMODEM) of its hash tag (what is
/// between its first `{` and the next `}`, when that is not empty) or of
/// the whole key, modulo 16384.
fn key_slot(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tag) % 16384
}

fn unexpected(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Client, what))
}

impl ConnectionLike for LazyCluster {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.get().await?.req_packed_command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.get()
                .await?
                .req_packed_commands(cmd, offset, count)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // The examples of the Redis Cluster specification, and keys of ours.
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"ringrelay:{s07}:ses"), key_slot(b"s07"));
    }

    #[test]
    fn a_scripts_first_key_is_after_its_number_of_keys() {
        let mut script = redis::cmd("EVALSHA");
        script.arg("abc").arg(1).arg("P:fw:+12025550100").arg("x");
        assert_eq!(first_key(&script), Some(&b"P:fw:+12025550100"[..]));
        let mut hset = redis::cmd("HSET");
        hset.arg("P:tk:abc").arg("f").arg("v");
        assert_eq!(first_key(&hset), Some(&b"P:tk:abc"[..]));
    }
}
