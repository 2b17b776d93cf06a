//! The neutral call model: the forwarded call, its callbacks and the
//! script we answer, in no provider's words. The flow speaks only these;
//! each provider adapter (`crate::providers`) reads its requests into them
//! and renders a [`CallScript`] into its markup, so the adapters depend on
//! the flow and never the other way round.

use crate::domain::caller_context::CallerContext;
use crate::domain::ids::CallSid;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::rules::RingTone;
use crate::domain::session::TranscriptionStatus;
use crate::domain::subscriber::Target;

/// How a provider screens a call on the callee's leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screening {
    /// The whisper markup gathers the key itself and posts it to
    /// `screen_result` (Twilio `<Number url>` + `<Gather>`).
    GatherOnLeg,
    /// The Dial asks for the key (Plivo `confirmKey`); the whisper markup
    /// only speaks.
    ConfirmKey,
}

/// The paths of a provider's callback routes.
#[derive(Debug, Clone, Copy)]
pub struct ProviderRoutes {
    /// The number's voice (answer) URL.
    pub answer: &'static str,
    /// The call status (hangup) callback.
    pub status: &'static str,
    pub dial_status: &'static str,
    pub voicemail: &'static str,
    pub screen: &'static str,
    pub screen_result: &'static str,
    /// A recording of a Dial's legs is ready.
    pub recording: &'static str,
    /// The provider's transcription of a voicemail is ready.
    pub transcription: &'static str,
}

impl ProviderRoutes {
    /// Every path, with what calls it.
    pub fn described(&self) -> [(&'static str, &'static str); 8] {
        [
            (
                self.answer,
                "a call reaches the forwarding number (the number's voice URL)",
            ),
            (self.dial_status, "a Dial we returned ended (its action)"),
            (
                self.screen,
                "a dialed leg picked up: the whisper (a noun's url or confirmSound)",
            ),
            (self.screen_result, "the key a screened callee pressed"),
            (self.voicemail, "a Record we returned ended"),
            (
                self.recording,
                "the recording of a Dial's legs is ready (subscribers with record: answer)",
            ),
            (
                self.transcription,
                "the transcription of a voicemail is ready (subscribers with transcribe_voicemail)",
            ),
            (
                self.status,
                "the call's status changed (set on the number), or a Dial's leg events",
            ),
        ]
    }
}

/// A call reaching a forwarding number, in no provider's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCall {
    /// The provider's id of the call (Twilio `CallSid`, Plivo `CallUUID`).
    pub call_id: CallSid,
    pub from: Caller,
    /// The forwarding number called; `None` when it is not a phone number.
    pub to: Option<PhoneNumber>,
    /// The subscriber the carrier forwarded from, when it says so.
    pub forwarded_from: Option<PhoneNumber>,
    /// What the provider says of the caller: its name lookup and its
    /// STIR/SHAKEN verdict, where it sends them.
    pub caller: CallerContext,
}

/// A finished recording, in no provider's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Where the provider keeps it.
    pub url: String,
    pub duration_secs: u32,
}

/// A provider's transcription of a voicemail, in no provider's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcription {
    pub status: TranscriptionStatus,
    /// The text; `None` when it failed.
    pub text: Option<String>,
    /// The recording it transcribes, where the callback says (Plivo's does
    /// not).
    pub recording_url: Option<String>,
}

/// What the status route hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusReport {
    /// The forwarded call ended (its final status).
    CallEnded,
    /// A leg of a Dial of ours picked up, or was bridged to the caller
    /// (providers that report leg events per Dial, Plivo's `callbackUrl`);
    /// `to` is the dialed target as far as it can be read back.
    Leg { to: Option<Target>, bridged: bool },
    /// Anything else (a call still in progress): nothing to do.
    Progress,
}

/// What we tell the CPaaS to do with a call, in no provider's words. An
/// empty script is an empty response (on a whisper leg: bridge the call).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallScript(pub Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Speak a text to the caller.
    Say(String),
    /// Ring one or more targets; several targets ring at once and the first
    /// to answer wins.
    Dial(Dial),
    /// Record a message, then post the result to `action_url`; with
    /// `transcribe_url`, the provider also transcribes it and posts the
    /// text there.
    Record {
        action_url: String,
        max_length_secs: u32,
        transcribe_url: Option<String>,
    },
    /// Speak `prompt` while waiting for up to `num_digits` keypresses, then
    /// post them to `action_url`. Without input the script goes on with the
    /// next step.
    Gather {
        action_url: String,
        num_digits: u8,
        timeout_secs: u32,
        prompt: String,
    },
    Hangup,
    /// Refuse the call with a busy signal (a blocked caller), without
    /// answering it where the provider can.
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    pub targets: Vec<DialTarget>,
    /// Shown to the dialed leg: the original caller, never a withheld marker.
    /// `None` leaves the provider's default (the called number).
    pub caller_id: Option<PhoneNumber>,
    /// Seconds to ring before giving up (the subscriber's `ring_timeout_secs`).
    pub timeout_secs: u32,
    /// Where the provider posts the outcome of the Dial (our `dial-status`).
    pub action_url: String,
    /// For providers that screen per Dial (Plivo `confirmSound`): the
    /// whisper every answering leg hears when any target is screened.
    pub screen_url: Option<String>,
    /// For providers that report leg events per Dial (Plivo `callbackUrl`):
    /// where they go, so that we learn which leg answered.
    pub leg_events_url: Option<String>,
    /// Record both parties from the moment a leg answers, and post the
    /// finished recording here (our `recording` route); `None` records
    /// nothing.
    pub record_url: Option<String>,
    /// The ringback the caller hears meanwhile, where the provider can
    /// choose it; `None` leaves the provider's.
    pub ring_tone: Option<RingTone>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialTarget {
    pub target: Target,
    /// For providers that run markup per leg (Twilio `<Number url>`): fetched
    /// when this leg picks up and run on it before the bridge; it tells us
    /// who answered, and screens when `screened`.
    pub pickup_url: Option<String>,
    /// Whether the person who answers must press 1 first.
    pub screened: bool,
}

/// A text message to a caller, in no provider's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMessage {
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub body: String,
}

/// What one attempt at sending a text came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextAttempt {
    /// The provider's API took it.
    Sent,
    /// The provider's API said it took nothing and to come back (it could
    /// not be reached, 429, 503), after its `Retry-After` if it sent one.
    TryAgain {
        reason: String,
        retry_after: Option<String>,
    },
    /// Refused, or an answer that may mean it was sent after all (a
    /// timeout): not tried again, so that nobody gets it twice.
    Failed(String),
    /// The provider has no credentials for its API: the variable missing.
    NotConfigured(&'static str),
}

/// Sends texts through the REST API of the provider (by its name, as in
/// `PROVIDERS`) that carried a call: one attempt a call, the flow decides
/// on retries.
#[async_trait::async_trait]
pub trait TextGateway: Send + Sync {
    async fn send(&self, provider: &str, message: &TextMessage) -> TextAttempt;
}
