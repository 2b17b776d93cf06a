//! How a session ends: cancelled before it was forwarded, expired when no
//! forwarded call came or nothing was heard of it, missed, voicemail; and
//! the recordings announced once the call is over.

use serde::{Deserialize, Serialize};

use super::{LegStatus, Notice, Session, SessionError, SessionState};
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::time::Timestamp;

/// Why a session ended `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The subscriber took the call on the phone itself.
    AnsweredOnPhone,
    /// The caller hung up before the call was forwarded.
    CallerHungUp,
    /// The subscriber was deleted while the call rang.
    SubscriberDeleted,
    /// Nothing more was heard of the call for `SESSION_TTL_SECS` (the phone
    /// app never said how it ended): the offer is withdrawn.
    Expired,
}

/// Why a session ended `missed` or `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedReason {
    /// Nobody took the call and there was no fallback left.
    NobodyAnswered,
    /// The caller hung up while the forwarded call was being hunted.
    CallerHungUp,
    /// The phone rejected the call but no forwarded call arrived (carrier
    /// forwarding not active), or a newer call from the caller superseded it.
    NotForwarded,
    /// The forwarded call was hunted, but the provider never reported how
    /// it ended (no final status callback) before the session's lifetime ran
    /// out.
    NoOutcome,
    /// A caller rule blocks the caller: the forwarded call heard busy.
    Blocked,
}

/// How a provider's transcription of a voicemail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptionStatus {
    Completed,
    /// The provider could not transcribe it (too long, no speech, …).
    Failed,
}

/// Most characters of a transcription a session keeps (and an event
/// carries): a two-minute voicemail is about 1,700.
pub(crate) const MAX_TRANSCRIPT_CHARS: usize = 2000;

/// A voicemail's transcription, as the session keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transcript {
    pub status: TranscriptionStatus,
    /// The text, at most 2,000 characters; `null` when it failed.
    #[schema(required = true)]
    pub text: Option<String>,
}

impl Transcript {
    /// What a provider's transcription callback says: `status`, and the
    /// text (cut to [`MAX_TRANSCRIPT_CHARS`]; a completed one without text
    /// failed).
    pub fn new(status: TranscriptionStatus, text: Option<&str>) -> Self {
        let text = text
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.chars().take(MAX_TRANSCRIPT_CHARS).collect::<String>());
        match (status, text) {
            (TranscriptionStatus::Completed, Some(text)) => Self {
                status,
                text: Some(text),
            },
            _ => Self {
                status: TranscriptionStatus::Failed,
                text: None,
            },
        }
    }
}

/// What came of the text back to a missed caller (`missed_call_text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TextOutcome {
    /// The provider's API took it.
    Sent,
    /// The provider's API refused it, or could not be reached.
    Failed,
    /// Not sent on purpose: a withheld caller, a number that takes no
    /// texts, a blocked caller, or a provider without the credentials.
    Skipped,
}

impl TextOutcome {
    /// As the API writes it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// The text back to a missed caller, as the session keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextState {
    /// Claimed by the one write that sends it; not yet known.
    Sending,
    Sent,
    Failed,
    Skipped,
}

impl TextState {
    pub fn outcome(self) -> Option<TextOutcome> {
        match self {
            Self::Sending => None,
            Self::Sent => Some(TextOutcome::Sent),
            Self::Failed => Some(TextOutcome::Failed),
            Self::Skipped => Some(TextOutcome::Skipped),
        }
    }
}

impl From<TextOutcome> for TextState {
    fn from(outcome: TextOutcome) -> Self {
        match outcome {
            TextOutcome::Sent => Self::Sent,
            TextOutcome::Failed => Self::Failed,
            TextOutcome::Skipped => Self::Skipped,
        }
    }
}

/// What the claim of a missed-call text decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TextClaim {
    /// Send it to `to` through `provider`: this write holds the claim.
    Send { provider: String, to: PhoneNumber },
    /// Not to be sent, and why (kept as `skipped`).
    Skip(&'static str),
}

/// Most recordings a session announces: one per Dial is at most a few
/// dozen (ten destinations, each step rung again after a decline, and the
/// fallback).
pub(crate) const MAX_RECORDINGS: usize = 32;

impl Session {
    /// Ends a session that was not forwarded yet as `cancelled`: the call
    /// was taken on the phone, the caller gave up, or the subscriber went.
    pub fn cancel(&mut self, reason: CancelReason, now: Timestamp) -> Result<Notice, SessionError> {
        if self.is_over() {
            return Err(SessionError::Over);
        }
        if self.state == SessionState::Forwarded {
            return Err(SessionError::AlreadyForwarded);
        }
        self.end(SessionState::Cancelled, now);
        Ok(Notice::Cancelled(reason))
    }

    /// Ends a session that was told to reject but that no forwarded call
    /// claimed (in time, or before a newer call from the same caller).
    pub(crate) fn expire_unforwarded(&mut self, now: Timestamp) -> Option<Notice> {
        if !self.awaits_forwarded_call() {
            return None;
        }
        self.end(SessionState::Expired, now);
        Some(Notice::Missed(MissedReason::NotForwarded))
    }

    /// Ends a session that reached the end of its lifetime with no outcome,
    /// so that every session gets one: before it was forwarded it ends
    /// `expired` (a rejected call as [not forwarded](Self::expire_unforwarded),
    /// any other with its offer withdrawn); a forwarded one ends `missed`.
    pub(crate) fn expire_idle(&mut self, now: Timestamp) -> Option<Notice> {
        if self.is_over() {
            return None;
        }
        if self.awaits_forwarded_call() {
            return self.expire_unforwarded(now);
        }
        if self.state == SessionState::Forwarded {
            self.finish_ringing_all(LegStatus::Canceled);
            return self.end_missed(MissedReason::NoOutcome, now);
        }
        self.end(SessionState::Expired, now);
        Some(Notice::Cancelled(CancelReason::Expired))
    }

    /// Nothing is left to try: the session is missed.
    pub fn end_missed(&mut self, reason: MissedReason, now: Timestamp) -> Option<Notice> {
        if self.is_over() {
            return None;
        }
        self.end(SessionState::Missed, now);
        Some(Notice::Missed(reason))
    }

    /// The voicemail `<Record>` ended, with a message (where the provider
    /// keeps it) or without.
    pub(crate) fn record_voicemail(
        &mut self,
        recording_url: Option<&str>,
        now: Timestamp,
    ) -> Option<Notice> {
        if self.is_over() {
            return None;
        }
        match recording_url {
            Some(url) => {
                self.voicemail_url = Some(url.to_owned());
                self.end(SessionState::Voicemail, now);
                Some(Notice::Voicemail)
            }
            None => self.end_missed(MissedReason::CallerHungUp, now),
        }
    }

    /// A session that ended missed or in the voicemail texts its caller
    /// back at most once: the first call claims it (`None` for any other
    /// session, and once claimed). `blocked`: a caller rule refused the
    /// call, and a refused caller is not texted.
    pub(crate) fn claim_missed_call_text(&mut self, blocked: bool) -> Option<TextClaim> {
        if !matches!(self.state, SessionState::Missed | SessionState::Voicemail)
            || self.missed_call_text.is_some()
        {
            return None;
        }
        let claim = match (&self.caller, &self.provider) {
            _ if blocked => TextClaim::Skip("the caller is blocked"),
            (Caller::Withheld, _) => TextClaim::Skip("the caller is withheld"),
            (Caller::Number(n), _) if !n.looks_mobile() => {
                TextClaim::Skip("the caller's number takes no texts")
            }
            (_, None) => TextClaim::Skip("no provider carried the call"),
            (Caller::Number(n), Some(provider)) => TextClaim::Send {
                provider: provider.clone(),
                to: n.clone(),
            },
        };
        self.missed_call_text = Some(match claim {
            TextClaim::Send { .. } => TextState::Sending,
            TextClaim::Skip(_) => TextState::Skipped,
        });
        Some(claim)
    }

    /// What came of the text this session claimed; `false` when it claimed
    /// none or already knows.
    pub(crate) fn finish_missed_call_text(&mut self, outcome: TextOutcome) -> bool {
        if self.missed_call_text != Some(TextState::Sending) {
            return false;
        }
        self.missed_call_text = Some(outcome.into());
        true
    }

    /// The provider's transcription of the voicemail came: whether it is
    /// new (a retried callback, or one for a session that left no
    /// voicemail, changes nothing), and so to be announced.
    pub(crate) fn record_transcription(&mut self, transcript: Transcript) -> bool {
        if self.state != SessionState::Voicemail || self.transcription.is_some() {
            return false;
        }
        self.transcription = Some(transcript);
        true
    }

    /// A recording of the call's legs is ready at `url` (the call is
    /// usually over by then): whether it is new, and so to be announced. A
    /// session remembers [`MAX_RECORDINGS`]; past them, nothing more is
    /// announced rather than something twice.
    pub(crate) fn add_recording(&mut self, url: &str) -> bool {
        if self.recordings.iter().any(|known| known == url) {
            return false;
        }
        if self.recordings.len() >= MAX_RECORDINGS {
            tracing::warn!(session_id = %self.id, "a session's recordings are full; not announcing another");
            return false;
        }
        self.recordings.push(url.to_owned());
        true
    }

    /// The forwarded call ended (the provider's final status callback): a
    /// session with no outcome yet was missed.
    pub(crate) fn forwarded_call_ended(&mut self, now: Timestamp) -> Option<Notice> {
        if self.state != SessionState::Forwarded {
            return None;
        }
        self.finish_ringing_all(LegStatus::Canceled);
        self.end_missed(MissedReason::CallerHungUp, now)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use super::{
        MAX_RECORDINGS, MAX_TRANSCRIPT_CHARS, TextClaim, TextOutcome, Transcript,
        TranscriptionStatus,
    };
    use crate::domain::phone::PhoneNumber;

    #[test]
    fn a_phone_event_cancels_only_before_the_call_was_forwarded() {
        let mut s = new_session(Mode::Auto);
        assert_eq!(
            s.cancel(CancelReason::AnsweredOnPhone, t(1)),
            Ok(Notice::Cancelled(CancelReason::AnsweredOnPhone))
        );
        assert_eq!(s.state(), SessionState::Cancelled);
        assert_eq!(s.timeline().ended_at, Some(t(1)));
        assert_eq!(
            s.cancel(CancelReason::CallerHungUp, t(2)),
            Err(SessionError::Over)
        );
        assert_eq!(
            forwarded().cancel(CancelReason::CallerHungUp, t(3)),
            Err(SessionError::AlreadyForwarded)
        );
    }

    #[test]
    fn an_unforwarded_session_expires_and_a_claimed_one_does_not() {
        let mut s = new_session(Mode::Auto);
        assert_eq!(s.expire_unforwarded(t(5)), None, "not instructed yet");
        s.instruct(Instruction::Reject, t(1));
        assert_eq!(
            s.expire_unforwarded(t(31)),
            Some(Notice::Missed(MissedReason::NotForwarded))
        );
        assert_eq!(s.state(), SessionState::Expired);
        assert_eq!(forwarded().expire_unforwarded(t(40)), None);
    }

    #[test]
    fn a_session_with_no_outcome_at_the_end_of_its_lifetime_gets_one() {
        let mut unanswered = new_session(Mode::Pick);
        unanswered.notified(t(1));
        assert_eq!(
            unanswered.expire_idle(t(121)),
            Some(Notice::Cancelled(CancelReason::Expired))
        );
        assert_eq!(unanswered.state(), SessionState::Expired);
        assert_eq!(unanswered.expire_idle(t(122)), None, "once");

        let mut rejected = new_session(Mode::Auto);
        rejected.instruct(Instruction::Reject, t(1));
        assert_eq!(
            rejected.expire_idle(t(121)),
            Some(Notice::Missed(MissedReason::NotForwarded))
        );
        assert_eq!(rejected.state(), SessionState::Expired);

        let mut hunted = forwarded();
        hunted.start_ringing(FIRST, [&id("desk")]);
        assert_eq!(
            hunted.expire_idle(t(300)),
            Some(Notice::Missed(MissedReason::NoOutcome))
        );
        assert_eq!(hunted.state(), SessionState::Missed);
        assert_eq!(hunted.legs()[0].status, LegStatus::Canceled);

        let mut answered = forwarded();
        answered.end_missed(MissedReason::CallerHungUp, t(10));
        assert_eq!(answered.expire_idle(t(300)), None, "already over");
        assert_eq!(answered.state(), SessionState::Missed);
    }

    #[test]
    fn the_caller_hanging_up_ends_the_session_missed_once() {
        let mut s = forwarded();
        s.start_ringing(FIRST, [&id("desk")]);
        assert_eq!(
            s.forwarded_call_ended(t(7)),
            Some(Notice::Missed(MissedReason::CallerHungUp))
        );
        assert_eq!(s.state(), SessionState::Missed);
        assert_eq!(legs(&s), [("desk", LegStatus::Canceled, FIRST)]);
        assert_eq!(s.forwarded_call_ended(t(8)), None);

        let mut connected = forwarded();
        connected.connect(FIRST, Some(&id("desk")), t(5));
        assert_eq!(
            connected.forwarded_call_ended(t(60)),
            None,
            "a connected call just ended"
        );

        let mut canceled = forwarded();
        assert_eq!(
            canceled.record_dial_result(
                FIRST,
                &dialed(&[("desk", false)]),
                result(DialStatus::Canceled, None),
                t(4)
            ),
            DialVerdict::CallerGone(Some(Notice::Missed(MissedReason::CallerHungUp)))
        );
    }

    #[test]
    fn a_voicemail_ends_the_session_and_nothing_after_it_changes_it() {
        let mut s = forwarded();
        assert_eq!(
            s.record_voicemail(Some(URL), t(30)),
            Some(Notice::Voicemail)
        );
        assert_eq!(s.state(), SessionState::Voicemail);
        assert_eq!(s.voicemail_url(), Some(URL));
        assert_eq!(
            s.record_voicemail(Some("https://r.example.com/2"), t(31)),
            None
        );
        assert_eq!(s.voicemail_url(), Some(URL));
        assert_eq!(s.forwarded_call_ended(t(32)), None);
        assert_eq!(s.end_missed(MissedReason::NobodyAnswered, t(33)), None);

        let mut hung_up = forwarded();
        assert_eq!(
            hung_up.record_voicemail(None, t(30)),
            Some(Notice::Missed(MissedReason::CallerHungUp))
        );
    }

    const URL: &str = "https://r.example.com/1";

    #[test]
    fn a_missed_or_voicemail_session_claims_its_text_once() {
        let mut missed = forwarded();
        assert_eq!(missed.claim_missed_call_text(false), None, "not over yet");
        missed.end_missed(MissedReason::NobodyAnswered, t(30));
        let caller = PhoneNumber::parse("+12025550302", Default::default()).unwrap();
        assert_eq!(
            missed.claim_missed_call_text(false),
            Some(TextClaim::Send {
                provider: "twilio".into(),
                to: caller
            })
        );
        assert_eq!(missed.missed_call_text(), None, "sending");
        assert_eq!(missed.claim_missed_call_text(false), None, "once");
        assert!(missed.finish_missed_call_text(TextOutcome::Sent));
        assert!(!missed.finish_missed_call_text(TextOutcome::Failed));
        assert_eq!(missed.missed_call_text(), Some(TextOutcome::Sent));
        // Kept through the store: store::stored's tests.

        let mut voicemail = forwarded();
        voicemail.record_voicemail(Some(URL), t(30));
        assert!(matches!(
            voicemail.claim_missed_call_text(false),
            Some(TextClaim::Send { .. })
        ));

        let mut blocked = forwarded();
        blocked.end_missed(MissedReason::Blocked, t(30));
        assert_eq!(
            blocked.claim_missed_call_text(true),
            Some(TextClaim::Skip("the caller is blocked"))
        );
        assert_eq!(blocked.missed_call_text(), Some(TextOutcome::Skipped));
        assert!(!blocked.finish_missed_call_text(TextOutcome::Sent));

        let mut cancelled = new_session(Mode::Auto);
        cancelled
            .cancel(CancelReason::AnsweredOnPhone, t(3))
            .unwrap();
        assert_eq!(cancelled.claim_missed_call_text(false), None);
    }

    #[test]
    fn a_voicemail_keeps_its_transcription_once() {
        let text = Transcript::new(TranscriptionStatus::Completed, Some(" Call me back. "));
        assert_eq!(text.text.as_deref(), Some("Call me back."));
        let mut unrecorded = forwarded();
        assert!(
            !unrecorded.record_transcription(text.clone()),
            "no voicemail yet"
        );
        let mut s = forwarded();
        s.record_voicemail(Some(URL), t(30));
        assert!(s.record_transcription(text.clone()));
        assert_eq!(s.transcription(), Some(&text));
        let failed = Transcript::new(TranscriptionStatus::Failed, None);
        assert!(!s.record_transcription(failed), "once");
        assert_eq!(s.transcription(), Some(&text));
        // Kept through the store: store::stored's tests.
    }

    #[test]
    fn a_transcription_is_text_of_bounded_length_or_failed() {
        let long = "word ".repeat(1000);
        let kept = Transcript::new(TranscriptionStatus::Completed, Some(&long));
        assert_eq!(kept.text.unwrap().chars().count(), MAX_TRANSCRIPT_CHARS);
        for empty in [None, Some(""), Some("  ")] {
            assert_eq!(
                Transcript::new(TranscriptionStatus::Completed, empty),
                Transcript {
                    status: TranscriptionStatus::Failed,
                    text: None
                }
            );
        }
        assert_eq!(
            Transcript::new(TranscriptionStatus::Failed, Some("partial")).text,
            None
        );
    }

    #[test]
    fn a_recording_is_announced_once_even_after_the_call_is_over() {
        let mut s = forwarded();
        assert!(s.connect(FIRST, Some(&id("desk")), t(3)).is_some());
        assert!(s.is_over());
        let url = "https://api.example.com/Recordings/RE1";
        assert!(s.add_recording(url), "a new recording is announced");
        assert!(!s.add_recording(url), "a retried callback is not");
        assert!(s.add_recording("https://api.example.com/Recordings/RE2"));
        // (That the store remembers them: `store::stored`'s tests.)
    }

    #[test]
    fn a_session_remembers_a_bounded_number_of_recordings() {
        let mut s = forwarded();
        for n in 0..MAX_RECORDINGS {
            assert!(s.add_recording(&format!("https://r.example.com/{n}")));
        }
        assert!(!s.add_recording("https://r.example.com/one-too-many"));
        assert_eq!(s.recordings.len(), MAX_RECORDINGS);
        assert!(!s.add_recording("https://r.example.com/0"));
    }
}
