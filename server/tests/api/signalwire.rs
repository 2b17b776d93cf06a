//! What only SignalWire does (docs/providers.md): the call flow itself runs for
//! every provider in `cpaas.rs` and `calls.rs`; here are cXML's own spelling
//! (softphones as `<Verto>` clients of the space) and its signature: Twilio's
//! algorithm keyed with the project's signing key, in `X-SignalWire-Signature`
//! or `X-Twilio-Signature`, over the URL with or without its default port.

use crate::cpaas::{
    ALICE, CALLER, SHARED, alice, alice_with_every_kind_at_once, assert_alice_dial,
    assert_callback, assert_refused, assert_unclaimed, forwarded, independent_signature_headers,
    nouns, only_dial, ring,
};
use crate::helpers::CpaasTest as _;
use crate::helpers::{
    Backend, Cpaas, PUBLIC_BASE_URL, SIGNALWIRE_SIGNING_KEY, TWILIO_AUTH_TOKEN, TestApp, pairs,
    post_form, spawn_app, spawn_app_with, test_config,
};

const SIGNALWIRE: Cpaas = Cpaas::SignalWire;

/// Twilio's HMAC-SHA1 over `url` and the sorted form, keyed with `key`,
/// computed here from the description.
fn hmac_sha1_signature(key: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Alice rung by `CALLER`, and SignalWire's voice webhook for her forwarded
/// call: the app, her session, and the request's form.
async fn alice_waiting_for_her_forwarded_call() -> (TestApp, String, Vec<(String, String)>) {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let request = SIGNALWIRE.inbound_call(&SIGNALWIRE.new_call_id(), CALLER, SHARED, None);
    (app, alices, request.params)
}

/// Asserts the voice webhook was taken: 200, a Dial for `session`.
async fn assert_claimed(app: &TestApp, response: reqwest::Response, session: &str) {
    let markup = SIGNALWIRE.read_markup("/signalwire/voice", response).await;
    assert_callback(only_dial(&markup), SIGNALWIRE.routes().dial_status, session);
    assert_eq!(
        crate::cpaas::session(app, session).await["state"],
        "forwarded"
    );
}

#[tokio::test]
async fn cxml_dials_softphones_as_verto_clients_of_the_space_with_answer_on_bridge() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice_with_every_kind_at_once()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let response = forwarded(&app, SIGNALWIRE, CALLER, SHARED).await;

    let dial = only_dial(&response);
    assert_eq!(
        nouns(dial),
        pairs(&[
            ("Number", "+12025550201"),
            ("Sip", "sip:alice@pbx.example.com"),
            ("Verto", "alice@example.verto.signalwire.com")
        ])
    );
    assert_eq!(dial.attr("answerOnBridge"), Some("true"), "{dial:?}");
    assert_eq!(dial.attr("callerId"), Some("+12025550302"), "{dial:?}");
    assert_alice_dial(SIGNALWIRE, dial, Some(CALLER), &alices);
}

/// Without `SIGNALWIRE_SIP_DOMAIN` the identity is dialed as it is.
#[tokio::test]
async fn cxml_dials_the_bare_identity_when_no_sip_domain_is_set() {
    let app = spawn_app_with(Backend::Memory, &[("SIGNALWIRE_SIP_DOMAIN", "")]).await;
    let alice_reg = app.register(ALICE, &alice_with_every_kind_at_once()).await;
    ring(&app, &alice_reg, Some(CALLER)).await;

    let response = forwarded(&app, SIGNALWIRE, CALLER, SHARED).await;

    let dial = only_dial(&response);
    assert_eq!(nouns(dial)[2], ("Verto".to_owned(), "alice".to_owned()));
}

#[tokio::test]
async fn voice_accepts_the_signature_in_x_twilio_signature() {
    let (app, alices, params) = alice_waiting_for_her_forwarded_call().await;
    let url = format!("{PUBLIC_BASE_URL}/signalwire/voice");
    let signature = hmac_sha1_signature(SIGNALWIRE_SIGNING_KEY, &url, &params);

    let response = post_form(
        &app,
        "/signalwire/voice",
        &params,
        &[("X-Twilio-Signature", signature)],
    )
    .await;

    assert_claimed(&app, response, &alices).await;
}

#[tokio::test]
async fn voice_accepts_a_signature_over_the_url_with_the_default_port() {
    let (app, alices, params) = alice_waiting_for_her_forwarded_call().await;
    let with_port = hmac_sha1_signature(
        SIGNALWIRE_SIGNING_KEY,
        "https://relay.example.com:443/signalwire/voice",
        &params,
    );

    let response = post_form(
        &app,
        "/signalwire/voice",
        &params,
        &[("X-SignalWire-Signature", with_port)],
    )
    .await;

    assert_claimed(&app, response, &alices).await;
}

/// The key decides, not the header's name: Twilio's auth token (configured
/// on the same app) signs nothing for SignalWire, in either header, and a
/// non-default port is not a variant of the URL.
#[tokio::test]
async fn voice_refuses_a_signature_by_another_key_or_over_another_port() {
    let (app, alices, params) = alice_waiting_for_her_forwarded_call().await;
    let url = format!("{PUBLIC_BASE_URL}/signalwire/voice");
    let by_twilio = hmac_sha1_signature(TWILIO_AUTH_TOKEN, &url, &params);
    let other_port = hmac_sha1_signature(
        SIGNALWIRE_SIGNING_KEY,
        "https://relay.example.com:8443/signalwire/voice",
        &params,
    );

    for headers in [
        vec![("X-SignalWire-Signature", by_twilio.clone())],
        vec![("X-Twilio-Signature", by_twilio)],
        vec![("X-SignalWire-Signature", other_port)],
    ] {
        assert_refused(post_form(&app, "/signalwire/voice", &params, &headers).await).await;
    }
    assert_unclaimed(&app, &alices).await;
    // The same request, signed with the signing key, is taken.
    let genuine = independent_signature_headers(SIGNALWIRE, &url, &params);
    assert_eq!(genuine[0].0, "X-SignalWire-Signature");
    let response = post_form(&app, "/signalwire/voice", &params, &genuine).await;
    assert_claimed(&app, response, &alices).await;
}

/// SignalWire signs a JSON body as Twilio does: through `bodySHA256` in the
/// signed URL.
#[tokio::test]
async fn status_accepts_a_json_body_signed_through_body_sha256_and_refuses_another_body() {
    use sha2::Digest as _;
    let app = spawn_app(Backend::Memory).await;
    let body = br#"{"CallSid": "5e2b7c4a-1d3f-4a6b-9c8e-0f1a2b3c4d01", "CallStatus": "completed"}"#;
    let path = format!(
        "/signalwire/status?bodySHA256={}",
        hex::encode(sha2::Sha256::digest(body))
    );
    let signature = hmac_sha1_signature(
        SIGNALWIRE_SIGNING_KEY,
        &format!("{PUBLIC_BASE_URL}{path}"),
        &[],
    );
    let post = |body: &'static [u8]| {
        app.client
            .post(app.url(&path))
            .header("X-SignalWire-Signature", &signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };

    assert_eq!(post(body).await.unwrap().status(), 204);

    let other = br#"{"CallSid": "5e2b7c4a-1d3f-4a6b-9c8e-0f1a2b3c4d01", "CallStatus": "busy"}"#;
    assert_refused(post(other).await.unwrap()).await;
}

#[tokio::test]
async fn a_signalwire_sip_domain_that_is_not_a_domain_label_stops_the_start() {
    for value in [
        "example.verto.signalwire.com",
        "my space",
        "sip:alice@example",
        &"a".repeat(64),
    ] {
        let err =
            test_config(&Backend::Memory, &[("SIGNALWIRE_SIP_DOMAIN", value)]).expect_err(value);
        assert_eq!(err.variable, "SIGNALWIRE_SIP_DOMAIN", "{value}: {err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
    // The label alone is what it takes.
    test_config(
        &Backend::Memory,
        &[("SIGNALWIRE_SIP_DOMAIN", "my-space-01")],
    )
    .expect("a domain label");
}
