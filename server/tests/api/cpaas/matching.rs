//! Matching: which session a forwarded call claims, by ForwardedFrom, the
//! forwarding number and the caller, and what it hears when none waits.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
        voice_claims_the_forwarded_from_subscribers_session_when_forwarded_from_names_a_known_subscriber,
        voice_claims_the_dedicated_numbers_subscriber_when_forwarded_from_is_absent,
        voice_falls_back_to_the_forwarding_number_when_forwarded_from_is_not_a_subscriber,
        voice_claims_the_subscriber_whose_session_waits_for_the_caller_when_the_number_is_shared,
        voice_claims_the_session_when_the_phone_reported_the_caller_in_national_format,
        voice_claims_the_most_recent_session_and_the_older_one_expired_when_one_caller_has_two,
        voice_claims_the_most_recent_session_without_caller_id_when_the_caller_is_withheld,
        voice_dials_the_first_destination_and_creates_a_session_when_the_subscriber_has_none,
        voice_hunts_a_pick_mode_subscriber_as_in_auto_mode_when_it_has_no_session,
        voice_says_a_message_and_hangs_up_when_no_session_waits_on_a_shared_number,
        voice_says_a_message_and_hangs_up_when_the_forwarding_number_is_unknown,
    ],
    once: [
    ],
}

// Rule 1: ForwardedFrom wins over the shared number's order.
async fn voice_claims_the_forwarded_from_subscribers_session_when_forwarded_from_names_a_known_subscriber(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let bob_reg = app.register(BOB, &bob(SHARED)).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    next_millisecond(&app);
    let bobs = ring(&app, &bob_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();

    let response = forwarded_as(&app, cpaas, &call_id, CALLER, SHARED, Some(BOB)).await;

    let dial = only_dial(&response);
    assert_eq!(nouns(dial), [cpaas.phone_noun(BOB_DESK)]);
    assert_callback(dial, cpaas.routes().dial_status, &bobs);
    let claimed = session(&app, &bobs).await;
    assert_eq!(claimed["state"], "forwarded", "{claimed}");
    assert_eq!(claimed["call_sid"], call_id.as_str());
    assert!(claimed["timeline"]["forwarded_at"].is_string(), "{claimed}");
    assert_unclaimed(&app, &alices).await;
}

async fn voice_claims_the_dedicated_numbers_subscriber_when_forwarded_from_is_absent(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let bob_reg = app.register(BOB, &bob(DEDICATED)).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    next_millisecond(&app);
    let bobs = ring(&app, &bob_reg, Some(CALLER)).await;

    let response = forwarded(&app, cpaas, CALLER, DEDICATED).await;

    let dial = only_dial(&response);
    assert_eq!(nouns(dial), [cpaas.phone_noun(BOB_DESK)]);
    assert_callback(dial, cpaas.routes().dial_status, &bobs);
    assert_eq!(session(&app, &bobs).await["state"], "forwarded");
    assert_unclaimed(&app, &alices).await;
}

async fn voice_falls_back_to_the_forwarding_number_when_forwarded_from_is_not_a_subscriber(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let bob_reg = app.register(BOB, &bob(DEDICATED)).await;
    let bobs = ring(&app, &bob_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();

    let response = forwarded_as(
        &app,
        cpaas,
        &call_id,
        CALLER,
        DEDICATED,
        Some(UNKNOWN_NUMBER),
    )
    .await;

    let dial = only_dial(&response);
    assert_eq!(nouns(dial), [cpaas.phone_noun(BOB_DESK)]);
    assert_callback(dial, cpaas.routes().dial_status, &bobs);
}

async fn voice_claims_the_subscriber_whose_session_waits_for_the_caller_when_the_number_is_shared(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.register(ALICE, &alice()).await;
    let bob_reg = app.register(BOB, &bob(SHARED)).await;
    let bobs = ring(&app, &bob_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();

    let response = forwarded_as(&app, cpaas, &call_id, CALLER, SHARED, None).await;

    let dial = only_dial(&response);
    assert_eq!(nouns(dial), [cpaas.phone_noun(BOB_DESK)]);
    assert_callback(dial, cpaas.routes().dial_status, &bobs);
    let claimed = session(&app, &bobs).await;
    assert_eq!(claimed["state"], "forwarded", "{claimed}");
    assert_eq!(claimed["call_sid"], call_id.as_str());
}

async fn voice_claims_the_session_when_the_phone_reported_the_caller_in_national_format(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some("(202) 555-0302")).await;

    let response = forwarded(&app, cpaas, CALLER, SHARED).await;

    let dial = only_dial(&response);
    assert_alice_dial(cpaas, dial, Some(CALLER), &alices);
    assert_eq!(session(&app, &alices).await["caller"], CALLER);
}

async fn voice_claims_the_most_recent_session_and_the_older_one_expired_when_one_caller_has_two(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let older = ring(&app, &alice_reg, Some(CALLER)).await;
    next_millisecond(&app);
    let newer = ring(&app, &alice_reg, Some(CALLER)).await;
    let first_id = cpaas.new_call_id();

    let first = forwarded_as(&app, cpaas, &first_id, CALLER, SHARED, None).await;
    let second = forwarded(&app, cpaas, CALLER, SHARED).await;

    let dial_status = cpaas.routes().dial_status;
    assert_callback(only_dial(&first), dial_status, &newer);
    assert_eq!(session(&app, &newer).await["call_sid"], first_id.as_str());
    // The older one was never forwarded: the newer report ended it.
    let s = session(&app, &older).await;
    assert_eq!(s["state"], "expired", "{s}");
    assert_eq!(s["call_sid"], Value::Null, "{s}");
    // Nothing waits any more: the second is dialed with a session of its own.
    let second_session = session_in(only_dial(&second)).expect("a session of its own");
    assert!(
        second_session != older && second_session != newer,
        "{second_session}"
    );
}

async fn voice_claims_the_most_recent_session_without_caller_id_when_the_caller_is_withheld(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let older = ring(&app, &alice_reg, None).await;
    next_millisecond(&app);
    let newer = ring(&app, &alice_reg, None).await;

    // ANONYMOUS as the network writes it (Plivo without its `+`), then a word.
    let first = forwarded(&app, cpaas, "+266696687", SHARED).await;
    let second = forwarded(&app, cpaas, "anonymous", SHARED).await;

    let dial = only_dial(&first);
    assert_eq!(nouns(dial), [cpaas.phone_noun(ALICE_DESK)]);
    // No callerId at all: never a withheld marker.
    assert_alice_dial(cpaas, dial, None, &newer);
    let dial = only_dial(&second);
    assert_alice_dial(cpaas, dial, None, &older);
    for id in [&older, &newer] {
        let s = session(&app, id).await;
        assert_eq!(s["state"], "forwarded", "{s}");
        assert_eq!(s["caller"], Value::Null, "{s}");
    }
}

async fn voice_dials_the_first_destination_and_creates_a_session_when_the_subscriber_has_none(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.register(ALICE, &alice()).await;
    let call_id = cpaas.new_call_id();

    let response = forwarded_as(&app, cpaas, &call_id, CALLER, SHARED, None).await;

    let dial = only_dial(&response);
    assert_eq!(nouns(dial), [cpaas.phone_noun(ALICE_DESK)]);
    let created = session_in(dial).expect("the call got a session");
    assert_alice_dial(cpaas, dial, Some(CALLER), &created);
    let s = session(&app, &created).await;
    assert_eq!(s["state"], "forwarded", "{s}");
    assert_eq!(s["subscriber"], ALICE);
    assert_eq!(s["caller"], CALLER);
    assert_eq!(s["call_sid"], call_id.as_str());
    assert_eq!(
        s["timeline"]["reported_at"],
        Value::Null,
        "no ring report: {s}"
    );
    assert!(s["timeline"]["forwarded_at"].is_string(), "{s}");
}

async fn voice_hunts_a_pick_mode_subscriber_as_in_auto_mode_when_it_has_no_session(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.register(ALICE, &alice_with(json!({"mode": "pick"})))
        .await;

    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&first);
    assert_eq!(nouns(desk), [cpaas.phone_noun(ALICE_DESK)]);
    let created = session_in(desk).expect("the call got a session");
    assert_alice_dial(cpaas, desk, Some(CALLER), &created);

    // No destination accepted, so all of them are hunted, in order.
    let second = dial_ended(&app, cpaas, desk, DialEnd::Busy).await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    assert_alice_dial(cpaas, laptop, Some(CALLER), &created);
}

async fn voice_says_a_message_and_hangs_up_when_no_session_waits_on_a_shared_number(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.register(ALICE, &alice()).await;
    let bob_reg = app.register(BOB, &bob(SHARED)).await;
    let bobs = ring(&app, &bob_reg, Some(OTHER_CALLER)).await;

    let response = forwarded(&app, cpaas, CALLER, SHARED).await;

    assert_unknown_call(cpaas, &response);
    // The session of the other caller was left alone.
    assert_unclaimed(&app, &bobs).await;
    let claimed = forwarded(&app, cpaas, OTHER_CALLER, SHARED).await;
    assert_callback(only_dial(&claimed), cpaas.routes().dial_status, &bobs);
}

async fn voice_says_a_message_and_hangs_up_when_the_forwarding_number_is_unknown(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let response = forwarded(&app, cpaas, CALLER, UNKNOWN_NUMBER).await;

    assert_unknown_call(cpaas, &response);
    assert_unclaimed(&app, &alices).await;
}
