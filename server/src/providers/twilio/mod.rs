//! Twilio: `X-Twilio-Signature`, and TwiML as Twilio speaks it.

pub(crate) mod access_token;
pub(crate) mod api;
pub mod signature;

use secrecy::{ExposeSecret as _, SecretString};

use super::twiml::render::{Dialect, render};
use super::{
    Provider, ProviderVars, Rotating, SignatureError, VariableProblem, Verified, WebhookRequest,
};
use crate::flow::model::{CallScript, ProviderRoutes, Screening};

pub(crate) struct Twilio;

const AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";

/// Parameters Twilio adds to some voice webhooks after computing their
/// signature (the STIR/SHAKEN verdict and the call's token).
const ADDED_AFTER_SIGNING: &[&str] = &["StirVerstat", "CallToken"];

impl Provider for Twilio {
    const NAME: &'static str = "twilio";
    const VARIABLES: &'static [&'static str] = &[
        AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID",
        "TWILIO_API_KEY_SID",
        "TWILIO_API_KEY_SECRET",
        "TWILIO_TWIML_APP_SID",
    ];
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
        transcription: "/twilio/transcription",
    };
    const SCREENING: Screening = Screening::GatherOnLeg;

    /// The auth token: the current one, and the secondary while it rotates.
    type Config = Rotating<SecretString>;

    fn configure(vars: &ProviderVars) -> Result<Option<Self::Config>, VariableProblem> {
        vars.rotating(AUTH_TOKEN, |token| Ok(SecretString::from(token)))
    }

    fn verify(
        token: &Self::Config,
        request: &WebhookRequest<'_>,
    ) -> Result<Verified, SignatureError> {
        let params = signature::request_params(request);
        let header = request.header("x-twilio-signature");
        let (variant, key) = token.verify(|token| {
            let token = token.expose_secret().as_bytes();
            signature::verify_request(token, request, &params, header, ADDED_AFTER_SIGNING)
        })?;
        Ok(Verified {
            params,
            key,
            variant,
        })
    }

    fn render(_token: &Self::Config, script: &CallScript) -> String {
        render(script, &Dialect::TWILIO)
    }
}
