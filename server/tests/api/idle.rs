//! What an idle instance costs Redis (docs/operations.md): at most 120 commands a
//! minute, whatever the number of subscribers and shards. Measured on the
//! test's own Redis, which no one else talks to, with `INFO commandstats`,
//! over a window of the faster sweeps of the apps under test, and counted
//! per sweep (a service sweeps every second).

use std::time::Duration;

use crate::helpers::{Backend, SWEEP_INTERVAL, TestApp, spawn_app};

/// One command on a connection of the test's own to the app's Redis.
fn query<T: redis::FromRedisValue>(app: &TestApp, cmd: &redis::Cmd) -> T {
    let client = redis::Client::open(app.backend.test_redis().url()).unwrap();
    cmd.query(&mut client.get_connection().unwrap()).unwrap()
}

/// Commands Redis ran since its counters were reset, but the test's own.
fn commands_run(app: &TestApp) -> u64 {
    let stats: String = query(app, redis::cmd("INFO").arg("commandstats"));
    stats
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter(|line| !line.starts_with("info:") && !line.starts_with("config|"))
        .filter_map(|line| {
            let calls = line.split("calls=").nth(1)?.split(',').next()?;
            calls.parse::<u64>().ok()
        })
        .sum()
}

#[tokio::test]
async fn an_idle_instance_sends_redis_at_most_120_commands_a_minute_whatever_the_shards() {
    let app = spawn_app(Backend::redis()).await;
    // Subscribers in most of the 64 shards, and sessions in theirs: an
    // instance that visited every shard would send 64 commands a second.
    for n in 0..100 {
        let number = format!("+1303555{n:04}");
        let registered = app
            .register(
                &number,
                &serde_json::json!({
                    "forwarding_number": format!("+1720555{n:04}"),
                    "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
                }),
            )
            .await;
        if n % 10 == 0 {
            let report = app
                .ring(
                    &registered.device_token,
                    &serde_json::json!({"caller": "+12025550302"}),
                )
                .await;
            assert_eq!(report.status(), 201);
        }
    }
    // The first sweeps look at every shard once (at start, and for the
    // sessions just written); then only the index is read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    query::<()>(&app, redis::cmd("CONFIG").arg("RESETSTAT"));

    // A measuring window, not a wait for something to happen.
    let window = Duration::from_secs(6);
    tokio::time::sleep(window).await;

    // The apps under test sweep every 100 ms, a service every second: what
    // one sweep costs, counted at the service's pace (the bus's blocking
    // reads, 3 a minute, are in the count already).
    let commands = commands_run(&app);
    let sweeps = window.as_millis() / SWEEP_INTERVAL.as_millis();
    let per_sweep = commands as f64 / sweeps as f64;
    let per_minute = per_sweep * 60.0;
    eprintln!(
        "an idle instance: {commands} commands over {sweeps} sweeps: {per_minute:.0} a minute at a sweep a second"
    );
    assert!(
        per_minute <= 120.0,
        "an idle instance sends {per_minute:.0} commands a minute ({commands} over {sweeps} sweeps)"
    );
}
