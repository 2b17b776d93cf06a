//! What every handler can reach.

use std::sync::Arc;

use crate::config::Config;
use crate::flow::CallFlow;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::Store;

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    pub flow: CallFlow,
    pub metrics: Arc<Metrics>,
    /// Client addresses blocked for guessing credentials.
    pub guessers: super::guessing::Guessers,
    /// Cancelled when the service shuts down.
    pub shutdown: tokio_util::sync::CancellationToken,
}
