//! The event bus: how a change made on one instance reaches the others.
//!
//! Two kinds of news travel on it: events for destinations' live streams,
//! and "this session changed" pings that wake long-polls. With Redis, every
//! instance appends to one Redis stream and reads it (so an instance hears
//! its own news the same way as everyone else's); with the memory store the
//! bus is in-process. Locally, news fans out through broadcast channels, one
//! per connected destination, so an idle stream costs one receiver.
//!
//! A Redis stream rather than pub/sub because a reader resumes after the
//! last entry it read: when its connection drops, or Redis restarts, nothing
//! appended in the meantime is lost (pub/sub drops whatever is published
//! before the subscription is back).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands as _;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::events::Event;
use super::resume::{self, Addressed, BusPosition, Ring, Scope};
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::session::SessionId;
use crate::redis::RedisConnection;

/// An event as a live stream sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamEvent {
    /// The SSE `event:` name (`call.ringing`, …).
    pub kind: String,
    /// The SSE `data:`, the same JSON as the webhook body.
    pub json: String,
    /// Where it is on the bus (the SSE `id:`); none when it never reached
    /// the shared bus (published while Redis was away).
    #[serde(skip)]
    pub position: Option<BusPosition>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Message {
    /// For one destination of a subscriber, or all of them (but `except`),
    /// and for the admin's streams.
    Event {
        subscriber: PhoneNumber,
        destination: Option<DestinationId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        except: Option<DestinationId>,
        event: StreamEvent,
    },
    SessionChanged {
        id: SessionId,
    },
    /// A subscriber's tokens or destinations changed: its open streams end,
    /// and clients whose token still holds reconnect.
    CredentialsChanged {
        subscriber: PhoneNumber,
    },
    /// A subscriber was written or removed: every instance updates or drops
    /// what its subscriber cache holds of it. `forwarding` names the
    /// forwarding numbers it had and has (absent from older releases).
    SubscriberChanged {
        number: PhoneNumber,
        #[serde(default)]
        forwarding: Vec<PhoneNumber>,
    },
    /// Many subscribers were written at once (an import), in one message.
    SubscribersChanged {
        numbers: Vec<PhoneNumber>,
        forwarding: Vec<PhoneNumber>,
    },
}

/// What the subscriber cache (`crate::subscribers`) hears from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubscriberNews {
    /// These subscribers changed (were written or removed), and these
    /// forwarding numbers gained or lost subscribers.
    Changed(SubscriberChange),
    /// The bus reader (re)connected to Redis: what was published while it
    /// was away (by an instance that could not reach Redis, then dispatched
    /// only to itself) may be lost, so a cache drops what it vouched for.
    Resumed,
}

/// Subscribers that changed, and the forwarding numbers they had and have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SubscriberChange {
    pub numbers: Vec<PhoneNumber>,
    pub forwarding: Vec<PhoneNumber>,
}

/// Events a stream may fall behind by before it misses some.
const STREAM_BUFFER: usize = 64;
/// Events the admin's streams (every subscriber's) may fall behind by.
const ADMIN_STREAM_BUFFER: usize = 1024;
/// Session pings the long-polls of one instance may fall behind by; a poll
/// that falls behind reads its session again, so nothing is lost.
const SESSION_BUFFER: usize = 1024;
/// Subscriber news the cache may fall behind by; one that falls behind
/// drops what it vouched for, so nothing stale is served.
const SUBSCRIBER_BUFFER: usize = 1024;

/// How many live streams one instance keeps open (`MAX_STREAMS`,
/// `MAX_STREAMS_PER_DESTINATION`): each is a connection held open.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub per_instance: usize,
    pub per_destination: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StreamLimitReached {
    #[error("this instance holds as many live streams as it may")]
    Instance,
    #[error("this destination has as many live streams open as it may")]
    Destination,
}

#[derive(Clone)]
pub struct EventBus {
    local: Arc<Local>,
    redis: Option<RedisChannel>,
    /// How far back a resumed stream is replayed (`SESSION_TTL_SECS`).
    replay_window: Duration,
}

/// How far back a resumed stream is replayed unless told otherwise: the
/// default session lifetime.
const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(120);
/// How many entries of the Redis stream one replay read takes.
const REPLAY_BATCH: usize = 1000;

#[derive(Clone)]
struct RedisChannel {
    /// The instance's shared connection: appending is quick.
    publisher: RedisConnection,
    /// The Redis stream's key.
    stream: String,
}

/// About how many messages the Redis stream keeps: enough for a reader to
/// catch up after a reconnect (seconds), few enough to stay small (a few MB).
const BUS_BACKLOG: usize = 10_000;
/// How long one read waits for news before it asks again: an idle
/// instance's reads cost Redis 3 commands a minute.
const READ_BLOCK: Duration = Duration::from_secs(20);
/// How many messages one read takes at most.
const READ_BATCH: usize = 256;

/// The open streams of this instance, by subscriber and destination.
type Streams = HashMap<(PhoneNumber, DestinationId), broadcast::Sender<Arc<StreamEvent>>>;

struct Local {
    streams: Mutex<Streams>,
    /// The admin's streams: every event of every subscriber, once.
    admin: broadcast::Sender<Arc<StreamEvent>>,
    sessions: broadcast::Sender<SessionId>,
    subscribers: broadcast::Sender<SubscriberNews>,
    /// How many times the reader connected (1 for ever in process): a cache
    /// loaded at one count cannot vouch for itself at another.
    reader_connections: AtomicU64,
    /// In process, the events of the recent past, for resumed streams (on
    /// Redis the stream itself keeps them).
    ring: Mutex<Ring>,
    /// On Redis, the position of the last entry this instance's reader
    /// dispatched: where a stream opened now starts.
    last_read: Mutex<Option<BusPosition>>,
}

impl Local {
    fn new() -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            admin: broadcast::channel(ADMIN_STREAM_BUFFER).0,
            sessions: broadcast::channel(SESSION_BUFFER).0,
            subscribers: broadcast::channel(SUBSCRIBER_BUFFER).0,
            reader_connections: AtomicU64::new(0),
            ring: Mutex::new(Ring::default()),
            last_read: Mutex::new(None),
        }
    }

    fn reader_connected(&self) {
        self.reader_connections.fetch_add(1, Ordering::AcqRel);
        // No receiver just means no cache listens.
        let _ = self.subscribers.send(SubscriberNews::Resumed);
    }

    /// Every live stream open on this instance: the destinations' and the
    /// admin's. `streams` is the locked map (opening one holds the lock).
    fn open_streams(&self, streams: &Streams) -> usize {
        streams
            .values()
            .map(broadcast::Sender::receiver_count)
            .sum::<usize>()
            + self.admin.receiver_count()
    }

    /// Notes that the reader got as far as `position`.
    fn read_up_to(&self, position: BusPosition) {
        let mut last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        *last = (*last).max(Some(position));
    }

    /// Dispatches `message` in process: an event gets the next position of
    /// the ring, which keeps it for resumed streams. The ring stays locked
    /// while it is dispatched, so that streams see positions in order.
    fn dispatch_in_process(&self, message: Message, window: Duration) {
        let Message::Event {
            subscriber,
            destination,
            except,
            event,
        } = message
        else {
            return self.dispatch(message, None);
        };
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let kept = ring.push(
            Addressed {
                subscriber,
                destination,
                except,
                event: Arc::new(event),
            },
            window,
            resume::unix_millis(),
        );
        self.dispatch(
            Message::Event {
                subscriber: kept.subscriber,
                destination: kept.destination,
                except: kept.except,
                event: (*kept.event).clone(),
            },
            kept.event.position,
        );
    }

    /// Dispatches `message`, read from the bus at `position` (none when it
    /// never reached the shared bus).
    fn dispatch(&self, message: Message, position: Option<BusPosition>) {
        if let Some(position) = position {
            self.read_up_to(position);
        }
        match message {
            Message::SessionChanged { id } => {
                // No receiver just means nobody is waiting.
                let _ = self.sessions.send(id);
            }
            Message::SubscriberChanged { number, forwarding } => {
                // No receiver just means no cache listens.
                let _ = self
                    .subscribers
                    .send(SubscriberNews::Changed(SubscriberChange {
                        numbers: vec![number],
                        forwarding,
                    }));
            }
            Message::SubscribersChanged {
                numbers,
                forwarding,
            } => {
                let _ = self
                    .subscribers
                    .send(SubscriberNews::Changed(SubscriberChange {
                        numbers,
                        forwarding,
                    }));
            }
            Message::CredentialsChanged { subscriber } => {
                // Dropping a sender ends its streams.
                let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
                streams.retain(|(number, _), _| *number != subscriber);
            }
            Message::Event {
                subscriber,
                destination,
                except,
                event,
            } => {
                let event = Arc::new(StreamEvent { position, ..event });
                // No receiver just means no admin is watching.
                let _ = self.admin.send(event.clone());
                let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
                // Streams that closed since leave their sender behind: drop it here.
                streams.retain(|_, sender| sender.receiver_count() > 0);
                for ((number, id), sender) in streams.iter() {
                    if *number == subscriber
                        && destination.as_ref().is_none_or(|d| d == id)
                        && except.as_ref() != Some(id)
                    {
                        let _ = sender.send(event.clone());
                    }
                }
            }
        }
    }
}

impl EventBus {
    /// A bus for one instance (the memory store).
    pub(crate) fn in_process() -> Self {
        let local = Local::new();
        // Nothing in process can be missed: connected once, for ever.
        local.reader_connected();
        Self {
            local: Arc::new(local),
            redis: None,
            replay_window: DEFAULT_REPLAY_WINDOW,
        }
    }

    /// This bus, replaying resumed streams as far back as `window`
    /// (`SESSION_TTL_SECS`).
    pub(crate) fn replaying(mut self, window: Duration) -> Self {
        self.replay_window = window;
        self
    }

    /// A bus shared by every instance on the Redis of `connection` (the
    /// store's), its stream under `prefix`. Returns once this instance
    /// listens, so that nothing published after is missed; when Redis is
    /// down it returns at once and keeps trying to listen.
    pub async fn redis(connection: RedisConnection, prefix: &str) -> Self {
        let stream = format!("{prefix}:bus");
        let local = Arc::new(Local::new());
        let (listening_tx, listening_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(listen(
            connection.clone(),
            stream.clone(),
            local.clone(),
            listening_tx,
        ));
        // Bounded: a Redis that does not answer must not stop the start.
        let _ = tokio::time::timeout(Duration::from_secs(2), listening_rx).await;
        Self {
            local,
            redis: Some(RedisChannel {
                publisher: connection,
                stream,
            }),
            replay_window: DEFAULT_REPLAY_WINDOW,
        }
    }

    /// Sends `event` to the live streams of `destination` of `subscriber`
    /// (all its destinations when `None`), on every instance.
    pub(crate) async fn publish_event(
        &self,
        subscriber: &PhoneNumber,
        destination: Option<&DestinationId>,
        event: &Event,
    ) {
        let json = match serde_json::to_string(event) {
            Ok(json) => json,
            Err(err) => {
                tracing::error!(error = %err, "could not encode an event");
                return;
            }
        };
        self.publish(Message::Event {
            subscriber: subscriber.clone(),
            destination: destination.cloned(),
            except: None,
            event: StreamEvent {
                kind: event.kind().to_owned(),
                json,
                position: None,
            },
        })
        .await;
    }

    /// Sends `event` to the live streams of every destination of
    /// `subscriber` but `except`, on every instance. The admin's streams get
    /// it once, as every event.
    pub(crate) async fn publish_event_except(
        &self,
        subscriber: &PhoneNumber,
        except: &DestinationId,
        event: &Event,
    ) {
        let json = match serde_json::to_string(event) {
            Ok(json) => json,
            Err(err) => {
                tracing::error!(error = %err, "could not encode an event");
                return;
            }
        };
        self.publish(Message::Event {
            subscriber: subscriber.clone(),
            destination: None,
            except: Some(except.clone()),
            event: StreamEvent {
                kind: event.kind().to_owned(),
                json,
                position: None,
            },
        })
        .await;
    }

    /// Every event of every subscriber, from now on, for the admin's live
    /// stream; counted against `limits.per_instance` with the destinations'
    /// streams (the per-destination limit does not apply).
    pub(crate) fn subscribe_admin_within(
        &self,
        limits: StreamLimits,
    ) -> Result<broadcast::Receiver<Arc<StreamEvent>>, StreamLimitReached> {
        let streams = self.local.streams.lock().unwrap_or_else(|p| p.into_inner());
        if self.local.open_streams(&streams) >= limits.per_instance {
            return Err(StreamLimitReached::Instance);
        }
        Ok(self.local.admin.subscribe())
    }

    /// Wakes whoever waits on session `id`, on every instance.
    pub async fn session_changed(&self, id: &SessionId) {
        self.publish(Message::SessionChanged { id: id.clone() })
            .await;
    }

    /// Ends the open streams of `subscriber`, on every instance.
    pub(crate) async fn credentials_changed(&self, subscriber: &PhoneNumber) {
        self.publish(Message::CredentialsChanged {
            subscriber: subscriber.clone(),
        })
        .await;
    }

    /// Tells every instance's subscriber cache that these subscribers were
    /// written or removed, and which forwarding numbers they had and have.
    pub(crate) async fn subscribers_changed(&self, change: SubscriberChange) {
        let SubscriberChange {
            mut numbers,
            forwarding,
        } = change;
        let message = if numbers.len() == 1 {
            Message::SubscriberChanged {
                number: numbers.pop().expect("one number"),
                forwarding,
            }
        } else {
            Message::SubscribersChanged {
                numbers,
                forwarding,
            }
        };
        self.publish(message).await;
    }

    /// News about subscribers, from now on.
    pub(crate) fn watch_subscribers(&self) -> broadcast::Receiver<SubscriberNews> {
        self.local.subscribers.subscribe()
    }

    /// How many times this instance's reader connected to the bus; 0 while
    /// it never did (nothing published by others is heard yet).
    pub(crate) fn reader_connections(&self) -> u64 {
        self.local.reader_connections.load(Ordering::Acquire)
    }

    /// The events for one destination's live stream, from now on, unless
    /// this instance already holds as many streams as `limits` allow, for
    /// the destination or in all. Checked
    /// and opened under one lock, so that concurrent opens cannot overshoot.
    pub(crate) fn subscribe_within(
        &self,
        subscriber: &PhoneNumber,
        destination: &DestinationId,
        limits: StreamLimits,
    ) -> Result<broadcast::Receiver<Arc<StreamEvent>>, StreamLimitReached> {
        let mut streams = self.local.streams.lock().unwrap_or_else(|p| p.into_inner());
        if self.local.open_streams(&streams) >= limits.per_instance {
            return Err(StreamLimitReached::Instance);
        }
        let sender = streams
            .entry((subscriber.clone(), destination.clone()))
            .or_insert_with(|| broadcast::channel(STREAM_BUFFER).0);
        if sender.receiver_count() >= limits.per_destination {
            return Err(StreamLimitReached::Destination);
        }
        Ok(sender.subscribe())
    }

    /// Pings of changed sessions, from now on.
    pub fn watch_sessions(&self) -> broadcast::Receiver<SessionId> {
        self.local.sessions.subscribe()
    }

    /// Where the bus stands for this instance: what a stream opened now has
    /// seen, so that its client can resume from there (`0-0` before the
    /// first message).
    pub(crate) fn position(&self) -> BusPosition {
        let last = match &self.redis {
            None => self
                .local
                .ring
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last(),
            Some(_) => *self
                .local
                .last_read
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        };
        last.unwrap_or(BusPosition::ZERO)
    }

    /// What a stream of `scope` missed after `after`, as far back as the
    /// replay window, oldest first: from the Redis stream (whichever
    /// instance published it), or in process from the ring. A replay that
    /// cannot be read is logged and empty: the stream goes on live.
    pub(crate) async fn replay(&self, scope: &Scope, after: BusPosition) -> Vec<Arc<StreamEvent>> {
        let now = resume::unix_millis();
        let Some(redis) = &self.redis else {
            let ring = self.local.ring.lock().unwrap_or_else(|p| p.into_inner());
            return ring.since(scope, after, self.replay_window, now);
        };
        // Nothing older than the window: start there when `after` is older.
        let oldest = now.saturating_sub(self.replay_window.as_millis() as u64);
        let mut from = format!("({after}");
        if BusPosition::parse(&format!("{oldest}-0")).is_some_and(|o| o > after) {
            from = format!("{oldest}-0");
        }
        let mut replayed = Vec::new();
        for _ in 0..(BUS_BACKLOG / REPLAY_BATCH + 1) {
            let page: Result<StreamRangeReply, _> = redis
                .publisher
                .clone()
                .xrange_count(&redis.stream, &from, "+", REPLAY_BATCH)
                .await;
            let page = match page {
                Ok(page) => page,
                Err(err) => {
                    tracing::warn!(error = %err, "could not read the bus to resume a stream");
                    break;
                }
            };
            let full = page.ids.len() == REPLAY_BATCH;
            for entry in page.ids {
                from = format!("({}", entry.id);
                let Some(Ok(Message::Event {
                    subscriber,
                    destination,
                    except,
                    event,
                })) = entry
                    .get::<Vec<u8>>(MESSAGE_FIELD)
                    .map(|m| serde_json::from_slice::<Message>(&m))
                else {
                    continue;
                };
                let addressed = Addressed {
                    subscriber,
                    destination,
                    except,
                    event: Arc::new(StreamEvent {
                        position: BusPosition::parse(&entry.id),
                        ..event
                    }),
                };
                if scope.carries(&addressed) {
                    replayed.push(addressed.event);
                }
            }
            if !full {
                break;
            }
        }
        replayed
    }

    async fn publish(&self, message: Message) {
        let Some(redis) = &self.redis else {
            self.local.dispatch_in_process(message, self.replay_window);
            return;
        };
        let payload = match serde_json::to_string(&message) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(error = %err, "could not encode a bus message");
                return;
            }
        };
        let published: Result<String, _> = redis::cmd("XADD")
            .arg(&redis.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(BUS_BACKLOG)
            .arg("*")
            .arg(MESSAGE_FIELD)
            .arg(payload)
            .query_async(&mut redis.publisher.clone())
            .await;
        if let Err(err) = published {
            // Other instances miss it; this one still hears it.
            tracing::warn!(error = %err, "could not publish on the Redis bus");
            self.local.dispatch(message, None);
        }
    }
}

/// The field of a stream entry that holds the message.
const MESSAGE_FIELD: &str = "m";

/// Reads the bus stream for as long as the process lives, coming back after
/// Redis goes away and going on after the last entry it read.
async fn listen(
    connection: RedisConnection,
    stream: String,
    local: Arc<Local>,
    listening: tokio::sync::oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    // The id of the last entry read; none before the first connection,
    // which starts at the newest entry ("from now on").
    let mut cursor: Option<String> = None;
    let mut delay = Duration::from_millis(100);
    loop {
        let read = read_on(&connection, &stream, &local, &mut cursor, &mut || {
            local.reader_connected();
            if let Some(tx) = listening.take() {
                let _ = tx.send(());
            }
        })
        .await;
        match read {
            Ok(()) => {}
            Err(err) if cursor.is_some() => {
                tracing::warn!(error = %err, "lost the Redis bus; reading on where it stopped");
            }
            Err(err) => tracing::warn!(error = %err, "cannot read the Redis bus yet"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// One connection's reading: dispatches every entry after `cursor`, moving it
/// on, until the connection fails. `listening` is called once the cursor is
/// set, so that a caller knows nothing appended after is missed.
async fn read_on(
    shared: &RedisConnection,
    stream: &str,
    local: &Local,
    cursor: &mut Option<String>,
    listening: &mut impl FnMut(),
) -> redis::RedisResult<()> {
    // Its own connection: a blocking read would hold up everything else
    // sharing a multiplexed one. On a cluster the stream is one key, so the
    // read goes to that key's node; on Sentinel, to the primary of the
    // moment (a failover drops or stalls this connection, and the next one
    // goes to the new primary).
    let mut connection = shared
        .dedicated(READ_BLOCK + Duration::from_secs(2))
        .await?;
    if cursor.is_none() {
        let newest: StreamRangeReply = connection.xrevrange_count(stream, "+", "-", 1).await?;
        *cursor = Some(
            newest
                .ids
                .first()
                .map_or_else(|| "0-0".to_owned(), |entry| entry.id.clone()),
        );
        if let Some(position) = cursor.as_deref().and_then(BusPosition::parse) {
            local.read_up_to(position);
        }
    }
    listening();
    loop {
        let after = cursor.clone().unwrap_or_else(|| "0-0".to_owned());
        let options = StreamReadOptions::default()
            .block(READ_BLOCK.as_millis() as usize)
            .count(READ_BATCH);
        let reply: Option<StreamReadReply> = connection
            .xread_options(&[stream], &[after.as_str()], &options)
            .await?;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            match entry
                .get::<Vec<u8>>(MESSAGE_FIELD)
                .map(|m| serde_json::from_slice::<Message>(&m))
            {
                Some(Ok(message)) => local.dispatch(message, BusPosition::parse(&entry.id)),
                _ => tracing::warn!(entry = %entry.id, "ignored a malformed bus message"),
            }
            *cursor = Some(entry.id);
        }
    }
}
