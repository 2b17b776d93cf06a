//! Device API (docs/api.md): ring reports, instructions, device events.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::DeviceAuth;
use super::error::{ApiError, doc};
use super::extract::{ApiJson, Authenticated, SessionPath};
use super::state::AppState;
use crate::domain::error::FieldError;
use crate::domain::ids::DeviceCallId;
use crate::domain::phone::Caller;
use crate::domain::rules::IgnoreReason;
use crate::domain::session::{Instruction, SessionId};
use crate::domain::time::Timestamp;
use crate::flow::{DeviceEvent, RingReport};

/// A ring report: a call rings on the subscriber's phone.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"caller": "+12025550302", "device_call_id": "a1b2c3"}))]
pub(super) struct RingBody {
    /// The calling number as the phone shows it (E.164 or national). `null`,
    /// empty, `anonymous`, `restricted`, `unknown`, `private`, the carriers'
    /// withheld numbers or anything with letters mean a withheld caller,
    /// never an error.
    #[schema(example = "+12025550302")]
    caller: Option<String>,
    /// The phone's own id for the call: a repeated report with the same id
    /// returns the same session (retries are safe). 1 to 128 printable
    /// characters.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, example = "a1b2c3")]
    device_call_id: Option<DeviceCallId>,
}

/// The session made for a ring report, and what the phone should do.
#[derive(Serialize, utoipa::ToSchema)]
struct RingResponse {
    session_id: SessionId,
    instruction: Instruction,
    /// Where to long-poll the instruction while it is `wait`.
    #[schema(example = "/v1/sessions/ses_q7Xb2mN4pR8sT1vW3yZ5aB/instruction")]
    instruction_url: String,
    /// Why, when the instruction is `ignore` (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<IgnoreReason>,
}

/// Reports a call ringing on the subscriber's phone.
///
/// Answers once every destination was notified (or its notification timed
/// out): `reject` in `auto` mode, `wait` in `pick` mode, `ignore` (with a
/// `reason`) when only the phone should ring: no provider is configured, or
/// a rule keeps the destinations out of this call. A retried report (same
/// `device_call_id`) answers the existing session at once with its current
/// instruction. At most 30 reports a minute per device.
#[utoipa::path(
    post,
    path = "/v1/ring",
    operation_id = "report_ring",
    tag = "device",
    request_body = RingBody,
    responses(
        (status = 201, description = "The session.", body = RingResponse),
        (status = 429, response = doc::RateLimited),
        doc::Authenticated,
        doc::JsonBody,
    ),
    security(("device_token" = [])),
)]
pub async fn ring(
    Authenticated(device, ApiJson(body)): Authenticated<DeviceAuth, ApiJson<RingBody>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let report = RingReport {
        caller: Caller::parse(body.caller.as_deref(), state.settings.default_region),
        device_call_id: body.device_call_id,
    };
    let outcome = state.flow.ring(&device.subscriber, report).await?;
    let instruction_url = format!("/v1/sessions/{}/instruction", outcome.session_id);
    Ok(HttpResponse::Created().json(RingResponse {
        session_id: outcome.session_id,
        instruction: outcome.instructed.instruction,
        instruction_url,
        reason: outcome.instructed.ignore_reason,
    }))
}

/// Do-not-disturb for the subscriber.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"until": "2026-12-02T07:00:00Z"}))]
pub(super) struct DndBody {
    /// Until when (RFC 3339, in the future); `null` turns it off.
    until: Option<Timestamp>,
}

/// Do-not-disturb as stored.
#[derive(Serialize, utoipa::ToSchema)]
struct DndResponse {
    /// Until when it is on; `null`: off.
    dnd_until: Option<Timestamp>,
}

/// Turns do-not-disturb on until a time, or off.
///
/// While it is on, ring reports answer `reject`, no destination is notified,
/// and the forwarded call goes straight to the fallback (a `vip` caller
/// rule still rings the destinations). It ends by itself at `until`; the
/// stored subscriber shows it as `dnd_until`.
#[utoipa::path(
    put,
    path = "/v1/dnd",
    operation_id = "put_dnd",
    tag = "device",
    request_body = DndBody,
    responses(
        (status = 200, description = "Do-not-disturb as stored.", body = DndResponse),
        doc::Authenticated,
        doc::JsonBody,
    ),
    security(("device_token" = [])),
)]
pub async fn put_dnd(
    Authenticated(device, ApiJson(body)): Authenticated<DeviceAuth, ApiJson<DndBody>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if body.until.is_some_and(|until| until <= state.flow.now()) {
        return Err(FieldError::new(
            "until",
            "must be in the future; null turns do-not-disturb off",
        )
        .into());
    }
    let stored = state
        .registry
        .set_dnd(&device.subscriber.number, body.until)
        .await?
        // Removed since the token was checked.
        .ok_or(ApiError::Unauthorized)?;
    Ok(HttpResponse::Ok().json(DndResponse {
        dnd_until: stored.dnd_until,
    }))
}

/// The phone's instruction for a session.
#[derive(Serialize, utoipa::ToSchema)]
struct InstructionResponse {
    instruction: Instruction,
    /// Why, when the instruction is `ignore` (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<IgnoreReason>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstructionQuery {
    /// Seconds to wait for the instruction to stop being `wait` (0 to 30).
    #[serde(default)]
    #[param(minimum = 0, maximum = 30, default = 0)]
    wait: u64,
}

/// The longest `?wait=` allowed, in seconds.
const MAX_WAIT_SECS: u64 = 30;

/// Long-polls the phone's instruction.
///
/// Waits up to `wait` seconds for the instruction to stop being `wait`.
/// Answers at once when the instruction is known; otherwise as soon as a
/// destination accepts (`reject`), all decline or pick mode's wait ends
/// (`ignore`), or after `wait` seconds (`wait`), whichever instance the news
/// reached.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/instruction",
    operation_id = "get_instruction",
    tag = "device",
    params(
        (
            "id" = SessionId,
            Path,
            description = "The session id; a malformed one is unknown (404)."
        ),
        InstructionQuery,
    ),
    responses(
        (status = 200, description = "The instruction.", body = InstructionResponse),
        (status = 404, response = doc::NotFound),
        (status = 422, response = doc::InvalidField),
        doc::Authenticated,
    ),
    security(("device_token" = [])),
)]
pub async fn instruction(
    Authenticated(device, (query, SessionPath(id))): Authenticated<
        DeviceAuth,
        (web::Query<InstructionQuery>, SessionPath),
    >,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
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
    let subscriber = &device.subscriber;
    tracing::debug!(session_id = %id, wait = query.wait, "instruction long-poll waiting");
    let instructed = tokio::select! {
        instructed = state.flow.instruction(subscriber, &id, Duration::from_secs(query.wait)) => instructed?,
        // A deploy: answer what is known now rather than be cut off; the
        // phone polls again, reaching another instance.
        () = state.shutdown.cancelled() => {
            state.flow.instruction(subscriber, &id, Duration::ZERO).await?
        }
    };
    Ok(HttpResponse::Ok().json(InstructionResponse {
        instruction: instructed.instruction,
        reason: instructed.ignore_reason,
    }))
}

/// What happened to the call on the phone.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"event": "rejected"}))]
pub(super) struct EventBody {
    event: DeviceEvent,
}

/// In the OpenAPI description: the lowercase names `DeviceEvent` reads.
impl utoipa::PartialSchema for DeviceEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "`answered`: taken on the phone itself; `ended`: the caller gave up \
                 (both end the session as `cancelled` and tell every destination); \
                 `rejected`: the phone did reject the call.",
            ))
            .enum_values(Some(["answered", "ended", "rejected"]))
            .into()
    }
}

impl utoipa::ToSchema for DeviceEvent {}

/// Reports what happened to the call on the phone.
///
/// `answered` and `ended` end the session as `cancelled` and tell every
/// destination (`call.cancelled`); `rejected` records that the phone did
/// reject the call.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/events",
    operation_id = "report_device_event",
    tag = "device",
    params((
        "id" = SessionId,
        Path,
        description = "The session id; a malformed one is unknown (404)."
    )),
    request_body = EventBody,
    responses(
        (status = 204, description = "Recorded."),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::AlreadyForwarded),
        (status = 410, response = doc::SessionOver),
        doc::Authenticated,
        doc::JsonBody,
    ),
    security(("device_token" = [])),
)]
pub async fn event(
    Authenticated(device, (ApiJson(body), SessionPath(id))): Authenticated<
        DeviceAuth,
        (ApiJson<EventBody>, SessionPath),
    >,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state
        .flow
        .device_event(&device.subscriber, &id, body.event)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
