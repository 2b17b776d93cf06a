//! Black-box tests: the service on port 0, real Redis servers, real HTTP.

mod admin;
mod binary;
mod bus;
mod cache;
mod call_rules;
mod calls;
mod cpaas;
mod defences;
mod health;
mod helpers;
mod lists;
mod markup;
mod operations;
mod pick;
mod plivo;
mod receiver;
mod redis_modes;
mod ring;
mod rules;
mod servers;
mod signalwire;
mod startup;
mod store;
mod store_versions;
mod telnyx;
mod twilio;
