//! `GET /v1/sessions/{id}` (docs/api.md).

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::auth::SessionReader;
use super::error::{ApiError, doc};
use super::extract::{Authenticated, SessionPath};
use super::state::AppState;
use crate::domain::caller_context::{CallerName, CallerVerification};
use crate::domain::ids::{CallSid, DestinationId};
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{
    LegStatus, Session, SessionId, SessionState, TextOutcome, Timeline, Transcript,
};
use crate::domain::subscriber::Mode;

/// A session as the contract shows it: no capabilities, no internals.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub(super) struct SessionView<'a> {
    id: &'a SessionId,
    subscriber: &'a PhoneNumber,
    caller: &'a Caller,
    /// The caller's name from the forwarded call's provider (its CNAM
    /// lookup); `null` until the forwarded call arrived, or when the
    /// provider sent none.
    #[schema(required = true)]
    caller_name: Option<&'a CallerName>,
    /// The forwarded call's STIR/SHAKEN verdict: `verified`, `partial`,
    /// `failed` or `none` (nothing to check, or not forwarded yet).
    caller_verification: CallerVerification,
    state: SessionState,
    mode: Mode,
    /// The destination that accepted (dialed first); `null` until one did.
    #[schema(required = true)]
    selected_destination: Option<&'a DestinationId>,
    /// The CPaaS id of the forwarded call (Twilio CallSid, Plivo CallUUID);
    /// `null` until it arrived.
    #[schema(
        value_type = Option<String>,
        required = true,
        example = "CA0123456789abcdef0123456789abcdef"
    )]
    call_sid: Option<&'a str>,
    timeline: &'a Timeline,
    /// The legs of the forwarded call's Dials, in order.
    legs: Vec<LegView<'a>>,
    /// The voicemail's transcription (subscribers with
    /// `transcribe_voicemail`); `null` until the provider sent it.
    #[schema(required = true)]
    voicemail_transcription: Option<&'a Transcript>,
    /// What came of the text back to the caller (subscribers with
    /// `missed_call_text`): `sent`, `failed` or `skipped`; `null` while it
    /// is being sent, and for every other call.
    #[schema(required = true)]
    missed_call_text: Option<TextOutcome>,
}

/// One leg: the destination rung, and what became of it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Leg)]
struct LegView<'a> {
    #[schema(value_type = String, example = "desk")]
    destination_id: &'a DestinationId,
    /// `ringing`, `connected`, `declined` (picked up, but screening got no
    /// 1), `busy`, `no-answer`, `failed`, `unreachable` (a `client` leg that
    /// ended so within 2 s of its Dial: the softphone was not there) or
    /// `canceled`.
    status: LegStatus,
}

impl<'a> From<&'a Session> for SessionView<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            id: s.id(),
            subscriber: s.subscriber(),
            caller: s.caller(),
            caller_name: s.caller_name(),
            caller_verification: s.caller_verification(),
            state: s.state(),
            mode: s.mode(),
            selected_destination: s.selected_destination(),
            call_sid: s.call_sid().map(CallSid::as_str),
            timeline: s.timeline(),
            legs: s
                .legs()
                .iter()
                .map(|l| LegView {
                    destination_id: &l.destination_id,
                    status: l.status,
                })
                .collect(),
            voicemail_transcription: s.transcription(),
            missed_call_text: s.missed_call_text(),
        }
    }
}

/// Reads a session.
///
/// For the admin (any session), or the subscriber's phone or destinations
/// (that subscriber's sessions; others' are not found). Times are `null`
/// until reached.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}",
    operation_id = "get_session",
    tag = "sessions",
    params(("id" = SessionId, Path, description = "The session id; a malformed one is unknown (404).")),
    responses(
        (status = 200, description = "The session.", body = SessionView),
        (status = 404, response = doc::NotFound),
        doc::Authenticated,
    ),
    security(("admin_token" = []), ("device_token" = []), ("destination_token" = [])),
)]
pub async fn get_session(
    Authenticated(reader, SessionPath(id)): Authenticated<SessionReader, SessionPath>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let session = match reader {
        SessionReader::Admin => state.flow.session(&id).await?,
        SessionReader::Subscriber(number) => state.flow.session_of(&number, &id).await?,
    };
    Ok(HttpResponse::Ok().json(SessionView::from(&session)))
}
