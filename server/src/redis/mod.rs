//! The Redis connection every part of the service uses (the store and the
//! event bus), for the three ways Redis is deployed: one server, a Redis
//! Cluster ([`cluster`]), or a primary that Sentinel watches and fails over
//! ([`sentinel`]).
//!
//! [`RedisConnection::open`] is the one place connections are configured:
//! lazy (the service starts while Redis is down, and works once it is up),
//! a second to connect and a second to answer, TLS certificates checked or
//! not (`REDIS_TLS_INSECURE`), and [`retry::RetryOnce`]'s retries on top of
//! each mode.

mod cluster;
mod per_worker;
mod retry;
mod sentinel;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo as _, RedisError, RedisFuture, Value,
};

use self::cluster::{LazyCluster, cluster_client};
use self::per_worker::PerWorker;
use self::retry::RetryOnce;
pub use self::retry::says_wait;
use self::sentinel::FollowPrimary;
use crate::config::RedisTarget;

/// How long connecting to a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a command may wait for its answer: a hung Redis must cost a
/// webhook a second, not the provider's whole timeout.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether `rediss://` connections check the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Certificates {
    /// Against the web's roots (webpki): a certificate they do not vouch
    /// for fails the connection, with an error naming `REDIS_TLS_INSECURE`.
    #[default]
    Verify,
    /// Any certificate (`REDIS_TLS_INSECURE=true`, or a URL's `#insecure`):
    /// still encrypted, for self-signed certificates such as Heroku's.
    AcceptAny,
}

/// `url` as a connection, accepting any certificate when asked to.
fn connection_info(url: &str, certificates: Certificates) -> redis::RedisResult<ConnectionInfo> {
    let info = url.into_connection_info()?;
    Ok(match (certificates, info.addr().clone()) {
        (
            Certificates::AcceptAny,
            ConnectionAddr::TcpTls {
                host,
                port,
                tls_params,
                ..
            },
        ) => info.set_addr(ConnectionAddr::TcpTls {
            host,
            port,
            insecure: true,
            tls_params,
        }),
        _ => info,
    })
}

/// The one Redis connection of an instance, whatever the deployment; clones
/// share it. Commands go through it as through any
/// [`redis::aio::ConnectionLike`] (`Script::invoke_async`, `query_async`,
/// `AsyncCommands`).
#[derive(Clone)]
pub struct RedisConnection {
    connection: RetryOnce<Node>,
    /// What a dedicated connection is made from.
    dedicated: Dedicated,
    /// Whether a refused certificate says which variable accepts it.
    certificates: Certificates,
}

/// The connection a deployment's commands go through.
#[derive(Clone)]
enum Node {
    /// One server: managers reconnect in the background, one per HTTP
    /// worker.
    Standalone(PerWorker<ConnectionManager>),
    /// A Redis Cluster: routed by key, following slot moves; one per HTTP
    /// worker.
    Cluster(PerWorker<LazyCluster>),
    /// A Sentinel-managed primary, followed across failovers.
    Sentinel(FollowPrimary),
}

/// How a dedicated connection (one not shared with other commands) is made.
#[derive(Clone)]
enum Dedicated {
    Standalone(Arc<Client>),
    Cluster(Arc<[ConnectionInfo]>),
    Sentinel(FollowPrimary),
}

impl RedisConnection {
    /// Prepares the connection to `target`; it connects on first use, and
    /// again whenever it is lost, so this succeeds while Redis is down. Fails
    /// only on a target that cannot be a Redis (which the configuration
    /// already rejects).
    pub fn open(target: &RedisTarget, certificates: Certificates) -> anyhow::Result<Self> {
        let (node, dedicated) = match target {
            RedisTarget::Standalone(url) => {
                let client = connection_info(url.expose_secret(), certificates)
                    .and_then(Client::open)
                    .context("parsing REDIS_URL")?;
                let managers = PerWorker::new({
                    let client = client.clone();
                    move || lazy_manager(client.clone())
                })?;
                (
                    Node::Standalone(managers),
                    Dedicated::Standalone(Arc::new(client)),
                )
            }
            RedisTarget::Cluster(seeds) => {
                let seeds = seeds
                    .iter()
                    .map(|url| connection_info(url.expose_secret(), certificates))
                    .collect::<Result<Vec<_>, _>>()
                    .context("parsing REDIS_CLUSTER_URLS")?;
                let client = cluster_client(&seeds, RESPONSE_TIMEOUT)
                    .context("configuring the Redis Cluster connection")?;
                (
                    Node::Cluster(PerWorker::new(move || {
                        Ok(LazyCluster::new(client.clone()))
                    })?),
                    Dedicated::Cluster(seeds.into()),
                )
            }
            RedisTarget::Sentinel { sentinels, master } => {
                let follow = FollowPrimary::new(sentinels, master, certificates)?;
                (Node::Sentinel(follow.clone()), Dedicated::Sentinel(follow))
            }
        };
        Ok(Self {
            connection: RetryOnce::new(node),
            dedicated,
            certificates,
        })
    }

    /// Whether this is a Redis Cluster, where a command's keys must share a
    /// slot and `SCAN` sees one node only.
    pub fn is_cluster(&self) -> bool {
        matches!(self.dedicated, Dedicated::Cluster(_))
    }

    /// Sends a batch of commands, each with its keys in one slot, and
    /// reads their answers in order: on a cluster as one pipeline a node
    /// (see `cluster.rs`; between nodes in no order), elsewhere as one
    /// pipeline (in order). Not retried: a batch's caller retries the
    /// batch, and on a cluster falls back to a command at a time when a
    /// slot moved under it.
    pub async fn pipelines_by_node(
        &self,
        commands: &redis::Pipeline,
    ) -> redis::RedisResult<Vec<Value>> {
        let answered = match self.connection.inner() {
            Node::Cluster(per_worker) => per_worker.connection().pipelines_by_node(commands).await,
            _ => commands.query_async(&mut self.clone()).await,
        };
        answered.map_err(|err| explained(err, self.certificates))
    }

    /// A connection of its own, connected now, for a blocking command
    /// (`XREAD BLOCK`) that would hold up every other command on the shared,
    /// multiplexed one. `response_timeout` must outlast the block. Not
    /// retried nor followed: the caller opens another when it fails (on
    /// Sentinel, that one goes to the primary of the moment). On a cluster,
    /// each command goes to its key's node.
    pub async fn dedicated(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<DedicatedConnection> {
        self.open_dedicated(response_timeout)
            .await
            .map_err(|err| explained(err, self.certificates))
    }

    async fn open_dedicated(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<DedicatedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        match &self.dedicated {
            Dedicated::Standalone(client) => Ok(DedicatedConnection::Single(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            )),
            Dedicated::Cluster(seeds) => {
                let client = cluster_client(seeds, response_timeout)?;
                let connection =
                    tokio::time::timeout(CONNECT_TIMEOUT * 2, client.get_async_connection())
                        .await
                        .map_err(|_| timed_out("connecting to the Redis Cluster"))??;
                Ok(DedicatedConnection::Cluster(connection))
            }
            Dedicated::Sentinel(follow) => {
                // A dedicated connection is opened again after the last one
                // failed, maybe because the primary moved; no shared command
                // may have noticed yet (an idle instance sends none), so the
                // sentinels are asked (at most every RESOLVE_INTERVAL).
                let current = follow.current().map(|p| p.generation);
                let primary = follow.primary(current).await?;
                Ok(DedicatedConnection::Single(
                    primary
                        .client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                ))
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let certificates = self.certificates;
            self.connection
                .req_packed_command(cmd)
                .await
                .map_err(|err| explained(err, certificates))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let certificates = self.certificates;
            self.connection
                .req_packed_commands(cmd, offset, count)
                .await
                .map_err(|err| explained(err, certificates))
        })
    }

    fn get_db(&self) -> i64 {
        self.connection.get_db()
    }
}

/// A connection for one user alone: see [`RedisConnection::dedicated`].
pub enum DedicatedConnection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for DedicatedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// `err`, saying which variable to set when it is a certificate this
/// machine does not trust (and logging that once: every command fails the
/// same way until the variable is set).
fn explained(err: RedisError, certificates: Certificates) -> RedisError {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    let text = err.to_string();
    if certificates == Certificates::AcceptAny || !text.to_lowercase().contains("certificate") {
        return err;
    }
    let hint = "Redis's TLS certificate is not one this machine trusts; for a self-signed \
                certificate (Heroku Redis) set REDIS_TLS_INSECURE=true";
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::error!(error = %text, "{hint}");
    }
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{text} ({hint})"),
    ))
}

/// A manager that connects on first use and reconnects in the background.
fn lazy_manager(client: Client) -> anyhow::Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, config)
        .context("configuring the Redis connection")
}

fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} took too long"),
    ))
}

impl ConnectionLike for Node {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Self::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Sentinel(c) => c.get_db(),
        }
    }
}
