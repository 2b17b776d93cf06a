//! The list routes and the admin's live stream (docs/console.md):
//! `GET /v1/subscribers`, `GET /v1/sessions`, `GET /v1/events`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::CpaasTest as _;
use crate::helpers::{
    ADMIN_TOKEN, Backend, Cpaas, Registered, SWEEP_INTERVAL, TestApp, assert_error, spawn_app,
    spawn_app_with,
};
use crate::pick::EventStream;

const ALICE: &str = "+12025550199";
const BOB: &str = "+12025550198";
const FORWARDING_NUMBER: &str = "+12025550100";
const CALLER: &str = "+12025550302";

fn subscriber_body() -> Value {
    json!({
        "forwarding_number": FORWARDING_NUMBER,
        "destinations": [
            {"id": "laptop", "kind": "client", "address": "alice"},
            {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com"}
        ]
    })
}

async fn get(app: &TestApp, path_and_query: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path_and_query));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn get_json(app: &TestApp, path_and_query: &str, token: &str) -> Value {
    let response = get(app, path_and_query, Some(token)).await;
    assert_eq!(response.status(), 200, "{path_and_query}");
    response.json().await.unwrap()
}

/// A ring report from a caller of its own (a later report of the same
/// caller takes over); the session id. The clock moves on a second first,
/// so that each session began later than the one before.
async fn ring(app: &TestApp, device_token: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 9000;
    app.clock.advance(Duration::from_secs(1));
    let caller = format!("+1202555{:04}", 1000 + n);
    let response = app.ring(device_token, &json!({"caller": caller})).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["session_id"].as_str().unwrap().to_owned()
}

/// The phone reports that the caller gave up: the session ends cancelled.
async fn caller_gives_up(app: &TestApp, device_token: &str, session_id: &str) {
    let response = app
        .client
        .post(app.url(&format!("/v1/sessions/{session_id}/events")))
        .bearer_auth(device_token)
        .json(&json!({"event": "ended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

fn ids(page: &Value) -> Vec<String> {
    page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of `path` (which has a query already), following
/// `next_cursor`; the items under `key`, in order.
async fn every_page(app: &TestApp, path: &str, key: &str, token: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => path.to_owned(),
            Some(c) => format!("{path}&cursor={c}"),
        };
        let page = get_json(app, &url, token).await;
        pages += 1;
        items.extend(page[key].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(page["next_cursor"].is_null(), "{page}");
                return (items, pages);
            }
        }
        assert!(pages < 100, "paging ends");
    }
}

both_backends! {
    subscribers_page_by_cursor_in_number_order_each_seen_once => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let numbers = [
            "+12025550107", "+12025550101", "+12025550105", "+12025550103",
            "+12025550102", "+12025550106", "+12025550104",
        ];
        for number in numbers {
            app.register(number, &json!({
                "forwarding_number": "+12025550100",
                "destinations": [{"id": "desk", "kind": "client", "address": "desk"}]
            })).await;
        }
        let (items, pages) = every_page(&app, "/v1/subscribers?limit=3", "subscribers", ADMIN_TOKEN).await;
        assert_eq!(pages, 3);
        let listed: Vec<&str> = items.iter().map(|s| s["number"].as_str().unwrap()).collect();
        let mut sorted = numbers.to_vec();
        sorted.sort_unstable();
        assert_eq!(listed, sorted);
        // Each as GET shows it: no secrets.
        let one: Value = app.get_subscriber("+12025550104").await.json().await.unwrap();
        assert_eq!(items[3], one);
        let text = serde_json::to_string(&items).unwrap();
        assert!(!text.contains("token") && !text.contains("rrd_") && !text.contains("credentials"), "{text}");

        // The default page holds them all; a deleted subscriber is gone.
        app.delete_subscriber("+12025550101").await;
        let page = get_json(&app, "/v1/subscribers", ADMIN_TOKEN).await;
        assert_eq!(page["subscribers"].as_array().unwrap().len(), 6);
        assert!(page["next_cursor"].is_null());
        assert_eq!(page["subscribers"][0]["number"], "+12025550102");
    };

    sessions_list_newest_first_with_filters_pages_and_token_scope => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice = app.register(ALICE, &subscriber_body()).await;
        let bob = app.register(BOB, &subscriber_body()).await;
        let a1 = ring(&app, &alice.device_token).await;
        let b1 = ring(&app, &bob.device_token).await;
        let a2 = ring(&app, &alice.device_token).await;
        let a3 = ring(&app, &alice.device_token).await;
        caller_gives_up(&app, &alice.device_token, &a2).await;

        // The admin sees every subscriber's, newest first.
        let all = get_json(&app, "/v1/sessions", ADMIN_TOKEN).await;
        assert_eq!(ids(&all), [a3.as_str(), a2.as_str(), b1.as_str(), a1.as_str()]);
        assert!(all["next_cursor"].is_null());
        // Each as GET /v1/sessions/{id} shows it.
        let single: Value = app.get_session(ADMIN_TOKEN, &a2).await.json().await.unwrap();
        assert_eq!(all["sessions"][1], single);
        assert_eq!(single["state"], "cancelled");

        // Filters.
        let alices = get_json(&app, &format!("/v1/sessions?subscriber={ALICE}"), ADMIN_TOKEN).await;
        assert_eq!(ids(&alices), [a3.as_str(), a2.as_str(), a1.as_str()]);
        let national = get_json(&app, "/v1/sessions?subscriber=(202)%20555-0198", ADMIN_TOKEN).await;
        assert_eq!(ids(&national), [b1.as_str()]);
        let cancelled = get_json(&app, "/v1/sessions?state=cancelled", ADMIN_TOKEN).await;
        assert_eq!(ids(&cancelled), [a2.as_str()]);
        let open = get_json(&app, &format!("/v1/sessions?state=instructed&subscriber={ALICE}"), ADMIN_TOKEN).await;
        assert_eq!(ids(&open), [a3.as_str(), a1.as_str()]);

        // Pages.
        let (items, pages) = every_page(&app, "/v1/sessions?limit=1", "sessions", ADMIN_TOKEN).await;
        assert_eq!(pages, 4);
        let paged: Vec<&str> = items.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(paged, [a3.as_str(), a2.as_str(), b1.as_str(), a1.as_str()]);

        // A device or destination token sees its own subscriber's only;
        // naming another subscriber is 403.
        for token in [&alice.device_token, &alice.destination_tokens["pbx"]] {
            assert_eq!(ids(&get_json(&app, "/v1/sessions", token).await), [a3.as_str(), a2.as_str(), a1.as_str()]);
            assert_eq!(ids(&get_json(&app, &format!("/v1/sessions?subscriber={ALICE}"), token).await), [a3.as_str(), a2.as_str(), a1.as_str()]);
            let other = get(&app, &format!("/v1/sessions?subscriber={BOB}"), Some(token)).await;
            assert_error(other, 403, "forbidden").await;
        }
        assert_eq!(ids(&get_json(&app, "/v1/sessions", &bob.device_token).await), [b1.as_str()]);
    };

    ended_sessions_stay_listed_after_the_session_ttl => |backend: Backend| async move {
        // A live session lives 1.4 s after its last change here (the
        // forward deadline, 1 s, plus four sweeps); an ended one a day.
        let app = spawn_app_with(backend, &[("SESSION_TTL_SECS", "1"), ("FORWARD_TIMEOUT_SECS", "1")]).await;
        let live_session_lifetime = Duration::from_secs(1) + 4 * SWEEP_INTERVAL;
        let alice = app.register(ALICE, &subscriber_body()).await;
        let cancelled = ring(&app, &alice.device_token).await;
        caller_gives_up(&app, &alice.device_token, &cancelled).await;
        // Never forwarded: past its deadline it ends expired by itself.
        let expired = ring(&app, &alice.device_token).await;
        app.clock.advance(Duration::from_secs(2));
        app.wait_for_state(ADMIN_TOKEN, &expired, "expired").await;
        // Lifetimes run on the store's own clock, which no test moves: a
        // live session's passes.
        tokio::time::sleep(live_session_lifetime + SWEEP_INTERVAL).await;
        let listed = get_json(&app, "/v1/sessions", ADMIN_TOKEN).await;
        assert_eq!(ids(&listed), [expired.as_str(), cancelled.as_str()]);
        assert_eq!(listed["sessions"][0]["state"], "expired");
        assert_eq!(listed["sessions"][1]["state"], "cancelled");
        assert_eq!(app.get_session(&alice.device_token, &cancelled).await.status(), 200);
    };

    a_subscriber_lists_at_most_its_last_200_sessions => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        app.register(ALICE, &subscriber_body()).await;
        let bob = app.register(BOB, &subscriber_body()).await;
        let bobs = ring(&app, &bob.device_token).await;
        // Forwarded calls no ring report announced (ring reports are rate
        // limited): one session each.
        for _ in 0..205 {
            Cpaas::Twilio
                .inbound_call(&Cpaas::Twilio.new_call_id(), CALLER, FORWARDING_NUMBER, Some(ALICE))
                .markup(&app)
                .await;
        }
        let (alices, _) = every_page(&app, &format!("/v1/sessions?subscriber={ALICE}&limit=200"), "sessions", ADMIN_TOKEN).await;
        assert_eq!(alices.len(), 200);
        let distinct: BTreeSet<&str> = alices.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(distinct.len(), 200);
        // Another subscriber's history is its own.
        assert_eq!(ids(&get_json(&app, &format!("/v1/sessions?subscriber={BOB}"), ADMIN_TOKEN).await), [bobs.as_str()]);
        let (all, _) = every_page(&app, "/v1/sessions?limit=200", "sessions", ADMIN_TOKEN).await;
        assert_eq!(all.len(), 201);
    };

    bad_list_queries_are_422_naming_the_parameter => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        for (query, field) in [
            ("/v1/subscribers?limit=0", "limit"),
            ("/v1/subscribers?limit=201", "limit"),
            ("/v1/subscribers?limit=ten", "limit"),
            ("/v1/subscribers?cursor=not-a-cursor", "cursor"),
            ("/v1/sessions?limit=0", "limit"),
            ("/v1/sessions?cursor=bjorMTIwMjU1NTAxOTk", "cursor"),
            ("/v1/sessions?state=done", "state"),
            ("/v1/sessions?subscriber=abc", "subscriber"),
        ] {
            let body = assert_error(get(&app, query, Some(ADMIN_TOKEN)).await, 422, "invalid_field").await;
            let message = body["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("{field}:")), "{query}: {message}");
        }
        let page = get_json(&app, "/v1/subscribers?limit=200", ADMIN_TOKEN).await;
        assert_eq!(page, json!({"subscribers": [], "next_cursor": null}));
    };

    the_list_routes_and_the_admin_stream_need_the_admin_token => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice = app.register(ALICE, &subscriber_body()).await;
        for path in ["/v1/subscribers", "/v1/sessions", "/v1/events"] {
            assert_error(get(&app, path, None).await, 401, "unauthorized").await;
            assert_error(get(&app, path, Some("wrong-token")).await, 401, "unauthorized").await;
        }
        // A subscriber's token lists sessions, nothing else.
        for path in ["/v1/subscribers", "/v1/events"] {
            assert_error(get(&app, path, Some(&alice.device_token)).await, 401, "unauthorized").await;
        }
    };

    the_admin_stream_is_counted_against_max_streams => |backend: Backend| async move {
        let app = spawn_app_with(backend, &[("MAX_STREAMS", "1")]).await;
        let first = get(&app, "/v1/events", Some(ADMIN_TOKEN)).await;
        assert_eq!(first.status(), 200);
        let _open = EventStream::from_response(first);
        assert_error(get(&app, "/v1/events", Some(ADMIN_TOKEN)).await, 429, "rate_limited").await;
    };
}

/// Every event of two subscribers reaches one admin stream: on one
/// instance (memory), or across two instances sharing Redis.
async fn the_admin_stream_hears_every_subscriber(a: &TestApp, b: &TestApp) {
    let alice: Registered = a.register(ALICE, &subscriber_body()).await;
    let bob: Registered = a.register(BOB, &subscriber_body()).await;
    let response = get(a, "/v1/events", Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    let mut stream = EventStream::from_response(response);

    let on_a = ring(a, &alice.device_token).await;
    let on_b = ring(b, &bob.device_token).await;
    caller_gives_up(b, &bob.device_token, &on_b).await;

    let mut seen: Vec<(String, String, String)> = Vec::new();
    while seen.len() < 5 {
        let (kind, event) = stream.next_event().await;
        assert_eq!(
            event["type"],
            kind.as_str(),
            "the format of the destinations' streams"
        );
        assert!(event["timestamp"].is_string());
        seen.push((
            kind,
            event["data"]["subscriber"].as_str().unwrap().to_owned(),
            event["data"]["session_id"].as_str().unwrap().to_owned(),
        ));
    }
    let ringing = |who: &str, id: &str| ("call.ringing".to_owned(), who.to_owned(), id.to_owned());
    // One call.ringing per destination rung, then Bob's call.cancelled once.
    assert_eq!(
        seen.iter().filter(|e| **e == ringing(ALICE, &on_a)).count(),
        2,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|e| **e == ringing(BOB, &on_b)).count(),
        2,
        "{seen:?}"
    );
    assert_eq!(seen[4], ("call.cancelled".to_owned(), BOB.to_owned(), on_b));
}

#[tokio::test]
async fn the_admin_stream_hears_every_subscriber_on_memory() {
    let app = spawn_app(Backend::Memory).await;
    the_admin_stream_hears_every_subscriber(&app, &app).await;
}

#[tokio::test]
async fn the_admin_stream_hears_every_subscriber_across_two_instances_on_redis() {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    the_admin_stream_hears_every_subscriber(&a, &b).await;
}
