//! ringrelay: lets a mobile subscriber take calls on other devices.
//!
//! A phone app reports a ringing call; the service notifies the subscriber's
//! secondary destinations, tells the phone to reject, and answers the call
//! the carrier forwards to a CPaaS number with markup that dials the chosen
//! destination. See README.md for the whole flow.

pub mod clock;
pub mod config;
pub mod domain;
pub mod flow;
// The fuzz targets: for the AFL harness (feature `fuzzing`) and for this
// library's unit tests, which run them over their seeds; not in the server.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod input;
pub mod metrics;
pub mod notify;
pub(crate) mod outbound;
pub mod providers;
pub mod redis;
pub mod rotation;
pub mod startup;
pub mod store;
pub mod subscribers;
pub mod telemetry;
pub mod templates;
