//! Destination API (docs/api.md): the live event stream, and accepting or
//! declining a call, by destination token or by the capability URLs of
//! `call.ringing`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, web};
use actix_web_lab::sse;
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::auth::{DestinationAuth, bearer_token, token_owner};
use super::error::{ApiError, doc};
use super::extract::SessionPath;
use super::state::AppState;
use crate::domain::credentials::TokenOwner;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::session::{OfferResponse, SessionId, SessionState};
use crate::flow::Answerer;
use crate::notify::bus::StreamEvent;
use crate::notify::resume::{BusPosition, Scope, after_replay};

/// Comments at least this often keep proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The destination's live event stream (Server-Sent Events).
///
/// The same events as the webhooks: `event:` is the type (`call.ringing`,
/// `call.cancelled`, `call.connected`, `call.missed`, `call.voicemail`),
/// `data:` the JSON `{"type", "timestamp", "data"}`, `id:` its position on
/// the event bus. The stream opens with an `id:` and empty `data:` (where it
/// starts; a browser dispatches nothing). A `: keep-alive` comment comes
/// every 10 s. Events from every instance arrive. Reopened with
/// `Last-Event-ID`, on any instance, it first replays what this
/// destination missed since then (within `SESSION_TTL_SECS`).
#[utoipa::path(
    get,
    path = "/v1/destinations/{id}/events",
    operation_id = "stream_destination_events",
    tag = "destinations",
    params(
        (
            "id" = DestinationId,
            Path,
            description = "The destination's id; the token must be this destination's."
        ),
        LastEventId,
    ),
    responses(
        (
            status = 200,
            description = "A `text/event-stream` that lasts until the client or the \
                           service closes it (then reconnect).",
            content_type = "text/event-stream",
            body = String,
            example = "id: 1764172150100-0\ndata: \n\nid: 1764172150123-0\nevent: call.ringing\ndata: {\"type\":\"call.ringing\",\"data\":{\"session_id\":\"ses_q7Xb2mN4pR8sT1vW3yZ5aB\",\"subscriber\":\"+12025550199\",\"caller\":\"+12025550302\",\"destination_id\":\"laptop\",\"accept_url\":\"https://ringrelay.example.com/v1/sessions/ses_q7Xb2mN4pR8sT1vW3yZ5aB/accept?capability=rrc_…\",\"decline_url\":\"https://ringrelay.example.com/v1/sessions/ses_q7Xb2mN4pR8sT1vW3yZ5aB/decline?capability=rrc_…\",\"expires_at\":\"2026-11-26T15:49:25.123Z\"},\"timestamp\":\"2026-11-26T15:49:10.123Z\"}\n\n: keep-alive\n\n"
        ),
        (status = 403, response = doc::Forbidden),
        (status = 429, response = doc::TooManyStreams),
        doc::Authenticated,
    ),
    security(("destination_token" = [])),
)]
pub async fn events(
    destination: DestinationAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    resume: ResumeFrom,
) -> Result<impl Responder, ApiError> {
    if destination.destination.as_str() != id.as_str() {
        return Err(ApiError::Forbidden(
            "this token belongs to another destination".into(),
        ));
    }
    let limits = state.settings.stream_limits;
    let receiver = state
        .flow
        .bus()
        .subscribe_within(
            &destination.subscriber.number,
            &destination.destination,
            limits,
        )
        .map_err(|full| ApiError::RateLimited {
            message: full.to_string(),
            retry_after: STREAM_RETRY_AFTER,
        })?;
    tracing::info!(subscriber = %destination.subscriber.number, destination = %destination.destination, resumed = resume.is_some(), "live stream opened");
    let scope = Scope::Destination {
        subscriber: destination.subscriber.number.clone(),
        destination: destination.destination.clone(),
    };
    let replay = resume.replay(&state, &scope).await;
    Ok(live_stream(receiver, replay, &state))
}

/// The header of a stream that resumes (for the API document).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub(super) struct LastEventId {
    /// The `id:` of the last event the client had: what was published
    /// after it (within `SESSION_TTL_SECS`) is sent first. A browser's
    /// `EventSource` sends it by itself when it reconnects.
    #[param(rename = "Last-Event-ID", example = "1764172150123-0")]
    #[allow(dead_code, reason = "read by ResumeFrom; here for the document")]
    last_event_id: Option<String>,
}

/// The `Last-Event-ID` a reconnecting client sends: the position on the
/// bus of the last event it had. One that is no position of ours (another
/// service's, or garbage) resumes nothing: the stream starts from now.
pub(super) struct ResumeFrom(Option<BusPosition>);

impl FromRequest for ResumeFrom {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let position = req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(BusPosition::parse);
        std::future::ready(Ok(Self(position)))
    }
}

impl ResumeFrom {
    pub(super) fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// What the stream missed since then (nothing when not resuming).
    pub(super) async fn replay(&self, state: &AppState, scope: &Scope) -> Vec<Arc<StreamEvent>> {
        match self.0 {
            Some(after) => state.flow.bus().replay(scope, after).await,
            None => Vec::new(),
        }
    }
}

/// A live stream's response: first `replay` (what a resumed stream
/// missed), then the position it opened at, then each event as it comes, as `id:` (its position on the
/// bus), `event:` (its type) and `data:` (its JSON); keep-alive comments, a
/// comment when events were missed; ends when the service shuts down
/// (clients reconnect, maybe elsewhere, with `Last-Event-ID`). `receiver`
/// was opened before the replay was read: what both hold is sent once.
pub(super) fn live_stream(
    receiver: broadcast::Receiver<Arc<StreamEvent>>,
    replay: Vec<Arc<StreamEvent>>,
    state: &AppState,
) -> impl Responder + use<> {
    let replayed_up_to = replay.last().and_then(|e| e.position);
    let mut fresh = after_replay(replayed_up_to);
    // Then where the stream stands, as an `id:` with no data: it sets the
    // client's last event id (a browser dispatches nothing), so that a
    // stream that drops before its first event still resumes from here.
    let opened_at = state
        .flow
        .bus()
        .position()
        .max(replayed_up_to.unwrap_or(BusPosition::ZERO));
    let opening = sse::Event::Data(sse::Data::new("").id(opened_at.to_string()));
    let replayed = futures_util::stream::iter(replay)
        .map(|event| sse_event(&event))
        .chain(futures_util::stream::once(std::future::ready(opening)));
    let live = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let next = match receiver.recv().await {
            Ok(event) => Ok(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(format!(
                "{missed} events were missed: read the sessions you care about"
            )),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((next, receiver))
    })
    .filter_map(move |next| {
        let event = match next {
            Ok(event) => fresh(&event).then(|| sse_event(&event)),
            Err(comment) => Some(sse::Event::Comment(comment.into())),
        };
        std::future::ready(event)
    });
    let stream = replayed
        .chain(live)
        .take_until(state.shutdown.clone().cancelled_owned());
    sse::Sse::from_infallible_stream(stream).with_keep_alive(KEEP_ALIVE)
}

/// One event as the stream sends it.
fn sse_event(event: &StreamEvent) -> sse::Event {
    let mut data = sse::Data::new(event.json.clone()).event(event.kind.clone());
    if let Some(position) = event.position {
        data = data.id(position.to_string());
    }
    sse::Event::Data(data)
}

/// When a client refused a stream should try again: streams end when their
/// clients go, so a place frees up soon.
pub(super) const STREAM_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OfferQuery {
    /// The capability of the `accept_url` / `decline_url` of `call.ringing`;
    /// used when no `Authorization` header is sent.
    #[param(example = "rrc_Y2FwYWJpbGl0eSBleGFtcGxlLCBub3QgcmVhbCBvbmU")]
    capability: Option<String>,
}

/// The session's state after the answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"state": "instructed"}))]
struct OfferAnswer {
    state: SessionState,
}

/// Accepts the offered call.
///
/// Once per destination: by destination token, or by a plain `POST` to the
/// `accept_url` of `call.ringing`. The first destination to accept wins:
/// the phone's instruction becomes `reject` and the forwarded call dials it
/// first.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/accept",
    operation_id = "accept_offer",
    tag = "destinations",
    params(
        ("id" = SessionId, Path, description = "The session id; a malformed one is unknown (404)."),
        OfferQuery,
    ),
    responses(
        (status = 200, description = "Accepted.", body = OfferAnswer),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::OfferConflict),
        (status = 410, response = doc::SessionOver),
        doc::Authenticated,
    ),
    security(("destination_token" = []), ("capability" = [])),
)]
pub async fn accept(
    SessionPath(id): SessionPath,
    answerer: OfferAnswerer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &id, &answerer, OfferResponse::Accepted).await
}

/// Declines the offered call.
///
/// Once per destination: by destination token, or by a plain `POST` to the
/// `decline_url` of `call.ringing`. When every destination declined in pick
/// mode, the instruction becomes `ignore`.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/decline",
    operation_id = "decline_offer",
    tag = "destinations",
    params(
        ("id" = SessionId, Path, description = "The session id; a malformed one is unknown (404)."),
        OfferQuery,
    ),
    responses(
        (status = 200, description = "Declined.", body = OfferAnswer),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::OfferConflict),
        (status = 410, response = doc::SessionOver),
        doc::Authenticated,
    ),
    security(("destination_token" = []), ("capability" = [])),
)]
pub async fn decline(
    SessionPath(id): SessionPath,
    answerer: OfferAnswerer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &id, &answerer, OfferResponse::Declined).await
}

async fn answer(
    state: &AppState,
    id: &SessionId,
    answerer: &OfferAnswerer,
    response: OfferResponse,
) -> Result<HttpResponse, ApiError> {
    let session_state = state
        .flow
        .answer_offer(id, answerer.answerer(), response)
        .await?;
    Ok(HttpResponse::Ok().json(OfferAnswer {
        state: session_state,
    }))
}

/// Whoever answers the offer of a call: a destination by its bearer token,
/// or, with no `Authorization` header, the holder of the capability of an
/// `accept_url` / `decline_url`; 401 otherwise.
pub enum OfferAnswerer {
    Destination {
        subscriber: PhoneNumber,
        destination: DestinationId,
    },
    Capability(String),
}

impl OfferAnswerer {
    fn answerer(&self) -> Answerer<'_> {
        match self {
            Self::Destination {
                subscriber,
                destination,
            } => Answerer::Destination {
                subscriber,
                destination,
            },
            Self::Capability(capability) => Answerer::Capability(capability),
        }
    }
}

impl FromRequest for OfferAnswerer {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let query = web::Query::<OfferQuery>::extract(&req).await?;
            if bearer_token(&req).is_some() {
                return match token_owner(&req).await? {
                    (
                        TokenOwner::Destination {
                            subscriber,
                            destination,
                        },
                        _,
                    ) => Ok(Self::Destination {
                        subscriber,
                        destination,
                    }),
                    _ => Err(ApiError::Unauthorized.into()),
                };
            }
            match query.into_inner().capability {
                Some(capability) => Ok(Self::Capability(capability)),
                None => Err(ApiError::Unauthorized.into()),
            }
        })
    }
}
