//! Bearer-token extractors. A handler that takes `AdminAuth` runs only for the
//! admin; the rules (503 when unset, 401 when wrong) live here once.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::error::ApiError;
use super::state::AppState;

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Proof that the request carries `ADMIN_TOKEN`.
pub struct AdminAuth;

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check_admin(req))
    }
}

fn check_admin(req: &HttpRequest) -> Result<AdminAuth, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("application state is missing")))?;
    let expected = state
        .config
        .admin_token
        .as_ref()
        .ok_or(ApiError::NotConfigured("ADMIN_TOKEN"))?;
    let presented = bearer_token(req).ok_or(ApiError::Unauthorized)?;
    // Hash both sides so the comparison is constant-time whatever the lengths.
    let equal: bool = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(expected.expose_secret().as_bytes()))
        .into();
    if equal {
        Ok(AdminAuth)
    } else {
        Err(ApiError::Unauthorized)
    }
}
