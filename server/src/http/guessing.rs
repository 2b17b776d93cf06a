//! Guessing credentials is expensive, and losing a call is worse. Failed
//! bearer, capability and signature checks are counted per client address
//! in the store (so the count is shared by every instance on Redis); an
//! address past [`FAILURES_PER_MINUTE`] has its *failing* requests answered
//! 429 with `Retry-After` until its window ends.
//!
//! What the limiter never refuses, whatever the address's count:
//! - a request whose credential verifies: a carrier's NAT or an office puts
//!   many phones behind one address, and one guesser among them must not
//!   cost the others their calls;
//! - a CPaaS webhook: providers send from address pools that every one of
//!   their accounts shares (and the user's own account shares while its
//!   auth token rotates), so an address says nothing about who signed. A
//!   valid signature gets its markup and an invalid one 403 at once;
//! - the operational routes (health, metrics, the API document, the
//!   console), which check no credential.
//!
//! So the check runs first and the limiter only looks at what failed. Only
//! failures cost a store round trip; what an instance learned about a
//! blocked address is kept in memory. Failures are logged once per address
//! and window, so that a flood cannot fill the logs.

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
use crate::providers::PROVIDERS;

/// Failed checks one client address may make in a minute.
pub const FAILURES_PER_MINUTE: u64 = 50;

const WINDOW: Duration = Duration::from_secs(60);

/// How many addresses an instance remembers before it forgets those whose
/// window has ended.
const REMEMBERED_ADDRESSES: usize = 10_000;

/// What this instance knows of client addresses that failed checks.
#[derive(Default)]
pub struct Guessers {
    /// Addresses blocked, until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Addresses whose failures of a kind (a provider's webhooks, or
    /// bearer tokens and capabilities) were logged, until when they may be
    /// again.
    logged: Mutex<HashMap<(IpAddr, FailureKind), Instant>>,
}

impl Guessers {
    fn blocked_for(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let mut blocked = lock(&self.blocked);
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
        remember(&mut lock(&self.blocked), client, until);
    }

    /// Whether a failure of `client` should be logged now: once a window
    /// for each kind, so that guessed tokens do not hide a provider that
    /// signs for another URL.
    fn should_log(&self, client: IpAddr, kind: FailureKind, now: Instant) -> bool {
        let mut logged = lock(&self.logged);
        if logged
            .get(&(client, kind))
            .is_some_and(|until| *until > now)
        {
            return false;
        }
        remember(&mut logged, (client, kind), now + WINDOW);
        true
    }
}

/// What failed: a provider's webhook signature, or a bearer token or
/// capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FailureKind {
    Webhook(&'static str),
    Credential,
}

impl FailureKind {
    fn of(path: &str) -> Self {
        provider_of(path).map_or(Self::Credential, Self::Webhook)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Entries end with their window; the ended ones are dropped now and then
/// so that a map stays as small as the addresses it is about.
fn remember<K: Eq + std::hash::Hash>(map: &mut HashMap<K, Instant>, key: K, until: Instant) {
    if map.len() >= REMEMBERED_ADDRESSES {
        let now = Instant::now();
        map.retain(|_, until| *until > now);
    }
    map.insert(key, until);
}

/// The client's address. Without `TRUST_PROXY` it is the socket's peer, and
/// proxy headers are ignored (anyone can write them). Behind Fly's or
/// Heroku's router (`TRUST_PROXY=true`) it is what the router saw:
/// `Fly-Client-IP`, else the **last** entry of `X-Forwarded-For` (the one
/// the router appended), else the peer. Never the first entry: the client
/// writes that one.
fn client_address(req: &ServiceRequest, trust_proxy: bool) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if !trust_proxy {
        return peer;
    }
    let headers = req.headers();
    let fly_client_ip = headers
        .get("fly-client-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    // The router appends to the last line when the client sent several.
    let last_forwarded_for = || {
        headers
            .get_all("x-forwarded-for")
            .last()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    };
    fly_client_ip.or_else(last_forwarded_for).or(peer)
}

/// Whether the limiter may ever refuse a request to `path`: never a CPaaS
/// webhook, never an operational route.
fn may_refuse(path: &str) -> bool {
    // `/v1/push/key` checks no credential: a browser fetches it to
    // subscribe, whatever its address did before.
    const OPERATIONAL: &[&str] = &[
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/v1/push/key",
    ];
    let is_operational = OPERATIONAL.contains(&path)
        || path == "/"
        || path == "/console"
        || path.starts_with("/console/");
    !is_operational && provider_of(path).is_none()
}

/// The provider whose webhook `path` is.
fn provider_of(path: &str) -> Option<&'static str> {
    let first_segment = path.strip_prefix('/')?.split('/').next()?;
    PROVIDERS
        .iter()
        .map(|p| p.name)
        .find(|name| *name == first_segment)
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
    let path = req.path().to_owned();
    let response = next.call(req).await?;
    let status = response.status();
    let (Some(client), true) = (client, failed_check(&path, status)) else {
        return Ok(response.map_into_left_body());
    };
    let now = Instant::now();
    let kind = FailureKind::of(&path);
    if state.guessers.should_log(client, kind, now) {
        log_failure(&state, client, kind, &path, status);
    }
    if !may_refuse(&path) {
        return Ok(response.map_into_left_body());
    }
    if let Some(retry_after) = state.guessers.blocked_for(client, now) {
        return Ok(too_many(response, retry_after));
    }
    match state.registry.count_failed_check(client, WINDOW).await {
        Ok(count) if count.hits > FAILURES_PER_MINUTE => {
            tracing::warn!(client = %client, failures = count.hits, "too many failed credential checks; refusing this address's failing requests for a while");
            state.guessers.block(client, now + count.resets_in);
            Ok(too_many(response, count.resets_in))
        }
        Ok(_) => Ok(response.map_into_left_body()),
        // Without the store the count is unknown: let the failure through
        // as it was answered.
        Err(_) => Ok(response.map_into_left_body()),
    }
}

/// One line for the first failure of an address in a window. For a CPaaS
/// webhook it names the URL the signature was checked against: a provider
/// configured with another URL (or a wrong `PUBLIC_BASE_URL`) fails every
/// request, and that URL is what the operator must compare.
fn log_failure(
    state: &AppState,
    client: IpAddr,
    kind: FailureKind,
    path: &str,
    status: StatusCode,
) {
    match kind {
        FailureKind::Webhook(provider) => tracing::warn!(
            client = %client,
            provider,
            checked_against = %state.settings.public_base_url.join(path),
            "refused a webhook whose signature did not verify (logged once a minute per address; see ringrelay_webhooks_refused_total)"
        ),
        FailureKind::Credential => tracing::warn!(
            client = %client,
            status = status.as_u16(),
            "a credential check failed (logged once a minute per address)"
        ),
    }
}

/// A failing response replaced by 429: the address is past its failures.
fn too_many<B>(
    response: ServiceResponse<B>,
    retry_after: Duration,
) -> ServiceResponse<EitherBody<B>> {
    let (request, _) = response.into_parts();
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

    fn request(headers: &[(&str, &str)]) -> ServiceRequest {
        let mut req = TestRequest::default().peer_addr("10.0.0.7:5000".parse().unwrap());
        for header in headers {
            req = req.append_header(*header);
        }
        req.to_srv_request()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn without_trust_proxy_the_client_is_the_peer_whatever_the_headers_say() {
        let req = request(&[
            ("x-forwarded-for", "203.0.113.9, 198.51.100.4"),
            ("fly-client-ip", "198.51.100.4"),
        ]);
        assert_eq!(client_address(&req, false), ip("10.0.0.7"));
    }

    #[test]
    fn behind_a_proxy_the_client_is_the_last_forwarded_entry_never_the_first() {
        // Heroku's router appends the address it saw to what the client sent.
        let req = request(&[("x-forwarded-for", "203.0.113.9, 198.51.100.4")]);
        assert_eq!(client_address(&req, true), ip("198.51.100.4"));
        let one = request(&[("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(client_address(&one, true), ip("198.51.100.4"));
        // Several header lines: the router appended to the last one.
        let lines = request(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "192.0.2.1, 198.51.100.4"),
        ]);
        assert_eq!(client_address(&lines, true), ip("198.51.100.4"));
    }

    #[test]
    fn behind_fly_the_client_is_fly_client_ip() {
        let req = request(&[
            ("x-forwarded-for", "203.0.113.9, 198.51.100.4"),
            ("fly-client-ip", "2001:db8::5"),
        ]);
        assert_eq!(client_address(&req, true), ip("2001:db8::5"));
    }

    #[test]
    fn unreadable_proxy_headers_leave_the_peer() {
        let req = request(&[
            ("fly-client-ip", "not an address"),
            ("x-forwarded-for", "203.0.113.9, garbage"),
        ]);
        assert_eq!(client_address(&req, true), ip("10.0.0.7"));
    }

    #[test]
    fn only_credential_failures_count() {
        assert!(failed_check("/v1/ring", StatusCode::UNAUTHORIZED));
        assert!(failed_check("/twilio/voice", StatusCode::FORBIDDEN));
        assert!(failed_check("/v1/sessions/x/accept", StatusCode::NOT_FOUND));
        assert!(!failed_check("/v1/sessions/x", StatusCode::NOT_FOUND));
        assert!(!failed_check("/v1/ring", StatusCode::UNPROCESSABLE_ENTITY));
    }

    #[test]
    fn cpaas_webhooks_and_operational_routes_are_never_refused() {
        for path in [
            "/twilio/voice",
            "/plivo/answer",
            "/telnyx/dial-status",
            "/signalwire/status",
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/",
            "/console",
            "/console/console.js",
            "/console/sw.js",
            "/v1/push/key",
        ] {
            assert!(!may_refuse(path), "{path}");
        }
        for path in [
            "/v1/ring",
            "/v1/sessions/x/accept",
            "/v1/subscribers/+1",
            "/twilion/voice",
        ] {
            assert!(may_refuse(path), "{path}");
        }
    }

    #[test]
    fn failures_are_logged_once_a_window_per_address_and_kind() {
        let guessers = Guessers::default();
        let start = Instant::now();
        let (one, other) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let token = FailureKind::of("/v1/ring");
        assert!(guessers.should_log(one, token, start));
        assert!(!guessers.should_log(one, token, start + Duration::from_secs(59)));
        assert!(guessers.should_log(other, token, start));
        assert!(guessers.should_log(one, FailureKind::of("/twilio/voice"), start));
        assert!(guessers.should_log(one, FailureKind::of("/plivo/answer"), start));
        assert!(guessers.should_log(one, token, start + WINDOW + Duration::from_millis(1)));
    }
}
