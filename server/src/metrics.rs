//! Prometheus metrics (`GET /metrics`): what happens to requests, calls,
//! notifications and the store, per instance. One registry per
//! `Application`, so that tests running several apps do not mix counts.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::session::SessionState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route pattern (`/v1/sessions/{id}`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub event: String,
    /// `delivered`, `failed` or `timed_out`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

/// Where a voice webhook found the subscribers the call may belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupSource {
    /// The subscriber cache, vouching for its answer: no store read.
    Cache,
    /// The store (the cache could not vouch, or did not know the number).
    Store,
    /// What this process last knew, because the store failed.
    LastKnown,
}

impl LookupSource {
    const ALL: [Self; 3] = [Self::Cache, Self::Store, Self::LastKnown];

    fn label(self) -> SourceLabels {
        SourceLabels {
            source: match self {
                Self::Cache => "cache",
                Self::Store => "store",
                Self::LastKnown => "last_known",
            }
            .to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TextLabels {
    pub provider: String,
    /// `sent`, `failed` or `skipped`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedWebhookLabels {
    pub provider: &'static str,
    /// `missing_signature`, `bad_signature`, `stale` or `not_configured`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignatureKeyLabels {
    pub provider: &'static str,
    /// `current` or `next` (the second value while a credential rotates).
    pub key: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignatureVariantLabels {
    pub provider: &'static str,
    /// `default_port` or `without_added_parameters`.
    pub variant: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    sessions: Family<OutcomeLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
    notification_duration: Histogram,
    notifications_pending: Gauge,
    forward_delay: Histogram,
    store_errors: Family<OperationLabels, Counter>,
    subscriber_lookups: Family<SourceLabels, Counter>,
    subscriber_cache_fresh: Gauge,
    subscriber_cache_entries: Gauge,
    webhooks_refused: Family<RefusedWebhookLabels, Counter>,
    signature_matches: Family<SignatureKeyLabels, Counter>,
    signature_variants: Family<SignatureVariantLabels, Counter>,
    missed_call_texts: Family<TextLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ringrelay");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration = HistogramFamily::<RouteLabels>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let sessions = Family::<OutcomeLabels, Counter>::default();
        let notifications = Family::<NotificationLabels, Counter>::default();
        let notification_duration = latency_histogram();
        let notifications_pending = Gauge::default();
        // Ring report to forwarded webhook: 0.25 s to about 64 s.
        let forward_delay = Histogram::new(exponential_buckets(0.25, 2.0, 9));
        let store_errors = Family::<OperationLabels, Counter>::default();
        let subscriber_lookups = Family::<SourceLabels, Counter>::default();
        // Shown at 0 from the start, so that a rate over them is defined.
        for source in LookupSource::ALL {
            let _ = subscriber_lookups.get_or_create(&source.label());
        }
        let subscriber_cache_fresh = Gauge::default();
        let subscriber_cache_entries = Gauge::default();
        let webhooks_refused = Family::<RefusedWebhookLabels, Counter>::default();
        let signature_matches = Family::<SignatureKeyLabels, Counter>::default();
        let signature_variants = Family::<SignatureVariantLabels, Counter>::default();
        let missed_call_texts = Family::<TextLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            request_duration.clone(),
        );
        registry.register("sessions_ended", "Sessions by outcome", sessions.clone());
        registry.register(
            "notifications",
            "Webhook deliveries by event type and outcome",
            notifications.clone(),
        );
        registry.register(
            "notification_duration_seconds",
            "Time a webhook delivery attempt took",
            notification_duration.clone(),
        );
        registry.register(
            "notifications_pending",
            "Webhook deliveries queued in the background and not finished (retries included)",
            notifications_pending.clone(),
        );
        registry.register(
            "forward_delay_seconds",
            "Time from a ring report to the forwarded call's webhook (tune carrier forwarding with it)",
            forward_delay.clone(),
        );
        registry.register(
            "store_errors",
            "Failed store operations",
            store_errors.clone(),
        );
        registry.register(
            "forwarded_call_subscriber_lookups",
            "Where voice webhooks found their subscribers: cache (no store read), store, last_known (the store failed)",
            subscriber_lookups.clone(),
        );
        registry.register(
            "subscriber_cache_fresh",
            "1 while the subscriber cache vouches for what it holds (its bus reader has missed nothing), else 0",
            subscriber_cache_fresh.clone(),
        );
        registry.register(
            "subscriber_cache_entries",
            "Subscribers the cache holds (at most SUBSCRIBER_CACHE_ENTRIES)",
            subscriber_cache_entries.clone(),
        );
        registry.register(
            "webhooks_refused",
            "CPaaS webhooks answered 403 or 503, by provider and reason (missing_signature, bad_signature, stale, not_configured)",
            webhooks_refused.clone(),
        );
        registry.register(
            "signature_matches",
            "CPaaS webhooks whose signature verified, by provider and the credential value that matched (current, or next while it rotates)",
            signature_matches.clone(),
        );
        registry.register(
            "signature_variants",
            "CPaaS webhooks whose signature verified over another form than the request as sent (default_port, without_added_parameters)",
            signature_variants.clone(),
        );
        registry.register(
            "missed_call_texts",
            "Texts back to missed callers, by provider and outcome (sent, failed, skipped)",
            missed_call_texts.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            sessions,
            notifications,
            notification_duration,
            notifications_pending,
            forward_delay,
            store_errors,
            subscriber_lookups,
            subscriber_cache_fresh,
            subscriber_cache_entries,
            webhooks_refused,
            signature_matches,
            signature_variants,
            missed_call_texts,
        }
    }
}

impl Metrics {
    /// The registry in the Prometheus / OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn session_ended(&self, outcome: SessionState) {
        let outcome = serde_json::to_value(outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.sessions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn notification(&self, event: &str, outcome: &str, took: Duration) {
        self.notifications
            .get_or_create(&NotificationLabels {
                event: event.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.notification_duration.observe(took.as_secs_f64());
    }

    /// A background delivery was queued (`1`) or finished (`-1`).
    pub fn notifications_pending(&self, change: i64) {
        self.notifications_pending.inc_by(change);
    }

    pub fn forward_delay(&self, delay: Duration) {
        self.forward_delay.observe(delay.as_secs_f64());
    }

    pub fn subscriber_lookup(&self, source: LookupSource) {
        self.subscriber_lookups.get_or_create(&source.label()).inc();
    }

    pub fn subscriber_cache_fresh(&self, fresh: bool) {
        self.subscriber_cache_fresh.set(i64::from(fresh));
    }

    pub fn subscriber_cache_entries(&self, entries: usize) {
        self.subscriber_cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// A CPaaS webhook refused (`reason` as in [`RefusedWebhookLabels`]).
    pub fn webhook_refused(&self, provider: &'static str, reason: &'static str) {
        self.webhooks_refused
            .get_or_create(&RefusedWebhookLabels { provider, reason })
            .inc();
    }

    /// A CPaaS webhook verified: with which credential value (`current` or
    /// `next`), and over which form when not the request as sent.
    pub fn signature_verified(
        &self,
        provider: &'static str,
        key: &'static str,
        variant: Option<&'static str>,
    ) {
        self.signature_matches
            .get_or_create(&SignatureKeyLabels { provider, key })
            .inc();
        if let Some(variant) = variant {
            self.signature_variants
                .get_or_create(&SignatureVariantLabels { provider, variant })
                .inc();
        }
    }

    /// What came of a text back to a missed caller through `provider`.
    pub fn missed_call_text(&self, provider: &str, outcome: &'static str) {
        self.missed_call_texts
            .get_or_create(&TextLabels {
                provider: provider.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn store_error(&self, operation: &str) {
        self.store_errors
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_in_the_text() {
        let metrics = Metrics::default();
        metrics.request("POST", "/twilio/voice", 200, Duration::from_millis(3));
        metrics.session_ended(SessionState::Voicemail);
        metrics.forward_delay(Duration::from_secs(4));
        let text = metrics.encode();
        assert!(
            text.contains(r#"ringrelay_http_requests_total{method="POST",route="/twilio/voice",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ringrelay_sessions_ended_total{outcome="voicemail"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("ringrelay_forward_delay_seconds_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
