//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};

use super::error::ApiError;
use super::state::AppState;

/// Alive: touches nothing.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// Ready: the store answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.registry.ping().await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok"))
}

/// Prometheus / OpenMetrics text.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode())
}
