//! Black-box tests: the service on port 0, real Redis servers, real HTTP.

use ringrelay_testkit::{receiver, servers};

mod admin;
mod bus;
mod cache;
mod call_rules;
mod calls;
mod cpaas;
mod defences;
mod deploy_files;
mod health;
mod helpers;
mod idle;
mod lists;
mod me;
mod operations;
mod pick;
mod plivo;
mod push;
mod redis_modes;
mod ring;
mod rules;
mod signalwire;
mod startup;
mod store;
mod store_versions;
mod telnyx;
mod twilio;
mod voice_tokens;
