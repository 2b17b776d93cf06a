//! Telnyx: Ed25519-signed requests (`telnyx-signature-ed25519`), Twilio's
//! parameter names, and TeXML: softphones are Telnyx SIP credentials
//! (`<Sip>sip:<identity>@sip.telnyx.com</Sip>`), voicemail is recorded on one
//! channel, and there is no `answerOnBridge` (Telnyx answers the inbound
//! call before it fetches the first TeXML).

pub mod signature;

use secrecy::ExposeSecret as _;

use super::twiml::render::{ClientNoun, Dialect, render};
use super::{
    CallScript, Params, Provider, ProviderRoutes, ProviderVars, Screening, SignatureError,
    WebhookRequest,
};

pub struct Telnyx;

const PUBLIC_KEY: &str = "TELNYX_PUBLIC_KEY";

/// The domain Telnyx SIP credentials register under.
pub const SIP_DOMAIN: &str = "sip.telnyx.com";

const DIALECT: Dialect<'static> = Dialect {
    client: ClientNoun::SipUser { domain: SIP_DOMAIN },
    answer_on_bridge: false,
    // TeXML records both channels by default; a voicemail has one voice.
    record_attributes: &[("channels", "single")],
};

impl Provider for Telnyx {
    const NAME: &'static str = "telnyx";
    const VARIABLES: &'static [&'static str] = &[PUBLIC_KEY];
    const SIGNATURE_HEADERS: &'static [&'static str] = &["telnyx-signature-ed25519"];
    const MARKUP_CONTENT_TYPE: &'static str = "text/xml; charset=utf-8";
    const ROUTES: ProviderRoutes = ProviderRoutes {
        answer: "/telnyx/voice",
        status: "/telnyx/status",
        dial_status: "/telnyx/dial-status",
        voicemail: "/telnyx/voicemail",
        screen: "/telnyx/screen",
        screen_result: "/telnyx/screen-result",
    };
    const SCREENING: Screening = Screening::GatherOnLeg;

    fn check_variable(_name: &str, value: &str) -> Result<(), String> {
        signature::parse_public_key(value).map(|_| ())
    }

    fn verify(vars: &ProviderVars, request: &WebhookRequest<'_>) -> Result<Params, SignatureError> {
        let key = vars.get(PUBLIC_KEY).ok_or(SignatureError::Missing)?;
        // Checked at start, so this only fails if the check was skipped.
        let key = signature::parse_public_key(key.expose_secret())
            .map_err(|_| SignatureError::Mismatch)?;
        // The raw bytes are what was signed; the form is read after.
        signature::verify(
            &key,
            request.header("telnyx-timestamp"),
            request.header("telnyx-signature-ed25519"),
            request.body,
            request.received_at,
        )?;
        Ok(Params::from_form(request.body))
    }

    fn render(_vars: &ProviderVars, script: &CallScript) -> String {
        render(script, &DIALECT)
    }
}
