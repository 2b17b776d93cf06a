//! Guessing is expensive (contract §15): failed bearer, capability and
//! signature checks are counted per client address in the store (so the
//! count is shared by every instance on Redis), and an address past
//! [`FAILURES_PER_MINUTE`] gets 429 with `Retry-After` until its window ends.
//!
//! Only failures cost a store round trip. What an instance learned about a
//! blocked address is kept in memory, so that a blocked client is refused
//! before its token is even looked at.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use tokio::time::Instant;

use super::error::ApiError;
use super::state::AppState;

/// Failed checks one client address may make in a minute.
pub const FAILURES_PER_MINUTE: u64 = 50;

const WINDOW: Duration = Duration::from_secs(60);

/// Client addresses this instance knows to be blocked, until when.
#[derive(Default)]
pub struct Guessers {
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Guessers {
    fn blocked_for(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&client) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                blocked.remove(&client);
                None
            }
            None => None,
        }
    }

    fn block(&self, client: IpAddr, until: Instant) {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        // Entries end with their window; drop the ended ones now and then
        // so that the map stays as small as the blocked clients.
        if blocked.len() > 10_000 {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(client, until);
    }
}

/// The client's address: the socket's peer, or with `TRUST_PROXY` the
/// first hop of `X-Forwarded-For` (what Heroku's and Fly's routers set).
fn client_address(req: &ServiceRequest, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return Some(first);
    }
    req.peer_addr().map(|a| a.ip())
}

/// Whether a response says a credential check failed: a wrong or missing
/// bearer token (401), a bad signature (403), or a capability that opens
/// no session (404 on the offer routes).
fn failed_check(req_path: &str, status: StatusCode) -> bool {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => true,
        StatusCode::NOT_FOUND => req_path.ends_with("/accept") || req_path.ends_with("/decline"),
        _ => false,
    }
}

pub async fn limit_guessing(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let client = client_address(&req, state.settings.trust_proxy);
    if let Some(client) = client
        && let Some(retry_after) = state.guessers.blocked_for(client, Instant::now())
    {
        return Ok(too_many(req, retry_after));
    }
    let path = req.path().to_owned();
    let response = next.call(req).await?;
    let (Some(client), true) = (client, failed_check(&path, response.status())) else {
        return Ok(response.map_into_left_body());
    };
    match state.registry.count_failed_check(client, WINDOW).await {
        Ok(count) if count.hits > FAILURES_PER_MINUTE => {
            tracing::warn!(client = %client, failures = count.hits, "too many failed credential checks; blocking the client for a while");
            state
                .guessers
                .block(client, Instant::now() + count.resets_in);
            let (request, _) = response.into_parts();
            Ok(too_many_for(request, count.resets_in))
        }
        Ok(_) => Ok(response.map_into_left_body()),
        // Without the store the count is unknown: let the failure through
        // as it was answered.
        Err(_) => Ok(response.map_into_left_body()),
    }
}

fn too_many<B>(req: ServiceRequest, retry_after: Duration) -> ServiceResponse<EitherBody<B>> {
    let (request, _) = req.into_parts();
    too_many_for(request, retry_after)
}

fn too_many_for<B>(
    request: actix_web::HttpRequest,
    retry_after: Duration,
) -> ServiceResponse<EitherBody<B>> {
    let error = ApiError::RateLimited {
        message: "too many failed credential checks from this address".into(),
        retry_after,
    };
    ServiceResponse::new(request, actix_web::ResponseError::error_response(&error))
        .map_into_right_body()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_client_is_the_peer_unless_the_proxy_is_trusted() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.7:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "203.0.113.9, 10.0.0.1"))
            .to_srv_request();
        assert_eq!(
            client_address(&req, false),
            Some("10.0.0.7".parse().unwrap())
        );
        assert_eq!(
            client_address(&req, true),
            Some("203.0.113.9".parse().unwrap())
        );
        let spoofed = TestRequest::default()
            .peer_addr("10.0.0.7:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "not an address"))
            .to_srv_request();
        assert_eq!(
            client_address(&spoofed, true),
            Some("10.0.0.7".parse().unwrap())
        );
    }

    #[test]
    fn only_credential_failures_count() {
        assert!(failed_check("/v1/ring", StatusCode::UNAUTHORIZED));
        assert!(failed_check("/twilio/voice", StatusCode::FORBIDDEN));
        assert!(failed_check("/v1/sessions/x/accept", StatusCode::NOT_FOUND));
        assert!(!failed_check("/v1/sessions/x", StatusCode::NOT_FOUND));
        assert!(!failed_check("/v1/ring", StatusCode::UNPROCESSABLE_ENTITY));
    }
}
