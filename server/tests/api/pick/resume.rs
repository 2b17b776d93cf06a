//! Streams that resume (docs/api.md): every event carries its position on
//! the bus as its `id:`, and a stream reopened with `Last-Event-ID`, on
//! this instance or another, first gets what it missed, then goes on live.

use super::*;

/// A position as the stream wrote it: `<ms>-<seq>`, ordered by both.
fn position(id: &str) -> (u64, u64) {
    let (ms, seq) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("{id} is a bus position"));
    (ms.parse().unwrap(), seq.parse().unwrap())
}

crate::both_backends! {
    every_event_carries_an_id_later_than_the_one_before => |backend| async move {
        let app = spawn_app(backend).await;
        let alice = app.register(ALICE, &alice_pick(None)).await;
        let mut stream = EventStream::open(&app, "laptop", token(&alice, "laptop")).await;
        let id = ring_pick(&app, &alice).await;
        assert_eq!(stream.next_event().await.0, "call.ringing");
        let ringing = stream.last_id.clone().expect("call.ringing has an id");
        device_event(&app, &alice.device_token, &id, "answered").await;
        assert_eq!(stream.next_event().await.0, "call.cancelled");
        let cancelled = stream.last_id.clone().unwrap();
        assert!(position(&cancelled) > position(&ringing), "{ringing} then {cancelled}");
    };

    a_stream_reopened_with_last_event_id_first_gets_the_call_that_rang_meanwhile => |backend| async move {
        let app = spawn_app(backend).await;
        let alice = app.register(ALICE, &alice_pick(None)).await;
        let laptop = token(&alice, "laptop");
        let mut stream = EventStream::open(&app, "laptop", laptop).await;
        let first = ring_pick(&app, &alice).await;
        assert_eq!(stream.next_event().await.0, "call.ringing");
        let seen = stream.last_id.clone().unwrap();
        drop(stream);

        // Rings while no stream is open, as during a reconnect.
        device_event(&app, &alice.device_token, &first, "ended").await;
        let second = ring_pick(&app, &alice).await;

        let mut resumed = EventStream::resume(&app, "laptop", laptop, &seen).await;
        let (kind, cancelled) = resumed.next_event().await;
        assert_eq!((kind.as_str(), &cancelled["data"]["session_id"]), ("call.cancelled", &json!(first)));
        let (kind, ringing) = resumed.next_event().await;
        assert_eq!(kind, "call.ringing");
        assert_ringing(&ringing["data"], &second, "laptop");
        // Then live, with nothing sent twice.
        device_event(&app, &alice.device_token, &second, "answered").await;
        let (kind, live) = resumed.next_event().await;
        assert_eq!((kind.as_str(), &live["data"]["session_id"]), ("call.cancelled", &json!(second)));
    };
}

#[tokio::test]
async fn a_stream_dropped_and_reopened_on_the_other_instance_gets_the_call_that_rings_meanwhile() {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    let alice = a.register(ALICE, &alice_pick(None)).await;
    let laptop = token(&alice, "laptop");
    let mut on_a = EventStream::open(&a, "laptop", laptop).await;
    let first = ring_pick(&a, &alice).await;
    assert_eq!(on_a.next_event().await.0, "call.ringing");
    device_event(&a, &alice.device_token, &first, "ended").await;
    assert_eq!(on_a.next_event().await.0, "call.cancelled");
    let seen = on_a.last_id.clone().unwrap();
    drop(on_a);

    // The call rings while the console reconnects, to the other instance.
    let ringing_call = ring_pick(&b, &alice).await;
    let mut on_b = EventStream::resume(&b, "laptop", laptop, &seen).await;
    let (kind, ringing) = on_b.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_ringing(&ringing["data"], &ringing_call, "laptop");
    // And the destination can take it from there.
    let accept_url = ringing["data"]["accept_url"].as_str().unwrap();
    assert_eq!(post_capability(&b, accept_url).await.status(), 200);

    // A stream opened without Last-Event-ID replays nothing: its first
    // event is the next one.
    let mut fresh = EventStream::open(&a, "laptop", laptop).await;
    device_event(&a, &alice.device_token, &ringing_call, "answered").await;
    let (kind, cancelled) = fresh.next_event().await;
    assert_eq!(kind, "call.cancelled", "{cancelled}");
}

#[tokio::test]
async fn the_admins_stream_resumes_with_every_subscribers_events() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let admin_stream = |last_id: Option<String>| {
        let mut request = app
            .client
            .get(app.url("/v1/events"))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(last_id) = last_id {
            request = request.header("Last-Event-ID", last_id);
        }
        request.send()
    };
    let mut stream = EventStream::from_response(admin_stream(None).await.unwrap());
    let first = ring_pick(&app, &alice).await;
    for _ in 0..3 {
        assert_eq!(stream.next_event().await.0, "call.ringing");
    }
    let seen = stream.last_id.clone().unwrap();
    drop(stream);
    device_event(&app, &alice.device_token, &first, "answered").await;

    let mut resumed = EventStream::from_response(admin_stream(Some(seen)).await.unwrap());
    let (kind, cancelled) = resumed.next_event().await;
    assert_eq!(
        (kind.as_str(), &cancelled["data"]["session_id"]),
        ("call.cancelled", &json!(first))
    );
}
