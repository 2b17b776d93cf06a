//! The voicemail's transcription (`transcribe_voicemail`, docs/providers.md):
//! the provider posts it to our transcription route minutes after the
//! voicemail, the session keeps it, and the destinations hear
//! `call.voicemail_transcribed` once.

use super::callback::CallbackQuery;
use super::{CallFlow, FlowError, call_ref};
use crate::domain::session::Transcript;
use crate::flow::model::Transcription;
use crate::notify::events::{EventPayload, VoicemailTranscribed};

impl CallFlow {
    /// A transcription of the voicemail of the session in `query` is ready.
    /// Nothing is answered to the provider but an empty document, so this
    /// only announces: once per session (a retried callback, on any
    /// instance, finds the text kept and sends nothing), and never for a
    /// session of another subscriber than the query's.
    pub(crate) async fn transcription_ready(
        &self,
        query: CallbackQuery,
        transcription: Transcription,
    ) {
        let (Some(subscriber), Some(id)) = (
            self.current_subscriber(&query.subscriber).await,
            query.session.as_ref(),
        ) else {
            tracing::warn!("a transcription for a call without a session; not announced");
            return;
        };
        let transcript = Transcript::new(transcription.status, transcription.text.as_deref());
        let kept = self
            .update(id, |session| {
                if session.subscriber() != &subscriber.number {
                    return Err(FlowError::SessionNotFound);
                }
                Ok(session.record_transcription(transcript.clone()))
            })
            .await;
        let session = match kept {
            Ok((session, true)) => session,
            Ok((_, false)) => {
                tracing::info!(session_id = %id, "transcription already announced, or no voicemail to transcribe; not announced");
                return;
            }
            Err(FlowError::SessionNotFound) => {
                tracing::warn!(session_id = %id, "transcription for a session that is gone or not the subscriber's");
                return;
            }
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not keep the transcription; not announced");
                return;
            }
        };
        let event = EventPayload::VoicemailTranscribed(VoicemailTranscribed {
            call: call_ref(&session),
            recording_url: transcription
                .recording_url
                .or_else(|| session.voicemail_url().map(str::to_owned)),
            text: transcript.text,
            status: transcript.status,
        });
        self.notify(&subscriber, event).await;
    }
}
