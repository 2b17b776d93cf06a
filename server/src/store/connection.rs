//! The Redis connection every part of the service uses (the store and the
//! event bus), for the three ways Redis is deployed: one server, a Redis
//! Cluster, or a primary that Sentinel watches and fails over.
//!
//! [`RedisConnection::open`] is the one place connections are configured:
//! lazy (the service starts while Redis is down, and works once it is up),
//! a second to connect and a second to answer, and [`RetryOnce`]'s retries
//! on top of each mode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use tokio::time::Instant;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo as _, RedisError, RedisFuture,
    RetryMethod, ServerErrorKind, TlsMode, Value,
};

use crate::config::RedisTarget;

/// How long connecting to a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a command may wait for its answer: a hung Redis must cost a
/// webhook a second, not the provider's whole timeout.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long asking the sentinels for the primary may take (they check the
/// primary they name, which may be the one that hangs).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(1);
/// The sentinels are asked again at most this often: during an outage every
/// command fails, and each must not cost the sentinels a lookup.
const RESOLVE_INTERVAL: Duration = Duration::from_millis(250);

/// The one Redis connection of an instance, whatever the deployment; clones
/// share it. Commands go through it as through any
/// [`redis::aio::ConnectionLike`] (`Script::invoke_async`, `query_async`,
/// `AsyncCommands`).
#[derive(Clone)]
pub struct RedisConnection {
    connection: RetryOnce<Node>,
    /// What a dedicated connection is made from.
    dedicated: Dedicated,
}

/// The connection a deployment's commands go through.
#[derive(Clone)]
enum Node {
    /// One server: the manager reconnects in the background.
    Standalone(ConnectionManager),
    /// A Redis Cluster: routed by key, following slot moves.
    Cluster(LazyCluster),
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
    pub fn open(target: &RedisTarget) -> anyhow::Result<Self> {
        let (node, dedicated) = match target {
            RedisTarget::Standalone(url) => {
                let client = Client::open(url.expose_secret()).context("parsing REDIS_URL")?;
                let manager = lazy_manager(client.clone())?;
                (
                    Node::Standalone(manager),
                    Dedicated::Standalone(Arc::new(client)),
                )
            }
            RedisTarget::Cluster(seeds) => {
                let seeds = seeds
                    .iter()
                    .map(|url| url.expose_secret().into_connection_info())
                    .collect::<Result<Vec<_>, _>>()
                    .context("parsing REDIS_CLUSTER_URLS")?;
                let client = cluster_client(&seeds, RESPONSE_TIMEOUT)
                    .context("configuring the Redis Cluster connection")?;
                (
                    Node::Cluster(LazyCluster::new(client)),
                    Dedicated::Cluster(seeds.into()),
                )
            }
            RedisTarget::Sentinel { sentinels, master } => {
                let follow = FollowPrimary::new(sentinels, master)?;
                (Node::Sentinel(follow.clone()), Dedicated::Sentinel(follow))
            }
        };
        Ok(Self {
            connection: RetryOnce::new(node),
            dedicated,
        })
    }

    /// Whether this is a Redis Cluster, where a command's keys must share a
    /// slot and `SCAN` sees one node only.
    pub fn is_cluster(&self) -> bool {
        matches!(self.dedicated, Dedicated::Cluster(_))
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
        self.connection.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.connection.req_packed_commands(cmd, offset, count)
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

fn cluster_client(
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

fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} took too long"),
    ))
}

/// A cluster connection made on first use: the crate's own connects to the
/// seeds at once and fails for good when they are down, and the service must
/// start while they are. Once made, it follows the cluster by itself
/// (reconnecting to nodes, refreshing slots).
#[derive(Clone)]
struct LazyCluster {
    client: Arc<ClusterClient>,
    connection: Arc<tokio::sync::OnceCell<ClusterConnection>>,
}

impl LazyCluster {
    fn new(client: ClusterClient) -> Self {
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

/// The primary that the sentinels name, followed across failovers. The
/// crate asks sentinels on demand but keeps no connection that follows, so
/// this does: it holds a connection to the primary found last, and when a
/// command there fails as if the primary were gone (unreachable, hung, or
/// demoted: `READONLY`, `MASTERDOWN`), it asks the sentinels again and moves
/// to the new primary, resending the command there once. Clones share one
/// primary, and one lookup runs at a time.
#[derive(Clone)]
struct FollowPrimary(Arc<Following>);

struct Following {
    /// Held while the sentinels are asked, so that lookups do not pile up.
    sentinels: tokio::sync::Mutex<Lookup>,
    primary: std::sync::RwLock<Option<Primary>>,
    db: i64,
}

struct Lookup {
    client: SentinelClient,
    /// When the sentinels were last asked.
    asked_at: Option<Instant>,
}

#[derive(Clone)]
struct Primary {
    client: Client,
    connection: ConnectionManager,
    /// Counts the primaries found, so that a command knows whether the one
    /// it failed on was replaced meanwhile.
    generation: u64,
}

impl FollowPrimary {
    fn new(sentinels: &[secrecy::SecretString], master: &str) -> anyhow::Result<Self> {
        let sentinels = sentinels
            .iter()
            .map(|url| url.expose_secret().into_connection_info())
            .collect::<Result<Vec<_>, _>>()
            .context("parsing REDIS_SENTINEL_URLS")?;
        // The primary is reached the way the first sentinel is: its
        // credentials, database and TLS.
        let first = sentinels
            .first()
            .context("REDIS_SENTINEL_URLS lists no sentinel")?;
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(first.redis_settings().clone());
        if let ConnectionAddr::TcpTls { insecure, .. } = first.addr() {
            node = node.set_tls_mode(if *insecure {
                TlsMode::Insecure
            } else {
                TlsMode::Secure
            });
        }
        let db = first.redis_settings().db();
        let client =
            SentinelClient::build(sentinels, master, Some(node), SentinelServerType::Master)
                .context("configuring the Redis Sentinel connection")?;
        Ok(Self(Arc::new(Following {
            sentinels: tokio::sync::Mutex::new(Lookup {
                client,
                asked_at: None,
            }),
            primary: std::sync::RwLock::new(None),
            db,
        })))
    }

    fn current(&self) -> Option<Primary> {
        self.0
            .primary
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The primary to send to: the current one, or, when there is none or
    /// the one a command just failed on (`failed_on`, its generation) is
    /// still current, the one the sentinels name now.
    async fn primary(&self, failed_on: Option<u64>) -> redis::RedisResult<Primary> {
        let mut lookup = self.0.sentinels.lock().await;
        // Another command may have looked while this one waited for the lock.
        if let Some(current) = self.current()
            && (failed_on != Some(current.generation)
                || lookup
                    .asked_at
                    .is_some_and(|at| at.elapsed() < RESOLVE_INTERVAL))
        {
            return Ok(current);
        }
        lookup.asked_at = Some(Instant::now());
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, lookup.client.async_get_client())
            .await
            .map_err(|_| timed_out("asking the sentinels for the primary"))?
            // "No sentinel answers" or "no primary known" means the store is
            // unreachable for now, as a refused connection does.
            .map_err(|err| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    format!("no primary from the sentinels: {err}"),
                ))
            })?;
        let mut slot = self.0.primary.write().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = &*slot
            && current.client.get_connection_info().addr() == found.get_connection_info().addr()
        {
            return Ok(current.clone());
        }
        let generation = slot.as_ref().map_or(0, |p| p.generation + 1);
        if slot.is_some() {
            tracing::warn!(
                primary = %found.get_connection_info().addr(),
                "the sentinels name a new Redis primary; following it"
            );
        }
        let connection = lazy_manager(found.clone()).map_err(|err| {
            RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "configuring the primary's connection",
                format!("{err:#}"),
            ))
        })?;
        let primary = Primary {
            client: found,
            connection,
            generation,
        };
        *slot = Some(primary.clone());
        Ok(primary)
    }

    /// The primary to send a command to.
    async fn for_sending(&self) -> redis::RedisResult<Primary> {
        match self.current() {
            Some(primary) => Ok(primary),
            None => self.primary(None).await,
        }
    }

    /// After a command on `primary` failed with `err`: the new primary to
    /// resend it to, when the failure says the primary may have moved and
    /// the sentinels name another.
    async fn moved_from(&self, primary: &Primary, err: Option<RedisError>) -> Option<Primary> {
        if !err.is_some_and(|err| primary_lost(&err)) {
            return None;
        }
        let now = self.primary(Some(primary.generation)).await.ok()?;
        (now.generation != primary.generation).then_some(now)
    }
}

/// Whether an error says the primary may be elsewhere now.
fn primary_lost(err: &RedisError) -> bool {
    unreachable(err)
        || err.is_timeout()
        || matches!(
            err.kind(),
            redis::ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

impl ConnectionLike for FollowPrimary {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let primary = self.for_sending().await?;
            let answered = primary.connection.clone().req_packed_command(cmd).await;
            match self.moved_from(&primary, failure(&answered)).await {
                Some(moved) => moved.connection.clone().req_packed_command(cmd).await,
                None => answered,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let primary = self.for_sending().await?;
            let answered = primary
                .connection
                .clone()
                .req_packed_commands(cmd, offset, count)
                .await;
            match self.moved_from(&primary, pipeline_failure(&answered)).await {
                Some(moved) => {
                    moved
                        .connection
                        .clone()
                        .req_packed_commands(cmd, offset, count)
                        .await
                }
                None => answered,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.0.db
    }
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

/// How long a command keeps being retried while Redis says to wait (it is
/// loading its data after a restart, for some 100 ms; a failover is under
/// way) or cannot be reached (it is restarting), and how long between tries.
const WAIT_BUDGET: Duration = Duration::from_secs(1);
const WAIT_STEP: Duration = Duration::from_millis(50);
/// After a command waited its whole budget for an unreachable Redis, the
/// next ones do not wait for this long: an outage costs a second now and
/// then, not a second per command.
const OUTAGE_MEMORY: Duration = Duration::from_secs(2);

/// A connection to Redis (any mode's) that rides out a restart:
/// - a command that fails because the connection had dropped (Redis
///   restarted while this instance was idle) is sent once more, on the
///   connection the manager makes anew; without this the first command after
///   every restart fails;
/// - a command Redis answers "wait and retry" (`LOADING` while it reads its
///   data back, `TRYAGAIN`, `MASTERDOWN`), or that cannot reach Redis (it is
///   restarting), is tried again for up to a second — unless one already
///   waited that long in vain just before (Redis is down, not restarting).
///
/// Each command of ours is safe to repeat: a claim remembers the call that
/// made it, a session update is versioned, creating a session recognises its
/// own earlier write, the other writes set what they set.
#[derive(Clone)]
pub struct RetryOnce<C> {
    connection: C,
    /// When a command last gave up waiting for an unreachable Redis.
    gave_up_at: Arc<Mutex<Option<Instant>>>,
}

impl<C> RetryOnce<C> {
    pub fn new(connection: C) -> Self {
        Self {
            connection,
            gave_up_at: Arc::default(),
        }
    }

    fn retries(&self) -> Retries {
        let gave_up_at = *self.gave_up_at.lock().unwrap_or_else(|p| p.into_inner());
        Retries {
            wait_for_unreachable: gave_up_at.is_none_or(|at| at.elapsed() >= OUTAGE_MEMORY),
            ..Retries::default()
        }
    }

    /// Remembers how a command ended: whether it gave up on an unreachable
    /// Redis, or reached it.
    fn ended<T>(&self, answered: &redis::RedisResult<T>) {
        let mut gave_up_at = self.gave_up_at.lock().unwrap_or_else(|p| p.into_inner());
        match answered {
            Err(err) if unreachable(err) => *gave_up_at = Some(Instant::now()),
            _ => *gave_up_at = None,
        }
    }
}

fn unreachable(err: &RedisError) -> bool {
    err.is_connection_refusal() || err.is_connection_dropped() || err.is_io_error()
}

/// Whether Redis asked to be asked again shortly.
pub fn says_wait(err: &RedisError) -> bool {
    matches!(err.retry_method(), RetryMethod::WaitAndRetry)
}

/// What one command has retried so far.
struct Retries {
    resent: bool,
    /// When the command was first sent: the budget is wall time, tries
    /// included (a try may itself wait for a reconnect).
    started: Instant,
    /// Whether to wait for a Redis that cannot be reached.
    wait_for_unreachable: bool,
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            resent: false,
            started: Instant::now(),
            wait_for_unreachable: false,
        }
    }
}

impl Retries {
    /// Whether to send the command again after `err` (having waited, when
    /// Redis asked to).
    async fn again(&mut self, err: &RedisError) -> bool {
        if err.is_connection_dropped() && !self.resent {
            self.resent = true;
            return true;
        }
        // Redis restarting refuses connections for a few hundred ms: a
        // caller waiting that long is better served than one dialed without
        // the session.
        let worth_waiting = says_wait(err) || (self.wait_for_unreachable && unreachable(err));
        if worth_waiting && self.started.elapsed() + WAIT_STEP <= WAIT_BUDGET {
            tokio::time::sleep(WAIT_STEP).await;
            return true;
        }
        false
    }
}

/// The error in an answer: a failed request, or an error reply, which the
/// crate hands back as a value (`LOADING` comes that way) for the caller's
/// conversion to turn into an error.
fn failure(answered: &redis::RedisResult<Value>) -> Option<RedisError> {
    match answered {
        Err(err) => Some(err.clone()),
        Ok(Value::ServerError(err)) => Some(err.clone().into()),
        Ok(_) => None,
    }
}

/// The first error of a pipeline's answers, if any.
fn pipeline_failure(answered: &redis::RedisResult<Vec<Value>>) -> Option<RedisError> {
    match answered {
        Err(err) => Some(err.clone()),
        Ok(values) => values.iter().find_map(|v| match v {
            Value::ServerError(err) => Some(err.clone().into()),
            _ => None,
        }),
    }
}

impl<C: ConnectionLike + Send> ConnectionLike for RetryOnce<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            let mut retries = self.retries();
            loop {
                let answered = self.connection.req_packed_command(cmd).await;
                if let Some(err) = failure(&answered)
                    && retries.again(&err).await
                {
                    continue;
                }
                self.ended(&answered);
                return answered;
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            let mut retries = self.retries();
            loop {
                let answered = self
                    .connection
                    .req_packed_commands(cmd, offset, count)
                    .await;
                if let Some(err) = pipeline_failure(&answered)
                    && retries.again(&err).await
                {
                    continue;
                }
                self.ended(&answered);
                return answered;
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.connection.get_db()
    }
}

#[cfg(test)]
mod tests {
    use redis::{ErrorKind, ServerErrorKind};

    use super::*;

    fn error(kind: ErrorKind) -> RedisError {
        RedisError::from((kind, "test"))
    }

    #[test]
    fn the_primary_is_looked_for_again_only_when_it_may_have_moved() {
        let lost = [
            RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
            timed_out("a command"),
            error(ErrorKind::Server(ServerErrorKind::ReadOnly)),
            error(ErrorKind::Server(ServerErrorKind::MasterDown)),
        ];
        for err in &lost {
            assert!(primary_lost(err), "{err}");
        }
        // As the crate reads a demoted primary's answer.
        let readonly =
            redis::parse_redis_value(b"-READONLY You can't write against a read only replica.\r\n")
                .unwrap();
        assert!(primary_lost(&failure(&Ok(readonly)).unwrap()));
        let answers = [
            error(ErrorKind::Server(ServerErrorKind::NoScript)),
            error(ErrorKind::Server(ServerErrorKind::ResponseError)),
            error(ErrorKind::Server(ServerErrorKind::CrossSlot)),
        ];
        for err in &answers {
            assert!(!primary_lost(err), "{err}");
        }
    }

    #[test]
    fn an_error_reply_handed_back_as_a_value_is_seen() {
        // The crate answers `LOADING` as an error value, not an `Err`.
        let loading =
            redis::parse_redis_value(b"-LOADING Redis is loading the dataset in memory\r\n")
                .unwrap();
        let seen = failure(&Ok(loading.clone())).expect("an error reply");
        assert!(says_wait(&seen));
        assert!(says_wait(
            &pipeline_failure(&Ok(vec![Value::Okay, loading])).unwrap()
        ));
        assert!(failure(&Ok(Value::Okay)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_loading_redis_is_asked_again_for_up_to_a_second() {
        let loading = error(ErrorKind::Server(ServerErrorKind::BusyLoading));
        let mut retries = Retries::default();
        let started = tokio::time::Instant::now();
        let mut tries = 1;
        while retries.again(&loading).await {
            tries += 1;
        }
        assert_eq!(started.elapsed(), WAIT_BUDGET);
        assert_eq!(
            tries,
            1 + (WAIT_BUDGET.as_millis() / WAIT_STEP.as_millis()) as usize
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_connection_is_resent_and_a_plain_error_never() {
        let dropped = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(dropped.is_connection_dropped());
        let mut retries = Retries {
            wait_for_unreachable: true,
            ..Retries::default()
        };
        assert!(retries.again(&dropped).await, "resent at once");
        let mut tries = 1;
        while retries.again(&dropped).await {
            tries += 1;
        }
        assert!(tries > 2, "then tried again while Redis restarts");
        let mut just_after_an_outage = Retries::default();
        assert!(just_after_an_outage.again(&dropped).await, "resent at once");
        assert!(
            !just_after_an_outage.again(&dropped).await,
            "but not waited for"
        );
        let refused = error(ErrorKind::Server(ServerErrorKind::ResponseError));
        assert!(
            !retries.again(&refused).await,
            "an error answer is the answer"
        );
        assert!(
            !retries
                .again(&error(ErrorKind::Server(ServerErrorKind::NoScript)))
                .await
        );
    }
}
