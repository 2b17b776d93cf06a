//! Notifications to destinations: signed webhooks (Standard Webhooks) and,
//! later, the live event stream.

pub mod events;
pub mod signing;
pub mod webhooks;
