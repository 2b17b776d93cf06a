//! A session: one ringing call on a subscriber's phone, from the ring report
//! to the forwarded call's outcome (contract §6).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::credentials::TokenHash;
use super::dial::{CallSid, DialAttempt, DialResult, DialStatus, LegStatus};
use super::phone::{Caller, PhoneNumber};
use super::rules::Route;
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

/// The characters of a session id after its prefix, in the order of their
/// values (URL-safe base64).
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One of [`Shard::COUNT`] groups of subscribers. A subscriber's sessions
/// carry its shard in their id, so that a store can keep a subscriber's
/// sessions, and the indexes over them, together (one Redis Cluster slot),
/// and still find a session from its id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard(u8);

impl Shard {
    pub const COUNT: u8 = 64;

    /// The shard of a subscriber: FNV-1a of its number, so every instance
    /// and every release agrees.
    pub fn of(subscriber: &PhoneNumber) -> Self {
        let hash = subscriber
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        Self((hash % u64::from(Self::COUNT)) as u8)
    }

    pub fn all() -> impl Iterator<Item = Self> {
        (0..Self::COUNT).map(Self)
    }

    pub fn index(self) -> u8 {
        self.0
    }
}

impl SessionId {
    /// A fresh id for no session in particular (examples, placeholders).
    pub fn generate() -> Self {
        Self::generate_in(Shard(rand::random::<u8>() % Shard::COUNT))
    }

    /// A fresh id for a session of `subscriber`: its first character names
    /// the subscriber's shard, the other 21 are random (126 bits).
    pub fn generate_for(subscriber: &PhoneNumber) -> Self {
        Self::generate_in(Shard::of(subscriber))
    }

    fn generate_in(shard: Shard) -> Self {
        let mut id = String::with_capacity(SESSION_PREFIX.len() + 22);
        id.push_str(SESSION_PREFIX);
        id.push(char::from(ID_ALPHABET[usize::from(shard.0)]));
        let random: [u8; 21] = rand::random();
        id.extend(
            random
                .iter()
                .map(|b| char::from(ID_ALPHABET[usize::from(b % 64)])),
        );
        Self(id)
    }

    /// The shard named by the id's first character.
    pub fn shard(&self) -> Shard {
        let first = self.0.as_bytes()[SESSION_PREFIX.len()];
        let value = ID_ALPHABET.iter().position(|&c| c == first).unwrap_or(0);
        Shard(value as u8)
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

    /// The time `millis` after the Unix epoch (`None` out of range).
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .ok()
            .map(Self)
    }

    pub fn after(self, duration: std::time::Duration) -> Self {
        Self(self.0 + duration)
    }

    pub fn before(self, duration: std::time::Duration) -> Self {
        Self(self.0 - duration)
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

/// RFC 3339 in JSON (and the API); milliseconds since the epoch in a
/// binary format (the compact session encoding, `store::encoding`).
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.unix_millis())
        }
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
        if !d.is_human_readable() {
            let millis = i64::deserialize(d)?;
            return Self::from_unix_millis(millis)
                .ok_or_else(|| serde::de::Error::custom("a time out of range"));
        }
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        // Kept in UTC, as it is shown: `…+01:00` reads as the same instant.
        OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
            .map(|t| Self(t.to_offset(time::UtcOffset::UTC)))
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

/// One leg of a Dial: a destination rung in one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub destination_id: DestinationId,
    pub status: LegStatus,
    /// The Dial it belongs to: makes a repeated callback recognisable.
    #[serde(default)]
    pub attempt: DialAttempt,
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

/// Which offer an answer is for.
#[derive(Debug, Clone, Copy)]
pub enum OfferKey<'a> {
    /// A destination by its bearer token.
    Destination(&'a DestinationId),
    /// Whoever holds the capability of an `accept_url` / `decline_url`.
    Capability(&'a TokenHash),
}

/// The forwarded call that took a session: set once, atomically, by the
/// store's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub call_sid: CallSid,
    pub forwarded_at: Timestamp,
}

/// A leg that picked up: its screening result once it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pickup {
    attempt: DialAttempt,
    destination_id: DestinationId,
    /// The screened person pressed 1 (`Some(true)`), or something else or
    /// nothing (`Some(false)`); `None` until screening answered.
    accepted: Option<bool>,
}

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

/// The outcome of [`Session::answer_offer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferAnswered {
    /// Recorded; an accept closes the others' offers.
    Recorded(Option<Notice>),
    /// Pick mode's wait had run out: the phone is told to ignore instead,
    /// and the answer is not recorded.
    TooLate,
}

/// A leg of the Dial whose outcome is being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialedLeg {
    pub destination_id: DestinationId,
    pub screened: bool,
}

/// What a Dial's outcome did to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialVerdict {
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

/// Most recordings a session announces: one per Dial is at most a few
/// dozen (ten destinations, each step rung again after a decline, and the
/// fallback).
pub const MAX_RECORDINGS: usize = 32;

/// One ringing call on a subscriber's phone, from the ring report to its
/// outcome. Its fields change only through the methods below, each of which
/// checks the current state and says what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default)]
    pickups: Vec<Pickup>,
    /// The Dials whose outcome was recorded, so that a retried callback
    /// changes nothing.
    #[serde(default)]
    dials_ended: Vec<DialAttempt>,
    /// Where the subscriber's rules sent the call when it began (left out
    /// when it is every destination: most sessions, kept small).
    #[serde(default, skip_serializing_if = "Route::is_every_destination")]
    route: Route,
    /// The recordings of the call's legs announced so far (by URL), so that
    /// a retried recording callback announces nothing twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recordings: Vec<String>,
    /// How many writes the store had when this copy was read; a write
    /// based on an older copy is refused (see `Store::update_session`).
    #[serde(skip)]
    version: u64,
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
            version: 0,
        }
    }

    /// Where the subscriber's rules sent the call (see
    /// [`Subscriber::route`](crate::domain::subscriber::Subscriber::route)).
    pub fn with_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// The offers made to the destinations, and (pick mode) until when an
    /// accept is waited for.
    pub fn with_offers(mut self, offers: Vec<Offer>, wait_until: Option<Timestamp>) -> Self {
        self.offers = offers;
        self.wait_until = wait_until;
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

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn route(&self) -> &Route {
        &self.route
    }

    pub fn instruction(&self) -> Instruction {
        self.instruction
    }

    /// The destination that accepted (pick mode), then the one that took
    /// the call.
    pub fn selected_destination(&self) -> Option<&DestinationId> {
        self.selected_destination.as_ref()
    }

    pub fn call_sid(&self) -> Option<&CallSid> {
        self.call_sid.as_ref()
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    pub fn legs(&self) -> &[Leg] {
        &self.legs
    }

    pub fn device_call_id(&self) -> Option<&str> {
        self.device_call_id.as_deref()
    }

    pub fn wait_until(&self) -> Option<Timestamp> {
        self.wait_until
    }

    pub fn is_over(&self) -> bool {
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

    /// Whether pick mode's wait for an accept is over without one.
    pub fn wait_expired(&self, now: Timestamp) -> bool {
        !self.is_over()
            && self.instruction == Instruction::Wait
            && self.wait_until.is_some_and(|until| now >= until)
    }

    /// Ends pick mode's wait when it ran out: the phone lets the call ring.
    pub fn end_wait_if_expired(&mut self, now: Timestamp) -> bool {
        self.wait_expired(now) && self.instruct(Instruction::Ignore, now)
    }

    /// A destination's answer to the offer of the call.
    pub fn answer_offer(
        &mut self,
        key: OfferKey<'_>,
        response: OfferResponse,
        now: Timestamp,
    ) -> Result<OfferAnswered, SessionError> {
        let index = self
            .offers
            .iter()
            .position(|o| match key {
                OfferKey::Destination(id) => o.destination_id == *id,
                OfferKey::Capability(hash) => o.capability.matches(hash),
            })
            .ok_or(SessionError::NoSuchOffer)?;
        if self.is_over() || self.instruction == Instruction::Ignore {
            return Err(SessionError::Over);
        }
        if self.end_wait_if_expired(now) {
            return Ok(OfferAnswered::TooLate);
        }
        if self.offers[index].response.is_some() {
            return Err(SessionError::AlreadyAnswered);
        }
        match response {
            OfferResponse::Accepted => {
                if self.selected_destination.is_some() || self.call_sid.is_some() {
                    return Err(SessionError::AlreadyTaken);
                }
                let winner = self.offers[index].destination_id.clone();
                self.offers[index].response = Some(OfferResponse::Accepted);
                self.selected_destination = Some(winner.clone());
                self.instruct(Instruction::Reject, now);
                Ok(OfferAnswered::Recorded(Some(Notice::Taken { winner })))
            }
            OfferResponse::Declined => {
                self.offers[index].response = Some(OfferResponse::Declined);
                if self
                    .offers
                    .iter()
                    .all(|o| o.response == Some(OfferResponse::Declined))
                {
                    self.instruct(Instruction::Ignore, now);
                }
                Ok(OfferAnswered::Recorded(None))
            }
        }
    }

    /// Makes every capability of this session's offers useless (the
    /// subscriber's tokens were rotated); tokens still answer offers.
    pub fn revoke_capabilities(&mut self) {
        for offer in &mut self.offers {
            offer.capability = TokenHash::of(&SessionId::generate().0);
        }
    }

    /// The phone says it rejected the call.
    pub fn record_phone_rejected(&mut self) -> Result<(), SessionError> {
        if self.is_over() {
            return Err(SessionError::Over);
        }
        self.phone_rejected = true;
        Ok(())
    }

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
    pub fn expire_unforwarded(&mut self, now: Timestamp) -> Option<Notice> {
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
    pub fn expire_idle(&mut self, now: Timestamp) -> Option<Notice> {
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

    /// Legs that ring in `attempt` (the Dial just returned).
    pub fn start_ringing<'a>(
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

    /// Whether a leg to `destination` that picks up (or presses its key)
    /// may still be bridged: while the call has no outcome, or when it is
    /// this destination's own (a retried request gets the same answer).
    pub fn may_bridge(&self, destination: &DestinationId) -> bool {
        !self.is_over()
            || (self.state == SessionState::Connected
                && self.selected_destination.as_ref() == Some(destination))
    }

    /// The leg to `destination` in `attempt` picked up and ran its whisper:
    /// an unscreened leg is bridged now (the call is connected to it); a
    /// screened one waits for its key press.
    pub fn leg_picked_up(
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
    pub fn record_pickup(&mut self, attempt: DialAttempt, destination: &DestinationId) {
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
    pub fn record_screening(
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
    pub fn connect(
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
    pub fn record_dial_result(
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
    pub fn ended_on_decline(&self, attempt: DialAttempt) -> bool {
        let mut legs = self.legs.iter().filter(|l| l.attempt == attempt);
        let declined = legs.clone().any(|l| l.status == LegStatus::Declined);
        declined && legs.all(|l| matches!(l.status, LegStatus::Declined | LegStatus::Canceled))
    }

    /// The destinations that declined in an earlier round of `attempt`'s
    /// step: that round rings without them.
    pub fn declined_before(&self, attempt: DialAttempt) -> impl Iterator<Item = &DestinationId> {
        self.legs
            .iter()
            .filter(move |l| {
                l.attempt.step == attempt.step
                    && l.attempt.round < attempt.round
                    && l.status == LegStatus::Declined
            })
            .map(|l| &l.destination_id)
    }

    /// Nothing is left to try: the session is missed.
    pub fn end_missed(&mut self, reason: MissedReason, now: Timestamp) -> Option<Notice> {
        if self.is_over() {
            return None;
        }
        self.end(SessionState::Missed, now);
        Some(Notice::Missed(reason))
    }

    /// The voicemail `<Record>` ended, with a message or without.
    pub fn record_voicemail(&mut self, recorded: bool, now: Timestamp) -> Option<Notice> {
        if self.is_over() {
            return None;
        }
        if recorded {
            self.end(SessionState::Voicemail, now);
            Some(Notice::Voicemail)
        } else {
            self.end_missed(MissedReason::CallerHungUp, now)
        }
    }

    /// A recording of the call's legs is ready at `url` (the call is
    /// usually over by then): whether it is new, and so to be announced. A
    /// session remembers [`MAX_RECORDINGS`]; past them, nothing more is
    /// announced rather than something twice.
    pub fn add_recording(&mut self, url: &str) -> bool {
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
    pub fn forwarded_call_ended(&mut self, now: Timestamp) -> Option<Notice> {
        if self.state != SessionState::Forwarded {
            return None;
        }
        self.finish_ringing_all(LegStatus::Canceled);
        self.end_missed(MissedReason::CallerHungUp, now)
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

    fn finish_ringing_all(&mut self, status: LegStatus) {
        for leg in self
            .legs
            .iter_mut()
            .filter(|l| l.status == LegStatus::Ringing)
        {
            leg.status = status;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sessions_id_names_its_subscribers_shard() {
        let alice =
            PhoneNumber::parse("+14155550100", crate::domain::phone::Region::default()).unwrap();
        let bob =
            PhoneNumber::parse("+14155550101", crate::domain::phone::Region::default()).unwrap();
        for _ in 0..100 {
            let id = SessionId::generate_for(&alice);
            assert_eq!(id.shard(), Shard::of(&alice));
            assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
        }
        assert_ne!(
            SessionId::generate_for(&alice),
            SessionId::generate_for(&alice)
        );
        // Neighbouring numbers land in different shards (FNV spreads them).
        assert_ne!(Shard::of(&alice), Shard::of(&bob));
        let spread: std::collections::HashSet<Shard> = (0..1000)
            .map(|n| {
                Shard::of(
                    &PhoneNumber::parse(
                        &format!("+1415555{n:04}"),
                        crate::domain::phone::Region::default(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        assert_eq!(
            spread.len(),
            usize::from(Shard::COUNT),
            "every shard is used"
        );
    }

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
    fn a_time_with_an_offset_is_read_as_the_same_instant_in_utc() {
        let t: Timestamp = serde_json::from_str("\"2026-12-05T12:30:00+01:00\"").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-05T11:30:00.000Z");
    }

    #[test]
    fn only_outcomes_are_over() {
        assert!(!SessionState::Instructed.is_over());
        assert!(!SessionState::Forwarded.is_over());
        assert!(SessionState::Cancelled.is_over());
        assert!(SessionState::Connected.is_over());
    }

    use crate::domain::phone::Region;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000).unwrap()
    }

    fn id(s: &str) -> DestinationId {
        DestinationId::parse(s).unwrap()
    }

    fn new_session(mode: Mode) -> Session {
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
    fn forwarded() -> Session {
        let mut s = new_session(Mode::Auto);
        s.notified(t(1));
        assert!(s.instruct(Instruction::Reject, t(1)));
        s.apply_claim(Claim {
            call_sid: CallSid::parse("CA1").unwrap(),
            forwarded_at: t(2),
        });
        assert_eq!(s.state(), SessionState::Forwarded);
        s
    }

    fn legs(s: &Session) -> Vec<(&str, LegStatus, DialAttempt)> {
        s.legs()
            .iter()
            .map(|l| (l.destination_id.as_str(), l.status, l.attempt))
            .collect()
    }

    fn dialed(ids: &[(&str, bool)]) -> Vec<DialedLeg> {
        ids.iter()
            .map(|(d, screened)| DialedLeg {
                destination_id: id(d),
                screened: *screened,
            })
            .collect()
    }

    const FIRST: DialAttempt = DialAttempt::FIRST;

    fn result(status: DialStatus, bridged: Option<bool>) -> DialResult {
        DialResult { status, bridged }
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
        assert_eq!(s.record_voicemail(true, t(3)), None);
        assert_eq!(s.forwarded_call_ended(t(3)), None);
        assert_eq!(s.expire_unforwarded(t(3)), None);
        assert_eq!(s.expire_idle(t(3)), None);
        assert!(!s.may_bridge(&id("desk")));
        assert_eq!(s, ended, "nothing changed");
    }

    #[test]
    fn an_accept_selects_the_destination_and_closes_the_others_offers() {
        let capability = TokenHash::of("cap");
        let offer = |d: &str| Offer {
            destination_id: id(d),
            capability: TokenHash::of(d),
            response: None,
        };
        let mut s = new_session(Mode::Pick).with_offers(
            vec![
                offer("desk"),
                Offer {
                    capability: capability.clone(),
                    ..offer("laptop")
                },
            ],
            Some(t(15)),
        );
        s.notified(t(1));
        let answered = s
            .answer_offer(
                OfferKey::Capability(&capability),
                OfferResponse::Accepted,
                t(3),
            )
            .unwrap();
        assert_eq!(
            answered,
            OfferAnswered::Recorded(Some(Notice::Taken {
                winner: id("laptop")
            }))
        );
        assert_eq!(s.instruction(), Instruction::Reject);
        assert_eq!(s.selected_destination(), Some(&id("laptop")));
        assert_eq!(
            s.answer_offer(
                OfferKey::Destination(&id("desk")),
                OfferResponse::Accepted,
                t(4)
            ),
            Err(SessionError::AlreadyTaken)
        );
        assert_eq!(
            s.answer_offer(
                OfferKey::Destination(&id("laptop")),
                OfferResponse::Declined,
                t(4)
            ),
            Err(SessionError::AlreadyAnswered)
        );
        assert_eq!(
            s.answer_offer(
                OfferKey::Destination(&id("nobody")),
                OfferResponse::Accepted,
                t(4)
            ),
            Err(SessionError::NoSuchOffer)
        );
    }

    #[test]
    fn all_declines_or_a_late_accept_let_the_phone_ring() {
        let offer = |d: &str| Offer {
            destination_id: id(d),
            capability: TokenHash::of(d),
            response: None,
        };
        let mut s = new_session(Mode::Pick).with_offers(vec![offer("a"), offer("b")], Some(t(15)));
        for d in ["a", "b"] {
            s.answer_offer(OfferKey::Destination(&id(d)), OfferResponse::Declined, t(2))
                .unwrap();
        }
        assert_eq!(s.instruction(), Instruction::Ignore);

        let mut late = new_session(Mode::Pick).with_offers(vec![offer("a")], Some(t(15)));
        assert_eq!(
            late.answer_offer(
                OfferKey::Destination(&id("a")),
                OfferResponse::Accepted,
                t(15)
            ),
            Ok(OfferAnswered::TooLate)
        );
        assert_eq!(late.instruction(), Instruction::Ignore);
        assert_eq!(late.selected_destination(), None);
    }

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
    fn revoked_capabilities_no_longer_answer_offers() {
        let capability = TokenHash::of("cap");
        let mut s = new_session(Mode::Pick).with_offers(
            vec![Offer {
                destination_id: id("desk"),
                capability: capability.clone(),
                response: None,
            }],
            Some(t(15)),
        );
        s.revoke_capabilities();
        assert_eq!(
            s.answer_offer(
                OfferKey::Capability(&capability),
                OfferResponse::Accepted,
                t(2)
            ),
            Err(SessionError::NoSuchOffer)
        );
        assert!(
            s.answer_offer(
                OfferKey::Destination(&id("desk")),
                OfferResponse::Accepted,
                t(2)
            )
            .is_ok()
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
        assert_eq!(s.record_voicemail(true, t(30)), Some(Notice::Voicemail));
        assert_eq!(s.state(), SessionState::Voicemail);
        assert_eq!(s.record_voicemail(true, t(31)), None);
        assert_eq!(s.forwarded_call_ended(t(32)), None);
        assert_eq!(s.end_missed(MissedReason::NobodyAnswered, t(33)), None);

        let mut hung_up = forwarded();
        assert_eq!(
            hung_up.record_voicemail(false, t(30)),
            Some(Notice::Missed(MissedReason::CallerHungUp))
        );
    }

    #[test]
    fn a_claim_moves_the_session_to_forwarded_and_survives_serialisation() {
        let s = forwarded();
        assert!(!s.awaits_forwarded_call());
        let back: Session = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
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
        let mut back: Session = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert!(!back.add_recording(url), "remembered through the store");
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
