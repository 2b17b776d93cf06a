//! A ring report: create the session, notify every destination, then
//! instruct the phone (steps 2–4 of a call in docs/providers.md).

use std::time::Duration;

use url::Url;

use super::{CallFlow, FlowError, RING_REPORTS_PER_MINUTE, call_ref};
use crate::domain::credentials::{CAPABILITY_PREFIX, NewToken};
use crate::domain::ids::DeviceCallId;
use crate::domain::phone::Caller;
use crate::domain::rules::{IgnoreReason, Route};
use crate::domain::session::{Instruction, Offer, Session, SessionId};
use crate::domain::subscriber::{Destination, Mode, Subscriber};
use crate::notify::events::{Event, EventPayload, Ringing};
use crate::notify::webhooks::Delivery;
use crate::store::SessionCreated;

pub(crate) struct RingReport {
    pub caller: Caller,
    pub device_call_id: Option<DeviceCallId>,
}

#[derive(Debug)]
pub(crate) struct RingOutcome {
    pub session_id: SessionId,
    pub instructed: Instructed,
}

/// What the phone is told, and why when it is told `ignore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instructed {
    pub instruction: Instruction,
    pub ignore_reason: Option<IgnoreReason>,
}

impl CallFlow {
    pub(crate) async fn ring(
        &self,
        subscriber: &Subscriber,
        report: RingReport,
    ) -> Result<RingOutcome, FlowError> {
        let window = self
            .store
            .hit(
                &format!("ring:{}", subscriber.number),
                Duration::from_secs(60),
            )
            .await?;
        if window.hits > RING_REPORTS_PER_MINUTE {
            return Err(FlowError::RateLimited {
                retry_after: window.resets_in,
            });
        }

        let now = self.now();
        let decision = subscriber.route(&report.caller, now);
        let ringing: Vec<&Destination> = subscriber
            .destinations
            .iter()
            .filter(|d| decision.route.rings(&d.id))
            .collect();
        let capabilities: Vec<NewToken> = ringing
            .iter()
            .map(|_| NewToken::generate(CAPABILITY_PREFIX))
            .collect();
        let offers = ringing
            .iter()
            .zip(&capabilities)
            .map(|(d, capability)| Offer {
                destination_id: d.id.clone(),
                capability: capability.hash(),
                response: None,
            })
            .collect();
        let first_instruction = self.first_instruction(subscriber, &decision.route);
        let wait_until = (first_instruction == Instruction::Wait)
            .then(|| now.after(Duration::from_secs(subscriber.pick_timeout_secs.into())));
        let session = Session::ringing(
            subscriber.number.clone(),
            report.caller,
            subscriber.mode,
            report.device_call_id.map(String::from),
            now,
        )
        .with_route(decision.route)
        .with_offers(offers, wait_until);
        if let SessionCreated::Existing(existing) = self
            .store
            .create_session(&session, self.lifetime(&session))
            .await?
        {
            // A retried report: the same session, as it stands now.
            return Ok(RingOutcome {
                session_id: existing.id().clone(),
                instructed: self.instructed(subscriber, &existing),
            });
        }
        tracing::info!(
            session_id = %session.id(),
            subscriber = %subscriber.number,
            route = ?session.route(),
            rule = %decision.reason,
            "ring reported"
        );
        self.supersede_earlier_calls(&session).await;

        self.notify_ringing(subscriber, &session, &ringing, &capabilities)
            .await;
        // A destination may have accepted, or the phone reported, while the
        // notifications were out: decide on the session as it is now.
        let id = session.id().clone();
        let (session, ()) = self
            .update_from(Some(session), &id, |session| {
                let now = self.now();
                session.notified(now);
                session.instruct(first_instruction, now);
                Ok(())
            })
            .await?;
        self.bus.session_changed(session.id()).await;
        Ok(RingOutcome {
            session_id: session.id().clone(),
            instructed: self.instructed(subscriber, &session),
        })
    }

    /// What `session`'s phone is told, and why when it lets the call ring.
    pub(super) fn instructed(&self, subscriber: &Subscriber, session: &Session) -> Instructed {
        let instruction = session.instruction();
        let ignore_reason = (instruction == Instruction::Ignore).then(|| {
            if !self.settings.can_answer_forwarded_calls {
                return IgnoreReason::NoProviderConfigured;
            }
            if *session.route() == Route::Phone {
                // The rules decided at the report; deciding again for that
                // moment says which rule it was.
                let reported = session.timeline().reported_at.unwrap_or_else(|| self.now());
                if let Some(reason) = subscriber
                    .route(session.caller(), reported)
                    .reason
                    .ignore_reason()
                {
                    return reason;
                }
            }
            // Pick mode, and nobody accepted.
            match session.wait_until() {
                Some(until) if self.now() < until => IgnoreReason::AllDeclined,
                _ => IgnoreReason::PickTimeout,
            }
        });
        Instructed {
            instruction,
            ignore_reason,
        }
    }

    /// A new ring report from a caller ends that caller's older sessions
    /// that still wait for a forwarded call: that call was never forwarded
    /// (the caller hung up while the carrier forwarded), and must not
    /// capture this one's forwarded call. Failures are logged: the old
    /// sessions expire on their own.
    async fn supersede_earlier_calls(&self, session: &Session) {
        // Withheld callers cannot be told apart: two at once are two calls.
        if session.caller().number().is_none() {
            return;
        }
        let earlier = match self
            .store
            .awaiting_sessions(session.subscriber(), session.caller())
            .await
        {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(session_id = %session.id(), error = format!("{err:#}"), "could not look for earlier calls of this caller");
                return;
            }
        };
        for id in earlier.iter().filter(|id| *id != session.id()) {
            self.expire_unforwarded(id, "a newer call from the same caller arrived")
                .await;
        }
    }

    /// Sends `call.ringing` to each of `ringing` (with its capability), on
    /// its streams, by webhook and by Web Push, all at once, and returns
    /// when each webhook and push was answered, failed or timed out.
    async fn notify_ringing(
        &self,
        subscriber: &Subscriber,
        session: &Session,
        ringing: &[&Destination],
        capabilities: &[NewToken],
    ) {
        let reported = session.timeline().reported_at.unwrap_or_else(|| self.now());
        let expires_at = match subscriber.mode {
            Mode::Pick => reported.after(Duration::from_secs(subscriber.pick_timeout_secs.into())),
            Mode::Auto => reported.after(self.settings.session_ttl),
        };
        let mut deliveries: Vec<(Url, Event)> = Vec::new();
        let mut streamed = Vec::with_capacity(ringing.len());
        for (destination, capability) in ringing.iter().zip(capabilities) {
            let capability_url = |action: &str| {
                self.url_with_query(
                    &format!("/v1/sessions/{}/{action}", session.id()),
                    &url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("capability", capability.reveal())
                        .finish(),
                )
            };
            let event = Event::now(EventPayload::Ringing(Ringing {
                call: call_ref(session),
                destination_id: destination.id.clone(),
                accept_url: capability_url("accept"),
                decline_url: capability_url("decline"),
                expires_at,
            }));
            if let Some(url) = &destination.webhook_url {
                deliveries.push((url.clone(), event.clone()));
            }
            streamed.push((&destination.id, event));
        }
        // All at once: one round trip on the shared connection, not one each.
        futures_util::future::join_all(streamed.iter().map(|(destination, event)| {
            self.bus
                .publish_event(&subscriber.number, Some(destination), event)
        }))
        .await;
        let offer_left = self.now().until(expires_at);
        let pushes = async {
            if let Some(push) = &self.push {
                let events = streamed
                    .iter()
                    .map(|(d, e)| ((*d).clone(), e.clone()))
                    .collect();
                push.push_ringing(&subscriber.number, events, offer_left)
                    .await;
            }
        };
        if deliveries.is_empty() {
            return pushes.await;
        }
        let (outcomes, ()) = tokio::join!(self.webhooks.deliver_now(deliveries), pushes);
        for (destination, outcome) in ringing
            .iter()
            .filter(|d| d.webhook_url.is_some())
            .zip(outcomes)
        {
            match outcome {
                Delivery::Delivered => {
                    tracing::debug!(session_id = %session.id(), destination = %destination.id, "call.ringing delivered")
                }
                other => tracing::warn!(
                    session_id = %session.id(),
                    destination = %destination.id,
                    outcome = ?other,
                    "call.ringing not delivered"
                ),
            }
        }
    }

    /// What the phone is told once every destination was notified.
    fn first_instruction(&self, subscriber: &Subscriber, route: &Route) -> Instruction {
        if !self.settings.can_answer_forwarded_calls {
            return Instruction::Ignore;
        }
        match (route, subscriber.mode) {
            (Route::Phone, _) => Instruction::Ignore,
            (Route::Voicemail | Route::Block, _) | (Route::Destinations { .. }, Mode::Auto) => {
                Instruction::Reject
            }
            // A destination may open its live stream on any instance at any
            // moment: wait for an accept until `pick_timeout_secs`.
            (Route::Destinations { .. }, Mode::Pick) => Instruction::Wait,
        }
    }
}
