//! Subscriber rules (docs/api.md) as each provider's markup carries them:
//! `record: "answer"` records the dialed legs from answer (the TwiML
//! family's `<Dial record>`, Plivo's `<Record startOnDialAnswer>` before its
//! Dial) and the finished recording reaches the destinations once as
//! `call.recording`; `ring_tone` is the Dial's ringback where the provider
//! has one (not Plivo); a blocked caller hears each provider's busy. Every
//! case runs per provider and per store.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::cpaas::{
    ALICE, CALLER, SHARED, alice_desk_only, alice_with, assert_busy, assert_hangup, dial_ended,
    forwarded, next_event, only_dial, query_of, ring, session,
};
use crate::helpers::CpaasTest as _;
use crate::helpers::Element;
use crate::helpers::{Backend, Cpaas, DialEnd, local_path, spawn_app};
use crate::receiver::{Behaviour, WebhookReceiver};

crate::for_each_provider! {
    on_both_backends: [
        a_recording_subscribers_dial_records_from_answer_to_the_providers_recording_route,
        a_dial_records_nothing_when_the_subscriber_does_not_record,
        a_finished_recording_posts_call_recording_to_the_destinations_once,
        a_recording_ready_after_its_session_expired_is_still_sent_once,
        a_recording_naming_another_subscriber_sends_nothing,
        the_ring_tone_is_the_dials_ringback_except_on_plivo,
        a_blocked_caller_hears_busy_and_the_session_ends_missed,
    ],
    once: [],
}

/// The Dial of a forwarded call's markup: on Plivo it may follow the Record
/// that records it.
fn the_dial(response: &Element) -> &Element {
    response.child("Dial").unwrap()
}

/// Asserts that `response` records its Dial as `cpaas` does, and returns
/// where the finished recording is posted.
fn assert_records_from_answer(cpaas: Cpaas, response: &Element) -> String {
    let dial = the_dial(response);
    match cpaas {
        Cpaas::Twilio | Cpaas::Telnyx | Cpaas::SignalWire => {
            assert_eq!(response.child_names(), ["Dial"], "{response:?}");
            assert_eq!(dial.attr("record"), Some("record-from-answer-dual"));
            assert_eq!(dial.attr("recordingStatusCallbackEvent"), Some("completed"));
        }
        Cpaas::Plivo => {
            // Plivo's Dial has no recording attribute.
            assert_eq!(response.child_names(), ["Record", "Dial"], "{response:?}");
            let record = response.child("Record").unwrap();
            assert_eq!(record.attr("startOnDialAnswer"), Some("true"), "{record:?}");
            assert_eq!(record.attr("redirect"), Some("false"), "{record:?}");
            assert_eq!(record.attr("maxLength"), Some("14400"), "{record:?}");
            assert_eq!(dial.attr("record"), None, "{dial:?}");
        }
    }
    cpaas
        .recording_callback(response)
        .unwrap_or_else(|| panic!("{} records to somewhere: {response:?}", cpaas.name()))
        .to_owned()
}

/// Asserts that `response` records nothing.
fn assert_records_nothing(cpaas: Cpaas, response: &Element) {
    assert_eq!(response.child_names(), ["Dial"], "{response:?}");
    assert_eq!(cpaas.recording_callback(response), None, "{response:?}");
    let dial = only_dial(response);
    for attribute in [
        "record",
        "recordingStatusCallback",
        "recordingStatusCallbackEvent",
    ] {
        assert_eq!(dial.attr(attribute), None, "{dial:?}");
    }
}

async fn a_recording_subscribers_dial_records_from_answer_to_the_providers_recording_route(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(ALICE, &alice_with(json!({"record": "answer"})))
        .await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let first = forwarded(&app, cpaas, CALLER, SHARED).await;

    let callback = assert_records_from_answer(cpaas, &first);
    let path = local_path(&callback);
    assert_eq!(
        path.split('?').next(),
        Some(cpaas.routes().recording),
        "{callback}"
    );
    let query = query_of(&callback);
    assert_eq!(query.get("session"), Some(&alices), "{callback}");
    assert_eq!(query.get("subscriber").map(String::as_str), Some(ALICE));
    assert_eq!(query.get("step").map(String::as_str), Some("0"));
    // The next destination's Dial records too, with its own step.
    let second = dial_ended(&app, cpaas, the_dial(&first), DialEnd::Busy).await;
    let callback = assert_records_from_answer(cpaas, &second);
    assert_eq!(
        query_of(&callback).get("step").map(String::as_str),
        Some("1")
    );
}

async fn a_dial_records_nothing_when_the_subscriber_does_not_record(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(ALICE, &alice_with(json!({"record": "none"})))
        .await;
    ring(&app, &alice_reg, Some(CALLER)).await;

    let first = forwarded(&app, cpaas, CALLER, SHARED).await;

    assert_records_nothing(cpaas, &first);
    let second = dial_ended(&app, cpaas, only_dial(&first), DialEnd::Busy).await;
    assert_records_nothing(cpaas, &second);
}

/// The provider posting the recorded example of a finished recording to
/// `callback` (with `recording` as its URL when given): the answer, asserted
/// an empty document of the provider's markup.
async fn recording_ready(
    app: &crate::helpers::TestApp,
    cpaas: Cpaas,
    callback: &str,
    recording: Option<&str>,
) {
    let (url_param, _) = cpaas.recording_params();
    let mut request = cpaas.request("recording").at(&local_path(callback));
    if let Some(recording) = recording {
        request = request.with(url_param, recording);
    }
    let answer = request.markup(app).await;
    assert!(
        answer.children.is_empty() && answer.attrs.is_empty(),
        "an empty document: {answer:?}"
    );
}

async fn a_finished_recording_posts_call_recording_to_the_destinations_once(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let mut alice = alice_desk_only(Some(receiver.url("/desk")));
    alice["record"] = json!("answer");
    let alice_reg = app.register(ALICE, &alice).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let callback = assert_records_from_answer(cpaas, &first);
    assert_hangup(&dial_ended(&app, cpaas, the_dial(&first), DialEnd::Answered).await);
    next_event(&receiver, "call.connected").await;
    let (url_param, duration_param) = cpaas.recording_params();
    let example = cpaas.request("recording");
    let recorded = example.get(url_param).unwrap().to_owned();
    let duration: u64 = example.get(duration_param).unwrap().parse().unwrap();

    // The provider retries the callback: the same recording twice.
    recording_ready(&app, cpaas, &callback, None).await;
    recording_ready(&app, cpaas, &callback, None).await;
    // Another recording of the call (another Dial's) is news.
    let another = "https://recordings.example.com/another.mp3";
    recording_ready(&app, cpaas, &callback, Some(another)).await;

    let first_event = next_event(&receiver, "call.recording").await;
    let second_event = next_event(&receiver, "call.recording").await;
    assert!(first_event.signature_valid, "{first_event:?}");
    assert_eq!(first_event.path, "/desk");
    let data = &first_event.body["data"];
    assert_eq!(data["session_id"], alices.as_str(), "{data}");
    assert_eq!(data["subscriber"], ALICE, "{data}");
    assert_eq!(data["caller"], CALLER, "{data}");
    assert_eq!(data["duration_secs"], duration, "{data}");
    let urls: BTreeSet<&str> = [&first_event, &second_event]
        .iter()
        .map(|e| e.body["data"]["recording_url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, BTreeSet::from([recorded.as_str(), another]));
    // Nothing more comes: the retried callback sent nothing.
    app.deliveries_settled().await;
    let more = recordings_so_far(&receiver).await;
    assert!(more.is_empty(), "call.recording is sent once: {more:?}");
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "connected", "{s}");
}

/// The `call.recording` deliveries that arrived so far.
async fn recordings_so_far(receiver: &WebhookReceiver) -> Vec<Value> {
    receiver
        .arrived_so_far()
        .await
        .into_iter()
        .filter(|r| r.kind() == "call.recording")
        .map(|r| r.body)
        .collect()
}

async fn a_recording_ready_after_its_session_expired_is_still_sent_once(
    cpaas: Cpaas,
    backend: Backend,
) {
    // A call longer than SESSION_TTL_SECS: its recording comes when the
    // session is gone. The callback the provider posts names a session the
    // store no longer has (signed as the provider signs it).
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let mut alice = alice_desk_only(Some(receiver.url("/desk")));
    alice["record"] = json!("answer");
    let alice_reg = app.register(ALICE, &alice).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let written = assert_records_from_answer(cpaas, &first);
    let gone_id = ringrelay_server::domain::session::SessionId::generate();
    let callback = written.replace(&alices, gone_id.as_str());
    assert_ne!(callback, written);
    let gone = app
        .get_session(crate::helpers::ADMIN_TOKEN, gone_id.as_str())
        .await;
    assert_eq!(gone.status(), 404);
    let alices = gone_id.as_str().to_owned();

    recording_ready(&app, cpaas, &callback, None).await;
    recording_ready(&app, cpaas, &callback, None).await;

    let event = next_event(&receiver, "call.recording").await;
    let data = &event.body["data"];
    assert_eq!(data["session_id"], alices.as_str(), "{data}");
    assert_eq!(data["subscriber"], ALICE, "{data}");
    assert_eq!(data["caller"], CALLER, "{data}");
    let (url_param, _) = cpaas.recording_params();
    assert_eq!(
        data["recording_url"],
        cpaas.request("recording").get(url_param).unwrap(),
        "{data}"
    );
    app.deliveries_settled().await;
    let more = recordings_so_far(&receiver).await;
    assert!(more.is_empty(), "call.recording is sent once: {more:?}");
}

async fn a_recording_naming_another_subscriber_sends_nothing(cpaas: Cpaas, backend: Backend) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let mut alice = alice_desk_only(Some(receiver.url("/alice")));
    alice["record"] = json!("answer");
    let alice_reg = app.register(ALICE, &alice).await;
    let mut bob = crate::cpaas::bob(SHARED);
    bob["destinations"][0]["webhook_url"] = json!(receiver.url("/bob"));
    app.register(crate::cpaas::BOB, &bob).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let callback = assert_records_from_answer(cpaas, &first);
    assert_hangup(&dial_ended(&app, cpaas, the_dial(&first), DialEnd::Answered).await);
    next_event(&receiver, "call.connected").await;
    let before = session(&app, &alices).await;

    // Alice's session, Bob's number in the query (signed, so the provider
    // would post it as written).
    let bobs = callback.replace("%2B12025550199", "%2B12025550188");
    assert_ne!(bobs, callback);
    recording_ready(&app, cpaas, &bobs, None).await;

    app.deliveries_settled().await;
    let sent = recordings_so_far(&receiver).await;
    assert!(sent.is_empty(), "nothing for a foreign session: {sent:?}");
    assert_eq!(session(&app, &alices).await, before);
}

async fn the_ring_tone_is_the_dials_ringback_except_on_plivo(cpaas: Cpaas, backend: Backend) {
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(ALICE, &alice_with(json!({"ring_tone": "uk"})))
        .await;
    ring(&app, &alice_reg, Some(CALLER)).await;

    let first = forwarded(&app, cpaas, CALLER, SHARED).await;

    let dial = only_dial(&first);
    match cpaas {
        Cpaas::Twilio | Cpaas::Telnyx | Cpaas::SignalWire => {
            assert_eq!(dial.attr("ringTone"), Some("uk"), "{dial:?}");
        }
        // Plivo has no choice of ringback.
        Cpaas::Plivo => assert_eq!(dial.attr("ringTone"), None, "{dial:?}"),
    }
    let second = dial_ended(&app, cpaas, dial, DialEnd::Busy).await;
    let expected = (cpaas != Cpaas::Plivo).then_some("uk");
    assert_eq!(only_dial(&second).attr("ringTone"), expected, "{second:?}");
}

async fn a_blocked_caller_hears_busy_and_the_session_ends_missed(cpaas: Cpaas, backend: Backend) {
    let app = spawn_app(backend).await;
    // CALLER is +12025550302. (An example often given, `+1555*`, matches no
    // valid number: 555 is no area code.)
    let alice_reg = app
        .register(
            ALICE,
            &alice_with(json!({
                "caller_rules": [{"match": "+1202555*", "action": "block"}]
            })),
        )
        .await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let response = forwarded(&app, cpaas, CALLER, SHARED).await;

    assert_busy(cpaas, &response);
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "missed", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");
}
