//! Twilio: `X-Twilio-Signature`, its webhook parameters, and TwiML.

pub mod signature;
pub mod twiml;

use actix_web::http::header::HeaderMap;
use secrecy::SecretString;

use super::{
    CallScript, InboundCall, Params, Provider, ProviderRoutes, Screening, SignatureError,
    StatusReport,
};
use crate::config::Config;
use crate::domain::dial::{CallSid, DialResult, DialStatus};
use crate::domain::phone::{Caller, PhoneNumber, Region};

pub struct Twilio;

impl Provider for Twilio {
    const NAME: &'static str = "twilio";
    const AUTH_TOKEN_VARIABLE: &'static str = "TWILIO_AUTH_TOKEN";
    const SIGNATURE_HEADER: &'static str = "x-twilio-signature";
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
            call_id: Self::call_id(params)?,
            from: Caller::parse(params.get("From"), region),
            to: number("To"),
            forwarded_from: number("ForwardedFrom"),
        })
    }

    fn call_id(params: &Params) -> Option<CallSid> {
        params.get("CallSid").and_then(|s| CallSid::parse(s).ok())
    }

    fn dial_result(params: &Params) -> DialResult {
        let status = match params.get("DialCallStatus") {
            // `answered` is for conferences; read it as a pick-up all the same.
            Some("completed" | "answered") => DialStatus::Completed,
            Some("busy") => DialStatus::Busy,
            Some("no-answer") => DialStatus::NoAnswer,
            Some("canceled") => DialStatus::Canceled,
            _ => DialStatus::Failed,
        };
        let bridged = match params.get("DialBridged") {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        DialResult { status, bridged }
    }

    fn digits(params: &Params) -> Option<&str> {
        params.get("Digits")
    }

    fn status_report(params: &Params, _region: Region) -> StatusReport {
        // Our Dials carry no per-noun status callback (the whisper tells who
        // answered), so this is the number's own status callback.
        match params.get("CallStatus") {
            Some("completed" | "busy" | "no-answer" | "failed" | "canceled") => {
                StatusReport::CallEnded
            }
            _ => StatusReport::Progress,
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
