//! A session: one ringing call on a subscriber's phone, from the ring report
//! to the forwarded call's outcome (contract §6).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::credentials::TokenHash;
use super::phone::{Caller, PhoneNumber};
use super::subscriber::{DestinationId, Mode};

/// An unguessable session id: `ses_` and 22 URL-safe base64 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(
    pattern = r"^ses_[A-Za-z0-9_-]{22}$",
    example = "ses_q7Xb2mN4pR8sT1vW3yZ5aB"
)]
pub struct SessionId(String);

const SESSION_PREFIX: &str = "ses_";

impl SessionId {
    pub fn generate() -> Self {
        use base64::Engine as _;
        let bytes: [u8; 16] = rand::random();
        Self(format!(
            "{SESSION_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = s.strip_prefix(SESSION_PREFIX).is_some_and(|rest| {
            rest.len() == 22
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("{s:?} is not a session id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

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
    pub fn is_over(self) -> bool {
        matches!(
            self,
            Self::Connected | Self::Voicemail | Self::Missed | Self::Cancelled | Self::Expired
        )
    }
}

/// A point in time, shown as RFC 3339 in UTC with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

const RFC3339_MILLIS: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

impl Timestamp {
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        // Truncate to what is shown, so a stored and re-read time compares equal.
        Self(now.replace_millisecond(now.millisecond()).unwrap_or(now))
    }

    /// Milliseconds since the Unix epoch (orders sessions in the store).
    pub fn unix_millis(self) -> i64 {
        i64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    pub fn after(self, duration: std::time::Duration) -> Self {
        Self(self.0 + duration)
    }

    /// How long from `self` until `later` (zero when `later` is past).
    pub fn until(self, later: Timestamp) -> std::time::Duration {
        (later.0 - self.0).try_into().unwrap_or_default()
    }

    pub fn to_rfc3339(self) -> String {
        self.0
            .format(RFC3339_MILLIS)
            .expect("a UTC time always formats")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// In the OpenAPI description: the RFC 3339 string the `Serialize` impl writes.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339, in UTC, with milliseconds."))
            .examples(["2026-11-26T15:49:10.123Z"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
            .map(Self)
            .map_err(serde::de::Error::custom)
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

/// One attempt to reach a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Leg {
    pub destination_id: DestinationId,
    /// How the dial ended: `answered`, `busy`, `no-answer`, `failed` or
    /// `canceled`.
    #[schema(example = "no-answer")]
    pub status: String,
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

/// A destination's answer to the offer of a call (pick mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfferResponse {
    Accepted,
    Declined,
}

/// The call as offered to one destination: the hash of the capability in its
/// `accept_url` / `decline_url`, and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub destination_id: DestinationId,
    pub capability: TokenHash,
    pub response: Option<OfferResponse>,
}

/// The forwarded call that took a session: set once, atomically, by the
/// store's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub call_sid: String,
    pub forwarded_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub subscriber: PhoneNumber,
    pub caller: Caller,
    pub state: SessionState,
    pub mode: Mode,
    pub instruction: Instruction,
    pub selected_destination: Option<DestinationId>,
    pub call_sid: Option<String>,
    pub timeline: Timeline,
    pub legs: Vec<Leg>,
    /// The phone app's own id for the call, which makes ring reports retryable.
    pub device_call_id: Option<String>,
    pub offers: Vec<Offer>,
    /// The phone said it did reject the call.
    pub phone_rejected: bool,
    /// In pick mode, when waiting for an accept ends: then the instruction
    /// becomes `ignore`.
    pub wait_until: Option<Timestamp>,
    /// How many writes the store had when this copy was read; a write
    /// based on an older copy is refused (see `Store::update_session`).
    #[serde(skip)]
    pub version: u64,
}

impl Session {
    /// A session for a ring report that just arrived.
    pub fn ringing(
        subscriber: PhoneNumber,
        caller: Caller,
        mode: Mode,
        device_call_id: Option<String>,
    ) -> Self {
        Self {
            id: SessionId::generate(),
            subscriber,
            caller,
            state: SessionState::Ringing,
            mode,
            instruction: Instruction::Wait,
            selected_destination: None,
            call_sid: None,
            timeline: Timeline {
                reported_at: Some(Timestamp::now()),
                ..Timeline::default()
            },
            legs: Vec::new(),
            device_call_id,
            offers: Vec::new(),
            phone_rejected: false,
            wait_until: None,
            version: 0,
        }
    }

    /// A session for a forwarded call that matched no ring report (the phone
    /// was really busy or off): it starts forwarded.
    pub fn forwarded_without_report(subscriber: PhoneNumber, caller: Caller, claim: Claim) -> Self {
        let mut session = Self::ringing(subscriber, caller, Mode::Auto, None);
        session.timeline.reported_at = None;
        session.instruction = Instruction::Reject;
        session.apply_claim(claim);
        session
    }

    /// Whether a forwarded call may still claim this session: the phone was
    /// told to reject and no forwarded call took it yet.
    pub fn awaits_forwarded_call(&self) -> bool {
        self.state == SessionState::Instructed
            && self.instruction == Instruction::Reject
            && self.call_sid.is_none()
    }

    /// Records the forwarded call that took the session.
    pub fn apply_claim(&mut self, claim: Claim) {
        if !self.state.is_over() {
            self.state = SessionState::Forwarded;
        }
        self.call_sid = Some(claim.call_sid);
        self.timeline.forwarded_at = Some(claim.forwarded_at);
    }

    /// Whether pick mode's wait for an accept is over without one.
    pub fn wait_expired(&self, now: Timestamp) -> bool {
        !self.state.is_over()
            && self.instruction == Instruction::Wait
            && self.wait_until.is_some_and(|until| now >= until)
    }

    /// Moves to an outcome, stamping `ended_at` (and `connected_at`). A
    /// phone still waiting for an instruction is told to let the call be.
    pub fn end(&mut self, outcome: SessionState) {
        debug_assert!(outcome.is_over());
        if self.instruction == Instruction::Wait {
            self.instruction = Instruction::Ignore;
        }
        let now = Timestamp::now();
        if outcome == SessionState::Connected {
            self.timeline.connected_at = Some(now);
        }
        self.timeline.ended_at = Some(now);
        self.state = outcome;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
        assert!(SessionId::parse("ses_short").is_err());
        assert!(SessionId::parse("abc_AAAAAAAAAAAAAAAAAAAAAA").is_err());
    }

    #[test]
    fn timestamps_show_milliseconds_in_utc_and_round_trip() {
        let t = Timestamp::now();
        let s = t.to_rfc3339();
        assert_eq!(s.len(), "2026-11-26T15:49:10.123Z".len(), "{s}");
        assert!(s.ends_with('Z'));
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn only_outcomes_are_over() {
        assert!(!SessionState::Instructed.is_over());
        assert!(!SessionState::Forwarded.is_over());
        assert!(SessionState::Cancelled.is_over());
        assert!(SessionState::Connected.is_over());
    }
}
