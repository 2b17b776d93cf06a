//! The event bus on Redis (docs/api.md "receives events from any instance",
//! reconnects): news published on one instance reaches every other,
//! also right after Redis restarts.

use std::time::Duration;

use ringrelay_server::domain::session::SessionId;
use ringrelay_server::notify::bus::EventBus;
use tokio::sync::broadcast;

use crate::helpers::{Backend, redis_connection, unique_prefix};

/// The next `n` session pings `watched` hears; a bounded wait, so that a
/// lost one fails the test instead of hanging it.
async fn next_pings(watched: &mut broadcast::Receiver<SessionId>, n: usize) -> Vec<SessionId> {
    let mut heard = Vec::with_capacity(n);
    while heard.len() < n {
        let ping = tokio::time::timeout(Duration::from_secs(10), watched.recv())
            .await
            .unwrap_or_else(|_| panic!("heard only {heard:?}"))
            .expect("the bus is open");
        heard.push(ping);
    }
    heard
}

#[tokio::test]
async fn news_published_right_after_a_redis_restart_reaches_the_other_instance() {
    let backend = Backend::redis();
    let redis = backend.test_redis();
    let prefix = unique_prefix();
    let publisher = EventBus::redis(redis_connection(&redis.url()), &prefix).await;
    let listener = EventBus::redis(redis_connection(&redis.url()), &prefix).await;
    let mut watched = listener.watch_sessions();
    let before = SessionId::generate();
    publisher.session_changed(&before).await;
    assert_eq!(next_pings(&mut watched, 1).await, [before]);

    // As soon as Redis is back, before the listener noticed it was gone.
    redis.restart();
    let after: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
    for id in &after {
        publisher.session_changed(id).await;
    }

    assert_eq!(
        next_pings(&mut watched, 3).await,
        after,
        "none lost, in order"
    );
}

#[tokio::test]
async fn an_instance_hears_its_own_news_once() {
    let backend = Backend::redis();
    let bus = EventBus::redis(
        redis_connection(&backend.test_redis().url()),
        &unique_prefix(),
    )
    .await;
    let mut watched = bus.watch_sessions();
    let ids: Vec<SessionId> = (0..2).map(|_| SessionId::generate()).collect();
    for id in &ids {
        bus.session_changed(id).await;
    }
    assert_eq!(next_pings(&mut watched, 2).await, ids);
    assert!(watched.try_recv().is_err(), "nothing twice");
}
