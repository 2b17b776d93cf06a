//! The scenario file (docs/simulator.md): what every party of the call does.
//! Parsed strictly, so that a typo is an error naming its key rather than a
//! behaviour silently left at its default.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::cpaas::kit::Cpaas;
use ringrelay_server::domain::time::Timestamp;

/// The number the simulated subscriber gets when the scenario names none.
pub const DEFAULT_SUBSCRIBER_NUMBER: &str = "+12025550199";

/// A whole call, as the scenario file describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The CPaaS the forwarding number lives on.
    #[serde(default)]
    pub provider: Cpaas,
    /// `From` of the call: an E.164 number or a withheld marker.
    #[serde(default = "default_caller")]
    pub caller: String,
    /// The STIR/SHAKEN verdict the CPaaS gives the forwarded call, in its
    /// own parameters; none when unset.
    pub caller_verification: Option<Verification>,
    /// Seconds after the call starts at which the caller gives up; never
    /// when unset.
    pub caller_hangs_up_after_secs: Option<u32>,
    #[serde(default)]
    pub phone: Phone,
    /// Whether the carrier sends `ForwardedFrom`.
    #[serde(default)]
    pub forwarded_from: bool,
    #[serde(default = "default_forward_delay_ms")]
    pub forward_delay_ms: u64,
    /// `false`: the subscriber never dialled the forwarding codes, so the
    /// carrier does not forward the rejected call (the session expires).
    #[serde(default = "yes")]
    pub carrier_forwards: bool,
    #[serde(default = "yes")]
    pub caller_leaves_voicemail: bool,
    /// The wall-clock time the call happens at (RFC 3339): the in-process
    /// service's rules read a clock that starts there, so that an "after
    /// hours" call is reproducible. Not with `--target`: a deployment keeps
    /// its own time.
    pub clock: Option<ScenarioClock>,
    /// Before the ring report, the phone app turns do-not-disturb on for
    /// this many minutes (`PUT /v1/dnd`).
    pub dnd_minutes: Option<DndMinutes>,
    pub subscriber: Subscriber,
    /// Behaviour by destination id; destinations not listed keep the
    /// defaults.
    #[serde(default)]
    pub destinations: BTreeMap<String, Behaviour>,
}

fn default_caller() -> String {
    "+12025550302".into()
}

fn default_forward_delay_ms() -> u64 {
    300
}

fn yes() -> bool {
    true
}

/// `caller_verification`: what the CPaaS says of the caller's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verification {
    /// Attested and validated.
    Verified,
    /// Attested for the caller's carrier, not for the number.
    Partial,
    /// The check failed: the number may be spoofed.
    Failed,
    /// No verdict (unsigned call).
    None,
}

impl Verification {
    /// The verdict as [`Cpaas::verification_params`] takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::None => "none",
        }
    }
}

/// `clock`: an RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ScenarioClock(pub Timestamp);

impl TryFrom<String> for ScenarioClock {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        let at: Timestamp = serde_json::from_value(Value::String(raw)).map_err(|_| {
            r#"expected an RFC 3339 time, such as "2026-11-28T11:00:00Z""#.to_owned()
        })?;
        // In UTC, to the millisecond: a `Timestamp` read with another offset
        // keeps it, and would print its local time as UTC.
        Timestamp::from_unix_millis(at.unix_millis())
            .map(Self)
            .ok_or_else(|| "is out of range".to_owned())
    }
}

/// The longest do-not-disturb the phone app sets: a week.
pub const MAX_DND_MINUTES: u32 = 7 * 24 * 60;

/// `dnd_minutes`: 1 to [`MAX_DND_MINUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct DndMinutes(pub u32);

impl TryFrom<i64> for DndMinutes {
    type Error = String;

    fn try_from(raw: i64) -> Result<Self, String> {
        u32::try_from(raw)
            .ok()
            .filter(|m| (1..=MAX_DND_MINUTES).contains(m))
            .map(Self)
            .ok_or_else(|| format!("expected whole minutes from 1 to {MAX_DND_MINUTES}, got {raw}"))
    }
}

/// What the subscriber's phone does when the call rings on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phone {
    /// The app reports the ring and obeys the instruction.
    #[default]
    Rejects,
    /// Its owner takes the call on the phone itself.
    Answers,
    /// Off or out of coverage: no ring report, the carrier forwards anyway.
    Off,
}

/// The subscriber's PUT body, passed to the service as written (it validates it), plus
/// the optional `number`.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscriber {
    #[serde(default = "default_number")]
    pub number: String,
    #[serde(flatten)]
    pub body: Map<String, Value>,
}

fn default_number() -> String {
    DEFAULT_SUBSCRIBER_NUMBER.into()
}

impl Subscriber {
    /// The ids of its destinations, as written.
    pub fn destination_ids(&self) -> impl Iterator<Item = &str> {
        self.body
            .get("destinations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("id").and_then(Value::as_str))
    }
}

/// How one destination behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    #[serde(default)]
    pub answer: Answer,
    /// The key pressed when screening asks; none by default.
    pub press: Option<Key>,
    #[serde(default)]
    pub offer: Offer,
}

/// What a dialed destination does when it rings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Answer {
    /// A person picks up after this many seconds.
    After(u32),
    Busy,
    #[default]
    NoAnswer,
    Fails,
    /// A voicemail machine: picks up after a few seconds, presses nothing.
    Voicemail,
    /// A softphone that is not there (a browser tab asleep, an app not
    /// registered): the provider ends its leg at once, no-answer.
    Unreachable,
}

impl TryFrom<String> for Answer {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        match raw.as_str() {
            "busy" => Ok(Self::Busy),
            "no-answer" => Ok(Self::NoAnswer),
            "fails" => Ok(Self::Fails),
            "voicemail" => Ok(Self::Voicemail),
            "unreachable" => Ok(Self::Unreachable),
            other => after_secs(other, "after ").map(Self::After).ok_or_else(|| {
                r#"expected "after Ns", "busy", "no-answer", "fails", "voicemail" or "unreachable""#
                    .into()
            }),
        }
    }
}

/// What a destination does with a pick-mode offer (`call.ringing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Offer {
    /// Posts to `accept_url` after this many seconds.
    AcceptAfter(u32),
    Decline,
    #[default]
    Ignore,
}

impl TryFrom<String> for Offer {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        match raw.as_str() {
            "decline" => Ok(Self::Decline),
            "ignore" => Ok(Self::Ignore),
            other => after_secs(other, "accept after ")
                .map(Self::AcceptAfter)
                .ok_or_else(|| r#"expected "accept after Ns", "decline" or "ignore""#.into()),
        }
    }
}

/// `"<prefix>Ns"` → N.
fn after_secs(raw: &str, prefix: &str) -> Option<u32> {
    raw.strip_prefix(prefix)?.strip_suffix('s')?.parse().ok()
}

/// One telephone keypad key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Key(char);

impl TryFrom<String> for Key {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        let mut chars = raw.chars();
        match (chars.next(), chars.next()) {
            (Some(c @ ('0'..='9' | '*' | '#')), None) => Ok(Self(c)),
            _ => Err(r##"expected one key: "0" to "9", "*" or "#""##.into()),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A scenario that cannot run: one line, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ScenarioError {
    pub key: String,
    pub problem: String,
}

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(text: &str) -> Result<Self, ScenarioError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| syntax_error(text, &e))?;
        let scenario: Self = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            ScenarioError {
                key: if path == "." { "scenario".into() } else { path },
                problem: e.inner().message().to_owned(),
            }
        })?;
        scenario.check()?;
        Ok(scenario)
    }
}

fn syntax_error(text: &str, err: &toml::de::Error) -> ScenarioError {
    let line = err
        .span()
        .map_or(1, |span| text[..span.start].matches('\n').count() + 1);
    ScenarioError {
        key: format!("line {line}"),
        problem: err.message().to_owned(),
    }
}

impl Scenario {
    /// The rules serde cannot express: behaviour only for destinations that
    /// exist.
    fn check(&self) -> Result<(), ScenarioError> {
        let ids: Vec<&str> = self.subscriber.destination_ids().collect();
        if let Some(unknown) = self
            .destinations
            .keys()
            .find(|id| !ids.contains(&id.as_str()))
        {
            return Err(ScenarioError {
                key: format!("destinations.{unknown}"),
                problem: format!(
                    "no destination {unknown:?} in subscriber.destinations (ids: {})",
                    ids.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// Whether the scenario can drive a running deployment (`--target`):
    /// not with a `clock`, since a deployment keeps its own time.
    pub fn check_target(&self) -> Result<(), ScenarioError> {
        match self.clock {
            Some(_) => Err(ScenarioError {
                key: "clock".into(),
                problem: "a --target deployment keeps its own time: remove clock to drive one"
                    .into(),
            }),
            None => Ok(()),
        }
    }

    /// The behaviour of destination `id`.
    pub fn behaviour(&self, id: &str) -> Behaviour {
        self.destinations.get(id).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [subscriber]
        forwarding_number = "+12025550100"
        destinations = [{id = "desk", kind = "phone", address = "+12025550201"}]
    "#;

    #[test]
    fn every_key_but_the_subscriber_has_a_default() {
        let s: Scenario = MINIMAL.parse().unwrap();
        assert_eq!(s.provider, Cpaas::Twilio);
        assert_eq!(s.caller, "+12025550302");
        assert_eq!(s.phone, Phone::Rejects);
        assert!(!s.forwarded_from && s.caller_leaves_voicemail);
        assert_eq!(s.subscriber.number, DEFAULT_SUBSCRIBER_NUMBER);
        assert_eq!(s.behaviour("desk"), Behaviour::default());
        assert_eq!(s.behaviour("desk").answer, Answer::NoAnswer);
        assert_eq!((s.clock, s.dnd_minutes), (None, None));
    }

    #[test]
    fn the_clock_and_do_not_disturb_are_read_and_checked() {
        let s: Scenario =
            format!("clock = \"2026-11-28T11:00:00+01:00\"\ndnd_minutes = 60\n{MINIMAL}")
                .parse()
                .unwrap();
        assert_eq!(
            s.clock.map(|c| c.0.to_rfc3339()).as_deref(),
            Some("2026-11-28T10:00:00.000Z")
        );
        assert_eq!(s.dnd_minutes, Some(DndMinutes(60)));
        assert_eq!(s.check_target().unwrap_err().key, "clock");
        for (top, key) in [
            ("clock = \"saturday\"", "clock"),
            ("clock = 5", "clock"),
            ("dnd_minutes = 0", "dnd_minutes"),
            ("dnd_minutes = -3", "dnd_minutes"),
            ("dnd_minutes = 10081", "dnd_minutes"),
            ("dnd_minutes = \"an hour\"", "dnd_minutes"),
        ] {
            let err = format!("{top}\n{MINIMAL}").parse::<Scenario>().unwrap_err();
            assert_eq!(err.key, key, "{top}: {err}");
        }
    }

    #[test]
    fn the_rules_of_the_subscriber_are_passed_through_as_written() {
        let s: Scenario = r#"
            [subscriber]
            forwarding_number = "+12025550100"
            record = "answer"
            ring_tone = "uk"
            caller_rules = [{match = "+1900*", action = "block"}]
            destinations = [{id = "desk", kind = "phone", address = "+12025550201",
                             ring_timeout_secs = 10,
                             hours = [{days = ["mon"], from = "09:00", to = "17:00"}]}]
            [subscriber.schedule]
            timezone = "Europe/London"
            outside = "voicemail"
            hours = [{days = ["mon", "tue"], from = "09:00", to = "17:00"}]
        "#
        .parse()
        .unwrap();
        let body = Value::Object(s.subscriber.body);
        assert_eq!(body["schedule"]["timezone"], "Europe/London");
        assert_eq!(body["caller_rules"][0]["match"], "+1900*");
        assert_eq!(body["record"], "answer");
        assert_eq!(body["ring_tone"], "uk");
        assert_eq!(body["destinations"][0]["ring_timeout_secs"], 10);
        assert_eq!(body["destinations"][0]["hours"][0]["days"][0], "mon");
    }

    #[test]
    fn behaviours_are_read_from_their_words() {
        let s: Scenario = format!(
            "{MINIMAL}\n[destinations.desk]\nanswer = \"after 4s\"\npress = \"1\"\noffer = \"accept after 2s\"\n"
        )
        .parse()
        .unwrap();
        let desk = s.behaviour("desk");
        assert_eq!(desk.answer, Answer::After(4));
        assert_eq!(desk.press.map(|k| k.to_string()).as_deref(), Some("1"));
        assert_eq!(desk.offer, Offer::AcceptAfter(2));
    }
}
