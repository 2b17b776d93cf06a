//! The call flow: ring reports, notifications and instructions, the
//! forwarded call and its hunt, device events. It speaks the domain's and
//! the providers' neutral words; HTTP and markup are elsewhere.

mod callback;
mod expiry;
mod forwarded;
pub mod model;
mod offers;
pub(crate) mod plan;
mod recording;
mod ring;
mod sessions;
mod texts;
mod transcription;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use url::Url;

use crate::clock::WallClock;
use crate::domain::ids::DestinationId;
use crate::domain::phone::{PhoneNumber, Region};
use crate::domain::session::{MissedReason, Notice, Session, SessionError, SessionId};
use crate::domain::subscriber::{Destination, Subscriber};
use crate::domain::time::Timestamp;
use crate::metrics::Metrics;
use crate::notify::bus::EventBus;
use crate::notify::events::{
    CallRef, Cancelled, Connected, Event, EventPayload, Missed, Taken, Voicemail,
};
use crate::notify::push::PushSender;
use crate::notify::retry::RetryPolicy;
use crate::notify::webhooks::WebhookSender;
use crate::store::{Store, StoreError};
use crate::subscribers::Subscribers;
use crate::templates::Templates;

pub(crate) use self::callback::CallbackQuery;
pub use self::callback::PublicBaseUrl;
pub(crate) use self::expiry::SWEEP_INTERVAL;
pub(crate) use self::offers::Answerer;
pub(crate) use self::ring::RingReport;
pub(crate) use self::sessions::{DeviceEvent, SessionFilter};

/// How often `update` reads again when another writer got there first.
const UPDATE_ATTEMPTS: usize = 8;

/// Ring reports a device may send in a minute (docs/api.md).
pub(crate) const RING_REPORTS_PER_MINUTE: u64 = 30;

#[derive(Clone)]
pub struct CallFlow {
    store: Arc<dyn Store>,
    subscribers: Arc<Subscribers>,
    webhooks: WebhookSender,
    bus: EventBus,
    metrics: Arc<Metrics>,
    templates: Templates,
    settings: FlowSettings,
    /// Web Push, when `VAPID_PRIVATE_KEY` is set.
    push: Option<PushSender>,
    /// Texts back to missed callers, through the providers' APIs.
    texts: Option<texts::Texts>,
}

/// The configuration the flow depends on.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    pub public_base_url: PublicBaseUrl,
    pub region: Region,
    pub session_ttl: Duration,
    /// How long an ended session is kept, listed (`HISTORY_TTL_SECS`).
    pub history_ttl: Duration,
    /// How long a session told to reject waits for its forwarded call.
    pub forward_timeout: Duration,
    /// Whether any provider's routes can answer a forwarded call; without
    /// one, rejecting would send callers to an error, so phones are told to
    /// let the call ring.
    pub can_answer_forwarded_calls: bool,
    /// What the flow takes for now.
    pub clock: WallClock,
    /// How often the deadlines are swept (`SWEEP_INTERVAL` in a
    /// deployment).
    pub sweep_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("no such session")]
    SessionNotFound,
    /// The session refused the change.
    #[error(transparent)]
    Refused(SessionError),
    #[error("too many ring reports; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SessionError> for FlowError {
    fn from(err: SessionError) -> Self {
        match err {
            // An offer nobody holds is, to its holder, a session not found.
            SessionError::NoSuchOffer => Self::SessionNotFound,
            refused => Self::Refused(refused),
        }
    }
}

impl CallFlow {
    pub fn new(
        store: Arc<dyn Store>,
        subscribers: Arc<Subscribers>,
        webhooks: WebhookSender,
        bus: EventBus,
        metrics: Arc<Metrics>,
        templates: Templates,
        settings: FlowSettings,
    ) -> Self {
        Self {
            store,
            subscribers,
            webhooks,
            bus,
            metrics,
            templates,
            settings,
            push: None,
            texts: None,
        }
    }

    /// This flow, pushing every event to the destinations' browsers too.
    pub fn with_push(mut self, push: Option<PushSender>) -> Self {
        self.push = push;
        self
    }

    /// This flow, texting missed callers back through `gateway`, retried
    /// by `retry` (the webhooks' policy) in `background` (drained at
    /// shutdown).
    pub fn with_texts(
        mut self,
        gateway: Arc<dyn model::TextGateway>,
        retry: RetryPolicy,
        background: TaskTracker,
    ) -> Self {
        self.texts = Some(texts::Texts {
            gateway,
            retry,
            background,
        });
        self
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// A subscriber's destinations changed (`keep` are those that stay with
    /// their tokens; none when every token was replaced or the subscriber
    /// went): the browsers of the others stop hearing of its calls.
    pub(crate) async fn destinations_changed(
        &self,
        subscriber: &PhoneNumber,
        keep: &[DestinationId],
    ) {
        let Some(push) = &self.push else { return };
        if let Err(err) = push
            .store()
            .retain_push_subscriptions(subscriber, keep)
            .await
        {
            tracing::warn!(subscriber = %subscriber, error = format!("{err:#}"), "could not drop the push subscriptions of destinations that changed");
        }
    }

    /// Now, on the flow's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.settings.clock.now()
    }

    /// An absolute URL of one of our callback routes, with our query.
    fn callback_url(&self, path: &str, query: &CallbackQuery) -> String {
        self.url_with_query(path, &query.encode())
    }

    /// An absolute URL of one of our routes, with an encoded query.
    fn url_with_query(&self, path: &str, query: &str) -> String {
        let mut url = self.settings.public_base_url.join(path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Reads session `id`, applies `change`, and writes it back; when
    /// someone else wrote it meanwhile (another instance, a claim), reads
    /// and decides again. `change` must have no side effects: act on what it
    /// returns once the write went through.
    async fn update<T>(
        &self,
        id: &SessionId,
        change: impl FnMut(&mut Session) -> Result<T, FlowError>,
    ) -> Result<(Session, T), FlowError> {
        self.update_from(None, id, change).await
    }

    /// [`CallFlow::update`], trying first the copy the caller holds (one
    /// round trip saved when nobody else wrote meanwhile).
    async fn update_from<T>(
        &self,
        mut held: Option<Session>,
        id: &SessionId,
        mut change: impl FnMut(&mut Session) -> Result<T, FlowError>,
    ) -> Result<(Session, T), FlowError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let mut session = match held.take() {
                Some(session) => session,
                None => self
                    .store
                    .session(id)
                    .await?
                    .ok_or(FlowError::SessionNotFound)?,
            };
            let outcome = change(&mut session)?;
            let lifetime = self.lifetime(&session);
            if self.store.update_session(&mut session, lifetime).await? {
                return Ok((session, outcome));
            }
        }
        Err(FlowError::Store(StoreError::Unexpected(anyhow::anyhow!(
            "session {id} kept changing under {UPDATE_ATTEMPTS} attempts to update it"
        ))))
    }

    /// Tells every destination of `subscriber` about `payload`.
    async fn notify(&self, subscriber: &Subscriber, payload: EventPayload) {
        self.notify_all_but(subscriber, None, payload).await;
    }

    /// Tells every destination of `subscriber` but `except` about
    /// `payload`: on their live streams at once, and by webhook in the
    /// background (one delivery per distinct webhook URL, none to a URL
    /// `except` has).
    async fn notify_all_but(
        &self,
        subscriber: &Subscriber,
        except: Option<&DestinationId>,
        payload: EventPayload,
    ) {
        let event = Event::now(payload);
        let excluded = except.and_then(|id| subscriber.destination(id));
        let others: Vec<&Destination> = subscriber
            .destinations
            .iter()
            .filter(|d| Some(&d.id) != except)
            .collect();
        // One message reaches every stream of the subscriber (but the
        // excepted destination's) and the admin's streams.
        match except {
            None => {
                self.bus
                    .publish_event(&subscriber.number, None, &event)
                    .await
            }
            Some(except) => {
                self.bus
                    .publish_event_except(&subscriber.number, except, &event)
                    .await
            }
        }
        let mut urls: Vec<&Url> = others
            .iter()
            .filter_map(|d| d.webhook_url.as_ref())
            .filter(|u| excluded.and_then(|d| d.webhook_url.as_ref()) != Some(*u))
            .collect();
        urls.sort();
        urls.dedup();
        self.webhooks.deliver_later(
            urls.into_iter()
                .map(|u| (u.clone(), event.clone()))
                .collect(),
        );
        if let Some(push) = &self.push {
            let destinations = others.iter().map(|d| d.id.clone()).collect();
            push.push_later(&subscriber.number, destinations, event);
        }
    }
}

impl CallFlow {
    /// The subscriber as it is now; when the store fails, as this process
    /// last saw it.
    async fn current_subscriber(&self, number: &PhoneNumber) -> Option<Arc<Subscriber>> {
        let found = self.subscribers.current(number).await;
        if found.is_none() {
            tracing::warn!(subscriber = %number, "callback for a subscriber that no longer exists");
        }
        found
    }

    /// Tells the destinations what a change of `session` means, and counts
    /// the outcome it reached.
    async fn announce(&self, subscriber: &Subscriber, session: &Session, notice: Option<Notice>) {
        let Some(notice) = notice else { return };
        if session.is_over() {
            self.metrics.session_ended(session.state());
        }
        let call = call_ref(session);
        let payload = match notice {
            Notice::Connected { destination } => EventPayload::Connected(Connected {
                call,
                destination_id: destination,
            }),
            Notice::Missed(reason) => {
                let missed = EventPayload::Missed(Missed {
                    call,
                    reason,
                    missed_call_text: None,
                });
                let blocked = reason == MissedReason::Blocked;
                return self
                    .announce_ending(subscriber, session, missed, blocked)
                    .await;
            }
            Notice::Cancelled(reason) => EventPayload::Cancelled(Cancelled { call, reason }),
            // The recording's URL is the callback's, not the session's: see
            // `voicemail_recorded`.
            Notice::Voicemail => return,
            Notice::Taken { winner } => {
                let taken = EventPayload::Taken(Taken {
                    call,
                    destination_id: winner.clone(),
                });
                return self.notify_all_but(subscriber, Some(&winner), taken).await;
            }
        };
        self.notify(subscriber, payload).await;
    }
}

fn call_ref(session: &Session) -> CallRef {
    CallRef {
        session_id: session.id().clone(),
        subscriber: session.subscriber().clone(),
        caller: session.caller().clone(),
        caller_name: session.caller_name().cloned(),
        caller_verification: session.caller_verification(),
    }
}

fn voicemail_event(session: &Session, recording_url: String) -> EventPayload {
    EventPayload::Voicemail(Voicemail {
        call: call_ref(session),
        recording_url,
        missed_call_text: None,
    })
}
