//! What only Plivo does (docs/providers.md): the call flow itself runs for every
//! provider in `cpaas.rs`; here are Plivo XML's own spelling (numbers without
//! `+`, `<User>` for SIP and softphones), its V3 signature header holding
//! several signatures, and the dial statuses only Plivo sends.

use serde_json::json;

use crate::cpaas::{
    ALICE, CALLER, SHARED, alice, alice_with_every_kind_at_once, assert_alice_dial, assert_refused,
    forged_signature, forwarded, nouns, only_dial, ring, session,
};
use crate::helpers::CpaasTest as _;
use crate::helpers::{Backend, Cpaas, PUBLIC_BASE_URL, local_path, pairs, post_form, spawn_app};

const PLIVO: Cpaas = Cpaas::Plivo;

#[tokio::test]
async fn plivo_xml_writes_numbers_without_a_plus_and_dials_sip_and_softphones_as_users() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice_with_every_kind_at_once()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;

    let response = PLIVO
        .markup(
            &app,
            "/plivo/answer",
            &pairs(&[
                ("CallUUID", "2b7e1c4a-0f3d-4e58-9a61-c3d5e7f9a1b2"),
                ("From", "12025550302"),
                ("To", "12025550100"),
            ]),
        )
        .await;

    let dial = only_dial(&response);
    assert_eq!(
        nouns(dial),
        pairs(&[
            ("Number", "12025550201"),
            ("User", "sip:alice@pbx.example.com"),
            ("User", "sip:alice@phone.plivo.com")
        ])
    );
    assert_eq!(dial.attr("callerId"), Some("12025550302"), "{dial:?}");
    assert_eq!(dial.attr("redirect"), Some("true"), "{dial:?}");
    assert_eq!(dial.attr("answerOnBridge"), None, "Twilio's only: {dial:?}");
    assert_alice_dial(PLIVO, dial, Some(CALLER), &alices);
}

/// Plivo may put several comma-separated signatures in the header (while it
/// rotates tokens); any one matching is enough, none matching is refused.
#[tokio::test]
async fn plivo_accepts_a_header_of_several_signatures_when_one_is_valid() {
    let app = spawn_app(Backend::Memory).await;
    app.register(ALICE, &alice()).await;
    let forged = forged_signature(PLIVO);
    let other_forged = "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=";

    for (before, after) in [
        (String::new(), format!(",{forged}")),
        (format!("{forged}, "), String::new()),
        (format!("{other_forged},"), format!(",{forged}")),
    ] {
        let request = PLIVO.inbound_call(&PLIVO.new_call_id(), CALLER, SHARED, None);
        let url = format!("{PUBLIC_BASE_URL}{}", request.path);
        let mut headers = PLIVO.signature_headers(&url, &request.params);
        headers[0].1 = format!("{before}{}{after}", headers[0].1);

        let response = post_form(&app, &request.path, &request.params, &headers).await;

        assert_eq!(response.status(), 200, "{:?}", headers[0]);
    }

    let request = PLIVO.inbound_call(&PLIVO.new_call_id(), CALLER, SHARED, None);
    let url = format!("{PUBLIC_BASE_URL}{}", request.path);
    let mut headers = PLIVO.signature_headers(&url, &request.params);
    headers[0].1 = format!("{forged},{other_forged}");
    assert_refused(post_form(&app, &request.path, &request.params, &headers).await).await;
}

/// The nonce is part of what V3 signs; the deprecated V2 is not accepted.
#[tokio::test]
async fn plivo_refuses_a_signature_without_its_nonce_with_another_nonce_or_in_v2() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let request = PLIVO.inbound_call(&PLIVO.new_call_id(), CALLER, SHARED, None);
    let url = format!("{PUBLIC_BASE_URL}{}", request.path);
    let genuine = PLIVO.signature_headers(&url, &request.params);
    assert_eq!(genuine[1].0, "X-Plivo-Signature-V3-Nonce");
    let v2_nonce = "12345";
    let v2 = ringrelay_server::providers::plivo::signature::sign_v2(
        crate::helpers::PLIVO_AUTH_TOKEN.as_bytes(),
        &url,
        v2_nonce,
    );

    for headers in [
        vec![genuine[0].clone()],
        vec![genuine[0].clone(), (genuine[1].0, String::new())],
        vec![
            genuine[0].clone(),
            (genuine[1].0, "12345678901234567890".into()),
        ],
        vec![
            ("X-Plivo-Signature-V2", v2),
            ("X-Plivo-Signature-V2-Nonce", v2_nonce.into()),
        ],
    ] {
        assert_refused(post_form(&app, &request.path, &request.params, &headers).await).await;
    }
    let s = session(&app, &alices).await;
    assert_eq!(s["state"], "instructed", "{s}");
}

/// `timeout` is Plivo's other word for a leg nobody answered.
#[tokio::test]
async fn plivo_dial_status_timeout_hunts_the_next_destination() {
    let app = spawn_app(Backend::Memory).await;
    let alice_reg = app.register(ALICE, &alice()).await;
    let alices = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, PLIVO, CALLER, SHARED).await;

    let second = PLIVO
        .request("dial_busy")
        .at(&local_path(only_dial(&first).attr("action").unwrap()))
        .with("DialStatus", "timeout")
        .with("DialHangupCause", "NO_ANSWER")
        .markup(&app)
        .await;

    let laptop = only_dial(&second);
    assert_eq!(nouns(laptop), [PLIVO.client_noun("alice")]);
    assert_alice_dial(PLIVO, laptop, Some(CALLER), &alices);
    let s = session(&app, &alices).await;
    assert_eq!(
        s["legs"],
        json!([
            {"destination_id": "desk", "status": "no-answer"},
            {"destination_id": "laptop", "status": "ringing"}
        ])
    );
}
