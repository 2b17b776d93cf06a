//! Pick mode's offers: the whole flow across two instances, the capability
//! URLs of `call.ringing`, and concurrent accepts, exactly one of which wins.

use super::*;

// 1. The whole pick flow across two instances

#[tokio::test]
async fn forwarded_call_dials_the_accepting_destination_first_when_stream_ring_accept_and_long_poll_are_on_two_instances()
 {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    let alice = a.register(ALICE, &alice_pick(None)).await;
    // The second destination's stream: a stream that got every destination's
    // ringing would show the desk's first.
    let mut laptop_stream = EventStream::open(&a, "laptop", token(&alice, "laptop")).await;
    let mut pbx_stream = EventStream::open(&b, "pbx", token(&alice, "pbx")).await;

    let id = ring_pick(&b, &alice).await;

    let (kind, event) = laptop_stream.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_eq!(event["type"], "call.ringing", "{event}");
    assert!(event["timestamp"].is_string(), "{event}");
    assert_ringing(&event["data"], &id, "laptop");
    let (kind, pbx_event) = pbx_stream.next_event().await;
    assert_eq!(kind, "call.ringing");
    assert_ringing(&pbx_event["data"], &id, "pbx");
    assert_ne!(
        pbx_event["data"]["accept_url"], event["data"]["accept_url"],
        "each destination has its own capability"
    );

    let long_poll = spawn_long_poll(&a, &alice.device_token, &id);
    // Nothing accepted yet: the instruction is still `wait`, so the long-poll
    // cannot have answered.
    assert!(
        !long_poll.is_finished(),
        "the long-poll waits for an accept"
    );
    assert_eq!(session(&b, &id).await["state"], "notified");

    assert_answered(accept(&b, token(&alice, "laptop"), &id).await, "instructed").await;
    assert_eq!(long_poll_result(long_poll).await, "reject");
    assert_eq!(instruction(&b, &alice.device_token, &id, 0).await, "reject");

    let sid = "CA0000000000000000000000000000pick";
    let response = a.twiml("/twilio/voice", &voice_params(sid)).await;
    let dial = first_dial(&response);
    assert_eq!(nouns(dial), [("Client", "alice")], "{dial:?}");
    assert_eq!(query_of(dial.attr("action").unwrap())["session"], id);

    let s = session(&b, &id).await;
    assert_eq!(s["selected_destination"], "laptop", "{s}");
    assert_eq!(s["state"], "forwarded", "{s}");
    assert_eq!(s["call_sid"], sid, "{s}");
    assert_eq!(s["mode"], "pick", "{s}");
    assert!(s["timeline"]["instructed_at"].is_string(), "{s}");
    // The destination itself may read the session it took.
    let as_laptop = a.get_session(token(&alice, "laptop"), &id).await;
    assert_eq!(as_laptop.status(), 200);
    let as_laptop: Value = as_laptop.json().await.unwrap();
    assert_eq!(as_laptop["selected_destination"], "laptop");
}

// 2. Capability URLs

#[tokio::test]
async fn capability_accept_url_accepts_once_when_posted_without_a_header() {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(Some(&receiver))).await;
    let id = ring_pick(&app, &alice).await;
    let mut deliveries = receiver.take(3).await;
    deliveries.sort_by(|x, y| x.path.cmp(&y.path));
    let [desk, laptop, _pbx] = deliveries.as_slice() else {
        panic!("three deliveries");
    };
    assert!(desk.signature_valid);
    assert_eq!(desk.kind(), "call.ringing");
    assert_ringing(&desk.body["data"], &id, "desk");
    let desk_accept = desk.body["data"]["accept_url"].as_str().unwrap();
    let desk_decline = desk.body["data"]["decline_url"].as_str().unwrap();
    let laptop_accept = laptop.body["data"]["accept_url"].as_str().unwrap();

    // A capability that was never issued finds nothing.
    let forged = format!(
        "{PUBLIC_BASE_URL}/v1/sessions/{id}/accept?capability=rrc_{}",
        "A".repeat(43)
    );
    assert_error(post_capability(&app, &forged).await, 404, "not_found").await;
    // The genuine one, on another session's id, finds nothing either.
    let other = ring_pick(&app, &alice).await;
    receiver.take(3).await;
    let elsewhere = desk_accept.replace(&id, &other);
    assert_ne!(elsewhere, desk_accept);
    assert_error(post_capability(&app, &elsewhere).await, 404, "not_found").await;
    assert_eq!(
        session(&app, &other).await["selected_destination"],
        Value::Null
    );

    assert_answered(post_capability(&app, desk_accept).await, "instructed").await;
    assert_eq!(
        instruction(&app, &alice.device_token, &id, 0).await,
        "reject"
    );
    assert_eq!(session(&app, &id).await["selected_destination"], "desk");

    assert_error(
        post_capability(&app, desk_accept).await,
        409,
        "already_answered",
    )
    .await;
    assert_error(
        post_capability(&app, desk_decline).await,
        409,
        "already_answered",
    )
    .await;
    assert_error(
        post_capability(&app, laptop_accept).await,
        409,
        "already_taken",
    )
    .await;
    assert_eq!(session(&app, &id).await["selected_destination"], "desk");
}

// 3. Concurrent accepts

/// Three destinations accept each of several sessions at once, on `apps`
/// in turn: exactly one wins each session.
async fn exactly_one_accept_wins(apps: [&TestApp; 3]) {
    let alice = apps[0].register(ALICE, &alice_pick(None)).await;
    let destinations = ["desk", "laptop", "pbx"];
    for round in 0..5 {
        let id = ring_pick(apps[round % 3], &alice).await;
        let responses = futures_util::future::join_all(
            destinations
                .iter()
                .zip(apps)
                .map(|(d, app)| accept(app, token(&alice, d), &id)),
        )
        .await;
        let mut winners = Vec::new();
        for (destination, response) in destinations.iter().zip(responses) {
            if response.status() == 200 {
                assert_answered(response, "instructed").await;
                winners.push(*destination);
            } else {
                assert_error(response, 409, "already_taken").await;
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let s = session(apps[2], &id).await;
        assert_eq!(s["selected_destination"], winners[0], "{s}");
        assert_eq!(
            instruction(apps[1], &alice.device_token, &id, 0).await,
            "reject"
        );
    }
}

#[tokio::test]
async fn accept_succeeds_for_exactly_one_destination_when_three_accept_at_once_on_two_instances() {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    exactly_one_accept_wins([&a, &b, &a]).await;
}

#[tokio::test]
async fn accept_succeeds_for_exactly_one_destination_when_three_accept_at_once_on_one_instance() {
    let app = spawn_app(Backend::Memory).await;
    exactly_one_accept_wins([&app, &app, &app]).await;
}
