//! The forwarded call (contract §1 steps 5–6, §7): match it to its session,
//! claim it, dial by the plan, hunt on when a leg fails, fall back.
//!
//! Everything here answers a script, never an error: when the store fails,
//! the call still gets markup from what this process last knew.

use std::sync::Arc;

use super::plan::{DialPlan, PlanStep};
use super::{CallFlow, FlowError, call_ref, transition};
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{Claim, Leg, Session, SessionId, SessionState, Timestamp};
use crate::domain::subscriber::{Fallback, Subscriber, Target};
use crate::notify::events::{Connected, EventPayload, Voicemail};
use crate::providers::{
    CallScript, Dial, DialOutcome, DialTarget, InboundCall, ProviderRoutes, Screening, Step,
};
use crate::templates::spoken_digits;

/// What a screening leg's callbacks carry in their query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenContext {
    pub subscriber: PhoneNumber,
    pub caller: Caller,
}

/// Where a callback of ours stands in a call: carried in the query of the
/// URLs we give the provider (which signs them back to us).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialContext {
    pub subscriber: PhoneNumber,
    pub session: Option<SessionId>,
    /// The plan step whose outcome this is.
    pub step: usize,
    /// The caller as the provider's callback reports it: what the next leg
    /// shows when the session cannot be read.
    pub caller: Caller,
}

impl CallFlow {
    /// Answers a call reaching a forwarding number.
    pub async fn answer_forwarded_call(
        &self,
        routes: &ProviderRoutes,
        call: InboundCall,
    ) -> CallScript {
        let Some(to) = call.to.as_ref() else {
            return self.unknown_call();
        };
        let candidates: Vec<Arc<Subscriber>> = match self
            .store
            .candidates_for_forwarded_call(call.forwarded_from.as_ref(), to)
            .await
        {
            Ok(records) => {
                self.last_known
                    .remember(records.iter().map(|r| &r.subscriber));
                records
                    .into_iter()
                    .map(|r| Arc::new(r.subscriber))
                    .collect()
            }
            Err(err) => {
                tracing::error!(call_sid = %call.call_id, error = format!("{err:#}"), "store failed; using last known subscribers");
                self.last_known.candidates(call.forwarded_from.as_ref(), to)
            }
        };
        if candidates.is_empty() {
            tracing::info!(call_sid = %call.call_id, to = %to, "forwarded call matches no subscriber");
            return self.unknown_call();
        }

        let claim = Claim {
            call_sid: call.call_id.clone(),
            forwarded_at: Timestamp::now(),
        };
        // Without a ring report only an unambiguous subscriber can be dialed.
        let unreported = match candidates.as_slice() {
            [only] => Some(Session::forwarded_without_report(
                only.number.clone(),
                call.from.clone(),
                claim.clone(),
            )),
            _ => None,
        };
        let numbers: Vec<PhoneNumber> = candidates.iter().map(|s| s.number.clone()).collect();
        let claimed = self
            .store
            .claim_session(
                &numbers,
                &call.from,
                &claim,
                unreported.as_ref(),
                self.settings.session_ttl,
            )
            .await;
        match claimed {
            Ok(Some(session)) => {
                let Some(subscriber) = candidates.iter().find(|s| s.number == session.subscriber)
                else {
                    return self.unknown_call();
                };
                if let (Some(reported), Some(forwarded)) =
                    (session.timeline.reported_at, session.timeline.forwarded_at)
                {
                    self.metrics.forward_delay(reported.until(forwarded));
                }
                tracing::info!(
                    call_sid = %call.call_id,
                    session_id = %session.id,
                    reported = session.timeline.reported_at.is_some(),
                    "forwarded call claimed its session"
                );
                self.script_for_step(routes, subscriber, Some(&session), &call.from, 0)
            }
            Ok(None) => {
                tracing::info!(call_sid = %call.call_id, "no session waits for this caller on a shared forwarding number");
                self.unknown_call()
            }
            Err(err) => {
                tracing::error!(call_sid = %call.call_id, error = format!("{err:#}"), "claim failed; dialing without a session");
                match candidates.as_slice() {
                    [only] => self.script_for_step(routes, only, None, &call.from, 0),
                    _ => self.unknown_call(),
                }
            }
        }
    }

    /// Answers the end of a Dial we returned: done, or the next step.
    pub async fn dial_finished(
        &self,
        routes: &ProviderRoutes,
        context: DialContext,
        outcome: DialOutcome,
    ) -> CallScript {
        let Some(subscriber) = self.subscriber_for_callback(&context.subscriber).await else {
            return hangup();
        };
        let step = context.step;
        let session = self
            .record_in_session(context.session.as_ref(), &subscriber, None, |session| {
                let plan = DialPlan::for_session(&subscriber, Some(session));
                let dialed: Vec<_> = match plan.step(step) {
                    PlanStep::Ring(destinations) => {
                        destinations.iter().map(|d| d.id.clone()).collect()
                    }
                    _ => Vec::new(),
                };
                session.legs.extend(dialed.iter().map(|id| Leg {
                    destination_id: id.clone(),
                    status: outcome.as_str().to_owned(),
                }));
                let outcome_state = match outcome {
                    DialOutcome::Answered => {
                        if let [only] = dialed.as_slice() {
                            session.selected_destination = Some(only.clone());
                        }
                        Some(SessionState::Connected)
                    }
                    DialOutcome::Canceled => Some(SessionState::Missed),
                    DialOutcome::Busy | DialOutcome::NoAnswer | DialOutcome::Failed => matches!(
                        plan.step(step + 1),
                        PlanStep::Done | PlanStep::Fallback(Fallback::Hangup)
                    )
                    .then_some(SessionState::Missed),
                };
                Ok(outcome_state.filter(|_| !session.state.is_over()))
            })
            .await;

        match outcome {
            DialOutcome::Answered | DialOutcome::Canceled => hangup(),
            DialOutcome::Busy | DialOutcome::NoAnswer | DialOutcome::Failed => {
                let caller = session
                    .as_ref()
                    .map_or(context.caller.clone(), |s| s.caller.clone());
                self.script_for_step(routes, &subscriber, session.as_ref(), &caller, step + 1)
            }
        }
    }

    /// Answers the end of the voicemail `<Record>`.
    pub async fn voicemail_recorded(
        &self,
        context: DialContext,
        recording_url: Option<String>,
    ) -> CallScript {
        if let Some(subscriber) = self.subscriber_for_callback(&context.subscriber).await {
            let recorded = recording_url.is_some();
            self.record_in_session(
                context.session.as_ref(),
                &subscriber,
                recording_url,
                |session| {
                    Ok((!session.state.is_over()).then_some(if recorded {
                        SessionState::Voicemail
                    } else {
                        SessionState::Missed
                    }))
                },
            )
            .await;
        }
        hangup()
    }

    /// Applies a callback's news to its session and moves it to the outcome
    /// `change` names, telling the destinations. A store failure is logged:
    /// the call goes on without the session.
    async fn record_in_session(
        &self,
        id: Option<&SessionId>,
        subscriber: &Subscriber,
        recording_url: Option<String>,
        mut change: impl FnMut(&mut Session) -> Result<Option<SessionState>, FlowError>,
    ) -> Option<Session> {
        let (session, outcome) = match self
            .update(id?, |session| {
                let outcome = change(session)?;
                if let Some(state) = outcome {
                    transition(session, state);
                }
                Ok(outcome)
            })
            .await
        {
            Ok(updated) => updated,
            Err(err) => {
                tracing::error!(session_id = %id?, error = format!("{err:#}"), "could not record the call's progress; going on without the session");
                return None;
            }
        };
        if let Some(state) = outcome {
            self.metrics.session_ended(state);
        }
        match outcome {
            Some(SessionState::Connected) => {
                self.notify(
                    subscriber,
                    EventPayload::Connected(Connected {
                        call: call_ref(&session),
                        destination_id: session.selected_destination.clone(),
                    }),
                )
                .await
            }
            Some(SessionState::Missed) => {
                self.notify(subscriber, EventPayload::Missed(call_ref(&session)))
                    .await
            }
            Some(SessionState::Voicemail) => {
                if let Some(recording_url) = recording_url {
                    self.notify(
                        subscriber,
                        EventPayload::Voicemail(Voicemail {
                            call: call_ref(&session),
                            recording_url,
                        }),
                    )
                    .await;
                }
            }
            _ => {}
        }
        Some(session)
    }

    /// The markup for step `index` of the subscriber's plan.
    fn script_for_step(
        &self,
        routes: &ProviderRoutes,
        subscriber: &Subscriber,
        session: Option<&Session>,
        caller: &Caller,
        index: usize,
    ) -> CallScript {
        let plan = DialPlan::for_session(subscriber, session);
        let step_text = index.to_string();
        let mut query = vec![("subscriber", subscriber.number.as_str())];
        if let Some(session) = session {
            query.push(("session", session.id.as_str()));
        }
        query.push(("step", &step_text));
        let dial = |targets: Vec<DialTarget>| {
            CallScript(vec![Step::Dial(Dial {
                targets,
                caller_id: caller.number().cloned(),
                timeout_secs: subscriber.ring_timeout_secs,
                action_url: self.callback_url(routes.dial_status, &query),
            })])
        };
        match plan.step(index) {
            PlanStep::Ring(destinations) => {
                let whisper_url = self.callback_url(
                    routes.screen,
                    &[
                        ("subscriber", subscriber.number.as_str()),
                        ("caller", caller.key()),
                    ],
                );
                dial(
                    destinations
                        .into_iter()
                        .map(|d| DialTarget {
                            target: d.target.clone(),
                            whisper_url: d.screening.then(|| whisper_url.clone()),
                        })
                        .collect(),
                )
            }
            PlanStep::Fallback(Fallback::Voicemail) => CallScript(vec![
                Step::Say(self.templates.voicemail_greeting.clone()),
                Step::Record {
                    action_url: self.callback_url(routes.voicemail, &query),
                    max_length_secs: 120,
                },
            ]),
            PlanStep::Fallback(Fallback::Phone { address }) => dial(vec![DialTarget {
                target: Target::Phone(address.clone()),
                whisper_url: None,
            }]),
            PlanStep::Fallback(Fallback::Hangup) | PlanStep::Done => hangup(),
        }
    }

    /// What a screening destination hears when it picks up: who is calling,
    /// and (where the provider leaves it to us) a key to press to take it.
    pub fn screen(
        &self,
        routes: &ProviderRoutes,
        screening: Screening,
        context: &ScreenContext,
    ) -> CallScript {
        let caller = match &context.caller {
            Caller::Number(n) => spoken_digits(n.as_str()),
            Caller::Withheld => "a withheld number".to_owned(),
        };
        let prompt = self
            .templates
            .screening_prompt
            .replace("{subscriber}", &spoken_digits(context.subscriber.as_str()))
            .replace("{caller}", &caller);
        match screening {
            Screening::GatherOnLeg => CallScript(vec![
                Step::Gather {
                    action_url: self.callback_url(
                        routes.screen_result,
                        &[
                            ("subscriber", context.subscriber.as_str()),
                            ("caller", context.caller.key()),
                        ],
                    ),
                    num_digits: 1,
                    timeout_secs: SCREEN_TIMEOUT_SECS,
                    prompt,
                },
                // No key pressed: this leg hangs up and the hunt goes on.
                Step::Hangup,
            ]),
            Screening::ConfirmKey => CallScript(vec![Step::Say(prompt)]),
        }
    }

    /// The key a screening destination pressed: 1 takes the call (an empty
    /// answer bridges it), anything else hangs up that leg.
    pub fn screen_result(&self, digits: Option<&str>) -> CallScript {
        if digits.map(str::trim) == Some("1") {
            CallScript::default()
        } else {
            hangup()
        }
    }

    /// A short message, then hang up: for calls that match no subscriber.
    pub fn unknown_call(&self) -> CallScript {
        CallScript(vec![
            Step::Say(self.templates.unknown_call.clone()),
            Step::Hangup,
        ])
    }

    async fn subscriber_for_callback(&self, number: &PhoneNumber) -> Option<Arc<Subscriber>> {
        match self.store.subscriber(number).await {
            Ok(Some(record)) => {
                self.last_known.remember([&record.subscriber]);
                Some(Arc::new(record.subscriber))
            }
            Ok(None) => {
                tracing::warn!(subscriber = %number, "callback for a subscriber that no longer exists");
                None
            }
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "store failed; using last known subscriber"
                );
                self.last_known.get(number)
            }
        }
    }
}

/// How long a screening destination has to press a key.
const SCREEN_TIMEOUT_SECS: u32 = 8;

fn hangup() -> CallScript {
    CallScript(vec![Step::Hangup])
}
