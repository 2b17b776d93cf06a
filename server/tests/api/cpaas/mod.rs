//! The CPaaS webhooks (docs/providers.md) from the outside, once per
//! provider: a subscriber registered and rung through the API, then the
//! provider's recorded requests (`fixtures/requests/<provider>/`) signed as
//! it signs them and posted to its routes, the markup answered parsed back,
//! and the session and the destinations' webhooks observed.
//!
//! Every case is one `async fn` taking the provider (and, where the store
//! matters, the backend); `for_each_provider!` runs it for Twilio, Plivo,
//! Telnyx and SignalWire. The cases are in a file per concern below; here
//! are the subscribers, the requests and the assertions they share (also
//! with the other files). What only one provider does lives in its own file
//! (`twilio.rs`, `plivo.rs`, `telnyx.rs`, `signalwire.rs`).

mod caller_context;
mod hunt;
mod instances;
mod matching;
mod outages;
mod recorded;
mod screening;
mod signatures;
mod texts;
mod transcription;

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

/// Alice with some top-level fields replaced.
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
        // The published vectors: 64 bytes (by another key, of another body),
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
        Screening::GatherOnLeg => {
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

/// The provider's busy for a blocked caller, and nothing else.
pub fn assert_busy(cpaas: Cpaas, response: &Element) {
    assert_eq!(response.child_names(), [cpaas.reject()], "{response:?}");
    let reject = &response.children[0];
    assert_eq!(reject.attr("reason"), Some("busy"), "{reject:?}");
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
// Several instances

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
