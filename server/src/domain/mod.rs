//! The call-flow domain: subscribers, their destinations and credentials,
//! sessions, and the rules that hold between them. Nothing here knows HTTP,
//! a provider or a store. The leaves (`time`, `ids`, `error`, `phone`,
//! `caller_context`) name nothing else of the domain; `rules` reads only
//! those; `subscriber` holds its rules; `credentials` belong to a
//! subscriber; a `session` follows all of them.

pub mod caller_context;
pub mod credentials;
pub(crate) mod error;
pub(crate) mod forwarding;
pub mod ids;
pub mod phone;
pub mod push;
pub mod rules;
pub mod session;
pub mod subscriber;
pub mod time;
pub mod webhook_target;
