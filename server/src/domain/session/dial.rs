//! The forwarded call in a session: the claim that took it, the Dials we
//! returned (each an attempt: a plan step and its round), how each ended,
//! and what became of every leg, in no provider's words.

use serde::{Deserialize, Serialize};

use super::{Instruction, MissedReason, Notice, Session, SessionState};
use crate::domain::caller_context::{CallerContext, CallerName, CallerVerification};
use crate::domain::ids::{CallSid, DestinationId};
use crate::domain::rules::Route;
use crate::domain::time::Timestamp;

/// One Dial we returned: the plan step it rings, and the round within that
/// step (a step rings again, without the destinations that declined, when a
/// screened leg declined in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(crate) struct DialAttempt {
    pub step: u16,
    pub round: u16,
}

impl DialAttempt {
    pub(crate) const FIRST: Self = Self { step: 0, round: 0 };

    /// The same step rung again.
    pub(crate) fn again(self) -> Self {
        Self {
            round: self.round.saturating_add(1),
            ..self
        }
    }

    /// The first round of the next step.
    pub(crate) fn next_step(self) -> Self {
        Self {
            step: self.step.saturating_add(1),
            round: 0,
        }
    }
}

/// How a Dial ended, as the provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DialStatus {
    /// A leg picked up. Not proof that a person took the call: a mobile's
    /// voicemail picking up, or a whisper that hung up, is `completed` too.
    Completed,
    Busy,
    NoAnswer,
    Failed,
    /// The caller hung up while it rang.
    Canceled,
}

/// A Dial's outcome: its status, and whether the provider says the caller
/// was bridged to a leg (`None` when it does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DialResult {
    pub status: DialStatus,
    pub bridged: Option<bool>,
}

/// What became of one leg of a Dial (docs/providers.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LegStatus {
    Ringing,
    /// Bridged to the caller: a person took the call.
    Connected,
    /// Picked up but did not take the call (screening without a 1).
    Declined,
    Busy,
    NoAnswer,
    Failed,
    /// A softphone (`client`) that ended busy, no-answer or failed within
    /// [`UNREACHABLE_WITHIN`] of being dialed: asleep or not registered,
    /// not a person declining (docs/api.md).
    Unreachable,
    /// Hung up by the provider (another leg won) or by the caller.
    Canceled,
}

impl From<DialStatus> for LegStatus {
    /// The status of the legs that did not pick up, for a Dial that ended so.
    fn from(status: DialStatus) -> Self {
        match status {
            DialStatus::Busy => Self::Busy,
            DialStatus::NoAnswer => Self::NoAnswer,
            DialStatus::Failed => Self::Failed,
            DialStatus::Completed | DialStatus::Canceled => Self::Canceled,
        }
    }
}

/// A `client` leg that ends unanswered this soon after it was dialed was
/// never going to ring anyone (a browser tab asleep, an app not
/// registered): `unreachable`.
pub(crate) const UNREACHABLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// When a Dial (not the first) was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DialStarted {
    pub attempt: DialAttempt,
    pub at: Timestamp,
}

/// One leg of a Dial: a destination rung in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leg {
    pub destination_id: DestinationId,
    pub status: LegStatus,
    /// The Dial it belongs to: makes a repeated callback recognisable.
    pub attempt: DialAttempt,
}

/// The forwarded call that took a session: set once, atomically, by the
/// store's claim. What the provider said of the caller travels with it, so
/// that keeping it costs the voice webhook no write of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub call_sid: CallSid,
    pub forwarded_at: Timestamp,
    /// The provider that carried the call (its routes' first segment):
    /// what is sent back to the caller goes through it.
    pub provider: Option<String>,
    pub caller_name: Option<CallerName>,
    pub caller_verification: CallerVerification,
}

impl Claim {
    /// A claim by call `call_sid` at `forwarded_at`, carried by `provider`,
    /// whose provider says `caller` of the caller.
    pub fn new(
        call_sid: CallSid,
        forwarded_at: Timestamp,
        provider: &str,
        caller: CallerContext,
    ) -> Self {
        Self {
            call_sid,
            forwarded_at,
            provider: Some(provider.to_owned()),
            caller_name: caller.name,
            caller_verification: caller.verification,
        }
    }
}

/// A leg that picked up: its screening result once it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pickup {
    pub attempt: DialAttempt,
    pub destination_id: DestinationId,
    /// The screened person pressed 1 (`Some(true)`), or something else or
    /// nothing (`Some(false)`); `None` until screening answered.
    pub accepted: Option<bool>,
}

/// A leg of the Dial whose outcome is being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialedLeg {
    pub destination_id: DestinationId,
    pub screened: bool,
    /// A softphone (`kind: client`).
    pub client: bool,
}

/// What a Dial's outcome did to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DialVerdict {
    /// A person took the call; the notice is `None` when that was already
    /// known (from the leg's whisper or screening).
    Connected(Option<Notice>),
    /// The leg that picked up did not take the call: ring the rest of the
    /// step again, then go on.
    Declined,
    /// Nobody picked up (busy, no answer, failed): go on.
    NotAnswered,
    /// The caller hung up: the session is missed.
    CallerGone(Option<Notice>),
    /// This outcome was recorded before (a retried callback): nothing changed.
    Replayed,
    /// The session had an outcome already: nothing changed.
    Over,
}

impl Session {
    /// Whether a forwarded call may still claim this session: the phone was
    /// told to reject and no forwarded call took it yet.
    pub fn awaits_forwarded_call(&self) -> bool {
        self.state == SessionState::Instructed
            && self.instruction == Instruction::Reject
            && self.call_sid.is_none()
    }

    /// Records the forwarded call that took the session (the store applies
    /// its atomic claim through this).
    pub fn apply_claim(&mut self, claim: Claim) {
        if !self.is_over() {
            self.state = SessionState::Forwarded;
        }
        self.call_sid = Some(claim.call_sid);
        self.timeline.forwarded_at = Some(claim.forwarded_at);
        self.provider = claim.provider;
        self.caller_name = claim.caller_name;
        self.caller_verification = claim.caller_verification;
    }

    /// Where the rules send the call now that its forwarded call arrived (a
    /// rule on its STIR/SHAKEN verdict), in place of the ring report's
    /// route: only before any Dial went out, while there is no outcome.
    /// Returns whether it changed.
    pub(crate) fn reroute(&mut self, route: Route) -> bool {
        if self.is_over() || !self.legs.is_empty() || self.route == route {
            return false;
        }
        self.route = route;
        true
    }

    /// Legs that ring in `attempt` (the Dial just returned).
    pub(crate) fn start_ringing<'a>(
        &mut self,
        attempt: DialAttempt,
        destinations: impl IntoIterator<Item = &'a DestinationId>,
    ) {
        if self.is_over() {
            return;
        }
        for id in destinations {
            if !self
                .legs
                .iter()
                .any(|l| l.attempt == attempt && l.destination_id == *id)
            {
                self.legs.push(Leg {
                    destination_id: id.clone(),
                    status: LegStatus::Ringing,
                    attempt,
                });
            }
        }
    }

    /// The Dial of `attempt` goes out now (the first one goes out with the
    /// claim, whose time is `forwarded_at`).
    pub(crate) fn dial_started(&mut self, attempt: DialAttempt, at: Timestamp) {
        if !self.is_over() {
            self.dial_started = Some(DialStarted { attempt, at });
        }
    }

    /// When the Dial of `attempt` went out, when known.
    fn dialed_at(&self, attempt: DialAttempt) -> Option<Timestamp> {
        match self.dial_started {
            Some(started) if started.attempt == attempt => Some(started.at),
            _ if attempt == DialAttempt::FIRST => self.timeline.forwarded_at,
            _ => None,
        }
    }

    /// Whether a leg to `destination` that picks up (or presses its key)
    /// may still be bridged: while the call has no outcome, or when it is
    /// this destination's own (a retried request gets the same answer).
    pub(crate) fn may_bridge(&self, destination: &DestinationId) -> bool {
        !self.is_over()
            || (self.state == SessionState::Connected
                && self.selected_destination.as_ref() == Some(destination))
    }

    /// The leg to `destination` in `attempt` picked up and ran its whisper:
    /// an unscreened leg is bridged now (the call is connected to it); a
    /// screened one waits for its key press.
    pub(crate) fn leg_picked_up(
        &mut self,
        attempt: DialAttempt,
        destination: &DestinationId,
        screened: bool,
        now: Timestamp,
    ) -> Option<Notice> {
        self.record_pickup(attempt, destination);
        if screened {
            return None;
        }
        self.connect(attempt, Some(destination), now)
    }

    /// A leg of `attempt` picked up (its whisper was fetched). The first
    /// pick-up of an attempt is the one the provider bridges or declines.
    pub(crate) fn record_pickup(&mut self, attempt: DialAttempt, destination: &DestinationId) {
        if self.is_over() || self.pickup(attempt, destination).is_some() {
            return;
        }
        self.pickups.push(Pickup {
            attempt,
            destination_id: destination.clone(),
            accepted: None,
        });
    }

    /// A screened leg's key press: 1 takes the call, anything else (or
    /// nothing) declines it. The first answer of a leg counts.
    pub(crate) fn record_screening(
        &mut self,
        attempt: DialAttempt,
        destination: &DestinationId,
        accepted: bool,
        now: Timestamp,
    ) -> Option<Notice> {
        self.record_pickup(attempt, destination);
        let pickup = self
            .pickups
            .iter_mut()
            .find(|p| p.attempt == attempt && p.destination_id == *destination)?;
        if pickup.accepted.is_some() {
            return None;
        }
        pickup.accepted = Some(accepted);
        if accepted {
            self.connect(attempt, Some(destination), now)
        } else {
            self.set_leg(attempt, destination, LegStatus::Declined);
            None
        }
    }

    /// A leg of `attempt` was bridged to the caller: the call is connected
    /// to `destination` (when known). `None` when it already had an outcome.
    pub(crate) fn connect(
        &mut self,
        attempt: DialAttempt,
        destination: Option<&DestinationId>,
        now: Timestamp,
    ) -> Option<Notice> {
        if self.is_over() {
            return None;
        }
        if let Some(id) = destination {
            self.selected_destination = Some(id.clone());
            self.set_leg(attempt, id, LegStatus::Connected);
        }
        self.finish_ringing(attempt, LegStatus::Canceled);
        self.end(SessionState::Connected, now);
        Some(Notice::Connected {
            destination: destination.cloned(),
        })
    }

    /// Records how the Dial of `attempt`, which rang `dialed`, ended.
    /// Answered means bridged: a leg that picked up without being bridged
    /// (a voicemail, a screened person who did not press 1) is `declined`.
    pub(crate) fn record_dial_result(
        &mut self,
        attempt: DialAttempt,
        dialed: &[DialedLeg],
        result: DialResult,
        now: Timestamp,
    ) -> DialVerdict {
        if self.is_over() {
            return DialVerdict::Over;
        }
        if self.dials_ended.contains(&attempt) {
            return DialVerdict::Replayed;
        }
        self.dials_ended.push(attempt);
        self.start_ringing(attempt, dialed.iter().map(|d| &d.destination_id));
        match result.status {
            DialStatus::Canceled => {
                self.finish_ringing(attempt, LegStatus::Canceled);
                DialVerdict::CallerGone(self.end_missed(MissedReason::CallerHungUp, now))
            }
            DialStatus::Busy | DialStatus::NoAnswer | DialStatus::Failed => {
                // A screened leg that picked up but never took the call
                // (Plivo hangs it up and rings the others on) declined it.
                let unconfirmed: Vec<DestinationId> = self
                    .pickups
                    .iter()
                    .filter(|p| p.attempt == attempt && p.accepted != Some(true))
                    .filter(|p| {
                        dialed
                            .iter()
                            .any(|d| d.destination_id == p.destination_id && d.screened)
                    })
                    .map(|p| p.destination_id.clone())
                    .collect();
                for id in &unconfirmed {
                    self.set_leg(attempt, id, LegStatus::Declined);
                }
                self.finish_ringing(attempt, result.status.into());
                // A softphone that said so this quickly was not there.
                let quickly = self
                    .dialed_at(attempt)
                    .is_some_and(|at| at.until(now) <= UNREACHABLE_WITHIN);
                if quickly {
                    for leg in self.legs.iter_mut().filter(|l| {
                        l.attempt == attempt
                            && matches!(
                                l.status,
                                LegStatus::Busy | LegStatus::NoAnswer | LegStatus::Failed
                            )
                            && dialed
                                .iter()
                                .any(|d| d.client && d.destination_id == l.destination_id)
                    }) {
                        leg.status = LegStatus::Unreachable;
                    }
                }
                DialVerdict::NotAnswered
            }
            DialStatus::Completed => {
                // Who picked up: the leg whose whisper ran, or the only one.
                let picked = self
                    .pickups
                    .iter()
                    .find(|p| p.attempt == attempt)
                    .map(|p| (p.destination_id.clone(), p.accepted))
                    .or_else(|| match dialed {
                        [only] => Some((only.destination_id.clone(), None)),
                        _ => None,
                    });
                let screened = |id: &DestinationId| {
                    dialed.iter().any(|d| d.destination_id == *id && d.screened)
                };
                let bridged = result.bridged.unwrap_or_else(|| match &picked {
                    Some((id, accepted)) if screened(id) => *accepted == Some(true),
                    _ => true,
                });
                if bridged {
                    return DialVerdict::Connected(self.connect(
                        attempt,
                        picked.as_ref().map(|(id, _)| id),
                        now,
                    ));
                }
                match picked {
                    Some((id, _)) => {
                        self.set_leg(attempt, &id, LegStatus::Declined);
                        self.finish_ringing(attempt, LegStatus::Canceled);
                        DialVerdict::Declined
                    }
                    // Nobody we know of picked up: nothing to leave out when
                    // ringing again, so go on as if nobody answered.
                    None => {
                        self.finish_ringing(attempt, LegStatus::Canceled);
                        DialVerdict::NotAnswered
                    }
                }
            }
        }
    }

    /// Whether `attempt`'s Dial ended because a leg declined: the provider
    /// hung up the others, which never had their full ring, so the same
    /// step rings them again. (When the others rang out, they had it.)
    pub(crate) fn ended_on_decline(&self, attempt: DialAttempt) -> bool {
        let mut legs = self.legs.iter().filter(|l| l.attempt == attempt);
        let declined = legs.clone().any(|l| l.status == LegStatus::Declined);
        declined && legs.all(|l| matches!(l.status, LegStatus::Declined | LegStatus::Canceled))
    }

    /// The destinations that declined in an earlier round of `attempt`'s
    /// step: that round rings without them.
    pub(crate) fn declined_before(
        &self,
        attempt: DialAttempt,
    ) -> impl Iterator<Item = &DestinationId> {
        self.legs
            .iter()
            .filter(move |l| {
                l.attempt.step == attempt.step
                    && l.attempt.round < attempt.round
                    && l.status == LegStatus::Declined
            })
            .map(|l| &l.destination_id)
    }

    fn pickup(&self, attempt: DialAttempt, destination: &DestinationId) -> Option<&Pickup> {
        self.pickups
            .iter()
            .find(|p| p.attempt == attempt && p.destination_id == *destination)
    }

    fn set_leg(&mut self, attempt: DialAttempt, destination: &DestinationId, status: LegStatus) {
        match self
            .legs
            .iter_mut()
            .find(|l| l.attempt == attempt && l.destination_id == *destination)
        {
            Some(leg) => leg.status = status,
            None => self.legs.push(Leg {
                destination_id: destination.clone(),
                status,
                attempt,
            }),
        }
    }

    /// Gives the legs of `attempt` still ringing their final `status`.
    fn finish_ringing(&mut self, attempt: DialAttempt, status: LegStatus) {
        for leg in self
            .legs
            .iter_mut()
            .filter(|l| l.attempt == attempt && l.status == LegStatus::Ringing)
        {
            leg.status = status;
        }
    }

    pub(super) fn finish_ringing_all(&mut self, status: LegStatus) {
        for leg in self
            .legs
            .iter_mut()
            .filter(|l| l.status == LegStatus::Ringing)
        {
            leg.status = status;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use super::UNREACHABLE_WITHIN;

    #[test]
    fn the_route_changes_on_arrival_only_before_the_first_dial() {
        let mut s = forwarded();
        assert!(s.reroute(Route::Voicemail));
        assert_eq!(s.route(), &Route::Voicemail);
        assert!(!s.reroute(Route::Voicemail), "no change");
        let mut dialed = forwarded();
        dialed.start_ringing(FIRST, [&id("desk")]);
        assert!(!dialed.reroute(Route::Voicemail), "a Dial went out");
        let mut over = forwarded();
        over.end_missed(MissedReason::CallerHungUp, t(5));
        assert!(!over.reroute(Route::Block));
        assert_eq!(over.route(), &Route::default());
    }

    #[test]
    fn a_claim_keeps_what_the_provider_said_of_the_caller() {
        use crate::domain::caller_context::{CallerContext, CallerName, CallerVerification};
        let mut s = new_session(Mode::Auto);
        s.instruct(Instruction::Reject, t(1));
        assert_eq!(s.caller_verification(), CallerVerification::None);
        s.apply_claim(Claim::new(
            CallSid::parse("CA9").unwrap(),
            t(2),
            "telnyx",
            CallerContext {
                name: CallerName::parse("JANE DOE"),
                verification: CallerVerification::Failed,
            },
        ));
        assert_eq!(s.caller_name().map(CallerName::as_str), Some("JANE DOE"));
        assert_eq!(s.caller_verification(), CallerVerification::Failed);
        // Kept through the store: store::stored's tests.
    }

    #[test]
    fn attempts_move_by_round_and_by_step() {
        let a = DialAttempt::FIRST.again();
        assert_eq!(a, DialAttempt { step: 0, round: 1 });
        assert_eq!(a.next_step(), DialAttempt { step: 1, round: 0 });
    }

    #[test]
    fn leg_statuses_serialise_as_the_contract_names_them() {
        assert_eq!(
            serde_json::to_value(LegStatus::NoAnswer).unwrap(),
            "no-answer"
        );
        assert_eq!(
            serde_json::to_value(LegStatus::Declined).unwrap(),
            "declined"
        );
    }

    /// `(id, client)` legs, none screened.
    fn softphones(ids: &[(&str, bool)]) -> Vec<DialedLeg> {
        ids.iter()
            .map(|(d, client)| DialedLeg {
                destination_id: id(d),
                screened: false,
                client: *client,
            })
            .collect()
    }

    #[test]
    fn a_softphone_that_fails_within_two_seconds_of_its_dial_is_unreachable() {
        // The first Dial goes out with the claim (forwarded at t(2)).
        for status in [DialStatus::Busy, DialStatus::NoAnswer, DialStatus::Failed] {
            let mut s = forwarded();
            let verdict = s.record_dial_result(
                FIRST,
                &softphones(&[("laptop", true)]),
                result(status, None),
                t(2).after(UNREACHABLE_WITHIN),
            );
            assert_eq!(verdict, DialVerdict::NotAnswered, "the hunt goes on");
            assert_eq!(legs(&s), [("laptop", LegStatus::Unreachable, FIRST)]);
        }
        assert_eq!(
            serde_json::to_value(LegStatus::Unreachable).unwrap(),
            "unreachable"
        );
    }

    #[test]
    fn a_softphone_that_rang_longer_or_a_phone_keeps_the_providers_status() {
        let mut s = forwarded();
        s.record_dial_result(
            FIRST,
            &softphones(&[("laptop", true)]),
            result(DialStatus::NoAnswer, None),
            t(2).after(UNREACHABLE_WITHIN + std::time::Duration::from_millis(1)),
        );
        assert_eq!(legs(&s), [("laptop", LegStatus::NoAnswer, FIRST)]);

        let mut s = forwarded();
        s.record_dial_result(
            FIRST,
            &softphones(&[("desk", false)]),
            result(DialStatus::Busy, None),
            t(3),
        );
        assert_eq!(legs(&s), [("desk", LegStatus::Busy, FIRST)]);
    }

    #[test]
    fn a_later_dial_is_timed_from_when_it_went_out() {
        let mut s = forwarded();
        let next = FIRST.next_step();
        s.start_ringing(next, [&id("laptop")]);
        s.dial_started(next, t(30));
        s.record_dial_result(
            next,
            &softphones(&[("laptop", true)]),
            result(DialStatus::Busy, None),
            t(31),
        );
        assert_eq!(legs(&s), [("laptop", LegStatus::Unreachable, next)]);
        // A Dial whose start is unknown is never taken for unreachable.
        let later = next.next_step();
        s.record_dial_result(
            later,
            &softphones(&[("laptop", true)]),
            result(DialStatus::Busy, None),
            t(32),
        );
        assert_eq!(legs(&s)[1], ("laptop", LegStatus::Busy, later));
    }

    #[test]
    fn an_unscreened_leg_that_picks_up_connects_and_a_screened_one_waits_for_its_key() {
        let mut s = forwarded();
        s.start_ringing(FIRST, [&id("cell"), &id("laptop")]);
        assert_eq!(s.leg_picked_up(FIRST, &id("cell"), true, t(5)), None);
        assert!(!s.is_over(), "the screened leg has not pressed 1");
        assert_eq!(
            s.leg_picked_up(FIRST, &id("laptop"), false, t(6)),
            Some(Notice::Connected {
                destination: Some(id("laptop"))
            })
        );
        assert_eq!(s.selected_destination(), Some(&id("laptop")));
        assert!(
            s.may_bridge(&id("laptop")),
            "its retried request bridges again"
        );
        assert!(!s.may_bridge(&id("cell")));
    }

    #[test]
    fn a_bridged_leg_connects_and_names_its_destination() {
        let mut s = forwarded();
        s.start_ringing(FIRST, [&id("desk")]);
        let verdict = s.record_dial_result(
            FIRST,
            &dialed(&[("desk", false)]),
            result(DialStatus::Completed, Some(true)),
            t(10),
        );
        assert_eq!(
            verdict,
            DialVerdict::Connected(Some(Notice::Connected {
                destination: Some(id("desk"))
            }))
        );
        assert_eq!(s.state(), SessionState::Connected);
        assert_eq!(s.selected_destination(), Some(&id("desk")));
        assert_eq!(legs(&s), [("desk", LegStatus::Connected, FIRST)]);
        assert_eq!(s.timeline().connected_at, Some(t(10)));
    }

    #[test]
    fn a_screened_leg_left_unconfirmed_when_the_others_rang_out_is_declined_and_nobody_rings_again()
    {
        // Plivo's confirmKey: the mobile's voicemail picked up and pressed
        // nothing; Plivo hung it up, rang the laptop on, and the Dial timed out.
        let mut s = forwarded();
        let group = dialed(&[("cell", true), ("laptop", false)]);
        s.start_ringing(FIRST, [&id("cell"), &id("laptop")]);
        s.record_pickup(FIRST, &id("cell"));
        let verdict =
            s.record_dial_result(FIRST, &group, result(DialStatus::NoAnswer, None), t(30));
        assert_eq!(verdict, DialVerdict::NotAnswered);
        assert_eq!(
            legs(&s),
            [
                ("cell", LegStatus::Declined, FIRST),
                ("laptop", LegStatus::NoAnswer, FIRST)
            ]
        );
        assert!(!s.ended_on_decline(FIRST), "the laptop had its full ring");
    }

    #[test]
    fn completed_without_a_bridge_is_declined_and_the_rest_ring_again() {
        let mut s = forwarded();
        let group = dialed(&[("cell", true), ("laptop", false)]);
        s.start_ringing(FIRST, [&id("cell"), &id("laptop")]);
        // The mobile's voicemail picked up first: its whisper ran, no key.
        s.record_pickup(FIRST, &id("cell"));
        let verdict = s.record_dial_result(
            FIRST,
            &group,
            result(DialStatus::Completed, Some(false)),
            t(10),
        );
        assert_eq!(verdict, DialVerdict::Declined);
        assert!(!s.is_over());
        assert!(s.ended_on_decline(FIRST));
        assert_eq!(
            legs(&s),
            [
                ("cell", LegStatus::Declined, FIRST),
                ("laptop", LegStatus::Canceled, FIRST)
            ]
        );
        let again = FIRST.again();
        assert_eq!(s.declined_before(again).collect::<Vec<_>>(), [&id("cell")]);
        assert_eq!(s.declined_before(FIRST).count(), 0);
    }

    #[test]
    fn without_a_bridged_flag_a_screened_leg_needs_its_key_press() {
        let screened = dialed(&[("desk", true)]);
        let completed = result(DialStatus::Completed, None);

        let mut pressed_nothing = forwarded();
        pressed_nothing.record_pickup(FIRST, &id("desk"));
        assert_eq!(
            pressed_nothing.record_dial_result(FIRST, &screened, completed, t(9)),
            DialVerdict::Declined
        );

        let mut pressed_two = forwarded();
        assert_eq!(
            pressed_two.record_screening(FIRST, &id("desk"), false, t(8)),
            None
        );
        assert_eq!(
            pressed_two.record_dial_result(FIRST, &screened, completed, t(9)),
            DialVerdict::Declined
        );

        let mut unscreened = forwarded();
        assert!(matches!(
            unscreened.record_dial_result(FIRST, &dialed(&[("desk", false)]), completed, t(9)),
            DialVerdict::Connected(Some(_))
        ));
    }

    #[test]
    fn a_key_press_of_1_connects_at_once_and_the_dial_end_adds_nothing() {
        let mut s = forwarded();
        assert_eq!(
            s.record_screening(FIRST, &id("desk"), true, t(8)),
            Some(Notice::Connected {
                destination: Some(id("desk"))
            })
        );
        assert_eq!(s.state(), SessionState::Connected);
        assert_eq!(
            s.record_screening(FIRST, &id("desk"), true, t(9)),
            None,
            "once"
        );
        assert_eq!(
            s.record_dial_result(
                FIRST,
                &dialed(&[("desk", true)]),
                result(DialStatus::Completed, Some(true)),
                t(60)
            ),
            DialVerdict::Over
        );
        assert_eq!(s.timeline().connected_at, Some(t(8)));
    }

    #[test]
    fn a_repeated_dial_outcome_changes_nothing() {
        let mut s = forwarded();
        let group = dialed(&[("desk", false)]);
        let busy = result(DialStatus::Busy, None);
        assert_eq!(
            s.record_dial_result(FIRST, &group, busy, t(5)),
            DialVerdict::NotAnswered
        );
        let before = s.clone();
        assert_eq!(
            s.record_dial_result(FIRST, &group, busy, t(6)),
            DialVerdict::Replayed
        );
        assert_eq!(
            s.record_dial_result(FIRST, &group, result(DialStatus::NoAnswer, None), t(6)),
            DialVerdict::Replayed,
            "a different status for the same Dial is a replay too"
        );
        assert_eq!(s, before);
        assert_eq!(legs(&s), [("desk", LegStatus::Busy, FIRST)]);
    }

    #[test]
    fn a_claim_moves_the_session_to_forwarded() {
        // (That it survives the store: `store::stored`'s tests.)
        let s = forwarded();
        assert!(!s.awaits_forwarded_call());
        assert_eq!(s.state(), SessionState::Forwarded);
    }
}
