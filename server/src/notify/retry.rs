//! When a failed webhook delivery is tried again: exponential backoff from
//! a first pause, or the receiver's own `Retry-After` (delta-seconds or an
//! HTTP-date), clamped between a floor and a ceiling; either way with up to
//! 20 % of jitter, so that receivers coming back are not hit by every
//! sender at once; and a defined end, after `attempts`.

use std::time::Duration;

/// Retries for events other than `call.ringing`. An input of the
/// application (`startup::Inputs`): tests run with a fast one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The pause before the first retry; each later one is `backoff` times
    /// longer.
    pub first_delay: Duration,
    pub backoff: u32,
    /// The shortest pause a receiver's `Retry-After` may ask for (`0`, or a
    /// date already past, would retry at once).
    pub min_retry_after: Duration,
    /// The longest a receiver's `Retry-After` may make us wait.
    pub max_retry_after: Duration,
    /// Per-attempt deadline.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, 1 s then 5 s then 25 s apart (plus jitter), unless the
    /// receiver asks for 1 to 60 s.
    fn default() -> Self {
        Self {
            attempts: 4,
            first_delay: Duration::from_secs(1),
            backoff: 5,
            min_retry_after: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first), given the
    /// receiver's `Retry-After` if it sent one that could be read; jitter
    /// not included (see [`jittered`]).
    pub(crate) fn pause(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.clamp(self.min_retry_after, self.max_retry_after),
            None => self
                .first_delay
                .saturating_mul(self.backoff.saturating_pow(retry.saturating_sub(1))),
        }
    }
}

/// `pause` plus up to a fifth of it, at random.
pub(crate) fn jittered(pause: Duration) -> Duration {
    let fifth = u64::try_from(pause.as_millis() / 5).unwrap_or(u64::MAX);
    if fifth == 0 {
        return pause;
    }
    pause + Duration::from_millis(rand::random::<u64>() % fifth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_back_off_from_the_first_delay_unless_the_receiver_asks_within_bounds() {
        let policy = RetryPolicy::default();
        let secs = |n| Duration::from_secs(n);
        assert_eq!(
            [1, 2, 3].map(|retry| policy.pause(retry, None)),
            [secs(1), secs(5), secs(25)]
        );
        assert_eq!(policy.pause(1, Some(secs(30))), secs(30));
        assert_eq!(policy.pause(3, Some(secs(0))), secs(1), "the floor");
        assert_eq!(policy.pause(1, Some(secs(3600))), secs(60), "the ceiling");
        assert_eq!(
            policy.pause(u32::MAX, None),
            secs(u64::from(u32::MAX)),
            "no overflow"
        );
    }

    #[test]
    fn jitter_adds_at_most_a_fifth() {
        let pause = Duration::from_secs(10);
        for _ in 0..1000 {
            let waited = jittered(pause);
            assert!(pause <= waited && waited < pause + pause / 5, "{waited:?}");
        }
        assert_eq!(jittered(Duration::from_millis(4)), Duration::from_millis(4));
    }
}
