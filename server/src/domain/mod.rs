//! The call-flow domain: subscribers, their destinations and credentials,
//! sessions, and the rules that hold between them. Nothing here knows HTTP,
//! a provider or a store.

pub mod credentials;
pub mod dial;
pub mod forwarding;
pub mod phone;
pub mod rules;
pub mod session;
pub mod subscriber;
pub mod webhook_target;
