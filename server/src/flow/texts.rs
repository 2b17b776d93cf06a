//! The text back to a missed caller (`missed_call_text`, docs/api.md):
//! when a session ends missed or in the voicemail, one SMS from the
//! forwarding number to the caller, through the REST API of the provider
//! that carried the call, and what came of it in the session and in the
//! ending's event.
//!
//! Once across instances and retries: only the write that ends a session
//! gets its ending to announce, and the text is then claimed by a second
//! write of the session (`Session::claim_missed_call_text`), which the
//! store takes only from a writer that read the latest copy; whoever loses
//! finds it claimed and sends nothing.

use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::task::TaskTracker;

use super::CallFlow;
use super::model::{TextAttempt, TextGateway, TextMessage};
use crate::domain::session::{Session, SessionState, TextClaim, TextOutcome};
use crate::domain::subscriber::Subscriber;
use crate::notify::events::EventPayload;
use crate::notify::retry::{self, RetryPolicy};

/// What the flow sends texts with.
#[derive(Clone)]
pub(super) struct Texts {
    pub(super) gateway: Arc<dyn TextGateway>,
    pub(super) retry: RetryPolicy,
    /// Where a text and the event that waits for it run: drained at
    /// shutdown with the webhooks.
    pub(super) background: TaskTracker,
}

impl CallFlow {
    /// Announces `ending` (`call.missed` or `call.voicemail` of `session`),
    /// once the text back to the caller was sent, when the subscriber has
    /// one, so that the event says what came of it. The text and the event
    /// after it run in the background: the provider's request that ended
    /// the call waits for neither. `blocked`: a caller rule refused the
    /// call (no text).
    pub(super) async fn announce_ending(
        &self,
        subscriber: &Subscriber,
        session: &Session,
        mut ending: EventPayload,
        blocked: bool,
    ) {
        let (Some(text), Some(texts)) = (&subscriber.missed_call_text, &self.texts) else {
            return self.notify(subscriber, ending).await;
        };
        // An expiry ends a call that never reached us: no write to claim.
        if !matches!(
            session.state(),
            SessionState::Missed | SessionState::Voicemail
        ) {
            return self.notify(subscriber, ending).await;
        }
        let id = session.id().clone();
        let claim = match self
            .update(&id, |session| Ok(session.claim_missed_call_text(blocked)))
            .await
        {
            Ok((_, Some(claim))) => claim,
            // Texted already.
            Ok((_, None)) => return self.notify(subscriber, ending).await,
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not claim the missed-call text; not sent");
                return self.notify(subscriber, ending).await;
            }
        };
        let (provider, to) = match claim {
            TextClaim::Skip(why) => {
                tracing::info!(session_id = %id, why, "missed-call text skipped");
                let provider = session.provider().unwrap_or("none");
                self.metrics.missed_call_text(provider, "skipped");
                set_text_outcome(&mut ending, TextOutcome::Skipped);
                return self.notify(subscriber, ending).await;
            }
            TextClaim::Send { provider, to } => (provider, to),
        };
        let message = TextMessage {
            from: subscriber.forwarding_number.clone(),
            to,
            body: text.for_subscriber(&subscriber.number),
        };
        let flow = self.clone();
        let subscriber = subscriber.clone();
        let retry = texts.retry;
        let gateway = texts.gateway.clone();
        // The event waiting for the text is a delivery pending already
        // (whoever waits for the deliveries to settle waits for it too).
        self.metrics.notifications_pending(1);
        texts.background.spawn(async move {
            let outcome = send_with_retries(gateway.as_ref(), retry, &provider, &message).await;
            tracing::info!(session_id = %id, provider, outcome = ?outcome, "missed-call text");
            flow.metrics.missed_call_text(&provider, outcome.label());
            if let Err(err) = flow
                .update(&id, |session| {
                    Ok(session.finish_missed_call_text(outcome))
                })
                .await
            {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not keep what came of the missed-call text");
            }
            set_text_outcome(&mut ending, outcome);
            flow.notify(&subscriber, ending).await;
            flow.metrics.notifications_pending(-1);
        });
    }
}

/// The text through `provider`, tried again by the webhooks' policy while
/// the provider says it took nothing.
async fn send_with_retries(
    gateway: &dyn TextGateway,
    policy: RetryPolicy,
    provider: &str,
    message: &TextMessage,
) -> TextOutcome {
    for attempt in 1..=policy.attempts {
        match gateway.send(provider, message).await {
            TextAttempt::Sent => return TextOutcome::Sent,
            TextAttempt::NotConfigured(_) => return TextOutcome::Skipped,
            TextAttempt::Failed(reason) => {
                tracing::warn!(provider, reason, "missed-call text not sent");
                return TextOutcome::Failed;
            }
            TextAttempt::TryAgain {
                reason,
                retry_after,
            } => {
                if attempt == policy.attempts {
                    tracing::warn!(
                        provider,
                        reason,
                        attempts = attempt,
                        "missed-call text not sent"
                    );
                    break;
                }
                let asked = retry_after
                    .as_deref()
                    .and_then(|value| crate::outbound::retry_after(value, SystemTime::now()));
                tokio::time::sleep(retry::jittered(policy.pause(attempt, asked))).await;
            }
        }
    }
    TextOutcome::Failed
}

/// `ending` saying what came of the text.
fn set_text_outcome(ending: &mut EventPayload, outcome: TextOutcome) {
    match ending {
        EventPayload::Missed(missed) => missed.missed_call_text = Some(outcome),
        EventPayload::Voicemail(voicemail) => voicemail.missed_call_text = Some(outcome),
        _ => {}
    }
}
