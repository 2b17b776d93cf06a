//! Admin API (contract §3): create, read, replace and delete subscribers.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::AdminAuth;
use super::error::ApiError;
use super::json::parse_json_body;
use super::state::AppState;
use crate::domain::credentials::TokenPolicy;
use crate::domain::forwarding::ForwardingCodes;
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::{DestinationId, FieldError, Subscriber, SubscriberSpec};

#[derive(Deserialize)]
pub struct PutQuery {
    #[serde(default)]
    rotate_tokens: bool,
}

#[derive(Serialize)]
struct PutResponse<'a> {
    subscriber: &'a Subscriber,
    /// Shown when made (creation, rotation); `null` otherwise.
    device_token: Option<&'a str>,
    /// The destination tokens made by this request.
    destination_tokens: BTreeMap<&'a DestinationId, &'a str>,
    forwarding_codes: ForwardingCodes,
}

pub async fn put_subscriber(
    _: AdminAuth,
    state: web::Data<AppState>,
    number: web::Path<String>,
    query: web::Query<PutQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let number = path_number(&state, &number)?;
    let spec: SubscriberSpec = parse_json_body(&body)?;
    let policy = if query.rotate_tokens {
        TokenPolicy::Rotate
    } else {
        TokenPolicy::KeepExisting
    };
    let registration = state.registry.register(number, spec, policy).await?;
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

pub async fn get_subscriber(
    _: AdminAuth,
    state: web::Data<AppState>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let number = path_number(&state, &number)?;
    let subscriber = state
        .registry
        .subscriber(&number)
        .await?
        .ok_or_else(|| no_subscriber(&number))?;
    Ok(HttpResponse::Ok().json(subscriber))
}

pub async fn delete_subscriber(
    _: AdminAuth,
    state: web::Data<AppState>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let number = path_number(&state, &number)?;
    let subscriber = state
        .registry
        .subscriber(&number)
        .await?
        .ok_or_else(|| no_subscriber(&number))?;
    if !state.registry.remove(&number).await? {
        return Err(no_subscriber(&number));
    }
    state.flow.subscriber_removed(&subscriber).await;
    Ok(HttpResponse::NoContent().finish())
}

fn path_number(state: &AppState, raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw, state.config.default_region)
        .map_err(|e| FieldError::new("number", format!("{e}: {raw:?}")).into())
}

fn no_subscriber(number: &PhoneNumber) -> ApiError {
    ApiError::NotFound(format!("no subscriber {number}"))
}
