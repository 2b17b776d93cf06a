//! Admin API (docs/api.md): create, read, replace and delete subscribers.

use std::collections::BTreeMap;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::{AdminAuth, app_state};
use super::error::{ApiError, doc};
use super::extract::ApiJson;
use super::state::AppState;
use crate::domain::error::FieldError;
use crate::domain::forwarding::ForwardingCodes;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::{Subscriber, SubscriberSpec};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PutQuery {
    /// Replace the device token and every destination token, and show the
    /// new ones (the old ones stop working).
    #[serde(default)]
    #[param(default = false)]
    rotate_tokens: bool,
}

/// A registered subscriber, with the tokens this request made.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SubscriberRegistration)]
struct PutResponse<'a> {
    subscriber: &'a Subscriber,
    /// Shown when made (creation, rotation); `null` otherwise.
    #[schema(
        value_type = Option<String>,
        required = true,
        example = "rrd_Zm9yIGRvY3VtZW50YXRpb24gb25seSwgbm90IGEgdG9r"
    )]
    device_token: Option<&'a str>,
    /// The destination tokens made by this request, by destination id.
    #[schema(
        value_type = BTreeMap<DestinationId, String>,
        example = json!({"desk": "rrt_ZXhhbXBsZSBkZXN0aW5hdGlvbiB0b2tlbiwgbm90IHJlYWw"})
    )]
    destination_tokens: BTreeMap<&'a DestinationId, &'a str>,
    forwarding_codes: ForwardingCodes,
}

/// Creates or replaces a subscriber.
///
/// 201 when created, 200 when replaced. Tokens are shown when made: all of
/// them on creation or with `?rotate_tokens=true`; on a plain replace,
/// `device_token` is `null` and `destination_tokens` lists only destinations
/// with a new `id`. Tokens are stored hashed and cannot be shown again.
#[utoipa::path(
    put,
    path = "/v1/subscribers/{number}",
    operation_id = "put_subscriber",
    tag = "admin",
    params(
        (
            "number" = String,
            Path,
            description = "The subscriber's mobile number: E.164, or national in `DEFAULT_REGION`.",
            example = "+12025550199"
        ),
        PutQuery,
    ),
    request_body = SubscriberSpec,
    responses(
        (status = 201, description = "Created.", body = PutResponse),
        (status = 200, description = "Replaced.", body = PutResponse),
        doc::Admin,
        doc::JsonBody,
    ),
    security(("admin_token" = [])),
)]
pub async fn put_subscriber(
    _: AdminAuth,
    state: web::Data<AppState>,
    query: web::Query<PutQuery>,
    SubscriberPath(number): SubscriberPath,
    ApiJson(spec): ApiJson<SubscriberSpec>,
) -> Result<HttpResponse, ApiError> {
    let registration = state
        .admin
        .put_subscriber(number, spec, query.rotate_tokens)
        .await?;
    let subscriber = &registration.subscriber;
    let response = PutResponse {
        subscriber,
        device_token: registration.tokens.device.as_ref().map(|t| t.reveal()),
        destination_tokens: registration
            .tokens
            .destinations
            .iter()
            .map(|(id, token)| (id, token.reveal()))
            .collect(),
        forwarding_codes: ForwardingCodes::for_number(&subscriber.forwarding_number),
    };
    let mut builder = if registration.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(builder.json(response))
}

/// Reads a subscriber.
///
/// The stored subscriber: every field with its default filled in, numbers in
/// E.164, no secrets.
#[utoipa::path(
    get,
    path = "/v1/subscribers/{number}",
    operation_id = "get_subscriber",
    tag = "admin",
    params((
        "number" = String,
        Path,
        description = "The subscriber's mobile number: E.164, or national in `DEFAULT_REGION`.",
        example = "+12025550199"
    )),
    responses(
        (status = 200, description = "The stored subscriber.", body = Subscriber),
        (status = 404, response = doc::NotFound),
        (status = 422, response = doc::InvalidField),
        doc::Admin,
    ),
    security(("admin_token" = [])),
)]
pub async fn get_subscriber(
    _: AdminAuth,
    state: web::Data<AppState>,
    SubscriberPath(number): SubscriberPath,
) -> Result<HttpResponse, ApiError> {
    let subscriber = state
        .registry
        .subscriber(&number)
        .await?
        .ok_or_else(|| no_subscriber(&number))?;
    Ok(HttpResponse::Ok().json(subscriber))
}

/// Deletes a subscriber.
///
/// Its open sessions end as `cancelled` (each destination hears
/// `call.cancelled`) and its tokens stop working.
#[utoipa::path(
    delete,
    path = "/v1/subscribers/{number}",
    operation_id = "delete_subscriber",
    tag = "admin",
    params((
        "number" = String,
        Path,
        description = "The subscriber's mobile number: E.164, or national in `DEFAULT_REGION`.",
        example = "+12025550199"
    )),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, response = doc::NotFound),
        (status = 422, response = doc::InvalidField),
        doc::Admin,
    ),
    security(("admin_token" = [])),
)]
pub async fn delete_subscriber(
    _: AdminAuth,
    state: web::Data<AppState>,
    SubscriberPath(number): SubscriberPath,
) -> Result<HttpResponse, ApiError> {
    if !state.admin.delete_subscriber(&number).await? {
        return Err(no_subscriber(&number));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The subscriber of a `/v1/subscribers/{number}` path: E.164, or national
/// in `DEFAULT_REGION`; 422 otherwise.
pub struct SubscriberPath(PhoneNumber);

impl FromRequest for SubscriberPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(app_state(req).and_then(|state| {
            let raw = web::Path::<String>::extract(req)
                .into_inner()
                .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))?;
            PhoneNumber::parse(&raw, state.settings.default_region)
                .map(Self)
                .map_err(|e| FieldError::new("number", format!("{e}: {raw:?}")).into())
        }))
    }
}

fn no_subscriber(number: &PhoneNumber) -> ApiError {
    ApiError::NotFound(format!("no subscriber {number}"))
}
