//! `GET /v1/sessions/{id}` (contract §6).

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::auth::SessionReader;
use super::device::parse_session_id;
use super::error::ApiError;
use super::state::AppState;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{Leg, Session, SessionId, SessionState, Timeline};
use crate::domain::subscriber::{DestinationId, Mode};

/// A session as the contract shows it: no capabilities, no internals.
#[derive(Serialize)]
struct SessionView<'a> {
    id: &'a SessionId,
    subscriber: &'a PhoneNumber,
    caller: &'a Caller,
    state: SessionState,
    mode: Mode,
    selected_destination: Option<&'a DestinationId>,
    call_sid: Option<&'a str>,
    timeline: &'a Timeline,
    legs: &'a [Leg],
}

impl<'a> From<&'a Session> for SessionView<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            id: &s.id,
            subscriber: &s.subscriber,
            caller: &s.caller,
            state: s.state,
            mode: s.mode,
            selected_destination: s.selected_destination.as_ref(),
            call_sid: s.call_sid.as_deref(),
            timeline: &s.timeline,
            legs: &s.legs,
        }
    }
}

pub async fn get_session(
    reader: SessionReader,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_session_id(&id)?;
    let session = match reader {
        SessionReader::Admin => state
            .store
            .session(&id)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such session".into()))?,
        SessionReader::Subscriber(number) => state.flow.session_of(&number, &id).await?,
    };
    Ok(HttpResponse::Ok().json(SessionView::from(&session)))
}
