//! The one place where failures become HTTP statuses and JSON bodies
//! (`{"error": "<code>", "message": "<text>"}`). 5xx bodies stay opaque;
//! their cause chain goes to the log.

use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::error::FieldError;
use crate::domain::session::SessionError;
use crate::flow::FlowError;
use crate::store::StoreError;
use crate::subscribers::RegistryError;

/// The largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedBody(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("the request signature is missing or wrong")]
    InvalidSignature,
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the session is over")]
    SessionOver,
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("the request body is over 64 KiB")]
    PayloadTooLarge,
    #[error("the request body did not arrive within 10 s")]
    RequestTimeout,
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("{0} is not set on this service")]
    NotConfigured(&'static str),
    #[error("the store is unavailable")]
    StoreUnavailable(#[source] anyhow::Error),
    /// A provider's API (minting a softphone token) failed.
    #[error("a provider's API is unavailable")]
    ProviderUnavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

/// Every error's body.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error, example = json!({"error": "not_found", "message": "no such session"}))]
pub(super) struct ErrorBody<'a> {
    /// A stable snake_case code: `malformed_body`, `unauthorized`,
    /// `forbidden`, `not_found`, `method_not_allowed`, `already_taken`,
    /// `already_answered`, `already_forwarded`, `session_over`,
    /// `payload_too_large`, `invalid_field`, `rate_limited`, `not_configured`,
    /// `not_a_client`, `store_unavailable`, `provider_unavailable`,
    /// `internal_error` (and `invalid_signature` on the CPaaS routes).
    #[schema(example = "not_found")]
    error: &'a str,
    /// Human text. For `invalid_field` it starts with the field's JSON path
    /// (`destinations[1].address: …`); for 5xx it says nothing of the cause.
    #[schema(example = "no such session")]
    message: &'a str,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::MalformedBody(_) => "malformed_body",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::InvalidSignature => "invalid_signature",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict { code, .. } => code,
            Self::SessionOver => "session_over",
            Self::RateLimited { .. } => "rate_limited",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::InvalidField(_) => "invalid_field",
            Self::NotConfigured(_) => "not_configured",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::ProviderUnavailable(_) => "provider_unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }

    /// The text users see. For 5xx it says nothing of the cause.
    fn public_message(&self) -> String {
        match self {
            Self::StoreUnavailable(_) | Self::ProviderUnavailable(_) => {
                "a dependency of the service is unavailable; try again shortly".into()
            }
            Self::Unexpected(_) => "the service hit an unexpected error".into(),
            other => bounded(&other.to_string()),
        }
    }
}

/// The longest run of the client's own input a message repeats.
const MAX_ECHO_CHARS: usize = 64;
/// The longest message: error bodies stay well under 1 KiB.
const MAX_MESSAGE_CHARS: usize = 400;

/// A message as users see it (docs/operations.md): no internal type names (serde
/// says `expected struct SubscriberSpec`), no more than 64 characters of any
/// quoted input, and short.
fn bounded(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS));
    let mut words = message.split(' ').peekable();
    while let Some(word) = words.next() {
        if !out.is_empty() {
            out.push(' ');
        }
        // serde names the Rust type it expected: say what the JSON is.
        if matches!(word, "struct" | "enum") && words.peek().is_some() {
            let name = words.next().unwrap_or_default();
            let trailing: String = name
                .chars()
                .skip_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push_str(if word == "struct" {
                "an object"
            } else {
                "one of the allowed values"
            });
            out.push_str(&trailing);
            continue;
        }
        out.push_str(word);
    }
    let clipped = clip_quoted(&out);
    if clipped.chars().count() > MAX_MESSAGE_CHARS {
        let mut short: String = clipped.chars().take(MAX_MESSAGE_CHARS).collect();
        short.push('…');
        short
    } else {
        clipped
    }
}

/// Each `"…"` or `` `…` `` quoted run cut to [`MAX_ECHO_CHARS`].
fn clip_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    let mut run = 0;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push(c);
            }
            Some(_) => {
                run += 1;
                match run.cmp(&MAX_ECHO_CHARS) {
                    std::cmp::Ordering::Less | std::cmp::Ordering::Equal => out.push(c),
                    std::cmp::Ordering::Greater if run == MAX_ECHO_CHARS + 1 => out.push('…'),
                    std::cmp::Ordering::Greater => {}
                }
            }
            None => {
                if c == '"' || c == '`' {
                    quote = Some(c);
                    run = 0;
                }
                out.push(c);
            }
        }
    }
    out
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => Self::StoreUnavailable(cause),
            StoreError::Unexpected(cause) => Self::Unexpected(cause),
        }
    }
}

impl From<FlowError> for ApiError {
    fn from(err: FlowError) -> Self {
        match err {
            FlowError::SessionNotFound | FlowError::Refused(SessionError::NoSuchOffer) => {
                Self::NotFound("no such session".into())
            }
            FlowError::Refused(SessionError::Over) => Self::SessionOver,
            FlowError::Refused(SessionError::AlreadyForwarded) => Self::Conflict {
                code: "already_forwarded",
                message: err.to_string(),
            },
            FlowError::Refused(SessionError::AlreadyTaken) => Self::Conflict {
                code: "already_taken",
                message: err.to_string(),
            },
            FlowError::Refused(SessionError::AlreadyAnswered) => Self::Conflict {
                code: "already_answered",
                message: err.to_string(),
            },
            FlowError::RateLimited { retry_after } => Self::RateLimited {
                message: err.to_string(),
                retry_after,
            },
            FlowError::Store(store) => store.into(),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::Invalid(field) => Self::InvalidField(field),
            RegistryError::Store(store) => store.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidSignature | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::SessionOver => StatusCode::GONE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidField(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotConfigured(_) | Self::StoreUnavailable(_) | Self::ProviderUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::StoreUnavailable(cause)
        | Self::ProviderUnavailable(cause)
        | Self::Unexpected(cause) = self
        {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Self::RateLimited { retry_after, .. } = self {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, seconds.max(1).to_string()));
        }
        response.json(ErrorBody {
            error: self.code(),
            message: &self.public_message(),
        })
    }
}

/// Gives the errors actix produces itself (unknown route, wrong method, body
/// over the limit, unreadable body) the same JSON shape as ours. Responses
/// that already carry a body type of their own pass unchanged.
pub fn render_framework_error<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if res.response().headers().contains_key(header::CONTENT_TYPE)
        && !res
            .response()
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"text/plain"))
    {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound("no such route".into()),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::METHOD_NOT_ALLOWED => {
            return Ok(ErrorHandlerResponse::Response(replace_body(
                res,
                "method_not_allowed",
                "this route does not take that method",
            )));
        }
        s if s.is_client_error() => ApiError::MalformedBody("the request could not be read".into()),
        _ => ApiError::Unexpected(anyhow::anyhow!("framework error {status}")),
    };
    let (req, _) = res.into_parts();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, error.error_response()).map_into_right_body(),
    ))
}

fn replace_body<B>(
    res: ServiceResponse<B>,
    code: &str,
    message: &str,
) -> ServiceResponse<EitherBody<B>> {
    let status = res.status();
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status);
    if let Some(allow) = old.headers().get(header::ALLOW) {
        new.insert_header((header::ALLOW, allow.clone()));
    }
    ServiceResponse::new(
        req,
        new.json(ErrorBody {
            error: code,
            message,
        }),
    )
    .map_into_right_body()
}

/// The error responses of the OpenAPI description (`GET /openapi.json`): one
/// reusable response per kind of failure, each with the `Error` body and
/// examples rendered by the same code as the real responses.
pub mod doc {
    use utoipa::ToSchema as _;
    use utoipa::openapi::example::ExampleBuilder;
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
    use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};

    use super::{ApiError, ErrorBody, FieldError, MAX_BODY_BYTES};
    use crate::flow::FlowError;

    fn example(err: &ApiError) -> serde_json::Value {
        serde_json::json!({"error": err.code(), "message": err.public_message()})
    }

    fn error_response(description: &str, examples: &[(&str, ApiError)]) -> ResponseBuilder {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .examples_from_iter(examples.iter().map(|(name, err)| {
                (
                    *name,
                    ExampleBuilder::new()
                        .summary(format!("`{}`", err.code()))
                        .value(Some(example(err)))
                        .build(),
                )
            }))
            .build();
        ResponseBuilder::new()
            .description(description)
            .content("application/json", content)
    }

    macro_rules! error_responses {
        ($($(#[$doc:meta])* $name:ident => $response:expr;)+) => {$(
            $(#[$doc])*
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), $response.build().into())
                }
            }
        )+};
    }

    error_responses! {
        /// 400: the body is not JSON.
        MalformedBody => error_response(
            "The body is not JSON.",
            &[("malformed_body", ApiError::MalformedBody(
                "the body is not valid JSON (it stops making sense at line 1, column 0)".into(),
            ))],
        );
        /// 401: missing or wrong bearer token.
        Unauthorized => error_response(
            "The bearer token is missing or wrong (or belongs to another kind of caller).",
            &[("unauthorized", ApiError::Unauthorized)],
        )
        .header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some("`Bearer`"))
                .build(),
        );
        /// 403: a destination token used for another destination.
        Forbidden => error_response(
            "The destination token belongs to another destination.",
            &[("forbidden", ApiError::Forbidden(
                "this token belongs to another destination".into(),
            ))],
        );
        /// 404: unknown subscriber or session.
        NotFound => error_response(
            "No such subscriber or session (a malformed session id is unknown too).",
            &[
                ("session", ApiError::NotFound("no such session".into())),
                ("subscriber", ApiError::NotFound("no subscriber +12025550199".into())),
            ],
        );
        /// 409 on accept/decline.
        OfferConflict => error_response(
            "Another destination accepted first, or this destination already answered.",
            &[
                ("already_taken", FlowError::from(crate::domain::session::SessionError::AlreadyTaken).into()),
                ("already_answered", FlowError::from(crate::domain::session::SessionError::AlreadyAnswered).into()),
            ],
        );
        /// 409 on a device event.
        AlreadyForwarded => error_response(
            "`answered` or `ended` for a call that was already forwarded.",
            &[("already_forwarded", FlowError::from(crate::domain::session::SessionError::AlreadyForwarded).into())],
        );
        /// 410: the session is over.
        SessionOver => error_response(
            "The session has ended (or pick mode's wait ran out).",
            &[("session_over", ApiError::SessionOver)],
        );
        /// 413: the body is over 64 KiB.
        PayloadTooLarge => error_response(
            &format!("The body is over {} KiB.", MAX_BODY_BYTES / 1024),
            &[("payload_too_large", ApiError::PayloadTooLarge)],
        );
        /// 422: a field breaks a rule.
        InvalidField => error_response(
            "A field (of the body, the path or the query) breaks a rule; \
             the message starts with its path.",
            &[
                ("field", FieldError::new(
                    "destinations[1].address",
                    "must be a sip: or sips: URI, got \"alice@pbx.example.com\"",
                ).into()),
                ("path", FieldError::new("number", "is not a phone number: \"abc\"").into()),
            ],
        );
        /// 422 on a list route: a query parameter breaks a rule.
        InvalidListQuery => error_response(
            "A query parameter breaks a rule; the message starts with its name.",
            &[
                ("limit", FieldError::new("limit", "must be a whole number from 1 to 200, got \"500\"").into()),
                ("cursor", FieldError::new("cursor", "is not a cursor this service handed out: \"abc\"").into()),
                ("state", FieldError::new("state", "must be one of ringing, notified, instructed, forwarded, connected, voicemail, missed, cancelled, expired, got \"done\"").into()),
            ],
        );
        /// 403: a device or destination token listing another subscriber's sessions.
        OtherSubscriber => error_response(
            "A device or destination token names another subscriber in `subscriber`.",
            &[("forbidden", ApiError::Forbidden(
                "this token lists only its own subscriber's sessions".into(),
            ))],
        );
        /// 429: as many live streams are open as allowed.
        TooManyStreams => error_response(
            "This destination (or this instance) has as many live streams open as allowed; retry later.",
            &[("rate_limited", ApiError::RateLimited {
                message: crate::notify::bus::StreamLimitReached::Destination.to_string(),
                retry_after: std::time::Duration::from_secs(5),
            })],
        );
        /// 429: too many ring reports.
        RateLimited => error_response(
            &format!(
                "More than {} ring reports a minute from this device.",
                crate::flow::RING_REPORTS_PER_MINUTE,
            ),
            &[("rate_limited", FlowError::RateLimited {
                retry_after: std::time::Duration::from_secs(42),
            }.into())],
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1))))
                .description(Some("Seconds until a report is accepted again."))
                .build(),
        );
        /// 503 on the admin routes.
        AdminUnavailable => error_response(
            "`ADMIN_TOKEN` is not set, or the store does not answer.",
            &[
                ("not_configured", ApiError::NotConfigured("ADMIN_TOKEN")),
                ("store_unavailable", ApiError::StoreUnavailable(anyhow::anyhow!("down"))),
            ],
        );
        /// 409 on a voice token: the destination is no softphone.
        NotAClient => error_response(
            "The destination is not of kind `client`: only a softphone takes a voice token.",
            &[("not_a_client", crate::http::voice_tokens::not_a_client())],
        );
        /// 503 on a voice token.
        VoiceTokenUnavailable => error_response(
            "A variable the token needs is not set (the message names it), the provider's \
             API did not issue one, or the store does not answer.",
            &[
                ("not_configured", ApiError::NotConfigured("TWILIO_API_KEY_SID")),
                ("provider_unavailable", ApiError::ProviderUnavailable(anyhow::anyhow!("down"))),
                ("store_unavailable", ApiError::StoreUnavailable(anyhow::anyhow!("down"))),
            ],
        );
        /// 503 on the push routes.
        PushUnavailable => error_response(
            "`VAPID_PRIVATE_KEY` is not set (Web Push is off), or the store does not answer.",
            &[
                ("not_configured", ApiError::NotConfigured("VAPID_PRIVATE_KEY")),
                ("store_unavailable", ApiError::StoreUnavailable(anyhow::anyhow!("down"))),
            ],
        );
        /// 503 elsewhere.
        StoreUnavailable => error_response(
            "The store does not answer.",
            &[("store_unavailable", ApiError::StoreUnavailable(anyhow::anyhow!("down")))],
        );
        /// 500.
        InternalError => error_response(
            "A bug; the body says nothing more, the log has the cause.",
            &[("internal_error", ApiError::Unexpected(anyhow::anyhow!("bug")))],
        );
    }

    /// Sets of the responses above that whole families of routes answer,
    /// declared once: `responses((status = 201, …), doc::Authenticated,
    /// doc::JsonBody)`. Each refers to the components registered by name.
    macro_rules! response_sets {
        ($($(#[$doc:meta])* $name:ident => [$(($status:literal, $response:ident)),+ $(,)?];)+) => {$(
            $(#[$doc])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> std::collections::BTreeMap<String, RefOr<Response>> {
                    [$((
                        $status.to_string(),
                        RefOr::Ref(Ref::from_response_name(stringify!($response))),
                    )),+]
                    .into()
                }
            }
        )+};
    }

    response_sets! {
        /// A route a device or destination token (or a capability) opens,
        /// which reads the store: 401, 500, 503.
        Authenticated => [
            ("401", Unauthorized),
            ("500", InternalError),
            ("503", StoreUnavailable),
        ];
        /// An admin route: 401, 500, and 503 while `ADMIN_TOKEN` is unset or
        /// the store is down.
        Admin => [("401", Unauthorized), ("500", InternalError), ("503", AdminUnavailable)];
        /// A JSON request body: 400 when it is not JSON, 413 past the limit,
        /// 422 naming the field that does not fit.
        JsonBody => [("400", MalformedBody), ("413", PayloadTooLarge), ("422", InvalidField)];
    }
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn messages_name_no_rust_types_and_echo_little() {
        assert_eq!(
            bounded("body: invalid type: map, expected struct SubscriberSpec"),
            "body: invalid type: map, expected an object"
        );
        let long = format!("number: {:?} is not a phone number", "9".repeat(60_000));
        let message = bounded(&long);
        assert!(message.len() < 200, "{message}");
        assert!(message.contains(&"9".repeat(64)) && !message.contains(&"9".repeat(65)));
        assert!(bounded(&"x".repeat(5000)).chars().count() <= 401);
    }
}
