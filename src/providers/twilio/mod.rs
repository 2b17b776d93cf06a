//! Twilio: `X-Twilio-Signature`, its webhook parameters, and TwiML.

pub mod signature;
pub mod twiml;

use actix_web::http::header::HeaderMap;
use secrecy::SecretString;

use super::Screening;
use super::{
    CallScript, DialOutcome, InboundCall, Params, Provider, ProviderRoutes, SignatureError,
};
use crate::config::Config;
use crate::domain::phone::{Caller, PhoneNumber, Region};

pub struct Twilio;

impl Provider for Twilio {
    const NAME: &'static str = "twilio";
    const AUTH_TOKEN_VARIABLE: &'static str = "TWILIO_AUTH_TOKEN";
    const MARKUP_CONTENT_TYPE: &'static str = "text/xml; charset=utf-8";
    const ROUTES: ProviderRoutes = ProviderRoutes {
        answer: "/twilio/voice",
        status: "/twilio/status",
        dial_status: "/twilio/dial-status",
        voicemail: "/twilio/voicemail",
        screen: "/twilio/screen",
        screen_result: "/twilio/screen-result",
    };
    const SCREENING: Screening = Screening::GatherOnLeg;

    fn auth_token(config: &Config) -> Option<&SecretString> {
        config.twilio_auth_token.as_ref()
    }

    fn verify(
        auth_token: &[u8],
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
        params: &Params,
    ) -> Result<(), SignatureError> {
        let header = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok());
        // JSON bodies are signed through a hash in the URL instead of the
        // parameters.
        if url.contains("bodySHA256=") {
            signature::verify_json(auth_token, url, body, header)
        } else {
            signature::verify(auth_token, url, params.pairs(), header)
        }
    }

    fn inbound_call(params: &Params, region: Region) -> Option<InboundCall> {
        let number = |name: &str| {
            params
                .get(name)
                .and_then(|v| PhoneNumber::parse(v, region).ok())
        };
        Some(InboundCall {
            call_id: params.get("CallSid").filter(|s| !s.is_empty())?.to_owned(),
            from: Caller::parse(params.get("From"), region),
            to: number("To"),
            forwarded_from: number("ForwardedFrom"),
        })
    }

    fn dial_outcome(params: &Params) -> DialOutcome {
        match params.get("DialCallStatus") {
            Some("completed" | "answered") => DialOutcome::Answered,
            Some("busy") => DialOutcome::Busy,
            Some("no-answer") => DialOutcome::NoAnswer,
            Some("canceled") => DialOutcome::Canceled,
            _ => DialOutcome::Failed,
        }
    }

    fn recording_url(params: &Params) -> Option<String> {
        let empty = params
            .get("RecordingDuration")
            .is_some_and(|d| d.trim() == "0");
        params
            .get("RecordingUrl")
            .filter(|u| !u.is_empty() && !empty)
            .map(str::to_owned)
    }

    fn render(script: &CallScript) -> String {
        twiml::render(script)
    }
}
