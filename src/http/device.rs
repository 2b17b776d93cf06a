//! Device API (contract §4): ring reports, instructions, device events.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::DeviceAuth;
use super::error::ApiError;
use super::json::parse_json_body;
use super::state::AppState;
use crate::domain::phone::Caller;
use crate::domain::session::{Instruction, SessionId};
use crate::domain::subscriber::FieldError;
use crate::flow::{DeviceEvent, RingReport};

#[derive(Deserialize)]
struct RingBody {
    caller: Option<String>,
    device_call_id: Option<String>,
}

#[derive(Serialize)]
struct RingResponse {
    session_id: SessionId,
    instruction: Instruction,
    instruction_url: String,
}

pub async fn ring(
    device: DeviceAuth,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: RingBody = parse_json_body(&body)?;
    if let Some(id) = &body.device_call_id
        && (id.is_empty() || id.len() > 128 || id.chars().any(char::is_control))
    {
        return Err(
            FieldError::new("device_call_id", "must be 1 to 128 printable characters").into(),
        );
    }
    let report = RingReport {
        caller: Caller::parse(body.caller.as_deref(), state.config.default_region),
        device_call_id: body.device_call_id,
    };
    let outcome = state.flow.ring(&device.subscriber, report).await?;
    let instruction_url = format!("/v1/sessions/{}/instruction", outcome.session_id);
    Ok(HttpResponse::Created().json(RingResponse {
        session_id: outcome.session_id,
        instruction: outcome.instruction,
        instruction_url,
    }))
}

#[derive(Serialize)]
struct InstructionResponse {
    instruction: Instruction,
}

#[derive(Deserialize)]
pub struct InstructionQuery {
    #[serde(default)]
    wait: u64,
}

/// The longest `?wait=` allowed, in seconds.
const MAX_WAIT_SECS: u64 = 30;

pub async fn instruction(
    device: DeviceAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<InstructionQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_session_id(&id)?;
    if query.wait > MAX_WAIT_SECS {
        return Err(FieldError::new(
            "wait",
            format!(
                "must be from 0 to {MAX_WAIT_SECS} seconds, got {}",
                query.wait
            ),
        )
        .into());
    }
    let instruction = state
        .flow
        .instruction(
            &device.subscriber.number,
            &id,
            Duration::from_secs(query.wait),
        )
        .await?;
    Ok(HttpResponse::Ok().json(InstructionResponse { instruction }))
}

#[derive(Deserialize)]
struct EventBody {
    event: DeviceEvent,
}

pub async fn event(
    device: DeviceAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = parse_session_id(&id)?;
    let body: EventBody = parse_json_body(&body)?;
    state
        .flow
        .device_event(&device.subscriber, &id, body.event)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A malformed id cannot name a session: 404, like an unknown one.
pub fn parse_session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).map_err(|_| ApiError::NotFound("no such session".into()))
}
