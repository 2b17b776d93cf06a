//! Outages and odd input: a forwarded call always gets markup, from the
//! last known subscriber while Redis is down, a hang-up for a foreign query.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
    ],
    once: [
        voice_and_dial_status_still_dial_from_the_last_known_subscriber_when_redis_is_down,
        dial_status_keeps_naming_the_session_when_redis_fails_mid_hunt,
        an_instance_started_just_before_redis_goes_down_still_dials_every_subscriber,
        voice_says_the_unknown_call_message_when_redis_is_down_and_the_subscriber_was_never_seen,
        voice_says_the_unknown_call_message_when_the_webhook_describes_no_call,
        dial_status_and_voicemail_hang_up_when_the_callback_query_is_not_ours,
        status_answers_204_without_a_body,
    ],
}

async fn voice_and_dial_status_still_dial_from_the_last_known_subscriber_when_redis_is_down(
    cpaas: Cpaas,
) {
    let app = spawn_app(Backend::redis()).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    ring(&app, &alice_reg, Some(CALLER)).await;
    app.backend.test_redis().stop();

    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&first);
    assert_eq!(nouns(desk), [cpaas.phone_noun(ALICE_DESK)]);
    assert_eq!(desk.attr("callerId"), Some(cpaas.number(CALLER).as_str()));
    assert_eq!(desk.attr("timeout"), Some(ALICE_RING_TIMEOUT));

    let second = dial_ended(&app, cpaas, desk, DialEnd::Busy).await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    // Without the session, the caller comes from the callback's `From`.
    assert_eq!(laptop.attr("callerId"), Some(cpaas.number(CALLER).as_str()));
}

/// The store fails mid-hunt: the next Dial still names the session, so
/// that the rest of the call is recorded in it once the store is back.
async fn dial_status_keeps_naming_the_session_when_redis_fails_mid_hunt(cpaas: Cpaas) {
    let app = spawn_app(Backend::redis()).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&first);
    assert_eq!(session_in(desk).as_deref(), Some(alices.as_str()));
    app.backend.test_redis().stop();

    let second = dial_ended(&app, cpaas, desk, DialEnd::Busy).await;

    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    assert_callback(laptop, cpaas.routes().dial_status, &alices);
}

/// An instance started after the subscriber was registered elsewhere, that
/// never handled one of her calls, still dials her while Redis is down: it
/// read the subscribers at start.
async fn an_instance_started_just_before_redis_goes_down_still_dials_every_subscriber(
    cpaas: Cpaas,
) {
    let a = spawn_app(Backend::redis()).await;
    a.register(ALICE, &alice()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    a.backend.test_redis().stop();

    let answer = forwarded(&b, cpaas, CALLER, SHARED).await;

    assert_eq!(nouns(only_dial(&answer)), [cpaas.phone_noun(ALICE_DESK)]);
}

async fn voice_says_the_unknown_call_message_when_redis_is_down_and_the_subscriber_was_never_seen(
    cpaas: Cpaas,
) {
    // B starts before Alice exists, and never reads her: she is written
    // straight into the store, with no news on the bus (as by an instance
    // whose publish was lost), so B's cache never hears of her.
    let (a, b) = two_instances().await;
    let registry = crate::helpers::registry_on(
        std::sync::Arc::new(a.backend.redis_store(&a.config.redis_key_prefix)),
        &a.config,
    );
    let registration = registry
        .register(
            ringrelay_server::domain::phone::PhoneNumber::parse(ALICE, a.config.default_region)
                .unwrap(),
            serde_json::from_value(alice()).unwrap(),
            ringrelay_server::domain::credentials::TokenPolicy::Rotate,
        )
        .await
        .unwrap();
    let alice_reg = Registered {
        device_token: registration.tokens.device.unwrap().reveal().to_owned(),
        destination_tokens: BTreeMap::new(),
    };
    ring(&a, &alice_reg, Some(CALLER)).await;
    a.backend.test_redis().stop();

    assert_unknown_call(cpaas, &forwarded(&b, cpaas, CALLER, SHARED).await);
    assert_unknown_call(cpaas, &forwarded(&a, cpaas, CALLER, UNKNOWN_NUMBER).await);
    // A hunt callback for a subscriber B cannot see still gets markup.
    let callback = format!(
        "{}?subscriber=%2B12025550199&step=0",
        cpaas.routes().dial_status
    );
    let response = cpaas.request("dial_busy").at(&callback).markup(&b).await;
    assert_hangup(&response);
}

async fn voice_says_the_unknown_call_message_when_the_webhook_describes_no_call(cpaas: Cpaas) {
    let app = spawn_app(Backend::Memory).await;
    app.register(ALICE, &alice()).await;
    let call = cpaas.inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None);
    let without_id = call.clone().without(cpaas.call_id_param());
    let empty_id = call.clone().with(cpaas.call_id_param(), "");
    let mut empty = call.clone();
    empty.params.clear();
    let to_a_softphone = call.with_parties(CALLER, cpaas.to_not_a_number());

    for request in [without_id, empty_id, empty, to_a_softphone] {
        assert_unknown_call(cpaas, &request.markup(&app).await);
    }
}

async fn dial_status_and_voicemail_hang_up_when_the_callback_query_is_not_ours(cpaas: Cpaas) {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    forwarded(&app, cpaas, CALLER, SHARED).await;
    let session_query = format!("session={alices}");
    let queries = [
        String::new(),
        format!("?{session_query}&step=0"),
        format!("?subscriber=%2B12025550199&{session_query}"),
        format!("?subscriber=not-a-number&{session_query}&step=0"),
        format!("?subscriber=%2B12025550199&{session_query}&step=first"),
        // A well-formed context for a subscriber that does not exist.
        "?subscriber=%2B12025550777&step=0".to_owned(),
    ];
    let busy_with_a_recording = cpaas.request("dial_busy").with(
        cpaas.recording_url_param(),
        cpaas
            .request("record")
            .get(cpaas.recording_url_param())
            .unwrap(),
    );

    for query in &queries {
        for route in [cpaas.routes().dial_status, cpaas.routes().voicemail] {
            let response = busy_with_a_recording
                .clone()
                .at(&format!("{route}{query}"))
                .markup(&app)
                .await;
            assert_hangup(&response);
        }
    }
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "forwarded", "{s}");
    assert_eq!(s["legs"], json!([]), "{s}");
}

async fn status_answers_204_without_a_body(cpaas: Cpaas) {
    let app = spawn_app(Backend::Memory).await;

    let response = cpaas.status_request().post(&app).await;

    assert_eq!(response.status(), 204);
    assert!(response.text().await.unwrap().is_empty());
}
