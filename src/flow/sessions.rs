//! Reading sessions and what the phone reports about them after the ring.

use super::{CallFlow, FlowError, call_ref, transition};
use crate::domain::phone::PhoneNumber;
use crate::domain::session::{Session, SessionId, SessionState};
use crate::domain::subscriber::Subscriber;
use crate::notify::events::{CancelReason, Cancelled, EventPayload};

/// What a phone reports on `POST /v1/sessions/{id}/events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceEvent {
    /// Taken on the phone itself.
    Answered,
    /// The caller gave up.
    Ended,
    /// The phone did reject the call.
    Rejected,
}

impl CallFlow {
    /// A session of `subscriber`; other subscribers' sessions are not found.
    pub async fn session_of(
        &self,
        subscriber: &PhoneNumber,
        id: &SessionId,
    ) -> Result<Session, FlowError> {
        match self.store.session(id).await? {
            Some(session) if session.subscriber == *subscriber => Ok(session),
            _ => Err(FlowError::SessionNotFound),
        }
    }

    pub async fn device_event(
        &self,
        subscriber: &Subscriber,
        id: &SessionId,
        event: DeviceEvent,
    ) -> Result<(), FlowError> {
        // Another subscriber's session is not found, before and after.
        self.session_of(&subscriber.number, id).await?;
        let (session, cancelled) = self
            .update(id, |session| {
                if session.state.is_over() {
                    return Err(FlowError::SessionOver);
                }
                match event {
                    DeviceEvent::Rejected => {
                        session.phone_rejected = true;
                        Ok(None)
                    }
                    DeviceEvent::Answered | DeviceEvent::Ended => {
                        if session.state == SessionState::Forwarded {
                            return Err(FlowError::AlreadyForwarded);
                        }
                        transition(session, SessionState::Cancelled);
                        Ok(Some(if event == DeviceEvent::Answered {
                            CancelReason::AnsweredOnPhone
                        } else {
                            CancelReason::CallerHungUp
                        }))
                    }
                }
            })
            .await?;
        if let Some(reason) = cancelled {
            self.notify_later(
                subscriber,
                EventPayload::Cancelled(Cancelled {
                    call: call_ref(&session),
                    reason,
                }),
            );
        }
        Ok(())
    }
}
