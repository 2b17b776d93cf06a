//! Destination API (contract §5): the live event stream, and accepting or
//! declining a call, by destination token or by the capability URLs of
//! `call.ringing`.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_lab::sse;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::auth::{DestinationAuth, bearer_token};
use super::device::parse_session_id;
use super::error::ApiError;
use super::state::AppState;
use crate::domain::credentials::TokenOwner;
use crate::domain::session::{OfferResponse, SessionState};
use crate::flow::Answerer;

/// Comments at least this often keep proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

pub async fn events(
    destination: DestinationAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<impl Responder, ApiError> {
    if destination.destination.as_str() != id.as_str() {
        return Err(ApiError::Forbidden(
            "this token belongs to another destination".into(),
        ));
    }
    let receiver = state
        .flow
        .bus()
        .subscribe(&destination.subscriber.number, &destination.destination);
    tracing::info!(subscriber = %destination.subscriber.number, destination = %destination.destination, "live stream opened");
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(event) => {
                sse::Event::Data(sse::Data::new(event.json.clone()).event(event.kind.clone()))
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => sse::Event::Comment(
                format!("{missed} events were missed: read the sessions you care about").into(),
            ),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((event, receiver))
    });
    Ok(sse::Sse::from_infallible_stream(stream).with_keep_alive(KEEP_ALIVE))
}

#[derive(Deserialize)]
pub struct OfferQuery {
    capability: Option<String>,
}

#[derive(Serialize)]
struct OfferAnswer {
    state: SessionState,
}

pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<OfferQuery>,
) -> Result<HttpResponse, ApiError> {
    answer(&req, &state, &id, &query, OfferResponse::Accepted).await
}

pub async fn decline(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<OfferQuery>,
) -> Result<HttpResponse, ApiError> {
    answer(&req, &state, &id, &query, OfferResponse::Declined).await
}

async fn answer(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    query: &OfferQuery,
    response: OfferResponse,
) -> Result<HttpResponse, ApiError> {
    let id = parse_session_id(id)?;
    let session_state = match (bearer_token(req), query.capability.as_deref()) {
        (Some(token), _) => match state.registry.authenticate(token).await? {
            Some((
                TokenOwner::Destination {
                    subscriber,
                    destination,
                },
                _,
            )) => {
                let answerer = Answerer::Destination {
                    subscriber: &subscriber,
                    destination: &destination,
                };
                state.flow.answer_offer(&id, answerer, response).await?
            }
            _ => return Err(ApiError::Unauthorized),
        },
        (None, Some(capability)) => {
            state
                .flow
                .answer_offer(&id, Answerer::Capability(capability), response)
                .await?
        }
        (None, None) => return Err(ApiError::Unauthorized),
    };
    Ok(HttpResponse::Ok().json(OfferAnswer {
        state: session_state,
    }))
}
