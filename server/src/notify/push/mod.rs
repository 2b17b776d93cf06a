//! Web Push (docs/api.md; RFC 8030, 8291, 8292): every event a destination
//! hears on its webhook and stream also goes, encrypted, to each browser
//! that subscribed for it, so that it is heard with no console tab open.
//! One HTTP client, built once; `call.ringing` is pushed at once and
//! waited for (bounded by `NOTIFY_TIMEOUT_MS`, as webhooks are), every
//! other event in the background, retried as webhooks are. A push service
//! that answers 404 or 410 has dropped the subscription: so does the store.

pub(crate) mod crypto;
pub mod vapid;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::join_all;
use reqwest::StatusCode;
use tokio_util::task::TaskTracker;

use self::vapid::Vapid;
use super::events::Event;
use super::retry::{self, RetryPolicy};
use super::webhooks::{Delivery, client_for_users_addresses, literal_refused};
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::push::PushSubscription;
use crate::domain::session::SessionId;
use crate::domain::webhook_target::TargetPolicy;
use crate::metrics::Metrics;
use crate::outbound::{Refusal, describe};
use crate::store::push::PushSubscriptionStore;

/// How long a push service keeps an event other than `call.ringing` for a
/// browser that is offline.
const TTL_OTHERWISE: Duration = Duration::from_secs(3600);

/// One event for one browser, with what the push service is told of it.
#[derive(Debug, Clone)]
pub(crate) struct Push {
    pub subscription: PushSubscription,
    pub event: Event,
    /// How long the push service may hold it: until the offer expires for
    /// `call.ringing`, else an hour.
    pub ttl: Duration,
}

impl Push {
    /// `event` for `subscription`; `offer_left` is how long a
    /// `call.ringing` offer has left (its TTL), `None` for other events.
    pub(crate) fn new(
        subscription: PushSubscription,
        event: Event,
        offer_left: Option<Duration>,
    ) -> Self {
        Self {
            subscription,
            event,
            ttl: offer_left.unwrap_or(TTL_OTHERWISE),
        }
    }
}

/// The `Topic` of a session's pushes: a later push with the same topic
/// replaces one the push service still holds (a `call.cancelled` replaces
/// the pending `call.ringing`). At most 32 base64url characters (RFC 8030
/// §5.4): a session id already is; anything else is hashed to one.
pub(crate) fn topic(session: &SessionId) -> String {
    let id = session.as_str();
    let fits = id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if fits {
        return id.to_owned();
    }
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// Sends pushes: one HTTP client, built once, VAPID-signed, encrypted.
#[derive(Clone)]
pub struct PushSender {
    client: reqwest::Client,
    vapid: Vapid,
    store: Arc<dyn PushSubscriptionStore>,
    targets: TargetPolicy,
    ringing_deadline: Duration,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
    /// Background pushes, so that shutdown can wait for them.
    background: TaskTracker,
}

/// Why one push attempt failed.
struct Failure {
    reason: String,
    retryable: bool,
    /// The push service dropped the subscription (404, 410).
    gone: bool,
    retry_after: Option<Duration>,
}

impl PushSender {
    #[allow(clippy::too_many_arguments, reason = "built once, in startup")]
    pub fn new(
        vapid: Vapid,
        store: Arc<dyn PushSubscriptionStore>,
        targets: TargetPolicy,
        ringing_deadline: Duration,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
        background: TaskTracker,
    ) -> anyhow::Result<Self> {
        let client =
            client_for_users_addresses(targets).context("building the push HTTP client")?;
        Ok(Self {
            client,
            vapid,
            store,
            targets,
            ringing_deadline,
            retry,
            metrics,
            background,
        })
    }

    pub fn vapid(&self) -> &Vapid {
        &self.vapid
    }

    /// Which hosts an endpoint may name (`ALLOW_PRIVATE_WEBHOOKS`).
    pub(crate) fn targets(&self) -> TargetPolicy {
        self.targets
    }

    pub(crate) fn store(&self) -> &dyn PushSubscriptionStore {
        &*self.store
    }

    /// Every push subscription of `subscriber`'s destinations; none when
    /// the store fails (logged: the other notifications still go).
    pub(crate) async fn subscriptions(&self, subscriber: &PhoneNumber) -> Vec<PushSubscription> {
        match tokio::time::timeout(
            self.ringing_deadline,
            self.store.push_subscriptions(subscriber),
        )
        .await
        {
            Ok(Ok(subscriptions)) => subscriptions,
            Ok(Err(err)) => {
                tracing::warn!(subscriber = %subscriber, error = format!("{err:#}"), "could not read push subscriptions");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!(subscriber = %subscriber, "reading push subscriptions timed out");
                Vec::new()
            }
        }
    }

    /// Pushes each ringing destination's `call.ringing` (`events`) to its
    /// browsers, all at once, and returns when each was answered, failed,
    /// or the ringing deadline passed, reading the subscriptions included:
    /// the phone's instruction waits for this no longer than for webhooks.
    pub(crate) async fn push_ringing(
        &self,
        subscriber: &PhoneNumber,
        events: Vec<(DestinationId, Event)>,
        offer_left: Duration,
    ) {
        let pushing = async {
            let pushes: Vec<Push> = self
                .subscriptions(subscriber)
                .await
                .into_iter()
                .filter_map(|s| {
                    let (_, event) = events.iter().find(|(d, _)| *d == s.destination_id)?;
                    Some(Push::new(s, event.clone(), Some(offer_left)))
                })
                .collect();
            self.push_now(subscriber, pushes).await;
        };
        if tokio::time::timeout(self.ringing_deadline, pushing)
            .await
            .is_err()
        {
            tracing::warn!(subscriber = %subscriber, "call.ringing pushes timed out");
        }
    }

    /// Sends each push once, all at once, and returns when every one was
    /// answered, failed or hit the ringing deadline (`call.ringing`: past
    /// it the call has moved on, so it is not retried).
    async fn push_now(&self, subscriber: &PhoneNumber, pushes: Vec<Push>) -> Vec<Delivery> {
        join_all(pushes.into_iter().map(|push| async move {
            let delivery = match tokio::time::timeout(
                self.ringing_deadline,
                self.attempt(&push, self.ringing_deadline),
            )
            .await
            {
                Ok(Ok(())) => Delivery::Delivered,
                Ok(Err(failure)) => {
                    if failure.gone {
                        self.forget(subscriber, &push.subscription).await;
                    }
                    Delivery::Failed(failure.reason)
                }
                Err(_) => Delivery::TimedOut,
            };
            if delivery != Delivery::Delivered {
                tracing::warn!(event = push.event.kind(), host = push.subscription.endpoint.host_str(), outcome = ?delivery, "push not delivered");
            }
            delivery
        }))
        .await
    }

    /// Pushes `event` to the browsers of `destinations` of `subscriber`,
    /// in the background (the subscriptions are read there too: a caller,
    /// such as a voice route, never waits on them), each retried as
    /// webhooks are.
    pub(crate) fn push_later(
        &self,
        subscriber: &PhoneNumber,
        destinations: Vec<DestinationId>,
        event: Event,
    ) {
        let sender = self.clone();
        let subscriber = subscriber.clone();
        // Counted before the task starts, so that whoever sees a response
        // also sees its notifications pending.
        self.metrics.notifications_pending(1);
        self.background.spawn(async move {
            let pushes: Vec<Push> = sender
                .subscriptions(&subscriber)
                .await
                .into_iter()
                .filter(|s| destinations.contains(&s.destination_id))
                .map(|s| Push::new(s, event.clone(), None))
                .collect();
            join_all(pushes.iter().map(|push| async {
                let outcome = sender.push_with_retries(&subscriber, push).await;
                if let Delivery::Failed(reason) = &outcome {
                    tracing::warn!(
                        event = push.event.kind(),
                        host = push.subscription.endpoint.host_str(),
                        reason,
                        "push not delivered"
                    );
                }
            }))
            .await;
            sender.metrics.notifications_pending(-1);
        });
    }

    async fn push_with_retries(&self, subscriber: &PhoneNumber, push: &Push) -> Delivery {
        let mut last = Delivery::Failed("no attempt made".into());
        for attempt in 1..=self.retry.attempts {
            match self.attempt(push, self.retry.attempt_timeout).await {
                Ok(()) => return Delivery::Delivered,
                Err(failure) => {
                    last = Delivery::Failed(failure.reason);
                    if failure.gone {
                        self.forget(subscriber, &push.subscription).await;
                        break;
                    }
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

    /// The push service no longer knows this subscription: neither do we.
    async fn forget(&self, subscriber: &PhoneNumber, subscription: &PushSubscription) {
        match self
            .store
            .remove_push_subscription(subscriber, &subscription.destination_id, &subscription.id)
            .await
        {
            Ok(_) => {
                tracing::info!(subscriber = %subscriber, destination = %subscription.destination_id, "push subscription gone: removed")
            }
            Err(err) => tracing::warn!(
                error = format!("{err:#}"),
                "could not remove a push subscription that is gone"
            ),
        }
    }

    async fn attempt(&self, push: &Push, timeout: Duration) -> Result<(), Failure> {
        let refused = |reason: &str| Failure {
            reason: reason.to_owned(),
            retryable: false,
            gone: false,
            retry_after: None,
        };
        let endpoint = &push.subscription.endpoint;
        if literal_refused(endpoint, self.targets) {
            return Err(refused("refused: not a public address"));
        }
        let json = serde_json::to_vec(&push.event).map_err(|_| refused("encoding the event"))?;
        let (Some(key), Some(auth)) = (push.subscription.key(), push.subscription.auth_secret())
        else {
            return Err(refused("the subscription's keys are unreadable"));
        };
        let body = crypto::encrypt(&key, &auth, &json).map_err(|err| refused(&err.to_string()))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ringing = push.event.kind() == "call.ringing";
        let response = self
            .client
            .post(endpoint.clone())
            .timeout(timeout)
            .header(
                reqwest::header::AUTHORIZATION,
                self.vapid.authorization(endpoint, now),
            )
            .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header("TTL", push.ttl.as_secs().to_string())
            .header("Urgency", if ringing { "high" } else { "normal" })
            .header("Topic", topic(push.event.session_id()))
            .body(body)
            .send()
            .await
            .map_err(|err| Failure {
                reason: describe(&err),
                retryable: true,
                gone: false,
                retry_after: None,
            })?;
        if response.status().is_success() {
            return Ok(());
        }
        let refusal = Refusal::of(&response);
        Err(Failure {
            reason: format!("answered {}", refusal.status),
            retryable: refusal.retryable,
            gone: matches!(refusal.status, StatusCode::NOT_FOUND | StatusCode::GONE),
            retry_after: refusal.retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sessions_topic_is_its_id_which_fits_in_32_base64url_characters() {
        let id = SessionId::parse("ses_q7Xb2mN4pR8sT1vW3yZ5aB").unwrap();
        assert_eq!(topic(&id), "ses_q7Xb2mN4pR8sT1vW3yZ5aB");
    }
}
