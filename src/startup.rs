//! Building and running the service: the store, the registry, the listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::ErrorHandlers;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use tracing_actix_web::TracingLogger;

use crate::config::Config;
use crate::domain::subscriber::SpecRules;
use crate::flow::{CallFlow, FlowSettings};
use crate::http::{self, error::render_framework_error, state::AppState};
use crate::notify::bus::EventBus;
use crate::notify::webhooks::{RetryPolicy, WebhookSender};
use crate::registry::Registry;
use crate::store::{LastKnownSubscribers, MemoryStore, RedisStore, Store};
use crate::templates::Templates;

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects the store, loads `SUBSCRIBERS_FILE`, and binds the listener
    /// (`PORT=0` binds a free port, see [`Application::port`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = match &config.redis_url {
            None => Arc::new(MemoryStore::new()),
            Some(url) => Arc::new(RedisStore::connect(
                url.expose_secret(),
                &config.redis_key_prefix,
            )?),
        };
        let last_known = Arc::new(LastKnownSubscribers::default());
        let registry = Registry::new(
            store.clone(),
            SpecRules {
                region: config.default_region,
                webhooks_can_be_signed: config.webhook_secret.is_some(),
            },
            last_known.clone(),
        );
        let templates =
            Templates::load(config.templates_dir.as_deref()).context("TEMPLATES_DIR")?;
        let webhooks = WebhookSender::new(
            config.webhook_secret.clone(),
            config.notify_timeout,
            RetryPolicy::default(),
        )?;
        let bus = match &config.redis_url {
            None => EventBus::in_process(),
            Some(url) => EventBus::redis(url.expose_secret(), &config.redis_key_prefix).await?,
        };
        let flow = CallFlow::new(
            store.clone(),
            last_known,
            webhooks,
            bus,
            templates,
            FlowSettings {
                public_base_url: config.public_base_url.clone(),
                region: config.default_region,
                session_ttl: config.session_ttl,
                can_answer_forwarded_calls: config.twilio_auth_token.is_some()
                    || config.plivo_auth_token.is_some(),
            },
        );
        if let Some(path) = &config.subscribers_file {
            let count = registry.load_file(path).await.context("SUBSCRIBERS_FILE")?;
            tracing::info!(count, file = %path.display(), "subscribers loaded");
        }

        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .with_context(|| format!("binding {}:{}", config.host, config.port))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        tracing::info!(
            port,
            store = if config.redis_url.is_some() {
                "redis"
            } else {
                "memory"
            },
            public_base_url = config.public_base_url.as_str(),
            "ringrelay listening"
        );

        let state = web::Data::new(AppState {
            config,
            store,
            registry,
            flow,
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(ErrorHandlers::new().default_handler(render_framework_error))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .configure(http::routes)
        })
        .listen(listener)
        .context("starting the HTTP server")?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
