//! The three ways to deploy Redis (docs/deploy.md): one server, a Redis
//! Cluster, a Sentinel-managed primary; and outages that heal on each.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use ringrelay_server::domain::session::SessionId;
use ringrelay_server::notify::bus::EventBus;
use ringrelay_server::redis::{Certificates, RedisConnection};
use serde_json::json;

use crate::cpaas::{ALICE, ALICE_DESK, CALLER, SHARED, alice, forwarded, nouns, only_dial, ring};
use crate::helpers::{
    ADMIN_TOKEN, Backend, Cpaas, TestApp, assert_error, spawn_app, spawn_app_with, test_config,
    unique_prefix,
};
use crate::servers::{TestRedisCluster, TestTlsRedis};

/// Twilio hangs up on a webhook after 15 s; the answer must come well before.
const VOICE_DEADLINE: Duration = Duration::from_secs(5);
/// docs/deploy.md: everything works again within 5 s of the store returning.
const HEAL_DEADLINE: Duration = Duration::from_secs(5);

#[test]
fn two_redis_variables_stop_the_start_naming_both() {
    let cases = [
        [
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000"),
        ],
        [
            ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000"),
            ("REDIS_SENTINEL_URLS", "127.0.0.1:26379"),
        ],
        [
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("REDIS_SENTINEL_URLS", "127.0.0.1:26379"),
        ],
    ];
    for vars in cases {
        let mut vars = vars.to_vec();
        vars.push(("REDIS_SENTINEL_MASTER", "mymaster"));
        let err = test_config(&Backend::Memory, &vars).expect_err("two Redis variables");
        let message = err.to_string();
        for (name, _) in &vars[..2] {
            assert!(message.contains(name), "{message} names {name}");
        }
    }
}

/// Polls `attempt` until it holds, for up to `deadline`; how long it took.
async fn within<F: Future<Output = bool>>(
    what: &str,
    deadline: Duration,
    mut attempt: impl FnMut() -> F,
) -> Duration {
    let started = Instant::now();
    loop {
        if attempt().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(app: &TestApp) -> u16 {
    match app.client.get(app.url("/readyz")).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Whether the store takes a write and reads it back, through the API.
async fn writes_and_reads(app: &TestApp) -> bool {
    let written = app
        .client
        .put(app.url(&format!("/v1/subscribers/{ALICE}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&alice())
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    written && app.get_subscriber(ALICE).await.status() == 200
}

// ---------------------------------------------------------------------------
// One server: a connection per HTTP worker's runtime

/// An HTTP worker's commands go through a connection made on its thread's
/// current-thread runtime: a thread that runs one runtime after another
/// keeps reaching Redis (its connection of the runtime before went with
/// that runtime's tasks), and so does the main multi-thread runtime.
#[test]
fn a_thread_running_one_runtime_after_another_keeps_reaching_redis() {
    let Backend::Redis(redis) = Backend::redis() else {
        unreachable!("a standalone Redis")
    };
    let target = Backend::Redis(redis.clone()).redis_target().unwrap();
    // Opened on the main runtime, as the service opens it.
    let shared = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let connection = {
        let _main = shared.enter();
        RedisConnection::open(&target, Certificates::Verify).unwrap()
    };
    let key = format!("{}:per-worker", unique_prefix());
    let current_thread = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };

    for (n, runtime) in [current_thread(), current_thread()].into_iter().enumerate() {
        let mut connection = connection.clone();
        let hits: i64 = runtime
            .block_on(async { connection.incr(&key, 1).await })
            .unwrap_or_else(|err| panic!("runtime {n}: {err}"));
        assert_eq!(hits, n as i64 + 1);
        drop(runtime);
    }
    let mut connection = connection.clone();
    let hits: i64 = shared
        .block_on(async { connection.incr(&key, 1).await })
        .unwrap();
    assert_eq!(hits, 3);
}

// ---------------------------------------------------------------------------
// TLS with a certificate no public root vouches for (Heroku Redis)

/// A PING on a connection to `url` checking certificates as `certificates`.
async fn ping_over_tls(url: &str, certificates: Certificates) -> redis::RedisResult<String> {
    let target = ringrelay_server::config::RedisTarget::standalone(url);
    let mut connection = RedisConnection::open(&target, certificates).unwrap();
    redis::cmd("PING").query_async(&mut connection).await
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_naming_redis_tls_insecure_and_accepted_with_it() {
    let redis = TestTlsRedis::start();

    let refused = ping_over_tls(&redis.url(), Certificates::Verify)
        .await
        .expect_err("a certificate of an unknown CA is refused");
    assert!(
        refused.to_string().contains("REDIS_TLS_INSECURE=true"),
        "{refused}"
    );
    assert_eq!(
        ping_over_tls(&redis.url(), Certificates::AcceptAny)
            .await
            .unwrap(),
        "PONG"
    );
    // The URL's own `#insecure` keeps working without the variable.
    let marked = format!("{}/#insecure", redis.url());
    assert_eq!(
        ping_over_tls(&marked, Certificates::Verify).await.unwrap(),
        "PONG",
        "{}",
        redis.log()
    );

    // The service: REDIS_TLS_INSECURE=true is what makes it ready.
    let url = redis.url();
    let refusing = spawn_app_with(Backend::Memory, &[("REDIS_URL", &url)]).await;
    assert_eq!(readyz(&refusing).await, 503);
    let accepting = spawn_app_with(
        Backend::Memory,
        &[("REDIS_URL", &url), ("REDIS_TLS_INSECURE", "true")],
    )
    .await;
    within("the service is ready over TLS", HEAL_DEADLINE, || {
        writes_and_reads(&accepting)
    })
    .await;
}

// ---------------------------------------------------------------------------
// Redis Cluster: what the connection layer promises, whatever the key layout

fn cluster_connection(cluster: &'static TestRedisCluster) -> RedisConnection {
    let target = Backend::Cluster(cluster).redis_target().unwrap();
    RedisConnection::open(&target, Certificates::Verify).unwrap()
}

#[tokio::test]
async fn scripts_run_on_the_cluster_when_their_keys_share_a_hash_tag() {
    let cluster = TestRedisCluster::shared();
    let mut connection = cluster_connection(cluster);
    assert!(connection.is_cluster());
    let script = redis::Script::new(
        r"
        redis.call('SET', KEYS[1], ARGV[1])
        redis.call('SET', KEYS[2], ARGV[1])
        return redis.call('GET', KEYS[2])",
    );
    // No node knows the script yet: the first call on each is NOSCRIPT,
    // and the script is loaded where the keys are.
    for node in &cluster.nodes {
        let _: () = node.query(redis::cmd("SCRIPT").arg("FLUSH")).unwrap();
    }
    let prefix = unique_prefix();
    let mut nodes_used = BTreeSet::new();
    for n in 0..24 {
        let (a, b) = (format!("{{{prefix}-{n}}}:a"), format!("{{{prefix}-{n}}}:b"));
        let value = format!("v{n}");
        let read: String = script
            .key(&a)
            .key(&b)
            .arg(&value)
            .invoke_async(&mut connection)
            .await
            .unwrap_or_else(|err| panic!("script on {a}: {err}"));
        assert_eq!(read, value);
        let node = cluster.node_of(&a);
        let stored: String = node.query(redis::cmd("GET").arg(&b)).unwrap();
        assert_eq!(stored, value, "written on the node that serves the tag");
        nodes_used.insert(node.port);
    }
    assert_eq!(nodes_used.len(), 3, "the tags spread over every node");

    // Plain commands and AsyncCommands route by key too.
    let key = format!("{prefix}:plain");
    let _: () = connection.set(&key, "x").await.unwrap();
    let read: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(read, "x");

    // A script whose keys span slots is refused by the cluster, not
    // silently run on one node.
    let spanning: redis::RedisResult<String> = script
        .key(format!("{prefix}:one"))
        .key(format!("{prefix}:other"))
        .arg("v")
        .invoke_async(&mut connection)
        .await;
    let err = spanning.expect_err("keys of two slots");
    assert!(
        err.to_string().contains("CROSSSLOT") || err.to_string().contains("slot"),
        "{err}"
    );
}

#[tokio::test]
async fn the_bus_crosses_instances_on_the_cluster() {
    let cluster = TestRedisCluster::shared();
    let prefix = unique_prefix();
    let publisher = EventBus::redis(cluster_connection(cluster), &prefix).await;
    let listener = EventBus::redis(cluster_connection(cluster), &prefix).await;
    let mut watched = listener.watch_sessions();
    let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
    for id in &ids {
        publisher.session_changed(id).await;
    }
    let mut heard = Vec::new();
    while heard.len() < ids.len() {
        let id = tokio::time::timeout(Duration::from_secs(10), watched.recv())
            .await
            .unwrap_or_else(|_| panic!("heard only {heard:?}"))
            .unwrap();
        heard.push(id);
    }
    assert_eq!(heard, ids, "none lost, in order");
}

// ---------------------------------------------------------------------------
// Sentinel: a failover is followed without a restart

#[tokio::test]
async fn the_service_follows_a_sentinel_failover_without_a_restart() {
    let app = spawn_app(Backend::sentinel()).await;
    let deployment = app.backend.test_sentinel();
    let alice_reg = app.register(ALICE, &alice()).await;
    ring(&app, &alice_reg, Some(CALLER)).await;
    // Two more instances' buses, to hear news across the failover.
    let target = app.backend.redis_target().unwrap();
    let prefix = unique_prefix();
    let publisher = EventBus::redis(
        RedisConnection::open(&target, Certificates::Verify).unwrap(),
        &prefix,
    )
    .await;
    let listener = EventBus::redis(
        RedisConnection::open(&target, Certificates::Verify).unwrap(),
        &prefix,
    )
    .await;
    let mut watched = listener.watch_sessions();
    let old = deployment.primary();
    let old_port = old.port;
    // Every write so far reached the replica before the primary goes.
    let synced: i64 = old.query(redis::cmd("WAIT").arg(1).arg(5000)).unwrap();
    assert_eq!(synced, 1, "the replica acknowledged the writes");

    old.kill();
    let killed_at = Instant::now();
    let new = deployment.wait_for_new_primary(old_port, Duration::from_secs(20));
    assert_ne!(new.port, old_port);

    // Same deadline from the kill, failover included.
    let deadline = Duration::from_secs(15).saturating_sub(killed_at.elapsed());
    within("ready on the new primary", deadline, || async {
        readyz(&app).await == 200
    })
    .await;
    within("writes on the new primary", deadline, || async {
        writes_and_reads(&app).await
    })
    .await;
    let response = app
        .ring(&alice_reg.device_token, &json!({"caller": CALLER}))
        .await;
    assert_eq!(response.status(), 201, "a ring report is taken again");

    // The bus's reader found the new primary too: news crosses again. (News
    // published while there was no primary is lost to the others; the
    // publisher heard it itself.)
    let started = Instant::now();
    loop {
        let id = SessionId::generate();
        publisher.session_changed(&id).await;
        let heard = tokio::time::timeout(Duration::from_millis(500), async {
            while let Ok(ping) = watched.recv().await {
                if ping == id {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        if heard {
            break;
        }
        assert!(
            started.elapsed() < deadline,
            "news across instances again: not within {deadline:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Outages that heal: a hung store (SIGSTOP), not a refused one

/// With the store hung, a voice webhook still dials in good time, a ring
/// report is refused 503 (the phone lets it ring) and `/readyz` says so;
/// once it answers again, everything works within 5 s.
async fn a_hung_store_heals(app: TestApp, freeze: impl Fn(), thaw: impl Fn()) {
    let alice_reg = app.register(ALICE, &alice()).await;
    ring(&app, &alice_reg, Some(CALLER)).await;

    freeze();
    let started = Instant::now();
    let answer = forwarded(&app, Cpaas::Twilio, CALLER, SHARED).await;
    let took = started.elapsed();
    assert!(took < VOICE_DEADLINE, "the voice webhook took {took:?}");
    assert_eq!(
        nouns(only_dial(&answer)),
        [Cpaas::Twilio.phone_noun(ALICE_DESK)]
    );
    let refused = app
        .ring(&alice_reg.device_token, &json!({"caller": CALLER}))
        .await;
    assert_error(refused, 503, "store_unavailable").await;
    let not_ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_error(not_ready, 503, "store_unavailable").await;

    thaw();
    within("ready again", HEAL_DEADLINE, || async {
        readyz(&app).await == 200
    })
    .await;
    within("ring reports taken again", HEAL_DEADLINE, || async {
        app.ring(&alice_reg.device_token, &json!({"caller": CALLER}))
            .await
            .status()
            == 201
    })
    .await;
    assert!(writes_and_reads(&app).await);
}

#[tokio::test]
async fn a_hung_standalone_redis_heals() {
    let app = spawn_app(Backend::redis()).await;
    let redis = match &app.backend {
        Backend::Redis(redis) => redis.clone(),
        _ => unreachable!(),
    };
    a_hung_store_heals(app, || redis.freeze(), || redis.thaw()).await;
}

#[tokio::test]
async fn a_hung_sentinel_deployment_heals() {
    // The whole deployment hangs: a primary frozen alone would be failed
    // over by the sentinel, which is the other test.
    let backend = Backend::sentinel();
    let deployment = backend.test_sentinel();
    let servers = [
        &deployment.servers[0],
        &deployment.servers[1],
        &deployment.sentinel,
    ];
    let freeze = || servers.iter().for_each(|s| s.freeze());
    let thaw = || servers.iter().for_each(|s| s.thaw());
    a_hung_store_heals(spawn_app(backend.clone()).await, freeze, thaw).await;
}

#[tokio::test]
async fn a_hung_cluster_heals() {
    // A cluster of its own, since it hangs.
    let cluster: &'static TestRedisCluster = Box::leak(Box::new(TestRedisCluster::start()));
    let app = spawn_app(Backend::Cluster(cluster)).await;
    a_hung_store_heals(
        app,
        || cluster.nodes.iter().for_each(|n| n.freeze()),
        || cluster.nodes.iter().for_each(|n| n.thaw()),
    )
    .await;
}

// ---------------------------------------------------------------------------
// A service started while the store is away works once it is back

#[tokio::test]
async fn a_service_started_while_redis_is_down_works_once_it_is_up() {
    let backend = Backend::redis();
    backend.test_redis().stop();
    let app = spawn_app(backend).await;
    assert_eq!(readyz(&app).await, 503);

    app.backend.test_redis().restart();
    within("ready once Redis is up", HEAL_DEADLINE, || async {
        readyz(&app).await == 200
    })
    .await;
    within("writes once Redis is up", HEAL_DEADLINE, || async {
        writes_and_reads(&app).await
    })
    .await;
}

#[tokio::test]
async fn a_service_started_while_the_sentinel_deployment_hangs_works_once_it_answers() {
    let backend = Backend::sentinel();
    let deployment = backend.test_sentinel();
    let servers = [
        &deployment.servers[0],
        &deployment.servers[1],
        &deployment.sentinel,
    ];
    servers.iter().for_each(|s| s.freeze());
    let app = spawn_app(backend.clone()).await;
    assert_eq!(readyz(&app).await, 503);

    servers.iter().for_each(|s| s.thaw());
    within(
        "ready once the deployment answers",
        HEAL_DEADLINE,
        || async { readyz(&app).await == 200 },
    )
    .await;
    within(
        "writes once the deployment answers",
        HEAL_DEADLINE,
        || async { writes_and_reads(&app).await },
    )
    .await;
}

#[tokio::test]
async fn a_service_started_while_the_cluster_hangs_works_once_it_answers() {
    // A cluster of its own, since it hangs.
    let cluster: &'static TestRedisCluster = Box::leak(Box::new(TestRedisCluster::start()));
    cluster.nodes.iter().for_each(|n| n.freeze());
    let app = spawn_app(Backend::Cluster(cluster)).await;
    assert_eq!(readyz(&app).await, 503);

    cluster.nodes.iter().for_each(|n| n.thaw());
    within("ready once the cluster answers", HEAL_DEADLINE, || async {
        readyz(&app).await == 200
    })
    .await;
    within("writes once the cluster answers", HEAL_DEADLINE, || async {
        writes_and_reads(&app).await
    })
    .await;
}
