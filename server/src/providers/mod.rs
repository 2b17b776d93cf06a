//! CPaaS providers (Twilio, Plivo, Telnyx, SignalWire). Each provider module
//! is the only place that knows its wire format: it checks the signature of
//! a whole request, reads its parameters into the flow's neutral call model
//! (`crate::flow::model`), and renders a [`CallScript`] into its markup. The
//! call flow speaks only that model, and the HTTP edge registers the routes.
//! Adding a provider is one module implementing `Provider` and one line in
//! the list below.

pub(crate) mod apis;
mod jwt;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod parsed_markup;
pub mod plivo;
#[cfg(test)]
mod properties;
mod rest;
pub(crate) mod signalwire;
pub mod telnyx;
#[cfg(test)]
mod testing;
pub mod twilio;
pub mod twiml;
pub mod voice_token;
mod xml;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use secrecy::{ExposeSecret as _, SecretString};

use crate::domain::ids::CallSid;
use crate::domain::phone::Region;
use crate::domain::session::DialResult;
use crate::domain::time::Timestamp;
use crate::flow::model::{
    CallScript, InboundCall, ProviderRoutes, Recording, Screening, StatusReport, Transcription,
};
pub use crate::rotation::{Rotating, Slot};

/// Every provider the service speaks, once: [`PROVIDERS`] holds what the
/// configuration and the API document read of each; [`each_provider`] hands
/// each one's type to whoever needs it (the HTTP edge, for its routes).
macro_rules! every_provider {
    ($($provider:ty),+ $(,)?) => {
        /// Every provider, by what can be known of it without its type.
        pub const PROVIDERS: &[ProviderEntry] = &[$(ProviderEntry::of::<$provider>()),+];

        /// Calls `visitor` with the type of every provider, in the order of
        /// [`PROVIDERS`].
        pub(crate) fn each_provider(visitor: &mut impl EachProvider) {
            $(visitor.visit::<$provider>();)+
        }
    };
}

every_provider![
    twilio::Twilio,
    plivo::Plivo,
    telnyx::Telnyx,
    signalwire::SignalWire,
];

/// What is done with each provider's type: see [`each_provider`].
pub(crate) trait EachProvider {
    fn visit<P: Provider>(&mut self);
}

/// One line of [`PROVIDERS`]: what the configuration and the API document
/// need to know of a provider without naming its type.
pub struct ProviderEntry {
    pub name: &'static str,
    /// Its variables; the first is the credential that turns its routes on.
    pub variables: &'static [&'static str],
    /// Reads its variables into its configuration, at start.
    pub(crate) configure: fn(&ProviderVars) -> Result<Option<AnyConfig>, VariableProblem>,
    /// Its routes' paths, and the type of its markup (for the API document).
    pub(crate) paths: ProviderRoutes,
    pub(crate) markup_content_type: &'static str,
}

impl ProviderEntry {
    pub(crate) const fn of<P: Provider>() -> Self {
        Self {
            name: P::NAME,
            variables: P::VARIABLES,
            configure: configure_erased::<P>,
            paths: P::ROUTES,
            markup_content_type: P::MARKUP_CONTENT_TYPE,
        }
    }
}

/// A provider's configuration with its type erased, so that one table
/// holds every provider's ([`Providers::get`] gives the type back).
type AnyConfig = Arc<dyn Any + Send + Sync>;

fn configure_erased<P: Provider>(
    vars: &ProviderVars,
) -> Result<Option<AnyConfig>, VariableProblem> {
    Ok(P::configure(vars)?.map(|config| Arc::new(config) as AnyConfig))
}

/// A variable that cannot be used, and why: `(name, problem)`.
pub(crate) type VariableProblem = (&'static str, String);

/// The providers' variables that are set, by name, as the environment gave
/// them. Values are secrets (tokens, keys) or settings; none is ever printed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProviderVars(BTreeMap<&'static str, SecretString>);

impl ProviderVars {
    /// Takes `value` for `name` if it is a provider's variable; says whether
    /// it was one.
    pub(crate) fn insert(&mut self, name: &str, value: String) -> bool {
        let Some(name) = PROVIDERS
            .iter()
            .find_map(|p| p.variables.iter().find(|v| **v == name))
        else {
            return false;
        };
        self.0.insert(name, SecretString::from(value));
        true
    }

    pub(crate) fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.get(name)
    }

    /// The secret of variable `name` (`current` or `current,next` while it
    /// rotates), each value read by `parse`; `None` when unset.
    pub(crate) fn rotating<K>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<K, String>,
    ) -> Result<Option<Rotating<K>>, VariableProblem> {
        self.get(name)
            .map(|raw| Rotating::parse(raw.expose_secret(), parse).map_err(|p| (name, p)))
            .transpose()
    }
}

/// The providers whose credential is set, each with its configuration read
/// once, at start.
#[derive(Clone, Default)]
pub struct Providers(BTreeMap<&'static str, AnyConfig>);

impl Providers {
    /// Reads every provider's variables; the first problem stops the start.
    pub(crate) fn configure(vars: &ProviderVars) -> Result<Self, VariableProblem> {
        let mut configured = BTreeMap::new();
        for entry in PROVIDERS {
            if let Some(config) = (entry.configure)(vars)? {
                configured.insert(entry.name, config);
            }
        }
        Ok(Self(configured))
    }

    /// Provider `P`'s configuration; `None` when its credential is unset.
    pub(crate) fn get<P: Provider>(&self) -> Option<&P::Config> {
        self.0.get(P::NAME).and_then(|config| config.downcast_ref())
    }

    /// Whether some provider is configured: some route can answer a
    /// forwarded call.
    pub(crate) fn any_configured(&self) -> bool {
        !self.0.is_empty()
    }

    /// The names of the configured providers.
    pub(crate) fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}

/// Names only: configurations hold secrets.
impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// A request to one of a provider's routes, whole and as received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WebhookRequest<'a> {
    /// The URL the provider called: `PUBLIC_BASE_URL` plus the raw path
    /// and query, never rebuilt from proxy headers.
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// When it arrived (signatures with a timestamp are checked against it).
    pub received_at: Timestamp,
}

impl WebhookRequest<'_> {
    /// The value of header `name`, when it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signature's timestamp is too far from now")]
    Stale,
}

/// A request whose signature checked out: its parameters, and how it
/// verified (for metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    pub params: Params,
    /// Which value of the rotating credential matched.
    pub key: Slot,
    pub variant: SignatureVariant,
}

/// Which form of a request its signature was computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureVariant {
    /// The request exactly as received.
    AsSent,
    /// The URL with the scheme's default port added or removed (Twilio's
    /// family signs either way).
    DefaultPort,
    /// The form without parameters the provider adds after signing
    /// (Twilio's `StirVerstat`, `CallToken`).
    WithoutAddedParameters,
}

impl SignatureVariant {
    /// Its label in metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::AsSent => "as_sent",
            Self::DefaultPort => "default_port",
            Self::WithoutAddedParameters => "without_added_parameters",
        }
    }
}

impl SignatureError {
    /// Its label in metrics.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Mismatch => "bad_signature",
            Self::Stale => "stale",
        }
    }
}

/// What each provider supplies; the routes and the call flow are shared.
pub(crate) trait Provider: Send + Sync + 'static {
    /// The first segment of its routes (`/twilio/...`), and its label in
    /// logs and metrics.
    const NAME: &'static str;
    /// Its variables; the first is its credential: unset → its routes
    /// answer 503 naming it.
    const VARIABLES: &'static [&'static str];
    /// The headers its signature may come in: a request with none of them
    /// is refused before its body is read.
    const SIGNATURE_HEADERS: &'static [&'static str];
    /// The `Content-Type` of its markup.
    const MARKUP_CONTENT_TYPE: &'static str;
    /// Its callback routes, for the URLs the markup points back at.
    const ROUTES: ProviderRoutes;
    /// How it lets a screening destination take the call.
    const SCREENING: Screening;

    /// What its routes need, read from its variables once at start: its
    /// credential (both values while it rotates) and settings.
    type Config: Send + Sync + 'static;

    /// Reads its variables; `None` when its credential is unset.
    fn configure(vars: &ProviderVars) -> Result<Option<Self::Config>, VariableProblem>;

    /// Checks the request's signature and reads the parameters it carries.
    fn verify(
        config: &Self::Config,
        request: &WebhookRequest<'_>,
    ) -> Result<Verified, SignatureError>;

    // Reading the parameters. Twilio's names are the providers' lingua
    // franca (the TwiML family posts them), so they are the default; a
    // provider that names them otherwise says so.

    /// The call reaching a forwarding number; `None` when the request does
    /// not describe one (no call id).
    fn inbound_call(params: &Params, region: Region) -> Option<InboundCall> {
        twiml::inbound_call(params, region)
    }

    /// The id of the call a callback is about.
    fn call_id(params: &Params) -> Option<CallSid> {
        twiml::call_id(params)
    }

    /// How a `<Dial>` we returned ended.
    fn dial_result(params: &Params) -> DialResult {
        twiml::dial_result(params)
    }

    /// The keys a screened callee pressed.
    fn digits(params: &Params) -> Option<&str> {
        twiml::digits(params)
    }

    /// What a request to the status route reports.
    fn status_report(params: &Params, _region: Region) -> StatusReport {
        twiml::status_report(params)
    }

    /// The recording a `<Record>` we returned made; `None` when nothing was
    /// recorded.
    fn recording_url(params: &Params) -> Option<String> {
        twiml::recording_url(params)
    }

    /// The recording of a Dial's legs ([`Dial::record_url`](crate::flow::model::Dial::record_url)) that the
    /// provider says is ready; `None` while it is not, or when nothing was
    /// recorded.
    fn finished_recording(params: &Params) -> Option<Recording> {
        twiml::finished_recording(params)
    }

    /// The transcription of a voicemail a `<Record>` of ours asked for;
    /// `None` when the request is not one.
    fn transcription(params: &Params) -> Option<Transcription> {
        twiml::transcription(params)
    }

    fn render(config: &Self::Config, script: &CallScript) -> String;
}

/// Form parameters as received: decoded, in order, repeated names kept
/// (signatures depend on all three).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn from_form(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}
