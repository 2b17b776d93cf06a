//! Notifications to destinations: signed webhooks (Standard Webhooks) and
//! live event streams fed by the event bus.

pub mod bus;
pub(crate) mod events;
pub mod push;
pub(crate) mod resume;
pub mod retry;
pub mod signing;
pub(crate) mod webhooks;
