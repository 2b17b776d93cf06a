//! A Redis Cluster: commands routed by key, following slot moves; the
//! connection is made on first use, so that the service starts while the
//! cluster is down.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionInfo, RedisFuture, Value};

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
