//! Streams that resume (docs/api.md): every event on a live stream carries
//! its position on the bus as its SSE `id:`, and a stream opened with
//! `Last-Event-ID` first replays what its scope missed since then.
//!
//! The position is the bus's own: on Redis the id of the stream entry
//! (`<milliseconds>-<sequence>`, the same on every instance, so a client
//! may resume on another one); in process the same shape from a counter.
//! What is replayed is read from where the bus keeps its recent past: the
//! Redis stream itself (its last `BUS_BACKLOG` entries), or, in process, a
//! ring of the events of the last `SESSION_TTL_SECS`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::bus::StreamEvent;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;

/// A place on the bus: Redis's stream id, `<ms>-<seq>`, ordered by both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BusPosition {
    millis: u64,
    seq: u64,
}

impl BusPosition {
    /// A position as a Redis stream id or a `Last-Event-ID` writes it;
    /// `None` for anything else.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        let (millis, seq) = raw.trim().split_once('-')?;
        Some(Self {
            millis: millis.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The position after `self` at `now_millis`: later than `self` even
    /// when the clock stands still or steps back (as Redis does).
    pub(crate) fn next(self, now_millis: u64) -> Self {
        if now_millis > self.millis {
            Self {
                millis: now_millis,
                seq: 0,
            }
        } else {
            Self {
                millis: self.millis,
                seq: self.seq + 1,
            }
        }
    }

    pub(crate) const ZERO: Self = Self { millis: 0, seq: 0 };

    /// Whether it was taken within `window` of `now_millis`.
    fn within(self, window: Duration, now_millis: u64) -> bool {
        self.millis.saturating_add(window.as_millis() as u64) >= now_millis
    }
}

impl fmt::Display for BusPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

/// Milliseconds since the Unix epoch, on the system's clock (a position's
/// own clock: Redis stamps its ids with its time, not the flow's).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whose events a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The admin's: every event.
    Everything,
    /// One destination's.
    Destination {
        subscriber: PhoneNumber,
        destination: DestinationId,
    },
}

/// An event as the bus addressed it: to which subscriber's destinations.
#[derive(Debug, Clone)]
pub(crate) struct Addressed {
    pub subscriber: PhoneNumber,
    /// One destination, or all of them when `None`.
    pub destination: Option<DestinationId>,
    /// All of them but this one.
    pub except: Option<DestinationId>,
    pub event: Arc<StreamEvent>,
}

impl Scope {
    /// Whether a stream of this scope carries `event`.
    pub(crate) fn carries(&self, event: &Addressed) -> bool {
        match self {
            Self::Everything => true,
            Self::Destination {
                subscriber,
                destination,
            } => {
                event.subscriber == *subscriber
                    && event.destination.as_ref().is_none_or(|d| d == destination)
                    && event.except.as_ref() != Some(destination)
            }
        }
    }
}

/// How many events the in-process ring keeps at most, whatever the window:
/// the Redis stream's backlog.
const RING_CAP: usize = 10_000;

/// The events of the recent past, in process (the memory store's bus).
#[derive(Debug, Default)]
pub(crate) struct Ring {
    events: VecDeque<Addressed>,
    last: Option<BusPosition>,
}

impl Ring {
    /// Gives `event` the next position and keeps it; drops what fell out
    /// of `window`.
    pub(crate) fn push(
        &mut self,
        mut event: Addressed,
        window: Duration,
        now_millis: u64,
    ) -> Addressed {
        let position = self.last.unwrap_or(BusPosition::ZERO).next(now_millis);
        self.last = Some(position);
        event.event = Arc::new(StreamEvent {
            position: Some(position),
            ..(*event.event).clone()
        });
        while self.events.front().is_some_and(|e| {
            self.events.len() >= RING_CAP
                || !e
                    .event
                    .position
                    .is_some_and(|p| p.within(window, now_millis))
        }) {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
        event
    }

    /// The position of the last event it took.
    pub(crate) fn last(&self) -> Option<BusPosition> {
        self.last
    }

    /// What `scope` carries after `after`, within `window` of now.
    pub(crate) fn since(
        &self,
        scope: &Scope,
        after: BusPosition,
        window: Duration,
        now_millis: u64,
    ) -> Vec<Arc<StreamEvent>> {
        self.events
            .iter()
            .filter(|e| {
                e.event
                    .position
                    .is_some_and(|p| p > after && p.within(window, now_millis))
            })
            .filter(|e| scope.carries(e))
            .map(|e| e.event.clone())
            .collect()
    }
}

/// A live stream's events once the replay was sent: those the replay
/// already held (the same position or before) are dropped, so that an event
/// that arrived on both is sent once.
pub(crate) fn after_replay(
    replayed_up_to: Option<BusPosition>,
) -> impl FnMut(&StreamEvent) -> bool {
    move |event| match (replayed_up_to, event.position) {
        (Some(last), Some(position)) => position > last,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, Region::default()).unwrap()
    }

    fn id(s: &str) -> DestinationId {
        DestinationId::parse(s).unwrap()
    }

    fn addressed(destination: Option<&str>, except: Option<&str>, kind: &str) -> Addressed {
        Addressed {
            subscriber: number("+12025550199"),
            destination: destination.map(id),
            except: except.map(id),
            event: Arc::new(StreamEvent {
                kind: kind.into(),
                json: "{}".into(),
                position: None,
            }),
        }
    }

    #[test]
    fn positions_read_and_write_as_redis_stream_ids_and_order_by_both_parts() {
        let p = BusPosition::parse("1700000000000-7").unwrap();
        assert_eq!(p.to_string(), "1700000000000-7");
        assert!(BusPosition::parse("1700000000000-8").unwrap() > p);
        assert!(BusPosition::parse("1700000000001-0").unwrap() > p);
        for bad in ["", "12", "a-1", "1-b", "-1", "1-"] {
            assert_eq!(BusPosition::parse(bad), None, "{bad:?}");
        }
        // The next position is later even when the clock steps back.
        assert_eq!(p.next(1_600_000_000_000).to_string(), "1700000000000-8");
        assert_eq!(p.next(1_700_000_000_005).to_string(), "1700000000005-0");
    }

    #[test]
    fn a_destination_scope_carries_its_own_its_subscribers_and_not_the_excepted() {
        let desk = Scope::Destination {
            subscriber: number("+12025550199"),
            destination: id("desk"),
        };
        assert!(desk.carries(&addressed(Some("desk"), None, "call.ringing")));
        assert!(!desk.carries(&addressed(Some("laptop"), None, "call.ringing")));
        assert!(desk.carries(&addressed(None, None, "call.cancelled")));
        assert!(desk.carries(&addressed(None, Some("laptop"), "call.taken")));
        assert!(!desk.carries(&addressed(None, Some("desk"), "call.taken")));
        let mut other = addressed(None, None, "call.cancelled");
        other.subscriber = number("+12025550198");
        assert!(!desk.carries(&other));
        assert!(Scope::Everything.carries(&other));
    }

    #[test]
    fn the_ring_replays_what_came_after_a_position_within_the_window() {
        let mut ring = Ring::default();
        let window = Duration::from_secs(120);
        let first = ring.push(addressed(Some("desk"), None, "a"), window, 1_000);
        ring.push(addressed(Some("laptop"), None, "b"), window, 1_000);
        ring.push(addressed(None, None, "c"), window, 2_000);
        let desk = Scope::Destination {
            subscriber: number("+12025550199"),
            destination: id("desk"),
        };
        let kinds = |events: Vec<Arc<StreamEvent>>| -> Vec<String> {
            events.iter().map(|e| e.kind.clone()).collect()
        };
        assert_eq!(
            kinds(ring.since(&desk, BusPosition::ZERO, window, 2_000)),
            ["a", "c"]
        );
        let after_first = first.event.position.unwrap();
        assert_eq!(kinds(ring.since(&desk, after_first, window, 2_000)), ["c"]);
        assert_eq!(
            kinds(ring.since(&Scope::Everything, after_first, window, 2_000)),
            ["b", "c"]
        );
        // Past the window, nothing of then is replayed, and it is dropped.
        assert_eq!(
            kinds(ring.since(&desk, BusPosition::ZERO, window, 121_500)),
            ["c"]
        );
        ring.push(addressed(None, None, "d"), window, 122_500);
        assert_eq!(ring.events.len(), 1);
    }

    #[test]
    fn a_live_event_the_replay_held_is_not_sent_again() {
        let at = |raw: &str| StreamEvent {
            kind: "k".into(),
            json: "{}".into(),
            position: BusPosition::parse(raw),
        };
        let mut keep = after_replay(BusPosition::parse("5-1"));
        assert!(!keep(&at("5-0")));
        assert!(!keep(&at("5-1")));
        assert!(keep(&at("5-2")));
        // Published while Redis was away: no position, always sent.
        assert!(keep(&at("none")));
        let mut nothing_replayed = after_replay(None);
        assert!(nothing_replayed(&at("1-0")));
    }
}
