//! The recording of a forwarded call's legs (contract §14, `record:
//! "answer"`): the provider says it is ready, the session remembers it, and
//! the destinations hear `call.recording` once.

use super::callback::CallbackQuery;
use super::{CallFlow, FlowError, call_ref};
use crate::notify::events::{EventPayload, Recording as RecordingEvent};
use crate::providers::Recording;

impl CallFlow {
    /// A recording of a Dial of ours is ready. Nothing is answered to the
    /// provider but an empty document, so this only announces: once per
    /// recording, and only for a session of the subscriber the query names.
    pub async fn recording_ready(&self, query: CallbackQuery, recording: Recording) {
        let (Some(subscriber), Some(id)) = (
            self.current_subscriber(&query.subscriber).await,
            query.session.as_ref(),
        ) else {
            // Without a session (the store failed at the claim) there is
            // nowhere to remember it, so nothing to keep it from being sent
            // twice: it stays with the provider.
            tracing::warn!("a recording for a call without a session; not announced");
            return;
        };
        let added = self
            .update(id, |session| {
                if session.subscriber() != &subscriber.number {
                    return Err(FlowError::SessionNotFound);
                }
                Ok(session.add_recording(&recording.url))
            })
            .await;
        match added {
            Ok((session, true)) => {
                let event = EventPayload::Recording(RecordingEvent {
                    call: call_ref(&session),
                    recording_url: recording.url,
                    duration_secs: recording.duration_secs,
                });
                self.notify(&subscriber, event).await;
            }
            Ok((_, false)) => {
                tracing::info!(session_id = %id, "recording announced before; not again");
            }
            Err(FlowError::SessionNotFound) => {
                tracing::warn!(session_id = %id, "recording for a session that is gone or not the subscriber's");
            }
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not record the recording");
            }
        }
    }
}
