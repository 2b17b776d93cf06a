//! `GET /openapi.json`: the OpenAPI 3.1 description of the admin, device,
//! destination and session routes (docs/api.md), generated from the
//! handlers' `#[utoipa::path]` annotations and the `ToSchema` types they read
//! and write, plus the CPaaS webhooks of every provider (from the providers'
//! table; their bodies are the providers' own forms). The operations routes
//! are not in it.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, doc};
use super::{admin, destinations, device, lists, me, push, sessions, voice_tokens};
use crate::notify::events;

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
        lists::list_subscribers,
        lists::list_sessions,
        lists::events,
        admin::put_subscriber,
        admin::get_subscriber,
        admin::delete_subscriber,
        device::ring,
        device::put_dnd,
        device::instruction,
        device::event,
        sessions::get_session,
        me::me,
        destinations::accept,
        destinations::decline,
        destinations::events,
        voice_tokens::issue,
        push::key,
        push::subscribe,
        push::unsubscribe,
    ),
    components(
        schemas(
            ErrorBody,
            events::Ringing,
            events::Cancelled,
            events::Connected,
            events::Missed,
            events::Voicemail,
            events::Taken,
            events::Recording,
            events::VoicemailTranscribed,
        ),
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
            doc::InvalidListQuery,
            doc::OtherSubscriber,
            doc::RateLimited,
            doc::TooManyStreams,
            doc::AdminUnavailable,
            doc::StoreUnavailable,
            doc::NotAClient,
            doc::VoiceTokenUnavailable,
            doc::PushUnavailable,
            doc::InternalError,
        ),
    ),
    modifiers(&SecuritySchemes, &ProviderWebhooks, &EventWebhooks, &OperationalRoutes),
    tags(
        (name = "admin", description = "Subscribers (`Authorization: Bearer $ADMIN_TOKEN`)."),
        (name = "device", description = "The subscriber's phone (`Authorization: Bearer <device_token>`)."),
        (name = "destinations", description = "A subscriber's other devices: live events, accept and decline."),
        (name = "sessions", description = "One ringing call, from the ring report to its outcome."),
        (name = "cpaas", description = "The providers' voice webhooks: signed by the provider (403 otherwise), answered with its markup; 503 while its credential is unset."),
        (name = "operations", description = "Health, readiness, metrics, this document and the web console: no credential, never rate limited."),
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

/// Every provider's webhook routes, as the providers' table lists them.
struct ProviderWebhooks;

impl Modify for ProviderWebhooks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder};
        use utoipa::openapi::request_body::RequestBodyBuilder;
        use utoipa::openapi::{Content, ResponseBuilder};

        for provider in crate::providers::PROVIDERS {
            for (path, called_when) in provider.paths.described() {
                let status_route = path == provider.paths.status;
                let answer = if status_route {
                    ResponseBuilder::new().description("Taken note of; no body.")
                } else if path == provider.paths.recording || path == provider.paths.transcription {
                    let sent = if path == provider.paths.recording {
                        "A new recording is sent to the destinations as `call.recording` (the \
                         `CallRecordingEvent` schema)."
                    } else {
                        "A voicemail's first transcription is sent to the destinations as \
                         `call.voicemail_transcribed` (the `CallVoicemailTranscribedEvent` \
                         schema), once."
                    };
                    ResponseBuilder::new()
                        .description(format!(
                            "An empty document: the provider reads only the 200. {sent}"
                        ))
                        .content(
                            provider.markup_content_type,
                            Content::new(None::<utoipa::openapi::Schema>),
                        )
                } else {
                    ResponseBuilder::new()
                        .description(
                            "The provider's markup: always valid, also while the store is down.",
                        )
                        .content(
                            provider.markup_content_type,
                            Content::new(None::<utoipa::openapi::Schema>),
                        )
                };
                let operation = OperationBuilder::new()
                    .tag("cpaas")
                    .operation_id(Some(format!(
                        "{}{}",
                        provider.name,
                        path.replace(['/', '-'], "_")
                    )))
                    .summary(Some(format!("{}: {called_when}", provider.name)))
                    .request_body(Some(
                        RequestBodyBuilder::new()
                            .content(
                                "application/x-www-form-urlencoded",
                                Content::new(None::<utoipa::openapi::Schema>),
                            )
                            .build(),
                    ))
                    .response(if status_route { "204" } else { "200" }, answer.build())
                    .response(
                        "403",
                        ResponseBuilder::new()
                            .description("The signature is missing, wrong or stale.")
                            .build(),
                    )
                    .response(
                        "503",
                        ResponseBuilder::new()
                            .description(format!("`{}` is unset.", provider.variables[0]))
                            .build(),
                    )
                    .build();
                openapi
                    .paths
                    .add_path_operation(path, vec![HttpMethod::Post], operation);
            }
        }
    }
}

/// The events a destination receives, as `webhooks`: each one's envelope
/// (`{"type", "timestamp", "data"}`) as a component schema
/// (`CallRingingEvent`, …) and the signed `POST` that carries it to a
/// `webhook_url`. The live streams carry the same JSON.
struct EventWebhooks;

impl EventWebhooks {
    /// `call.ringing` → `CallRingingEvent`.
    fn schema_name(kind: &str) -> String {
        kind.split(['.', '_'])
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect::<String>()
            + "Event"
    }
}

impl Modify for EventWebhooks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
        use utoipa::openapi::request_body::RequestBodyBuilder;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, PathsBuilder, Ref, Required, ResponseBuilder};

        let header = |name: &str, description: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        };
        let mut webhooks = PathsBuilder::new();
        let components = openapi.components.get_or_insert_with(Default::default);
        for (kind, meaning, data) in crate::notify::events::EventPayload::KINDS {
            let name = Self::schema_name(kind);
            let envelope = ObjectBuilder::new()
                .description(Some(meaning))
                .property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind])),
                )
                .required("type")
                .property("timestamp", Ref::from_schema_name("Timestamp"))
                .required("timestamp")
                .property("data", Ref::from_schema_name(data))
                .required("data")
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ));
            components.schemas.insert(name.clone(), envelope.into());
            let operation = OperationBuilder::new()
                .tag("destinations")
                .operation_id(Some(kind.replace('.', "_")))
                .summary(Some(meaning))
                .description(Some(
                    "Sent to each `webhook_url` of the destinations it concerns, signed per                      Standard Webhooks with `WEBHOOK_SECRET` (one `v1,` signature per secret                      while it rotates); retried with the same `webhook-id` on 429, 5xx or no                      answer. The live streams carry the same JSON as `data:`, with the type as                      `event:`.",
                ))
                .parameter(header("webhook-id", "The same for every retry of one event."))
                .parameter(header("webhook-timestamp", "Unix seconds of this attempt."))
                .parameter(header(
                    "webhook-signature",
                    "`v1,<base64 HMAC-SHA256 of \"id.timestamp.body\">`, space-separated when there are several.",
                ))
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(name)))
                                .build(),
                        )
                        .required(Some(Required::True))
                        .build(),
                ))
                .response(
                    "2XX",
                    ResponseBuilder::new()
                        .description("Received; any other answer is retried.")
                        .build(),
                )
                .build();
            webhooks = webhooks.path(
                kind,
                utoipa::openapi::PathItem::new(HttpMethod::Post, operation),
            );
        }
        openapi.webhooks = Some(webhooks.build());
    }
}

/// The routes platforms, monitoring and browsers call: no credential.
struct OperationalRoutes;

impl OperationalRoutes {
    /// `(path, summary, status, content type, description of the answer)`.
    const ROUTES: [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ); 8] = [
        (
            "/",
            "Redirects a browser to the console.",
            "302",
            "",
            "`Location: /console`.",
        ),
        (
            "/healthz",
            "Alive: answers without touching anything (route traffic on it).",
            "200",
            "text/plain",
            "`ok`.",
        ),
        (
            "/readyz",
            "Ready: the store answers (monitor it; 503 while the store is away, when the voice routes still answer).",
            "200",
            "text/plain",
            "`ok`.",
        ),
        (
            "/metrics",
            "Prometheus / OpenMetrics text of this instance.",
            "200",
            "application/openmetrics-text",
            "The metrics.",
        ),
        (
            "/openapi.json",
            "This document.",
            "200",
            "application/json",
            "The OpenAPI document.",
        ),
        (
            "/docs",
            "This document, rendered as a page (embedded, no CDN).",
            "200",
            "text/html",
            "The page.",
        ),
        (
            "/console",
            "The web console.",
            "200",
            "text/html",
            "The page.",
        ),
        (
            "/console/{file}",
            "The console's and the docs page's script and style sheets.",
            "200",
            "",
            "The file; 404 when there is none.",
        ),
    ];
}

impl Modify for OperationalRoutes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder};
        use utoipa::openapi::{Content, ResponseBuilder};

        for (path, summary, status, content_type, answer) in Self::ROUTES {
            let mut answer = ResponseBuilder::new().description(answer);
            if !content_type.is_empty() {
                answer =
                    answer.content(content_type, Content::new(None::<utoipa::openapi::Schema>));
            }
            let mut operation = OperationBuilder::new()
                .tag("operations")
                .operation_id(Some(match path {
                    "/" => "root".to_owned(),
                    _ => path
                        .trim_start_matches('/')
                        .replace(['/', '.', '{', '}'], "_")
                        .trim_end_matches('_')
                        .to_owned(),
                }))
                .summary(Some(summary))
                .response(status, answer.build());
            if path == "/readyz" {
                operation = operation.response(
                    "503",
                    utoipa::openapi::Ref::from_response_name("StoreUnavailable"),
                );
            }
            openapi
                .paths
                .add_path_operation(path, vec![HttpMethod::Get], operation.build());
        }
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
mod tests;
