//! The call's clock and what happened when. Time is the real time the
//! service took plus the virtual time the simulated parties skipped: a 20 s
//! ring costs nothing, the service's own work is measured as it is. The
//! service in process reads the same time: its clock moves on with every
//! skip, so that what it times (a softphone that fails within 2 s of its
//! Dial) is timed as the call's parties live it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringrelay_server::clock::WallClock;
use serde::Serialize;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub at_ms: u64,
    pub party: String,
    pub event: String,
}

/// The shared clock and the entries, in order. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Timeline {
    inner: Arc<Mutex<Inner>>,
    /// The service's clock, moved on with every skip (a deployment's
    /// system clock cannot be: it does not move).
    service_clock: WallClock,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    skipped: Duration,
    entries: Vec<Entry>,
}

impl Timeline {
    /// A timeline whose skips move `service_clock` on too.
    pub fn start(service_clock: WallClock) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                started: Instant::now(),
                skipped: Duration::ZERO,
                entries: Vec::new(),
            })),
            service_clock,
        }
    }

    /// Milliseconds since the call started.
    pub fn now_ms(&self) -> u64 {
        let inner = self.inner.lock().expect("timeline lock");
        millis(inner.started.elapsed() + inner.skipped)
    }

    /// Lets `duration` of virtual time pass.
    pub fn advance(&self, duration: Duration) {
        self.inner.lock().expect("timeline lock").skipped += duration;
        self.service_clock.advance(duration);
    }

    /// Moves the clock to `at_ms` unless it is already past it.
    pub fn advance_to(&self, at_ms: u64) {
        let now = self.now_ms();
        if at_ms > now {
            self.advance(Duration::from_millis(at_ms - now));
        }
    }

    /// Records `event` by `party` now.
    pub fn log(&self, party: &str, event: impl Into<String>) {
        let at_ms = self.now_ms();
        self.inner
            .lock()
            .expect("timeline lock")
            .entries
            .push(Entry {
                at_ms,
                party: party.to_owned(),
                event: event.into(),
            });
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.inner.lock().expect("timeline lock").entries.clone()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
