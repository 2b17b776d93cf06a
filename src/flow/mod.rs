//! The call flow: ring reports, notifications and instructions, the
//! forwarded call and its hunt, device events. It speaks the domain's and
//! the providers' neutral words; HTTP and markup are elsewhere.

mod forwarded;
mod offers;
pub mod plan;
mod ring;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::config::PublicBaseUrl;
use crate::domain::phone::Region;
use crate::domain::session::{Session, SessionId, SessionState};
use crate::domain::subscriber::Subscriber;
use crate::metrics::Metrics;
use crate::notify::bus::EventBus;
use crate::notify::events::{CallRef, Event, EventPayload};
use crate::notify::webhooks::WebhookSender;
use crate::store::{LastKnownSubscribers, Store, StoreError};
use crate::templates::Templates;

pub use self::forwarded::{DialContext, ScreenContext};
pub use self::offers::Answerer;
pub use self::ring::{RingOutcome, RingReport};
pub use self::sessions::DeviceEvent;

/// How often `update` reads again when another writer got there first.
const UPDATE_ATTEMPTS: usize = 8;

/// Ring reports a device may send in a minute (contract §4).
pub const RING_REPORTS_PER_MINUTE: u64 = 30;

pub struct CallFlow {
    store: Arc<dyn Store>,
    last_known: Arc<LastKnownSubscribers>,
    webhooks: WebhookSender,
    bus: EventBus,
    metrics: Arc<Metrics>,
    templates: Templates,
    settings: FlowSettings,
}

/// The configuration the flow depends on.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    pub public_base_url: PublicBaseUrl,
    pub region: Region,
    pub session_ttl: Duration,
    /// Whether any provider's routes can answer a forwarded call; without
    /// one, rejecting would send callers to an error, so phones are told to
    /// let the call ring.
    pub can_answer_forwarded_calls: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("no such session")]
    SessionNotFound,
    #[error("the session is over")]
    SessionOver,
    #[error("the call was already forwarded")]
    AlreadyForwarded,
    #[error("another destination took the call")]
    AlreadyTaken,
    #[error("this destination already answered the offer")]
    AlreadyAnswered,
    #[error("too many ring reports; retry in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallFlow {
    pub fn new(
        store: Arc<dyn Store>,
        last_known: Arc<LastKnownSubscribers>,
        webhooks: WebhookSender,
        bus: EventBus,
        metrics: Arc<Metrics>,
        templates: Templates,
        settings: FlowSettings,
    ) -> Self {
        Self {
            store,
            last_known,
            webhooks,
            bus,
            metrics,
            templates,
            settings,
        }
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// An absolute URL of one of our routes, with a query.
    fn callback_url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = self.settings.public_base_url.join(path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
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
            if self
                .store
                .update_session(&mut session, self.settings.session_ttl)
                .await?
            {
                return Ok((session, outcome));
            }
        }
        Err(FlowError::Store(StoreError::Unexpected(anyhow::anyhow!(
            "session {id} kept changing under {UPDATE_ATTEMPTS} attempts to update it"
        ))))
    }

    /// Tells every destination of `subscriber` about `payload`: on their
    /// live streams at once, and by webhook in the background (one delivery
    /// per distinct webhook URL).
    async fn notify(&self, subscriber: &Subscriber, payload: EventPayload) {
        let event = Event::now(payload);
        self.bus
            .publish_event(&subscriber.number, None, &event)
            .await;
        let mut urls: Vec<&Url> = subscriber
            .destinations
            .iter()
            .filter_map(|d| d.webhook_url.as_ref())
            .collect();
        urls.sort();
        urls.dedup();
        self.webhooks.deliver_later(
            urls.into_iter()
                .map(|u| (u.clone(), event.clone()))
                .collect(),
        );
    }
}

fn call_ref(session: &Session) -> CallRef {
    CallRef {
        session_id: session.id.clone(),
        subscriber: session.subscriber.clone(),
        caller: session.caller.clone(),
    }
}

/// Moves a session to `state`, logged once per change.
fn transition(session: &mut Session, state: SessionState) {
    if session.state == state {
        return;
    }
    tracing::info!(session_id = %session.id, from = ?session.state, to = ?state, "session state changed");
    if state.is_over() {
        session.end(state);
    } else {
        session.state = state;
    }
}
