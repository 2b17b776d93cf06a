//! Test harness: a real `redis-server` per test on a free port (or the
//! shared Redis Cluster, or a Sentinel deployment: see
//! `ringrelay_testkit::servers`), the service on port 0 with its own key
//! prefix, and request helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ringrelay_server::clock::WallClock;
use ringrelay_server::config::{Config, RedisTarget};
use ringrelay_server::domain::time::Timestamp;
use ringrelay_server::notify::retry::RetryPolicy;
use ringrelay_server::redis::{Certificates, RedisConnection};
use ringrelay_server::startup::{Application, Inputs};
use ringrelay_server::store::RedisStore;

use crate::servers::{SENTINEL_MASTER, TestRedis, TestRedisCluster, TestSentinel};
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub use ringrelay_testkit::WEBHOOK_SECRET;
pub const TWILIO_AUTH_TOKEN: &str = "test-twilio-auth-token";
pub const PLIVO_AUTH_TOKEN: &str = "test-plivo-auth-token";
/// The seed of the Ed25519 key these tests sign as Telnyx with; the app
/// verifies with its public half (`TELNYX_PUBLIC_KEY`). Not RFC 8032's key,
/// so that a signature from the published vector is one by another key.
pub const TELNYX_SECRET_SEED: [u8; 32] = *b"ringrelay-test-telnyx-signing-k!";
pub const SIGNALWIRE_SIGNING_KEY: &str = "PSKtest-ringrelay-signalwire-key";
/// The test space's SIP domain: softphones are dialed as
/// `<Verto>alice@example.verto.signalwire.com</Verto>`.
pub const SIGNALWIRE_SIP_DOMAIN: &str = "example";
pub const PUBLIC_BASE_URL: &str = "https://relay.example.com";

/// The service's connection to the standalone Redis at `url`.
pub fn redis_connection(url: &str) -> RedisConnection {
    RedisConnection::open(&RedisTarget::standalone(url), Certificates::Verify)
        .expect("a valid Redis URL")
}

/// A store on the standalone Redis at `url`, its keys under `prefix`.
pub fn redis_store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::new(redis_connection(url), prefix)
}

/// A registry of its own on `store` (as another instance's would be),
/// with `config`'s rules, caching nothing it is not asked for.
pub fn registry_on(
    store: Arc<dyn ringrelay_server::store::Store>,
    config: &Config,
) -> ringrelay_server::subscribers::Registry {
    use ringrelay_server::subscribers::{Registry, Subscribers};
    Registry::new(
        Arc::new(Subscribers::in_process(store, 16)),
        ringrelay_server::domain::subscriber::SpecRules {
            region: config.default_region,
            webhooks_can_be_signed: true,
            webhook_targets: config.webhook_targets,
        },
    )
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Which store an app under test runs on.
#[derive(Clone)]
pub enum Backend {
    Memory,
    Redis(Arc<TestRedis>),
    /// The Redis Cluster every test of the binary shares.
    Cluster(&'static TestRedisCluster),
    /// A Sentinel-managed primary of this test's own.
    Sentinel(Arc<TestSentinel>),
}

impl Backend {
    pub fn redis() -> Self {
        Self::Redis(TestRedis::start())
    }

    pub fn cluster() -> Self {
        Self::Cluster(TestRedisCluster::shared())
    }

    pub fn sentinel() -> Self {
        Self::Sentinel(TestSentinel::start())
    }

    /// What the service's configuration names for this backend.
    pub fn redis_target(&self) -> Option<RedisTarget> {
        let config = test_config(self, &[]).expect("test configuration is valid");
        config.redis
    }

    /// A store of its own (a connection of its own, as another instance
    /// would have) on this Redis backend, its keys under `prefix`.
    pub fn redis_store(&self, prefix: &str) -> RedisStore {
        let target = self.redis_target().expect("a Redis backend");
        RedisStore::new(
            RedisConnection::open(&target, Certificates::Verify).expect("a valid target"),
            prefix,
        )
    }

    pub fn test_sentinel(&self) -> &TestSentinel {
        match self {
            Self::Sentinel(s) => s,
            _ => panic!("this test needs the Sentinel backend"),
        }
    }

    pub fn test_redis(&self) -> &TestRedis {
        match self {
            Self::Redis(r) => r,
            _ => panic!("this test needs the standalone Redis backend"),
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The configuration the app runs with (its key prefix, for one).
    pub config: Config,
    /// The clock of its call flow and rules.
    pub clock: WallClock,
    /// The store's backend; holding it keeps the test's redis-server alive.
    pub backend: Backend,
}

/// The configuration tests run with, plus `extra` (which wins; an empty value
/// unsets a variable).
pub fn test_config(
    backend: &Backend,
    extra: &[(&str, &str)],
) -> Result<Config, ringrelay_server::config::ConfigError> {
    let mut vars: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("PUBLIC_BASE_URL".into(), PUBLIC_BASE_URL.into()),
        ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ("TWILIO_AUTH_TOKEN".into(), TWILIO_AUTH_TOKEN.into()),
        ("PLIVO_AUTH_TOKEN".into(), PLIVO_AUTH_TOKEN.into()),
        ("TELNYX_PUBLIC_KEY".into(), telnyx_public_key()),
        (
            "SIGNALWIRE_SIGNING_KEY".into(),
            SIGNALWIRE_SIGNING_KEY.into(),
        ),
        ("SIGNALWIRE_SIP_DOMAIN".into(), SIGNALWIRE_SIP_DOMAIN.into()),
        ("WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
        // The receivers of these tests listen on 127.0.0.1.
        ("ALLOW_PRIVATE_WEBHOOKS".into(), "true".into()),
    ];
    match backend {
        Backend::Memory => {}
        Backend::Redis(redis) => vars.push(("REDIS_URL".into(), redis.url())),
        Backend::Cluster(cluster) => vars.push(("REDIS_CLUSTER_URLS".into(), cluster.urls())),
        Backend::Sentinel(sentinel) => {
            vars.push(("REDIS_SENTINEL_URLS".into(), sentinel.urls()));
            vars.push(("REDIS_SENTINEL_MASTER".into(), SENTINEL_MASTER.into()));
        }
    }
    if !matches!(backend, Backend::Memory) {
        vars.push(("REDIS_KEY_PREFIX".into(), unique_prefix()));
    }
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_string(), value.to_string()));
    }
    Config::from_vars(vars)
}

/// How often the apps under test sweep their deadlines: an expiry shows
/// this soon after the test moved the clock past it. A live session lives
/// four sweeps past its forward deadline.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Retries that keep no test waiting: 4 attempts, 10, 50 and 250 ms apart,
/// whatever a receiver's `Retry-After` says.
pub const FAST_RETRIES: RetryPolicy = RetryPolicy {
    attempts: 4,
    first_delay: Duration::from_millis(10),
    backoff: 5,
    min_retry_after: Duration::from_millis(10),
    max_retry_after: Duration::from_millis(10),
    attempt_timeout: Duration::from_secs(10),
};

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let config = test_config(&backend, extra).expect("test configuration is valid");
    start(config, backend, Timestamp::now()).await
}

/// An app whose subscriber rules read a clock set to `at` (RFC 3339); the
/// test moves it on with `app.clock.advance`.
pub async fn spawn_app_at(backend: Backend, at: &str) -> TestApp {
    let config = test_config(&backend, &[]).expect("test configuration is valid");
    let at = serde_json::from_value(Value::String(at.to_owned())).expect("an RFC 3339 time");
    start(config, backend, at).await
}

/// The app on its own clock, set to `now`, which the test moves on
/// (`app.clock.advance`) instead of waiting for deadlines; with
/// [`FAST_RETRIES`], and deadlines swept every [`SWEEP_INTERVAL`].
async fn start(config: Config, backend: Backend, now: Timestamp) -> TestApp {
    let clock = WallClock::starting_at(now);
    let inputs = Inputs {
        clock: clock.clone(),
        retry: FAST_RETRIES,
        sweep_interval: SWEEP_INTERVAL,
    };
    let app = Application::build_with(config.clone(), inputs)
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        config,
        clock,
        backend,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn put_subscriber(&self, number: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v1/subscribers/{number}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_subscriber(&self, number: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/subscribers/{number}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_subscriber(&self, number: &str) -> reqwest::Response {
        self.client
            .delete(self.url(&format!("/v1/subscribers/{number}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }
}

/// The tokens a registration showed.
pub struct Registered {
    pub device_token: String,
    pub destination_tokens: std::collections::BTreeMap<String, String>,
}

impl TestApp {
    /// Registers a subscriber; fails the test unless it is created.
    pub async fn register(&self, number: &str, body: &Value) -> Registered {
        let response = self.put_subscriber(number, body).await;
        assert_eq!(response.status(), 201, "registering {number}");
        let created: Value = response.json().await.unwrap();
        Registered {
            device_token: created["device_token"].as_str().unwrap().to_owned(),
            destination_tokens: serde_json::from_value(created["destination_tokens"].clone())
                .unwrap(),
        }
    }

    /// This instance's metrics, as `/metrics` shows them.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// Waits until every webhook delivery this instance queued so far has
    /// finished (its `notifications_pending` gauge is back at 0): a
    /// delivery that has not arrived by then never will.
    pub async fn deliveries_settled(&self) {
        for _ in 0..1000 {
            if self
                .metrics()
                .await
                .lines()
                .any(|l| l == "ringrelay_notifications_pending 0")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("webhook deliveries still pending after 10 s");
    }

    pub async fn put_dnd(&self, device_token: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url("/v1/dnd"))
            .bearer_auth(device_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn ring(&self, device_token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/ring"))
            .bearer_auth(device_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The phone app reports how the call went on it (`answered`, …).
    pub async fn phone_event(&self, device_token: &str, session_id: &str, event: &str) -> u16 {
        self.client
            .post(self.url(&format!("/v1/sessions/{session_id}/events")))
            .bearer_auth(device_token)
            .json(&json!({ "event": event }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn get_session(&self, token: &str, session_id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/sessions/{session_id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Waits until session `session_id` is in `state` (a sweep, another
    /// instance or a background task gets it there); fails the test after
    /// 10 s.
    pub async fn wait_for_state(&self, token: &str, session_id: &str, state: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let session: Value = self
                .get_session(token, session_id)
                .await
                .json()
                .await
                .unwrap();
            if session["state"] == state {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "session {session_id} never became {state}: {session}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts a form to a Twilio route, signed as Twilio signs it with the
    /// app's auth token over `PUBLIC_BASE_URL` + `path_and_query`.
    pub async fn twilio(&self, path_and_query: &str, params: &[(&str, &str)]) -> reqwest::Response {
        Cpaas::Twilio
            .sign_and_post(self, path_and_query, &pairs(params))
            .await
    }

    /// A signed Twilio webhook answered 200 with TwiML; its parsed tree.
    pub async fn twiml(&self, path_and_query: &str, params: &[(&str, &str)]) -> Element {
        let response = self.twilio(path_and_query, params).await;
        Cpaas::Twilio.read_markup(path_and_query, response).await
    }
}

/// The path and query of an absolute URL of ours (a Dial `action`).
pub fn local_path(absolute: &str) -> String {
    absolute
        .strip_prefix(PUBLIC_BASE_URL)
        .unwrap_or_else(|| panic!("{absolute} is not under {PUBLIC_BASE_URL}"))
        .to_owned()
}

/// The example subscriber of docs/api.md.
pub fn example_subscriber() -> Value {
    json!({
        "forwarding_number": "+12025550100",
        "mode": "auto",
        "strategy": "sequential",
        "ring_timeout_secs": 20,
        "pick_timeout_secs": 15,
        "destinations": [
            {"id": "desk", "kind": "phone", "address": "+12025550201",
             "webhook_url": "https://crm.example.com/hooks/calls", "screening": false},
            {"id": "laptop", "kind": "client", "address": "alice"},
            {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com"}
        ],
        "fallback": {"kind": "voicemail"}
    })
}

/// Asserts the contract's error shape and returns the body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|ct| ct.to_str().unwrap().starts_with("application/json")),
        "error bodies are JSON"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "exactly error and message: {body}"
    );
    body
}

/// Runs each listed test body once per store backend:
/// `both_backends!(name => |backend| async move { ... })`: the memory store,
/// a standalone Redis of the test's own, and the shared local Redis Cluster.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:expr;)+) => {
        mod memory {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    ($body)($crate::helpers::Backend::Memory).await
                }
            )+
        }
        mod redis {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    ($body)($crate::helpers::Backend::redis()).await
                }
            )+
        }
        mod cluster {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    ($body)($crate::helpers::Backend::cluster()).await
                }
            )+
        }
    };
}

/// Runs each case once per provider: `on_both_backends` cases take
/// `(Cpaas, Backend)` and run on the in-memory store, on Redis and on the
/// shared cluster; `once` cases take the provider only. Tests are named
/// `<file>::<provider>::[<backend>::]<case>`.
#[macro_export]
macro_rules! for_each_provider {
    (
        on_both_backends: [$($both:ident),* $(,)?],
        once: [$($once:ident),* $(,)?] $(,)?
    ) => {
        $crate::for_each_provider!(@provider twilio, Twilio, [$($both),*], [$($once),*]);
        $crate::for_each_provider!(@provider plivo, Plivo, [$($both),*], [$($once),*]);
        $crate::for_each_provider!(@provider telnyx, Telnyx, [$($both),*], [$($once),*]);
        $crate::for_each_provider!(@provider signalwire, SignalWire, [$($both),*], [$($once),*]);
    };
    (@provider $module:ident, $variant:ident, [$($both:ident),*], [$($once:ident),*]) => {
        mod $module {
            mod memory {
                $(
                    #[tokio::test]
                    async fn $both() {
                        super::super::$both(
                            $crate::helpers::Cpaas::$variant,
                            $crate::helpers::Backend::Memory,
                        )
                        .await
                    }
                )*
            }

            mod redis {
                $(
                    #[tokio::test]
                    async fn $both() {
                        super::super::$both(
                            $crate::helpers::Cpaas::$variant,
                            $crate::helpers::Backend::redis(),
                        )
                        .await
                    }
                )*
            }

            mod cluster {
                $(
                    #[tokio::test]
                    async fn $both() {
                        super::super::$both(
                            $crate::helpers::Cpaas::$variant,
                            $crate::helpers::Backend::cluster(),
                        )
                        .await
                    }
                )*
            }

            $(
                #[tokio::test]
                async fn $once() {
                    super::$once($crate::helpers::Cpaas::$variant).await
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------
// CPaaS providers: the kit's words (routes, parameters, signatures, the
// markup's verbs and nouns), plus what only a test needs: the test
// credentials, the recorded requests, and signed requests to the app.

pub use ringrelay_simulator::cpaas::kit::{
    Cpaas, DialEnd, Element, Screening, form_body, unix_now,
};

/// Owned form pairs.
pub fn pairs(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses markup the app answered; fails the test when it is not one
/// well-formed element.
pub fn parse_markup(xml: &str) -> Element {
    ringrelay_simulator::cpaas::kit::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"))
}

/// The Telnyx key these tests sign with (from [`TELNYX_SECRET_SEED`]).
pub fn telnyx_signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&TELNYX_SECRET_SEED)
}

/// Its public half as Telnyx shows it: the app's `TELNYX_PUBLIC_KEY`.
pub fn telnyx_public_key() -> String {
    ringrelay_simulator::cpaas::kit::telnyx_public_key(&TELNYX_SECRET_SEED)
}

/// What a test does with a provider beyond the kit's words: its test
/// credential, its recorded requests (`fixtures/requests/<provider>/`), and
/// requests to the app under test signed with that credential.
pub trait CpaasTest: Copy {
    /// The provider, in the kit's words.
    fn kit(self) -> Cpaas;

    /// The secret its HMAC signatures are keyed with. Telnyx signs with a
    /// private key instead ([`telnyx_signing_key`]).
    fn auth_token(self) -> &'static str {
        match self.kit() {
            Cpaas::Twilio => TWILIO_AUTH_TOKEN,
            Cpaas::Plivo => PLIVO_AUTH_TOKEN,
            Cpaas::SignalWire => SIGNALWIRE_SIGNING_KEY,
            Cpaas::Telnyx => panic!("Telnyx signs with an Ed25519 key, not a shared secret"),
        }
    }

    /// The headers signing a POST of `params` to `url` (its body as
    /// [`form_body`] writes it), as the provider signs it with its test
    /// credential.
    fn signature_headers(
        self,
        url: &str,
        params: &[(String, String)],
    ) -> Vec<(&'static str, String)> {
        let secret: &[u8] = match self.kit() {
            Cpaas::Telnyx => &TELNYX_SECRET_SEED,
            _ => self.auth_token().as_bytes(),
        };
        self.kit().sign(secret, url, params)
    }

    /// The recorded example request `kind`: `inbound_call`, `dial_busy`,
    /// `dial_completed`, `record`, `screen`, `screen_result`, `recording` (a
    /// Dial's recording is ready), and the status callback's
    /// [`CpaasTest::status_kind`].
    fn request(self, kind: &str) -> Request {
        #[derive(serde::Deserialize)]
        struct Fixture {
            path: String,
            params: Vec<(String, String)>,
        }
        let file = format!(
            "{}/../fixtures/requests/{}/{kind}.json",
            env!("CARGO_MANIFEST_DIR"),
            self.kit().name()
        );
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let fixture: Fixture =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        Request {
            cpaas: self.kit(),
            path: fixture.path,
            params: fixture.params,
        }
    }

    /// The kind of the recorded call-status callback: Plivo's `hangup`,
    /// everyone else's `status`.
    fn status_kind(self) -> &'static str {
        match self.kit() {
            Cpaas::Plivo => "hangup",
            Cpaas::Twilio | Cpaas::Telnyx | Cpaas::SignalWire => "status",
        }
    }

    /// The request of the call-status callback.
    fn status_request(self) -> Request {
        self.request(self.status_kind())
    }

    /// The recorded forwarded call, as call `call_id` from `from` to `to`
    /// (E.164 numbers or withheld markers), with `ForwardedFrom` only when
    /// given.
    fn inbound_call(
        self,
        call_id: &str,
        from: &str,
        to: &str,
        forwarded_from: Option<&str>,
    ) -> Request {
        let request = self
            .request("inbound_call")
            .with_call_id(call_id)
            .with_parties(from, to);
        match forwarded_from {
            Some(subscriber) => request.with("ForwardedFrom", &self.kit().number(subscriber)),
            None => request.without("ForwardedFrom"),
        }
    }

    /// Posts a form to one of the provider's routes, signed as the provider
    /// signs it over `PUBLIC_BASE_URL` + `path_and_query`.
    async fn sign_and_post(
        self,
        app: &TestApp,
        path_and_query: &str,
        params: &[(String, String)],
    ) -> reqwest::Response {
        let headers = self.signature_headers(&format!("{PUBLIC_BASE_URL}{path_and_query}"), params);
        post_form(app, path_and_query, params, &headers).await
    }

    /// A signed webhook answered 200 with the provider's markup; its parsed
    /// tree.
    async fn markup(
        self,
        app: &TestApp,
        path_and_query: &str,
        params: &[(String, String)],
    ) -> Element {
        let response = self.sign_and_post(app, path_and_query, params).await;
        self.read_markup(path_and_query, response).await
    }

    /// The answer to a webhook to `path_and_query`, asserted 200 with the
    /// provider's markup; its parsed tree.
    async fn read_markup(self, path_and_query: &str, response: reqwest::Response) -> Element {
        let cpaas = self.kit();
        assert_eq!(response.status(), 200, "{} {path_and_query}", cpaas.name());
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with(cpaas.markup_content_type()),
            "{} markup is {}, not {content_type}",
            cpaas.name(),
            cpaas.markup_content_type()
        );
        let root = parse_markup(&response.text().await.unwrap());
        assert_eq!(root.name, "Response");
        root
    }
}

impl CpaasTest for Cpaas {
    fn kit(self) -> Cpaas {
        self
    }
}

/// A form posted to `path_and_query` with exactly these headers (a
/// signature, or none, or a wrong one), its body exactly [`form_body`].
pub async fn post_form(
    app: &TestApp,
    path_and_query: &str,
    params: &[(String, String)],
    headers: &[(&str, String)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(path_and_query))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(params));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

/// A webhook request of one provider: where it goes and its form, in order.
#[derive(Debug, Clone)]
pub struct Request {
    pub cpaas: Cpaas,
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl Request {
    /// The same request posted to `path_and_query` (an action URL of ours).
    pub fn at(mut self, path_and_query: &str) -> Self {
        self.path = path_and_query.to_owned();
        self
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` set to `value`, where it was (other values of it dropped), or
    /// added.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        let mut seen = false;
        self.params.retain_mut(|(n, v)| {
            if n != name {
                return true;
            }
            let first = !seen;
            if first {
                *v = value.to_owned();
                seen = true;
            }
            first
        });
        if !seen {
            self.params.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.params.retain(|(n, _)| n != name);
        self
    }

    /// Call `call_id` wherever the provider repeats the call's id.
    pub fn with_call_id(mut self, call_id: &str) -> Self {
        let cpaas = self.cpaas;
        self = self.with(cpaas.call_id_param(), call_id);
        for name in cpaas.call_id_params() {
            if self.get(name).is_some() {
                self = self.with(name, call_id);
            }
        }
        self
    }

    /// A call from `from` to `to` (E.164 numbers, or any other `From`/`To`),
    /// in the provider's format, aliases included (Twilio's and SignalWire's
    /// `Caller`, `Called`; Telnyx's `CallerId`).
    pub fn with_parties(mut self, from: &str, to: &str) -> Self {
        let cpaas = self.cpaas;
        let (from, to) = (cpaas.number(from), cpaas.number(to));
        self = self.with("From", &from).with("To", &to);
        if matches!(cpaas, Cpaas::Twilio | Cpaas::SignalWire) {
            self = self.with("Caller", &from).with("Called", &to);
        }
        // Telnyx's caller id shows the caller's number when no name came.
        if cpaas == Cpaas::Telnyx && self.get("CallerId").is_some() {
            self = self.with("CallerId", &from);
        }
        self
    }

    /// Signs and posts it.
    pub async fn post(&self, app: &TestApp) -> reqwest::Response {
        self.cpaas
            .sign_and_post(app, &self.path, &self.params)
            .await
    }

    /// Signs and posts it; the markup answered (200, the provider's type).
    pub async fn markup(&self, app: &TestApp) -> Element {
        self.cpaas.markup(app, &self.path, &self.params).await
    }
}
