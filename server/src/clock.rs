//! The wall-clock time of the call flow: when a session reached each step,
//! its deadlines (forwarding, pick mode's wait) and the subscriber's rules
//! (schedules, do-not-disturb). A deployment reads the system clock; a test
//! or a simulation sets it to a time of its choosing, from which it runs on
//! with the system clock, and a test moves it on with
//! [`WallClock::advance`] instead of waiting. (The store's own lifetimes run
//! on the store's clock.)

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::domain::time::Timestamp;

#[derive(Debug, Clone, Default)]
pub enum WallClock {
    #[default]
    System,
    /// The system clock plus this many milliseconds, shared by every clone
    /// (the service's threads and the test that moves it); its receivers
    /// hear each move.
    Shifted(Arc<watch::Sender<i64>>),
}

impl WallClock {
    /// A clock that reads `at` now.
    pub fn starting_at(at: Timestamp) -> Self {
        let shift = at.unix_millis() - Timestamp::now().unix_millis();
        Self::Shifted(Arc::new(watch::Sender::new(shift)))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::Shifted(shift) => {
                let now = Timestamp::now().unix_millis() + *shift.borrow();
                Timestamp::from_unix_millis(now).unwrap_or_else(Timestamp::now)
            }
        }
    }

    /// Moves a set clock on by `by` (the system clock cannot be moved).
    pub fn advance(&self, by: Duration) {
        if let Self::Shifted(shift) = self {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            shift.send_modify(|shift| *shift = shift.saturating_add(by));
        }
    }

    /// Moves of this clock from now on, for whoever sleeps until a time on
    /// it (the system clock never jumps: it never resolves).
    pub(crate) fn moves(&self) -> ClockMoves {
        ClockMoves(match self {
            Self::System => None,
            Self::Shifted(shift) => Some(shift.subscribe()),
        })
    }
}

/// See [`WallClock::moves`].
pub(crate) struct ClockMoves(Option<watch::Receiver<i64>>);

impl ClockMoves {
    /// Resolves at the next move of the clock.
    pub(crate) async fn next(&mut self) {
        if let Some(moves) = &mut self.0
            && moves.changed().await.is_ok()
        {
            return;
        }
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_set_clock_starts_where_it_was_set_and_moves_when_told() {
        let at = Timestamp::from_unix_millis(1_800_000_000_000).unwrap();
        let clock = WallClock::starting_at(at);
        let shared = clock.clone();
        let mut moves = clock.moves();
        let read = clock.now();
        assert!(
            read >= at && at.until(read) < Duration::from_secs(5),
            "{read:?}"
        );
        shared.advance(Duration::from_secs(3600));
        moves.next().await;
        assert!(at.after(Duration::from_secs(3600)) <= clock.now());
    }
}
