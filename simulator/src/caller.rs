//! The caller: whose number calls, when they give up, and whether they
//! leave a message at the voicemail greeting.

use std::time::Duration;

use super::scenario::{Scenario, Verification};

/// How long a message the caller leaves lasts (before `maxLength`).
const MESSAGE: Duration = Duration::from_secs(12);

#[derive(Debug, Clone)]
pub struct Caller {
    /// `From`, as the scenario writes it (E.164 or a withheld marker).
    pub number: String,
    /// What the CPaaS will say of the number, if anything.
    pub verification: Option<Verification>,
    hangs_up_at_ms: Option<u64>,
    leaves_voicemail: bool,
}

impl Caller {
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            number: scenario.caller.clone(),
            verification: scenario.caller_verification,
            hangs_up_at_ms: scenario
                .caller_hangs_up_after_secs
                .map(|s| u64::from(s) * 1000),
            leaves_voicemail: scenario.caller_leaves_voicemail,
        }
    }

    /// When the caller hangs up, if ever.
    pub fn hangs_up_at(&self) -> Option<u64> {
        self.hangs_up_at_ms
    }

    /// When the caller hangs up, if that is before `until_ms`.
    pub fn hangs_up_before(&self, until_ms: u64) -> Option<u64> {
        self.hangs_up_at_ms.filter(|&at| at < until_ms)
    }

    /// Whether the caller is still on the line at `at_ms`.
    pub fn holds_at(&self, at_ms: u64) -> bool {
        self.hangs_up_at_ms.is_none_or(|at| at > at_ms)
    }

    /// The message left at a greeting ending at `now_ms`, if any: up to
    /// `max`, and cut short when the caller hangs up first.
    pub fn message(&self, now_ms: u64, max: Duration) -> Option<Duration> {
        if !self.leaves_voicemail {
            return None;
        }
        let mut length = MESSAGE.min(max);
        if let Some(at) = self.hangs_up_at_ms {
            length = length.min(Duration::from_millis(at.saturating_sub(now_ms)));
        }
        (!length.is_zero()).then_some(length)
    }
}
