//! `GET /openapi.json`: the OpenAPI 3.1 description of the admin, device,
//! destination and session routes (contract §3–§6), generated from the
//! handlers' `#[utoipa::path]` annotations and the `ToSchema` types they read
//! and write. The CPaaS webhooks and the operations routes are not in it.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, doc};
use super::{admin, destinations, device, sessions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ringrelay",
        description = "Take the calls of your mobile number on your other devices.\n\n\
            Every error is JSON, `{\"error\": \"<code>\", \"message\": \"<text>\"}` (the \
            `Error` schema). Phone numbers are E.164 on output; on input national formats \
            are read in the service's `DEFAULT_REGION`."
    ),
    paths(
        admin::put_subscriber,
        admin::get_subscriber,
        admin::delete_subscriber,
        device::ring,
        device::instruction,
        device::event,
        sessions::get_session,
        destinations::accept,
        destinations::decline,
        destinations::events,
    ),
    components(
        schemas(ErrorBody),
        responses(
            doc::MalformedBody,
            doc::Unauthorized,
            doc::Forbidden,
            doc::NotFound,
            doc::OfferConflict,
            doc::AlreadyForwarded,
            doc::SessionOver,
            doc::PayloadTooLarge,
            doc::InvalidField,
            doc::RateLimited,
            doc::AdminUnavailable,
            doc::StoreUnavailable,
            doc::InternalError,
        ),
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "admin", description = "Subscribers (`Authorization: Bearer $ADMIN_TOKEN`)."),
        (name = "device", description = "The subscriber's phone (`Authorization: Bearer <device_token>`)."),
        (name = "destinations", description = "A subscriber's other devices: live events, accept and decline."),
        (name = "sessions", description = "One ringing call, from the ring report to its outcome."),
    ),
)]
struct ApiDoc;

/// The bearer tokens of the three kinds of caller, and the capability of the
/// `accept_url` / `decline_url` in `call.ringing`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "admin_token",
            bearer("`ADMIN_TOKEN` of the service; unset, the admin API answers 503."),
        );
        components.add_security_scheme(
            "device_token",
            bearer("The subscriber's `device_token` (`rrd_…`), shown by the admin API."),
        );
        components.add_security_scheme(
            "destination_token",
            bearer("A destination's token (`rrt_…`), shown by the admin API."),
        );
        components.add_security_scheme(
            "capability",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "capability",
                "The capability in the `accept_url` / `decline_url` of `call.ringing` \
                 (`rrc_…`): a plain `POST` to that URL, with no header, answers once.",
            ))),
        );
    }
}

/// The OpenAPI document of the API.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        document()
            .to_json()
            .expect("the OpenAPI document always serialises")
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print() {
        println!("{}", document().to_pretty_json().unwrap());
    }
}
