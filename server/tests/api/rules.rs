//! Subscriber rules (docs/api.md): the schedule, a destination's hours and
//! ring timeout, do-not-disturb and caller rules, each seen where it acts:
//! the ring report's instruction, who is notified, and the markup the
//! forwarded call gets. Time is the app's set clock, moved on by the test.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cpaas::{
    ALICE, ALICE_DESK, CALLER, OTHER_CALLER, SHARED, alice_with, assert_voicemail, forwarded,
    next_event, nouns, only_dial, session,
};
use crate::helpers::Element;
use crate::helpers::{
    ADMIN_TOKEN, Backend, Cpaas, DialEnd, Registered, TestApp, assert_error, spawn_app,
    spawn_app_at,
};
use crate::receiver::{Behaviour, WebhookReceiver};

crate::for_each_provider! {
    on_both_backends: [
        outside_the_schedule_only_the_phone_rings_and_a_forwarded_call_reaches_the_fallback,
        outside_the_schedule_with_outside_voicemail_the_call_goes_straight_to_voicemail,
        a_destination_outside_its_hours_is_neither_notified_nor_dialed,
        a_destinations_ring_timeout_rings_its_own_legs,
        do_not_disturb_sends_calls_to_voicemail_until_it_ends_by_itself,
        caller_rules_block_send_to_voicemail_or_let_a_vip_through_first_match_first,
    ],
    once: [
        with_the_store_down_the_last_known_subscriber_still_carries_its_rules,
    ],
}

crate::both_backends! {
    do_not_disturb_refuses_a_past_or_malformed_time_naming_until =>
        super::do_not_disturb_refuses_a_past_or_malformed_time_naming_until;
    the_admins_put_keeps_do_not_disturb => super::the_admins_put_keeps_do_not_disturb;
}

/// Saturday noon in Berlin's winter (UTC+1).
const SATURDAY: &str = "2026-12-05T11:00:00Z";

/// Office hours in Berlin, Monday to Friday 09:00 to 17:00.
fn office_hours() -> Value {
    json!([{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}])
}

/// Alice's desk phone and laptop, each with its own receiver path.
fn alice_two_destinations(receiver: &WebhookReceiver, patch: Value) -> Value {
    let mut body = alice_with(json!({
        "destinations": [
            {"id": "desk", "kind": "phone", "address": ALICE_DESK,
             "webhook_url": receiver.url("/desk")},
            {"id": "laptop", "kind": "client", "address": "alice",
             "webhook_url": receiver.url("/laptop")}
        ]
    }));
    for (key, value) in patch.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// A ring report from `caller`: the instruction and the session id.
async fn ring_from(
    app: &TestApp,
    registered: &Registered,
    caller: Option<&str>,
) -> (String, String) {
    let response = app
        .ring(&registered.device_token, &json!({"caller": caller}))
        .await;
    assert_eq!(response.status(), 201, "ring report");
    let body: Value = response.json().await.unwrap();
    let instruction = body["instruction"].as_str().unwrap();
    // `ignore` says why; nothing else carries a reason.
    let instruction = match (instruction, &body["reason"]) {
        ("ignore", Value::String(reason)) => format!("ignore: {reason}"),
        (_, Value::Null) => instruction.to_owned(),
        _ => panic!("a reason goes with ignore only: {body}"),
    };
    (instruction, body["session_id"].as_str().unwrap().to_owned())
}

/// The paths that heard `call.ringing` so far. The ring report answers
/// only once every notification was answered, so after it nothing is late.
async fn notified(receiver: &WebhookReceiver) -> Vec<String> {
    let mut paths: Vec<String> = receiver
        .arrived_so_far()
        .await
        .into_iter()
        .filter(|r| r.kind() == "call.ringing")
        .map(|r| r.path)
        .collect();
    paths.sort();
    paths
}

/// The provider's busy reject, for a blocked caller.
fn assert_busy(cpaas: Cpaas, response: &Element) {
    let verb = match cpaas {
        Cpaas::Plivo => "Hangup",
        Cpaas::Twilio | Cpaas::Telnyx | Cpaas::SignalWire => "Reject",
    };
    assert_eq!(response.child_names(), [verb], "{response:?}");
    assert_eq!(
        response.child(verb).unwrap().attr("reason"),
        Some("busy"),
        "{response:?}"
    );
}

async fn outside_the_schedule_only_the_phone_rings_and_a_forwarded_call_reaches_the_fallback(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app_at(backend, SATURDAY).await;
    let body = alice_two_destinations(
        &receiver,
        json!({"schedule": {"timezone": "Europe/Berlin", "hours": office_hours()}}),
    );
    let alice = app.register(ALICE, &body).await;

    let (instruction, _) = ring_from(&app, &alice, Some(CALLER)).await;
    assert_eq!(
        instruction, "ignore: outside_schedule",
        "outside = phone by default"
    );
    assert!(notified(&receiver).await.is_empty());
    // The phone rang on unanswered: the carrier forwards on no reply, and
    // the call reaches the fallback without ringing anyone.
    assert_voicemail(cpaas, &forwarded(&app, cpaas, CALLER, SHARED).await);

    // Monday morning in Berlin: both ring.
    app.clock.advance(Duration::from_secs(
        (2 * 24 * 60 - 150) as u64 * 60, // Saturday 12:00 → Monday 09:30
    ));
    let (instruction, _) = ring_from(&app, &alice, Some(CALLER)).await;
    assert_eq!(instruction, "reject");
    assert_eq!(notified(&receiver).await, ["/desk", "/laptop"]);
    let response = forwarded(&app, cpaas, CALLER, SHARED).await;
    assert_eq!(nouns(only_dial(&response)), [cpaas.phone_noun(ALICE_DESK)]);
}

async fn outside_the_schedule_with_outside_voicemail_the_call_goes_straight_to_voicemail(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app_at(backend, SATURDAY).await;
    let body = alice_two_destinations(
        &receiver,
        json!({"schedule": {"timezone": "Europe/Berlin", "hours": office_hours(), "outside": "voicemail"}}),
    );
    let alice = app.register(ALICE, &body).await;

    let (instruction, id) = ring_from(&app, &alice, Some(CALLER)).await;
    assert_eq!(instruction, "reject");
    assert!(notified(&receiver).await.is_empty());
    let record = assert_voicemail(cpaas, &forwarded(&app, cpaas, CALLER, SHARED).await).clone();
    let (_, recording) = crate::cpaas::recording_ended(&app, cpaas, &record).await;
    let voicemail = next_event(&receiver, "call.voicemail").await;
    assert_eq!(voicemail.body["data"]["recording_url"], recording.as_str());
    assert_eq!(session(&app, &id).await["state"], "voicemail");
}

async fn a_destination_outside_its_hours_is_neither_notified_nor_dialed(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app_at(backend, SATURDAY).await;
    let mut body = alice_two_destinations(&receiver, json!({"strategy": "simultaneous"}));
    body["destinations"][0]["hours"] = office_hours();
    let alice = app.register(ALICE, &body).await;

    let (instruction, _) = ring_from(&app, &alice, Some(CALLER)).await;
    assert_eq!(instruction, "reject");
    assert_eq!(notified(&receiver).await, ["/laptop"]);
    let response = forwarded(&app, cpaas, CALLER, SHARED).await;
    assert_eq!(nouns(only_dial(&response)), [cpaas.client_noun("alice")]);

    // With every destination outside its hours, only the phone rings.
    body["destinations"][1]["hours"] = office_hours();
    assert_eq!(app.put_subscriber(ALICE, &body).await.status(), 200);
    let (instruction, _) = ring_from(&app, &alice, Some(OTHER_CALLER)).await;
    assert_eq!(instruction, "ignore: no_destination_in_hours");
    assert!(notified(&receiver).await.is_empty());
}

async fn a_destinations_ring_timeout_rings_its_own_legs(cpaas: Cpaas, backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app
        .register(
            ALICE,
            &alice_with(json!({
                "ring_timeout_secs": 25,
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": ALICE_DESK, "ring_timeout_secs": 40},
                    {"id": "laptop", "kind": "client", "address": "alice"}
                ]
            })),
        )
        .await;
    let stored: Value = app.get_subscriber(ALICE).await.json().await.unwrap();
    assert_eq!(stored["destinations"][0]["ring_timeout_secs"], 40);
    assert_eq!(
        stored["destinations"][1]["ring_timeout_secs"], 25,
        "the default filled in"
    );

    crate::cpaas::ring(&app, &alice, Some(CALLER)).await;
    let response = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&response);
    assert_eq!(desk.attr("timeout"), Some("40"), "{desk:?}");
    let response = crate::cpaas::dial_ended(&app, cpaas, desk, DialEnd::NoAnswer).await;
    let laptop = only_dial(&response);
    assert_eq!(nouns(laptop), [cpaas.client_noun("alice")]);
    assert_eq!(laptop.attr("timeout"), Some("25"), "{laptop:?}");
}

async fn do_not_disturb_sends_calls_to_voicemail_until_it_ends_by_itself(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app_at(backend, SATURDAY).await;
    let alice = app
        .register(ALICE, &alice_two_destinations(&receiver, json!({})))
        .await;

    let response = app
        .put_dnd(
            &alice.device_token,
            &json!({"until": "2026-12-05T12:00:00Z"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"dnd_until": "2026-12-05T12:00:00.000Z"}));
    let stored: Value = app.get_subscriber(ALICE).await.json().await.unwrap();
    assert_eq!(stored["dnd_until"], "2026-12-05T12:00:00.000Z");

    let (instruction, id) = ring_from(&app, &alice, Some(CALLER)).await;
    assert_eq!(instruction, "reject");
    assert!(notified(&receiver).await.is_empty(), "nobody is disturbed");
    assert_voicemail(cpaas, &forwarded(&app, cpaas, CALLER, SHARED).await);
    assert_eq!(session(&app, &id).await["state"], "forwarded");

    // An hour later it is over, without anyone turning it off.
    app.clock.advance(Duration::from_secs(3600));
    let (instruction, _) = ring_from(&app, &alice, Some(OTHER_CALLER)).await;
    assert_eq!(instruction, "reject");
    assert_eq!(notified(&receiver).await, ["/desk", "/laptop"]);
    let response = forwarded(&app, cpaas, OTHER_CALLER, SHARED).await;
    assert_eq!(nouns(only_dial(&response)), [cpaas.phone_noun(ALICE_DESK)]);

    // On again, then off by hand.
    let response = app
        .put_dnd(
            &alice.device_token,
            &json!({"until": "2026-12-06T00:00:00Z"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .put_dnd(&alice.device_token, &json!({"until": null}))
        .await;
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"dnd_until": null})
    );
    let (_, _) = ring_from(&app, &alice, Some(CALLER)).await;
    assert_eq!(notified(&receiver).await, ["/desk", "/laptop"]);
}

async fn caller_rules_block_send_to_voicemail_or_let_a_vip_through_first_match_first(
    cpaas: Cpaas,
    backend: Backend,
) {
    const VIP: &str = "+12025550377";
    const PHONE_ONLY: &str = "+14155550100";
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app_at(backend, SATURDAY).await;
    let body = alice_two_destinations(
        &receiver,
        json!({
            "schedule": {"timezone": "Europe/Berlin", "hours": office_hours(), "outside": "voicemail"},
            "caller_rules": [
                {"match": VIP, "action": "vip"},
                {"match": "+1202555*", "action": "block"},
                {"match": "+1415*", "action": "phone"},
                {"match": "withheld", "action": "voicemail"}
            ]
        }),
    );
    let alice = app.register(ALICE, &body).await;
    assert_eq!(
        app.put_dnd(
            &alice.device_token,
            &json!({"until": "2026-12-06T00:00:00Z"})
        )
        .await
        .status(),
        200
    );

    // The VIP rings both destinations, outside the schedule and during
    // do-not-disturb (the block rule after it matches too: first wins).
    let (instruction, _) = ring_from(&app, &alice, Some(VIP)).await;
    assert_eq!(instruction, "reject");
    assert_eq!(notified(&receiver).await, ["/desk", "/laptop"]);
    let response = forwarded(&app, cpaas, VIP, SHARED).await;
    assert_eq!(nouns(only_dial(&response)), [cpaas.phone_noun(ALICE_DESK)]);

    // A blocked caller: the phone rejects, nobody hears of it, and the
    // forwarded call is refused busy; the session ends missed.
    let (instruction, id) = ring_from(&app, &alice, Some(CALLER)).await;
    assert_eq!(instruction, "reject");
    assert!(notified(&receiver).await.is_empty());
    assert_busy(cpaas, &forwarded(&app, cpaas, CALLER, SHARED).await);
    assert_eq!(session(&app, &id).await["state"], "missed");
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(
        missed.body["data"]["reason"], "blocked",
        "{:?}",
        missed.body
    );

    // Only the phone for one prefix; voicemail for withheld callers.
    let (instruction, _) = ring_from(&app, &alice, Some(PHONE_ONLY)).await;
    assert_eq!(instruction, "ignore: caller_rule");
    let (instruction, _) = ring_from(&app, &alice, None).await;
    assert_eq!(instruction, "reject");
    assert!(notified(&receiver).await.is_empty());
    assert_voicemail(cpaas, &forwarded(&app, cpaas, "+266696687", SHARED).await);
}

async fn do_not_disturb_refuses_a_past_or_malformed_time_naming_until(backend: Backend) {
    let app = spawn_app_at(backend, SATURDAY).await;
    let alice = app.register(ALICE, &crate::cpaas::alice()).await;
    for body in [
        json!({"until": "2026-12-05T10:59:59Z"}),
        json!({"until": "tomorrow"}),
        json!({"until": 1_800_000_000}),
    ] {
        let error = assert_error(
            app.put_dnd(&alice.device_token, &body).await,
            422,
            "invalid_field",
        )
        .await;
        assert!(
            error["message"].as_str().unwrap().starts_with("until: "),
            "{body}: {error}"
        );
    }
    let error = assert_error(
        app.put_dnd(&alice.device_token, &json!({"untill": null}))
            .await,
        422,
        "invalid_field",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("untill"),
        "{error}"
    );
    assert_error(
        app.put_dnd(ADMIN_TOKEN, &json!({"until": null})).await,
        401,
        "unauthorized",
    )
    .await;
    let stored: Value = app.get_subscriber(ALICE).await.json().await.unwrap();
    assert_eq!(stored["dnd_until"], Value::Null, "nothing was stored");
}

async fn the_admins_put_keeps_do_not_disturb(backend: Backend) {
    let app = spawn_app_at(backend, SATURDAY).await;
    let alice = app.register(ALICE, &crate::cpaas::alice()).await;
    let until = json!({"until": "2026-12-05T12:00:00Z"});
    assert_eq!(app.put_dnd(&alice.device_token, &until).await.status(), 200);
    let response = app
        .put_subscriber(ALICE, &alice_with(json!({"ring_timeout_secs": 30})))
        .await;
    assert_eq!(response.status(), 200);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(
        replaced["subscriber"]["dnd_until"],
        "2026-12-05T12:00:00.000Z"
    );
    let (instruction, _) = ring_from(&app, &alice, Some(CALLER)).await;
    assert_eq!(instruction, "reject");
}

#[tokio::test]
async fn every_invalid_rule_is_a_422_naming_its_field_and_the_defaults_are_echoed() {
    let app = spawn_app(Backend::Memory).await;
    let response = app.put_subscriber(ALICE, &crate::cpaas::alice()).await;
    let created: Value = response.json().await.unwrap();
    let stored = &created["subscriber"];
    assert_eq!(stored["schedule"], Value::Null);
    assert_eq!(stored["caller_rules"], json!([]));
    assert_eq!(stored["record"], "none");
    assert_eq!(stored["ring_tone"], Value::Null);
    assert_eq!(stored["dnd_until"], Value::Null);
    assert_eq!(stored["destinations"][0]["hours"], Value::Null);

    let schedule = |patch: Value| {
        let mut s = json!({"timezone": "Europe/Berlin", "hours": office_hours()});
        for (key, value) in patch.as_object().unwrap() {
            s[key] = value.clone();
        }
        json!({"schedule": s})
    };
    let window = |w: Value| schedule(json!({"hours": [w]}));
    let cases = [
        (
            schedule(json!({"timezone": "Mars/Olympus"})),
            "schedule.timezone",
        ),
        (schedule(json!({"hours": []})), "schedule.hours"),
        (schedule(json!({"outside": "later"})), "schedule.outside"),
        (
            window(json!({"days": [], "from": "09:00", "to": "17:00"})),
            "schedule.hours[0].days",
        ),
        (
            window(json!({"days": ["monday"], "from": "09:00", "to": "17:00"})),
            "schedule.hours[0].days[0]",
        ),
        (
            window(json!({"days": ["mon"], "from": "9am", "to": "17:00"})),
            "schedule.hours[0].from",
        ),
        (
            window(json!({"days": ["mon"], "from": "24:00", "to": "06:00"})),
            "schedule.hours[0].from",
        ),
        (
            window(json!({"days": ["mon"], "from": "09:00", "to": "09:00"})),
            "schedule.hours[0].to",
        ),
        (
            window(json!({"days": ["mon"], "from": "09:00", "to": "25:00"})),
            "schedule.hours[0].to",
        ),
        (
            json!({"caller_rules": [{"match": "12025550302", "action": "block"}]}),
            "caller_rules[0].match",
        ),
        (
            json!({"caller_rules": [{"match": "+1202*", "action": "ban"}]}),
            "caller_rules[0].action",
        ),
        (
            json!({"caller_rules": (0..101).map(|i| json!({"match": format!("+1{i}"), "action": "block"})).collect::<Vec<_>>()}),
            "caller_rules",
        ),
        (json!({"record": "always"}), "record"),
        (json!({"ring_tone": "xx"}), "ring_tone"),
        (
            json!({"destinations": [{"id": "desk", "kind": "phone", "address": ALICE_DESK, "hours": []}]}),
            "destinations[0].hours",
        ),
        (
            json!({"destinations": [{"id": "desk", "kind": "phone", "address": ALICE_DESK, "ring_timeout_secs": 121}]}),
            "destinations[0].ring_timeout_secs",
        ),
    ];
    for (patch, field) in cases {
        let body = alice_with(patch.clone());
        let error =
            assert_error(app.put_subscriber(ALICE, &body).await, 422, "invalid_field").await;
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{patch}: {message}"
        );
        assert!(message.len() < 400, "{message}");
    }
}

async fn with_the_store_down_the_last_known_subscriber_still_carries_its_rules(cpaas: Cpaas) {
    let app = spawn_app_at(Backend::redis(), SATURDAY).await;
    let body = alice_with(json!({
        "schedule": {"timezone": "Europe/Berlin", "hours": office_hours(), "outside": "voicemail"},
        "caller_rules": [
            {"match": CALLER, "action": "block"},
            {"match": OTHER_CALLER, "action": "vip"}
        ]
    }));
    app.register(ALICE, &body).await;
    app.backend.test_redis().stop();

    assert_busy(cpaas, &forwarded(&app, cpaas, CALLER, SHARED).await);
    let response = forwarded(&app, cpaas, OTHER_CALLER, SHARED).await;
    assert_eq!(nouns(only_dial(&response)), [cpaas.phone_noun(ALICE_DESK)]);
    // Anyone else: Saturday is outside the schedule.
    assert_voicemail(cpaas, &forwarded(&app, cpaas, "+12025550377", SHARED).await);
}
