//! Building and running the service: the store, the registry, the listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing_actix_web::TracingLogger;

use crate::clock::WallClock;
use crate::config::{Config, RedisTarget};
use crate::domain::subscriber::SpecRules;
use crate::flow::{CallFlow, FlowSettings, SWEEP_INTERVAL};
use crate::http::state::{AppState, EdgeSettings};
use crate::http::{self, error::render_framework_error};
use crate::metrics::Metrics;
use crate::notify::bus::EventBus;
use crate::notify::push::PushSender;
use crate::notify::retry::RetryPolicy;
use crate::notify::webhooks::WebhookSender;
use crate::providers::apis::ProviderApis;
use crate::providers::voice_token::VoiceTokens;
use crate::redis::{Certificates, RedisConnection};
use crate::store::push::{MemoryPushStore, PushSubscriptionStore, RedisPushStore};
use crate::store::{MemoryStore, RedisStore, Store};
use crate::subscribers::{AdminService, Registry, Subscribers};
use crate::telemetry::RequestSpan;
use crate::templates::Templates;

/// What the service takes from where it runs rather than from its
/// variables. [`Inputs::default`] is a deployment's: the system clock, the
/// standard retry policy, a sweep a second; a test or a simulation sets a
/// clock it moves itself, and retries and sweeps that keep it waiting for
/// nothing.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The call flow's clock: when sessions reach each step, their
    /// deadlines, and the time the subscribers' rules read.
    pub clock: WallClock,
    /// How failed webhook deliveries are retried.
    pub retry: RetryPolicy,
    /// How often the sessions' deadlines are swept (on the system's time):
    /// an expiry is reported at most this late.
    pub sweep_interval: Duration,
}

impl Default for Inputs {
    fn default() -> Self {
        Self {
            clock: WallClock::System,
            retry: RetryPolicy::default(),
            sweep_interval: SWEEP_INTERVAL,
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    /// Cancelled on shutdown: ends the live event streams.
    streams: CancellationToken,
    /// Background webhook deliveries, drained on shutdown.
    deliveries: TaskTracker,
    /// The import of `SUBSCRIBERS_FILE`, when one runs: a failed one stops
    /// the service.
    import: Option<tokio::task::JoinHandle<anyhow::Result<u64>>>,
}

/// How long an idle keep-alive connection stays open.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long a new connection has to send a request's head.
const REQUEST_HEAD_DEADLINE: Duration = Duration::from_secs(5);

/// How long the start waits for the subscribers' warm-up (it goes on in
/// the background past that): `/healthz` answers within 2 s of start.
const WARM_UP_WAIT: Duration = Duration::from_secs(1);

/// How long in-flight requests may take to finish on shutdown.
const DRAIN_REQUESTS: Duration = Duration::from_secs(5);
/// How long queued notifications may take after that.
const DRAIN_NOTIFICATIONS: Duration = Duration::from_secs(5);

/// A first run that answers `ignore` to every ring report must say why at
/// start, naming what to set.
fn warn_about_what_makes_calls_ring_only_the_phone(config: &Config) {
    use crate::config::variables as v;
    if !config.providers.any_configured() {
        let credentials: Vec<&str> = crate::providers::PROVIDERS
            .iter()
            .filter_map(|p| p.variables.first().copied())
            .collect();
        tracing::warn!(
            "no CPaaS provider is configured: ring reports answer `ignore` (only the phone rings), \
             since a rejected call would reach nothing; set one of {}",
            credentials.join(", ")
        );
    }
    if config.admin_token.is_none() && config.subscribers_file.is_none() {
        tracing::warn!(
            "no subscriber can be registered: set {} (the admin API) or {}",
            v::ADMIN_TOKEN.name,
            v::SUBSCRIBERS_FILE.name
        );
    }
}

impl Application {
    /// Connects the store, loads `SUBSCRIBERS_FILE`, and binds the listener
    /// (`PORT=0` binds a free port, see [`Application::port`]), with a
    /// deployment's [`Inputs`].
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Inputs::default()).await
    }

    /// [`Application::build`], with these [`Inputs`].
    pub async fn build_with(config: Config, inputs: Inputs) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let streams = CancellationToken::new();
        let deliveries = TaskTracker::new();
        // One connection for the store and the bus, made here alone.
        let certificates = if config.redis_tls_insecure {
            Certificates::AcceptAny
        } else {
            Certificates::Verify
        };
        let redis = config
            .redis
            .as_ref()
            .map(|target| RedisConnection::open(target, certificates))
            .transpose()?;
        let store: Arc<dyn Store> = match &redis {
            None => Arc::new(MemoryStore::new()),
            Some(connection) => Arc::new(
                RedisStore::new(connection.clone(), &config.redis_key_prefix)
                    .with_forward_timeout(config.forward_timeout)
                    .with_metrics(metrics.clone()),
            ),
        };
        let push_store: Arc<dyn PushSubscriptionStore> = match &redis {
            None => Arc::new(MemoryPushStore::new()),
            Some(connection) => Arc::new(RedisPushStore::new(
                connection.clone(),
                &config.redis_key_prefix,
            )),
        };
        let bus = match redis {
            None => EventBus::in_process(),
            Some(connection) => EventBus::redis(connection, &config.redis_key_prefix).await,
        }
        .replaying(config.session_ttl);
        // The subscribers, the most recently used cached and kept current
        // by the bus (in the background: nothing is loaded before serving).
        let subscribers = Arc::new(Subscribers::new(
            store.clone(),
            bus.clone(),
            metrics.clone(),
            config.subscriber_cache_entries,
        ));
        tokio::spawn(subscribers.clone().keep(streams.clone()));
        // A few before serving when they come quickly (an instance started
        // just before Redis goes away can dial them); never holding up the
        // start for long, whatever the number of subscribers.
        let mut warming = tokio::spawn(subscribers.clone().warm_up());
        let _ = tokio::time::timeout(WARM_UP_WAIT, &mut warming).await;
        let registry = Registry::new(
            subscribers.clone(),
            SpecRules {
                region: config.default_region,
                webhooks_can_be_signed: config.webhook_secret.is_some(),
                webhook_targets: config.webhook_targets,
            },
        );
        let templates =
            Templates::load(config.templates_dir.as_deref()).context("TEMPLATES_DIR")?;
        let webhooks = WebhookSender::new(
            config.webhook_secret.clone(),
            config.webhook_targets,
            config.notify_timeout,
            inputs.retry,
            metrics.clone(),
            deliveries.clone(),
        )?;
        let push = config
            .vapid
            .clone()
            .map(|vapid| {
                PushSender::new(
                    vapid,
                    push_store,
                    config.webhook_targets,
                    config.notify_timeout,
                    inputs.retry,
                    metrics.clone(),
                    deliveries.clone(),
                )
            })
            .transpose()?;
        // Each provider's REST client, built once: for softphone tokens and
        // missed-call texts alike.
        let apis = Arc::new(ProviderApis::new(&config.voice_tokens));
        let flow = Arc::new(
            CallFlow::new(
                store.clone(),
                subscribers,
                webhooks,
                bus,
                metrics.clone(),
                templates,
                FlowSettings {
                    public_base_url: config.public_base_url.clone(),
                    region: config.default_region,
                    // A session must outlive its forward deadline, so that its
                    // expiry can be recorded and shown.
                    session_ttl: config
                        .session_ttl
                        .max(config.forward_timeout + 4 * inputs.sweep_interval),
                    history_ttl: config.history_ttl,
                    forward_timeout: config.forward_timeout,
                    can_answer_forwarded_calls: config.providers.any_configured(),
                    clock: inputs.clock,
                    sweep_interval: inputs.sweep_interval,
                },
            )
            .with_push(push.clone())
            .with_texts(apis.clone(), inputs.retry, deliveries.clone()),
        );
        // In the background: the listener opens now, whatever its size.
        let import = config
            .subscribers_file
            .as_deref()
            .map(|path| registry.import(path))
            .transpose()
            .context("SUBSCRIBERS_FILE")?
            .map(|import| import.done);

        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .with_context(|| format!("binding {}:{}", config.host, config.port))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        // Before "listening": whoever waits for that line (a test, a
        // supervisor) has every warning of the start by then.
        warn_about_what_makes_calls_ring_only_the_phone(&config);
        tracing::info!(
            port,
            store = config
                .redis
                .as_ref()
                .map_or("memory", RedisTarget::describe),
            public_base_url = config.public_base_url.as_str(),
            providers = ?config.providers,
            "ringrelay listening"
        );

        let state = web::Data::new(AppState {
            settings: EdgeSettings::from_config(&config),
            admin: AdminService::new(registry.clone(), flow.clone()),
            registry,
            flow,
            metrics,
            guessers: http::Guessers::default(),
            shutdown: streams.clone(),
            push,
            voice_tokens: VoiceTokens::new(&config.voice_tokens, &apis, config.providers.names()),
        });
        let sweeper = state.clone();
        let stop_sweeping = streams.clone();
        tokio::spawn(async move {
            sweeper.flow.sweep_deadlines(stop_sweeping).await;
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(ErrorHandlers::new().default_handler(render_framework_error))
                .wrap(from_fn(http::limit_guessing))
                .wrap(from_fn(http::read_body_within_deadline))
                .wrap(from_fn(http::record_request))
                .wrap(TracingLogger::<RequestSpan>::new())
                .app_data(state.clone())
                .configure(http::routes)
        })
        // Signals are ours (see `run_until`), so that streams close and
        // notifications drain before the process exits.
        .disable_signals()
        // Stated rather than left to the framework's defaults (README,
        // "Limits and safety"): an idle keep-alive connection closes after
        // 5 s, and a request's head must arrive within 5 s of connecting.
        .keep_alive(KEEP_ALIVE)
        .client_request_timeout(REQUEST_HEAD_DEADLINE)
        .shutdown_timeout(DRAIN_REQUESTS.as_secs())
        .listen(listener)
        .context("starting the HTTP server")?
        .run();
        Ok(Self {
            port,
            server,
            streams,
            deliveries,
            import,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is stopped some other way.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then stops gracefully: no new
    /// connections, live streams closed, in-flight requests finished (up to
    /// 5 s), queued notifications delivered (up to 5 s more). A failed
    /// import of `SUBSCRIBERS_FILE` stops it the same way, and is the error.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        let import_failed = async {
            match self.import {
                Some(import) => match import.await {
                    Ok(Err(err)) => format!("SUBSCRIBERS_FILE: {err:#}"),
                    Err(err) => format!("SUBSCRIBERS_FILE: the import stopped: {err}"),
                    Ok(Ok(_)) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        let failed = tokio::select! {
            () = shutdown => None,
            why = import_failed => Some(why),
        };
        tracing::info!("shutting down");
        self.streams.cancel();
        handle.stop(true).await;
        self.deliveries.close();
        if tokio::time::timeout(DRAIN_NOTIFICATIONS, self.deliveries.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.deliveries.len(),
                "shutdown left notifications undelivered"
            );
        }
        let served = server
            .await
            .unwrap_or_else(|err| Err(std::io::Error::other(err)));
        match failed {
            Some(why) => Err(std::io::Error::other(why)),
            None => served,
        }
    }
}
