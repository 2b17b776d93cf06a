//! A session as a store keeps it: [`StoredSession`], the stored shape, its
//! own type with its own field names, so that renaming a field of the
//! domain's `Session` never changes what Redis holds (the golden test below
//! fails first).
//!
//! Version 2 (the tag byte [`SESSION_V2`], then MessagePack): a map whose
//! keys are the short names below, every enum a small integer, times as
//! milliseconds, capability hashes as bytes, and what is empty left out
//! (most of a session: a forwarded call's session has no offers, pickups,
//! recordings nor device call id). Written and read in one pass each.
//!
//! Adding a field: one line here, `#[serde(default, skip_serializing_if =
//! …)]` under a name no field had before, and the golden bytes updated. A
//! release that does not know a field skips it when reading; a release
//! that knows it reads its default from a session written without it.
//!
//! Sessions written by the releases before are still read: version 1 (tag
//! `0x01`, MessagePack with the domain's field names as one-byte codes) and
//! JSON (`{`). Both named the domain's fields, which every stored field
//! below accepts as an alias.

use std::borrow::Cow;

use anyhow::{Context as _, anyhow};
use serde::de::{self, IntoDeserializer as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::caller_context::{CallerName, CallerVerification};
use crate::domain::credentials::TokenHash;
use crate::domain::ids::{CallSid, DestinationId};
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::rules::Route;
use crate::domain::session::{
    Claim, DialAttempt, DialStarted, Instruction, Leg, LegStatus, Offer, OfferResponse,
    OwnedSessionParts, Pickup, Session, SessionId, SessionState, TextState, Timeline, Transcript,
};
use crate::domain::subscriber::Mode;
use crate::domain::time::Timestamp;

/// The first byte of a session in the current format.
pub(crate) const SESSION_V2: u8 = 0x02;

/// The first byte of a session written by the release before (MessagePack
/// with one-byte field codes, `store::encoding`).
pub(crate) const SESSION_V1: u8 = 0x01;

/// A session as stored. Borrowed from a [`Session`] to write it, owned when
/// read back.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSession<'a> {
    #[serde(rename = "i", alias = "id")]
    id: Cow<'a, SessionId>,
    #[serde(rename = "s", alias = "subscriber")]
    subscriber: Cow<'a, PhoneNumber>,
    /// `nil` when withheld.
    #[serde(rename = "c", alias = "caller")]
    caller: Cow<'a, Caller>,
    #[serde(rename = "st", alias = "state")]
    state: Coded<SessionState>,
    #[serde(rename = "m", alias = "mode")]
    mode: Coded<Mode>,
    #[serde(rename = "in", alias = "instruction")]
    instruction: Coded<Instruction>,
    #[serde(
        rename = "sd",
        alias = "selected_destination",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    selected_destination: Option<Cow<'a, DestinationId>>,
    #[serde(
        rename = "cs",
        alias = "call_sid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    call_sid: Option<Cow<'a, CallSid>>,
    #[serde(rename = "t", alias = "timeline", default)]
    timeline: StoredTimeline,
    #[serde(
        rename = "l",
        alias = "legs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    legs: Vec<StoredLeg<'a>>,
    #[serde(
        rename = "dc",
        alias = "device_call_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    device_call_id: Option<Cow<'a, str>>,
    #[serde(
        rename = "o",
        alias = "offers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    offers: Vec<StoredOffer<'a>>,
    #[serde(
        rename = "pr",
        alias = "phone_rejected",
        default,
        skip_serializing_if = "is_false"
    )]
    phone_rejected: bool,
    #[serde(
        rename = "w",
        alias = "wait_until",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    wait_until: Option<Timestamp>,
    #[serde(
        rename = "p",
        alias = "pickups",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pickups: Vec<StoredPickup<'a>>,
    #[serde(
        rename = "de",
        alias = "dials_ended",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    dials_ended: Vec<StoredAttempt>,
    /// Left out when it is every destination (most sessions).
    #[serde(
        rename = "r",
        alias = "route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    route: Option<StoredRoute<'a>>,
    #[serde(
        rename = "rc",
        alias = "recordings",
        default,
        skip_serializing_if = "<[String]>::is_empty"
    )]
    recordings: Cow<'a, [String]>,
    /// When the Dial after the first was returned: its attempt and time.
    #[serde(
        rename = "ds",
        alias = "dial_started",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    dial_started: Option<StoredDialStarted>,
    /// The provider that carried the forwarded call.
    #[serde(
        rename = "pv",
        alias = "provider",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    provider: Option<Cow<'a, str>>,
    /// What that provider said of the caller: its name, its STIR/SHAKEN
    /// verdict (the domain's words: "full", "partial", …).
    #[serde(
        rename = "cn",
        alias = "caller_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    caller_name: Option<Cow<'a, CallerName>>,
    #[serde(
        rename = "cv",
        alias = "caller_verification",
        default,
        skip_serializing_if = "CallerVerification::is_none"
    )]
    caller_verification: CallerVerification,
    #[serde(
        rename = "vm",
        alias = "voicemail_url",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    voicemail_url: Option<Cow<'a, str>>,
    /// The voicemail's transcription (the domain's field names inside).
    #[serde(
        rename = "tr",
        alias = "transcription",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    transcription: Option<Cow<'a, Transcript>>,
    /// The text back to a missed caller (the domain's words inside).
    #[serde(
        rename = "mt",
        alias = "missed_call_text",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    missed_call_text: Option<TextState>,
}

/// When a Dial (not the first) was returned.
#[derive(Serialize, Deserialize)]
struct StoredDialStarted {
    #[serde(rename = "a", alias = "attempt")]
    attempt: StoredAttempt,
    #[serde(rename = "t", alias = "at")]
    at: Timestamp,
}

/// When the session reached each step; a step not reached is left out.
#[derive(Default, Serialize, Deserialize)]
struct StoredTimeline {
    #[serde(
        rename = "r",
        alias = "reported_at",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    reported_at: Option<Timestamp>,
    #[serde(
        rename = "n",
        alias = "notified_at",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    notified_at: Option<Timestamp>,
    #[serde(
        rename = "i",
        alias = "instructed_at",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    instructed_at: Option<Timestamp>,
    #[serde(
        rename = "f",
        alias = "forwarded_at",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    forwarded_at: Option<Timestamp>,
    #[serde(
        rename = "c",
        alias = "connected_at",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    connected_at: Option<Timestamp>,
    #[serde(
        rename = "e",
        alias = "ended_at",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    ended_at: Option<Timestamp>,
}

#[derive(Serialize, Deserialize)]
struct StoredLeg<'a> {
    #[serde(rename = "d", alias = "destination_id")]
    destination_id: Cow<'a, DestinationId>,
    #[serde(rename = "s", alias = "status")]
    status: Coded<LegStatus>,
    #[serde(rename = "a", alias = "attempt", default)]
    attempt: StoredAttempt,
}

#[derive(Serialize, Deserialize)]
struct StoredOffer<'a> {
    #[serde(rename = "d", alias = "destination_id")]
    destination_id: Cow<'a, DestinationId>,
    /// The capability's hash: 32 bytes.
    #[serde(rename = "k", alias = "capability")]
    capability: TokenHash,
    #[serde(
        rename = "r",
        alias = "response",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    response: Option<Coded<OfferResponse>>,
}

#[derive(Serialize, Deserialize)]
struct StoredPickup<'a> {
    #[serde(rename = "a", alias = "attempt")]
    attempt: StoredAttempt,
    #[serde(rename = "d", alias = "destination_id")]
    destination_id: Cow<'a, DestinationId>,
    #[serde(
        rename = "y",
        alias = "accepted",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    accepted: Option<bool>,
}

/// A Dial attempt: written as the pair `[step, round]`; the releases before
/// wrote a map (`step`, `round`), which reads too.
#[derive(Default, Deserialize)]
struct StoredAttempt {
    #[serde(alias = "step", default)]
    s: u16,
    #[serde(alias = "round", default)]
    r: u16,
}

impl Serialize for StoredAttempt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.s, self.r).serialize(s)
    }
}

/// Where the rules sent the call, tagged by `to`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "to")]
enum StoredRoute<'a> {
    #[serde(rename = "d", alias = "destinations")]
    Destinations {
        #[serde(rename = "k", alias = "skipped", default)]
        skipped: Cow<'a, [DestinationId]>,
    },
    #[serde(rename = "p", alias = "phone")]
    Phone,
    #[serde(rename = "v", alias = "voicemail")]
    Voicemail,
    #[serde(rename = "b", alias = "block")]
    Block,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An enum stored as a small integer (its code; append only), read from
/// that or, as the releases before wrote it, from its name.
#[derive(Clone, Copy)]
struct Coded<T>(T);

/// The stored code of each value of an enum; a new value takes the next
/// free code.
trait StoredCode: Sized + Copy + de::DeserializeOwned + 'static {
    const WHAT: &'static str;
    fn code(self) -> u8;
    fn from_code(code: u8) -> Option<Self>;
}

impl<T: StoredCode> Serialize for Coded<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0.code())
    }
}

impl<'de, T: StoredCode> Deserialize<'de> for Coded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<T: StoredCode> de::Visitor<'_> for Visit<T> {
            type Value = Coded<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "the code or name of a {}", T::WHAT)
            }
            fn visit_u64<E: de::Error>(self, code: u64) -> Result<Coded<T>, E> {
                u8::try_from(code)
                    .ok()
                    .and_then(T::from_code)
                    .map(Coded)
                    .ok_or_else(|| E::custom(format!("no {} has the code {code}", T::WHAT)))
            }
            fn visit_i64<E: de::Error>(self, code: i64) -> Result<Coded<T>, E> {
                self.visit_u64(u64::try_from(code).map_err(E::custom)?)
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Coded<T>, E> {
                T::deserialize(name.into_deserializer()).map(Coded)
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

/// `stored_codes!(Type, "what", Variant = code, …)`: the codes of an enum,
/// as an exhaustive match (a new variant fails to compile until it has one).
macro_rules! stored_codes {
    ($t:ty, $what:literal, $($variant:ident = $code:literal),+ $(,)?) => {
        impl StoredCode for $t {
            const WHAT: &'static str = $what;
            fn code(self) -> u8 {
                match self { $(<$t>::$variant => $code),+ }
            }
            fn from_code(code: u8) -> Option<Self> {
                match code { $($code => Some(<$t>::$variant),)+ _ => None }
            }
        }
    };
}

stored_codes!(
    SessionState,
    "session state",
    Ringing = 0,
    Notified = 1,
    Instructed = 2,
    Forwarded = 3,
    Connected = 4,
    Voicemail = 5,
    Missed = 6,
    Cancelled = 7,
    Expired = 8
);
stored_codes!(Mode, "mode", Auto = 0, Pick = 1);
stored_codes!(Instruction, "instruction", Wait = 0, Reject = 1, Ignore = 2);
stored_codes!(
    LegStatus,
    "leg status",
    Ringing = 0,
    Connected = 1,
    Declined = 2,
    Busy = 3,
    NoAnswer = 4,
    Failed = 5,
    Canceled = 6,
    Unreachable = 7
);
stored_codes!(OfferResponse, "offer response", Accepted = 0, Declined = 1);

impl From<DialAttempt> for StoredAttempt {
    fn from(a: DialAttempt) -> Self {
        Self {
            s: a.step,
            r: a.round,
        }
    }
}

impl From<StoredAttempt> for DialAttempt {
    fn from(a: StoredAttempt) -> Self {
        Self {
            step: a.s,
            round: a.r,
        }
    }
}

impl<'a> From<&'a Session> for StoredSession<'a> {
    fn from(session: &'a Session) -> Self {
        let p = session.parts();
        let t = p.timeline;
        Self {
            id: Cow::Borrowed(p.id),
            subscriber: Cow::Borrowed(p.subscriber),
            caller: Cow::Borrowed(p.caller),
            state: Coded(p.state),
            mode: Coded(p.mode),
            instruction: Coded(p.instruction),
            selected_destination: p.selected_destination.map(Cow::Borrowed),
            call_sid: p.call_sid.map(Cow::Borrowed),
            timeline: StoredTimeline {
                reported_at: t.reported_at,
                notified_at: t.notified_at,
                instructed_at: t.instructed_at,
                forwarded_at: t.forwarded_at,
                connected_at: t.connected_at,
                ended_at: t.ended_at,
            },
            legs: p
                .legs
                .iter()
                .map(|l| StoredLeg {
                    destination_id: Cow::Borrowed(&l.destination_id),
                    status: Coded(l.status),
                    attempt: l.attempt.into(),
                })
                .collect(),
            device_call_id: p.device_call_id.map(Cow::Borrowed),
            offers: p
                .offers
                .iter()
                .map(|o| StoredOffer {
                    destination_id: Cow::Borrowed(&o.destination_id),
                    capability: o.capability.clone(),
                    response: o.response.map(Coded),
                })
                .collect(),
            phone_rejected: p.phone_rejected,
            wait_until: p.wait_until,
            pickups: p
                .pickups
                .iter()
                .map(|k| StoredPickup {
                    attempt: k.attempt.into(),
                    destination_id: Cow::Borrowed(&k.destination_id),
                    accepted: k.accepted,
                })
                .collect(),
            dials_ended: p.dials_ended.iter().map(|a| (*a).into()).collect(),
            route: match p.route {
                every if every.is_every_destination() => None,
                Route::Destinations { skipped } => Some(StoredRoute::Destinations {
                    skipped: Cow::Borrowed(skipped),
                }),
                Route::Phone => Some(StoredRoute::Phone),
                Route::Voicemail => Some(StoredRoute::Voicemail),
                Route::Block => Some(StoredRoute::Block),
            },
            recordings: Cow::Borrowed(p.recordings),
            dial_started: p.dial_started.map(|d| StoredDialStarted {
                attempt: d.attempt.into(),
                at: d.at,
            }),
            provider: p.provider.map(Cow::Borrowed),
            caller_name: p.caller_name.map(Cow::Borrowed),
            caller_verification: p.caller_verification,
            voicemail_url: p.voicemail_url.map(Cow::Borrowed),
            transcription: p.transcription.map(Cow::Borrowed),
            missed_call_text: p.missed_call_text,
        }
    }
}

impl From<StoredSession<'_>> for Session {
    fn from(s: StoredSession<'_>) -> Self {
        let t = s.timeline;
        Session::from_parts(OwnedSessionParts {
            id: s.id.into_owned(),
            subscriber: s.subscriber.into_owned(),
            caller: s.caller.into_owned(),
            state: s.state.0,
            mode: s.mode.0,
            instruction: s.instruction.0,
            selected_destination: s.selected_destination.map(Cow::into_owned),
            call_sid: s.call_sid.map(Cow::into_owned),
            timeline: Timeline {
                reported_at: t.reported_at,
                notified_at: t.notified_at,
                instructed_at: t.instructed_at,
                forwarded_at: t.forwarded_at,
                connected_at: t.connected_at,
                ended_at: t.ended_at,
            },
            legs: s
                .legs
                .into_iter()
                .map(|l| Leg {
                    destination_id: l.destination_id.into_owned(),
                    status: l.status.0,
                    attempt: l.attempt.into(),
                })
                .collect(),
            device_call_id: s.device_call_id.map(Cow::into_owned),
            offers: s
                .offers
                .into_iter()
                .map(|o| Offer {
                    destination_id: o.destination_id.into_owned(),
                    capability: o.capability,
                    response: o.response.map(|r| r.0),
                })
                .collect(),
            phone_rejected: s.phone_rejected,
            wait_until: s.wait_until,
            pickups: s
                .pickups
                .into_iter()
                .map(|k| Pickup {
                    attempt: k.attempt.into(),
                    destination_id: k.destination_id.into_owned(),
                    accepted: k.accepted,
                })
                .collect(),
            dials_ended: s.dials_ended.into_iter().map(Into::into).collect(),
            route: match s.route {
                None => Route::default(),
                Some(StoredRoute::Destinations { skipped }) => Route::Destinations {
                    skipped: skipped.into_owned(),
                },
                Some(StoredRoute::Phone) => Route::Phone,
                Some(StoredRoute::Voicemail) => Route::Voicemail,
                Some(StoredRoute::Block) => Route::Block,
            },
            recordings: s.recordings.into_owned(),
            dial_started: s.dial_started.map(|d| DialStarted {
                attempt: d.attempt.into(),
                at: d.at,
            }),
            provider: s.provider.map(Cow::into_owned),
            caller_name: s.caller_name.map(Cow::into_owned),
            caller_verification: s.caller_verification,
            voicemail_url: s.voicemail_url.map(Cow::into_owned),
            transcription: s.transcription.map(Cow::into_owned),
            missed_call_text: s.missed_call_text,
        })
    }
}

/// A session as the store keeps it: [`SESSION_V2`], then the MessagePack
/// of its [`StoredSession`].
pub(crate) fn encode_session(session: &Session) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(SESSION_V2);
    // Writing into a Vec cannot fail, and every stored field serializes.
    rmp_serde::encode::write_named(&mut out, &StoredSession::from(session))
        .expect("a stored session always encodes as MessagePack");
    out
}

/// A session as [`encode_session`] wrote it, or as a release before did
/// (version 1, JSON); its `version` is left at 0, for the store to set.
pub(crate) fn decode_session(bytes: &[u8]) -> anyhow::Result<Session> {
    let stored: StoredSession<'_> = match bytes.first() {
        Some(&SESSION_V2) => {
            rmp_serde::from_slice(&bytes[1..]).context("decoding a stored session")?
        }
        Some(&SESSION_V1) => {
            let named = super::encoding::named_v1_session(&bytes[1..])?;
            rmp_serde::from_slice(&named).context("decoding a version 1 session")?
        }
        Some(b'{') => serde_json::from_slice(bytes).context("decoding a JSON session")?,
        Some(other) => {
            return Err(anyhow!(
                "a stored session starts with an unknown byte {other:#04x}"
            ));
        }
        None => return Err(anyhow!("a stored session is empty")),
    };
    Ok(stored.into())
}

/// A claim as the store keeps it: `<ms> <call sid>`, then, when the
/// provider said anything of the call (its name, what it said of the
/// caller), a tab and those as JSON. The scripts read the call sid up to
/// the tab (a call sid holds no control character).
pub(crate) fn encode_claim(claim: &Claim) -> String {
    let mut text = format!(
        "{} {}",
        claim.forwarded_at.unix_millis(),
        claim.call_sid.as_str()
    );
    let said = ClaimSaid {
        provider: claim.provider.as_deref().map(Cow::Borrowed),
        caller_name: claim.caller_name.as_ref().map(Cow::Borrowed),
        caller_verification: claim.caller_verification,
    };
    if !said.is_empty() {
        text.push('\t');
        // JSON escapes every control character: no newline gets in.
        text.push_str(&serde_json::to_string(&said).expect("a claim's fields encode as JSON"));
    }
    text
}

/// What the provider said of a forwarded call, beside its claim.
#[derive(Default, Serialize, Deserialize)]
struct ClaimSaid<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller_name: Option<Cow<'a, CallerName>>,
    #[serde(default, skip_serializing_if = "CallerVerification::is_none")]
    caller_verification: CallerVerification,
}

impl ClaimSaid<'_> {
    fn is_empty(&self) -> bool {
        self.provider.is_none() && self.caller_name.is_none() && self.caller_verification.is_none()
    }
}

/// A claim as [`encode_claim`] wrote it, or as JSON (the releases before).
pub(crate) fn decode_claim(text: &str) -> anyhow::Result<Claim> {
    if text.starts_with('{') {
        #[derive(Deserialize)]
        struct JsonClaim<'a> {
            call_sid: CallSid,
            forwarded_at: Timestamp,
            #[serde(flatten, borrow)]
            said: ClaimSaid<'a>,
        }
        let JsonClaim {
            call_sid,
            forwarded_at,
            said,
        } = serde_json::from_str(text).context("decoding a JSON claim")?;
        return Ok(claim_with(call_sid, forwarded_at, said));
    }
    let (claim, said) = match text.split_once('\t') {
        Some((claim, said)) => (
            claim,
            serde_json::from_str(said).context("decoding what a claim's provider said")?,
        ),
        None => (text, ClaimSaid::default()),
    };
    let (at, sid) = claim
        .split_once(' ')
        .ok_or_else(|| anyhow!("a stored claim without its call id"))?;
    let call_sid = CallSid::parse(sid).map_err(|e| anyhow!("a stored claim's call id: {e}"))?;
    let forwarded_at = at
        .parse()
        .ok()
        .and_then(Timestamp::from_unix_millis)
        .ok_or_else(|| anyhow!("a stored claim's time is not milliseconds"))?;
    Ok(claim_with(call_sid, forwarded_at, said))
}

fn claim_with(call_sid: CallSid, forwarded_at: Timestamp, said: ClaimSaid<'_>) -> Claim {
    Claim {
        call_sid,
        forwarded_at,
        provider: said.provider.map(Cow::into_owned),
        caller_name: said.caller_name.map(Cow::into_owned),
        caller_verification: said.caller_verification,
    }
}

#[cfg(test)]
mod tests;
