//! The Redis connection every part of the service uses (the store and the
//! event bus's publisher).

use redis::RedisFuture;
use redis::aio::{ConnectionLike, ConnectionManager};

/// A connection to Redis: a command that fails because the connection
/// had dropped (Redis restarted while this instance was idle) is sent once
/// more, on the connection the manager makes anew. Without this the first
/// command after every restart fails. Each command of ours is safe to
/// repeat: a claim remembers the call that made it, a session update is
/// versioned, the other writes set what they set.
#[derive(Clone)]
pub struct RetryOnce(pub ConnectionManager);

impl ConnectionLike for RetryOnce {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            match self.0.req_packed_command(cmd).await {
                Err(err) if err.is_connection_dropped() => self.0.req_packed_command(cmd).await,
                answered => answered,
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
            match self.0.req_packed_commands(cmd, offset, count).await {
                Err(err) if err.is_connection_dropped() => {
                    self.0.req_packed_commands(cmd, offset, count).await
                }
                answered => answered,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}
