//! `POST /v1/destinations/{id}/voice-token` (docs/api.md): the credential
//! a `client` destination's softphone registers its address with, so that
//! the forwarded call's `<Client>` leg rings it.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::auth::DestinationAuth;
use super::error::{ApiError, doc};
use super::state::AppState;
use crate::domain::ids::DestinationId;
use crate::domain::subscriber::Target;
use crate::domain::time::Timestamp;
use crate::providers::voice_token::VoiceTokenError;

/// A softphone's credential.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "provider": "twilio",
    "identity": "alice",
    "token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.…",
    "expires_at": "2026-11-26T16:49:10.000Z"
}))]
struct VoiceTokenAnswer<'a> {
    /// Whose SDK takes it: `twilio`, `plivo`, `telnyx` or `signalwire`.
    #[schema(example = "twilio")]
    provider: &'a str,
    /// The destination's client address: the identity the token registers.
    #[schema(example = "alice")]
    identity: &'a str,
    /// The token (a JWT) to hand the provider's voice SDK.
    token: &'a str,
    /// When it stops working: ask again before then.
    expires_at: Timestamp,
}

/// Issues a softphone token.
///
/// For a `client` destination, with its own token: an access token of the
/// provider that dials it (`VOICE_TOKEN_PROVIDER`, or the only one
/// configured) for its client address, valid `VOICE_TOKEN_TTL_SECS`.
/// Twilio's (Access Token, voice grant) and Plivo's (endpoint JWT) are
/// signed by the service; Telnyx's and SignalWire's are minted by their
/// APIs. 503 names the variable that is missing.
#[utoipa::path(
    post,
    path = "/v1/destinations/{id}/voice-token",
    operation_id = "issue_voice_token",
    tag = "destinations",
    params((
        "id" = DestinationId,
        Path,
        description = "The destination's id; the token must be this destination's."
    )),
    responses(
        (status = 200, description = "The softphone's token.", body = VoiceTokenAnswer),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 409, response = doc::NotAClient),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::VoiceTokenUnavailable),
    ),
    security(("destination_token" = [])),
)]
pub async fn issue(
    destination: DestinationAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if destination.destination.as_str() != id.as_str() {
        return Err(ApiError::Forbidden(
            "this token belongs to another destination".into(),
        ));
    }
    let identity = match destination
        .subscriber
        .destination(&destination.destination)
        .map(|d| &d.target)
    {
        Some(Target::Client(identity)) => identity.as_str().to_owned(),
        _ => return Err(not_a_client()),
    };
    let issued = state
        .voice_tokens
        .issue(&identity, Timestamp::now())
        .await
        .map_err(|err| match err {
            VoiceTokenError::NotConfigured(variable) => ApiError::NotConfigured(variable),
            provider @ VoiceTokenError::Provider { .. } => {
                ApiError::ProviderUnavailable(provider.into())
            }
            VoiceTokenError::Unexpected(err) => ApiError::Unexpected(err),
        })?;
    tracing::info!(subscriber = %destination.subscriber.number, destination = %destination.destination, provider = issued.provider, "voice token issued");
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(VoiceTokenAnswer {
            provider: issued.provider,
            identity: &issued.identity,
            token: &issued.token,
            expires_at: issued.expires_at,
        }))
}

/// `OPTIONS`: a browser's CORS preflight, so that a softphone page served
/// from anywhere can ask for its token with its `Authorization` header.
pub async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Access-Control-Allow-Methods", "POST"))
        .insert_header(("Access-Control-Allow-Headers", "Authorization"))
        .insert_header(("Access-Control-Max-Age", "600"))
        .finish()
}

/// 409: only a softphone takes a voice token.
pub(super) fn not_a_client() -> ApiError {
    ApiError::Conflict {
        code: "not_a_client",
        message: "only a destination of kind client takes a voice token".into(),
    }
}
