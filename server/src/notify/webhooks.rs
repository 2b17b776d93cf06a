//! Delivering events to destinations' `webhook_url`s, signed per Standard
//! Webhooks, through one HTTP client built once.
//!
//! `call.ringing` is delivered to every destination at once and waited for,
//! each bounded by `NOTIFY_TIMEOUT_MS`, because the phone's instruction must
//! wait for it; it is not retried (past its deadline the call has moved on).
//! Every other event is delivered in the background and retried with
//! backoff while the receiver fails in a way worth retrying.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::join_all;
use url::Url;

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::events::Event;
use super::retry::{self, RetryPolicy};
use super::signing;
use super::signing::WebhookSecret;
use crate::domain::webhook_target::{TargetPolicy, address_allowed};
use crate::metrics::Metrics;
use crate::outbound::{Refusal, describe};
use crate::rotation::Rotating;
use tokio_util::task::TaskTracker;

impl Delivery {
    /// The metric label of this outcome.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed(_) => "failed",
            Self::TimedOut => "timed_out",
        }
    }
}

/// What came of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The receiver answered 2xx.
    Delivered,
    /// The receiver answered otherwise, or could not be reached.
    Failed(String),
    /// The deadline passed first.
    TimedOut,
}

#[derive(Clone)]
pub struct WebhookSender {
    metrics: Arc<Metrics>,
    /// Background deliveries, so that shutdown can wait for them.
    background: TaskTracker,
    client: reqwest::Client,
    secret: Option<Rotating<WebhookSecret>>,
    targets: TargetPolicy,
    ringing_deadline: Duration,
    retry: RetryPolicy,
}

impl WebhookSender {
    pub fn new(
        secret: Option<Rotating<WebhookSecret>>,
        targets: TargetPolicy,
        ringing_deadline: Duration,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
        background: TaskTracker,
    ) -> anyhow::Result<Self> {
        let client =
            client_for_users_addresses(targets).context("building the webhook HTTP client")?;
        Ok(Self {
            metrics,
            background,
            client,
            secret,
            targets,
            ringing_deadline,
            retry,
        })
    }

    /// Delivers each event once, all at once, and returns when every one was
    /// answered, failed or hit the ringing deadline.
    pub(crate) async fn deliver_now(&self, deliveries: Vec<(Url, Event)>) -> Vec<Delivery> {
        join_all(deliveries.into_iter().map(|(url, event)| async move {
            let id = message_id();
            let body = match serde_json::to_vec(&event) {
                Ok(body) => body,
                Err(err) => return Delivery::Failed(format!("encoding the event: {err}")),
            };
            let started = std::time::Instant::now();
            let delivery = match tokio::time::timeout(
                self.ringing_deadline,
                self.attempt(&url, &id, &body, self.ringing_deadline),
            )
            .await
            {
                Ok(Ok(_)) => Delivery::Delivered,
                Ok(Err(failure)) => Delivery::Failed(failure.reason),
                Err(_) => Delivery::TimedOut,
            };
            self.metrics
                .notification(event.kind(), delivery.outcome(), started.elapsed());
            delivery
        }))
        .await
    }

    /// Delivers each event in the background, retrying by the policy.
    pub(crate) fn deliver_later(&self, deliveries: Vec<(Url, Event)>) {
        for (url, event) in deliveries {
            let sender = self.clone();
            // Counted before the task starts, so that whoever sees a
            // response also sees its deliveries pending.
            self.metrics.notifications_pending(1);
            self.background.spawn(async move {
                let outcome = sender.deliver_with_retries(&url, &event).await;
                sender.metrics.notifications_pending(-1);
                if let Delivery::Failed(reason) = &outcome {
                    tracing::warn!(
                        event = event.kind(),
                        host = url.host_str(),
                        reason,
                        "webhook not delivered"
                    );
                }
            });
        }
    }

    /// One event to one receiver, retried by the policy.
    pub(crate) async fn deliver_with_retries(&self, url: &Url, event: &Event) -> Delivery {
        let id = message_id();
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(err) => return Delivery::Failed(format!("encoding the event: {err}")),
        };
        let mut last = Delivery::Failed("no attempt made".into());
        for attempt in 1..=self.retry.attempts {
            match self
                .attempt(url, &id, &body, self.retry.attempt_timeout)
                .await
            {
                Ok(()) => return Delivery::Delivered,
                Err(failure) => {
                    last = Delivery::Failed(failure.reason);
                    if !failure.retryable || attempt == self.retry.attempts {
                        break;
                    }
                    let pause = self.retry.pause(attempt, failure.retry_after);
                    tokio::time::sleep(retry::jittered(pause)).await;
                }
            }
        }
        last
    }

    async fn attempt(
        &self,
        url: &Url,
        id: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(), Failure> {
        if literal_refused(url, self.targets) {
            return Err(Failure {
                reason: "refused: not a public address".into(),
                retryable: false,
                retry_after: None,
            });
        }
        let mut request = self
            .client
            .post(url.clone())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(secret) = &self.secret {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let headers = signing::sign(secret, id, now, body);
            request = request
                .header("webhook-id", headers.id)
                .header("webhook-timestamp", headers.timestamp.to_string())
                .header("webhook-signature", headers.signature);
        }
        let response = request.send().await.map_err(|err| Failure {
            reason: describe(&err),
            retryable: true,
            retry_after: None,
        })?;
        if response.status().is_success() {
            return Ok(());
        }
        let refusal = Refusal::of(&response);
        Err(Failure {
            reason: format!("answered {}", refusal.status),
            retryable: refusal.retryable,
            retry_after: refusal.retry_after,
        })
    }
}

/// An HTTP client for the addresses users give us (webhook URLs, browsers'
/// push endpoints): it follows no redirect and connects only where
/// `targets` allows, every resolved address checked.
pub(super) fn client_for_users_addresses(
    targets: TargetPolicy,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("ringrelay/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(CheckedResolver::new(targets)))
        .build()
}

/// Whether `url` names an address (never resolved, so the resolver below
/// cannot check it) that a notification may not go to.
pub(super) fn literal_refused(url: &Url, targets: TargetPolicy) -> bool {
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    literal.is_some_and(|ip| !address_allowed(ip, targets))
}

/// Resolves webhook (and push service) hosts and keeps only the addresses
/// a notification may go to (docs/operations.md): a name that resolves to the
/// service's own network is refused at connect time, whatever it resolved
/// to when it was registered.
struct CheckedResolver {
    targets: TargetPolicy,
}

impl CheckedResolver {
    pub(super) fn new(targets: TargetPolicy) -> Self {
        Self { targets }
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let targets = self.targets;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved
                .filter(|addr| address_allowed(addr.ip(), targets))
                .collect();
            if allowed.is_empty() {
                return Err("the webhook host resolves to no public address".into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

struct Failure {
    reason: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

fn message_id() -> String {
    use base64::Engine as _;
    let bytes: [u8; 16] = rand::random();
    format!(
        "msg_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_refused_at_connect_time() {
        let resolver = CheckedResolver {
            targets: TargetPolicy::PublicOnly,
        };
        let refused = resolver.resolve(Name::from_str("localhost").unwrap()).await;
        assert!(refused.is_err());

        let allowed = CheckedResolver {
            targets: TargetPolicy::AllowPrivate,
        }
        .resolve(Name::from_str("localhost").unwrap())
        .await
        .unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }
}
