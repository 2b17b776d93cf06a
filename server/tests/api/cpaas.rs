//! The CPaaS webhooks (contract §1 steps 5–6, §7) from the outside, once per
//! provider: a subscriber registered and rung through the API, then the
//! provider's recorded requests (`fixtures/requests/<provider>/`) signed as
//! it signs them and posted to its routes, the markup answered parsed back,
//! and the session and the destinations' webhooks observed.
//!
//! Every case is one `async fn` taking the provider (and, where the store
//! matters, the backend); `for_each_provider!` runs it for Twilio, Plivo,
//! Telnyx and SignalWire. What only one provider does lives in its own file
//! (`twilio.rs`, `plivo.rs`, `telnyx.rs`, `signalwire.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::CpaasTest as _;
use crate::helpers::Element;
use crate::helpers::{
    ADMIN_TOKEN, Backend, Cpaas, DialEnd, PUBLIC_BASE_URL, Registered, Request, Screening, TestApp,
    assert_error, local_path, post_form, spawn_app, spawn_app_with,
};
use crate::receiver::{Behaviour, Received, WebhookReceiver};

pub const ALICE: &str = "+12025550199";
pub const BOB: &str = "+12025550188";
/// Alice's forwarding number; Bob shares it in some tests.
pub const SHARED: &str = "+12025550100";
pub const DEDICATED: &str = "+12025550101";
pub const UNKNOWN_NUMBER: &str = "+12025550999";
pub const CALLER: &str = "+12025550302";
pub const OTHER_CALLER: &str = "+12025550303";
pub const ALICE_DESK: &str = "+12025550201";
pub const BOB_DESK: &str = "+12025550202";
pub const FALLBACK_PHONE: &str = "+12025550299";
pub const ALICE_SIP: &str = "sip:alice@pbx.example.com";
/// Alice's ring timeout: not the default, so that it shows it was used.
pub const ALICE_RING_TIMEOUT: &str = "25";

crate::for_each_provider! {
    on_both_backends: [
        // §7 matching
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
        // §7 Dial markup
        voice_dials_one_number_with_the_subscribers_timeout_and_the_callers_id_when_sequential,
        voice_rings_every_destination_in_one_dial_when_simultaneous,
        // §7 dial-status: the hunt and the fallback
        dial_status_hunts_each_destination_then_voicemail_when_legs_fail,
        dial_status_dials_the_fallback_number_when_the_last_destination_fails_and_fallback_is_phone,
        dial_status_hangs_up_and_marks_the_session_missed_when_the_last_leg_fails_and_fallback_is_hangup,
        dial_status_hangs_up_and_records_the_connection_when_a_later_destination_answers,
        dial_status_hangs_up_and_connects_on_every_status_meaning_answered,
        // §7 voicemail and the destinations' webhooks (§5)
        voicemail_hangs_up_and_posts_call_voicemail_when_a_recording_arrives,
        dial_status_posts_call_connected_when_a_destination_answers,
        // The "done when": the recorded requests, as recorded.
        recorded_requests_take_a_forwarded_call_through_the_whole_flow,
        // §7 signatures
        voice_refuses_with_403_and_changes_nothing_when_the_signature_is_missing_or_wrong,
        callbacks_refuse_with_403_and_change_nothing_when_the_signature_is_wrong,
        // §7 claim atomicity
        voice_gives_the_waiting_session_to_exactly_one_of_twenty_concurrent_webhooks,
    ],
    once: [
        routes_answer_503_when_the_providers_auth_token_is_unset,
        voice_on_another_instance_claims_the_session_and_the_first_continues_the_hunt,
        voice_gives_the_session_to_exactly_one_webhook_across_two_instances,
        voice_and_dial_status_still_dial_from_the_last_known_subscriber_when_redis_is_down,
        dial_status_keeps_naming_the_session_when_redis_fails_mid_hunt,
        an_instance_started_just_before_redis_goes_down_still_dials_every_subscriber,
        voice_says_the_unknown_call_message_when_redis_is_down_and_the_subscriber_was_never_seen,
        voice_says_the_unknown_call_message_when_the_webhook_describes_no_call,
        dial_status_and_voicemail_hang_up_when_the_callback_query_is_not_ours,
        status_answers_204_without_a_body,
        voice_screens_a_screening_destination_before_bridging,
        screen_result_bridges_on_1_and_hangs_up_the_leg_otherwise,
        fixtures_are_the_providers_requests_in_its_own_words,
    ],
}

// ---------------------------------------------------------------------------
// Subscribers

/// Alice: one destination of each kind, hunted in list order, voicemail last.
pub fn alice() -> Value {
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
/// Alice with one destination of each kind (phone, sip, client), rung at
/// once: every noun a provider's markup can hold in one Dial.
pub fn alice_with_every_kind_at_once() -> Value {
    alice_with(json!({
        "strategy": "simultaneous",
        "destinations": [
            {"id": "desk", "kind": "phone", "address": ALICE_DESK},
            {"id": "pbx", "kind": "sip", "address": ALICE_SIP},
            {"id": "laptop", "kind": "client", "address": "alice"}
        ]
    }))
}

pub fn alice_with(patch: Value) -> Value {
    let mut body = alice();
    for (key, value) in patch.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// Alice with only her desk phone, whose notifications go to `webhook_url`.
pub fn alice_desk_only(webhook_url: Option<String>) -> Value {
    alice_with(json!({
        "destinations": [
            {"id": "desk", "kind": "phone", "address": ALICE_DESK, "webhook_url": webhook_url}
        ]
    }))
}

/// Bob: one phone, forwarding to `forwarding_number`.
pub fn bob(forwarding_number: &str) -> Value {
    json!({
        "forwarding_number": forwarding_number,
        "destinations": [{"id": "desk", "kind": "phone", "address": BOB_DESK}]
    })
}

// ---------------------------------------------------------------------------
// The phone's side

/// A ring report from the subscriber's phone; the new session's id.
pub async fn ring(app: &TestApp, registered: &Registered, caller: Option<&str>) -> String {
    let response = app
        .ring(&registered.device_token, &json!({"caller": caller}))
        .await;
    assert_eq!(response.status(), 201, "ring report");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instruction"], "reject", "auto mode rejects: {body}");
    body["session_id"].as_str().unwrap().to_owned()
}

/// Moves the app's clock on, so that the next session is reported strictly
/// later (sessions are ordered by report time, to the millisecond).
pub fn next_millisecond(app: &TestApp) {
    app.clock.advance(Duration::from_millis(1));
}

/// The session as the admin API shows it.
pub async fn session(app: &TestApp, id: &str) -> Value {
    let response = app.get_session(ADMIN_TOKEN, id).await;
    assert_eq!(response.status(), 200, "session {id}");
    response.json().await.unwrap()
}

/// Asserts the session still waits for its forwarded call.
pub async fn assert_unclaimed(app: &TestApp, id: &str) {
    let s = session(app, id).await;
    assert_eq!(s["state"], "instructed", "{s}");
    assert_eq!(s["call_sid"], Value::Null, "{s}");
    assert_eq!(s["timeline"]["forwarded_at"], Value::Null, "{s}");
}

// ---------------------------------------------------------------------------
// The provider's side

/// A forwarded call from `from` reaching `to`: the markup answered.
pub async fn forwarded(app: &TestApp, cpaas: Cpaas, from: &str, to: &str) -> Element {
    forwarded_as(app, cpaas, &cpaas.new_call_id(), from, to, None).await
}

/// The same, with a chosen call id and, if the carrier sent it,
/// ForwardedFrom.
pub async fn forwarded_as(
    app: &TestApp,
    cpaas: Cpaas,
    call_id: &str,
    from: &str,
    to: &str,
    forwarded_from: Option<&str>,
) -> Element {
    cpaas
        .inbound_call(call_id, from, to, forwarded_from)
        .markup(app)
        .await
}

/// The provider posting the outcome of `dial` to its `action`: the markup
/// answered. Every call hunted in these tests comes from `CALLER` to
/// `SHARED`, and the callback repeats that.
pub async fn dial_ended(app: &TestApp, cpaas: Cpaas, dial: &Element, end: DialEnd) -> Element {
    dial_ended_with_status(app, cpaas, dial, cpaas.dial_status(end)).await
}

/// The same, with the provider's own word for how the leg ended.
pub async fn dial_ended_with_status(
    app: &TestApp,
    cpaas: Cpaas,
    dial: &Element,
    status: &str,
) -> Element {
    let action = dial.attr("action").expect("the Dial has an action");
    let recorded = if cpaas.answered_statuses().contains(&status) {
        "dial_completed"
    } else {
        "dial_busy"
    };
    cpaas
        .request(recorded)
        .at(&local_path(action))
        .with_parties(CALLER, SHARED)
        .with(cpaas.dial_status_param(), status)
        .markup(app)
        .await
}

/// The provider posting the end of `record` to its `action`, with the
/// recorded example's recording: the markup answered, and that recording.
pub async fn recording_ended(app: &TestApp, cpaas: Cpaas, record: &Element) -> (Element, String) {
    let action = record.attr("action").expect("the Record has an action");
    let request = cpaas
        .request("record")
        .at(&local_path(action))
        .with_parties(CALLER, SHARED);
    let recording = request
        .get(cpaas.recording_url_param())
        .expect("the recorded example has a recording")
        .to_owned();
    (request.markup(app).await, recording)
}

/// The signature headers of a POST of `params` to `url`, computed here from
/// the provider's description (not by the service): Twilio's HMAC-SHA1 over
/// the URL then the sorted `name + value` pairs (SignalWire's too, keyed
/// with its signing key); Plivo's V3 HMAC-SHA256 over the URL without its
/// query, `?`, the sorted decoded query as `k=v` joined by `&`, `.`, the
/// sorted params as `kv`, then `.` and the nonce; Telnyx's Ed25519 over the
/// timestamp, `|`, and the raw body (the URL is not signed).
pub fn independent_signature_headers(
    cpaas: Cpaas,
    url: &str,
    params: &[(String, String)],
) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut sorted = params.to_vec();
    sorted.sort();
    match cpaas {
        Cpaas::Twilio | Cpaas::SignalWire => {
            let mut mac =
                hmac::Hmac::<sha1::Sha1>::new_from_slice(cpaas.auth_token().as_bytes()).unwrap();
            mac.update(url.as_bytes());
            for (name, value) in &sorted {
                mac.update(name.as_bytes());
                mac.update(value.as_bytes());
            }
            vec![(
                cpaas.signature_header(),
                base64(&mac.finalize().into_bytes()),
            )]
        }
        Cpaas::Telnyx => {
            use ed25519_dalek::Signer as _;
            let timestamp = crate::helpers::unix_now().to_string();
            let message = format!("{timestamp}|{}", crate::helpers::form_body(params));
            let signature = crate::helpers::telnyx_signing_key().sign(message.as_bytes());
            vec![
                ("telnyx-signature-ed25519", base64(&signature.to_bytes())),
                ("telnyx-timestamp", timestamp),
            ]
        }
        Cpaas::Plivo => {
            let parsed = url::Url::parse(url).unwrap();
            let mut signed = format!(
                "{}://{}{}",
                parsed.scheme(),
                parsed.host_str().unwrap(),
                parsed.path()
            );
            let mut query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
            query.sort();
            let query = query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&");
            let body: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
            if !query.is_empty() || !body.is_empty() {
                signed.push('?');
                signed.push_str(&query);
                if !query.is_empty() && !body.is_empty() {
                    signed.push('.');
                }
                signed.push_str(&body);
            }
            let nonce = "73015946281937501846";
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(cpaas.auth_token().as_bytes()).unwrap();
            mac.update(signed.as_bytes());
            mac.update(b".");
            mac.update(nonce.as_bytes());
            vec![
                ("X-Plivo-Signature-V3", base64(&mac.finalize().into_bytes())),
                ("X-Plivo-Signature-V3-Nonce", nonce.to_owned()),
            ]
        }
    }
}

/// `headers` with the signature replaced by `signature` (Plivo's nonce and
/// Telnyx's timestamp kept).
pub fn with_signature(
    cpaas: Cpaas,
    headers: &[(&'static str, String)],
    signature: &str,
) -> Vec<(&'static str, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            if *name == cpaas.signature_header() {
                (*name, signature.to_owned())
            } else {
                (*name, value.clone())
            }
        })
        .collect()
}

/// A well-formed signature of nothing we sent.
pub fn forged_signature(cpaas: Cpaas) -> &'static str {
    match cpaas {
        Cpaas::Twilio => "9c7wVvCXUWXxCzqb4KeHTqMrb2Y=",
        Cpaas::Plivo => "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=",
        // PROTOCOLS.md's vectors: 64 bytes (by another key, of another body),
        // and 20 bytes.
        Cpaas::Telnyx => {
            "yDWzbo/n29v/+pCaqkcszB9Dq12N9Df7HpMeVfZJs9ID26/2Tf8LaAu1/GjkblflLuUcmKuudeh0QY62SbJ6DA=="
        }
        Cpaas::SignalWire => "dfO9ek8mxyFtn2nMz24plPmPfIY=",
    }
}

/// Asserts a refused webhook: 403, the JSON error, and no markup.
pub async fn assert_refused(response: reqwest::Response) {
    let body = assert_error(response, 403, "invalid_signature").await;
    assert!(!body.to_string().contains("Response"), "no markup: {body}");
}

// ---------------------------------------------------------------------------
// The markup

/// The response's only verb, a `<Dial>`.
pub fn only_dial(response: &Element) -> &Element {
    assert_eq!(response.child_names(), ["Dial"], "{response:?}");
    &response.children[0]
}

/// What a `<Dial>` rings, as (noun, address) pairs.
pub fn nouns(dial: &Element) -> Vec<(String, String)> {
    dial.children
        .iter()
        .map(|n| (n.name.clone(), n.text.clone()))
        .collect()
}

/// The query of one of our callback URLs.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url} is not an absolute URL: {e}"))
        .query_pairs()
        .into_owned()
        .collect()
}

/// The session a Dial's or Record's `action` carries.
pub fn session_in(node: &Element) -> Option<String> {
    query_of(node.attr("action").expect("an action")).remove("session")
}

/// Asserts `node`'s action posts back to our `path` with `session`.
pub fn assert_callback(node: &Element, path: &str, session: &str) {
    let action = node.attr("action").expect("an action");
    assert!(
        action.starts_with(&format!("{PUBLIC_BASE_URL}{path}?")),
        "{action} is not our {path}"
    );
    assert_eq!(node.attr("method"), Some("POST"), "{node:?}");
    assert_eq!(session_in(node).as_deref(), Some(session), "{action}");
}

/// Asserts a Dial as the contract shapes it for Alice's call from `caller`
/// (`None`: no callerId at all).
pub fn assert_alice_dial(cpaas: Cpaas, dial: &Element, caller_id: Option<&str>, session: &str) {
    assert_eq!(dial.attr("timeout"), Some(ALICE_RING_TIMEOUT), "{dial:?}");
    let caller_id = caller_id.map(|c| cpaas.number(c));
    assert_eq!(dial.attr("callerId"), caller_id.as_deref(), "{dial:?}");
    for (name, value) in cpaas.dial_attributes() {
        assert_eq!(dial.attr(name), Some(*value), "{dial:?}");
    }
    assert_callback(dial, cpaas.routes().dial_status, session);
}

/// Asserts nobody answering this Dial is asked to accept the call: in the
/// TwiML family each noun's whisper (which tells who answered) bridges at once
/// when the provider fetches it, as the provider would on a pick-up; Plivo
/// asks for no confirm key.
pub async fn assert_not_screened(app: &TestApp, cpaas: Cpaas, dial: &Element) {
    match cpaas.screening() {
        Screening::WhisperOnTheNoun => {
            // SignalWire's <Verto> takes no attributes, so no whisper.
            for noun in dial.children.iter().filter(|n| n.name != "Verto") {
                let url = noun
                    .attr("url")
                    .expect("every other noun tells who answered");
                assert!(
                    url.starts_with(&format!("{PUBLIC_BASE_URL}{}?", cpaas.routes().screen)),
                    "{url}"
                );
                assert!(query_of(url).contains_key("destination"), "{url}");
                let whisper = cpaas
                    .request("screen")
                    .at(&local_path(url))
                    .markup(app)
                    .await;
                assert!(whisper.children.is_empty(), "bridged at once: {whisper:?}");
            }
        }
        Screening::ConfirmKey => {
            assert_eq!(dial.attr("confirmKey"), None, "{dial:?}");
            assert_eq!(dial.attr("confirmSound"), None, "{dial:?}");
        }
    }
}

pub fn assert_hangup(response: &Element) {
    assert_eq!(response.child_names(), ["Hangup"], "{response:?}");
}

/// The unknown-call answer: a short spoken message, then hang up.
pub fn assert_unknown_call(cpaas: Cpaas, response: &Element) {
    assert_eq!(
        response.child_names(),
        [cpaas.say(), "Hangup"],
        "{response:?}"
    );
    assert!(!response.children[0].text.trim().is_empty(), "{response:?}");
}

/// The voicemail fallback: a greeting, then `<Record>`; the Record.
pub fn assert_voicemail(cpaas: Cpaas, response: &Element) -> &Element {
    assert_eq!(
        response.child_names(),
        [cpaas.say(), "Record"],
        "{response:?}"
    );
    assert!(!response.children[0].text.trim().is_empty(), "a greeting");
    let record = response.child("Record").unwrap();
    assert_eq!(record.attr("maxLength"), Some("120"), "{record:?}");
    record
}

// ---------------------------------------------------------------------------
// Destination webhooks

/// The next delivery of type `kind`, skipping others (`call.ringing` first).
pub async fn next_event(receiver: &WebhookReceiver, kind: &str) -> Received {
    loop {
        let received = receiver.next().await;
        if received.kind() == kind {
            return received;
        }
    }
}

// ---------------------------------------------------------------------------
// §7 matching

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

// ---------------------------------------------------------------------------
// §7 Dial markup

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

// ---------------------------------------------------------------------------
// §7 dial-status: the hunt and the fallback

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

// ---------------------------------------------------------------------------
// §7 voicemail and the destinations' webhooks (§5)

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

// ---------------------------------------------------------------------------
// The recorded requests, unchanged, from the forwarded call to its end

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

// ---------------------------------------------------------------------------
// §7 signatures: refused before anything is read or written

async fn voice_refuses_with_403_and_changes_nothing_when_the_signature_is_missing_or_wrong(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();
    let request = cpaas.inbound_call(&call_id, CALLER, SHARED, None);
    let (path, params) = (request.path.as_str(), request.params.as_slice());
    let url = format!("{PUBLIC_BASE_URL}{path}");
    let genuine = independent_signature_headers(cpaas, &url, params);
    let refused = |headers: Vec<(&'static str, String)>, params: Vec<(String, String)>| {
        let app = &app;
        async move { assert_refused(post_form(app, path, &params, &headers).await).await }
    };

    // No header at all.
    refused(Vec::new(), params.to_vec()).await;
    // An empty signature.
    refused(with_signature(cpaas, &genuine, ""), params.to_vec()).await;
    // Not the signature of this request.
    refused(
        with_signature(cpaas, &genuine, forged_signature(cpaas)),
        params.to_vec(),
    )
    .await;
    // Where the URL is signed: a signature over another URL (a query the
    // provider never sent), and over another host. (Telnyx signs the body
    // and a timestamp only; its own cases are in `telnyx.rs`.)
    if cpaas.signs_the_url() {
        let other_url = independent_signature_headers(cpaas, &format!("{url}?x=1"), params);
        refused(other_url, params.to_vec()).await;
        let other_host = independent_signature_headers(
            cpaas,
            &format!("https://evil.example.com{path}"),
            params,
        );
        refused(other_host, params.to_vec()).await;
    }
    // A parameter changed after signing.
    let tampered = request.clone().with("From", &cpaas.number(OTHER_CALLER));
    refused(genuine.clone(), tampered.params).await;
    // A parameter added after signing.
    let added = request.clone().with("ForwardedFrom", &cpaas.number(BOB));
    refused(genuine.clone(), added.params).await;

    assert_unclaimed(&app, &alices).await;
    // The genuine request, signed independently of the service, claims it.
    let response = post_form(&app, path, params, &genuine).await;
    assert_eq!(response.status(), 200);
    let markup = crate::helpers::parse_markup(&response.text().await.unwrap());
    assert_callback(only_dial(&markup), cpaas.routes().dial_status, &alices);
    assert_eq!(session(&app, &alices).await["call_sid"], call_id.as_str());
}

async fn callbacks_refuse_with_403_and_change_nothing_when_the_signature_is_wrong(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let routes = cpaas.routes();
    let dial_path = local_path(only_dial(&first).attr("action").unwrap());
    let voicemail_path = dial_path.replace(routes.dial_status, routes.voicemail);
    let answered = cpaas.request("dial_completed").at(&dial_path);
    let recorded = cpaas.request("record").at(&voicemail_path);
    // Signed for another request: for another session (the query is part of
    // what is signed), or, where only the body is (Telnyx), of another body.
    let signed_elsewhere = if cpaas.signs_the_url() {
        independent_signature_headers(
            cpaas,
            &format!(
                "{PUBLIC_BASE_URL}{}?subscriber=%2B12025550199&session=ses_AAAAAAAAAAAAAAAAAAAAAA&step=0",
                routes.dial_status
            ),
            &answered.params,
        )
    } else {
        independent_signature_headers(
            cpaas,
            &format!("{PUBLIC_BASE_URL}{dial_path}"),
            &cpaas.request("dial_busy").params,
        )
    };
    let genuine_recording = independent_signature_headers(
        cpaas,
        &format!("{PUBLIC_BASE_URL}{voicemail_path}"),
        &recorded.params,
    );
    let screen = cpaas.request("screen");
    let screen_result = cpaas.request("screen_result");
    let status = cpaas.status_request();

    for (request, headers) in [
        (&answered, Vec::new()),
        (&answered, signed_elsewhere),
        (&recorded, Vec::new()),
        (
            &recorded,
            with_signature(cpaas, &genuine_recording, forged_signature(cpaas)),
        ),
        (&screen, Vec::new()),
        (&screen_result, Vec::new()),
        (&status, Vec::new()),
    ] {
        assert_refused(post_form(&app, &request.path, &request.params, &headers).await).await;
    }

    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "forwarded", "{s}");
    assert_eq!(s["legs"], json!([]), "{s}");
}

async fn routes_answer_503_when_the_providers_auth_token_is_unset(cpaas: Cpaas) {
    let app = spawn_app_with(Backend::Memory, &[(cpaas.credential_variable(), "")]).await;
    app.register(ALICE, &alice()).await;
    let request = cpaas.inbound_call(&cpaas.new_call_id(), CALLER, SHARED, None);
    let some_signature = independent_signature_headers(
        cpaas,
        &format!("{PUBLIC_BASE_URL}{}", request.path),
        &request.params,
    );
    let context = "?subscriber=%2B12025550199&step=0";

    for route in cpaas.routes().all() {
        for path in [route.to_owned(), format!("{route}{context}")] {
            for headers in [Vec::new(), some_signature.clone()] {
                let response = post_form(&app, &path, &request.params, &headers).await;
                let body = assert_error(response, 503, "not_configured").await;
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .contains(cpaas.credential_variable()),
                    "{path}: {body}"
                );
            }
        }
    }
    // The other provider, configured, still answers.
    let other = cpaas.other();
    let response = forwarded(&app, other, CALLER, SHARED).await;
    assert_eq!(nouns(only_dial(&response)), [other.phone_noun(ALICE_DESK)]);
}

// ---------------------------------------------------------------------------
// §7 claim atomicity, several instances

async fn voice_gives_the_waiting_session_to_exactly_one_of_twenty_concurrent_webhooks(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let call_ids: Vec<String> = (0..20).map(|_| cpaas.new_call_id()).collect();

    let responses = futures_util::future::join_all(
        call_ids
            .iter()
            .map(|id| forwarded_as(&app, cpaas, id, CALLER, SHARED, None)),
    )
    .await;

    let sessions: Vec<String> = responses
        .iter()
        .map(|r| session_in(only_dial(r)).expect("every call is dialed with a session"))
        .collect();
    let winners: Vec<usize> = (0..sessions.len())
        .filter(|&i| sessions[i] == alices)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claim: {sessions:?}");
    let mut others: Vec<&String> = sessions.iter().filter(|s| **s != alices).collect();
    others.sort();
    others.dedup();
    assert_eq!(
        others.len(),
        19,
        "each other call has its own session: {sessions:?}"
    );
    let s = session(&app, &alices).await;
    assert_eq!(s["call_sid"], call_ids[winners[0]].as_str(), "{s}");
    for other in others {
        let o = session(&app, other).await;
        assert_eq!(o["timeline"]["reported_at"], Value::Null, "{o}");
        assert_eq!(o["state"], "forwarded", "{o}");
    }
}

/// Two instances sharing one Redis.
async fn two_instances() -> (TestApp, TestApp) {
    let a = spawn_app(Backend::redis()).await;
    let b = spawn_app_with(
        a.backend.clone(),
        &[("REDIS_KEY_PREFIX", &a.config.redis_key_prefix)],
    )
    .await;
    (a, b)
}

async fn voice_on_another_instance_claims_the_session_and_the_first_continues_the_hunt(
    cpaas: Cpaas,
) {
    let (a, b) = two_instances().await;
    let alice_reg = a.register(ALICE, &alice()).await;
    let alices = ring(&a, &alice_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();

    let first = forwarded_as(&b, cpaas, &call_id, CALLER, SHARED, None).await;
    let desk = only_dial(&first);
    assert_eq!(nouns(desk), [cpaas.phone_noun(ALICE_DESK)]);
    assert_alice_dial(cpaas, desk, Some(CALLER), &alices);

    let second = dial_ended(&a, cpaas, desk, DialEnd::Busy).await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    assert_alice_dial(cpaas, laptop, Some(CALLER), &alices);

    let third = dial_ended(&b, cpaas, laptop, DialEnd::Answered).await;
    assert_hangup(&third);
    let s = session(&a, &alices).await;
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["call_sid"], call_id.as_str());
    assert_eq!(s["selected_destination"], "laptop", "{s}");
}

async fn voice_gives_the_session_to_exactly_one_webhook_across_two_instances(cpaas: Cpaas) {
    let (a, b) = two_instances().await;
    let alice_reg = a.register(ALICE, &alice()).await;
    let alices = ring(&a, &alice_reg, Some(CALLER)).await;
    let call_ids: Vec<String> = (0..20).map(|_| cpaas.new_call_id()).collect();

    let responses = futures_util::future::join_all(call_ids.iter().enumerate().map(|(i, id)| {
        let app = if i % 2 == 0 { &a } else { &b };
        forwarded_as(app, cpaas, id, CALLER, SHARED, None)
    }))
    .await;

    let claims = responses
        .iter()
        .filter(|r| session_in(only_dial(r)).as_deref() == Some(alices.as_str()))
        .count();
    assert_eq!(claims, 1, "exactly one claim across instances");
}

// ---------------------------------------------------------------------------
// §7 outages and odd input: always markup

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
    let registry = ringrelay_server::registry::Registry::new(
        std::sync::Arc::new(a.backend.redis_store(&a.config.redis_key_prefix)),
        ringrelay_server::domain::subscriber::SpecRules {
            region: a.config.default_region,
            webhooks_can_be_signed: true,
            webhook_targets: a.config.webhook_targets,
        },
        std::sync::Arc::default(),
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

// ---------------------------------------------------------------------------
// §3 screening: the answering person hears who calls and presses 1

async fn voice_screens_a_screening_destination_before_bridging(cpaas: Cpaas) {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app
        .register(
            ALICE,
            &alice_with(json!({
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": ALICE_DESK, "screening": true},
                    {"id": "laptop", "kind": "client", "address": "alice"}
                ]
            })),
        )
        .await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let routes = cpaas.routes();

    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&first);
    assert_eq!(nouns(desk), [cpaas.phone_noun(ALICE_DESK)]);
    assert_alice_dial(cpaas, desk, Some(CALLER), &alices);
    let whisper = cpaas.whisper_url(desk).expect("a whisper URL");
    assert!(
        whisper.starts_with(&format!("{PUBLIC_BASE_URL}{}?", routes.screen)),
        "{whisper}"
    );
    let context = query_of(whisper);
    assert_eq!(context.get("subscriber").map(String::as_str), Some(ALICE));
    assert_eq!(context.get("caller").map(String::as_str), Some(CALLER));
    match cpaas.screening() {
        Screening::WhisperOnTheNoun => {
            assert_eq!(desk.children[0].attr("method"), Some("POST"), "{desk:?}")
        }
        Screening::ConfirmKey => assert_eq!(desk.attr("confirmKey"), Some("1"), "{desk:?}"),
    }

    // The callee answers: the provider fetches the whisper.
    let screen = cpaas
        .request("screen")
        .at(&local_path(whisper))
        .markup(&app)
        .await;
    let prompt = match cpaas.screening() {
        Screening::WhisperOnTheNoun => {
            assert_eq!(
                screen.child_names(),
                [cpaas.gather(), "Hangup"],
                "{screen:?}"
            );
            let gather = screen.child(cpaas.gather()).unwrap();
            assert_eq!(gather.attr("numDigits"), Some("1"), "{gather:?}");
            assert_eq!(gather.attr("method"), Some("POST"), "{gather:?}");
            let action = gather.attr("action").expect("a Gather action");
            assert!(
                action.starts_with(&format!("{PUBLIC_BASE_URL}{}?", routes.screen_result)),
                "{action}"
            );
            // The key pressed on the callee's leg: anything but 1 hangs that
            // leg up (and the first answer is the leg's: a later 1 bridges
            // the leg but does not take the call back), 1 bridges.
            let pressed = cpaas.request("screen_result").at(&local_path(action));
            let refused = pressed.clone().with("Digits", "2").markup(&app).await;
            assert_hangup(&refused);
            let taken = pressed.with("Digits", "1").markup(&app).await;
            assert!(taken.children.is_empty(), "{taken:?}");
            gather.child(cpaas.say()).unwrap().text.clone()
        }
        // Plivo asks for the confirm key itself: the whisper only speaks.
        Screening::ConfirmKey => {
            assert_eq!(screen.child_names(), [cpaas.say()], "{screen:?}");
            screen.children[0].text.clone()
        }
    };
    assert!(
        prompt.contains("2 0 2 5 5 5 0 3 0 2"),
        "the caller: {prompt}"
    );
    assert!(
        prompt.contains("2 0 2 5 5 5 0 1 9 9"),
        "the subscriber: {prompt}"
    );
    let withheld = cpaas
        .request("screen")
        .at(&format!(
            "{}?subscriber=%2B12025550199&step=0&caller=withheld",
            routes.screen
        ))
        .markup(&app)
        .await;
    assert!(
        format!("{withheld:?}").contains("withheld number"),
        "{withheld:?}"
    );

    // The desk did not take it: the next destination is not screened.
    let second = dial_ended(&app, cpaas, desk, DialEnd::NoAnswer).await;
    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    assert_not_screened(&app, cpaas, laptop).await;
}

async fn screen_result_bridges_on_1_and_hangs_up_the_leg_otherwise(cpaas: Cpaas) {
    let app = spawn_app(Backend::Memory).await;
    let pressed = cpaas.request("screen_result");
    assert_eq!(pressed.get("Digits"), Some("1"), "the recorded press");

    let taken = pressed.markup(&app).await;
    assert!(taken.children.is_empty(), "{taken:?}");
    for refused in [
        pressed.clone().with("Digits", "2"),
        pressed.clone().with("Digits", ""),
        pressed.clone().without("Digits"),
    ] {
        assert_hangup(&refused.markup(&app).await);
    }
}

// ---------------------------------------------------------------------------
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
