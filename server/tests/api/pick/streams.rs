//! The destinations' live streams: cancellations reach them (and the
//! webhooks), and who may open one.

use super::*;

// 7. Cancellation reaches streams and webhooks

#[tokio::test]
async fn stream_and_webhook_receive_call_cancelled_when_the_phone_answers() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let mut body = alice_pick(None);
    body["destinations"][0]["webhook_url"] = json!(receiver.url("/desk"));
    let alice = app.register(ALICE, &body).await;
    let mut stream = EventStream::open(&app, "laptop", token(&alice, "laptop")).await;
    let id = ring_pick(&app, &alice).await;
    let (kind, ringing) = stream.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_ringing(&ringing["data"], &id, "laptop");
    let hooked = receiver.next().await;
    assert_eq!(hooked.kind(), "call.ringing");
    let desk_accept = hooked.body["data"]["accept_url"]
        .as_str()
        .unwrap()
        .to_owned();

    device_event(&app, &alice.device_token, &id, "answered").await;

    let (kind, cancelled) = stream.next_event().await;
    assert_eq!(kind, "call.cancelled", "{cancelled}");
    assert_eq!(cancelled["type"], "call.cancelled");
    assert_eq!(cancelled["data"]["session_id"], id);
    assert_eq!(cancelled["data"]["reason"], "answered_on_phone");
    let hooked = receiver.next().await;
    assert_eq!(hooked.kind(), "call.cancelled", "{:?}", hooked.body);
    assert!(hooked.signature_valid);
    assert_eq!(hooked.body["data"]["session_id"], id);
    assert_eq!(hooked.body["data"]["reason"], "answered_on_phone");
    assert_eq!(session(&app, &id).await["state"], "cancelled");

    assert_error(
        accept(&app, token(&alice, "laptop"), &id).await,
        410,
        "session_over",
    )
    .await;
    assert_error(
        post_capability(&app, &desk_accept).await,
        410,
        "session_over",
    )
    .await;
}

#[tokio::test]
async fn stream_and_webhook_receive_call_cancelled_when_the_subscriber_is_deleted_while_ringing() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let mut body = alice_pick(None);
    body["destinations"][0]["webhook_url"] = json!(receiver.url("/desk"));
    let alice = app.register(ALICE, &body).await;
    let mut stream = EventStream::open(&app, "pbx", token(&alice, "pbx")).await;
    let id = ring_pick(&app, &alice).await;
    let (kind, ringing) = stream.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_ringing(&ringing["data"], &id, "pbx");
    let hooked = receiver.next().await;
    assert_eq!(hooked.kind(), "call.ringing");
    let desk_accept = hooked.body["data"]["accept_url"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(app.delete_subscriber(ALICE).await.status(), 204);

    let (kind, cancelled) = stream.next_event().await;
    assert_eq!(kind, "call.cancelled", "{cancelled}");
    assert_eq!(cancelled["data"]["session_id"], id);
    assert_eq!(cancelled["data"]["reason"], "subscriber_deleted");
    let hooked = receiver.next().await;
    assert_eq!(hooked.kind(), "call.cancelled", "{:?}", hooked.body);
    assert!(hooked.signature_valid);
    assert_eq!(hooked.body["data"]["session_id"], id);
    assert_eq!(hooked.body["data"]["reason"], "subscriber_deleted");
    let s = session(&app, &id).await;
    assert_eq!(s["state"], "cancelled", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");

    assert_error(
        post_capability(&app, &desk_accept).await,
        410,
        "session_over",
    )
    .await;
}

// Regression: a cancelled pick-mode session was once brought back to
// `instructed` when its pick timeout passed under a long-poll.
#[tokio::test]
async fn cancelled_session_stays_cancelled_when_the_pick_timeout_passes_under_a_long_poll() {
    let app = spawn_app(Backend::Memory).await;
    let mut body = alice_pick(None);
    body["pick_timeout_secs"] = json!(3);
    let alice = app.register(ALICE, &body).await;
    let id = ring_pick(&app, &alice).await;
    device_event(&app, &alice.device_token, &id, "answered").await;
    let cancelled = session(&app, &id).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");

    // Whatever the phone is told now, it is never to reject the call.
    let long_poll = spawn_long_poll(&app, &alice.device_token, &id);
    app.clock.advance(Duration::from_secs(4));
    assert_ne!(long_poll_result(long_poll).await, "reject");

    let s = session(&app, &id).await;
    assert_eq!(
        s["state"], "cancelled",
        "an outcome takes no more changes: {s}"
    );
    assert_eq!(s["timeline"]["ended_at"], cancelled["timeline"]["ended_at"]);
    assert_eq!(
        s["timeline"]["instructed_at"], cancelled["timeline"]["instructed_at"],
        "{s}"
    );
}

// 8. Who may open a stream

#[tokio::test]
async fn event_stream_is_refused_when_the_token_is_missing_wrong_or_not_that_destinations() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;

    assert_error(
        stream_request(&app, "laptop", None).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        stream_request(&app, "laptop", Some("rrt_wrong")).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        stream_request(&app, "laptop", Some(token(&alice, "desk"))).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        stream_request(&app, "laptop", Some(&alice.device_token)).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        stream_request(&app, "laptop", Some(ADMIN_TOKEN)).await,
        401,
        "unauthorized",
    )
    .await;
    // The right token opens it.
    EventStream::open(&app, "laptop", token(&alice, "laptop")).await;
}

// A replaced token is revoked for every request, open streams included:
// they end, and a client whose token still holds reconnects.
#[tokio::test]
async fn event_stream_ends_when_its_token_is_rotated() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let mut stream = EventStream::open(&app, "laptop", token(&alice, "laptop")).await;

    let response = app
        .client
        .put(app.url(&format!("/v1/subscribers/{ALICE}?rotate_tokens=true")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&alice_pick(None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new_laptop = rotated["destination_tokens"]["laptop"].as_str().unwrap();
    assert_ne!(new_laptop, token(&alice, "laptop"));
    assert_error(
        stream_request(&app, "laptop", Some(token(&alice, "laptop"))).await,
        401,
        "unauthorized",
    )
    .await;
    let device_token = rotated["device_token"].as_str().unwrap();
    let ring = app.ring(device_token, &json!({"caller": CALLER})).await;
    assert_eq!(ring.status(), 201);

    let next = stream.next_event_or_end().await;
    assert!(
        next.is_none(),
        "the old token's stream still hears the call: {next:?}"
    );
}
