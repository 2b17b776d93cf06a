//! What only Twilio does (docs/providers.md): the call flow itself runs for every
//! provider in `cpaas.rs`; here are Twilio's own signature variants, TwiML's
//! own spelling, and the dial statuses only Twilio sends.

use serde_json::Value;

use crate::both_backends;
use crate::cpaas::{
    ALICE, CALLER, SHARED, alice, alice_with_every_kind_at_once, assert_alice_dial,
    assert_callback, assert_hangup, assert_refused, forwarded, nouns, only_dial, ring, session,
};
use crate::helpers::CpaasTest as _;
use crate::helpers::{
    Backend, Cpaas, PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN, pairs, post_form, spawn_app,
};

/// X-Twilio-Signature computed here from Twilio's description (HMAC-SHA1
/// over the URL then the sorted `name + value` pairs), not by the service.
fn twilio_signature(url: &str, params: &[(String, String)]) -> String {
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

both_backends! {
    // `canceled` is Twilio's word for a caller who hung up while the Dial
    // rang; Plivo documents no such dial status.
    dial_status_hangs_up_without_hunting_when_the_caller_canceled
        => |backend: Backend| async move {
        let app = spawn_app(backend).await;
        let alice_reg = app.register(ALICE, &alice()).await;
        let alices = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, Cpaas::Twilio, CALLER, SHARED).await;
        let action = only_dial(&first).attr("action").unwrap();

        let second = Cpaas::Twilio
            .request("dial_busy")
            .at(&crate::helpers::local_path(action))
            .with("DialCallStatus", "canceled")
            .markup(&app)
            .await;

        assert_hangup(&second);
        let s = session(&app, &alices).await;
        // The caller gave up: nobody took the call.
        assert_eq!(s["state"], "missed", "{s}");
        assert_eq!(s["timeline"]["connected_at"], Value::Null, "{s}");
        assert_eq!(s["selected_destination"], Value::Null, "{s}");
    };
}

#[tokio::test]
async fn voice_accepts_a_signature_over_the_url_with_the_default_port() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let request = Cpaas::Twilio.inbound_call(&Cpaas::Twilio.new_call_id(), CALLER, SHARED, None);
    let with_port = twilio_signature(
        "https://relay.example.com:443/twilio/voice",
        &request.params,
    );

    let response = post_form(
        &app,
        "/twilio/voice",
        &request.params,
        &[("X-Twilio-Signature", with_port)],
    )
    .await;

    assert_eq!(response.status(), 200);
    let twiml = crate::helpers::parse_markup(&response.text().await.unwrap());
    assert_callback(only_dial(&twiml), "/twilio/dial-status", &alices);
}

/// Twilio signs a JSON body through `bodySHA256` in the URL: the URL alone
/// is signed, and the body must hash to it.
#[tokio::test]
async fn status_accepts_a_json_body_signed_through_body_sha256_and_refuses_another_body() {
    use sha2::Digest as _;
    let app = spawn_app(Backend::Memory).await;
    let body = br#"{"CallSid": "CA00000000000000000000000000000001", "CallStatus": "completed"}"#;
    let path = format!(
        "/twilio/status?bodySHA256={}",
        hex::encode(sha2::Sha256::digest(body))
    );
    let signature = twilio_signature(&format!("{PUBLIC_BASE_URL}{path}"), &[]);
    let post = |body: &'static [u8]| {
        app.client
            .post(app.url(&path))
            .header("X-Twilio-Signature", &signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };

    let accepted = post(body).await.unwrap();
    assert_eq!(accepted.status(), 204);

    let other = br#"{"CallSid": "CA00000000000000000000000000000001", "CallStatus": "busy"}"#;
    assert_refused(post(other).await.unwrap()).await;
}

/// TwiML's spelling of a Dial: E.164 numbers with their `+`, `<Sip>` and
/// `<Client>` nouns, `answerOnBridge` so that the caller hears ringback
/// until a callee answers.
#[tokio::test]
async fn twiml_dials_e164_numbers_sip_and_clients_with_answer_on_bridge() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice_with_every_kind_at_once()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let response = app
        .twiml(
            "/twilio/voice",
            &[
                ("CallSid", "CA00000000000000000000000000000042"),
                ("From", "+12025550302"),
                ("To", "+12025550100"),
            ],
        )
        .await;

    let dial = only_dial(&response);
    assert_eq!(
        nouns(dial),
        pairs(&[
            ("Number", "+12025550201"),
            ("Sip", "sip:alice@pbx.example.com"),
            ("Client", "alice")
        ])
    );
    assert_eq!(dial.attr("answerOnBridge"), Some("true"), "{dial:?}");
    assert_eq!(dial.attr("callerId"), Some("+12025550302"), "{dial:?}");
    assert_alice_dial(Cpaas::Twilio, dial, Some(CALLER), &alices);
}
