//! Reading sessions and what the phone reports about them after the ring.

use std::time::Duration;

use tokio::sync::broadcast;

use super::ring::Instructed;
use super::{CallFlow, FlowError};
use crate::domain::phone::PhoneNumber;
use crate::domain::session::{CancelReason, Instruction, Session, SessionId, SessionState};
use crate::domain::subscriber::Subscriber;
use crate::subscribers::listing::{Page, SessionCursor};

/// What a phone reports on `POST /v1/sessions/{id}/events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeviceEvent {
    /// Taken on the phone itself.
    Answered,
    /// The caller gave up.
    Ended,
    /// The phone did reject the call.
    Rejected,
}

/// Which sessions a list shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionFilter {
    pub subscriber: Option<PhoneNumber>,
    pub state: Option<SessionState>,
}

/// How many pages of the global index one list reads at most, when a
/// state filter skips sessions (the next page's cursor goes on from there).
const GLOBAL_PAGES_PER_LIST: usize = 20;

impl CallFlow {
    /// Any session (the admin's view).
    pub async fn session(&self, id: &SessionId) -> Result<Session, FlowError> {
        self.store
            .session(id)
            .await?
            .ok_or(FlowError::SessionNotFound)
    }

    /// A page of sessions, newest first (by when they began, then by id):
    /// the sessions of `filter.subscriber` (its history), or of every
    /// subscriber (one global index, whatever their number), in
    /// `filter.state` when given, after `after`.
    pub(crate) async fn list_sessions(
        &self,
        filter: &SessionFilter,
        after: Option<&SessionCursor>,
        limit: usize,
    ) -> Result<Page<Session, SessionCursor>, FlowError> {
        let wanted = |s: &Session| filter.state.is_none_or(|state| s.state() == state);
        // One more than asked: whether there is a next page.
        let mut read_on_from = None;
        let mut items: Vec<Session> = match &filter.subscriber {
            Some(number) => {
                let mut items: Vec<Session> = self
                    .store
                    .session_history(number)
                    .await?
                    .into_iter()
                    .filter(|s| after.is_none_or(|c| c.precedes(s)))
                    .collect();
                items.sort_unstable_by(|a, b| {
                    (b.began_at_millis(), b.id().as_str())
                        .cmp(&(a.began_at_millis(), a.id().as_str()))
                });
                items.retain(|s| wanted(s));
                items
            }
            None => {
                let mut items = Vec::new();
                let mut from = after.map(|c| (c.began_at_millis, c.id.clone()));
                // A state filter may skip many: read on, a bounded number of
                // pages, until the page is full.
                for pages in 1..=GLOBAL_PAGES_PER_LIST {
                    let page = self
                        .store
                        .recent_sessions(from.as_ref().map(|(b, id)| (*b, id)), limit + 1)
                        .await?;
                    let Some(last) = page.last() else { break };
                    from = Some((last.began_at_millis(), last.id().clone()));
                    let full = page.len() > limit;
                    items.extend(page.into_iter().filter(|s| wanted(s)));
                    if items.len() > limit || !full {
                        break;
                    }
                    if pages == GLOBAL_PAGES_PER_LIST {
                        // Not full yet: the next page reads on from here.
                        read_on_from = from.take();
                    }
                }
                items
            }
        };
        let next = if items.len() > limit {
            items.truncate(limit);
            Some(SessionCursor::of(&items[limit - 1]))
        } else {
            read_on_from.map(|(began_at_millis, id)| SessionCursor {
                began_at_millis,
                id,
            })
        };
        Ok(Page { items, next })
    }

    /// A session of `subscriber`; other subscribers' sessions are not found.
    pub(crate) async fn session_of(
        &self,
        subscriber: &PhoneNumber,
        id: &SessionId,
    ) -> Result<Session, FlowError> {
        match self.store.session(id).await? {
            Some(session) if session.subscriber() == subscriber => Ok(session),
            _ => Err(FlowError::SessionNotFound),
        }
    }

    pub(crate) async fn device_event(
        &self,
        subscriber: &Subscriber,
        id: &SessionId,
        event: DeviceEvent,
    ) -> Result<(), FlowError> {
        // Another subscriber's session is not found, before and after.
        self.session_of(&subscriber.number, id).await?;
        let (session, notice) = self
            .update(id, |session| match event {
                DeviceEvent::Rejected => {
                    session.record_phone_rejected()?;
                    Ok(None)
                }
                DeviceEvent::Answered => Ok(Some(
                    session.cancel(CancelReason::AnsweredOnPhone, self.now())?,
                )),
                DeviceEvent::Ended => Ok(Some(
                    session.cancel(CancelReason::CallerHungUp, self.now())?,
                )),
            })
            .await?;
        self.bus.session_changed(id).await;
        self.announce(subscriber, &session, notice).await;
        Ok(())
    }
}

impl CallFlow {
    /// The phone's instruction, waiting up to `wait` for it to stop being
    /// `wait`: an accept, all declines, or the end of pick mode's wait, made
    /// on any instance, wakes it.
    pub(crate) async fn instruction(
        &self,
        subscriber: &Subscriber,
        id: &SessionId,
        wait: Duration,
    ) -> Result<Instructed, FlowError> {
        // Listen before reading, so that a change between the two is heard.
        let mut changes = self.bus.watch_sessions();
        let mut clock_moves = self.settings.clock.moves();
        let give_up = tokio::time::Instant::now() + wait;
        loop {
            let session = self.session_of(&subscriber.number, id).await?;
            if session.instruction() != Instruction::Wait {
                return Ok(self.instructed(subscriber, &session));
            }
            let now = self.now();
            if session.wait_expired(now) {
                let (session, _) = self
                    .update(id, |session| Ok(session.end_wait_if_expired(self.now())))
                    .await?;
                self.bus.session_changed(id).await;
                return Ok(self.instructed(subscriber, &session));
            }
            let mut wake = give_up;
            if let Some(until) = session.wait_until() {
                wake = wake.min(tokio::time::Instant::now() + now.until(until));
            }
            if tokio::time::Instant::now() >= give_up {
                return Ok(Instructed {
                    instruction: Instruction::Wait,
                    ignore_reason: None,
                });
            }
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                () = changed(&mut changes, id) => {}
                // A moved clock may have passed the wait's end.
                () = clock_moves.next() => {}
            }
        }
    }

    /// Revokes the capabilities of every open session of `subscriber` (its
    /// tokens were rotated). Failures are logged: the sessions end soon.
    pub(crate) async fn revoke_capabilities(&self, subscriber: &PhoneNumber) {
        let ids = match self.store.open_sessions(subscriber).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::error!(subscriber = %subscriber, error = format!("{err:#}"), "could not list open sessions to revoke their capabilities");
                return;
            }
        };
        for id in ids {
            let revoked = self
                .update(&id, |session| {
                    session.revoke_capabilities();
                    Ok(())
                })
                .await;
            match revoked {
                Ok(_) | Err(FlowError::SessionNotFound) => {}
                Err(err) => {
                    tracing::error!(session_id = %id, error = %err, "could not revoke the capabilities of a session")
                }
            }
        }
    }

    /// Ends the open sessions of a deleted subscriber as `cancelled` and
    /// tells its destinations. Failures are logged: the subscriber is gone
    /// whatever happens here, and the sessions expire on their own.
    pub(crate) async fn subscriber_removed(&self, subscriber: &Subscriber) {
        let ids = match self.store.open_sessions(&subscriber.number).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::error!(subscriber = %subscriber.number, error = format!("{err:#}"), "could not list the open sessions of a deleted subscriber");
                return;
            }
        };
        for id in ids {
            let cancelled = self
                .update(&id, |session| {
                    Ok(session
                        .cancel(CancelReason::SubscriberDeleted, self.now())
                        .ok())
                })
                .await;
            match cancelled {
                Ok((session, notice)) => {
                    if notice.is_some() {
                        self.bus.session_changed(&id).await;
                    }
                    self.announce(subscriber, &session, notice).await;
                }
                Err(FlowError::SessionNotFound) => {}
                Err(err) => {
                    tracing::error!(session_id = %id, error = %err, "could not cancel a session of a deleted subscriber")
                }
            }
        }
    }
}

/// Returns when the bus says session `id` changed (or may have: a lagging
/// listener re-reads rather than miss a change).
async fn changed(changes: &mut broadcast::Receiver<SessionId>, id: &SessionId) {
    loop {
        match changes.recv().await {
            Ok(changed) if changed == *id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}
