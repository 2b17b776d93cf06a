//! The TwiML family: Twilio, SignalWire (cXML) and Telnyx (TeXML) post
//! Twilio's parameter names and execute Twilio's verbs. What they share is
//! here, once; each provider's module adds its signature and its
//! [`Dialect`](render::Dialect).

pub(crate) mod messages;
pub mod render;

use super::Params;
use crate::domain::caller_context::{CallerContext, CallerName, CallerVerification};
use crate::domain::ids::CallSid;
use crate::domain::phone::{Caller, PhoneNumber, Region};
use crate::domain::session::{DialResult, DialStatus, TranscriptionStatus};
use crate::flow::model::{InboundCall, Recording, StatusReport, Transcription};

/// The call reaching a forwarding number: `CallSid`, `From`, `To`, and
/// where the provider sends them `ForwardedFrom`, `CallerName` (its
/// lookup) and `StirVerstat` (its STIR/SHAKEN verdict).
pub(crate) fn inbound_call(params: &Params, region: Region) -> Option<InboundCall> {
    let number = |name: &str| {
        params
            .get(name)
            .and_then(|v| PhoneNumber::parse(v, region).ok())
    };
    Some(InboundCall {
        call_id: call_id(params)?,
        from: Caller::parse(params.get("From"), region),
        to: number("To"),
        forwarded_from: number("ForwardedFrom"),
        caller: CallerContext {
            name: params.get("CallerName").and_then(CallerName::parse),
            verification: CallerVerification::from_verstat(params.get("StirVerstat")),
        },
    })
}

pub(crate) fn call_id(params: &Params) -> Option<CallSid> {
    params.get("CallSid").and_then(|s| CallSid::parse(s).ok())
}

/// `DialCallStatus`, and `DialBridged` where the provider reports it.
pub(crate) fn dial_result(params: &Params) -> DialResult {
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

pub(crate) fn digits(params: &Params) -> Option<&str> {
    params.get("Digits")
}

/// Our Dials carry no per-noun status callback (the whisper tells who
/// answered), so the status route hears the number's own status callback.
pub(crate) fn status_report(params: &Params) -> StatusReport {
    match params.get("CallStatus") {
        Some("completed" | "busy" | "no-answer" | "failed" | "canceled") => StatusReport::CallEnded,
        _ => StatusReport::Progress,
    }
}

/// `RecordingUrl`, unless the recording is empty.
pub(crate) fn recording_url(params: &Params) -> Option<String> {
    let empty = params
        .get("RecordingDuration")
        .is_some_and(|d| d.trim() == "0");
    params
        .get("RecordingUrl")
        .filter(|u| !u.is_empty() && !empty)
        .map(str::to_owned)
}

/// A `recordingStatusCallback`: `RecordingUrl` and `RecordingDuration`,
/// once `RecordingStatus` says `completed` (or says nothing, as older
/// callbacks do).
pub(crate) fn finished_recording(params: &Params) -> Option<Recording> {
    if !matches!(params.get("RecordingStatus"), None | Some("completed")) {
        return None;
    }
    recording(params, "RecordingUrl", "RecordingDuration")
}

/// A `transcribeCallback`: `TranscriptionStatus` (`completed`, `failed`),
/// `TranscriptionText`, and the `RecordingUrl` transcribed.
pub(crate) fn transcription(params: &Params) -> Option<Transcription> {
    let status = match (
        params.get("TranscriptionStatus"),
        params.get("TranscriptionText"),
    ) {
        (Some("completed"), _) => TranscriptionStatus::Completed,
        (Some(_), _) => TranscriptionStatus::Failed,
        (None, Some(_)) => TranscriptionStatus::Completed,
        (None, None) => return None,
    };
    Some(Transcription {
        status,
        text: params.get("TranscriptionText").map(str::to_owned),
        recording_url: params
            .get("RecordingUrl")
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
    })
}

/// The recording at parameter `url`, `duration` seconds long (0 when the
/// provider does not say; none when it says less than nothing).
pub(crate) fn recording(params: &Params, url: &str, duration: &str) -> Option<Recording> {
    let url = params.get(url).map(str::trim).filter(|u| !u.is_empty())?;
    let duration_secs = match params.get(duration).map(|d| d.trim().parse::<i64>()) {
        Some(Ok(secs)) if secs < 0 => return None,
        Some(Ok(secs)) => u32::try_from(secs).unwrap_or(u32::MAX),
        _ => 0,
    };
    Some(Recording {
        url: url.to_owned(),
        duration_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::params;

    #[test]
    fn a_dial_is_bridged_only_when_the_provider_says_so() {
        let result = dial_result(&params(&[("DialCallStatus", "completed")]));
        assert_eq!(
            (result.status, result.bridged),
            (DialStatus::Completed, None)
        );
        let result = dial_result(&params(&[
            ("DialCallStatus", "completed"),
            ("DialBridged", "false"),
        ]));
        assert_eq!(result.bridged, Some(false));
        assert_eq!(
            dial_result(&params(&[("DialCallStatus", "no-answer")])).status,
            DialStatus::NoAnswer
        );
        assert_eq!(dial_result(&params(&[])).status, DialStatus::Failed);
    }

    #[test]
    fn only_a_final_call_status_ends_the_call() {
        for status in ["completed", "busy", "no-answer", "failed", "canceled"] {
            assert_eq!(
                status_report(&params(&[("CallStatus", status)])),
                StatusReport::CallEnded
            );
        }
        assert_eq!(
            status_report(&params(&[("CallStatus", "in-progress")])),
            StatusReport::Progress
        );
    }

    #[test]
    fn a_dial_recording_is_read_once_it_is_completed() {
        let url = "https://api.example.com/Recordings/RE1";
        let finished = |status: Option<&str>| {
            let mut pairs = vec![("RecordingUrl", url), ("RecordingDuration", "42")];
            pairs.extend(status.map(|s| ("RecordingStatus", s)));
            finished_recording(&params(&pairs))
        };
        let expected = Some(Recording {
            url: url.to_owned(),
            duration_secs: 42,
        });
        assert_eq!(finished(Some("completed")), expected);
        assert_eq!(finished(None), expected);
        for status in ["in-progress", "absent", "failed"] {
            assert_eq!(finished(Some(status)), None, "{status}");
        }
        assert_eq!(
            finished_recording(&params(&[("RecordingStatus", "completed")])),
            None
        );
        assert_eq!(
            finished_recording(&params(&[
                ("RecordingUrl", url),
                ("RecordingDuration", "x")
            ]))
            .map(|r| r.duration_secs),
            Some(0)
        );
    }

    #[test]
    fn a_transcription_callback_says_its_status_text_and_recording() {
        let url = "https://api.example.com/Recordings/RE1";
        assert_eq!(
            transcription(&params(&[
                ("TranscriptionStatus", "completed"),
                ("TranscriptionText", "Call me back."),
                ("RecordingUrl", url),
            ])),
            Some(Transcription {
                status: TranscriptionStatus::Completed,
                text: Some("Call me back.".into()),
                recording_url: Some(url.into()),
            })
        );
        let failed = transcription(&params(&[("TranscriptionStatus", "failed")])).unwrap();
        assert_eq!(
            (failed.status, failed.text),
            (TranscriptionStatus::Failed, None)
        );
        assert_eq!(transcription(&params(&[("CallSid", "CA1")])), None);
    }

    #[test]
    fn an_empty_recording_is_no_voicemail() {
        let url = "https://api.example.com/Recordings/RE1";
        assert_eq!(
            recording_url(&params(&[
                ("RecordingUrl", url),
                ("RecordingDuration", "4")
            ])),
            Some(url.to_owned())
        );
        assert_eq!(
            recording_url(&params(&[
                ("RecordingUrl", url),
                ("RecordingDuration", "0")
            ])),
            None
        );
    }
}
