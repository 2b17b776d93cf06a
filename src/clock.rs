//! The wall-clock time the subscriber's rules are decided at (schedules,
//! do-not-disturb). A deployment reads the system clock; a test or a
//! simulation sets it to a time of its choosing, from which it runs on with
//! the system clock, and a test moves it on with [`WallClock::advance`]
//! instead of waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::domain::session::Timestamp;

#[derive(Debug, Clone, Default)]
pub enum WallClock {
    #[default]
    System,
    /// The system clock plus this many milliseconds, shared by every clone
    /// (the service's threads and the test that moves it).
    Shifted(Arc<AtomicI64>),
}

impl WallClock {
    /// A clock that reads `at` now.
    pub fn starting_at(at: Timestamp) -> Self {
        let shift = at.unix_millis() - Timestamp::now().unix_millis();
        Self::Shifted(Arc::new(AtomicI64::new(shift)))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::Shifted(shift) => {
                let now = Timestamp::now().unix_millis() + shift.load(Ordering::Relaxed);
                Timestamp::from_unix_millis(now).unwrap_or_else(Timestamp::now)
            }
        }
    }

    /// Moves a set clock on by `by` (the system clock cannot be moved).
    pub fn advance(&self, by: Duration) {
        if let Self::Shifted(shift) = self {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            shift.fetch_add(by, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_starts_where_it_was_set_and_moves_when_told() {
        let at = Timestamp::from_unix_millis(1_800_000_000_000).unwrap();
        let clock = WallClock::starting_at(at);
        let shared = clock.clone();
        let read = clock.now();
        assert!(
            read >= at && at.until(read) < Duration::from_secs(5),
            "{read:?}"
        );
        shared.advance(Duration::from_secs(3600));
        assert!(at.after(Duration::from_secs(3600)) <= clock.now());
    }
}
