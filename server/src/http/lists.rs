//! The list routes and the admin's live stream (docs/console.md):
//! `GET /v1/subscribers`, `GET /v1/sessions`, `GET /v1/events`.

use actix_web::{HttpResponse, Responder, web};
use serde::{Deserialize, Serialize};

use super::auth::{AdminAuth, SessionReader};
use super::destinations::{LastEventId, ResumeFrom, STREAM_RETRY_AFTER, live_stream};
use super::error::{ApiError, doc};
use super::sessions::SessionView;
use super::state::AppState;
use crate::domain::error::FieldError;
use crate::domain::phone::PhoneNumber;
use crate::domain::session::SessionState;
use crate::domain::subscriber::Subscriber;
use crate::flow::SessionFilter;
use crate::notify::resume::Scope;
use crate::subscribers::listing::{SessionCursor, SubscriberCursor, parse_limit};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscribersQuery {
    /// How many subscribers a page holds: 1 to 200.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// The `next_cursor` of the page before; omitted for the first page.
    #[param(example = "bjorMTIwMjU1NTAxOTk")]
    cursor: Option<String>,
}

/// A page of subscribers.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SubscriberPage)]
struct SubscriberPage<'a> {
    /// The stored subscribers (as `GET /v1/subscribers/{number}` shows
    /// them: no secrets), in number order.
    subscribers: &'a [Subscriber],
    /// The `cursor` of the next page; `null` on the last page.
    #[schema(value_type = Option<String>, required = true, example = "bjorMTIwMjU1NTAxOTk")]
    next_cursor: Option<String>,
}

/// Lists the subscribers.
///
/// In number order (E.164 as text), a page at a time: pass a page's
/// `next_cursor` as `cursor` for the next one; `next_cursor` is `null` on
/// the last page.
#[utoipa::path(
    get,
    path = "/v1/subscribers",
    operation_id = "list_subscribers",
    tag = "admin",
    params(SubscribersQuery),
    responses(
        (status = 200, description = "A page of subscribers.", body = SubscriberPage),
        (status = 401, response = doc::Unauthorized),
        (status = 422, response = doc::InvalidListQuery),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::AdminUnavailable),
    ),
    security(("admin_token" = [])),
)]
pub async fn list_subscribers(
    _: AdminAuth,
    state: web::Data<AppState>,
    query: web::Query<SubscribersQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = parse_limit(query.limit.as_deref())?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| SubscriberCursor::decode(c, state.settings.default_region))
        .transpose()?;
    let page = state.admin.list_subscribers(after.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(SubscriberPage {
        subscribers: &page.items,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Only this subscriber's sessions (E.164, or national in
    /// `DEFAULT_REGION`). A device or destination token sees only its own
    /// subscriber's: naming another is 403.
    #[param(example = "+12025550199")]
    subscriber: Option<String>,
    /// Only sessions in this state.
    #[param(value_type = Option<SessionState>)]
    state: Option<String>,
    /// How many sessions a page holds: 1 to 200.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// The `next_cursor` of the page before; omitted for the first page.
    cursor: Option<String>,
}

/// A page of sessions.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SessionPage)]
struct SessionPage<'a> {
    /// The sessions as `GET /v1/sessions/{id}` shows them, newest first.
    sessions: Vec<SessionView<'a>>,
    /// The `cursor` of the next page; `null` on the last page.
    #[schema(value_type = Option<String>, required = true)]
    next_cursor: Option<String>,
}

/// Lists sessions, newest first.
///
/// Open sessions, and ended ones for `HISTORY_TTL_SECS` (default a day)
/// after they ended, at most the last 200 per subscriber; ordered by when
/// the call began (the ring report, or the forwarded call when no report
/// came), newest first. The admin sees every subscriber's; a device or
/// destination token its own subscriber's.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    operation_id = "list_sessions",
    tag = "sessions",
    params(SessionsQuery),
    responses(
        (status = 200, description = "A page of sessions.", body = SessionPage),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::OtherSubscriber),
        (status = 422, response = doc::InvalidListQuery),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::StoreUnavailable),
    ),
    security(("admin_token" = []), ("device_token" = []), ("destination_token" = [])),
)]
pub async fn list_sessions(
    reader: SessionReader,
    state: web::Data<AppState>,
    query: web::Query<SessionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = parse_limit(query.limit.as_deref())?;
    let after = query
        .cursor
        .as_deref()
        .map(SessionCursor::decode)
        .transpose()?;
    let named = query
        .subscriber
        .as_deref()
        .map(|raw| {
            PhoneNumber::parse(raw, state.settings.default_region)
                .map_err(|e| FieldError::new("subscriber", format!("{e}: {raw:?}")))
        })
        .transpose()?;
    let subscriber = match reader {
        SessionReader::Admin => named,
        SessionReader::Subscriber(own) => match named {
            Some(other) if other != own => {
                return Err(ApiError::Forbidden(
                    "this token lists only its own subscriber's sessions".into(),
                ));
            }
            _ => Some(own),
        },
    };
    let filter = SessionFilter {
        subscriber,
        state: query.state.as_deref().map(parse_state).transpose()?,
    };
    let page = state
        .flow
        .list_sessions(&filter, after.as_ref(), limit)
        .await?;
    Ok(HttpResponse::Ok().json(SessionPage {
        sessions: page.items.iter().map(SessionView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

fn parse_state(raw: &str) -> Result<SessionState, FieldError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned())).map_err(|_| {
        FieldError::new(
            "state",
            format!(
                "must be one of ringing, notified, instructed, forwarded, connected, \
                 voicemail, missed, cancelled, expired, got {:?}",
                raw.chars().take(64).collect::<String>()
            ),
        )
    })
}

/// The admin's live event stream (Server-Sent Events).
///
/// Every event of every subscriber, in the format of the destinations'
/// streams: `event:` is the type, `data:` the JSON `{"type", "timestamp",
/// "data"}`, `id:` its position on the bus. `call.ringing` comes once per
/// destination rung (each with that destination's `accept_url` /
/// `decline_url`), every other event once. A `: keep-alive` comment comes
/// every 10 s. Events from every instance arrive; reopened with
/// `Last-Event-ID` it first replays what was missed. Counted against
/// `MAX_STREAMS`.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "stream_all_events",
    tag = "admin",
    params(LastEventId),
    responses(
        (
            status = 200,
            description = "A `text/event-stream` that lasts until the client or the \
                           service closes it (then reconnect).",
            content_type = "text/event-stream",
            body = String,
            example = "id: 1764172150123-0\nevent: call.cancelled\ndata: {\"type\":\"call.cancelled\",\"data\":{\"session_id\":\"ses_q7Xb2mN4pR8sT1vW3yZ5aB\",\"subscriber\":\"+12025550199\",\"caller\":\"+12025550302\",\"reason\":\"caller_hung_up\"},\"timestamp\":\"2026-11-26T15:49:10.123Z\"}\n\n: keep-alive\n\n"
        ),
        (status = 401, response = doc::Unauthorized),
        (status = 429, response = doc::TooManyStreams),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::AdminUnavailable),
    ),
    security(("admin_token" = [])),
)]
pub async fn events(
    _: AdminAuth,
    state: web::Data<AppState>,
    resume: ResumeFrom,
) -> Result<impl Responder, ApiError> {
    let receiver = state
        .flow
        .bus()
        .subscribe_admin_within(state.settings.stream_limits)
        .map_err(|full| ApiError::RateLimited {
            message: full.to_string(),
            retry_after: STREAM_RETRY_AFTER,
        })?;
    tracing::info!(resumed = resume.is_some(), "admin live stream opened");
    let replay = resume.replay(&state, &Scope::Everything).await;
    Ok(live_stream(receiver, replay, &state))
}
