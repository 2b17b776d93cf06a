//! What each CPaaS says on the wire, as the service's callers see it: its
//! routes and credential, its parameters and how it writes numbers and call
//! ids, how it signs a request, and how its markup spells each verb and noun.
//! The simulator plays the providers with it, and the server's black-box
//! tests (`server/tests/api`) speak to the service with it: each provider's
//! wire format is written here once, outside its adapter in the server.
//! Adding a provider is its adapter there and its entry here.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use ringrelay_server::providers::plivo::signature::{self as plivo_signature, Method};
use ringrelay_server::providers::telnyx::signature as telnyx_signature;
use ringrelay_server::providers::twilio::signature as twilio_signature;
use serde::Deserialize;

pub use ringrelay_markup::{Element, parse};
/// The shapes of a provider's routes and of its screening are the service's
/// own; their values here are the contract's, written independently.
pub use ringrelay_server::flow::model::{ProviderRoutes, Screening};

/// The SignalWire space of the simulator and the tests: Verto clients are
/// `<identity>@example.verto.signalwire.com` (`SIGNALWIRE_SIP_DOMAIN`).
pub const SIGNALWIRE_SPACE: &str = "example";

/// The domain Plivo endpoints (softphones) register under.
const PLIVO_ENDPOINT_DOMAIN: &str = "phone.plivo.com";
/// The domain of Telnyx SIP credentials.
const TELNYX_SIP_DOMAIN: &str = "sip.telnyx.com";

/// The CPaaS providers whose webhooks the service answers (docs/providers.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cpaas {
    #[default]
    Twilio,
    Plivo,
    Telnyx,
    #[serde(rename = "signalwire")]
    SignalWire,
}

/// How a dialed leg ended, in no provider's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialEnd {
    Answered,
    Busy,
    NoAnswer,
    Failed,
}

impl Cpaas {
    pub const ALL: [Self; 4] = [Self::Twilio, Self::Plivo, Self::Telnyx, Self::SignalWire];

    /// Its name in scenario files and in its routes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Plivo => "plivo",
            Self::Telnyx => "telnyx",
            Self::SignalWire => "signalwire",
        }
    }

    /// Another provider (the next in [`Cpaas::ALL`], cycling).
    pub fn other(self) -> Self {
        let index = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(index + 1) % Self::ALL.len()]
    }

    /// Its webhook routes on the service.
    pub fn routes(self) -> ProviderRoutes {
        match self {
            Self::Twilio => ProviderRoutes {
                answer: "/twilio/voice",
                dial_status: "/twilio/dial-status",
                voicemail: "/twilio/voicemail",
                screen: "/twilio/screen",
                screen_result: "/twilio/screen-result",
                status: "/twilio/status",
                recording: "/twilio/recording",
                transcription: "/twilio/transcription",
            },
            Self::Plivo => ProviderRoutes {
                answer: "/plivo/answer",
                dial_status: "/plivo/dial-status",
                voicemail: "/plivo/voicemail",
                screen: "/plivo/screen",
                screen_result: "/plivo/screen-result",
                status: "/plivo/hangup",
                recording: "/plivo/recording",
                transcription: "/plivo/transcription",
            },
            Self::Telnyx => ProviderRoutes {
                answer: "/telnyx/voice",
                dial_status: "/telnyx/dial-status",
                voicemail: "/telnyx/voicemail",
                screen: "/telnyx/screen",
                screen_result: "/telnyx/screen-result",
                status: "/telnyx/status",
                recording: "/telnyx/recording",
                transcription: "/telnyx/transcription",
            },
            Self::SignalWire => ProviderRoutes {
                answer: "/signalwire/voice",
                dial_status: "/signalwire/dial-status",
                voicemail: "/signalwire/voicemail",
                screen: "/signalwire/screen",
                screen_result: "/signalwire/screen-result",
                status: "/signalwire/status",
                recording: "/signalwire/recording",
                transcription: "/signalwire/transcription",
            },
        }
    }

    /// The service's variable holding its credential (unset: its routes
    /// answer 503).
    pub fn credential_variable(self) -> &'static str {
        match self {
            Self::Twilio => "TWILIO_AUTH_TOKEN",
            Self::Plivo => "PLIVO_AUTH_TOKEN",
            Self::Telnyx => "TELNYX_PUBLIC_KEY",
            Self::SignalWire => "SIGNALWIRE_SIGNING_KEY",
        }
    }

    /// What the `Content-Type` of its markup starts with.
    pub fn markup_content_type(self) -> &'static str {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => "text/xml",
            Self::Plivo => "application/xml",
        }
    }

    // -- signatures ----------------------------------------------------------

    /// The header carrying the signature (Plivo's nonce and Telnyx's
    /// timestamp come in another).
    pub fn signature_header(self) -> &'static str {
        match self {
            Self::Twilio => "X-Twilio-Signature",
            Self::Plivo => "X-Plivo-Signature-V3",
            Self::Telnyx => "telnyx-signature-ed25519",
            Self::SignalWire => "X-SignalWire-Signature",
        }
    }

    /// Whether its signature covers the URL requested (Twilio's and
    /// SignalWire's HMAC, Plivo's V3). Telnyx signs the timestamp and the
    /// body only: a request replayed to another URL of ours verifies.
    pub fn signs_the_url(self) -> bool {
        !matches!(self, Self::Telnyx)
    }

    /// The headers signing a POST of `params` (its body as [`form_body`]
    /// writes them) to the absolute `url`, as the provider signs it now,
    /// with the service's own signing code. `secret` is the credential the
    /// provider shares with the service, or for Telnyx the 32-byte seed of
    /// its Ed25519 key (the service holds the public half); a seed of
    /// another length signs nothing.
    pub fn sign(
        self,
        secret: &[u8],
        url: &str,
        params: &[(String, String)],
    ) -> Vec<(&'static str, String)> {
        match self {
            Self::Twilio | Self::SignalWire => vec![(
                self.signature_header(),
                twilio_signature::sign(secret, url, params),
            )],
            Self::Plivo => {
                let nonce = format!("{:020}", rand::random::<u64>());
                let signature = plivo_signature::sign_v3(secret, Method::Post, url, params, &nonce);
                vec![
                    ("X-Plivo-Signature-V3", signature),
                    ("X-Plivo-Signature-V3-Nonce", nonce),
                ]
            }
            Self::Telnyx => {
                let Ok(seed) = <[u8; 32]>::try_from(secret) else {
                    return Vec::new();
                };
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                let timestamp = unix_now().to_string();
                let signature =
                    telnyx_signature::sign(&key, &timestamp, form_body(params).as_bytes());
                vec![
                    ("telnyx-signature-ed25519", signature),
                    ("telnyx-timestamp", timestamp),
                ]
            }
        }
    }

    // -- parameters ----------------------------------------------------------

    /// The parameter naming the call.
    pub fn call_id_param(self) -> &'static str {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => "CallSid",
            Self::Plivo => "CallUUID",
        }
    }

    /// Every parameter that repeats the (A leg's) call id.
    pub fn call_id_params(self) -> &'static [&'static str] {
        match self {
            Self::Twilio | Self::SignalWire => &["CallSid"],
            // Telnyx repeats the id for older integrations.
            Self::Telnyx => &["CallSid", "CallSidLegacy"],
            Self::Plivo => &[
                "CallUUID",
                "ALegUUID",
                "ALegRequestUUID",
                "RequestUUID",
                "DialALegUUID",
            ],
        }
    }

    /// A call id no other call of this process has, shaped as the provider
    /// shapes them.
    pub fn new_call_id(self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let random: u64 = rand::random();
        match self {
            Self::Twilio => format!("CA{random:016x}{n:016x}"),
            Self::Plivo | Self::SignalWire => {
                let hex = format!("{random:016x}{n:016x}");
                format!(
                    "{}-{}-{}-{}-{}",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            }
            // A call control id: `v3:` and URL-safe base64, with `-` and
            // `_` in it as real ones have.
            Self::Telnyx => {
                let mut bytes = [0xfb_u8; 39];
                bytes[..8].copy_from_slice(&random.to_be_bytes());
                bytes[8..16].copy_from_slice(&n.to_be_bytes());
                format!("v3:{}", URL_SAFE_NO_PAD.encode(bytes))
            }
        }
    }

    /// The parameter of the voice webhook holding the caller's name (the
    /// provider's CNAM lookup).
    pub fn caller_name_param(self) -> &'static str {
        match self {
            Self::Twilio | Self::Plivo | Self::SignalWire => "CallerName",
            Self::Telnyx => "CallerIdName",
        }
    }

    /// The parameters of the voice webhook saying the STIR/SHAKEN verdict
    /// `verdict` (`verified`, `partial`, `failed`, `none`), as the provider
    /// writes it: Twilio's (and SignalWire's) `StirVerstat`, Telnyx's
    /// attestation and whether it validated, Plivo's attestation and
    /// verification.
    pub fn verification_params(self, verdict: &str) -> Vec<(&'static str, &'static str)> {
        match (self, verdict) {
            (Self::Twilio | Self::SignalWire, "verified") => {
                vec![("StirVerstat", "TN-Validation-Passed-A")]
            }
            (Self::Twilio | Self::SignalWire, "partial") => {
                vec![("StirVerstat", "TN-Validation-Passed-B")]
            }
            (Self::Twilio | Self::SignalWire, "failed") => {
                vec![("StirVerstat", "TN-Validation-Failed-A")]
            }
            (Self::Twilio | Self::SignalWire, _) => vec![("StirVerstat", "No-TN-Validation")],
            (Self::Telnyx, "verified") => vec![
                ("ShakenStirAttestation", "A"),
                ("ShakenStirValidated", "true"),
            ],
            (Self::Telnyx, "partial") => vec![
                ("ShakenStirAttestation", "C"),
                ("ShakenStirValidated", "true"),
            ],
            (Self::Telnyx, "failed") => vec![
                ("ShakenStirAttestation", "A"),
                ("ShakenStirValidated", "false"),
            ],
            (Self::Telnyx, _) => Vec::new(),
            (Self::Plivo, "verified") => {
                vec![("STIRAttestation", "A"), ("STIRVerification", "Verified")]
            }
            (Self::Plivo, "partial") => {
                vec![("STIRAttestation", "B"), ("STIRVerification", "Verified")]
            }
            (Self::Plivo, "failed") => {
                vec![
                    ("STIRAttestation", "A"),
                    ("STIRVerification", "Not Verified"),
                ]
            }
            (Self::Plivo, _) => vec![("STIRVerification", "Not Applicable")],
        }
    }

    /// Every parameter [`Cpaas::verification_params`] may write.
    pub fn all_verification_params(self) -> &'static [&'static str] {
        match self {
            Self::Twilio | Self::SignalWire => &["StirVerstat"],
            Self::Telnyx => &["ShakenStirAttestation", "ShakenStirValidated"],
            Self::Plivo => &["STIRAttestation", "STIRVerification"],
        }
    }

    /// The parameter of the Dial action callback holding how the leg ended.
    pub fn dial_status_param(self) -> &'static str {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => "DialCallStatus",
            Self::Plivo => "DialStatus",
        }
    }

    /// How the provider says a leg ended.
    pub fn dial_status(self, end: DialEnd) -> &'static str {
        match end {
            DialEnd::Answered => "completed",
            DialEnd::Busy => "busy",
            DialEnd::NoAnswer => "no-answer",
            DialEnd::Failed => "failed",
        }
    }

    /// Every dial status meaning that the callee answered.
    pub fn answered_statuses(self) -> &'static [&'static str] {
        match self {
            // `answered` is Twilio's word for a conference leg; SignalWire
            // documents Twilio's values.
            Self::Twilio | Self::SignalWire => &["completed", "answered"],
            Self::Plivo | Self::Telnyx => &["completed"],
        }
    }

    /// The parameter of the Record action callback holding the recording.
    pub fn recording_url_param(self) -> &'static str {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => "RecordingUrl",
            Self::Plivo => "RecordUrl",
        }
    }

    /// The parameters of the recording callback holding the recording and
    /// its length.
    pub fn recording_params(self) -> (&'static str, &'static str) {
        (self.recording_url_param(), "RecordingDuration")
    }

    /// An E.164 number (or a withheld marker) as the provider writes it in
    /// its parameters and its markup: Plivo drops the `+`.
    pub fn number(self, number: &str) -> String {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => number.to_owned(),
            Self::Plivo => number.strip_prefix('+').unwrap_or(number).to_owned(),
        }
    }

    /// A `To` that is no phone number (a call to a softphone).
    pub fn to_not_a_number(self) -> &'static str {
        match self {
            Self::Twilio => "client:alice",
            Self::Plivo => "sip:alice@phone.plivo.com",
            Self::Telnyx => "sip:alice@sip.telnyx.com",
            Self::SignalWire => "sip:alice@example.sip.signalwire.com",
        }
    }

    // -- markup --------------------------------------------------------------

    /// The verb that speaks.
    pub fn say(self) -> &'static str {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => "Say",
            Self::Plivo => "Speak",
        }
    }

    /// The verb that refuses a call with a busy signal (`reason="busy"`):
    /// Plivo's is a Hangup with a reason.
    pub fn reject(self) -> &'static str {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => "Reject",
            Self::Plivo => "Hangup",
        }
    }

    /// The verb that collects keypresses.
    pub fn gather(self) -> &'static str {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => "Gather",
            Self::Plivo => "GetInput",
        }
    }

    /// The noun dialing a phone, as (element, text).
    pub fn phone_noun(self, e164: &str) -> (String, String) {
        ("Number".into(), self.number(e164))
    }

    /// The noun dialing a softphone identity, as (element, text).
    pub fn client_noun(self, identity: &str) -> (String, String) {
        match self {
            Self::Twilio => ("Client".into(), identity.into()),
            Self::Plivo => (
                "User".into(),
                format!("sip:{identity}@{PLIVO_ENDPOINT_DOMAIN}"),
            ),
            // A Telnyx SIP credential.
            Self::Telnyx => ("Sip".into(), format!("sip:{identity}@{TELNYX_SIP_DOMAIN}")),
            // A Verto client of the space.
            Self::SignalWire => (
                "Verto".into(),
                format!("{identity}@{SIGNALWIRE_SPACE}.verto.signalwire.com"),
            ),
        }
    }

    /// The softphone identity a noun dials, if it dials one: the inverse of
    /// [`Cpaas::client_noun`].
    pub fn client_identity<'a>(self, element: &str, text: &'a str) -> Option<&'a str> {
        let (noun, _) = self.client_noun("");
        if element != noun {
            return None;
        }
        match self {
            Self::Twilio => Some(text),
            Self::Plivo => text
                .strip_prefix("sip:")?
                .strip_suffix(PLIVO_ENDPOINT_DOMAIN)?
                .strip_suffix('@'),
            Self::Telnyx => text
                .strip_prefix("sip:")?
                .strip_suffix(TELNYX_SIP_DOMAIN)?
                .strip_suffix('@'),
            Self::SignalWire => text
                .strip_suffix(".verto.signalwire.com")?
                .strip_suffix(SIGNALWIRE_SPACE)?
                .strip_suffix('@'),
        }
    }

    /// The noun dialing a SIP URI, as (element, text).
    pub fn sip_noun(self, uri: &str) -> (String, String) {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => ("Sip".into(), uri.into()),
            Self::Plivo => ("User".into(), uri.into()),
        }
    }

    /// Attributes every `<Dial>` of the service carries on this provider.
    pub fn dial_attributes(self) -> &'static [(&'static str, &'static str)] {
        match self {
            // The caller hears ringback until a callee answers.
            Self::Twilio | Self::SignalWire => &[("answerOnBridge", "true")],
            // Plivo runs the XML our action answers.
            Self::Plivo => &[("redirect", "true")],
            // TeXML has no answerOnBridge: Telnyx answers the call before it
            // fetches our markup.
            Self::Telnyx => &[],
        }
    }

    pub fn screening(self) -> Screening {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => Screening::GatherOnLeg,
            Self::Plivo => Screening::ConfirmKey,
        }
    }

    /// The whisper URL a `<Dial>` makes the provider fetch when a callee
    /// answers, if any: the TwiML family's first `<Number url>`, Plivo's
    /// `confirmSound`.
    pub fn whisper_url(self, dial: &Element) -> Option<&str> {
        match self.screening() {
            Screening::GatherOnLeg => dial.children.iter().find_map(|noun| noun.attr("url")),
            Screening::ConfirmKey => dial.attr("confirmSound"),
        }
    }

    /// Where a forwarded call's recording is posted once ready, if the
    /// markup records it: the TwiML family's `<Dial recordingStatusCallback>`,
    /// Plivo's `<Record startOnDialAnswer callbackUrl>` just before the Dial.
    pub fn recording_callback(self, response: &Element) -> Option<&str> {
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => {
                response.child("Dial")?.attr("recordingStatusCallback")
            }
            Self::Plivo => response
                .children
                .iter()
                .find(|verb| verb.name == "Record" && verb.attr("startOnDialAnswer").is_some())?
                .attr("callbackUrl"),
        }
    }
}

impl Cpaas {
    // -- voicemail transcription ---------------------------------------------

    /// Where a voicemail `<Record>` asks its transcription to be posted, if
    /// it asks for one: Twilio's and SignalWire's `transcribe="true"
    /// transcribeCallback`, Telnyx's `transcription="true"
    /// transcriptionCallback`, Plivo's `transcriptionType="auto"
    /// transcriptionUrl`.
    pub fn transcription_callback(self, record: &Element) -> Option<&str> {
        let (flag, on, callback) = match self {
            Self::Twilio | Self::SignalWire => ("transcribe", "true", "transcribeCallback"),
            Self::Telnyx => ("transcription", "true", "transcriptionCallback"),
            Self::Plivo => ("transcriptionType", "auto", "transcriptionUrl"),
        };
        (record.attr(flag) == Some(on))
            .then(|| record.attr(callback))
            .flatten()
    }

    /// The form of the provider's transcription callback for the voicemail
    /// at `recording_url` of call `call_id`: its `text`, or a failure
    /// (`None`). The call id comes first, so that it is as easy to replace
    /// as in the other requests.
    pub fn transcription_params(
        self,
        call_id: &str,
        recording_url: &str,
        text: Option<&str>,
    ) -> Vec<(String, String)> {
        let pair = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        match self {
            Self::Twilio | Self::Telnyx | Self::SignalWire => {
                let mut params = vec![
                    pair("CallSid", call_id),
                    pair("AccountSid", "AC00000000000000000000000000000001"),
                    pair("RecordingSid", "RE00000000000000000000000000000001"),
                    pair("RecordingUrl", recording_url),
                    pair("TranscriptionSid", "TR00000000000000000000000000000001"),
                    pair(
                        "TranscriptionStatus",
                        if text.is_some() {
                            "completed"
                        } else {
                            "failed"
                        },
                    ),
                ];
                if let Some(text) = text {
                    params.push(pair("TranscriptionText", text));
                }
                params
            }
            // Plivo's carries no recording URL: the recording's id.
            Self::Plivo => vec![
                pair("call_uuid", call_id),
                pair("recording_id", "0d5b6e3a-0000-4000-8000-000000000001"),
                pair("duration", "7"),
                pair("transcription_charge", "0.05"),
                pair("transcription_rate", "0.05"),
                pair("transcription", text.unwrap_or_default()),
                pair(
                    "error",
                    if text.is_some() {
                        ""
                    } else {
                        "Recording duration too long for transcription"
                    },
                ),
            ],
        }
    }
}

/// The account a provider's REST API knows the service by: the
/// credentials its variables give (Twilio's and Plivo's passwords are their
/// auth tokens, which the caller of [`Cpaas::read_text`] holds).
pub const TWILIO_ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const PLIVO_AUTH_ID: &str = "MAXXXXXXXXXXXXXXXXXX";
pub const TELNYX_API_KEY: &str = "KEY0123456789ABCDEF_test";
pub const SIGNALWIRE_PROJECT_ID: &str = "8a5d0d0c-0000-4000-8000-000000000001";
pub const SIGNALWIRE_API_TOKEN: &str = "PTtest0123456789";

/// A request to a provider's REST API, as received.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    pub method: &'a str,
    /// The path (and query).
    pub path: &'a str,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// A text message, as a provider's API read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SentText {
    pub from: String,
    pub to: String,
    pub body: String,
}

impl Cpaas {
    // -- the REST API: missed-call texts -------------------------------------

    /// The variables that give the service this provider's API at `base`
    /// (its own auth token is the webhooks' credential, set apart).
    pub fn api_variables(self, base: &str) -> Vec<(&'static str, String)> {
        let base = base.to_owned();
        match self {
            Self::Twilio => vec![
                ("TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT_SID.into()),
                ("TWILIO_API_BASE", base),
            ],
            Self::Plivo => vec![
                ("PLIVO_AUTH_ID", PLIVO_AUTH_ID.into()),
                ("PLIVO_API_BASE", base),
            ],
            Self::Telnyx => vec![
                ("TELNYX_API_KEY", TELNYX_API_KEY.into()),
                ("TELNYX_API_BASE", base),
            ],
            Self::SignalWire => vec![
                ("SIGNALWIRE_PROJECT_ID", SIGNALWIRE_PROJECT_ID.into()),
                ("SIGNALWIRE_API_TOKEN", SIGNALWIRE_API_TOKEN.into()),
                ("SIGNALWIRE_API_BASE", base),
            ],
        }
    }

    /// The text message `request` sends, read as this provider's API reads
    /// one (method, path, credentials, content type, fields), or what it
    /// would refuse. `auth_token`: Twilio's or Plivo's, their API password.
    pub fn read_text(self, request: &ApiRequest<'_>, auth_token: &str) -> Result<SentText, String> {
        let expect = |what: &str, got: Option<&str>, want: &str| {
            if got == Some(want) {
                Ok(())
            } else {
                Err(format!("{what} {got:?}, expected {want:?}"))
            }
        };
        let basic = |user: &str, password: &str| {
            format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
        };
        expect("method", Some(request.method), "POST")?;
        let form = || {
            expect(
                "content type",
                request.content_type,
                "application/x-www-form-urlencoded",
            )?;
            let fields: std::collections::BTreeMap<String, String> =
                url::form_urlencoded::parse(request.body)
                    .into_owned()
                    .collect();
            let field = |name: &str| {
                fields
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("no {name} in the form"))
            };
            Ok::<_, String>(SentText {
                from: field("From")?,
                to: field("To")?,
                body: field("Body")?,
            })
        };
        let json = |from: &str, to: &str, text: &str, plus: &str| {
            expect("content type", request.content_type, "application/json")?;
            let body: serde_json::Value = serde_json::from_slice(request.body)
                .map_err(|e| format!("the body is not JSON: {e}"))?;
            let field = |name: &str| {
                body[name]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("no {name} in the JSON"))
            };
            Ok::<_, String>(SentText {
                from: format!("{plus}{}", field(from)?),
                to: format!("{plus}{}", field(to)?),
                body: field(text)?,
            })
        };
        match self {
            Self::Twilio | Self::SignalWire => {
                let (prefix, user, password) = if self == Self::Twilio {
                    ("", TWILIO_ACCOUNT_SID, auth_token)
                } else {
                    ("/api/laml", SIGNALWIRE_PROJECT_ID, SIGNALWIRE_API_TOKEN)
                };
                let path = format!("{prefix}/2010-04-01/Accounts/{user}/Messages.json");
                expect("path", Some(request.path), &path)?;
                expect(
                    "authorization",
                    request.authorization,
                    &basic(user, password),
                )?;
                form()
            }
            Self::Plivo => {
                let path = format!("/v1/Account/{PLIVO_AUTH_ID}/Message/");
                expect("path", Some(request.path), &path)?;
                let auth = basic(PLIVO_AUTH_ID, auth_token);
                expect("authorization", request.authorization, &auth)?;
                // Plivo writes numbers without the `+`.
                json("src", "dst", "text", "+")
            }
            Self::Telnyx => {
                expect("path", Some(request.path), "/v2/messages")?;
                let bearer = format!("Bearer {TELNYX_API_KEY}");
                expect("authorization", request.authorization, &bearer)?;
                json("from", "to", "text", "")
            }
        }
    }

    /// What this provider's API answers a message it took.
    pub fn text_taken(self) -> (u16, serde_json::Value) {
        match self {
            Self::Twilio | Self::SignalWire => (
                201,
                serde_json::json!({"sid": "SM00000000000000000000000000000001", "status": "queued"}),
            ),
            Self::Plivo => (
                202,
                serde_json::json!({"message": "message(s) queued", "message_uuid": ["0d5b6e3a-0000-4000-8000-000000000002"]}),
            ),
            Self::Telnyx => (
                200,
                serde_json::json!({"data": {"id": "40385f64-5717-4562-b3fc-2c963f66afa6", "record_type": "message"}}),
            ),
        }
    }
}

/// The urlencoded body of `params`, in order: the bytes a webhook sends,
/// and so the bytes a Telnyx signature is over.
pub fn form_body(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The Unix seconds of now, as Telnyx writes `telnyx-timestamp`.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The public half of the Ed25519 key with this seed, as Telnyx shows it
/// (base64 of 32 bytes): the service's `TELNYX_PUBLIC_KEY`.
pub fn telnyx_public_key(seed: &[u8; 32]) -> String {
    BASE64.encode(
        ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_noun_reads_back_as_its_identity_and_nothing_else_does() {
        for cpaas in Cpaas::ALL {
            let (element, text) = cpaas.client_noun("alice");
            assert_eq!(cpaas.client_identity(&element, &text), Some("alice"));
            let (sip, uri) = cpaas.sip_noun("sip:bob@pbx.example.com");
            if sip != element {
                assert_eq!(cpaas.client_identity(&sip, &uri), None, "{cpaas:?}");
            }
            assert_eq!(cpaas.client_identity("Number", "+12025550201"), None);
        }
    }

    #[test]
    fn call_ids_are_shaped_as_each_provider_shapes_them_and_never_repeat() {
        let twilio = Cpaas::Twilio.new_call_id();
        assert!(twilio.starts_with("CA") && twilio.len() == 34, "{twilio}");
        let uuid = Cpaas::Plivo.new_call_id();
        assert_eq!(
            uuid.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        let telnyx = Cpaas::Telnyx.new_call_id();
        assert!(
            telnyx.starts_with("v3:") && telnyx.contains(['-', '_']),
            "{telnyx}"
        );
        assert_ne!(Cpaas::Twilio.new_call_id(), Cpaas::Twilio.new_call_id());
    }

    #[test]
    fn every_provider_signs_with_its_own_headers() {
        let params = vec![("CallSid".to_owned(), "CA1".to_owned())];
        let url = "https://relay.example.com/twilio/voice";
        for cpaas in Cpaas::ALL {
            let secret: &[u8] = if cpaas == Cpaas::Telnyx {
                &[7; 32]
            } else {
                b"token"
            };
            let headers = cpaas.sign(secret, url, &params);
            assert_eq!(headers[0].0, cpaas.signature_header(), "{cpaas:?}");
        }
        assert!(Cpaas::Telnyx.sign(b"short", url, &params).is_empty());
    }
}
