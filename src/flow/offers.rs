//! Accepting and declining the offer of a call (contract §1 pick mode, §5):
//! exactly one destination wins an accept, on any number of instances,
//! because every answer is a versioned update of the session.

use super::{CallFlow, FlowError, transition};
use crate::domain::credentials::TokenHash;
use crate::domain::phone::PhoneNumber;
use crate::domain::session::{Instruction, OfferResponse, SessionId, SessionState, Timestamp};
use crate::domain::subscriber::DestinationId;

/// Who answers the offer.
pub enum Answerer<'a> {
    /// A destination by its bearer token.
    Destination {
        subscriber: &'a PhoneNumber,
        destination: &'a DestinationId,
    },
    /// Whoever holds the capability of an `accept_url` / `decline_url`.
    Capability(&'a str),
}

enum Answered {
    Done,
    /// Pick mode's wait ran out before this answer: the phone is told to
    /// ignore instead.
    TooLate,
}

impl CallFlow {
    /// Records `response` for the answering destination; returns the
    /// session's state after it.
    pub async fn answer_offer(
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
                let index = match (&answerer, &capability) {
                    (
                        Answerer::Destination {
                            subscriber,
                            destination,
                        },
                        _,
                    ) => {
                        if session.subscriber != **subscriber {
                            return Err(FlowError::SessionNotFound);
                        }
                        session
                            .offers
                            .iter()
                            .position(|o| o.destination_id == **destination)
                    }
                    (Answerer::Capability(_), Some(presented)) => session
                        .offers
                        .iter()
                        .position(|o| o.capability.matches(presented)),
                    (Answerer::Capability(_), None) => None,
                }
                .ok_or(FlowError::SessionNotFound)?;

                let now = Timestamp::now();
                if session.state.is_over() || session.instruction == Instruction::Ignore {
                    return Err(FlowError::SessionOver);
                }
                if session.wait_expired(now) {
                    ignore(session, now);
                    return Ok(Answered::TooLate);
                }
                if session.offers[index].response.is_some() {
                    return Err(FlowError::AlreadyAnswered);
                }
                match response {
                    OfferResponse::Accepted => {
                        if session.selected_destination.is_some() || session.call_sid.is_some() {
                            return Err(FlowError::AlreadyTaken);
                        }
                        session.offers[index].response = Some(OfferResponse::Accepted);
                        session.selected_destination =
                            Some(session.offers[index].destination_id.clone());
                        if session.instruction == Instruction::Wait {
                            session.instruction = Instruction::Reject;
                            session.timeline.instructed_at = Some(now);
                            transition(session, SessionState::Instructed);
                        }
                    }
                    OfferResponse::Declined => {
                        session.offers[index].response = Some(OfferResponse::Declined);
                        let all_declined = session
                            .offers
                            .iter()
                            .all(|o| o.response == Some(OfferResponse::Declined));
                        if all_declined && session.instruction == Instruction::Wait {
                            ignore(session, now);
                        }
                    }
                }
                Ok(Answered::Done)
            })
            .await?;
        tracing::info!(session_id = %id, response = ?response, instruction = ?session.instruction, "offer answered");
        self.bus.session_changed(id).await;
        match answered {
            Answered::Done => Ok(session.state),
            Answered::TooLate => Err(FlowError::SessionOver),
        }
    }
}

/// Nobody took the call in pick mode: the phone lets it ring.
pub(super) fn ignore(session: &mut crate::domain::session::Session, now: Timestamp) {
    session.instruction = Instruction::Ignore;
    session.timeline.instructed_at = Some(now);
    transition(session, SessionState::Instructed);
}
