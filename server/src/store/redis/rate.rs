//! Fixed-window counters: one key each, counted and timed in one script.

use std::time::Duration;

use async_trait::async_trait;

use super::scripts::HIT;
use super::{RedisStore, millis};
use crate::store::{RateLimits, StoreError, WindowCount};

#[async_trait]
impl RateLimits for RedisStore {
    async fn hit(&self, key: &str, window: Duration) -> Result<WindowCount, StoreError> {
        let (hits, resets_in_ms): (u64, u64) = HIT
            .key(self.keys.rate(key))
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
