//! Twilio: `X-Twilio-Signature`, and TwiML as Twilio speaks it.

pub mod signature;

use secrecy::ExposeSecret as _;

use super::twiml::render::{Dialect, render};
use super::{
    CallScript, Params, Provider, ProviderRoutes, ProviderVars, Screening, SignatureError,
    WebhookRequest,
};

pub struct Twilio;

const AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";

impl Provider for Twilio {
    const NAME: &'static str = "twilio";
    const VARIABLES: &'static [&'static str] = &[AUTH_TOKEN];
    const SIGNATURE_HEADERS: &'static [&'static str] = &["x-twilio-signature"];
    const MARKUP_CONTENT_TYPE: &'static str = "text/xml; charset=utf-8";
    const ROUTES: ProviderRoutes = ProviderRoutes {
        answer: "/twilio/voice",
        status: "/twilio/status",
        dial_status: "/twilio/dial-status",
        voicemail: "/twilio/voicemail",
        screen: "/twilio/screen",
        screen_result: "/twilio/screen-result",
        recording: "/twilio/recording",
    };
    const SCREENING: Screening = Screening::GatherOnLeg;

    fn verify(vars: &ProviderVars, request: &WebhookRequest<'_>) -> Result<Params, SignatureError> {
        let token = vars.get(AUTH_TOKEN).ok_or(SignatureError::Missing)?;
        signature::verify_request(
            token.expose_secret().as_bytes(),
            request,
            request.header("x-twilio-signature"),
        )
    }

    fn render(_vars: &ProviderVars, script: &CallScript) -> String {
        render(script, &Dialect::TWILIO)
    }
}
