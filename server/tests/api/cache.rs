//! The subscriber cache across instances: what one instance writes, a voice
//! webhook on another uses, found in its cache (no store read) once the
//! bus's news has arrived.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cpaas::{BOB, BOB_DESK, CALLER, assert_unknown_call, bob, forwarded, nouns, only_dial};
use crate::helpers::{Backend, Cpaas, TestApp, spawn_app, spawn_app_with};

/// Bob's own forwarding number: a dedicated one, as the bench's.
const BOBS_NUMBER: &str = "+12025550177";
const BOB_NEW_DESK: &str = "+12025550203";
const DEADLINE: Duration = Duration::from_secs(10);

async fn two_instances() -> (TestApp, TestApp) {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    (a, b)
}

/// How many voice webhooks of `app` found their subscribers at `source`.
async fn lookups(app: &TestApp, source: &str) -> u64 {
    let line = format!("ringrelay_forwarded_call_subscriber_lookups_total{{source=\"{source}\"}} ");
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in {metrics}"))
        .parse()
        .unwrap()
}

async fn until_cache_is_fresh(app: &TestApp) {
    let deadline = Instant::now() + DEADLINE;
    while !app
        .metrics()
        .await
        .lines()
        .any(|l| l == "ringrelay_subscriber_cache_fresh 1")
    {
        assert!(Instant::now() < deadline, "the cache never became fresh");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends voice webhooks for Bob's number to `app` until `done` holds for
/// the markup; the last markup.
async fn voice_until(
    app: &TestApp,
    what: &str,
    done: impl Fn(&crate::helpers::Element) -> bool,
) -> crate::helpers::Element {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = forwarded(app, Cpaas::Twilio, CALLER, BOBS_NUMBER).await;
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "never {what}; last answer {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn dials(answer: &crate::helpers::Element, desk: &str) -> bool {
    answer.child_names() == ["Dial"] && nouns(only_dial(answer)) == [Cpaas::Twilio.phone_noun(desk)]
}

fn bob_at(desk: &str) -> Value {
    json!({
        "forwarding_number": BOBS_NUMBER,
        "destinations": [{"id": "desk", "kind": "phone", "address": desk}]
    })
}

#[tokio::test]
async fn a_subscriber_written_on_one_instance_is_answered_from_the_others_cache() {
    let (a, b) = two_instances().await;
    until_cache_is_fresh(&b).await;

    // Created on A: B asks the store while it does not know the number, and
    // answers from its cache once the news arrived.
    let registered = a.register(BOB, &bob(BOBS_NUMBER)).await;
    voice_until(&b, "dialed Bob", |answer| dials(answer, BOB_DESK)).await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (cache, store) = (lookups(&b, "cache").await, lookups(&b, "store").await);
        let answer = forwarded(&b, Cpaas::Twilio, CALLER, BOBS_NUMBER).await;
        assert!(dials(&answer, BOB_DESK), "{answer:?}");
        if lookups(&b, "cache").await == cache + 1 {
            assert_eq!(lookups(&b, "store").await, store, "no store read");
            break;
        }
        assert!(Instant::now() < deadline, "B never answered from its cache");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Changed on A: B dials the new desk, every webhook from its cache.
    let store = lookups(&b, "store").await;
    let response = a.put_subscriber(BOB, &bob_at(BOB_NEW_DESK)).await;
    assert_eq!(response.status(), 200);
    voice_until(&b, "dialed Bob's new desk", |answer| {
        dials(answer, BOB_NEW_DESK)
    })
    .await;
    assert_eq!(lookups(&b, "store").await, store, "no store read");

    // Do-not-disturb set through A: B's forwarded call skips the desk.
    let response = a
        .put_dnd(
            &registered.device_token,
            &json!({"until": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    voice_until(&b, "skipped the desk during do-not-disturb", |answer| {
        !dials(answer, BOB_NEW_DESK)
    })
    .await;
    assert_eq!(lookups(&b, "store").await, store, "no store read");

    // Deleted on A: B no longer knows the number.
    assert_eq!(a.delete_subscriber(BOB).await.status(), 204);
    voice_until(&b, "said the number is unknown", |answer| {
        answer.child_names() == [Cpaas::Twilio.say(), "Hangup"]
    })
    .await;
}

#[tokio::test]
async fn a_redis_that_restarts_empty_makes_the_cache_reload() {
    let (a, b) = two_instances().await;
    a.register(BOB, &bob(BOBS_NUMBER)).await;
    // B knows Bob from its cache.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let cache = lookups(&b, "cache").await;
        let answer = forwarded(&b, Cpaas::Twilio, CALLER, BOBS_NUMBER).await;
        if dials(&answer, BOB_DESK) && lookups(&b, "cache").await == cache + 1 {
            break;
        }
        assert!(Instant::now() < deadline, "B never answered from its cache");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A new, empty Redis: Bob is gone, and no news of it was published. A
    // cache that went on vouching would still dial him.
    a.backend.test_redis().restart();
    let answer = voice_until(&b, "said the number is unknown", |answer| {
        answer.child_names() == [Cpaas::Twilio.say(), "Hangup"]
    })
    .await;
    assert_unknown_call(Cpaas::Twilio, &answer);
}

/// Sends voice webhooks for `forwarding` to `app` until it dials `desk`.
async fn dials_eventually(app: &TestApp, forwarding: &str, desk: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = forwarded(app, Cpaas::Twilio, CALLER, forwarding).await;
        if dials(&answer, desk) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{forwarding} never dialed {desk}; last answer {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn two_instances_with_tiny_caches_agree_after_every_change() {
    let a = spawn_app_with(Backend::redis(), &[("SUBSCRIBER_CACHE_ENTRIES", "2")]).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[
            ("REDIS_KEY_PREFIX", &a.config.redis_key_prefix),
            ("SUBSCRIBER_CACHE_ENTRIES", "2"),
        ],
    )
    .await;
    // Five subscribers, each with a forwarding number of its own: more than
    // either cache holds, so that answers come from caches, evictions and
    // the store in turn.
    let subscribers: Vec<(String, String)> = (0..5)
        .map(|n| (format!("+1303555010{n}"), format!("+1720555010{n}")))
        .collect();
    let body = |forwarding: &str, desk: &str| {
        json!({
            "forwarding_number": forwarding,
            "destinations": [{"id": "desk", "kind": "phone", "address": desk}]
        })
    };
    for (number, forwarding) in &subscribers {
        a.register(number, &body(forwarding, BOB_DESK)).await;
    }
    for app in [&a, &b, &a, &b] {
        for (_, forwarding) in &subscribers {
            dials_eventually(app, forwarding, BOB_DESK).await;
        }
    }

    // Changed on either instance: both dial the new desk, never the old one
    // once they did.
    for (i, (number, forwarding)) in subscribers.iter().enumerate() {
        let writer = if i % 2 == 0 { &a } else { &b };
        let response = writer
            .put_subscriber(number, &body(forwarding, BOB_NEW_DESK))
            .await;
        assert_eq!(response.status(), 200);
    }
    for app in [&a, &b] {
        for (_, forwarding) in &subscribers {
            dials_eventually(app, forwarding, BOB_NEW_DESK).await;
        }
    }
    for app in [&b, &a] {
        for (_, forwarding) in &subscribers {
            let answer = forwarded(app, Cpaas::Twilio, CALLER, forwarding).await;
            assert!(dials(&answer, BOB_NEW_DESK), "{answer:?}");
        }
    }
    let cached = |metrics: String| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("ringrelay_subscriber_cache_entries "))
            .map(|n| n.parse::<u64>().unwrap())
    };
    assert!(cached(a.metrics().await).is_some_and(|n| n <= 2));
    assert!(cached(b.metrics().await).is_some_and(|n| n <= 2));
}
