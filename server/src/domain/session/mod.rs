//! A session: one ringing call on a subscriber's phone, from the ring report
//! to the forwarded call's outcome (docs/api.md). The state machine lives
//! here: `Session`'s fields are private, and each method checks the current
//! state and says what changed (a [`Notice`] the flow turns into events).
//! By concern: `id` the session's id and shard, `offers` pick mode's
//! offers, `dial` the forwarded call's claim, Dials and legs, `outcome`
//! how a session ends.

mod dial;
mod id;
mod offers;
mod outcome;

use serde::{Deserialize, Serialize};

pub use self::dial::Claim;
pub(crate) use self::dial::Pickup;
pub(crate) use self::dial::{
    DialAttempt, DialResult, DialStarted, DialStatus, DialVerdict, DialedLeg, Leg, LegStatus,
};
pub use self::id::{SessionId, Shard};
pub(crate) use self::offers::{Offer, OfferAnswered, OfferKey, OfferResponse};
pub(crate) use self::outcome::TextClaim;
pub use self::outcome::{
    CancelReason, MissedReason, TextOutcome, TextState, Transcript, TranscriptionStatus,
};
use super::caller_context::{CallerContext, CallerName, CallerVerification};
use super::ids::{CallSid, DestinationId};
use super::phone::{Caller, PhoneNumber};
use super::rules::Route;
use super::subscriber::Mode;
use super::time::Timestamp;

/// Where a session is: `ringing` → `notified` → `instructed` → `forwarded` →
/// `connected` | `voicemail` | `missed`; or `cancelled` / `expired` before
/// `forwarded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Ringing,
    Notified,
    Instructed,
    Forwarded,
    Connected,
    Voicemail,
    Missed,
    Cancelled,
    Expired,
}

impl SessionState {
    /// Whether the session has reached an outcome and takes no more changes.
    pub(crate) fn is_over(self) -> bool {
        matches!(
            self,
            Self::Connected | Self::Voicemail | Self::Missed | Self::Cancelled | Self::Expired
        )
    }
}

/// When the session reached each step; `null` until reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timeline {
    #[schema(required = true)]
    pub reported_at: Option<Timestamp>,
    #[schema(required = true)]
    pub notified_at: Option<Timestamp>,
    #[schema(required = true)]
    pub instructed_at: Option<Timestamp>,
    #[schema(required = true)]
    pub forwarded_at: Option<Timestamp>,
    #[schema(required = true)]
    pub connected_at: Option<Timestamp>,
    #[schema(required = true)]
    pub ended_at: Option<Timestamp>,
}

/// What the phone should do with the ringing call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Instruction {
    /// Not decided yet: keep ringing and ask again.
    Wait,
    /// Decline the call, so that the carrier forwards it to us.
    Reject,
    /// Let it ring: nothing is forwarded on purpose.
    Ignore,
}

/// What a change means for the destinations: the flow turns each into the
/// event it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Connected {
        destination: Option<DestinationId>,
    },
    Missed(MissedReason),
    Cancelled(CancelReason),
    Voicemail,
    /// A destination accepted in pick mode: the others' offers are closed.
    Taken {
        winner: DestinationId,
    },
}

/// A change the session refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session is over")]
    Over,
    #[error("the call was already forwarded")]
    AlreadyForwarded,
    #[error("another destination took the call")]
    AlreadyTaken,
    #[error("this destination already answered the offer")]
    AlreadyAnswered,
    #[error("no such offer")]
    NoSuchOffer,
}

/// One ringing call on a subscriber's phone, from the ring report to its
/// outcome. Its fields change only through the methods below, each of which
/// checks the current state and says what changed. How a store keeps it is
/// the store's own type (`store::stored::StoredSession`), built from
/// [`Session::parts`] and read back through [`Session::from_parts`], so that
/// renaming a field here never changes what a store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    id: SessionId,
    subscriber: PhoneNumber,
    caller: Caller,
    state: SessionState,
    mode: Mode,
    instruction: Instruction,
    selected_destination: Option<DestinationId>,
    call_sid: Option<CallSid>,
    timeline: Timeline,
    legs: Vec<Leg>,
    /// The phone app's own id for the call, which makes ring reports retryable.
    device_call_id: Option<String>,
    offers: Vec<Offer>,
    /// The phone said it did reject the call.
    phone_rejected: bool,
    /// In pick mode, when waiting for an accept ends: then the instruction
    /// becomes `ignore`.
    wait_until: Option<Timestamp>,
    pickups: Vec<Pickup>,
    /// The Dials whose outcome was recorded, so that a retried callback
    /// changes nothing.
    dials_ended: Vec<DialAttempt>,
    /// Where the subscriber's rules sent the call when it began (every
    /// destination for most sessions).
    route: Route,
    /// The recordings of the call's legs announced so far (by URL), so that
    /// a retried recording callback announces nothing twice.
    recordings: Vec<String>,
    /// The provider that carried the forwarded call (from its claim).
    provider: Option<String>,
    /// What that provider said of the caller (from the claim).
    caller_name: Option<CallerName>,
    caller_verification: CallerVerification,
    /// Where the provider keeps the voicemail the caller left.
    voicemail_url: Option<String>,
    /// The provider's transcription of that voicemail, once it came.
    transcription: Option<Transcript>,
    /// The text back to a missed caller: claimed (`sending`) by the one
    /// write that may send it, then what came of it.
    missed_call_text: Option<TextState>,
    /// When the Dial after the first one was returned (the first goes out
    /// with the claim, at `forwarded_at`): a softphone that fails this soon
    /// after was not there.
    dial_started: Option<DialStarted>,
    /// How many writes the store had when this copy was read; a write
    /// based on an older copy is refused (see `Store::update_session`).
    version: u64,
}

/// A session's data, field by field, as a store writes it and reads it
/// back: [`Session::parts`] lends them, [`Session::from_parts`] takes them.
/// The store decides how each is written; the domain what they mean.
pub(crate) struct SessionParts<'a> {
    pub id: &'a SessionId,
    pub subscriber: &'a PhoneNumber,
    pub caller: &'a Caller,
    pub state: SessionState,
    pub mode: Mode,
    pub instruction: Instruction,
    pub selected_destination: Option<&'a DestinationId>,
    pub call_sid: Option<&'a CallSid>,
    pub timeline: &'a Timeline,
    pub legs: &'a [Leg],
    pub device_call_id: Option<&'a str>,
    pub offers: &'a [Offer],
    pub phone_rejected: bool,
    pub wait_until: Option<Timestamp>,
    pub pickups: &'a [Pickup],
    pub dials_ended: &'a [DialAttempt],
    pub route: &'a Route,
    pub recordings: &'a [String],
    pub provider: Option<&'a str>,
    pub caller_name: Option<&'a CallerName>,
    pub caller_verification: CallerVerification,
    pub voicemail_url: Option<&'a str>,
    pub transcription: Option<&'a Transcript>,
    pub missed_call_text: Option<TextState>,
    pub dial_started: Option<DialStarted>,
}

/// What [`Session::from_parts`] builds a session from: [`SessionParts`],
/// owned.
pub(crate) struct OwnedSessionParts {
    pub id: SessionId,
    pub subscriber: PhoneNumber,
    pub caller: Caller,
    pub state: SessionState,
    pub mode: Mode,
    pub instruction: Instruction,
    pub selected_destination: Option<DestinationId>,
    pub call_sid: Option<CallSid>,
    pub timeline: Timeline,
    pub legs: Vec<Leg>,
    pub device_call_id: Option<String>,
    pub offers: Vec<Offer>,
    pub phone_rejected: bool,
    pub wait_until: Option<Timestamp>,
    pub pickups: Vec<Pickup>,
    pub dials_ended: Vec<DialAttempt>,
    pub route: Route,
    pub recordings: Vec<String>,
    pub provider: Option<String>,
    pub caller_name: Option<CallerName>,
    pub caller_verification: CallerVerification,
    pub voicemail_url: Option<String>,
    pub transcription: Option<Transcript>,
    pub missed_call_text: Option<TextState>,
    pub dial_started: Option<DialStarted>,
}

impl Session {
    /// A session for a ring report that just arrived. In pick mode, `offers`
    /// wait for an answer until `wait_until`.
    pub fn ringing(
        subscriber: PhoneNumber,
        caller: Caller,
        mode: Mode,
        device_call_id: Option<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: SessionId::generate_for(&subscriber),
            subscriber,
            caller,
            state: SessionState::Ringing,
            mode,
            instruction: Instruction::Wait,
            selected_destination: None,
            call_sid: None,
            timeline: Timeline {
                reported_at: Some(now),
                ..Timeline::default()
            },
            legs: Vec::new(),
            device_call_id,
            offers: Vec::new(),
            phone_rejected: false,
            wait_until: None,
            pickups: Vec::new(),
            dials_ended: Vec::new(),
            route: Route::default(),
            recordings: Vec::new(),
            provider: None,
            caller_name: None,
            caller_verification: CallerVerification::None,
            voicemail_url: None,
            transcription: None,
            missed_call_text: None,
            dial_started: None,
            version: 0,
        }
    }

    /// Where the subscriber's rules sent the call (see
    /// [`Subscriber::route`](crate::domain::subscriber::Subscriber::route)).
    pub(crate) fn with_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// A session for a forwarded call that matched no ring report (the phone
    /// was really busy or off): it starts forwarded.
    pub fn forwarded_without_report(
        subscriber: PhoneNumber,
        caller: Caller,
        route: Route,
        claim: Claim,
    ) -> Self {
        let mut session = Self::ringing(subscriber, caller, Mode::Auto, None, claim.forwarded_at)
            .with_route(route);
        session.timeline.reported_at = None;
        session.instruction = Instruction::Reject;
        session.apply_claim(claim);
        session
    }

    pub fn id(&self) -> &SessionId {
        &self.id
    }

    pub fn subscriber(&self) -> &PhoneNumber {
        &self.subscriber
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The caller's name, as the forwarded call's provider gave it.
    pub fn caller_name(&self) -> Option<&CallerName> {
        self.caller_name.as_ref()
    }

    /// The forwarded call's STIR/SHAKEN verdict (`none` until it came).
    pub fn caller_verification(&self) -> CallerVerification {
        self.caller_verification
    }

    /// Where the provider keeps the voicemail the caller left.
    pub(crate) fn voicemail_url(&self) -> Option<&str> {
        self.voicemail_url.as_deref()
    }

    /// The provider that carried the forwarded call (its name in
    /// `PROVIDERS`).
    pub(crate) fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// What came of the text back to the caller; `None` while it is being
    /// sent, or when there is none.
    pub fn missed_call_text(&self) -> Option<TextOutcome> {
        self.missed_call_text.and_then(TextState::outcome)
    }

    /// The voicemail's transcription, once the provider sent it.
    pub fn transcription(&self) -> Option<&Transcript> {
        self.transcription.as_ref()
    }

    /// What the forwarded call's provider said of the caller.
    pub(crate) fn caller_context(&self) -> CallerContext {
        CallerContext {
            name: self.caller_name.clone(),
            verification: self.caller_verification,
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    pub(crate) fn route(&self) -> &Route {
        &self.route
    }

    pub(crate) fn instruction(&self) -> Instruction {
        self.instruction
    }

    /// The destination that accepted (pick mode), then the one that took
    /// the call.
    pub(crate) fn selected_destination(&self) -> Option<&DestinationId> {
        self.selected_destination.as_ref()
    }

    pub fn call_sid(&self) -> Option<&CallSid> {
        self.call_sid.as_ref()
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    pub(crate) fn legs(&self) -> &[Leg] {
        &self.legs
    }

    pub(crate) fn device_call_id(&self) -> Option<&str> {
        self.device_call_id.as_deref()
    }

    pub(crate) fn wait_until(&self) -> Option<Timestamp> {
        self.wait_until
    }

    pub(crate) fn is_over(&self) -> bool {
        self.state.is_over()
    }

    /// When the call began, in ms since the epoch: the ring report, or the
    /// forwarded call for one no report announced. Lists of sessions are
    /// ordered by it (then by id); it never changes.
    pub fn began_at_millis(&self) -> i64 {
        self.timeline
            .reported_at
            .or(self.timeline.forwarded_at)
            .map_or(0, Timestamp::unix_millis)
    }

    /// The store's write count when this copy was read.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// For stores: the write count of the copy they hand out.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    /// For stores: every field, to write.
    pub(crate) fn parts(&self) -> SessionParts<'_> {
        SessionParts {
            id: &self.id,
            subscriber: &self.subscriber,
            caller: &self.caller,
            state: self.state,
            mode: self.mode,
            instruction: self.instruction,
            selected_destination: self.selected_destination.as_ref(),
            call_sid: self.call_sid.as_ref(),
            timeline: &self.timeline,
            legs: &self.legs,
            device_call_id: self.device_call_id.as_deref(),
            offers: &self.offers,
            phone_rejected: self.phone_rejected,
            wait_until: self.wait_until,
            pickups: &self.pickups,
            dials_ended: &self.dials_ended,
            route: &self.route,
            recordings: &self.recordings,
            provider: self.provider.as_deref(),
            caller_name: self.caller_name.as_ref(),
            caller_verification: self.caller_verification,
            voicemail_url: self.voicemail_url.as_deref(),
            transcription: self.transcription.as_ref(),
            missed_call_text: self.missed_call_text,
            dial_started: self.dial_started,
        }
    }

    /// For stores: a session as written from [`Session::parts`], at
    /// version 0 (the store sets it).
    pub(crate) fn from_parts(parts: OwnedSessionParts) -> Self {
        let OwnedSessionParts {
            id,
            subscriber,
            caller,
            state,
            mode,
            instruction,
            selected_destination,
            call_sid,
            timeline,
            legs,
            device_call_id,
            offers,
            phone_rejected,
            wait_until,
            pickups,
            dials_ended,
            route,
            recordings,
            provider,
            caller_name,
            caller_verification,
            voicemail_url,
            transcription,
            missed_call_text,
            dial_started,
        } = parts;
        Self {
            id,
            subscriber,
            caller,
            state,
            mode,
            instruction,
            selected_destination,
            call_sid,
            timeline,
            legs,
            device_call_id,
            offers,
            phone_rejected,
            wait_until,
            pickups,
            dials_ended,
            route,
            recordings,
            provider,
            caller_name,
            caller_verification,
            voicemail_url,
            transcription,
            missed_call_text,
            dial_started,
            version: 0,
        }
    }

    /// Every destination was notified.
    pub fn notified(&mut self, now: Timestamp) {
        if self.is_over() {
            return;
        }
        self.timeline.notified_at.get_or_insert(now);
        if self.state == SessionState::Ringing {
            self.state = SessionState::Notified;
        }
    }

    /// Gives the phone its instruction, once: only a session still waiting
    /// for one takes it. Returns whether it did.
    pub fn instruct(&mut self, instruction: Instruction, now: Timestamp) -> bool {
        if self.is_over()
            || self.instruction != Instruction::Wait
            || instruction == Instruction::Wait
        {
            return false;
        }
        self.instruction = instruction;
        self.timeline.instructed_at = Some(now);
        self.state = SessionState::Instructed;
        true
    }

    /// The phone says it rejected the call.
    pub(crate) fn record_phone_rejected(&mut self) -> Result<(), SessionError> {
        if self.is_over() {
            return Err(SessionError::Over);
        }
        self.phone_rejected = true;
        Ok(())
    }

    /// Moves to an outcome, stamping `ended_at` (and `connected_at`). A
    /// phone still waiting for an instruction is told to let the call be.
    fn end(&mut self, outcome: SessionState, now: Timestamp) {
        debug_assert!(outcome.is_over());
        if self.instruction == Instruction::Wait {
            self.instruction = Instruction::Ignore;
        }
        if outcome == SessionState::Connected {
            self.timeline.connected_at = Some(now);
        }
        self.timeline.ended_at = Some(now);
        tracing::info!(session_id = %self.id, from = ?self.state, to = ?outcome, "session ended");
        self.state = outcome;
    }
}

/// What the tests of every concern build sessions from.
#[cfg(test)]
mod fixtures {
    use super::*;
    use crate::domain::phone::Region;

    pub(super) fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000).unwrap()
    }

    pub(super) fn id(s: &str) -> DestinationId {
        DestinationId::parse(s).unwrap()
    }

    pub(super) fn new_session(mode: Mode) -> Session {
        let region = Region::default();
        Session::ringing(
            PhoneNumber::parse("+12025550199", region).unwrap(),
            Caller::parse(Some("+12025550302"), region),
            mode,
            None,
            t(0),
        )
    }

    /// A session whose phone was told to reject, then claimed by a forwarded call.
    pub(super) fn forwarded() -> Session {
        let mut s = new_session(Mode::Auto);
        s.notified(t(1));
        assert!(s.instruct(Instruction::Reject, t(1)));
        s.apply_claim(Claim::new(
            CallSid::parse("CA1").unwrap(),
            t(2),
            "twilio",
            CallerContext::default(),
        ));
        assert_eq!(s.state(), SessionState::Forwarded);
        s
    }

    pub(super) fn legs(s: &Session) -> Vec<(&str, LegStatus, DialAttempt)> {
        s.legs()
            .iter()
            .map(|l| (l.destination_id.as_str(), l.status, l.attempt))
            .collect()
    }

    pub(super) fn dialed(ids: &[(&str, bool)]) -> Vec<DialedLeg> {
        ids.iter()
            .map(|(d, screened)| DialedLeg {
                destination_id: id(d),
                screened: *screened,
                client: false,
            })
            .collect()
    }

    pub(super) const FIRST: DialAttempt = DialAttempt::FIRST;

    pub(super) fn result(status: DialStatus, bridged: Option<bool>) -> DialResult {
        DialResult { status, bridged }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::domain::credentials::TokenHash;

    #[test]
    fn only_outcomes_are_over() {
        assert!(!SessionState::Instructed.is_over());
        assert!(!SessionState::Forwarded.is_over());
        assert!(SessionState::Cancelled.is_over());
        assert!(SessionState::Connected.is_over());
    }

    #[test]
    fn a_ring_report_is_notified_then_instructed_once() {
        let mut s = new_session(Mode::Auto);
        assert_eq!(s.state(), SessionState::Ringing);
        s.notified(t(1));
        assert_eq!(s.state(), SessionState::Notified);
        assert!(
            !s.instruct(Instruction::Wait, t(1)),
            "wait is no instruction"
        );
        assert!(s.instruct(Instruction::Reject, t(2)));
        assert_eq!(
            (s.state(), s.instruction()),
            (SessionState::Instructed, Instruction::Reject)
        );
        assert_eq!(s.timeline().instructed_at, Some(t(2)));
        assert!(
            !s.instruct(Instruction::Ignore, t(3)),
            "an instruction is given once"
        );
        assert!(s.awaits_forwarded_call());
    }

    #[test]
    fn a_session_that_is_over_refuses_every_change() {
        let offer = Offer {
            destination_id: id("desk"),
            capability: TokenHash::of("desk"),
            response: None,
        };
        let mut s = new_session(Mode::Pick).with_offers(vec![offer], Some(t(15)));
        s.notified(t(1));
        s.cancel(CancelReason::AnsweredOnPhone, t(2)).unwrap();
        let ended = s.clone();

        s.notified(t(3));
        assert!(!s.instruct(Instruction::Reject, t(3)));
        assert_eq!(s.record_phone_rejected(), Err(SessionError::Over));
        assert_eq!(
            s.answer_offer(
                OfferKey::Destination(&id("desk")),
                OfferResponse::Accepted,
                t(3)
            ),
            Err(SessionError::Over)
        );
        assert_eq!(
            s.cancel(CancelReason::CallerHungUp, t(3)),
            Err(SessionError::Over)
        );
        s.start_ringing(FIRST, [&id("desk")]);
        s.record_pickup(FIRST, &id("desk"));
        assert_eq!(s.record_screening(FIRST, &id("desk"), true, t(3)), None);
        assert_eq!(s.connect(FIRST, Some(&id("desk")), t(3)), None);
        assert_eq!(
            s.record_dial_result(
                FIRST,
                &dialed(&[("desk", false)]),
                result(DialStatus::Completed, Some(true)),
                t(3)
            ),
            DialVerdict::Over
        );
        assert_eq!(s.end_missed(MissedReason::NobodyAnswered, t(3)), None);
        assert_eq!(
            s.record_voicemail(Some("https://r.example.com/1"), t(3)),
            None
        );
        assert_eq!(s.forwarded_call_ended(t(3)), None);
        assert_eq!(s.expire_unforwarded(t(3)), None);
        assert_eq!(s.expire_idle(t(3)), None);
        assert!(!s.may_bridge(&id("desk")));
        assert_eq!(s, ended, "nothing changed");
    }
}
