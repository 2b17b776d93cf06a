//! Plivo: `X-Plivo-Signature-V3`, its webhook parameters, and Plivo XML.

pub mod signature;
pub mod xml;

use std::borrow::Cow;

use actix_web::http::header::HeaderMap;
use secrecy::SecretString;

use super::{
    CallScript, DialOutcome, InboundCall, Params, Provider, ProviderRoutes, Screening,
    SignatureError,
};
use crate::config::Config;
use crate::domain::phone::{Caller, PhoneNumber, Region};

pub struct Plivo;

impl Provider for Plivo {
    const NAME: &'static str = "plivo";
    const AUTH_TOKEN_VARIABLE: &'static str = "PLIVO_AUTH_TOKEN";
    const MARKUP_CONTENT_TYPE: &'static str = "application/xml; charset=utf-8";
    const ROUTES: ProviderRoutes = ProviderRoutes {
        answer: "/plivo/answer",
        status: "/plivo/hangup",
        dial_status: "/plivo/dial-status",
        voicemail: "/plivo/voicemail",
        screen: "/plivo/screen",
        screen_result: "/plivo/screen-result",
    };
    const SCREENING: Screening = Screening::ConfirmKey;

    fn auth_token(config: &Config) -> Option<&SecretString> {
        config.plivo_auth_token.as_ref()
    }

    fn verify(
        auth_token: &[u8],
        url: &str,
        headers: &HeaderMap,
        _body: &[u8],
        params: &Params,
    ) -> Result<(), SignatureError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        // Our Plivo routes take POST only (the README says to configure
        // them so), which fixes the V3 rule to use.
        signature::verify_v3(
            auth_token,
            signature::Method::Post,
            url,
            params.pairs(),
            header("x-plivo-signature-v3-nonce"),
            header("x-plivo-signature-v3"),
        )
    }

    fn inbound_call(params: &Params, region: Region) -> Option<InboundCall> {
        let number = |name: &str| {
            params
                .get(name)
                .and_then(|v| PhoneNumber::parse(&international(v), region).ok())
        };
        Some(InboundCall {
            call_id: params.get("CallUUID").filter(|s| !s.is_empty())?.to_owned(),
            from: Caller::parse(params.get("From").map(international).as_deref(), region),
            to: number("To"),
            forwarded_from: number("ForwardedFrom"),
        })
    }

    fn dial_outcome(params: &Params) -> DialOutcome {
        match params.get("DialStatus") {
            Some("completed" | "answer" | "answered") => DialOutcome::Answered,
            Some("busy") => DialOutcome::Busy,
            Some("no-answer" | "timeout") => DialOutcome::NoAnswer,
            Some("cancel" | "canceled" | "cancelled") => DialOutcome::Canceled,
            _ => DialOutcome::Failed,
        }
    }

    fn recording_url(params: &Params) -> Option<String> {
        let empty = params
            .get("RecordingDuration")
            .is_some_and(|d| matches!(d.trim(), "0" | "-1"));
        params
            .get("RecordUrl")
            .filter(|u| !u.is_empty() && !empty)
            .map(str::to_owned)
    }

    fn render(script: &CallScript) -> String {
        xml::render(script)
    }
}

/// Plivo writes numbers as international digits without the `+`
/// (`12025550100`); read them as such, not as national numbers.
fn international(raw: &str) -> Cow<'_, str> {
    let trimmed = raw.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        Cow::Owned(format!("+{trimmed}"))
    } else {
        Cow::Borrowed(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn numbers_without_a_plus_are_international() {
        let call = Plivo::inbound_call(
            &params(&[
                ("CallUUID", "3e82ae9d"),
                ("From", "442079460018"),
                ("To", "12025550100"),
                ("ForwardedFrom", "12025550199"),
            ]),
            Region::default(),
        )
        .unwrap();
        assert_eq!(call.from.number().unwrap().as_str(), "+442079460018");
        assert_eq!(call.to.unwrap().as_str(), "+12025550100");
        assert_eq!(call.forwarded_from.unwrap().as_str(), "+12025550199");
    }

    #[test]
    fn withheld_callers_stay_withheld() {
        for from in ["anonymous", "", "266696687"] {
            let call = Plivo::inbound_call(
                &params(&[("CallUUID", "u"), ("From", from), ("To", "12025550100")]),
                Region::default(),
            )
            .unwrap();
            assert_eq!(call.from, Caller::Withheld, "{from:?}");
        }
    }

    #[test]
    fn dial_statuses_map_to_outcomes() {
        for (status, outcome) in [
            ("completed", DialOutcome::Answered),
            ("busy", DialOutcome::Busy),
            ("no-answer", DialOutcome::NoAnswer),
            ("timeout", DialOutcome::NoAnswer),
            ("failed", DialOutcome::Failed),
        ] {
            assert_eq!(
                Plivo::dial_outcome(&params(&[("DialStatus", status)])),
                outcome,
                "{status}"
            );
        }
    }

    #[test]
    fn an_empty_recording_is_no_voicemail() {
        let url = "https://media.plivo.com/rec/1.mp3";
        assert_eq!(
            Plivo::recording_url(&params(&[("RecordUrl", url), ("RecordingDuration", "7")])),
            Some(url.to_owned())
        );
        assert_eq!(
            Plivo::recording_url(&params(&[("RecordUrl", url), ("RecordingDuration", "0")])),
            None
        );
    }
}
