//! The events destinations hear, on their webhook and their live stream:
//! `{"type": "...", "timestamp": "<RFC 3339>", "data": {...}}`.

use serde::Serialize;

use crate::domain::caller_context::{CallerName, CallerVerification};
use crate::domain::ids::DestinationId;
use crate::domain::phone::{Caller, PhoneNumber};
pub use crate::domain::session::{CancelReason, MissedReason};
use crate::domain::session::{SessionId, TextOutcome, TranscriptionStatus};
use crate::domain::time::Timestamp;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Event {
    #[serde(flatten)]
    pub payload: EventPayload,
    pub timestamp: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "data")]
pub(crate) enum EventPayload {
    #[serde(rename = "call.ringing")]
    Ringing(Ringing),
    #[serde(rename = "call.cancelled")]
    Cancelled(Cancelled),
    #[serde(rename = "call.connected")]
    Connected(Connected),
    #[serde(rename = "call.missed")]
    Missed(Missed),
    #[serde(rename = "call.voicemail")]
    Voicemail(Voicemail),
    #[serde(rename = "call.taken")]
    Taken(Taken),
    #[serde(rename = "call.recording")]
    Recording(Recording),
    #[serde(rename = "call.voicemail_transcribed")]
    VoicemailTranscribed(VoicemailTranscribed),
}

/// What every event says of the call.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct CallRef {
    pub session_id: SessionId,
    pub subscriber: PhoneNumber,
    /// The caller's number, `null` when withheld.
    pub caller: Caller,
    /// The caller's name from the forwarded call's provider (its CNAM
    /// lookup); `null` when it sent none, and in events before the
    /// forwarded call arrived (`call.ringing`, `call.taken`,
    /// `call.cancelled`).
    #[schema(required = true)]
    pub caller_name: Option<CallerName>,
    /// The forwarded call's STIR/SHAKEN verdict: `verified` (attestation A
    /// checked out), `partial` (B or C), `failed`, or `none` (nothing to
    /// check: usual for a forwarded call, whose carrier often drops the
    /// caller's token; and before the forwarded call arrived).
    pub caller_verification: CallerVerification,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ringing {
    #[serde(flatten)]
    pub call: CallRef,
    pub destination_id: DestinationId,
    /// A plain POST accepts the call (once); no header needed.
    #[schema(format = Uri, example = "https://relay.example.com/v1/sessions/ses_q7Xb2mN4pR8sT1vW3yZ5aB/accept?capability=rrc_…")]
    pub accept_url: String,
    /// A plain POST declines the call (once); no header needed.
    #[schema(format = Uri, example = "https://relay.example.com/v1/sessions/ses_q7Xb2mN4pR8sT1vW3yZ5aB/decline?capability=rrc_…")]
    pub decline_url: String,
    /// When an accept stops being useful.
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Cancelled {
    #[serde(flatten)]
    pub call: CallRef,
    /// `answered_on_phone`, `caller_hung_up`, `subscriber_deleted`,
    /// `expired` (nothing more was heard of the call).
    #[schema(value_type = String, example = "caller_hung_up")]
    pub reason: CancelReason,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Connected {
    #[serde(flatten)]
    pub call: CallRef,
    /// Who took it; `null` when several rang at once and the provider does
    /// not say which answered.
    pub destination_id: Option<DestinationId>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Missed {
    #[serde(flatten)]
    pub call: CallRef,
    /// `not_forwarded` (the phone rejected but no forwarded call came:
    /// check the carrier's forwarding), `caller_hung_up`, `nobody_answered`,
    /// `no_outcome` (the provider never said how the forwarded call ended),
    /// `blocked` (a caller rule blocks the caller: the call heard busy).
    #[schema(value_type = String, example = "nobody_answered")]
    pub reason: MissedReason,
    /// What came of the text back to the caller (subscribers with
    /// `missed_call_text`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed_call_text: Option<TextOutcome>,
}

/// Another destination accepted the call (pick mode): this one's offer is
/// closed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Taken {
    #[serde(flatten)]
    pub call: CallRef,
    /// Who accepted.
    pub destination_id: DestinationId,
}

/// The caller left a voicemail.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Voicemail {
    #[serde(flatten)]
    pub call: CallRef,
    /// Where the provider keeps the recording.
    #[schema(format = Uri)]
    pub recording_url: String,
    /// What came of the text back to the caller (subscribers with
    /// `missed_call_text`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed_call_text: Option<TextOutcome>,
}

/// The recording of the call's legs (subscribers with `record: answer`)
/// is ready.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct Recording {
    #[serde(flatten)]
    pub call: CallRef,
    /// Where the provider keeps it (Telnyx's links last 10 minutes).
    #[schema(format = Uri, example = "https://api.twilio.com/2010-04-01/Accounts/AC…/Recordings/RE…")]
    pub recording_url: String,
    /// Its length, in seconds.
    pub duration_secs: u32,
}

/// The provider transcribed the voicemail the caller left (subscribers
/// with `transcribe_voicemail`): sent once, when the transcription is ready,
/// usually a minute or a few after the voicemail.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct VoicemailTranscribed {
    #[serde(flatten)]
    pub call: CallRef,
    /// The recording transcribed (as `call.voicemail` gave it).
    #[schema(format = Uri, required = true)]
    pub recording_url: Option<String>,
    /// What the caller said, at most 2,000 characters; `null` when the
    /// transcription failed.
    #[schema(required = true)]
    pub text: Option<String>,
    /// `completed`, or `failed` (the provider could not transcribe it).
    pub status: TranscriptionStatus,
}

impl EventPayload {
    /// Every kind of event: its `type`, what it says, and the schema of
    /// its `data` (for the API document).
    pub const KINDS: [(&'static str, &'static str, &'static str); 8] = [
        (
            "call.ringing",
            "A call rings: it is offered to this destination until it expires.",
            "Ringing",
        ),
        (
            "call.cancelled",
            "The call ended before it was forwarded (taken on the phone, the caller hung up, …).",
            "Cancelled",
        ),
        (
            "call.connected",
            "A destination took the call.",
            "Connected",
        ),
        ("call.missed", "Nobody took the call.", "Missed"),
        (
            "call.voicemail",
            "The caller left a voicemail.",
            "Voicemail",
        ),
        (
            "call.taken",
            "Another destination accepted the call (pick mode): this offer is closed.",
            "Taken",
        ),
        (
            "call.recording",
            "The recording of the call's legs is ready (subscribers with `record: answer`).",
            "Recording",
        ),
        (
            "call.voicemail_transcribed",
            "The voicemail's transcription is ready (subscribers with `transcribe_voicemail`).",
            "VoicemailTranscribed",
        ),
    ];
}

impl Event {
    pub(crate) fn now(payload: EventPayload) -> Self {
        Self {
            payload,
            timestamp: Timestamp::now(),
        }
    }

    /// The call it is about.
    pub(crate) fn session_id(&self) -> &SessionId {
        let call = match &self.payload {
            EventPayload::Ringing(e) => &e.call,
            EventPayload::Cancelled(e) => &e.call,
            EventPayload::Connected(e) => &e.call,
            EventPayload::Missed(e) => &e.call,
            EventPayload::Voicemail(e) => &e.call,
            EventPayload::Taken(e) => &e.call,
            EventPayload::Recording(e) => &e.call,
            EventPayload::VoicemailTranscribed(e) => &e.call,
        };
        &call.session_id
    }

    /// The `type` string (`call.ringing`, …), also the SSE `event:` name.
    pub(crate) fn kind(&self) -> &'static str {
        match self.payload {
            EventPayload::Ringing(_) => "call.ringing",
            EventPayload::Cancelled(_) => "call.cancelled",
            EventPayload::Connected(_) => "call.connected",
            EventPayload::Missed(_) => "call.missed",
            EventPayload::Voicemail(_) => "call.voicemail",
            EventPayload::Taken(_) => "call.taken",
            EventPayload::Recording(_) => "call.recording",
            EventPayload::VoicemailTranscribed(_) => "call.voicemail_transcribed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;

    #[test]
    fn events_serialise_in_the_contract_shape() {
        let call = CallRef {
            session_id: SessionId::generate(),
            subscriber: PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
            caller: Caller::Withheld,
            caller_name: None,
            caller_verification: CallerVerification::None,
        };
        let event = Event::now(EventPayload::Voicemail(Voicemail {
            call: call.clone(),
            recording_url: "https://api.twilio.com/rec/RE1".into(),
            missed_call_text: None,
        }));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "call.voicemail");
        assert_eq!(json["type"], event.kind());
        assert_eq!(json["data"]["session_id"], call.session_id.as_str());
        assert_eq!(json["data"]["subscriber"], "+12025550199");
        assert_eq!(json["data"]["caller"], serde_json::Value::Null);
        assert_eq!(json["data"]["caller_name"], serde_json::Value::Null);
        assert_eq!(json["data"]["caller_verification"], "none");
        assert_eq!(
            json["data"]["recording_url"],
            "https://api.twilio.com/rec/RE1"
        );
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(json.as_object().unwrap().len(), 3);
    }

    #[test]
    fn a_recording_event_carries_its_url_and_duration() {
        let call = CallRef {
            session_id: SessionId::generate(),
            subscriber: PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
            caller: Caller::parse(Some("+12025550302"), Region::default()),
            caller_name: CallerName::parse("JANE DOE"),
            caller_verification: CallerVerification::Verified,
        };
        let event = Event::now(EventPayload::Recording(Recording {
            call,
            recording_url: "https://api.twilio.com/rec/RE2".into(),
            duration_secs: 63,
        }));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "call.recording");
        assert_eq!(json["type"], event.kind());
        assert_eq!(json["data"]["caller"], "+12025550302");
        assert_eq!(json["data"]["caller_name"], "JANE DOE");
        assert_eq!(json["data"]["caller_verification"], "verified");
        assert_eq!(
            json["data"]["recording_url"],
            "https://api.twilio.com/rec/RE2"
        );
        assert_eq!(json["data"]["duration_secs"], 63);
    }
}
