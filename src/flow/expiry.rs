//! Lost forwards (contract §9): a session told to reject that no forwarded
//! call claims within `FORWARD_TIMEOUT_SECS` ends `expired`. The store keeps
//! the deadlines; whichever instance sweeps first takes a due one (the take
//! is atomic), so each expiry is handled, and `call.missed` sent, once —
//! also after a restart, since the deadlines live in the store.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{CallFlow, FlowError};
use crate::domain::session::{SessionId, Timestamp};

/// How often the deadlines are swept: an expiry is reported at most this
/// late.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How many due sessions one sweep takes at most.
const SWEEP_BATCH: usize = 100;

impl CallFlow {
    /// Sweeps the deadlines until `stop` is cancelled.
    pub async fn sweep_forward_deadlines(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => self.expire_due_sessions().await,
            }
        }
    }

    /// Ends every session whose forwarded call is overdue.
    pub async fn expire_due_sessions(&self) {
        let cutoff = Timestamp::now().before(self.settings.forward_timeout);
        let due = match self.store.take_due_forwards(cutoff, SWEEP_BATCH).await {
            Ok(due) => due,
            Err(err) => {
                tracing::debug!(
                    error = format!("{err:#}"),
                    "could not sweep forward deadlines"
                );
                return;
            }
        };
        for id in due {
            self.expire_unforwarded(
                &id,
                "no forwarded call arrived: is carrier forwarding active?",
            )
            .await;
        }
    }

    /// Ends session `id` as `expired` if it still waits for its forwarded
    /// call, and tells the destinations `call.missed` (`not_forwarded`).
    pub(super) async fn expire_unforwarded(&self, id: &SessionId, why: &'static str) {
        match self
            .update(id, |session| {
                Ok(session.expire_unforwarded(Timestamp::now()))
            })
            .await
        {
            Ok((session, Some(notice))) => {
                tracing::warn!(
                    session_id = %id,
                    subscriber = %session.subscriber(),
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
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not expire an unforwarded session")
            }
        }
    }
}
