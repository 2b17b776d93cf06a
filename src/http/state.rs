//! What every handler can reach.

use std::sync::Arc;

use crate::config::Config;
use crate::flow::CallFlow;
use crate::registry::Registry;
use crate::store::Store;

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    pub flow: CallFlow,
}
