//! What every handler can reach: the services, and the few settings the
//! HTTP edge itself reads (never the store, never the whole configuration).

use std::sync::Arc;

use secrecy::SecretString;

use crate::config::Config;
use crate::domain::phone::Region;
use crate::flow::CallFlow;
use crate::flow::PublicBaseUrl;
use crate::metrics::Metrics;
use crate::notify::bus::StreamLimits;
use crate::providers::Providers;
use crate::subscribers::{AdminService, Registry};

pub struct AppState {
    pub settings: EdgeSettings,
    pub registry: Registry,
    pub admin: AdminService,
    pub flow: Arc<CallFlow>,
    pub metrics: Arc<Metrics>,
    /// Client addresses blocked for guessing credentials.
    pub guessers: super::guessing::Guessers,
    /// Cancelled when the service shuts down.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Web Push, when `VAPID_PRIVATE_KEY` is set.
    pub push: Option<crate::notify::push::PushSender>,
    /// Softphone tokens for `client` destinations.
    pub(crate) voice_tokens: crate::providers::voice_token::VoiceTokens,
}

/// The configuration the HTTP edge reads.
pub struct EdgeSettings {
    /// `ADMIN_TOKEN`; unset, the admin routes answer 503.
    pub admin_token: Option<SecretString>,
    /// The configured providers: their routes check signatures with their
    /// credentials.
    pub providers: Providers,
    /// What signatures are checked against.
    pub public_base_url: PublicBaseUrl,
    /// How national numbers in paths and bodies are read.
    pub default_region: Region,
    /// `TRUST_PROXY`.
    pub trust_proxy: bool,
    /// `MAX_STREAMS`, `MAX_STREAMS_PER_DESTINATION`.
    pub stream_limits: StreamLimits,
}

impl EdgeSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            admin_token: config.admin_token.clone(),
            providers: config.providers.clone(),
            public_base_url: config.public_base_url.clone(),
            default_region: config.default_region,
            trust_proxy: config.trust_proxy,
            stream_limits: StreamLimits {
                per_instance: config.max_streams,
                per_destination: config.max_streams_per_destination,
            },
        }
    }
}
