//! The call flow: ring reports, notifications and instructions, the
//! forwarded call and its hunt, device events. It speaks the domain's and
//! the providers' neutral words; HTTP and markup are elsewhere.

mod forwarded;
pub mod plan;
mod ring;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::config::PublicBaseUrl;
use crate::domain::phone::Region;
use crate::domain::session::{Session, SessionState};
use crate::domain::subscriber::Subscriber;
use crate::notify::events::{CallRef, Event, EventPayload};
use crate::notify::webhooks::WebhookSender;
use crate::store::{LastKnownSubscribers, Store, StoreError};
use crate::templates::Templates;

pub use self::forwarded::DialContext;
pub use self::ring::{RingOutcome, RingReport};
pub use self::sessions::DeviceEvent;

/// Ring reports a device may send in a minute (contract §4).
pub const RING_REPORTS_PER_MINUTE: u64 = 30;

pub struct CallFlow {
    store: Arc<dyn Store>,
    last_known: Arc<LastKnownSubscribers>,
    webhooks: WebhookSender,
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
        templates: Templates,
        settings: FlowSettings,
    ) -> Self {
        Self {
            store,
            last_known,
            webhooks,
            templates,
            settings,
        }
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

    /// Writes a session, logging rather than failing: used where the call
    /// must go on whatever the store says.
    async fn save_or_log(&self, session: &Session) {
        if let Err(err) = self
            .store
            .put_session(session, self.settings.session_ttl)
            .await
        {
            tracing::error!(session_id = %session.id, error = format!("{err:#}"), "could not save the session");
        }
    }

    /// Tells every destination of `subscriber` about `payload`, in the
    /// background; one delivery per distinct webhook URL.
    fn notify_later(&self, subscriber: &Subscriber, payload: EventPayload) {
        let mut urls: Vec<&Url> = subscriber
            .destinations
            .iter()
            .filter_map(|d| d.webhook_url.as_ref())
            .collect();
        urls.sort();
        urls.dedup();
        let event = Event::now(payload);
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
