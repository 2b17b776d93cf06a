//! Web Push routes (docs/api.md): the service's VAPID public key, and a
//! destination's browser push subscriptions. Unset `VAPID_PRIVATE_KEY`:
//! each answers 503 naming it.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::auth::DestinationAuth;
use super::error::{ApiError, doc};
use super::extract::{ApiJson, Authenticated};
use super::state::AppState;
use crate::domain::ids::DestinationId;
use crate::domain::push::{MAX_PER_DESTINATION, PushSubscription};
use crate::domain::time::Timestamp;
use crate::notify::push::PushSender;

fn push(state: &AppState) -> Result<&PushSender, ApiError> {
    state
        .push
        .as_ref()
        .ok_or(ApiError::NotConfigured("VAPID_PRIVATE_KEY"))
}

/// The service's VAPID public key.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"public_key": "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"}))]
struct PushKey<'a> {
    /// The uncompressed P-256 point, base64url: a browser's
    /// `pushManager.subscribe({applicationServerKey})`.
    public_key: &'a str,
}

/// The key browsers subscribe with.
///
/// No credential: a browser fetches it before it subscribes.
#[utoipa::path(
    get,
    path = "/v1/push/key",
    operation_id = "push_key",
    tag = "destinations",
    responses(
        (status = 200, description = "The VAPID public key.", body = PushKey),
        (status = 503, response = doc::PushUnavailable),
    ),
)]
pub async fn key(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(PushKey {
        public_key: push(&state)?.vapid().public_key(),
    }))
}

/// A browser's `PushSubscription`, as its `toJSON()` writes it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "endpoint": "https://fcm.googleapis.com/fcm/send/dGhpcyBpcyBub3QgYSByZWFsIGVuZHBvaW50",
    "expirationTime": null,
    "keys": {
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg"
    }
}))]
pub struct PushSubscriptionBody {
    /// The push service's URL for this browser: `https://` to a public host
    /// (private or `http://` only with `ALLOW_PRIVATE_WEBHOOKS=true`).
    endpoint: String,
    /// When the browser says it ends (read, not used: a push service that
    /// dropped it answers 404 or 410, and then so does the service).
    #[serde(default, rename = "expirationTime")]
    #[schema(value_type = Option<i64>)]
    expiration_time: Option<serde_json::Value>,
    keys: PushKeys,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct PushKeys {
    /// The browser's P-256 key: 65 bytes (uncompressed point), base64url.
    p256dh: String,
    /// The browser's auth secret: 16 bytes, base64url.
    auth: String,
}

/// The stored subscription.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "psub_4sJHmQ0b1yVb0g6h3XyZPw"}))]
struct Subscribed<'a> {
    /// For `DELETE`; the same endpoint registered again keeps its id.
    id: &'a str,
}

/// Registers a browser push subscription.
///
/// Every event this destination hears on its webhook and stream then also
/// goes to the browser, encrypted (`aes128gcm`), even with no tab open. At
/// most 5 per destination: a sixth replaces the oldest. The same endpoint
/// registered again replaces itself (same id).
#[utoipa::path(
    post,
    path = "/v1/destinations/{id}/push-subscriptions",
    operation_id = "subscribe_push",
    tag = "destinations",
    params((
        "id" = DestinationId,
        Path,
        description = "The destination's id; the token must be this destination's."
    )),
    request_body = PushSubscriptionBody,
    responses(
        (status = 201, description = "Stored.", body = Subscribed),
        (status = 403, response = doc::Forbidden),
        doc::JsonBody,
        (status = 401, response = doc::Unauthorized),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::PushUnavailable),
    ),
    security(("destination_token" = [])),
)]
pub async fn subscribe(
    state: web::Data<AppState>,
    id: web::Path<String>,
    Authenticated(destination, ApiJson(body)): Authenticated<
        DestinationAuth,
        ApiJson<PushSubscriptionBody>,
    >,
) -> Result<HttpResponse, ApiError> {
    let push = push(&state)?;
    own_destination(&destination, &id)?;
    let subscription = PushSubscription::parse(
        destination.destination.clone(),
        &body.endpoint,
        &body.keys.p256dh,
        &body.keys.auth,
        push.targets(),
        Timestamp::now(),
    )?;
    push.store()
        .add_push_subscription(
            &destination.subscriber.number,
            &subscription,
            MAX_PER_DESTINATION,
        )
        .await?;
    tracing::info!(subscriber = %destination.subscriber.number, destination = %destination.destination, host = subscription.endpoint.host_str(), "push subscription stored");
    Ok(HttpResponse::Created().json(Subscribed {
        id: &subscription.id,
    }))
}

/// Removes a browser push subscription.
#[utoipa::path(
    delete,
    path = "/v1/destinations/{id}/push-subscriptions/{sub_id}",
    operation_id = "unsubscribe_push",
    tag = "destinations",
    params(
        ("id" = DestinationId, Path, description = "The destination's id; the token must be this destination's."),
        ("sub_id" = String, Path, description = "The id `POST` answered."),
    ),
    responses(
        (status = 204, description = "Removed: the browser hears nothing more."),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::PushUnavailable),
    ),
    security(("destination_token" = [])),
)]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    destination: DestinationAuth,
) -> Result<HttpResponse, ApiError> {
    let push = push(&state)?;
    let (id, sub_id) = path.into_inner();
    own_destination(&destination, &id)?;
    let gone = || ApiError::NotFound("no such push subscription".into());
    if !PushSubscription::is_id(&sub_id) {
        return Err(gone());
    }
    if !push
        .store()
        .remove_push_subscription(
            &destination.subscriber.number,
            &destination.destination,
            &sub_id,
        )
        .await?
    {
        return Err(gone());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// 403 unless the path names the token's own destination.
fn own_destination(destination: &DestinationAuth, id: &str) -> Result<(), ApiError> {
    if destination.destination.as_str() == id {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this token belongs to another destination".into(),
        ))
    }
}
