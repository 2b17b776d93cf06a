//! CPaaS providers (Twilio, Plivo). Each provider module owns its signature
//! check, the parsing of its webhooks into the neutral model here, and the
//! rendering of a [`CallScript`] into its markup. The call flow speaks only
//! this neutral model.

mod markup;
pub(crate) mod parsed_markup;
pub mod plivo;
#[cfg(test)]
mod properties;
pub mod twilio;

use actix_web::http::header::HeaderMap;
use secrecy::SecretString;

use crate::config::Config;
use crate::domain::dial::{CallSid, DialResult};
use crate::domain::phone::{Caller, PhoneNumber, Region};
use crate::domain::subscriber::Target;

pub use self::twilio::signature::SignatureError;

/// What each provider supplies; the routes and the call flow are shared.
/// Adding a provider is one module implementing this, plus its routes.
pub trait Provider: Send + Sync + 'static {
    /// The first segment of its routes (`/twilio/...`).
    const NAME: &'static str;
    /// The variable holding its auth token; unset → its routes answer 503.
    const AUTH_TOKEN_VARIABLE: &'static str;
    /// The header its signature comes in: a request without it is refused
    /// before its body is read.
    const SIGNATURE_HEADER: &'static str;
    /// The `Content-Type` of its markup.
    const MARKUP_CONTENT_TYPE: &'static str;
    /// Its callback routes, for the URLs the markup points back at.
    const ROUTES: ProviderRoutes;
    /// How it lets a screening destination take the call.
    const SCREENING: Screening;

    fn auth_token(config: &Config) -> Option<&SecretString>;

    /// Checks the signature of a request to `url` (`PUBLIC_BASE_URL` + the
    /// raw path and query, as received).
    fn verify(
        auth_token: &[u8],
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
        params: &Params,
    ) -> Result<(), SignatureError>;

    /// The call reaching a forwarding number; `None` when the request does
    /// not describe one (no call id).
    fn inbound_call(params: &Params, region: Region) -> Option<InboundCall>;

    /// The id of the call a callback is about.
    fn call_id(params: &Params) -> Option<CallSid>;

    /// How a `<Dial>` we returned ended.
    fn dial_result(params: &Params) -> DialResult;

    /// The keys a screened callee pressed.
    fn digits(params: &Params) -> Option<&str>;

    /// What a request to the status route reports.
    fn status_report(params: &Params, region: Region) -> StatusReport;

    /// The recording a `<Record>` we returned made; `None` when nothing was
    /// recorded.
    fn recording_url(params: &Params) -> Option<String>;

    fn render(script: &CallScript) -> String;
}

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
}

/// Form parameters as received: decoded, in order, repeated names kept
/// (signatures depend on all three).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_form(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
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
    /// Record a message, then post the result to `action_url`.
    Record {
        action_url: String,
        max_length_secs: u32,
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
