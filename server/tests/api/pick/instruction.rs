//! The phone's instruction: `ignore` when every destination declines or the
//! pick timeout passes, and the long-poll's own rules.

use super::*;

// 4 and 5. Nobody takes the call: `ignore`

#[tokio::test]
async fn instruction_becomes_ignore_when_every_destination_declines() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let id = ring_pick(&app, &alice).await;
    let long_poll = spawn_long_poll(&app, &alice.device_token, &id);

    assert_answered(decline(&app, token(&alice, "desk"), &id).await, "notified").await;
    assert_answered(decline(&app, token(&alice, "pbx"), &id).await, "notified").await;
    // One destination may still accept: the instruction is still `wait`.
    assert!(!long_poll.is_finished(), "the long-poll waits on");
    assert_eq!(instruction(&app, &alice.device_token, &id, 0).await, "wait");
    assert_error(
        decline(&app, token(&alice, "desk"), &id).await,
        409,
        "already_answered",
    )
    .await;

    assert_answered(
        decline(&app, token(&alice, "laptop"), &id).await,
        "instructed",
    )
    .await;
    assert_eq!(long_poll_result(long_poll).await, "ignore: all_declined");
    assert_eq!(
        instruction(&app, &alice.device_token, &id, 0).await,
        "ignore: all_declined"
    );
    let s = session(&app, &id).await;
    assert_eq!(s["state"], "instructed", "{s}");
    assert_eq!(s["selected_destination"], Value::Null, "{s}");
    assert!(s["timeline"]["instructed_at"].is_string(), "{s}");

    assert_error(
        accept(&app, token(&alice, "laptop"), &id).await,
        410,
        "session_over",
    )
    .await;
    assert_error(
        accept(&app, token(&alice, "desk"), &id).await,
        410,
        "session_over",
    )
    .await;
    assert_eq!(
        instruction(&app, &alice.device_token, &id, 0).await,
        "ignore: all_declined"
    );
}

#[tokio::test]
async fn instruction_becomes_ignore_when_the_pick_timeout_passes_without_an_accept() {
    let app = spawn_app(Backend::Memory).await;
    let mut body = alice_pick(None);
    body["pick_timeout_secs"] = json!(3);
    let alice = app.register(ALICE, &body).await;
    // Reported first, so its wait ends no later than the polled one's.
    let unpolled = ring_pick(&app, &alice).await;
    let polled = ring_pick(&app, &alice).await;

    // The product's own 3 s timeout passes inside the long-poll's wait.
    let long_poll = spawn_long_poll(&app, &alice.device_token, &polled);
    app.clock.advance(Duration::from_secs(4));
    assert_eq!(long_poll_result(long_poll).await, "ignore: pick_timeout");
    let s = session(&app, &polled).await;
    assert_eq!(s["state"], "instructed", "{s}");
    assert_error(
        accept(&app, token(&alice, "desk"), &polled).await,
        410,
        "session_over",
    )
    .await;

    // Nobody polled this one: the late accept itself finds the wait over.
    assert_error(
        accept(&app, token(&alice, "laptop"), &unpolled).await,
        410,
        "session_over",
    )
    .await;
    assert_eq!(
        instruction(&app, &alice.device_token, &unpolled, 0).await,
        "ignore: pick_timeout"
    );
    assert_eq!(
        session(&app, &unpolled).await["selected_destination"],
        Value::Null
    );
}

// 6. The long-poll's own rules

#[tokio::test]
async fn instruction_long_poll_answers_wait_when_nothing_happens_within_wait() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let id = ring_pick(&app, &alice).await;
    assert_eq!(instruction(&app, &alice.device_token, &id, 1).await, "wait");
    assert_eq!(instruction(&app, &alice.device_token, &id, 0).await, "wait");
    let response = app
        .client
        .get(app.url(&format!("/v1/sessions/{id}/instruction")))
        .bearer_auth(&alice.device_token)
        .send()
        .await
        .unwrap();
    assert_eq!(read_instruction(response).await, "wait");
}

#[tokio::test]
async fn instruction_long_poll_is_refused_when_wait_is_over_30_or_the_token_is_not_the_phones() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app.register(ALICE, &alice_pick(None)).await;
    let bob = app.register(BOB, &bob_pick()).await;
    let id = ring_pick(&app, &alice).await;

    let body = assert_error(
        instruction_request(&app, Some(&alice.device_token), &id, 31).await,
        422,
        "invalid_field",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("wait"), "{body}");
    // 30 itself is allowed (answered at once, the instruction being settled).
    assert_answered(accept(&app, token(&alice, "desk"), &id).await, "instructed").await;
    assert_eq!(
        instruction(&app, &alice.device_token, &id, 30).await,
        "reject"
    );

    assert_error(
        instruction_request(&app, Some(&bob.device_token), &id, 0).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        instruction_request(&app, None, &id, 0).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        instruction_request(&app, Some("rrd_not-a-token"), &id, 0).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        instruction_request(&app, Some(token(&alice, "desk")), &id, 0).await,
        401,
        "unauthorized",
    )
    .await;
}
