//! `GET /v1/me` (docs/api.md): whom a token belongs to, so that a client
//! (the console) signs in with the token alone and shows the right view
//! without probing routes it may not call.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::auth::{bearer_token, is_admin_token, token_owner};
use super::error::{ApiError, doc};
use super::state::AppState;
use crate::domain::credentials::TokenOwner;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;

/// Who the token is.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"role": "destination", "subscriber": "+12025550199", "destination_id": "laptop"}))]
pub(crate) struct Me {
    role: Role,
    /// The token's subscriber; `null` for the admin.
    #[schema(required = true)]
    subscriber: Option<PhoneNumber>,
    /// The destination a destination token belongs to; `null` otherwise.
    #[schema(value_type = Option<String>, required = true, example = "laptop")]
    destination_id: Option<DestinationId>,
}

/// The kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum Role {
    Admin,
    Device,
    Destination,
}

/// Who am I.
///
/// Answers for any token: `ADMIN_TOKEN`, a device token or a destination
/// token. Anything else is 401.
#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "who_am_i",
    tag = "sessions",
    responses(
        (status = 200, description = "Whom the token belongs to.", body = Me),
        doc::Authenticated,
    ),
    security(("admin_token" = []), ("device_token" = []), ("destination_token" = [])),
)]
pub async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&req).ok_or(ApiError::Unauthorized)?;
    // An unset admin token only means nobody is the admin.
    let me = if state.settings.admin_token.is_some() && is_admin_token(&state, token)? {
        Me {
            role: Role::Admin,
            subscriber: None,
            destination_id: None,
        }
    } else {
        match token_owner(&req).await?.0 {
            TokenOwner::Device { subscriber } => Me {
                role: Role::Device,
                subscriber: Some(subscriber),
                destination_id: None,
            },
            TokenOwner::Destination {
                subscriber,
                destination,
            } => Me {
                role: Role::Destination,
                subscriber: Some(subscriber),
                destination_id: Some(destination),
            },
        }
    };
    Ok(HttpResponse::Ok().json(me))
}
