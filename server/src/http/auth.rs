//! Bearer-token extractors. A handler that takes `AdminAuth` runs only for the
//! admin, `DeviceAuth` only for a subscriber's phone, `SessionReader` for any
//! of the three who may read a session. The rules (503 when the admin token
//! is unset, 401 when wrong) live here once.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::error::ApiError;
use super::state::AppState;
use crate::domain::credentials::TokenOwner;
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::Subscriber;

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("application state is missing")))
}

/// Proof that the request carries `ADMIN_TOKEN`.
pub struct AdminAuth;

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(app_state(req).and_then(|state| {
            if state.settings.admin_token.is_none() {
                return Err(ApiError::NotConfigured("ADMIN_TOKEN"));
            }
            let presented = bearer_token(req).ok_or(ApiError::Unauthorized)?;
            if is_admin_token(&state, presented)? {
                Ok(AdminAuth)
            } else {
                Err(ApiError::Unauthorized)
            }
        }))
    }
}

/// Whether `presented` is `ADMIN_TOKEN`; 503 when none is configured.
pub(super) fn is_admin_token(state: &AppState, presented: &str) -> Result<bool, ApiError> {
    let expected = state
        .settings
        .admin_token
        .as_ref()
        .ok_or(ApiError::NotConfigured("ADMIN_TOKEN"))?;
    // Hash both sides so the comparison is constant-time whatever the lengths.
    Ok(Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(expected.expose_secret().as_bytes()))
        .into())
}

/// A subscriber's phone, by its device token.
pub struct DeviceAuth {
    pub subscriber: Subscriber,
}

impl FromRequest for DeviceAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match token_owner(&req).await? {
                (TokenOwner::Device { .. }, subscriber) => Ok(DeviceAuth { subscriber }),
                _ => Err(ApiError::Unauthorized),
            }
        })
    }
}

/// Whom the request's bearer token belongs to, with the owner's
/// subscriber; 401 when it belongs to no one (or is missing).
pub async fn token_owner(req: &HttpRequest) -> Result<(TokenOwner, Subscriber), ApiError> {
    let state = app_state(req)?;
    let token = bearer_token(req).ok_or(ApiError::Unauthorized)?;
    state
        .registry
        .authenticate(token)
        .await?
        .ok_or(ApiError::Unauthorized)
}

/// One destination of a subscriber, by its destination token.
pub struct DestinationAuth {
    pub subscriber: Subscriber,
    pub destination: crate::domain::ids::DestinationId,
}

impl FromRequest for DestinationAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match token_owner(&req).await? {
                (TokenOwner::Destination { destination, .. }, subscriber) => Ok(DestinationAuth {
                    subscriber,
                    destination,
                }),
                _ => Err(ApiError::Unauthorized),
            }
        })
    }
}

/// Someone who may read a session: the admin (any session), or a
/// subscriber's phone or destination (that subscriber's sessions).
pub enum SessionReader {
    Admin,
    Subscriber(PhoneNumber),
}

impl FromRequest for SessionReader {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)?;
            let token = bearer_token(&req).ok_or(ApiError::Unauthorized)?;
            // An unset admin token only means the admin cannot read here.
            if state.settings.admin_token.is_some() && is_admin_token(&state, token)? {
                return Ok(SessionReader::Admin);
            }
            let (owner, _) = token_owner(&req).await?;
            Ok(SessionReader::Subscriber(owner.subscriber().clone()))
        })
    }
}
