//! Every session reaches an outcome (docs/providers.md). Two deadlines, both kept
//! in the store, so that whichever instance sweeps first takes a due session
//! (the take is atomic): each expiry is handled, and its event sent, once —
//! also after a restart.
//! - **Lost forwards**: a session told to reject that no forwarded call
//!   claims within `FORWARD_TIMEOUT_SECS` ends `expired` (`call.missed`,
//!   `not_forwarded`).
//! - **The end of a session's lifetime**: one that heard nothing for its
//!   lifetime and still has no outcome ends `expired` before it was
//!   forwarded (`call.cancelled`, `expired`: the offer is withdrawn) and
//!   `missed` after (`call.missed`, `no_outcome`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{CallFlow, FlowError};
use crate::domain::session::{Notice, Session, SessionId, SessionState};

/// How often a deployment sweeps the deadlines: an expiry is reported at
/// most this late.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How many due sessions one sweep takes at most, of each kind.
const SWEEP_BATCH: usize = 100;

/// The longest voicemail a caller may leave (the `<Record>` limit). A
/// forwarded session lives this much longer than `SESSION_TTL_SECS` after its
/// last change, so that a message recorded to the end still finds it.
pub(crate) const LONGEST_VOICEMAIL_SECS: u32 = 120;
const LONGEST_VOICEMAIL: Duration = Duration::from_secs(LONGEST_VOICEMAIL_SECS as u64);

impl CallFlow {
    /// Sweeps the deadlines until `stop` is cancelled.
    pub(crate) async fn sweep_deadlines(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => self.sweep().await,
            }
        }
    }

    /// Ends every session whose forwarded call is overdue, and every one
    /// whose lifetime ran out with no outcome.
    pub async fn sweep(&self) {
        let cutoff = self.now().before(self.settings.forward_timeout);
        let swept = match self.store.sweep(cutoff, SWEEP_BATCH).await {
            Ok(swept) => swept,
            Err(err) => {
                tracing::debug!(error = format!("{err:#}"), "could not sweep the deadlines");
                return;
            }
        };
        for id in swept.overdue {
            self.expire_unforwarded(
                &id,
                "no forwarded call arrived: is carrier forwarding active?",
            )
            .await;
        }
        for (id, version) in swept.idle {
            self.end_unattended(
                &id,
                "nothing was heard of the call for the session's lifetime: ended it without an outcome",
                // A write since the take (a callback at the last moment)
                // started a new lifetime: the session is not idle after all.
                |session| {
                    (session.version() == version)
                        .then(|| session.expire_idle(self.now()))
                        .flatten()
                },
            )
            .await;
        }
    }

    /// How long `session` lives after this change of it.
    pub(super) fn lifetime(&self, session: &Session) -> Duration {
        self.lifetime_in(session.state())
    }

    /// How long a session in `state` lives after a change.
    pub(super) fn lifetime_in(&self, state: SessionState) -> Duration {
        if state.is_over() {
            self.settings.history_ttl.max(self.settings.session_ttl)
        } else if state == SessionState::Forwarded {
            self.settings.session_ttl + LONGEST_VOICEMAIL
        } else {
            self.settings.session_ttl
        }
    }

    /// Ends session `id` as `expired` if it still waits for its forwarded
    /// call, and tells the destinations `call.missed` (`not_forwarded`).
    pub(super) async fn expire_unforwarded(&self, id: &SessionId, why: &'static str) {
        self.end_unattended(id, why, |session| session.expire_unforwarded(self.now()))
            .await;
    }

    /// Applies `end` to session `id`, a change no request asked for; when it
    /// ended the session, logs `why` once (a warning: something upstream is
    /// amiss) and tells the destinations.
    async fn end_unattended(
        &self,
        id: &SessionId,
        why: &'static str,
        mut end: impl FnMut(&mut Session) -> Option<Notice>,
    ) {
        match self.update(id, |session| Ok(end(session))).await {
            Ok((session, Some(notice))) => {
                tracing::warn!(
                    session_id = %id,
                    subscriber = %session.subscriber(),
                    outcome = ?session.state(),
                    "{why}"
                );
                self.bus.session_changed(id).await;
                match self.current_subscriber(session.subscriber()).await {
                    Some(subscriber) => self.announce(&subscriber, &session, Some(notice)).await,
                    None => self.metrics.session_ended(session.state()),
                }
            }
            Ok((_, None)) | Err(FlowError::SessionNotFound) => {}
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not end an unattended session")
            }
        }
    }
}
