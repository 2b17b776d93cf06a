//! SignalWire: Twilio's signature algorithm keyed with the project's signing
//! key (`X-SignalWire-Signature`, or `X-Twilio-Signature` as its SDKs also
//! read), Twilio's parameter names, and cXML: softphones are Verto clients
//! (`<Verto>alice@<your SIP domain>.verto.signalwire.com</Verto>`).

use secrecy::ExposeSecret as _;

use super::twilio::signature;
use super::twiml::render::{ClientNoun, Dialect, render};
use super::{
    CallScript, Params, Provider, ProviderRoutes, ProviderVars, Screening, SignatureError,
    WebhookRequest,
};

pub struct SignalWire;

const SIGNING_KEY: &str = "SIGNALWIRE_SIGNING_KEY";
/// Optional: the space's SIP domain (`example` in
/// `example.verto.signalwire.com`), which Verto addresses end in.
const SIP_DOMAIN: &str = "SIGNALWIRE_SIP_DOMAIN";

impl Provider for SignalWire {
    const NAME: &'static str = "signalwire";
    const VARIABLES: &'static [&'static str] = &[SIGNING_KEY, SIP_DOMAIN];
    const SIGNATURE_HEADERS: &'static [&'static str] =
        &["x-signalwire-signature", "x-twilio-signature"];
    const MARKUP_CONTENT_TYPE: &'static str = "text/xml; charset=utf-8";
    const ROUTES: ProviderRoutes = ProviderRoutes {
        answer: "/signalwire/voice",
        status: "/signalwire/status",
        dial_status: "/signalwire/dial-status",
        voicemail: "/signalwire/voicemail",
        screen: "/signalwire/screen",
        screen_result: "/signalwire/screen-result",
    };
    const SCREENING: Screening = Screening::GatherOnLeg;

    fn check_variable(name: &str, value: &str) -> Result<(), String> {
        let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
        if name == SIP_DOMAIN && !(value.chars().all(label) && value.len() <= 63) {
            return Err(format!(
                "must be your space's SIP domain name (letters, digits and '-', as in \
                 <name>.verto.signalwire.com), got {value:?}"
            ));
        }
        Ok(())
    }

    fn verify(vars: &ProviderVars, request: &WebhookRequest<'_>) -> Result<Params, SignatureError> {
        let key = vars.get(SIGNING_KEY).ok_or(SignatureError::Missing)?;
        let header = request
            .header("x-signalwire-signature")
            .or_else(|| request.header("x-twilio-signature"));
        signature::verify_request(key.expose_secret().as_bytes(), request, header)
    }

    fn render(vars: &ProviderVars, script: &CallScript) -> String {
        let domain = vars
            .get(SIP_DOMAIN)
            .map(|d| format!("{}.verto.signalwire.com", d.expose_secret()));
        let dialect = Dialect {
            client: ClientNoun::Verto {
                domain: domain.as_deref(),
            },
            answer_on_bridge: true,
            record_attributes: &[],
        };
        render(script, &dialect)
    }
}
