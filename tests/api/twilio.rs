//! Twilio webhooks (contract §1 steps 5–6, §7) from the outside: a subscriber
//! registered and rung through the API, then Twilio's signed forms posted to
//! `/twilio/*`, the TwiML answered parsed back, and the session and the
//! destinations' webhooks observed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, PUBLIC_BASE_URL, Registered, TWILIO_AUTH_TOKEN, TestApp, assert_error,
    local_path, spawn_app, spawn_app_with,
};
use crate::markup::Node;
use crate::receiver::{Behaviour, Received, WebhookReceiver};

const ALICE: &str = "+12025550199";
const BOB: &str = "+12025550188";
/// Alice's forwarding number; Bob shares it in some tests.
const SHARED: &str = "+12025550100";
const DEDICATED: &str = "+12025550101";
const UNKNOWN_NUMBER: &str = "+12025550999";
const CALLER: &str = "+12025550302";
const OTHER_CALLER: &str = "+12025550303";
const ALICE_DESK: &str = "+12025550201";
const BOB_DESK: &str = "+12025550202";
const FALLBACK_PHONE: &str = "+12025550299";
const ALICE_SIP: &str = "sip:alice@pbx.example.com";
const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// Alice's ring timeout: not the default, so that it shows it was used.
const ALICE_RING_TIMEOUT: &str = "25";

// ---------------------------------------------------------------------------
// Subscribers

/// Alice: one destination of each kind, hunted in list order, voicemail last.
fn alice() -> Value {
    json!({
        "forwarding_number": SHARED,
        "mode": "auto",
        "strategy": "sequential",
        "ring_timeout_secs": 25,
        "destinations": [
            {"id": "desk", "kind": "phone", "address": ALICE_DESK},
            {"id": "laptop", "kind": "client", "address": "alice"},
            {"id": "pbx", "kind": "sip", "address": ALICE_SIP}
        ]
    })
}

/// Alice with some top-level fields replaced.
fn alice_with(patch: Value) -> Value {
    let mut body = alice();
    for (key, value) in patch.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// Alice with only her desk phone, whose notifications go to `webhook_url`.
fn alice_desk_only(webhook_url: Option<String>) -> Value {
    alice_with(json!({
        "destinations": [
            {"id": "desk", "kind": "phone", "address": ALICE_DESK, "webhook_url": webhook_url}
        ]
    }))
}

/// Bob: one phone, forwarding to `forwarding_number`.
fn bob(forwarding_number: &str) -> Value {
    json!({
        "forwarding_number": forwarding_number,
        "destinations": [{"id": "desk", "kind": "phone", "address": BOB_DESK}]
    })
}

// ---------------------------------------------------------------------------
// The phone's side

/// A ring report from the subscriber's phone; the new session's id.
async fn ring(app: &TestApp, registered: &Registered, caller: Option<&str>) -> String {
    let response = app
        .ring(&registered.device_token, &json!({"caller": caller}))
        .await;
    assert_eq!(response.status(), 201, "ring report");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instruction"], "reject", "auto mode rejects: {body}");
    body["session_id"].as_str().unwrap().to_owned()
}

/// Lets the clock move on, so that the next session is reported strictly
/// later (sessions are ordered by report time, to the millisecond).
async fn next_millisecond() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// The session as the admin API shows it.
async fn session(app: &TestApp, id: &str) -> Value {
    let response = app.get_session(ADMIN_TOKEN, id).await;
    assert_eq!(response.status(), 200, "session {id}");
    response.json().await.unwrap()
}

/// Asserts the session still waits for its forwarded call.
async fn assert_unclaimed(app: &TestApp, id: &str) {
    let s = session(app, id).await;
    assert_eq!(s["state"], "instructed", "{s}");
    assert_eq!(s["call_sid"], Value::Null, "{s}");
    assert_eq!(s["timeline"]["forwarded_at"], Value::Null, "{s}");
}

// ---------------------------------------------------------------------------
// Twilio's side

/// A CallSid no other call of this test run has.
fn call_sid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "CA{:016x}{:016x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The voice webhook's parameters as Twilio sends them for a forwarded call.
fn voice_params<'a>(sid: &'a str, from: &'a str, to: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CallSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("Caller", from),
        ("To", to),
        ("Called", to),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("ApiVersion", "2010-04-01"),
    ]
}

/// A forwarded call from `from` reaching `to`: the TwiML answered.
async fn forwarded(app: &TestApp, from: &str, to: &str) -> Node {
    forwarded_as(app, &call_sid(), from, to, None).await
}

/// The same, with a chosen CallSid and, if the carrier sent it, ForwardedFrom.
async fn forwarded_as(
    app: &TestApp,
    sid: &str,
    from: &str,
    to: &str,
    forwarded_from: Option<&str>,
) -> Node {
    let mut params = voice_params(sid, from, to);
    if let Some(subscriber) = forwarded_from {
        params.push(("ForwardedFrom", subscriber));
    }
    app.twiml("/twilio/voice", &params).await
}

/// Twilio posting the outcome of `dial` to its `action`: the TwiML answered.
/// Like every call webhook it repeats the call's own parameters; every call
/// hunted in these tests comes from `CALLER` to `SHARED`.
async fn dial_ended(app: &TestApp, dial: &Node, status: &str) -> Node {
    let action = dial.attr("action").expect("the Dial has an action");
    let answered = matches!(status, "completed" | "answered");
    let dial_sid = call_sid();
    app.twiml(
        &local_path(action),
        &[
            ("CallSid", "CA0000000000000000000000000000parent"),
            ("AccountSid", ACCOUNT_SID),
            ("From", CALLER),
            ("To", SHARED),
            ("Direction", "inbound"),
            ("CallStatus", "in-progress"),
            ("DialCallStatus", status),
            ("DialCallSid", dial_sid.as_str()),
            ("DialCallDuration", if answered { "42" } else { "0" }),
            ("DialBridged", if answered { "true" } else { "false" }),
        ],
    )
    .await
}

/// Twilio posting the end of `record` to its `action`: the TwiML answered.
async fn recording_ended(app: &TestApp, record: &Node, recording_url: &str) -> Node {
    let action = record.attr("action").expect("the Record has an action");
    app.twiml(
        &local_path(action),
        &[
            ("CallSid", "CA0000000000000000000000000000parent"),
            ("AccountSid", ACCOUNT_SID),
            ("RecordingUrl", recording_url),
            ("RecordingSid", "RE00000000000000000000000000000001"),
            ("RecordingDuration", "7"),
            ("Digits", "hangup"),
        ],
    )
    .await
}

/// X-Twilio-Signature computed here from Twilio's description (HMAC-SHA1
/// over the URL then the sorted `name + value` pairs), not by the service.
fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(TWILIO_AUTH_TOKEN.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A form posted to `path` with the given signature header (or none).
async fn post_form(
    app: &TestApp,
    path: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).form(params);
    if let Some(signature) = signature {
        request = request.header("X-Twilio-Signature", signature);
    }
    request.send().await.unwrap()
}

/// Asserts a refused webhook: 403, the JSON error, and no markup.
async fn assert_refused(response: reqwest::Response) {
    let body = assert_error(response, 403, "invalid_signature").await;
    assert!(!body.to_string().contains("Response"), "no markup: {body}");
}

// ---------------------------------------------------------------------------
// The TwiML

/// The response's only verb, a `<Dial>`.
fn only_dial(response: &Node) -> &Node {
    assert_eq!(response.child_names(), ["Dial"], "{response:?}");
    &response.children[0]
}

/// What a `<Dial>` rings, as (noun, address) pairs.
fn nouns(dial: &Node) -> Vec<(&str, &str)> {
    dial.children
        .iter()
        .map(|n| (n.name.as_str(), n.text.as_str()))
        .collect()
}

/// The query of one of our callback URLs.
fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url} is not an absolute URL: {e}"))
        .query_pairs()
        .into_owned()
        .collect()
}

/// The session a Dial's or Record's `action` carries.
fn session_in(node: &Node) -> Option<String> {
    query_of(node.attr("action").expect("an action")).remove("session")
}

/// Asserts `node`'s action posts back to our `path` with `session`.
fn assert_callback(node: &Node, path: &str, session: &str) {
    let action = node.attr("action").expect("an action");
    assert!(
        action.starts_with(&format!("{PUBLIC_BASE_URL}{path}?")),
        "{action} is not our {path}"
    );
    assert_eq!(node.attr("method"), Some("POST"), "{node:?}");
    assert_eq!(session_in(node).as_deref(), Some(session), "{action}");
}

/// Asserts a Dial as the contract shapes it for Alice's call from `caller`.
fn assert_alice_dial(dial: &Node, caller_id: Option<&str>, session: &str) {
    assert_eq!(dial.attr("timeout"), Some(ALICE_RING_TIMEOUT), "{dial:?}");
    assert_eq!(dial.attr("answerOnBridge"), Some("true"), "{dial:?}");
    assert_eq!(dial.attr("callerId"), caller_id, "{dial:?}");
    assert_callback(dial, "/twilio/dial-status", session);
}

fn assert_hangup(response: &Node) {
    assert_eq!(response.child_names(), ["Hangup"], "{response:?}");
}

/// The unknown-call answer: a short spoken message, then hang up.
fn assert_unknown_call(response: &Node) {
    assert_eq!(response.child_names(), ["Say", "Hangup"], "{response:?}");
    assert!(!response.children[0].text.trim().is_empty(), "{response:?}");
}

/// The voicemail fallback: a greeting, then `<Record>`; the Record.
fn assert_voicemail(response: &Node) -> &Node {
    assert_eq!(response.child_names(), ["Say", "Record"], "{response:?}");
    assert!(!response.children[0].text.trim().is_empty(), "a greeting");
    let record = response.child("Record");
    assert_eq!(record.attr("maxLength"), Some("120"), "{record:?}");
    record
}

// ---------------------------------------------------------------------------
// Destination webhooks

/// The next delivery of type `kind`, skipping others (`call.ringing` first).
async fn next_event(receiver: &WebhookReceiver, kind: &str) -> Received {
    loop {
        let received = receiver.next().await;
        if received.kind() == kind {
            return received;
        }
    }
}

// ---------------------------------------------------------------------------
// Store-dependent behaviour, on both backends

both_backends! {
    // §7 matching, rule 1: ForwardedFrom wins over the shared number's order.
    voice_claims_the_forwarded_from_subscribers_session_when_forwarded_from_names_a_known_subscriber
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let bob_reg = app.register(BOB, &bob(SHARED)).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        next_millisecond().await;
        let bobs = ring(&app, &bob_reg, Some(CALLER)).await;
        let sid = call_sid();

        let response = forwarded_as(&app, &sid, CALLER, SHARED, Some(BOB)).await;

        let dial = only_dial(&response);
        assert_eq!(nouns(dial), [("Number", BOB_DESK)]);
        assert_callback(dial, "/twilio/dial-status", &bobs);
        let claimed = session(&app, &bobs).await;
        assert_eq!(claimed["state"], "forwarded", "{claimed}");
        assert_eq!(claimed["call_sid"], sid.as_str());
        assert!(claimed["timeline"]["forwarded_at"].is_string(), "{claimed}");
        assert_unclaimed(&app, &alices).await;
    };

    voice_claims_the_dedicated_numbers_subscriber_when_forwarded_from_is_absent
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let bob_reg = app.register(BOB, &bob(DEDICATED)).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        next_millisecond().await;
        let bobs = ring(&app, &bob_reg, Some(CALLER)).await;

        let response = forwarded(&app, CALLER, DEDICATED).await;

        let dial = only_dial(&response);
        assert_eq!(nouns(dial), [("Number", BOB_DESK)]);
        assert_callback(dial, "/twilio/dial-status", &bobs);
        assert_eq!(session(&app, &bobs).await["state"], "forwarded");
        assert_unclaimed(&app, &alices).await;
    };

    voice_falls_back_to_the_forwarding_number_when_forwarded_from_is_not_a_subscriber
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let bob_reg = app.register(BOB, &bob(DEDICATED)).await;
        let bobs = ring(&app, &bob_reg, Some(CALLER)).await;

        let response = forwarded_as(&app, &call_sid(), CALLER, DEDICATED, Some(UNKNOWN_NUMBER)).await;

        let dial = only_dial(&response);
        assert_eq!(nouns(dial), [("Number", BOB_DESK)]);
        assert_callback(dial, "/twilio/dial-status", &bobs);
    };

    voice_claims_the_subscriber_whose_session_waits_for_the_caller_when_the_number_is_shared
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        app.register(ALICE, &alice()).await;
        let bob_reg = app.register(BOB, &bob(SHARED)).await;
        let bobs = ring(&app, &bob_reg, Some(CALLER)).await;
        let sid = call_sid();

        let response = forwarded_as(&app, &sid, CALLER, SHARED, None).await;

        let dial = only_dial(&response);
        assert_eq!(nouns(dial), [("Number", BOB_DESK)]);
        assert_callback(dial, "/twilio/dial-status", &bobs);
        let claimed = session(&app, &bobs).await;
        assert_eq!(claimed["state"], "forwarded", "{claimed}");
        assert_eq!(claimed["call_sid"], sid.as_str());
    };

    voice_claims_the_session_when_the_phone_reported_the_caller_in_national_format
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some("(202) 555-0302")).await;

        let response = forwarded(&app, CALLER, SHARED).await;

        let dial = only_dial(&response);
        assert_alice_dial(dial, Some(CALLER), &alices);
        assert_eq!(session(&app, &alices).await["caller"], CALLER);
    };

    voice_claims_the_oldest_session_first_when_one_caller_has_two
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let older = ring(&app, &alice_reg, Some(CALLER)).await;
        next_millisecond().await;
        let newer = ring(&app, &alice_reg, Some(CALLER)).await;
        let (first_sid, second_sid) = (call_sid(), call_sid());

        let first = forwarded_as(&app, &first_sid, CALLER, SHARED, None).await;
        let second = forwarded_as(&app, &second_sid, CALLER, SHARED, None).await;
        let third = forwarded(&app, CALLER, SHARED).await;

        assert_callback(only_dial(&first), "/twilio/dial-status", &older);
        assert_callback(only_dial(&second), "/twilio/dial-status", &newer);
        assert_eq!(session(&app, &older).await["call_sid"], first_sid.as_str());
        assert_eq!(session(&app, &newer).await["call_sid"], second_sid.as_str());
        // Nothing waits any more: the third is dialed with a session of its own.
        let third_session = session_in(only_dial(&third)).expect("a session of its own");
        assert!(third_session != older && third_session != newer, "{third_session}");
    };

    voice_claims_the_most_recent_session_without_caller_id_when_the_caller_is_withheld
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let older = ring(&app, &alice_reg, None).await;
        next_millisecond().await;
        let newer = ring(&app, &alice_reg, None).await;

        let first = forwarded(&app, "+266696687", SHARED).await;
        let second = forwarded(&app, "anonymous", SHARED).await;

        let dial = only_dial(&first);
        assert_eq!(nouns(dial), [("Number", ALICE_DESK)]);
        // No callerId at all: never a withheld marker.
        assert_alice_dial(dial, None, &newer);
        let dial = only_dial(&second);
        assert_alice_dial(dial, None, &older);
        for id in [&older, &newer] {
            let s = session(&app, id).await;
            assert_eq!(s["state"], "forwarded", "{s}");
            assert_eq!(s["caller"], Value::Null, "{s}");
        }
    };

    voice_dials_the_first_destination_and_creates_a_session_when_the_subscriber_has_none
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        app.register(ALICE, &alice()).await;
        let sid = call_sid();

        let response = forwarded_as(&app, &sid, CALLER, SHARED, None).await;

        let dial = only_dial(&response);
        assert_eq!(nouns(dial), [("Number", ALICE_DESK)]);
        let created = session_in(dial).expect("the call got a session");
        assert_alice_dial(dial, Some(CALLER), &created);
        let s = session(&app, &created).await;
        assert_eq!(s["state"], "forwarded", "{s}");
        assert_eq!(s["subscriber"], ALICE);
        assert_eq!(s["caller"], CALLER);
        assert_eq!(s["call_sid"], sid.as_str());
        assert_eq!(s["timeline"]["reported_at"], Value::Null, "no ring report: {s}");
        assert!(s["timeline"]["forwarded_at"].is_string(), "{s}");
    };

    voice_hunts_a_pick_mode_subscriber_as_in_auto_mode_when_it_has_no_session
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        app.register(ALICE, &alice_with(json!({"mode": "pick"}))).await;

        let first = forwarded(&app, CALLER, SHARED).await;
        let desk = only_dial(&first);
        assert_eq!(nouns(desk), [("Number", ALICE_DESK)]);
        let created = session_in(desk).expect("the call got a session");
        assert_alice_dial(desk, Some(CALLER), &created);

        // No destination accepted, so all of them are hunted, in order.
        let second = dial_ended(&app, desk, "busy").await;
        let laptop = only_dial(&second);
        assert_eq!(nouns(laptop), [("Client", "alice")]);
        assert_alice_dial(laptop, Some(CALLER), &created);
    };

    voice_says_a_message_and_hangs_up_when_no_session_waits_on_a_shared_number
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        app.register(ALICE, &alice()).await;
        let bob_reg = app.register(BOB, &bob(SHARED)).await;
        let bobs = ring(&app, &bob_reg, Some(OTHER_CALLER)).await;

        let response = forwarded(&app, CALLER, SHARED).await;

        assert_unknown_call(&response);
        // The session of the other caller was left alone.
        assert_unclaimed(&app, &bobs).await;
        let claimed = forwarded(&app, OTHER_CALLER, SHARED).await;
        assert_callback(only_dial(&claimed), "/twilio/dial-status", &bobs);
    };

    voice_says_a_message_and_hangs_up_when_the_forwarding_number_is_unknown
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;

        let response = forwarded(&app, CALLER, UNKNOWN_NUMBER).await;

        assert_unknown_call(&response);
        assert_unclaimed(&app, &alices).await;
    };

    // §7 Dial markup
    voice_dials_one_number_with_the_subscribers_timeout_and_the_callers_id_when_sequential
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;

        let response = forwarded(&app, CALLER, SHARED).await;

        let dial = only_dial(&response);
        assert_eq!(nouns(dial), [("Number", ALICE_DESK)]);
        assert_alice_dial(dial, Some(CALLER), &alices);
        assert!(dial.children[0].attrs.is_empty(), "no whisper: {dial:?}");
    };

    voice_rings_every_destination_in_one_dial_when_simultaneous
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app
            .register(ALICE, &alice_with(json!({
                "strategy": "simultaneous",
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": ALICE_DESK},
                    {"id": "pbx", "kind": "sip", "address": ALICE_SIP},
                    {"id": "laptop", "kind": "client", "address": "alice"}
                ]
            })))
            .await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;

        let response = forwarded(&app, CALLER, SHARED).await;
        let dial = only_dial(&response);
        assert_eq!(
            nouns(dial),
            [("Number", ALICE_DESK), ("Sip", ALICE_SIP), ("Client", "alice")]
        );
        assert_alice_dial(dial, Some(CALLER), &alices);

        // Nobody answered: no second round, the fallback.
        let next = dial_ended(&app, dial, "no-answer").await;
        assert_callback(assert_voicemail(&next), "/twilio/voicemail", &alices);
    };

    // §7 dial-status: the hunt
    dial_status_hunts_each_destination_then_voicemail_when_legs_fail
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, CALLER, SHARED).await;
        let desk = only_dial(&first);

        let second = dial_ended(&app, desk, "busy").await;
        let laptop = only_dial(&second);
        assert_eq!(nouns(laptop), [("Client", "alice")]);
        assert_alice_dial(laptop, Some(CALLER), &alices);

        let third = dial_ended(&app, laptop, "no-answer").await;
        let pbx = only_dial(&third);
        assert_eq!(nouns(pbx), [("Sip", ALICE_SIP)]);
        assert_alice_dial(pbx, Some(CALLER), &alices);

        let fourth = dial_ended(&app, pbx, "failed").await;
        let record = assert_voicemail(&fourth);
        assert_callback(record, "/twilio/voicemail", &alices);

        let s = session(&app, &alices).await;
        assert_eq!(s["state"], "forwarded", "waiting for the recording: {s}");
        assert_eq!(s["selected_destination"], Value::Null, "{s}");
        assert_eq!(s["legs"], json!([
            {"destination_id": "desk", "status": "busy"},
            {"destination_id": "laptop", "status": "no-answer"},
            {"destination_id": "pbx", "status": "failed"}
        ]));
    };

    dial_status_dials_the_fallback_number_when_the_last_destination_fails_and_fallback_is_phone
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let mut body = alice_desk_only(None);
        body["fallback"] = json!({"kind": "phone", "address": FALLBACK_PHONE});
        let alice_reg = app.register(ALICE, &body).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, CALLER, SHARED).await;

        let second = dial_ended(&app, only_dial(&first), "busy").await;

        let fallback = only_dial(&second);
        assert_eq!(nouns(fallback), [("Number", FALLBACK_PHONE)]);
        assert_alice_dial(fallback, Some(CALLER), &alices);
        assert_eq!(session(&app, &alices).await["state"], "forwarded");

        // The fallback number does not answer either: nothing is left.
        let third = dial_ended(&app, fallback, "no-answer").await;
        assert_hangup(&third);
        let s = session(&app, &alices).await;
        assert_eq!(s["state"], "missed", "{s}");
        assert!(s["timeline"]["ended_at"].is_string(), "{s}");
    };

    dial_status_hangs_up_and_marks_the_session_missed_when_the_last_leg_fails_and_fallback_is_hangup
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let mut body = alice_desk_only(None);
        body["fallback"] = json!({"kind": "hangup"});
        let alice_reg = app.register(ALICE, &body).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, CALLER, SHARED).await;

        let second = dial_ended(&app, only_dial(&first), "busy").await;

        assert_hangup(&second);
        let s = session(&app, &alices).await;
        assert_eq!(s["state"], "missed", "{s}");
        assert!(s["timeline"]["ended_at"].is_string(), "{s}");
        assert_eq!(s["timeline"]["connected_at"], Value::Null, "{s}");
        assert_eq!(s["legs"], json!([{"destination_id": "desk", "status": "busy"}]));
    };

    dial_status_hangs_up_and_records_the_connection_when_a_later_destination_answers
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let sid = call_sid();
        let first = forwarded_as(&app, &sid, CALLER, SHARED, None).await;
        let second = dial_ended(&app, only_dial(&first), "busy").await;

        let third = dial_ended(&app, only_dial(&second), "completed").await;

        assert_hangup(&third);
        let s = session(&app, &alices).await;
        assert_eq!(s["state"], "connected", "{s}");
        assert_eq!(s["selected_destination"], "laptop", "{s}");
        assert_eq!(s["call_sid"], sid.as_str());
        assert!(s["timeline"]["connected_at"].is_string(), "{s}");
        let legs = s["legs"].as_array().unwrap();
        assert_eq!(legs.len(), 2, "{s}");
        assert_eq!(legs[0], json!({"destination_id": "desk", "status": "busy"}));
        assert_eq!(legs[1]["destination_id"], "laptop", "{s}");
        assert!(
            matches!(legs[1]["status"].as_str(), Some("answered" | "completed")),
            "{s}"
        );
    };

    dial_status_hangs_up_and_connects_when_the_first_destination_reports_answered
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, CALLER, SHARED).await;

        let second = dial_ended(&app, only_dial(&first), "answered").await;

        assert_hangup(&second);
        let s = session(&app, &alices).await;
        assert_eq!(s["state"], "connected", "{s}");
        assert_eq!(s["selected_destination"], "desk", "{s}");
        assert!(s["timeline"]["connected_at"].is_string(), "{s}");
    };

    dial_status_hangs_up_without_hunting_when_the_caller_canceled
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, CALLER, SHARED).await;

        let second = dial_ended(&app, only_dial(&first), "canceled").await;

        assert_hangup(&second);
        let s = session(&app, &alices).await;
        // The caller gave up: nobody took the call.
        assert_eq!(s["state"], "missed", "{s}");
        assert_eq!(s["timeline"]["connected_at"], Value::Null, "{s}");
        assert_eq!(s["selected_destination"], Value::Null, "{s}");
    };

    // §7 voicemail and the destinations' webhooks (§5)
    voicemail_hangs_up_and_posts_call_voicemail_when_a_recording_arrives
        => |backend: Backend| async move {
        let receiver = WebhookReceiver::start(Behaviour::Answer).await;
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice_desk_only(Some(receiver.url("/desk")))).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, CALLER, SHARED).await;
        let second = dial_ended(&app, only_dial(&first), "busy").await;
        let record = assert_voicemail(&second);
        let recording =
            "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Recordings/RE00000000000000000000000000000001";

        let third = recording_ended(&app, record, recording).await;

        assert_hangup(&third);
        let s = session(&app, &alices).await;
        assert_eq!(s["state"], "voicemail", "{s}");
        assert!(s["timeline"]["ended_at"].is_string(), "{s}");
        let event = next_event(&receiver, "call.voicemail").await;
        assert!(event.signature_valid, "Standard Webhooks signature: {event:?}");
        assert_eq!(event.path, "/desk");
        assert_eq!(event.body["data"]["recording_url"], recording, "{:?}", event.body);
        assert_eq!(event.body["data"]["session_id"], alices.as_str());
        assert_eq!(event.body["data"]["subscriber"], ALICE);
        assert_eq!(event.body["data"]["caller"], CALLER);
    };

    dial_status_posts_call_connected_when_a_destination_answers
        => |backend: Backend| async move {
        let receiver = WebhookReceiver::start(Behaviour::Answer).await;
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice_desk_only(Some(receiver.url("/desk")))).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, CALLER, SHARED).await;

        let second = dial_ended(&app, only_dial(&first), "completed").await;

        assert_hangup(&second);
        let event = next_event(&receiver, "call.connected").await;
        assert!(event.signature_valid, "Standard Webhooks signature: {event:?}");
        assert_eq!(event.body["data"]["session_id"], alices.as_str(), "{:?}", event.body);
        assert_eq!(event.body["data"]["destination_id"], "desk", "{:?}", event.body);
        assert_eq!(event.body["data"]["caller"], CALLER);
    };

    // §7 signatures: refused before anything is read or written
    voice_refuses_with_403_and_changes_nothing_when_the_signature_is_missing_or_wrong
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let sid = call_sid();
        let params = voice_params(&sid, CALLER, SHARED);
        let voice_url = format!("{PUBLIC_BASE_URL}/twilio/voice");
        let mut tampered = params.clone();
        tampered[2] = ("From", OTHER_CALLER);

        // No header at all.
        assert_refused(post_form(&app, "/twilio/voice", &params, None).await).await;
        // An empty header.
        assert_refused(post_form(&app, "/twilio/voice", &params, Some("")).await).await;
        // Not the signature of this request.
        assert_refused(
            post_form(&app, "/twilio/voice", &params, Some("9c7wVvCXUWXxCzqb4KeHTqMrb2Y=")).await,
        )
        .await;
        // A signature over another URL (a query Twilio never sent).
        let other_url = twilio_signature(&format!("{voice_url}?x=1"), &params);
        assert_refused(post_form(&app, "/twilio/voice", &params, Some(&other_url)).await).await;
        // A signature over another host.
        let other_host = twilio_signature("https://evil.example.com/twilio/voice", &params);
        assert_refused(post_form(&app, "/twilio/voice", &params, Some(&other_host)).await).await;
        // A parameter changed after signing.
        let genuine = twilio_signature(&voice_url, &params);
        assert_refused(post_form(&app, "/twilio/voice", &tampered, Some(&genuine)).await).await;
        // A parameter added after signing.
        let mut added = params.clone();
        added.push(("ForwardedFrom", BOB));
        assert_refused(post_form(&app, "/twilio/voice", &added, Some(&genuine)).await).await;

        assert_unclaimed(&app, &alices).await;
        // The genuine request, signed independently of the service, claims it.
        let response = post_form(&app, "/twilio/voice", &params, Some(&genuine)).await;
        assert_eq!(response.status(), 200);
        let twiml = crate::markup::parse(&response.text().await.unwrap());
        assert_callback(only_dial(&twiml), "/twilio/dial-status", &alices);
        assert_eq!(session(&app, &alices).await["call_sid"], sid.as_str());
    };

    dial_status_and_voicemail_refuse_with_403_and_change_nothing_when_the_signature_is_wrong
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, CALLER, SHARED).await;
        let dial_path = local_path(only_dial(&first).attr("action").unwrap());
        let voicemail_path = dial_path.replace("/twilio/dial-status", "/twilio/voicemail");
        let answered = [("CallSid", "CA1"), ("DialCallStatus", "completed")];
        let recorded = [("CallSid", "CA1"), ("RecordingUrl", "https://api.twilio.com/r/RE1")];
        // Signed for another session: the query is part of what is signed.
        let signed_elsewhere = twilio_signature(
            &format!("{PUBLIC_BASE_URL}/twilio/dial-status?subscriber=%2B12025550199&session=ses_AAAAAAAAAAAAAAAAAAAAAA&step=0"),
            &answered,
        );

        assert_refused(post_form(&app, &dial_path, &answered, None).await).await;
        assert_refused(post_form(&app, &dial_path, &answered, Some(&signed_elsewhere)).await).await;
        assert_refused(post_form(&app, &voicemail_path, &recorded, None).await).await;
        assert_refused(
            post_form(&app, &voicemail_path, &recorded, Some("9c7wVvCXUWXxCzqb4KeHTqMrb2Y=")).await,
        )
        .await;
        assert_refused(post_form(&app, "/twilio/status", &[("CallSid", "CA1")], None).await).await;

        let s = session(&app, &alices).await;
        assert_eq!(s["state"], "forwarded", "{s}");
        assert_eq!(s["legs"], json!([]), "{s}");
    };

    // §7 claim atomicity
    voice_gives_the_waiting_session_to_exactly_one_of_twenty_concurrent_webhooks
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let sids: Vec<String> = (0..20).map(|_| call_sid()).collect();

        let responses = futures_util::future::join_all(
            sids.iter().map(|sid| forwarded_as(&app, sid, CALLER, SHARED, None)),
        )
        .await;

        let sessions: Vec<String> = responses
            .iter()
            .map(|r| session_in(only_dial(r)).expect("every call is dialed with a session"))
            .collect();
        let winners: Vec<usize> = (0..sessions.len()).filter(|&i| sessions[i] == alices).collect();
        assert_eq!(winners.len(), 1, "exactly one claim: {sessions:?}");
        let mut others: Vec<&String> = sessions.iter().filter(|s| **s != alices).collect();
        others.sort();
        others.dedup();
        assert_eq!(others.len(), 19, "each other call has its own session: {sessions:?}");
        let s = session(&app, &alices).await;
        assert_eq!(s["call_sid"], sids[winners[0]].as_str(), "{s}");
        for other in others {
            let o = session(&app, other).await;
            assert_eq!(o["timeline"]["reported_at"], Value::Null, "{o}");
            assert_eq!(o["state"], "forwarded", "{o}");
        }
    };
}

// ---------------------------------------------------------------------------
// Configuration, several instances, outages, odd input

#[tokio::test]
async fn twilio_routes_answer_503_when_twilio_auth_token_is_unset() {
    let app = spawn_app_with(Backend::Memory, &[("TWILIO_AUTH_TOKEN", "")]).await;
    app.register(ALICE, &alice()).await;
    let sid = call_sid();
    let params = voice_params(&sid, CALLER, SHARED);
    let some_signature = twilio_signature(&format!("{PUBLIC_BASE_URL}/twilio/voice"), &params);
    let routes = [
        "/twilio/voice",
        "/twilio/dial-status?subscriber=%2B12025550199&step=0",
        "/twilio/voicemail?subscriber=%2B12025550199&step=1",
        "/twilio/status",
    ];

    for route in routes {
        for signature in [None, Some(some_signature.as_str())] {
            let response = post_form(&app, route, &params, signature).await;
            let body = assert_error(response, 503, "not_configured").await;
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("TWILIO_AUTH_TOKEN"),
                "{route}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn voice_accepts_a_signature_over_the_url_with_the_default_port() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let sid = call_sid();
    let params = voice_params(&sid, CALLER, SHARED);
    let with_port = twilio_signature("https://relay.example.com:443/twilio/voice", &params);

    let response = post_form(&app, "/twilio/voice", &params, Some(&with_port)).await;

    assert_eq!(response.status(), 200);
    let twiml = crate::markup::parse(&response.text().await.unwrap());
    assert_callback(only_dial(&twiml), "/twilio/dial-status", &alices);
}

#[tokio::test]
async fn voice_on_another_instance_claims_the_session_and_the_first_continues_the_hunt() {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    let alice_reg = a.register(ALICE, &alice()).await;
    let alices = ring(&a, &alice_reg, Some(CALLER)).await;
    let sid = call_sid();

    let first = forwarded_as(&b, &sid, CALLER, SHARED, None).await;
    let desk = only_dial(&first);
    assert_eq!(nouns(desk), [("Number", ALICE_DESK)]);
    assert_alice_dial(desk, Some(CALLER), &alices);

    let second = dial_ended(&a, desk, "busy").await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [("Client", "alice")]);
    assert_alice_dial(laptop, Some(CALLER), &alices);

    let third = dial_ended(&b, laptop, "completed").await;
    assert_hangup(&third);
    let s = session(&a, &alices).await;
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["call_sid"], sid.as_str());
    assert_eq!(s["selected_destination"], "laptop", "{s}");
}

#[tokio::test]
async fn voice_gives_the_session_to_exactly_one_webhook_across_two_instances() {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    let alice_reg = a.register(ALICE, &alice()).await;
    let alices = ring(&a, &alice_reg, Some(CALLER)).await;
    let sids: Vec<String> = (0..20).map(|_| call_sid()).collect();

    let responses = futures_util::future::join_all(sids.iter().enumerate().map(|(i, sid)| {
        let app = if i % 2 == 0 { &a } else { &b };
        forwarded_as(app, sid, CALLER, SHARED, None)
    }))
    .await;

    let claims = responses
        .iter()
        .filter(|r| session_in(only_dial(r)).as_deref() == Some(alices.as_str()))
        .count();
    assert_eq!(claims, 1, "exactly one claim across instances");
}

#[tokio::test]
async fn voice_and_dial_status_still_dial_from_the_last_known_subscriber_when_redis_is_down() {
    let app = spawn_app(Backend::redis()).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    ring(&app, &alice_reg, Some(CALLER)).await;
    app.backend.test_redis().stop();

    let first = forwarded(&app, CALLER, SHARED).await;
    let desk = only_dial(&first);
    assert_eq!(nouns(desk), [("Number", ALICE_DESK)]);
    assert_eq!(desk.attr("callerId"), Some(CALLER));
    assert_eq!(desk.attr("timeout"), Some(ALICE_RING_TIMEOUT));

    let second = dial_ended(&app, desk, "busy").await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [("Client", "alice")]);
    // Without the session, the caller comes from the callback's `From`.
    assert_eq!(laptop.attr("callerId"), Some(CALLER));
}

#[tokio::test]
async fn voice_says_the_unknown_call_message_when_redis_is_down_and_the_subscriber_was_never_seen()
{
    let a = spawn_app(Backend::redis()).await;
    // B starts before Alice exists, and never reads her.
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    let alice_reg = a.register(ALICE, &alice()).await;
    ring(&a, &alice_reg, Some(CALLER)).await;
    a.backend.test_redis().stop();

    assert_unknown_call(&forwarded(&b, CALLER, SHARED).await);
    assert_unknown_call(&forwarded(&a, CALLER, UNKNOWN_NUMBER).await);
    // A hunt callback for a subscriber B cannot see still gets markup.
    let callback = "/twilio/dial-status?subscriber=%2B12025550199&step=0";
    let response = b
        .twiml(callback, &[("CallSid", "CA1"), ("DialCallStatus", "busy")])
        .await;
    assert_hangup(&response);
}

#[tokio::test]
async fn voice_says_the_unknown_call_message_when_the_webhook_describes_no_call() {
    let app = spawn_app(Backend::Memory).await;
    app.register(ALICE, &alice()).await;
    let without_sid: Vec<_> = voice_params("unused", CALLER, SHARED)
        .into_iter()
        .filter(|(name, _)| *name != "CallSid")
        .collect();
    let empty_sid = voice_params("", CALLER, SHARED);
    let sid = call_sid();
    let to_a_client = voice_params(&sid, CALLER, "client:alice");

    for params in [without_sid, empty_sid, Vec::new(), to_a_client] {
        let response = app.twiml("/twilio/voice", &params).await;
        assert_unknown_call(&response);
    }
}

#[tokio::test]
async fn dial_status_and_voicemail_hang_up_when_the_callback_query_is_not_ours() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    forwarded(&app, CALLER, SHARED).await;
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
    let params = [
        ("CallSid", "CA1"),
        ("DialCallStatus", "busy"),
        ("RecordingUrl", "https://api.twilio.com/r/RE1"),
    ];

    for query in &queries {
        for route in ["/twilio/dial-status", "/twilio/voicemail"] {
            let response = app.twiml(&format!("{route}{query}"), &params).await;
            assert_hangup(&response);
        }
    }
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "forwarded", "{s}");
    assert_eq!(s["legs"], json!([]), "{s}");
}

#[tokio::test]
async fn status_answers_204_without_a_body() {
    let app = spawn_app(Backend::Memory).await;
    let sid = call_sid();
    let mut params = voice_params(&sid, CALLER, SHARED);
    params.retain(|(name, _)| *name != "CallStatus");
    params.push(("CallStatus", "completed"));
    params.push(("CallDuration", "42"));

    let response = app.twilio("/twilio/status", &params).await;

    assert_eq!(response.status(), 204);
    assert!(response.text().await.unwrap().is_empty());
}
