//! The recording of a forwarded call's legs (docs/api.md, `record:
//! "answer"`): the provider says it is ready, the session remembers it, and
//! the destinations hear `call.recording` once.

use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::callback::CallbackQuery;
use super::{CallFlow, FlowError, call_ref};
use crate::domain::session::SessionId;
use crate::flow::model::Recording;
use crate::notify::events::{CallRef, EventPayload, Recording as RecordingEvent};

/// How long a recording of a session that is gone is remembered as sent.
/// A recording is ready when the call ends, which may be hours after its
/// session was last written (and so after its `SESSION_TTL_SECS`); a
/// provider retries its callback within minutes.
const GONE_SESSION_MEMORY: Duration = Duration::from_secs(24 * 60 * 60);

/// What the session made of a recording.
enum Seen {
    New,
    Known,
    /// The session is another subscriber's: nothing is sent.
    Foreign,
}

impl CallFlow {
    /// A recording of a Dial of ours is ready. Nothing is answered to the
    /// provider but an empty document, so this only announces: once per
    /// recording, and never for a session of another subscriber than the
    /// query's.
    pub(crate) async fn recording_ready(&self, query: CallbackQuery, recording: Recording) {
        let (Some(subscriber), Some(id)) = (
            self.current_subscriber(&query.subscriber).await,
            query.session.as_ref(),
        ) else {
            // Without a session (the store failed at the claim) nothing
            // keeps it from being sent twice: it stays with the provider.
            tracing::warn!("a recording for a call without a session; not announced");
            return;
        };
        let seen = self
            .update(id, |session| {
                if session.subscriber() != &subscriber.number {
                    return Ok(Seen::Foreign);
                }
                Ok(if session.add_recording(&recording.url) {
                    Seen::New
                } else {
                    Seen::Known
                })
            })
            .await;
        let call = match seen {
            Ok((session, Seen::New)) => call_ref(&session),
            Ok((_, Seen::Known)) => {
                tracing::info!(session_id = %id, "recording announced before; not again");
                return;
            }
            Ok((_, Seen::Foreign)) => {
                tracing::warn!(session_id = %id, "recording for a session that is not the subscriber's");
                return;
            }
            // The call outlived its session: the query we wrote (and the
            // provider signed) still says whose call it was.
            Err(FlowError::SessionNotFound) => {
                if !self.first_time_for_gone_session(id, &recording.url).await {
                    return;
                }
                let caller = query.caller();
                CallRef {
                    session_id: id.clone(),
                    subscriber: subscriber.number.clone(),
                    caller: caller.number,
                    caller_name: caller.context.name,
                    caller_verification: caller.context.verification,
                }
            }
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not record the recording");
                return;
            }
        };
        let event = EventPayload::Recording(RecordingEvent {
            call,
            recording_url: recording.url,
            duration_secs: recording.duration_secs,
        });
        self.notify(&subscriber, event).await;
    }

    /// Whether the recording at `url` of session `id`, which is gone, is
    /// heard of for the first time (across instances, on Redis).
    async fn first_time_for_gone_session(&self, id: &SessionId, url: &str) -> bool {
        let digest = hex::encode(Sha256::digest(url.as_bytes()));
        let key = format!("recording:{id}:{digest}");
        match self.store.hit(&key, GONE_SESSION_MEMORY).await {
            Ok(count) if count.hits == 1 => true,
            Ok(_) => {
                tracing::info!(session_id = %id, "recording announced before; not again");
                false
            }
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not check a recording of a session that is gone; not announced");
                false
            }
        }
    }
}
