//! Riding out a Redis restart: [`RetryOnce`] resends a command whose
//! connection dropped, and waits (up to a second) while Redis says to, or
//! cannot be reached while it restarts. Every mode's connection goes
//! through it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{RedisError, RedisFuture, RetryMethod, Value};
use tokio::time::Instant;

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

    /// The connection itself, for what goes around the retries.
    pub(super) fn inner(&self) -> &C {
        &self.connection
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

pub(super) fn unreachable(err: &RedisError) -> bool {
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
pub(super) fn failure(answered: &redis::RedisResult<Value>) -> Option<RedisError> {
    match answered {
        Err(err) => Some(err.clone()),
        Ok(Value::ServerError(err)) => Some(err.clone().into()),
        Ok(_) => None,
    }
}

/// The first error of a pipeline's answers, if any.
pub(super) fn pipeline_failure(answered: &redis::RedisResult<Vec<Value>>) -> Option<RedisError> {
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
