//! What only Telnyx does (docs/providers.md): the call flow itself runs for every
//! provider in `cpaas.rs` and `calls.rs`; here are TeXML's own spelling
//! (softphones as Telnyx SIP credentials, no `answerOnBridge`, one-channel
//! voicemail) and its Ed25519 signature over `<timestamp>|<raw body>`, whose
//! timestamp must be within 300 s of now.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};

use crate::cpaas::{
    ALICE, CALLER, SHARED, alice, alice_desk_only, alice_with_every_kind_at_once,
    assert_alice_dial, assert_callback, assert_refused, assert_unclaimed, assert_voicemail,
    dial_ended, forwarded, nouns, only_dial, ring, session,
};
use crate::helpers::CpaasTest as _;
use crate::helpers::{
    Backend, Cpaas, DialEnd, TestApp, form_body, pairs, spawn_app, telnyx_signing_key, test_config,
    unix_now,
};

const TELNYX: Cpaas = Cpaas::Telnyx;

/// `telnyx-signature-ed25519` and `telnyx-timestamp` for `body` at
/// `timestamp`, signed by `key`, computed here from Telnyx's description.
fn signed(key: &SigningKey, timestamp: &str, body: &str) -> Vec<(&'static str, String)> {
    let signature = key.sign(format!("{timestamp}|{body}").as_bytes());
    vec![
        (
            "telnyx-signature-ed25519",
            base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        ),
        ("telnyx-timestamp", timestamp.to_owned()),
    ]
}

/// Posts `body` to `path`, byte for byte, with `headers`.
async fn post_raw(
    app: &TestApp,
    path: &str,
    body: &str,
    headers: &[(&'static str, String)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

/// Alice rung by `CALLER`, and the body of Telnyx's voice webhook for her
/// forwarded call: the app, her session, and that body.
async fn alice_waiting_for_her_forwarded_call() -> (TestApp, String, String) {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let request = TELNYX.inbound_call(&TELNYX.new_call_id(), CALLER, SHARED, None);
    (app, alices, form_body(&request.params))
}

#[tokio::test]
async fn texml_dials_softphones_as_telnyx_sip_credentials_without_answer_on_bridge() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice_with_every_kind_at_once()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let response = forwarded(&app, TELNYX, CALLER, SHARED).await;

    let dial = only_dial(&response);
    assert_eq!(
        nouns(dial),
        pairs(&[
            ("Number", "+12025550201"),
            ("Sip", "sip:alice@pbx.example.com"),
            ("Sip", "sip:alice@sip.telnyx.com")
        ])
    );
    assert_eq!(dial.attr("callerId"), Some("+12025550302"), "{dial:?}");
    // TeXML has no such attribute: Telnyx answered the call before it
    // fetched this markup.
    assert_eq!(dial.attr("answerOnBridge"), None, "{dial:?}");
    assert_alice_dial(TELNYX, dial, Some(CALLER), &alices);
}

/// TeXML records both channels unless told otherwise; a voicemail has one
/// voice.
#[tokio::test]
async fn texml_voicemail_is_recorded_on_one_channel() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice_desk_only(None)).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, TELNYX, CALLER, SHARED).await;

    let second = dial_ended(&app, TELNYX, only_dial(&first), DialEnd::Busy).await;

    let record = assert_voicemail(TELNYX, &second);
    assert_eq!(record.attr("channels"), Some("single"), "{record:?}");
    assert_callback(record, TELNYX.routes().voicemail, &alices);
}

#[tokio::test]
async fn voice_refuses_a_timestamp_more_than_300_s_from_now_either_way() {
    let (app, alices, body) = alice_waiting_for_her_forwarded_call().await;
    let key = telnyx_signing_key();
    let now = unix_now();

    // Well past the window (10 s of slack for a slow test machine), each
    // way: a replay of an old request, or a clock far ahead; and the
    // extremes, whose distance from now does not fit in an i64.
    for timestamp in [now - 310, now + 310, 0, i64::MIN, i64::MIN + 1, i64::MAX] {
        let headers = signed(&key, &timestamp.to_string(), &body);
        assert_refused(post_raw(&app, "/telnyx/voice", &body, &headers).await).await;
    }
    assert_unclaimed(&app, &alices).await;

    // Inside the window, a signed request is taken, early or late.
    let headers = signed(&key, &(now + 290).to_string(), &body);
    let response = post_raw(&app, "/telnyx/voice", &body, &headers).await;
    let markup = TELNYX.read_markup("/telnyx/voice", response).await;
    assert_callback(only_dial(&markup), TELNYX.routes().dial_status, &alices);
    assert_eq!(session(&app, &alices).await["state"], "forwarded");
}

#[tokio::test]
async fn voice_refuses_a_body_or_timestamp_changed_after_signing() {
    let (app, alices, body) = alice_waiting_for_her_forwarded_call().await;
    let key = telnyx_signing_key();
    let timestamp = unix_now().to_string();
    let genuine = signed(&key, &timestamp, &body);

    let tampered_body = body.replace("%2B12025550302", "%2B12025550303");
    assert_ne!(tampered_body, body);
    let appended = format!("{body}&ForwardedFrom=%2B12025550188");
    for changed in [tampered_body.as_str(), appended.as_str(), ""] {
        assert_refused(post_raw(&app, "/telnyx/voice", changed, &genuine).await).await;
    }
    let mut later = genuine.clone();
    later[1].1 = (unix_now() + 1).to_string();
    assert_refused(post_raw(&app, "/telnyx/voice", &body, &later).await).await;

    assert_unclaimed(&app, &alices).await;
}

#[tokio::test]
async fn voice_refuses_a_request_missing_the_signature_or_the_timestamp() {
    let (app, alices, body) = alice_waiting_for_her_forwarded_call().await;
    let genuine = signed(&telnyx_signing_key(), &unix_now().to_string(), &body);
    let (signature, timestamp) = (genuine[0].clone(), genuine[1].clone());

    for headers in [
        vec![],
        vec![signature.clone()],
        vec![timestamp.clone()],
        vec![(signature.0, String::new()), timestamp.clone()],
        vec![signature.clone(), (timestamp.0, String::new())],
        vec![signature, (timestamp.0, "soon".to_owned())],
    ] {
        assert_refused(post_raw(&app, "/telnyx/voice", &body, &headers).await).await;
    }
    assert_unclaimed(&app, &alices).await;
}

#[tokio::test]
async fn voice_refuses_a_signature_by_another_key() {
    let (app, alices, body) = alice_waiting_for_her_forwarded_call().await;
    // RFC 8032 §7.1 test 1's key (the usual test vector): a valid key, but
    // not the account's.
    let another = SigningKey::from_bytes(&[
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ]);
    assert_ne!(
        another.verifying_key(),
        telnyx_signing_key().verifying_key()
    );

    let headers = signed(&another, &unix_now().to_string(), &body);

    assert_refused(post_raw(&app, "/telnyx/voice", &body, &headers).await).await;
    assert_unclaimed(&app, &alices).await;
}

/// The signature is over the bytes Telnyx sent: a body encoded otherwise
/// than this client would (lower-case escapes, `+` for a space) verifies
/// as received, so the service must not re-encode the form before checking.
#[tokio::test]
async fn voice_verifies_the_raw_body_however_it_is_encoded() {
    let (app, alices, _) = alice_waiting_for_her_forwarded_call().await;
    let call_id = TELNYX.new_call_id();
    let body = format!(
        "AccountSid=acc&CallSid={}&CallerId=Jane+Doe&From=%2b12025550302&To=%2b12025550100",
        call_id.replace(':', "%3a")
    );
    assert_ne!(
        form_body(
            &url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        ),
        body,
        "re-encoding would change the bytes"
    );
    let headers = signed(&telnyx_signing_key(), &unix_now().to_string(), &body);

    let response = post_raw(&app, "/telnyx/voice", &body, &headers).await;

    let markup = TELNYX.read_markup("/telnyx/voice", response).await;
    assert_callback(only_dial(&markup), TELNYX.routes().dial_status, &alices);
    assert_eq!(session(&app, &alices).await["call_sid"], call_id.as_str());
}

#[tokio::test]
async fn a_telnyx_public_key_that_is_not_32_bytes_of_base64_stops_the_start() {
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    // 32 bytes that decode to no point of the curve.
    let not_a_point = (0u8..=255)
        .map(|b| [b; 32])
        .find(|bytes| ed25519_dalek::VerifyingKey::from_bytes(bytes).is_err())
        .expect("some 32 bytes are not a public key");
    let private_key = base64(&[7; 64]);
    for value in [
        "not base64!".to_owned(),
        base64(&[7; 16]),
        private_key.clone(),
        base64(&not_a_point),
    ] {
        let err =
            test_config(&Backend::Memory, &[("TELNYX_PUBLIC_KEY", &value)]).expect_err(&value);
        assert_eq!(err.variable, "TELNYX_PUBLIC_KEY", "{value}: {err}");
        let line = err.to_string();
        assert!(line.starts_with("TELNYX_PUBLIC_KEY: "), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(!line.contains(&value), "the value is not echoed: {line}");
    }
}
