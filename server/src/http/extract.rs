//! What handlers extract besides who is asking (`auth`): the session a path
//! names, a JSON body read into its type, and the order they are read in.
//! Each turns the raw request into domain types once, with the contract's
//! status when it cannot.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::json::parse_json_body;
use crate::domain::session::SessionId;

/// The session of a `/v1/sessions/{id}/…` path. A malformed id names no
/// session: 404, like an unknown one.
pub struct SessionPath(pub SessionId);

impl FromRequest for SessionPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Decoded as `web::Path` decodes a segment.
        let id = web::Path::<String>::extract(req).into_inner().ok();
        ready(
            id.and_then(|id| SessionId::parse(&id).ok())
                .map(Self)
                .ok_or_else(|| ApiError::NotFound("no such session".into())),
        )
    }
}

/// A JSON body read into `T` by [`parse_json_body`]: 400 when it is not
/// JSON, 422 naming the field when it does not fit or is one nobody reads.
/// Reading the body fails as the framework says (413 past the size limit).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Serialize + 'static> FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move { Ok(Self(parse_json_body(&body.await?)?)) })
    }
}

/// `A`, who is asking, then `T`, what the request names: `T` is read only
/// once `A` checked out, so that a wrong credential is 401 whatever else is
/// wrong, and nothing of an unauthenticated request's path or body is read.
pub struct Authenticated<A, T>(pub A, pub T);

impl<A, T> FromRequest for Authenticated<A, T>
where
    A: FromRequest<Error = ApiError> + 'static,
    T: FromRequest + 'static,
    T::Error: Into<actix_web::Error>,
{
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        let who = A::from_request(&req, &mut Payload::None);
        Box::pin(async move {
            let who = who.await?;
            let what = T::from_request(&req, &mut payload)
                .await
                .map_err(Into::into)?;
            Ok(Self(who, what))
        })
    }
}
