//! Pick mode's offers: the call offered to each destination, their answers,
//! and the wait for an accept, after which the phone lets the call ring.

use serde::{Deserialize, Serialize};

use super::{Instruction, Notice, Session, SessionError, SessionId};
use crate::domain::credentials::TokenHash;
use crate::domain::ids::DestinationId;
use crate::domain::time::Timestamp;

/// A destination's answer to the offer of a call (pick mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OfferResponse {
    Accepted,
    Declined,
}

/// The call as offered to one destination: the hash of the capability in its
/// `accept_url` / `decline_url`, and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offer {
    pub destination_id: DestinationId,
    pub capability: TokenHash,
    pub response: Option<OfferResponse>,
}

/// Which offer an answer is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OfferKey<'a> {
    /// A destination by its bearer token.
    Destination(&'a DestinationId),
    /// Whoever holds the capability of an `accept_url` / `decline_url`.
    Capability(&'a TokenHash),
}

/// The outcome of [`Session::answer_offer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OfferAnswered {
    /// Recorded; an accept closes the others' offers.
    Recorded(Option<Notice>),
    /// Pick mode's wait had run out: the phone is told to ignore instead,
    /// and the answer is not recorded.
    TooLate,
}

impl Session {
    /// The offers made to the destinations, and (pick mode) until when an
    /// accept is waited for.
    pub(crate) fn with_offers(mut self, offers: Vec<Offer>, wait_until: Option<Timestamp>) -> Self {
        self.offers = offers;
        self.wait_until = wait_until;
        self
    }

    /// Whether pick mode's wait for an accept is over without one.
    pub(crate) fn wait_expired(&self, now: Timestamp) -> bool {
        !self.is_over()
            && self.instruction == Instruction::Wait
            && self.wait_until.is_some_and(|until| now >= until)
    }

    /// Ends pick mode's wait when it ran out: the phone lets the call ring.
    pub(crate) fn end_wait_if_expired(&mut self, now: Timestamp) -> bool {
        self.wait_expired(now) && self.instruct(Instruction::Ignore, now)
    }

    /// A destination's answer to the offer of the call.
    pub(crate) fn answer_offer(
        &mut self,
        key: OfferKey<'_>,
        response: OfferResponse,
        now: Timestamp,
    ) -> Result<OfferAnswered, SessionError> {
        let index = self
            .offers
            .iter()
            .position(|o| match key {
                OfferKey::Destination(id) => o.destination_id == *id,
                OfferKey::Capability(hash) => o.capability.matches(hash),
            })
            .ok_or(SessionError::NoSuchOffer)?;
        if self.is_over() || self.instruction == Instruction::Ignore {
            return Err(SessionError::Over);
        }
        if self.end_wait_if_expired(now) {
            return Ok(OfferAnswered::TooLate);
        }
        if self.offers[index].response.is_some() {
            return Err(SessionError::AlreadyAnswered);
        }
        match response {
            OfferResponse::Accepted => {
                if self.selected_destination.is_some() || self.call_sid.is_some() {
                    return Err(SessionError::AlreadyTaken);
                }
                let winner = self.offers[index].destination_id.clone();
                self.offers[index].response = Some(OfferResponse::Accepted);
                self.selected_destination = Some(winner.clone());
                self.instruct(Instruction::Reject, now);
                Ok(OfferAnswered::Recorded(Some(Notice::Taken { winner })))
            }
            OfferResponse::Declined => {
                self.offers[index].response = Some(OfferResponse::Declined);
                if self
                    .offers
                    .iter()
                    .all(|o| o.response == Some(OfferResponse::Declined))
                {
                    self.instruct(Instruction::Ignore, now);
                }
                Ok(OfferAnswered::Recorded(None))
            }
        }
    }

    /// Makes every capability of this session's offers useless (the
    /// subscriber's tokens were rotated); tokens still answer offers.
    pub(crate) fn revoke_capabilities(&mut self) {
        for offer in &mut self.offers {
            offer.capability = TokenHash::of(SessionId::generate().as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use crate::domain::credentials::TokenHash;

    #[test]
    fn an_accept_selects_the_destination_and_closes_the_others_offers() {
        let capability = TokenHash::of("cap");
        let offer = |d: &str| Offer {
            destination_id: id(d),
            capability: TokenHash::of(d),
            response: None,
        };
        let mut s = new_session(Mode::Pick).with_offers(
            vec![
                offer("desk"),
                Offer {
                    capability: capability.clone(),
                    ..offer("laptop")
                },
            ],
            Some(t(15)),
        );
        s.notified(t(1));
        let answered = s
            .answer_offer(
                OfferKey::Capability(&capability),
                OfferResponse::Accepted,
                t(3),
            )
            .unwrap();
        assert_eq!(
            answered,
            OfferAnswered::Recorded(Some(Notice::Taken {
                winner: id("laptop")
            }))
        );
        assert_eq!(s.instruction(), Instruction::Reject);
        assert_eq!(s.selected_destination(), Some(&id("laptop")));
        assert_eq!(
            s.answer_offer(
                OfferKey::Destination(&id("desk")),
                OfferResponse::Accepted,
                t(4)
            ),
            Err(SessionError::AlreadyTaken)
        );
        assert_eq!(
            s.answer_offer(
                OfferKey::Destination(&id("laptop")),
                OfferResponse::Declined,
                t(4)
            ),
            Err(SessionError::AlreadyAnswered)
        );
        assert_eq!(
            s.answer_offer(
                OfferKey::Destination(&id("nobody")),
                OfferResponse::Accepted,
                t(4)
            ),
            Err(SessionError::NoSuchOffer)
        );
    }

    #[test]
    fn all_declines_or_a_late_accept_let_the_phone_ring() {
        let offer = |d: &str| Offer {
            destination_id: id(d),
            capability: TokenHash::of(d),
            response: None,
        };
        let mut s = new_session(Mode::Pick).with_offers(vec![offer("a"), offer("b")], Some(t(15)));
        for d in ["a", "b"] {
            s.answer_offer(OfferKey::Destination(&id(d)), OfferResponse::Declined, t(2))
                .unwrap();
        }
        assert_eq!(s.instruction(), Instruction::Ignore);

        let mut late = new_session(Mode::Pick).with_offers(vec![offer("a")], Some(t(15)));
        assert_eq!(
            late.answer_offer(
                OfferKey::Destination(&id("a")),
                OfferResponse::Accepted,
                t(15)
            ),
            Ok(OfferAnswered::TooLate)
        );
        assert_eq!(late.instruction(), Instruction::Ignore);
        assert_eq!(late.selected_destination(), None);
    }

    #[test]
    fn revoked_capabilities_no_longer_answer_offers() {
        let capability = TokenHash::of("cap");
        let mut s = new_session(Mode::Pick).with_offers(
            vec![Offer {
                destination_id: id("desk"),
                capability: capability.clone(),
                response: None,
            }],
            Some(t(15)),
        );
        s.revoke_capabilities();
        assert_eq!(
            s.answer_offer(
                OfferKey::Capability(&capability),
                OfferResponse::Accepted,
                t(2)
            ),
            Err(SessionError::NoSuchOffer)
        );
        assert!(
            s.answer_offer(
                OfferKey::Destination(&id("desk")),
                OfferResponse::Accepted,
                t(2)
            )
            .is_ok()
        );
    }
}
