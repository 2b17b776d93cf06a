//! The HTTP edge: routes, extractors and the mapping of failures to
//! responses. Handlers parse, call one function of the domain, and render.

mod admin;
mod auth;
pub mod error;
mod health;
mod json;
pub mod state;

use actix_web::web;

use self::error::{ApiError, MAX_BODY_BYTES};
use crate::domain::subscriber::FieldError;

/// Registers every route, with the limits that hold for all of them.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::from(FieldError::new("query", err.to_string())).into()
        }))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .service(
            web::resource("/v1/subscribers/{number}")
                .route(web::put().to(admin::put_subscriber))
                .route(web::get().to(admin::get_subscriber))
                .route(web::delete().to(admin::delete_subscriber)),
        );
}
