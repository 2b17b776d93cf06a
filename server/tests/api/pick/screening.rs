//! Screening in pick mode: the destination that accepted is asked to press 1.

use super::*;

// 9. Screening

#[tokio::test]
async fn screen_asks_the_destination_to_press_1_when_the_destination_screens() {
    let app = spawn_app(Backend::Memory).await;
    let alice = app
        .register(
            ALICE,
            &json!({
                "forwarding_number": FORWARDING_NUMBER,
                "mode": "auto",
                "strategy": "simultaneous",
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": ALICE_DESK, "screening": true},
                    {"id": "laptop", "kind": "client", "address": "alice", "screening": false}
                ]
            }),
        )
        .await;
    let response = app
        .ring(&alice.device_token, &json!({"caller": CALLER}))
        .await;
    assert_eq!(response.status(), 201);

    let voice = app
        .twiml(
            "/twilio/voice",
            &voice_params("CA000000000000000000000000000screen"),
        )
        .await;
    let dial = first_dial(&voice);
    assert_eq!(
        nouns(dial),
        [("Number", ALICE_DESK), ("Client", "alice")],
        "{dial:?}"
    );
    // Every noun tells who answered; only the desk's whisper screens.
    let laptop = &dial.children[1];
    let pickup = laptop.attr("url").expect("the laptop's pickup URL");
    assert!(pickup.contains("destination=laptop"), "{pickup}");
    let desk = &dial.children[0];
    assert_eq!(desk.attr("method"), Some("POST"), "{desk:?}");
    let whisper = desk.attr("url").expect("a whisper URL");
    assert!(
        whisper.starts_with(&format!("{PUBLIC_BASE_URL}/twilio/screen?")),
        "{whisper}"
    );
    let query = query_of(whisper);
    assert_eq!(query.get("subscriber").map(String::as_str), Some(ALICE));
    assert_eq!(query.get("caller").map(String::as_str), Some(CALLER));

    let screen = app.twiml(&local_path(whisper), &leg_params(None)).await;
    assert_eq!(screen.child_names(), ["Gather", "Hangup"], "{screen:?}");
    let gather = screen.child("Gather").unwrap();
    assert_eq!(gather.attr("numDigits"), Some("1"), "{gather:?}");
    assert_eq!(gather.attr("method"), Some("POST"), "{gather:?}");
    let action = gather.attr("action").expect("a Gather action");
    assert!(
        action.starts_with(&format!("{PUBLIC_BASE_URL}/twilio/screen-result?")),
        "{action}"
    );
    let prompt = &gather.child("Say").unwrap().text;
    assert!(prompt.contains("2 0 2 5 5 5 0 3 0 2"), "{prompt}");

    // The press of 1 bridges the call: an empty answer.
    let taken = app.twiml(&local_path(action), &leg_params(Some("1"))).await;
    assert!(taken.children.is_empty(), "{taken:?}");
    for refused in [Some("2"), None] {
        let response = app.twiml(&local_path(action), &leg_params(refused)).await;
        assert_eq!(
            response.child_names(),
            ["Hangup"],
            "{refused:?}: {response:?}"
        );
    }
}

#[tokio::test]
async fn screen_is_refused_when_the_signature_is_missing() {
    let app = spawn_app(Backend::Memory).await;
    let path = "/twilio/screen?subscriber=%2B12025550199&caller=%2B12025550302";
    let response = app
        .client
        .post(app.url(path))
        .form(&leg_params(None))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "invalid_signature").await;
}
