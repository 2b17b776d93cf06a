//! The HTTP edge: routes, extractors and the mapping of failures to
//! responses. Handlers parse, call one function of the domain, and render.

mod admin;
mod auth;
mod body_deadline;
mod console;
mod destinations;
mod device;
pub mod error;
mod extract;
mod guessing;
mod health;
pub(crate) mod json;
mod lists;
mod me;
mod openapi;
mod providers;
mod push;
mod sessions;
pub mod state;
pub(crate) mod voice_tokens;

use actix_web::web;

pub use self::body_deadline::read_body_within_deadline;
use self::error::{ApiError, MAX_BODY_BYTES};
pub use self::guessing::{Guessers, limit_guessing};
use crate::domain::error::FieldError;

/// Registers every route, with the limits that hold for all of them.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::from(FieldError::new("query", err.to_string())).into()
        }))
        .service(web::resource("/").route(web::get().to(console::root)))
        .service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)))
        .service(web::resource("/metrics").route(web::get().to(health::metrics)))
        .service(web::resource("/openapi.json").route(web::get().to(openapi::openapi_json)))
        .service(web::resource("/docs").route(web::get().to(console::docs_page)))
        .service(web::resource("/console").route(web::get().to(console::page)))
        .service(web::resource("/console/{file}").route(web::get().to(console::asset)))
        .service(web::resource("/v1/subscribers").route(web::get().to(lists::list_subscribers)))
        .service(web::resource("/v1/sessions").route(web::get().to(lists::list_sessions)))
        .service(web::resource("/v1/events").route(web::get().to(lists::events)))
        .service(
            web::resource("/v1/subscribers/{number}")
                .route(web::put().to(admin::put_subscriber))
                .route(web::get().to(admin::get_subscriber))
                .route(web::delete().to(admin::delete_subscriber)),
        )
        .service(web::resource("/v1/me").route(web::get().to(me::me)))
        .service(web::resource("/v1/push/key").route(web::get().to(push::key)))
        .service(
            web::resource("/v1/destinations/{id}/push-subscriptions")
                .route(web::post().to(push::subscribe)),
        )
        .service(
            web::resource("/v1/destinations/{id}/push-subscriptions/{sub_id}")
                .route(web::delete().to(push::unsubscribe)),
        )
        .service(web::resource("/v1/ring").route(web::post().to(device::ring)))
        .service(web::resource("/v1/dnd").route(web::put().to(device::put_dnd)))
        .service(web::resource("/v1/sessions/{id}").route(web::get().to(sessions::get_session)))
        .service(
            web::resource("/v1/sessions/{id}/instruction")
                .route(web::get().to(device::instruction)),
        )
        .service(web::resource("/v1/sessions/{id}/events").route(web::post().to(device::event)))
        .service(
            web::resource("/v1/sessions/{id}/accept").route(web::post().to(destinations::accept)),
        )
        .service(
            web::resource("/v1/sessions/{id}/decline").route(web::post().to(destinations::decline)),
        )
        .service(
            web::resource("/v1/destinations/{id}/events")
                .route(web::get().to(destinations::events)),
        )
        .service(
            // A softphone page on any origin asks for its token (a bearer
            // token, no cookie: nothing ambient to protect).
            web::resource("/v1/destinations/{id}/voice-token")
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add(("Access-Control-Allow-Origin", "*")),
                )
                .route(web::post().to(voice_tokens::issue))
                .route(web::method(actix_web::http::Method::OPTIONS).to(voice_tokens::preflight)),
        );
    providers::every_providers_routes(cfg);
}

/// Counts every request and its latency by route pattern (never the raw
/// path, which holds numbers and ids).
pub async fn record_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let metrics = req
        .app_data::<web::Data<state::AppState>>()
        .map(|state| state.metrics.clone());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        metrics.request(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}
