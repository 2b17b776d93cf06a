//! What a simulated call did: the outcome, the session, the timeline, the
//! webhooks and the markup, as JSON (`--json`) or as a readable timeline.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::cpaas::kit::SentText;
use super::receiver::Delivery;
use super::timeline::Entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Bridged to a destination.
    Connected,
    /// The caller left a message.
    Voicemail,
    /// Forwarded, but nobody took it and nothing was recorded.
    Missed,
    /// Taken on the phone, or abandoned before it was forwarded.
    Cancelled,
    /// The phone was told `ignore`.
    Ignored,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Voicemail => "voicemail",
            Self::Missed => "missed",
            Self::Cancelled => "cancelled",
            Self::Ignored => "ignored",
        }
    }

    /// The webhook every destination gets for it.
    pub(super) fn webhook(self) -> Option<&'static str> {
        match self {
            Self::Connected => Some("call.connected"),
            Self::Voicemail => Some("call.voicemail"),
            Self::Missed => Some("call.missed"),
            Self::Cancelled => Some("call.cancelled"),
            Self::Ignored => None,
        }
    }

    /// The state the session must end in.
    pub(super) fn session_state(self) -> Option<&'static str> {
        match self {
            Self::Ignored => None,
            other => Some(other.as_str()),
        }
    }
}

/// The report of one simulated call (docs/simulator.md's JSON object).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    /// The id of the destination the caller was bridged to (or the
    /// address, for a number that is no destination).
    pub connected_to: Option<String>,
    /// The session at the end, as the admin reads it; null when there
    /// was no ring report.
    pub session: Value,
    pub timeline: Vec<Entry>,
    pub webhooks: Vec<Delivery>,
    /// The texts sent to the caller through the provider's API
    /// (`missed_call_text`); always empty with `--target`, whose provider
    /// is the real one.
    pub texts: Vec<SentText>,
    /// Every markup document the service answered, in order.
    pub markup: Vec<String>,
}

impl Report {
    /// The timeline in aligned columns, then the outcome.
    pub fn render(&self) -> String {
        let width = self
            .timeline
            .iter()
            .map(|e| e.party.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for entry in &self.timeline {
            let secs = entry.at_ms as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{secs:>6.1}s  {:<width$}  {}",
                entry.party, entry.event
            );
        }
        let outcome = match &self.connected_to {
            Some(to) => format!("connected to {to}"),
            None => self.outcome.as_str().to_owned(),
        };
        let webhooks = match self.webhooks.len() {
            1 => "1 webhook, verified".to_owned(),
            n => format!("{n} webhooks, all verified"),
        };
        let _ = writeln!(out, "\noutcome: {outcome} ({webhooks})");
        out
    }
}
