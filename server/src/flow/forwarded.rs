//! The forwarded call (docs/providers.md): match it to its
//! session, claim it, dial by the plan, learn who answered, hunt on when a
//! leg fails or declines, fall back, and notice when the caller hangs up.
//!
//! Everything here answers a script, never an error: when the store fails,
//! the call still gets markup from what this process last knew.

use std::sync::Arc;

use super::callback::{CallbackQuery, CallerInfo};
use super::plan::{DialPlan, PlanStep};
use super::{CallFlow, FlowError};
use crate::domain::ids::CallSid;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::rules::{Record, Route};
use crate::domain::session::{
    Claim, DialAttempt, DialResult, DialStatus, DialVerdict, DialedLeg, MissedReason, Notice,
    Session, SessionError, SessionId, SessionState,
};
use crate::domain::subscriber::{Destination, Fallback, Subscriber, Target};
use crate::flow::model::{
    CallScript, Dial, DialTarget, InboundCall, ProviderRoutes, Screening, StatusReport, Step,
};
use crate::metrics::LookupSource;
use crate::templates::spoken_digits;

/// What comes after a Dial ended without a person taking the call.
enum Next<'a> {
    Ring(DialAttempt, Vec<&'a Destination>),
    /// The subscriber's fallback, as the Dial attempt after the last step.
    Fallback(DialAttempt, &'a Fallback),
    Done,
}

impl CallFlow {
    /// Answers a call reaching a forwarding number.
    pub(crate) async fn answer_forwarded_call(
        &self,
        routes: &ProviderRoutes,
        provider: &'static str,
        call: InboundCall,
    ) -> CallScript {
        let Some(to) = call.to.as_ref() else {
            return self.unknown_call();
        };
        let forwarded_from = call.forwarded_from.as_ref();
        // The cache first: when it vouches, the claim is the one round trip.
        let found = self
            .subscribers
            .for_forwarded_call(forwarded_from, to)
            .await;
        let candidates: Vec<Arc<Subscriber>> = found.subscribers;
        if candidates.is_empty() {
            tracing::info!(call_sid = %call.call_id, to = %to, "forwarded call matches no subscriber");
            return self.unknown_call();
        }
        if found.source == LookupSource::LastKnown {
            // The store just failed: a claim would wait for it again, and
            // the caller has waited once already.
            return self.without_session(routes, &candidates, &call);
        }

        let now = self.now();
        let claim = Claim::new(call.call_id.clone(), now, provider, call.caller.clone());
        // Without a ring report only an unambiguous subscriber can be dialed;
        // its rules are decided now.
        let unreported = match candidates.as_slice() {
            [only] => Some(Session::forwarded_without_report(
                only.number.clone(),
                call.from.clone(),
                only.route_forwarded(&call.from, call.caller.verification, now),
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
                now.before(self.settings.forward_timeout),
                unreported.as_ref(),
                self.lifetime_in(SessionState::Forwarded),
            )
            .await;
        match claimed {
            Ok(Some(session)) => {
                let Some(subscriber) = candidates
                    .iter()
                    .find(|s| s.number == *session.subscriber())
                else {
                    return self.unknown_call();
                };
                if let (Some(reported), Some(forwarded)) = (
                    session.timeline().reported_at,
                    session.timeline().forwarded_at,
                ) {
                    self.metrics.forward_delay(reported.until(forwarded));
                }
                tracing::info!(
                    call_sid = %call.call_id,
                    session_id = %session.id(),
                    reported = session.timeline().reported_at.is_some(),
                    "forwarded call claimed its session"
                );
                if session.is_over() {
                    return hangup();
                }
                // The ring report could not know the verdict: a rule on it
                // is decided now.
                let on_verification = subscriber
                    .route_on_verification(session.caller(), session.caller_verification())
                    .filter(|decision| &decision.route != session.route());
                if let Some(decision) = &on_verification {
                    tracing::info!(session_id = %session.id(), rule = %decision.reason, route = ?decision.route, "the caller failed verification");
                }
                let rerouted = on_verification.map(|decision| decision.route);
                if session.route() == &Route::Block || rerouted == Some(Route::Block) {
                    self.end_blocked(subscriber, session.id()).await;
                    return reject();
                }
                let session = match rerouted {
                    Some(route) => self.reroute(session, route).await,
                    None => session,
                };
                let plan = DialPlan::for_session(subscriber, &session);
                let next = first_ring(&plan);
                self.script_for(
                    routes,
                    subscriber,
                    Some(session.id()),
                    &CallerInfo::of(&session),
                    next,
                )
            }
            Ok(None) => {
                tracing::info!(call_sid = %call.call_id, "no session waits for this caller on a shared forwarding number");
                self.unknown_call()
            }
            Err(err) => {
                tracing::error!(call_sid = %call.call_id, error = format!("{err:#}"), "claim failed; dialing without a session");
                self.without_session(routes, &candidates, &call)
            }
        }
    }

    /// Dials a forwarded call without a session (the store failed): an
    /// unambiguous subscriber's plan from its first step, decided now.
    fn without_session(
        &self,
        routes: &ProviderRoutes,
        candidates: &[Arc<Subscriber>],
        call: &InboundCall,
    ) -> CallScript {
        match candidates {
            [only] => {
                let route = only.route_forwarded(&call.from, call.caller.verification, self.now());
                if route == Route::Block {
                    return reject();
                }
                let plan = DialPlan::new(only, &route, None);
                let caller = CallerInfo {
                    number: call.from.clone(),
                    context: call.caller.clone(),
                };
                self.script_for(routes, only, None, &caller, first_ring(&plan))
            }
            _ => self.unknown_call(),
        }
    }

    /// Answers the end of a Dial we returned: done, the same step again
    /// without who declined, or the next step.
    pub(crate) async fn dial_finished(
        &self,
        routes: &ProviderRoutes,
        query: CallbackQuery,
        result: DialResult,
    ) -> CallScript {
        let Some(subscriber) = self.current_subscriber(&query.subscriber).await else {
            return hangup();
        };
        let attempt = query.attempt();
        let caller = query.caller();
        let Some(id) = query.session.clone() else {
            // The store failed at the claim: there is no session to record in.
            return self.hunt_without_session(routes, &subscriber, None, &caller, attempt, result);
        };
        let now = self.now();
        let updated = self
            .update(&id, |session| {
                if session.subscriber() != &subscriber.number {
                    return Err(FlowError::SessionNotFound);
                }
                let plan = DialPlan::for_session(&subscriber, session);
                let dialed: Vec<DialedLeg> = ringing_in(&plan, session, attempt)
                    .into_iter()
                    .map(|d| DialedLeg {
                        destination_id: d.id.clone(),
                        screened: d.screening,
                        client: matches!(d.target, Target::Client(_)),
                    })
                    .collect();
                match session.record_dial_result(attempt, &dialed, result, now) {
                    DialVerdict::Connected(notice) | DialVerdict::CallerGone(notice) => {
                        return Ok((notice, false));
                    }
                    DialVerdict::Over => return Ok((None, false)),
                    DialVerdict::Declined | DialVerdict::NotAnswered | DialVerdict::Replayed => {}
                }
                // Whatever comes next follows from the recorded legs alone, so
                // a retried callback is answered the same way.
                match next_after(&plan, session, attempt) {
                    Next::Ring(next, destinations) => {
                        session.start_ringing(next, destinations.iter().map(|d| &d.id));
                        session.dial_started(next, now);
                        Ok((None, true))
                    }
                    Next::Fallback(_, Fallback::Voicemail | Fallback::Phone { .. }) => {
                        Ok((None, true))
                    }
                    Next::Fallback(_, Fallback::Hangup) | Next::Done => {
                        Ok((session.end_missed(MissedReason::NobodyAnswered, now), false))
                    }
                }
            })
            .await;
        match updated {
            Ok((session, (notice, goes_on))) => {
                self.announce(&subscriber, &session, notice).await;
                if !goes_on {
                    return hangup();
                }
                let plan = DialPlan::for_session(&subscriber, &session);
                let next = next_after(&plan, &session, attempt);
                self.script_for(
                    routes,
                    &subscriber,
                    Some(session.id()),
                    &CallerInfo::of(&session),
                    next,
                )
            }
            Err(FlowError::SessionNotFound) => {
                tracing::warn!(session_id = %id, "dial callback for a session that is gone or not the subscriber's");
                hangup()
            }
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not record the dial's outcome; hunting on without it");
                // The session is still named in the next callbacks: once the
                // store is back, the rest of the call is recorded again.
                self.hunt_without_session(routes, &subscriber, Some(&id), &caller, attempt, result)
            }
        }
    }

    /// The hunt when the session cannot be read or written (or there is
    /// none, `session_id`): done when the provider says the leg was bridged
    /// (or does not say otherwise) or the caller left, else the next step of
    /// the plan.
    fn hunt_without_session(
        &self,
        routes: &ProviderRoutes,
        subscriber: &Subscriber,
        session_id: Option<&SessionId>,
        caller: &CallerInfo,
        attempt: DialAttempt,
        result: DialResult,
    ) -> CallScript {
        match result.status {
            DialStatus::Completed if result.bridged != Some(false) => hangup(),
            DialStatus::Canceled => hangup(),
            _ => {
                // Without its session, the call's route is decided again.
                let route = subscriber.route_forwarded(
                    &caller.number,
                    caller.context.verification,
                    self.now(),
                );
                let plan = DialPlan::new(subscriber, &route, None);
                self.script_for(
                    routes,
                    subscriber,
                    session_id,
                    caller,
                    next_step(&plan, attempt),
                )
            }
        }
    }

    /// Answers the end of the voicemail `<Record>`.
    pub(crate) async fn voicemail_recorded(
        &self,
        query: CallbackQuery,
        recording_url: Option<String>,
    ) -> CallScript {
        let (Some(subscriber), Some(id)) = (
            self.current_subscriber(&query.subscriber).await,
            query.session.as_ref(),
        ) else {
            return hangup();
        };
        let now = self.now();
        match self
            .update(id, |session| {
                if session.subscriber() != &subscriber.number {
                    return Err(FlowError::SessionNotFound);
                }
                Ok(session.record_voicemail(recording_url.as_deref(), now))
            })
            .await
        {
            Ok((session, Some(Notice::Voicemail))) => {
                self.metrics.session_ended(session.state());
                if let Some(recording_url) = recording_url {
                    let voicemail = super::voicemail_event(&session, recording_url);
                    self.announce_ending(&subscriber, &session, voicemail, false)
                        .await;
                }
            }
            Ok((session, notice)) => self.announce(&subscriber, &session, notice).await,
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not record the voicemail");
            }
        }
        hangup()
    }

    /// The markup for what comes next.
    fn script_for(
        &self,
        routes: &ProviderRoutes,
        subscriber: &Subscriber,
        session_id: Option<&SessionId>,
        caller: &CallerInfo,
        next: Next<'_>,
    ) -> CallScript {
        let query = |attempt: DialAttempt| {
            CallbackQuery::new(&subscriber.number, session_id, caller, attempt)
        };
        let dial =
            |attempt: DialAttempt, targets: Vec<DialTarget>, screened: bool, timeout_secs: u32| {
                let query = query(attempt);
                CallScript(vec![Step::Dial(Dial {
                    targets,
                    caller_id: caller.number.number().cloned(),
                    timeout_secs,
                    action_url: self.callback_url(routes.dial_status, &query),
                    screen_url: screened.then(|| self.callback_url(routes.screen, &query)),
                    leg_events_url: Some(self.callback_url(routes.status, &query)),
                    record_url: (subscriber.record == Record::Answer)
                        .then(|| self.callback_url(routes.recording, &query)),
                    ring_tone: subscriber.ring_tone.clone(),
                })])
            };
        match next {
            Next::Ring(attempt, destinations) => {
                let screened = destinations.iter().any(|d| d.screening);
                let targets =
                    destinations
                        .iter()
                        .map(|d| DialTarget {
                            target: d.target.clone(),
                            pickup_url: Some(self.callback_url(
                                routes.screen,
                                &query(attempt).for_destination(&d.id),
                            )),
                            screened: d.screening,
                        })
                        .collect();
                // One Dial has one timeout: its longest-ringing destination's,
                // so that none is cut short.
                let timeout_secs = destinations
                    .iter()
                    .map(|d| d.ring_timeout_secs(subscriber))
                    .max()
                    .unwrap_or(subscriber.ring_timeout_secs);
                dial(attempt, targets, screened, timeout_secs)
            }
            Next::Fallback(attempt, Fallback::Voicemail) => CallScript(vec![
                Step::Say(self.templates.voicemail_greeting.clone()),
                Step::Record {
                    action_url: self.callback_url(routes.voicemail, &query(attempt)),
                    max_length_secs: super::expiry::LONGEST_VOICEMAIL_SECS,
                    transcribe_url: subscriber
                        .transcribe_voicemail
                        .then(|| self.callback_url(routes.transcription, &query(attempt))),
                },
            ]),
            Next::Fallback(attempt, Fallback::Phone { address }) => dial(
                attempt,
                vec![DialTarget {
                    target: Target::Phone(address.clone()),
                    pickup_url: None,
                    screened: false,
                }],
                false,
                subscriber.ring_timeout_secs,
            ),
            Next::Fallback(_, Fallback::Hangup) | Next::Done => hangup(),
        }
    }

    /// A leg of ours picked up and the provider fetched its whisper: record
    /// who answered; an unscreened leg is bridged at once (an empty answer),
    /// a screened one hears who is calling and must press 1.
    pub(crate) async fn leg_picked_up(
        &self,
        routes: &ProviderRoutes,
        screening: Screening,
        query: CallbackQuery,
    ) -> CallScript {
        let prompt = self.screening_prompt(&query);
        if screening == Screening::ConfirmKey {
            // The Dial asks for the key itself; the whisper only speaks.
            return CallScript(vec![Step::Say(prompt)]);
        }
        let ask = |query: &CallbackQuery| {
            CallScript(vec![
                Step::Gather {
                    action_url: self.callback_url(routes.screen_result, query),
                    num_digits: 1,
                    timeout_secs: SCREEN_TIMEOUT_SECS,
                    prompt: prompt.clone(),
                },
                // No key pressed: this leg hangs up and the hunt goes on.
                Step::Hangup,
            ])
        };
        let Some(destination_id) = query.destination.clone() else {
            // A whisper URL without a destination only ever screened.
            return ask(&query);
        };
        let Some(subscriber) = self.current_subscriber(&query.subscriber).await else {
            return hangup();
        };
        let Some(destination) = subscriber.destination(&destination_id) else {
            return hangup();
        };
        let screened = destination.screening;
        if let Some(id) = &query.session {
            let attempt = query.attempt();
            let now = self.now();
            let recorded = self
                .update(id, |session| {
                    if session.subscriber() != &subscriber.number {
                        return Err(FlowError::SessionNotFound);
                    }
                    if !session.may_bridge(&destination_id) {
                        return Err(FlowError::Refused(SessionError::Over));
                    }
                    Ok(session.leg_picked_up(attempt, &destination_id, screened, now))
                })
                .await;
            match recorded {
                Ok((session, notice)) => self.announce(&subscriber, &session, notice).await,
                // A leg picking up after the call was over bridges nothing.
                Err(FlowError::SessionNotFound | FlowError::Refused(SessionError::Over)) => {
                    return hangup();
                }
                Err(err) => {
                    tracing::error!(session_id = %id, error = format!("{err:#}"), "could not record who answered; bridging anyway")
                }
            }
        }
        if screened {
            ask(&query)
        } else {
            CallScript::default()
        }
    }

    /// The key a screened destination pressed: 1 takes the call (an empty
    /// answer bridges it), anything else hangs up that leg.
    pub(crate) async fn screen_result(
        &self,
        query: CallbackQuery,
        digits: Option<&str>,
    ) -> CallScript {
        let accepted = digits.map(str::trim) == Some("1");
        if let (Some(id), Some(destination)) = (&query.session, &query.destination)
            && let Some(subscriber) = self.current_subscriber(&query.subscriber).await
        {
            let attempt = query.attempt();
            let now = self.now();
            match self
                .update(id, |session| {
                    if session.subscriber() != &subscriber.number {
                        return Err(FlowError::SessionNotFound);
                    }
                    if !session.may_bridge(destination) {
                        return Err(FlowError::Refused(SessionError::Over));
                    }
                    Ok(session.record_screening(attempt, destination, accepted, now))
                })
                .await
            {
                Ok((session, notice)) => self.announce(&subscriber, &session, notice).await,
                Err(FlowError::SessionNotFound | FlowError::Refused(SessionError::Over)) => {
                    return hangup();
                }
                Err(err) => {
                    tracing::error!(session_id = %id, error = format!("{err:#}"), "could not record the screening result")
                }
            }
        }
        if accepted {
            CallScript::default()
        } else {
            hangup()
        }
    }

    /// A request to the status route: a leg event of one of our Dials
    /// (with our query), or the forwarded call's final status.
    /// `called`: the number the call reached (a forwarding number), when
    /// the report says.
    pub(crate) async fn status_reported(
        &self,
        query: Option<CallbackQuery>,
        call_id: Option<CallSid>,
        called: Option<PhoneNumber>,
        report: StatusReport,
    ) {
        match (report, query) {
            (StatusReport::Leg { to, bridged }, Some(query)) => {
                self.leg_reported(query, to, bridged).await
            }
            (StatusReport::CallEnded, _) => {
                if let Some(call_id) = call_id {
                    self.forwarded_call_ended(&call_id, called.as_ref()).await
                }
            }
            _ => {}
        }
    }

    /// A provider that reports leg events per Dial says a leg picked up or
    /// was bridged: find the destination by the target it dialed.
    async fn leg_reported(&self, query: CallbackQuery, to: Option<Target>, bridged: bool) {
        let (Some(id), Some(subscriber)) = (
            query.session.clone(),
            self.current_subscriber(&query.subscriber).await,
        ) else {
            return;
        };
        let attempt = query.attempt();
        let now = self.now();
        let result = self
            .update(&id, |session| {
                if session.subscriber() != &subscriber.number {
                    return Err(FlowError::SessionNotFound);
                }
                let plan = DialPlan::for_session(&subscriber, session);
                let ringing = ringing_in(&plan, session, attempt);
                let destination = match ringing.as_slice() {
                    [only] => Some(only.id.clone()),
                    several => several
                        .iter()
                        .find(|d| Some(&d.target) == to.as_ref())
                        .map(|d| d.id.clone()),
                };
                if bridged {
                    Ok(session.connect(attempt, destination.as_ref(), now))
                } else {
                    if let Some(destination) = &destination {
                        session.record_pickup(attempt, destination);
                    }
                    Ok(None)
                }
            })
            .await;
        match result {
            Ok((session, notice)) => self.announce(&subscriber, &session, notice).await,
            Err(err) => {
                tracing::warn!(session_id = %id, error = format!("{err:#}"), "could not record a leg event")
            }
        }
    }

    /// The forwarded call ended: a session with no outcome yet is missed
    /// (the caller hung up mid-hunt or at the greeting).
    async fn forwarded_call_ended(&self, call_id: &CallSid, called: Option<&PhoneNumber>) {
        // Its subscribers (the cache's, mostly) tell the store where to look.
        let subscribers: Vec<PhoneNumber> = match called {
            Some(to) => self
                .subscribers
                .for_forwarded_call(None, to)
                .await
                .subscribers
                .iter()
                .map(|s| s.number.clone())
                .collect(),
            None => Vec::new(),
        };
        let id = match self.store.session_for_call(call_id, &subscribers).await {
            Ok(Some(id)) => id,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(call_sid = %call_id, error = format!("{err:#}"), "could not look up the session of an ended call");
                return;
            }
        };
        let now = self.now();
        match self
            .update(&id, |session| Ok(session.forwarded_call_ended(now)))
            .await
        {
            Ok((session, Some(notice))) => {
                if let Some(subscriber) = self.current_subscriber(session.subscriber()).await {
                    self.announce(&subscriber, &session, Some(notice)).await;
                }
            }
            Ok((_, None)) | Err(FlowError::SessionNotFound) => {}
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not end the session of an ended call")
            }
        }
    }

    /// The claimed `session` goes where `route` says (a rule on the caller's
    /// verification decided it on arrival). When the store cannot take it,
    /// the call still goes there; the session's later callbacks follow the
    /// route it kept.
    async fn reroute(&self, session: Session, route: Route) -> Session {
        let id = session.id().clone();
        let held = session.clone();
        match self
            .update_from(Some(session), &id, |s| {
                s.reroute(route.clone());
                Ok(())
            })
            .await
        {
            Ok((session, ())) => session,
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not record the caller's new route; going there anyway");
                let mut session = held;
                session.reroute(route);
                session
            }
        }
    }

    /// A caller rule blocks the caller: the session ends `missed`.
    async fn end_blocked(&self, subscriber: &Subscriber, id: &SessionId) {
        let now = self.now();
        match self
            .update(id, |session| {
                Ok(session.end_missed(MissedReason::Blocked, now))
            })
            .await
        {
            Ok((session, notice)) => self.announce(subscriber, &session, notice).await,
            Err(err) => {
                tracing::error!(session_id = %id, error = format!("{err:#}"), "could not end the session of a blocked caller")
            }
        }
    }

    /// What a screened destination hears: who is calling (the name the
    /// provider gave, else the number digit by digit, then its STIR/SHAKEN
    /// verdict), for whom.
    fn screening_prompt(&self, query: &CallbackQuery) -> String {
        let CallerInfo { number, context } = query.caller();
        let mut caller = match (context.name, number) {
            (Some(name), _) => name.as_str().to_owned(),
            (None, Caller::Number(n)) => spoken_digits(n.as_str()),
            (None, Caller::Withheld) => "a withheld number".to_owned(),
        };
        if let Some(verdict) = context.verification.spoken() {
            caller.push_str(", ");
            caller.push_str(verdict);
        }
        self.templates
            .screening_prompt
            .replace("{subscriber}", &spoken_digits(query.subscriber.as_str()))
            .replace("{caller}", &caller)
    }

    /// A short message, then hang up: for calls that match no subscriber.
    pub(crate) fn unknown_call(&self) -> CallScript {
        CallScript(vec![
            Step::Say(self.templates.unknown_call.clone()),
            Step::Hangup,
        ])
    }
}

/// The first Dial of a forwarded call.
fn first_ring<'a>(plan: &DialPlan<'a>) -> Next<'a> {
    match plan.step(0) {
        PlanStep::Ring(destinations) => Next::Ring(DialAttempt::FIRST, destinations),
        PlanStep::Fallback(fallback) => Next::Fallback(DialAttempt::FIRST, fallback),
        PlanStep::Done => Next::Done,
    }
}

/// What follows `attempt`: the same step again without the destinations
/// that declined in it (when one just did and others are left), else the
/// next step.
fn next_after<'a>(plan: &DialPlan<'a>, session: &Session, attempt: DialAttempt) -> Next<'a> {
    if session.ended_on_decline(attempt) {
        let again = attempt.again();
        let rest = ringing_in(plan, session, again);
        if !rest.is_empty() {
            return Next::Ring(again, rest);
        }
    }
    next_step(plan, attempt)
}

/// The step after `attempt`'s.
fn next_step<'a>(plan: &DialPlan<'a>, attempt: DialAttempt) -> Next<'a> {
    let next = attempt.next_step();
    match plan.step(usize::from(next.step)) {
        PlanStep::Ring(destinations) => Next::Ring(next, destinations),
        PlanStep::Fallback(fallback) => Next::Fallback(next, fallback),
        PlanStep::Done => Next::Done,
    }
}

/// The destinations `attempt` rings: its step's, without those that
/// declined in an earlier round of that step.
fn ringing_in<'a>(
    plan: &DialPlan<'a>,
    session: &Session,
    attempt: DialAttempt,
) -> Vec<&'a Destination> {
    let PlanStep::Ring(destinations) = plan.step(usize::from(attempt.step)) else {
        return Vec::new();
    };
    let declined: Vec<_> = session.declined_before(attempt).collect();
    destinations
        .into_iter()
        .filter(|d| !declined.contains(&&d.id))
        .collect()
}

/// How long a screening destination has to press a key.
const SCREEN_TIMEOUT_SECS: u32 = 8;

fn hangup() -> CallScript {
    CallScript(vec![Step::Hangup])
}

/// Busy, for a blocked caller.
fn reject() -> CallScript {
    CallScript(vec![Step::Reject])
}
