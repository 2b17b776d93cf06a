//! The forwarded call's dial attempts, in no provider's words: which
//! attempt a callback is about, how it ended, and what became of each leg.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The CPaaS id of a call (Twilio `CallSid`, Plivo `CallUUID`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallSid(String);

/// Longer ids are no provider's: refused rather than stored.
const MAX_CALL_SID_LEN: usize = 128;

impl CallSid {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s.len() > MAX_CALL_SID_LEN || s.chars().any(char::is_control) {
            return Err("a call id is 1 to 128 printable characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CallSid {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<CallSid> for String {
    fn from(sid: CallSid) -> String {
        sid.0
    }
}

impl fmt::Display for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallSid({})", self.0)
    }
}

/// One Dial we returned: the plan step it rings, and the round within that
/// step (a step rings again, without the destinations that declined, when a
/// screened leg declined in it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct DialAttempt {
    pub step: u16,
    pub round: u16,
}

impl DialAttempt {
    pub const FIRST: Self = Self { step: 0, round: 0 };

    /// The same step rung again.
    pub fn again(self) -> Self {
        Self {
            round: self.round.saturating_add(1),
            ..self
        }
    }

    /// The first round of the next step.
    pub fn next_step(self) -> Self {
        Self {
            step: self.step.saturating_add(1),
            round: 0,
        }
    }
}

/// How a Dial ended, as the provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DialStatus {
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
pub struct DialResult {
    pub status: DialStatus,
    pub bridged: Option<bool>,
}

/// What became of one leg of a Dial (contract §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LegStatus {
    Ringing,
    /// Bridged to the caller: a person took the call.
    Connected,
    /// Picked up but did not take the call (screening without a 1).
    Declined,
    Busy,
    NoAnswer,
    Failed,
    /// Hung up by the provider (another leg won) or by the caller.
    Canceled,
}

impl LegStatus {
    pub fn is_final(self) -> bool {
        self != Self::Ringing
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_sids_are_printable_and_bounded() {
        assert_eq!(CallSid::parse(" CA1 ").unwrap().as_str(), "CA1");
        assert!(CallSid::parse("").is_err());
        assert!(CallSid::parse("a\nb").is_err());
        assert!(CallSid::parse(&"x".repeat(129)).is_err());
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
}
