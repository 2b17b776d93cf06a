//! Screening: the answering person hears who calls and presses 1 to take
//! the call.

use super::*;

crate::for_each_provider! {
    on_both_backends: [
    ],
    once: [
        voice_screens_a_screening_destination_before_bridging,
        screen_result_bridges_on_1_and_hangs_up_the_leg_otherwise,
    ],
}

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
        Screening::GatherOnLeg => {
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
        Screening::GatherOnLeg => {
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
    // The caller: by the name the provider's lookup gave (Plivo's recorded
    // call has one), else by the number.
    let caller = match cpaas.request("inbound_call").get(cpaas.caller_name_param()) {
        Some(name) => name.split_whitespace().collect::<Vec<_>>().join(" "),
        None => "2 0 2 5 5 5 0 3 0 2".to_owned(),
    };
    assert!(prompt.contains(&caller), "the caller: {prompt}");
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
