//! What the tests of every ringrelay package run against: real Redis
//! servers on free ports (`servers`), a real local webhook receiver that
//! checks signatures (`receiver`), and a fake of an outside API that records
//! what it is sent and answers what the test scripts (`fake_api`). A
//! dev-dependency only.

pub mod fake_api;
pub mod receiver;
pub mod servers;

/// The Standard Webhooks secret the services under test sign with and the
/// receiver checks.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
