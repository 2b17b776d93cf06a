//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};

use super::error::ApiError;
use super::state::AppState;
use crate::subscribers::import::ImportStatus;

/// Alive: touches nothing.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// Ready: `SUBSCRIBERS_FILE` is imported (503 `importing`, with the
/// progress, until then; `import_failed` when it stopped), and the store
/// answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.registry.import_status() {
        Some(ImportStatus::Importing { imported, percent }) => {
            return Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "error": "importing",
                "message": format!(
                    "importing SUBSCRIBERS_FILE: {imported} subscribers written, {percent}% of the file read"
                ),
                "imported": imported,
                "percent": percent,
            })));
        }
        Some(ImportStatus::Failed(why)) => {
            return Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "error": "import_failed",
                "message": why,
            })));
        }
        Some(ImportStatus::Done { .. }) | None => {}
    }
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
