//! Every other destination hears `call.taken` when one accepts, and
//! every session reaches an outcome.

use super::*;

// Taken elsewhere

/// On Redis the accept reaches another instance than the ring report and
/// the stream; on memory there is one.
async fn every_other_destination_hears_call_taken_when_one_accepts(backend: Backend) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let a = spawn_app(backend).await;
    let second = match &a.backend {
        Backend::Memory => None,
        _ => Some(
            spawn_app_with(
                a.backend.clone(),
                &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
            )
            .await,
        ),
    };
    let b = second.as_ref().unwrap_or(&a);
    let alice = a.register(ALICE, &alice_pick(Some(&receiver))).await;
    let mut laptop_stream = EventStream::open(b, "laptop", token(&alice, "laptop")).await;
    let id = ring_pick(&a, &alice).await;
    assert_eq!(laptop_stream.next_event().await.0, "call.ringing");
    for _ in 0..3 {
        assert_eq!(receiver.next().await.kind(), "call.ringing");
    }

    assert_answered(accept(b, token(&alice, "desk"), &id).await, "instructed").await;

    // On the other destinations' stream and webhooks, with the winner.
    let (kind, data) = laptop_stream.next_event().await;
    assert_eq!(kind, "call.taken");
    assert_eq!(data["data"]["destination_id"], "desk", "{data}");
    assert_eq!(data["data"]["session_id"], id.as_str(), "{data}");
    let mut told: Vec<String> = Vec::new();
    for _ in 0..2 {
        let taken = receiver.next().await;
        assert_eq!(taken.kind(), "call.taken", "{:?}", taken.body);
        assert!(taken.signature_valid);
        assert_eq!(taken.body["data"]["destination_id"], "desk");
        told.push(taken.path);
    }
    told.sort();
    assert_eq!(told, ["/laptop", "/pbx"], "not the winner");
}

#[tokio::test]
async fn every_other_destination_hears_call_taken_when_one_accepts_on_memory() {
    every_other_destination_hears_call_taken_when_one_accepts(Backend::Memory).await;
}

#[tokio::test]
async fn every_other_destination_hears_call_taken_when_one_accepts_across_two_instances() {
    every_other_destination_hears_call_taken_when_one_accepts(Backend::redis()).await;
}

// Every session reaches an outcome

/// Nobody accepts, the phone is told to let it ring and never says how the
/// call ended: at the end of its lifetime the session ends `expired` and the
/// destinations' offers are withdrawn (`call.cancelled`, `expired`), once,
/// whichever instance sweeps.
async fn a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl(
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let short = [("FORWARD_TIMEOUT_SECS", "1"), ("SESSION_TTL_SECS", "5")];
    let a = spawn_app_with(backend, &short).await;
    let b = match &a.backend {
        Backend::Memory => None,
        _ => {
            let prefix = [("REDIS_KEY_PREFIX", a.config.redis_key_prefix.as_str())];
            Some(spawn_app_with(a.backend.clone(), &[short.as_slice(), &prefix].concat()).await)
        }
    };
    let mut body = alice_pick(Some(&receiver));
    body["pick_timeout_secs"] = json!(3);
    let alice = a.register(ALICE, &body).await;
    let id = ring_pick(&a, &alice).await;
    for _ in 0..3 {
        assert_eq!(receiver.next().await.kind(), "call.ringing");
    }

    let mut withdrawn: Vec<String> = Vec::new();
    for _ in 0..3 {
        let cancelled = receiver.next().await;
        assert_eq!(cancelled.kind(), "call.cancelled", "{:?}", cancelled.body);
        assert_eq!(
            cancelled.body["data"]["reason"], "expired",
            "{:?}",
            cancelled.body
        );
        assert_eq!(cancelled.body["data"]["session_id"], id.as_str());
        withdrawn.push(cancelled.path);
    }
    withdrawn.sort();
    assert_eq!(withdrawn, ["/desk", "/laptop", "/pbx"], "once each");
    let reader = b.as_ref().unwrap_or(&a);
    let s = session(reader, &id).await;
    assert_eq!(s["state"], "expired", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");
    // Counted by whichever instance swept it.
    let mut metrics = String::new();
    for app in std::iter::once(&a).chain(&b) {
        let url = format!("{}/metrics", app.address);
        metrics += &app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    assert_eq!(
        metrics.matches(r#"outcome="expired"} 1"#).count(),
        1,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl_on_memory() {
    a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl(Backend::Memory).await;
}

#[tokio::test]
async fn a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl_across_instances_on_redis()
 {
    a_call_nobody_took_that_the_phone_never_reported_ends_expired_at_its_ttl(Backend::redis())
        .await;
}

// Stream limits

#[tokio::test]
async fn a_live_stream_past_the_limits_is_429_with_retry_after() {
    let app = spawn_app_with(
        Backend::Memory,
        &[("MAX_STREAMS_PER_DESTINATION", "2"), ("MAX_STREAMS", "3")],
    )
    .await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let _desk = [
        EventStream::open(&app, "desk", token(&alice, "desk")).await,
        EventStream::open(&app, "desk", token(&alice, "desk")).await,
    ];

    let third_for_desk = stream_request(&app, "desk", Some(token(&alice, "desk"))).await;
    assert!(third_for_desk.headers().contains_key("retry-after"));
    assert_error(third_for_desk, 429, "rate_limited").await;

    let _laptop = EventStream::open(&app, "laptop", token(&alice, "laptop")).await;
    let past_the_instance = stream_request(&app, "pbx", Some(token(&alice, "pbx"))).await;
    assert_error(past_the_instance, 429, "rate_limited").await;
}

#[tokio::test]
async fn rotating_the_tokens_revokes_the_capabilities_already_sent() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::redis()).await;
    let alice = app.register(ALICE, &alice_pick(Some(&receiver))).await;
    let id = ring_pick(&app, &alice).await;
    let ringing = receiver.take(3).await;
    let accept_url = ringing[0].body["data"]["accept_url"]
        .as_str()
        .unwrap()
        .to_owned();

    let rotated = app
        .client
        .put(app.url(&format!("/v1/subscribers/{ALICE}?rotate_tokens=true")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&alice_pick(Some(&receiver)))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    let fresh: Value = rotated.json().await.unwrap();

    assert_error(post_capability(&app, &accept_url).await, 404, "not_found").await;
    assert_eq!(
        session(&app, &id).await["selected_destination"],
        Value::Null
    );
    // The new destination token still answers the offer.
    let desk_token = fresh["destination_tokens"]["desk"].as_str().unwrap();
    assert_answered(accept(&app, desk_token, &id).await, "instructed").await;
}
