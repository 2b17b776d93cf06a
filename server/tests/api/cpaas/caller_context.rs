//! Who is calling: the caller's name and STIR/SHAKEN verdict read from
//! each provider's own parameters (signed as it signs them), kept in the
//! session, carried in every event after the forwarded call, and spoken in
//! the whisper.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
        the_callers_name_and_verdict_reach_the_session_the_later_events_and_the_whisper,
        a_failed_verification_rule_blocks_at_the_forwarded_call,
    ],
    once: [
        every_verdict_the_provider_sends_maps_as_the_table_says,
        a_failed_verification_rule_sends_to_voicemail_and_an_earlier_rule_wins,
    ],
}

/// The recorded forwarded call from `CALLER` to Alice's number, saying the
/// caller is `name` (when given) with verdict `verdict`, in the provider's
/// words (what the recording said of the caller replaced).
fn call_saying(cpaas: Cpaas, name: Option<&str>, verdict: &str) -> Request {
    let mut request = cpaas
        .inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None)
        .without(cpaas.caller_name_param());
    for param in cpaas.all_verification_params() {
        request = request.without(param);
    }
    if let Some(name) = name {
        request = request.with(cpaas.caller_name_param(), name);
    }
    for (param, value) in cpaas.verification_params(verdict) {
        request = request.with(param, value);
    }
    request
}

async fn the_callers_name_and_verdict_reach_the_session_the_later_events_and_the_whisper(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(
            ALICE,
            &alice_with(json!({"destinations": [
                {"id": "desk", "kind": "phone", "address": ALICE_DESK,
                 "webhook_url": receiver.url("/desk"), "screening": true}
            ]})),
        )
        .await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let ringing = next_event(&receiver, "call.ringing").await;
    assert_eq!(
        ringing.body["data"]["caller_name"],
        Value::Null,
        "not known yet"
    );
    assert_eq!(ringing.body["data"]["caller_verification"], "none");

    let first = call_saying(cpaas, Some("JANE DOE"), "verified")
        .markup(&app)
        .await;

    let s = session(&app, &alices).await;
    assert_eq!(s["caller_name"], "JANE DOE", "{s}");
    assert_eq!(s["caller_verification"], "verified", "{s}");
    // The destination that picks up hears who it is.
    let desk = only_dial(&first);
    let whisper = cpaas.whisper_url(desk).expect("a whisper URL");
    let screen = cpaas
        .request("screen")
        .at(&local_path(whisper))
        .markup(&app)
        .await;
    let spoken = format!("{screen:?}");
    assert!(
        spoken.contains("Call from JANE DOE, verified, for"),
        "{spoken}"
    );
    assert!(
        !spoken.contains("2 0 2 5 5 5 0 3 0 2"),
        "the name, not the number: {spoken}"
    );

    // Every later event names the caller as the provider did.
    let second = dial_ended(&app, cpaas, desk, DialEnd::NoAnswer).await;
    let record = assert_voicemail(cpaas, &second);
    recording_ended(&app, cpaas, record).await;
    let voicemail = next_event(&receiver, "call.voicemail").await;
    assert_eq!(voicemail.body["data"]["caller"], CALLER);
    assert_eq!(voicemail.body["data"]["caller_name"], "JANE DOE");
    assert_eq!(voicemail.body["data"]["caller_verification"], "verified");
}

async fn every_verdict_the_provider_sends_maps_as_the_table_says(cpaas: Cpaas) {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app
        .register(
            ALICE,
            &alice_with(json!({"destinations": [
                {"id": "desk", "kind": "phone", "address": ALICE_DESK, "screening": true}
            ]})),
        )
        .await;
    for verdict in ["verified", "partial", "failed", "none"] {
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        next_millisecond(&app);
        let markup = call_saying(cpaas, None, verdict).markup(&app).await;
        let s = session(&app, &alices).await;
        assert_eq!(s["caller_verification"], verdict, "{s}");
        assert_eq!(s["caller_name"], Value::Null, "{s}");
        // Without a name, the whisper says the number, then the verdict.
        let whisper = cpaas.whisper_url(only_dial(&markup)).unwrap();
        let screen = cpaas
            .request("screen")
            .at(&local_path(whisper))
            .markup(&app)
            .await;
        let spoken = format!("{screen:?}");
        let expected = match verdict {
            "verified" => "2 0 2 5 5 5 0 3 0 2, verified, for",
            "partial" => "2 0 2 5 5 5 0 3 0 2, partially verified, for",
            "failed" => "2 0 2 5 5 5 0 3 0 2, failed verification, for",
            _ => "2 0 2 5 5 5 0 3 0 2, for",
        };
        assert!(spoken.contains(expected), "{verdict}: {spoken}");
    }
    // A forwarded call the provider says nothing of: nothing to check.
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let mut silent = cpaas
        .inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None)
        .without(cpaas.caller_name_param());
    for param in cpaas.all_verification_params() {
        silent = silent.without(param);
    }
    silent.markup(&app).await;
    let s = session(&app, &alices).await;
    assert_eq!(
        (&s["caller_name"], &s["caller_verification"]),
        (&Value::Null, &json!("none")),
        "{s}"
    );
}

/// Twilio adds `StirVerstat` to some voice webhooks after signing them
/// (docs/providers.md, Signature): the verdict it adds is read all the same.
#[tokio::test]
async fn twilios_verdict_added_after_signing_is_read() {
    let cpaas = Cpaas::Twilio;
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let signed = call_saying(cpaas, Some("JANE DOE"), "none").without("StirVerstat");
    let headers =
        cpaas.signature_headers(&format!("{PUBLIC_BASE_URL}{}", signed.path), &signed.params);
    let sent = signed.with("StirVerstat", "TN-Validation-Passed-B");

    let response = post_form(&app, &sent.path, &sent.params, &headers).await;

    assert_eq!(response.status(), 200);
    let s = session(&app, &alices).await;
    assert_eq!(s["caller_name"], "JANE DOE", "{s}");
    assert_eq!(s["caller_verification"], "partial", "{s}");
}

// A caller rule on verification, decided at the forwarded call

async fn a_failed_verification_rule_blocks_at_the_forwarded_call(cpaas: Cpaas, backend: Backend) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let mut alice = alice_desk_only(Some(receiver.url("/desk")));
    alice["caller_rules"] = json!([{"match": "failed_verification", "action": "block"}]);
    let alice_reg = app.register(ALICE, &alice).await;

    // The ring report cannot know the verdict: the destinations hear of it.
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    next_event(&receiver, "call.ringing").await;
    let blocked = call_saying(cpaas, None, "failed").markup(&app).await;

    assert_busy(cpaas, &blocked);
    let s = session(&app, &alices).await;
    assert_eq!(
        (&s["state"], &s["caller_verification"]),
        (&json!("missed"), &json!("failed")),
        "{s}"
    );
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(missed.body["data"]["reason"], "blocked");
    assert_eq!(missed.body["data"]["caller_verification"], "failed");

    // A call with nothing to check is not a failed one: it rings.
    next_millisecond(&app);
    let unsigned = ring(&app, &alice_reg, Some(CALLER)).await;
    let dialed = call_saying(cpaas, None, "none").markup(&app).await;
    assert_eq!(
        session_in(only_dial(&dialed)).as_deref(),
        Some(unsigned.as_str())
    );

    // A call no ring report announced is decided the same way.
    let unreported = call_saying(cpaas, None, "failed").markup(&app).await;
    assert_busy(cpaas, &unreported);
}

async fn a_failed_verification_rule_sends_to_voicemail_and_an_earlier_rule_wins(cpaas: Cpaas) {
    let app = spawn_app(Backend::Memory).await;
    let rule = json!({"match": "failed_verification", "action": "voicemail"});
    let alice_reg = app
        .register(ALICE, &alice_with(json!({"caller_rules": [rule]})))
        .await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let straight = call_saying(cpaas, None, "failed").markup(&app).await;

    let record = assert_voicemail(cpaas, &straight);
    assert_eq!(session_in(record).as_deref(), Some(alices.as_str()));
    // The session keeps its new route: a retried webhook gets the same.
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "forwarded", "{s}");
    let (after, _) = recording_ended(&app, cpaas, record).await;
    assert_hangup(&after);
    assert_eq!(session(&app, &alices).await["state"], "voicemail");

    // A rule on the number before it matches first, as at the ring report.
    let replaced = app
        .put_subscriber(
            ALICE,
            &alice_with(json!({"caller_rules": [
                {"match": CALLER, "action": "vip"},
                rule
            ]})),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    next_millisecond(&app);
    let vip = ring(&app, &alice_reg, Some(CALLER)).await;
    let dialed = call_saying(cpaas, None, "failed").markup(&app).await;
    assert_eq!(
        session_in(only_dial(&dialed)).as_deref(),
        Some(vip.as_str())
    );
}
