//! Accepting and declining the offer of a call (pick mode, docs/api.md):
//! exactly one destination wins an accept, on any number of instances,
//! because every answer is a versioned update of the session; the others
//! hear `call.taken`.

use super::{CallFlow, FlowError};
use crate::domain::credentials::TokenHash;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::session::{
    OfferAnswered, OfferKey, OfferResponse, SessionError, SessionId, SessionState,
};

/// Who answers the offer.
pub(crate) enum Answerer<'a> {
    /// A destination by its bearer token.
    Destination {
        subscriber: &'a PhoneNumber,
        destination: &'a DestinationId,
    },
    /// Whoever holds the capability of an `accept_url` / `decline_url`.
    Capability(&'a str),
}

impl CallFlow {
    /// Records `response` for the answering destination; returns the
    /// session's state after it.
    pub(crate) async fn answer_offer(
        &self,
        id: &SessionId,
        answerer: Answerer<'_>,
        response: OfferResponse,
    ) -> Result<SessionState, FlowError> {
        let capability = match answerer {
            Answerer::Capability(token) => Some(TokenHash::of(token)),
            Answerer::Destination { .. } => None,
        };
        let (session, answered) = self
            .update(id, |session| {
                let key = match (&answerer, &capability) {
                    (
                        Answerer::Destination {
                            subscriber,
                            destination,
                        },
                        _,
                    ) => {
                        if session.subscriber() != *subscriber {
                            return Err(FlowError::SessionNotFound);
                        }
                        OfferKey::Destination(destination)
                    }
                    (Answerer::Capability(_), Some(presented)) => OfferKey::Capability(presented),
                    (Answerer::Capability(_), None) => return Err(FlowError::SessionNotFound),
                };
                Ok(session.answer_offer(key, response, self.now())?)
            })
            .await?;
        tracing::info!(session_id = %id, response = ?response, instruction = ?session.instruction(), "offer answered");
        self.bus.session_changed(id).await;
        match answered {
            OfferAnswered::Recorded(notice) => {
                if notice.is_some()
                    && let Some(subscriber) = self.current_subscriber(session.subscriber()).await
                {
                    self.announce(&subscriber, &session, notice).await;
                }
                Ok(session.state())
            }
            OfferAnswered::TooLate => Err(SessionError::Over.into()),
        }
    }
}
