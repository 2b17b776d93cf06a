//! Plivo: `X-Plivo-Signature-V3`, its webhook parameters, and Plivo XML.

pub(crate) mod api;
pub(crate) mod endpoint_token;
pub mod signature;
pub mod xml;

use std::borrow::Cow;

use secrecy::{ExposeSecret as _, SecretString};

use super::{
    Params, Provider, ProviderVars, Rotating, SignatureError, SignatureVariant, VariableProblem,
    Verified, WebhookRequest, twiml,
};
use crate::domain::caller_context::{CallerContext, CallerName, CallerVerification};
use crate::domain::ids::CallSid;
use crate::domain::phone::{Caller, PhoneNumber, Region};
use crate::domain::session::{DialResult, DialStatus, TranscriptionStatus};
use crate::domain::subscriber::{ClientIdentity, SipUri, Target};
use crate::flow::model::{
    CallScript, InboundCall, ProviderRoutes, Recording, Screening, StatusReport, Transcription,
};

pub(crate) struct Plivo;

const AUTH_TOKEN: &str = "PLIVO_AUTH_TOKEN";

impl Provider for Plivo {
    const NAME: &'static str = "plivo";
    const VARIABLES: &'static [&'static str] = &[AUTH_TOKEN, "PLIVO_AUTH_ID"];
    const SIGNATURE_HEADERS: &'static [&'static str] = &["x-plivo-signature-v3"];
    const MARKUP_CONTENT_TYPE: &'static str = "application/xml; charset=utf-8";
    const ROUTES: ProviderRoutes = ProviderRoutes {
        answer: "/plivo/answer",
        status: "/plivo/hangup",
        dial_status: "/plivo/dial-status",
        voicemail: "/plivo/voicemail",
        screen: "/plivo/screen",
        screen_result: "/plivo/screen-result",
        recording: "/plivo/recording",
        transcription: "/plivo/transcription",
    };
    const SCREENING: Screening = Screening::ConfirmKey;

    /// The auth token: the current one, and the next while it rotates.
    type Config = Rotating<SecretString>;

    fn configure(vars: &ProviderVars) -> Result<Option<Self::Config>, VariableProblem> {
        vars.rotating(AUTH_TOKEN, |token| Ok(SecretString::from(token)))
    }

    fn verify(
        token: &Self::Config,
        request: &WebhookRequest<'_>,
    ) -> Result<Verified, SignatureError> {
        let params = Params::from_form(request.body);
        // Our Plivo routes take POST only (the README says to configure
        // them so), which fixes the V3 rule to use.
        let ((), key) = token.verify(|token| {
            signature::verify_v3(
                token.expose_secret().as_bytes(),
                signature::Method::Post,
                request.url,
                params.pairs(),
                request.header("x-plivo-signature-v3-nonce"),
                request.header("x-plivo-signature-v3"),
            )
        })?;
        Ok(Verified {
            params,
            key,
            variant: SignatureVariant::AsSent,
        })
    }

    fn inbound_call(params: &Params, region: Region) -> Option<InboundCall> {
        let number = |name: &str| {
            params
                .get(name)
                .and_then(|v| PhoneNumber::parse(&international(v), region).ok())
        };
        Some(InboundCall {
            call_id: Self::call_id(params)?,
            from: Caller::parse(params.get("From").map(international).as_deref(), region),
            to: number("To"),
            forwarded_from: number("ForwardedFrom"),
            // `STIRVerification` is `Verified`, `Not Verified` or `Not
            // Applicable` (outside the US and Canada, or no signature).
            caller: CallerContext {
                name: params.get("CallerName").and_then(CallerName::parse),
                verification: CallerVerification::from_attestation(
                    params.get("STIRAttestation"),
                    match params.get("STIRVerification").map(str::trim) {
                        Some(v) if v.eq_ignore_ascii_case("verified") => Some(true),
                        Some(v) if v.eq_ignore_ascii_case("not verified") => Some(false),
                        _ => None,
                    },
                ),
            },
        })
    }

    fn call_id(params: &Params) -> Option<CallSid> {
        params.get("CallUUID").and_then(|s| CallSid::parse(s).ok())
    }

    fn dial_result(params: &Params) -> DialResult {
        let status = match params.get("DialStatus") {
            Some("completed" | "answer" | "answered") => DialStatus::Completed,
            Some("busy") => DialStatus::Busy,
            Some("no-answer" | "timeout") => DialStatus::NoAnswer,
            Some("cancel" | "canceled" | "cancelled") => DialStatus::Canceled,
            _ => DialStatus::Failed,
        };
        // Plivo has no bridged flag, and needs none: with `confirmKey` a leg
        // is bridged only once its person pressed the key (a leg that does
        // not press is hung up while the others ring on), and without it the
        // leg that picked up is bridged. So a completed Dial was bridged.
        let bridged = (status == DialStatus::Completed).then_some(true);
        DialResult { status, bridged }
    }

    fn digits(params: &Params) -> Option<&str> {
        params.get("Digits")
    }

    fn status_report(params: &Params, region: Region) -> StatusReport {
        // The Dial's `callbackUrl` reports its B legs; the Hangup URL the end
        // of the call.
        match params.get("DialAction") {
            Some(action @ ("answer" | "connected")) => StatusReport::Leg {
                to: params
                    .get("DialBLegTo")
                    .and_then(|to| dialed_target(to, region)),
                bridged: action == "connected",
            },
            Some(_) => StatusReport::Progress,
            None if params.get("HangupCause").is_some()
                || matches!(
                    params.get("CallStatus"),
                    Some("completed" | "busy" | "no-answer" | "failed" | "cancel" | "timeout")
                ) =>
            {
                StatusReport::CallEnded
            }
            None => StatusReport::Progress,
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

    /// The `callbackUrl` of the `<Record startOnDialAnswer>` before our
    /// Dial: Plivo posts it once the recording is ready.
    fn finished_recording(params: &Params) -> Option<Recording> {
        twiml::recording(params, "RecordUrl", "RecordingDuration")
            // The names of the Record API's callback, should the XML's ever
            // follow them.
            .or_else(|| twiml::recording(params, "record_url", "recording_duration"))
    }

    /// The `transcriptionUrl` of our voicemail's `<Record>`:
    /// `transcription` (the text) and `error` (why there is none); no
    /// recording URL (the session keeps the voicemail's).
    fn transcription(params: &Params) -> Option<Transcription> {
        let error = params.get("error").map(str::trim).filter(|e| !e.is_empty());
        let text = params.get("transcription");
        if error.is_none() && text.is_none() {
            return None;
        }
        Some(Transcription {
            status: if error.is_some() {
                TranscriptionStatus::Failed
            } else {
                TranscriptionStatus::Completed
            },
            text: text.map(str::to_owned),
            recording_url: None,
        })
    }

    fn render(_token: &Self::Config, script: &CallScript) -> String {
        xml::render(script)
    }
}

/// A B leg's `DialBLegTo` read back as the target our XML dialed: digits
/// are a number, our endpoint domain's SIP users are clients.
fn dialed_target(raw: &str, region: Region) -> Option<Target> {
    let raw = raw.trim();
    if raw.starts_with("sip:") || raw.starts_with("sips:") {
        let user_on_endpoint_domain = raw
            .strip_prefix("sip:")
            .and_then(|rest| rest.strip_suffix(&format!("@{}", xml::ENDPOINT_DOMAIN)));
        return match user_on_endpoint_domain {
            Some(identity) => ClientIdentity::parse(identity).ok().map(Target::Client),
            None => SipUri::parse(raw).ok().map(Target::Sip),
        };
    }
    PhoneNumber::parse(&international(raw), region)
        .ok()
        .map(Target::Phone)
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
    use crate::providers::testing::params;

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
    fn dial_statuses_map_to_results_and_completed_means_bridged() {
        for (status, expected, bridged) in [
            ("completed", DialStatus::Completed, Some(true)),
            ("busy", DialStatus::Busy, None),
            ("no-answer", DialStatus::NoAnswer, None),
            ("timeout", DialStatus::NoAnswer, None),
            ("failed", DialStatus::Failed, None),
        ] {
            let result = Plivo::dial_result(&params(&[("DialStatus", status)]));
            assert_eq!(
                (result.status, result.bridged),
                (expected, bridged),
                "{status}"
            );
        }
    }

    #[test]
    fn leg_events_name_the_dialed_target() {
        let region = Region::default();
        let leg = |action: &str, to: &str| {
            Plivo::status_report(
                &params(&[("DialAction", action), ("DialBLegTo", to)]),
                region,
            )
        };
        assert_eq!(
            leg("connected", "12025550201"),
            StatusReport::Leg {
                to: Some(Target::Phone(
                    PhoneNumber::parse("+12025550201", region).unwrap()
                )),
                bridged: true
            }
        );
        assert_eq!(
            leg("answer", "sip:alice@phone.plivo.com"),
            StatusReport::Leg {
                to: Some(Target::Client(ClientIdentity::parse("alice").unwrap())),
                bridged: false
            }
        );
        assert_eq!(
            leg("answer", "sip:bob@pbx.example.com"),
            StatusReport::Leg {
                to: Some(Target::Sip(
                    SipUri::parse("sip:bob@pbx.example.com").unwrap()
                )),
                bridged: false
            }
        );
        assert_eq!(leg("hangup", "12025550201"), StatusReport::Progress);
        assert_eq!(
            Plivo::status_report(
                &params(&[
                    ("CallStatus", "completed"),
                    ("HangupCause", "NORMAL_CLEARING")
                ]),
                region
            ),
            StatusReport::CallEnded
        );
    }

    #[test]
    fn a_dial_recording_is_the_record_callbacks_url_and_duration() {
        let url = "https://media.plivo.com/rec/2.mp3";
        assert_eq!(
            Plivo::finished_recording(&params(&[("RecordUrl", url), ("RecordingDuration", "63")])),
            Some(Recording {
                url: url.to_owned(),
                duration_secs: 63
            })
        );
        assert_eq!(
            Plivo::finished_recording(&params(&[("RecordUrl", url), ("RecordingDuration", "-1")])),
            None
        );
        assert_eq!(
            Plivo::finished_recording(&params(&[("RecordingDuration", "5")])),
            None
        );
    }

    #[test]
    fn a_transcription_is_its_text_or_its_error() {
        let done = Plivo::transcription(&params(&[
            ("transcription", "Call me back."),
            ("recording_id", "r1"),
        ]))
        .unwrap();
        assert_eq!(
            (done.status, done.text.as_deref()),
            (TranscriptionStatus::Completed, Some("Call me back."))
        );
        let failed = Plivo::transcription(&params(&[
            ("transcription", ""),
            ("error", "Recording duration too long for transcription"),
        ]))
        .unwrap();
        assert_eq!(failed.status, TranscriptionStatus::Failed);
        assert_eq!(Plivo::transcription(&params(&[("CallUUID", "u")])), None);
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
