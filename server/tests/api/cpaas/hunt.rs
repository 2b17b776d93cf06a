//! The Dial markup, the hunt through the destinations on dial-status, the
//! fallback, and what the destinations hear of the outcome.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
        voice_dials_one_number_with_the_subscribers_timeout_and_the_callers_id_when_sequential,
        voice_rings_every_destination_in_one_dial_when_simultaneous,
        dial_status_hunts_each_destination_then_voicemail_when_legs_fail,
        dial_status_marks_a_softphone_that_fails_at_once_unreachable_and_hunts_on,
        dial_status_dials_the_fallback_number_when_the_last_destination_fails_and_fallback_is_phone,
        dial_status_hangs_up_and_marks_the_session_missed_when_the_last_leg_fails_and_fallback_is_hangup,
        dial_status_hangs_up_and_records_the_connection_when_a_later_destination_answers,
        dial_status_hangs_up_and_connects_on_every_status_meaning_answered,
        voicemail_hangs_up_and_posts_call_voicemail_when_a_recording_arrives,
        dial_status_posts_call_connected_when_a_destination_answers,
    ],
    once: [
    ],
}

async fn voice_dials_one_number_with_the_subscribers_timeout_and_the_callers_id_when_sequential(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let response = forwarded(&app, cpaas, CALLER, SHARED).await;

    let dial = only_dial(&response);
    assert_eq!(nouns(dial), [cpaas.phone_noun(ALICE_DESK)]);
    assert_alice_dial(cpaas, dial, Some(CALLER), &alices);
    assert_not_screened(&app, cpaas, dial).await;
}

async fn voice_rings_every_destination_in_one_dial_when_simultaneous(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(
            ALICE,
            &alice_with(json!({
                "strategy": "simultaneous",
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": ALICE_DESK},
                    {"id": "pbx", "kind": "sip", "address": ALICE_SIP},
                    {"id": "laptop", "kind": "client", "address": "alice"}
                ]
            })),
        )
        .await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let response = forwarded(&app, cpaas, CALLER, SHARED).await;
    let dial = only_dial(&response);
    assert_eq!(
        nouns(dial),
        [
            cpaas.phone_noun(ALICE_DESK),
            cpaas.sip_noun(ALICE_SIP),
            cpaas.client_noun("alice")
        ]
    );
    assert_alice_dial(cpaas, dial, Some(CALLER), &alices);

    // Nobody answered: no second round, the fallback.
    let next = dial_ended(&app, cpaas, dial, DialEnd::NoAnswer).await;
    assert_callback(
        assert_voicemail(cpaas, &next),
        cpaas.routes().voicemail,
        &alices,
    );
}

// Dial-status: the hunt and the fallback

async fn dial_status_hunts_each_destination_then_voicemail_when_legs_fail(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&first);

    let second = dial_ended(&app, cpaas, desk, DialEnd::Busy).await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    assert_alice_dial(cpaas, laptop, Some(CALLER), &alices);

    // The softphone rang its whole timeout.
    app.clock.advance(std::time::Duration::from_secs(20));
    let third = dial_ended(&app, cpaas, laptop, DialEnd::NoAnswer).await;
    let pbx = only_dial(&third);
    assert_eq!(nouns(pbx), [cpaas.sip_noun(ALICE_SIP)]);
    assert_alice_dial(cpaas, pbx, Some(CALLER), &alices);

    let fourth = dial_ended(&app, cpaas, pbx, DialEnd::Failed).await;
    let record = assert_voicemail(cpaas, &fourth);
    assert_callback(record, cpaas.routes().voicemail, &alices);

    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "forwarded", "waiting for the recording: {s}");
    assert_eq!(s["selected_destination"], Value::Null, "{s}");
    assert_eq!(
        s["legs"],
        json!([
            {"destination_id": "desk", "status": "busy"},
            {"destination_id": "laptop", "status": "no-answer"},
            {"destination_id": "pbx", "status": "failed"}
        ])
    );
}

/// A `client` leg that ends unanswered within 2 s of its Dial (the
/// softphone is not there) is `unreachable`, and the next Dial goes out in
/// the same answer; a phone that is busy as fast stays `busy`.
async fn dial_status_marks_a_softphone_that_fails_at_once_unreachable_and_hunts_on(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&first);
    let second = dial_ended(&app, cpaas, desk, DialEnd::Busy).await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);

    let next = dial_ended(&app, cpaas, laptop, DialEnd::NoAnswer).await;
    assert_eq!(nouns(only_dial(&next)), [cpaas.sip_noun(ALICE_SIP)]);
    let s = session(&app, &alices).await;
    assert_eq!(
        s["legs"],
        json!([
            {"destination_id": "desk", "status": "busy"},
            {"destination_id": "laptop", "status": "unreachable"},
            {"destination_id": "pbx", "status": "ringing"}
        ]),
        "{s}"
    );
}

async fn dial_status_dials_the_fallback_number_when_the_last_destination_fails_and_fallback_is_phone(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut body = alice_desk_only(None);
    body["fallback"] = json!({"kind": "phone", "address": FALLBACK_PHONE});
    let alice_reg = app.register(ALICE, &body).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;

    let second = dial_ended(&app, cpaas, only_dial(&first), DialEnd::Busy).await;

    let fallback = only_dial(&second);
    assert_eq!(nouns(fallback), [cpaas.phone_noun(FALLBACK_PHONE)]);
    assert_alice_dial(cpaas, fallback, Some(CALLER), &alices);
    assert_eq!(session(&app, &alices).await["state"], "forwarded");

    // The fallback number does not answer either: nothing is left.
    let third = dial_ended(&app, cpaas, fallback, DialEnd::NoAnswer).await;
    assert_hangup(&third);
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "missed", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");
}

async fn dial_status_hangs_up_and_marks_the_session_missed_when_the_last_leg_fails_and_fallback_is_hangup(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut body = alice_desk_only(None);
    body["fallback"] = json!({"kind": "hangup"});
    let alice_reg = app.register(ALICE, &body).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;

    let second = dial_ended(&app, cpaas, only_dial(&first), DialEnd::Busy).await;

    assert_hangup(&second);
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "missed", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");
    assert_eq!(s["timeline"]["connected_at"], Value::Null, "{s}");
    assert_eq!(
        s["legs"],
        json!([{"destination_id": "desk", "status": "busy"}])
    );
}

async fn dial_status_hangs_up_and_records_the_connection_when_a_later_destination_answers(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();
    let first = forwarded_as(&app, cpaas, &call_id, CALLER, SHARED, None).await;
    let second = dial_ended(&app, cpaas, only_dial(&first), DialEnd::Busy).await;

    let third = dial_ended(&app, cpaas, only_dial(&second), DialEnd::Answered).await;

    assert_hangup(&third);
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["selected_destination"], "laptop", "{s}");
    assert_eq!(s["call_sid"], call_id.as_str());
    assert!(s["timeline"]["connected_at"].is_string(), "{s}");
    let legs = s["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2, "{s}");
    assert_eq!(legs[0], json!({"destination_id": "desk", "status": "busy"}));
    assert_eq!(
        legs[1],
        json!({"destination_id": "laptop", "status": "connected"})
    );
}

/// Twilio and SignalWire say `completed` or `answered`, Plivo and Telnyx
/// `completed`.
async fn dial_status_hangs_up_and_connects_on_every_status_meaning_answered(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    for status in cpaas.answered_statuses() {
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, cpaas, CALLER, SHARED).await;
        assert_callback(only_dial(&first), cpaas.routes().dial_status, &alices);

        let second = dial_ended_with_status(&app, cpaas, only_dial(&first), status).await;

        assert_hangup(&second);
        let s = session(&app, &alices).await;
        assert_eq!(s["state"], "connected", "{status}: {s}");
        assert_eq!(s["selected_destination"], "desk", "{status}: {s}");
        assert!(s["timeline"]["connected_at"].is_string(), "{status}: {s}");
    }
}

// Voicemail and the destinations' webhooks

async fn voicemail_hangs_up_and_posts_call_voicemail_when_a_recording_arrives(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(ALICE, &alice_desk_only(Some(receiver.url("/desk"))))
        .await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let second = dial_ended(&app, cpaas, only_dial(&first), DialEnd::Busy).await;
    let record = assert_voicemail(cpaas, &second);
    assert_eq!(record.attr("method"), Some("POST"), "{record:?}");

    let (third, recording) = recording_ended(&app, cpaas, record).await;

    assert_hangup(&third);
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "voicemail", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");
    let event = next_event(&receiver, "call.voicemail").await;
    assert!(
        event.signature_valid,
        "Standard Webhooks signature: {event:?}"
    );
    assert_eq!(event.path, "/desk");
    assert_eq!(
        event.body["data"]["recording_url"], recording,
        "{:?}",
        event.body
    );
    assert_eq!(event.body["data"]["session_id"], alices.as_str());
    assert_eq!(event.body["data"]["subscriber"], ALICE);
    assert_eq!(event.body["data"]["caller"], CALLER);
}

async fn dial_status_posts_call_connected_when_a_destination_answers(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(ALICE, &alice_desk_only(Some(receiver.url("/desk"))))
        .await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;

    let second = dial_ended(&app, cpaas, only_dial(&first), DialEnd::Answered).await;

    assert_hangup(&second);
    let event = next_event(&receiver, "call.connected").await;
    assert!(
        event.signature_valid,
        "Standard Webhooks signature: {event:?}"
    );
    assert_eq!(
        event.body["data"]["session_id"],
        alices.as_str(),
        "{:?}",
        event.body
    );
    assert_eq!(
        event.body["data"]["destination_id"], "desk",
        "{:?}",
        event.body
    );
    assert_eq!(event.body["data"]["caller"], CALLER);
}
