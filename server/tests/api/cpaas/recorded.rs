//! The providers' recorded requests (`fixtures/requests/<provider>/`), as
//! recorded: they take a forwarded call through the whole flow, and they are
//! each provider's own words.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
        recorded_requests_take_a_forwarded_call_through_the_whole_flow,
    ],
    once: [
        fixtures_are_the_providers_requests_in_its_own_words,
    ],
}

/// The fixtures are one call from `CALLER`, forwarded by Alice's carrier
/// (with ForwardedFrom) to `SHARED`: posted as recorded (only to the action
/// URLs our markup gave), they take it through the whole flow.
async fn recorded_requests_take_a_forwarded_call_through_the_whole_flow(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(
            ALICE,
            &alice_with(json!({
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": ALICE_DESK,
                     "webhook_url": receiver.url("/desk")},
                    {"id": "laptop", "kind": "client", "address": "alice"},
                    {"id": "pbx", "kind": "sip", "address": ALICE_SIP}
                ]
            })),
        )
        .await;
    let answered_call = ring(&app, &alice_reg, Some(CALLER)).await;
    let inbound = cpaas.request("inbound_call");
    let call_id = inbound.get(cpaas.call_id_param()).unwrap().to_owned();

    // Answered on the second destination.
    let first = inbound.markup(&app).await;
    let desk = only_dial(&first);
    assert_eq!(nouns(desk), [cpaas.phone_noun(ALICE_DESK)]);
    assert_alice_dial(cpaas, desk, Some(CALLER), &answered_call);
    assert_eq!(
        session(&app, &answered_call).await["call_sid"],
        call_id.as_str()
    );
    let busy = cpaas.request("dial_busy");
    let second = busy
        .clone()
        .at(&local_path(desk.attr("action").unwrap()))
        .markup(&app)
        .await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    assert_alice_dial(cpaas, laptop, Some(CALLER), &answered_call);
    let third = cpaas
        .request("dial_completed")
        .at(&local_path(laptop.attr("action").unwrap()))
        .markup(&app)
        .await;
    assert_hangup(&third);
    let s = session(&app, &answered_call).await;
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["selected_destination"], "laptop", "{s}");
    let connected = next_event(&receiver, "call.connected").await;
    assert_eq!(connected.body["data"]["session_id"], answered_call.as_str());
    assert_eq!(connected.body["data"]["destination_id"], "laptop");
    let status = cpaas.status_request().post(&app).await;
    assert_eq!(status.status(), 204);

    // The same caller again; nobody answers: voicemail.
    let voicemail_call = ring(&app, &alice_reg, Some(CALLER)).await;
    let mut response = inbound
        .with_call_id(&cpaas.new_call_id())
        .markup(&app)
        .await;
    for _ in 0..3 {
        let dial = only_dial(&response);
        assert_alice_dial(cpaas, dial, Some(CALLER), &voicemail_call);
        response = busy
            .clone()
            .at(&local_path(dial.attr("action").unwrap()))
            .markup(&app)
            .await;
    }
    let record = assert_voicemail(cpaas, &response);
    let recorded = cpaas
        .request("record")
        .at(&local_path(record.attr("action").unwrap()));
    assert_hangup(&recorded.markup(&app).await);
    let s = session(&app, &voicemail_call).await;
    assert_eq!(s["state"], "voicemail", "{s}");
    let voicemail = next_event(&receiver, "call.voicemail").await;
    assert_eq!(
        voicemail.body["data"]["session_id"],
        voicemail_call.as_str()
    );
    assert_eq!(
        voicemail.body["data"]["recording_url"],
        recorded.get(cpaas.recording_url_param()).unwrap()
    );
}
// The fixtures themselves

/// Each recorded request goes to the provider's route, names the call its
/// way, writes numbers its way (Plivo without `+`), and carries no
/// `DialBridged` where the provider sends none (Telnyx, SignalWire: the
/// service then relies on the whisper and the key press).
async fn fixtures_are_the_providers_requests_in_its_own_words(cpaas: Cpaas) {
    let routes = cpaas.routes();
    let status_kind = cpaas.status_kind();
    let kinds: [(&str, &str); 7] = [
        ("inbound_call", routes.answer),
        ("dial_busy", routes.dial_status),
        ("dial_completed", routes.dial_status),
        ("record", routes.voicemail),
        ("screen", routes.screen),
        ("screen_result", routes.screen_result),
        (status_kind, routes.status),
    ];
    for (kind, route) in kinds {
        let request: Request = cpaas.request(kind);
        let path = request.path.split('?').next().unwrap();
        assert_eq!(path, route, "{kind}");
        assert!(
            request
                .get(cpaas.call_id_param())
                .is_some_and(|id| !id.is_empty()),
            "{kind} names its call"
        );
        for name in ["From", "To", "Direction", "CallStatus"] {
            assert!(request.get(name).is_some(), "{kind} has {name}");
        }
        for name in ["From", "To", "ForwardedFrom", "Caller", "Called"] {
            if let Some(number) = request.get(name) {
                assert_eq!(
                    number.starts_with('+'),
                    cpaas != Cpaas::Plivo,
                    "{kind}: {name}={number}"
                );
            }
        }
        let mut names: Vec<&str> = request.params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "{kind}: no repeated parameter");
        if matches!(cpaas, Cpaas::Telnyx | Cpaas::SignalWire) {
            assert_eq!(request.get("DialBridged"), None, "{kind}");
        }
        if cpaas == Cpaas::Telnyx {
            assert_eq!(request.get("ForwardedFrom"), None, "{kind}: undocumented");
        }
    }
    let dial = |kind| cpaas.request(kind);
    assert_eq!(
        dial("dial_busy").get(cpaas.dial_status_param()),
        Some(cpaas.dial_status(DialEnd::Busy))
    );
    assert_eq!(
        dial("dial_completed").get(cpaas.dial_status_param()),
        Some(cpaas.dial_status(DialEnd::Answered))
    );
    assert!(
        dial("record")
            .get(cpaas.recording_url_param())
            .is_some_and(|u| u.starts_with("https://"))
    );
    // A Dial's finished recording: not a call webhook (no From, To or call
    // status on the TwiML family), only the call and the file.
    let recording = cpaas.request("recording");
    assert_eq!(
        recording.path.split('?').next(),
        Some(routes.recording),
        "recording"
    );
    assert!(recording.get(cpaas.call_id_param()).is_some(), "recording");
    let (url, duration) = cpaas.recording_params();
    assert!(
        recording
            .get(url)
            .is_some_and(|u| u.starts_with("https://"))
    );
    assert!(
        recording
            .get(duration)
            .is_some_and(|d| d.parse::<u32>().is_ok())
    );
    if cpaas != Cpaas::Plivo {
        assert_eq!(recording.get("RecordingStatus"), Some("completed"));
    }
}
