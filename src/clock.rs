//! The wall-clock time the subscriber's rules are decided at (schedules,
//! do-not-disturb). A deployment reads the system clock; a test or a
//! simulation anchors it at a time of its choosing, from which it moves
//! with tokio's clock (so a paused test advances it with `advance`).

use crate::domain::session::Timestamp;

#[derive(Debug, Clone, Copy, Default)]
pub enum WallClock {
    #[default]
    System,
    Anchored {
        at: Timestamp,
        since: tokio::time::Instant,
    },
}

impl WallClock {
    /// A clock that reads `at` now.
    pub fn starting_at(at: Timestamp) -> Self {
        Self::Anchored {
            at,
            since: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::Anchored { at, since } => at.after(since.elapsed()),
        }
    }
}
