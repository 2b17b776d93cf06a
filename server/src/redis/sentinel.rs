//! A primary that Sentinel watches: found through the sentinels, and
//! followed to the new one after a failover.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Client, ConnectionAddr, RedisError, RedisFuture, ServerErrorKind, TlsMode, Value};
use tokio::time::Instant;

use super::retry::{failure, pipeline_failure, unreachable};
use super::{Certificates, connection_info, lazy_manager, timed_out};
use secrecy::ExposeSecret as _;

/// How long asking the sentinels for the primary may take (they check the
/// primary they name, which may be the one that hangs).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(1);
/// The sentinels are asked again at most this often: during an outage every
/// command fails, and each must not cost the sentinels a lookup.
const RESOLVE_INTERVAL: Duration = Duration::from_millis(250);

/// The primary that the sentinels name, followed across failovers. The
/// crate asks sentinels on demand but keeps no connection that follows, so
/// this does: it holds a connection to the primary found last, and when a
/// command there fails as if the primary were gone (unreachable, hung, or
/// demoted: `READONLY`, `MASTERDOWN`), it asks the sentinels again and moves
/// to the new primary, resending the command there once. Clones share one
/// primary, and one lookup runs at a time.
#[derive(Clone)]
pub(super) struct FollowPrimary(Arc<Following>);

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
pub(super) struct Primary {
    pub(super) client: Client,
    connection: ConnectionManager,
    /// Counts the primaries found, so that a command knows whether the one
    /// it failed on was replaced meanwhile.
    pub(super) generation: u64,
}

impl FollowPrimary {
    pub(super) fn new(
        sentinels: &[secrecy::SecretString],
        master: &str,
        certificates: Certificates,
    ) -> anyhow::Result<Self> {
        let sentinels = sentinels
            .iter()
            .map(|url| connection_info(url.expose_secret(), certificates))
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

    pub(super) fn current(&self) -> Option<Primary> {
        self.0
            .primary
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The primary to send to: the current one, or, when there is none or
    /// the one a command just failed on (`failed_on`, its generation) is
    /// still current, the one the sentinels name now.
    pub(super) async fn primary(&self, failed_on: Option<u64>) -> redis::RedisResult<Primary> {
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

#[cfg(test)]
mod tests {
    use redis::{ErrorKind, ServerErrorKind};

    use super::*;
    use crate::redis::retry::failure;

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
}
