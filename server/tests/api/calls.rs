//! Call semantics that never lose a call (docs/providers.md), played as each
//! provider plays them (docs/providers.md, how each provider carries out a Dial):
//! the TwiML family (Twilio, Telnyx, SignalWire) rings the nouns together,
//! runs the whisper on the leg that picks up and hangs the others up; only
//! Twilio reports `DialBridged`, so on Telnyx and SignalWire the whisper's
//! pick-up and the recorded key press decide. Plivo asks every answering leg
//! for `confirmKey`, keeps the others ringing, and reports its B legs to the
//! Dial's `callbackUrl`. Every case runs per provider and per store.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cpaas::{
    ALICE, ALICE_DESK, CALLER, SHARED, alice_with, assert_hangup, forwarded, forwarded_as,
    next_event, nouns, only_dial, query_of, ring, session,
};
use crate::helpers::CpaasTest as _;
use crate::helpers::Element;
use crate::helpers::{Backend, Cpaas, Screening, TestApp, local_path, spawn_app, spawn_app_with};
use crate::receiver::{Behaviour, WebhookReceiver};

crate::for_each_provider! {
    on_both_backends: [
        a_voicemail_picking_up_first_in_a_simultaneous_ring_does_not_swallow_the_call,
        a_screened_leg_that_picks_up_without_pressing_1_is_declined_and_the_hunt_goes_on,
        a_simultaneous_ring_names_the_destination_that_answered,
        the_caller_hanging_up_mid_hunt_ends_the_session_missed_once,
        a_repeated_dial_status_answers_the_same_markup_and_records_one_leg,
        a_callback_naming_another_subscriber_changes_nothing,
        a_rejected_call_that_is_never_forwarded_expires_with_call_missed,
        a_new_ring_report_supersedes_the_callers_older_unclaimed_session,
        a_repeated_pick_up_or_key_press_sends_call_connected_once_and_answers_the_same,
        a_repeated_voicemail_callback_sends_call_voicemail_once,
        a_leg_picking_up_after_the_call_is_over_is_hung_up,
        whispers_key_presses_and_voicemails_naming_another_subscriber_change_nothing,
        a_forward_deadline_outlives_the_instance_that_wrote_it,
    ],
    once: [],
}

const CELL: &str = "+12025550205";

/// Alice ringing her mobile (screened: its voicemail must not take the
/// call) and her laptop together, voicemail last; webhooks to `receiver`.
fn alice_simultaneous(receiver: &WebhookReceiver) -> Value {
    alice_with(json!({
        "strategy": "simultaneous",
        "destinations": [
            {"id": "cell", "kind": "phone", "address": CELL, "screening": true,
             "webhook_url": receiver.url("/cell")},
            {"id": "laptop", "kind": "client", "address": "alice",
             "webhook_url": receiver.url("/laptop")}
        ]
    }))
}

/// Asserts that no `kind` delivery arrived beyond those already taken, once
/// every delivery `apps` queued has finished.
async fn assert_no_more(apps: &[&TestApp], receiver: &WebhookReceiver, kind: &str, why: &str) {
    for app in apps {
        app.deliveries_settled().await;
    }
    let late: Vec<_> = receiver
        .arrived_so_far()
        .await
        .into_iter()
        .filter(|r| r.kind() == kind)
        .collect();
    assert!(late.is_empty(), "{why}: {late:?}");
}

/// The provider's Dial action: the Dial ended with `status`, and (Twilio
/// only: no other provider sends `DialBridged`) `bridged`.
async fn dial_ends(
    app: &TestApp,
    cpaas: Cpaas,
    dial: &Element,
    status: &str,
    bridged: Option<bool>,
) -> Element {
    let action = dial.attr("action").expect("the Dial has an action");
    let mut request = cpaas
        .request(if status == "completed" {
            "dial_completed"
        } else {
            "dial_busy"
        })
        .at(&local_path(action))
        .with_parties(CALLER, SHARED)
        .with(cpaas.dial_status_param(), status);
    request = match (cpaas, bridged) {
        (Cpaas::Twilio, Some(bridged)) => {
            request.with("DialBridged", if bridged { "true" } else { "false" })
        }
        (Cpaas::Twilio, None) | (Cpaas::Plivo | Cpaas::Telnyx | Cpaas::SignalWire, _) => {
            request.without("DialBridged")
        }
    };
    request.markup(app).await
}

/// The leg dialing `address` (as the markup writes it) picks up: what the
/// provider does on that leg before the bridge. The TwiML family fetches the
/// noun's whisper and runs it; Plivo reports the answer to the Dial's
/// `callbackUrl` and fetches `confirmSound` when there is one. Returns the
/// markup the leg runs.
async fn leg_picks_up(app: &TestApp, cpaas: Cpaas, dial: &Element, address: &str) -> Element {
    match cpaas.screening() {
        Screening::GatherOnLeg => {
            let noun = dial
                .children
                .iter()
                .find(|n| n.text == address)
                .unwrap_or_else(|| panic!("{address} is dialed: {dial:?}"));
            // SignalWire's <Verto> takes no attributes: that leg runs nothing
            // before the bridge.
            if noun.name == "Verto" {
                assert!(noun.attrs.is_empty(), "{noun:?}");
                return crate::helpers::parse_markup("<Response/>");
            }
            let url = noun
                .attr("url")
                .expect("every other noun tells who answered");
            cpaas
                .request("screen")
                .at(&local_path(url))
                .markup(app)
                .await
        }
        Screening::ConfirmKey => {
            leg_event(app, cpaas, dial, address, "answer").await;
            match dial.attr("confirmSound") {
                Some(url) => {
                    cpaas
                        .request("screen")
                        .at(&local_path(url))
                        .markup(app)
                        .await
                }
                None => Element::default(),
            }
        }
    }
}

/// Plivo's `callbackUrl` request for a B leg of `dial`.
async fn leg_event(app: &TestApp, cpaas: Cpaas, dial: &Element, address: &str, action: &str) {
    let url = dial
        .attr("callbackUrl")
        .expect("Plivo Dials report their legs");
    let response = cpaas
        .status_request()
        .at(&local_path(url))
        .with("DialAction", action)
        .with("DialBLegTo", address)
        .with("DialBLegUUID", &cpaas.new_call_id())
        .post(app)
        .await;
    assert_eq!(response.status(), 204);
}

/// The leg dialing `address` takes the call: a screened leg of the TwiML
/// family presses 1 at its Gather; an unscreened one was bridged by its
/// whisper already; on Plivo the person presses the confirm key and Plivo
/// reports the bridge.
async fn leg_takes_the_call(
    app: &TestApp,
    cpaas: Cpaas,
    dial: &Element,
    whisper: &Element,
    address: &str,
) {
    match cpaas.screening() {
        Screening::GatherOnLeg => {
            if let Some(gather) = whisper.children.iter().find(|c| c.name == cpaas.gather()) {
                let action = gather.attr("action").expect("a Gather action");
                let taken = cpaas
                    .request("screen_result")
                    .at(&local_path(action))
                    .with("Digits", "1")
                    .markup(app)
                    .await;
                assert!(taken.children.is_empty(), "1 bridges: {taken:?}");
            } else {
                assert!(
                    whisper.children.is_empty(),
                    "an unscreened leg bridges: {whisper:?}"
                );
            }
        }
        Screening::ConfirmKey => leg_event(app, cpaas, dial, address, "connected").await,
    }
}

/// A screened leg picked up and nobody pressed anything: in the TwiML family
/// the Gather times out and the whisper hangs the leg up (the parent's Dial
/// then ends `completed` without a bridge); Plivo hangs the leg up and rings
/// on.
fn assert_screening_prompt(cpaas: Cpaas, whisper: &Element) {
    match cpaas.screening() {
        Screening::GatherOnLeg => {
            assert_eq!(
                whisper.child_names(),
                [cpaas.gather(), "Hangup"],
                "{whisper:?}"
            )
        }
        Screening::ConfirmKey => assert_eq!(whisper.child_names(), [cpaas.say()], "{whisper:?}"),
    }
}

async fn a_voicemail_picking_up_first_in_a_simultaneous_ring_does_not_swallow_the_call(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice_simultaneous(&receiver)).await;
    let id = ring(&app, &alice_reg, Some(CALLER)).await;

    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let group = only_dial(&first);
    let cell = cpaas.number(CELL);
    let laptop = cpaas.client_noun("alice").1;
    assert_eq!(
        nouns(group),
        [cpaas.phone_noun(CELL), cpaas.client_noun("alice")]
    );

    // The mobile's voicemail picks up first and presses nothing.
    let whisper = leg_picks_up(&app, cpaas, group, &cell).await;
    assert_screening_prompt(cpaas, &whisper);
    let after = match cpaas.screening() {
        // The provider hung the laptop up when the voicemail picked up; the
        // whisper hung the voicemail up: completed, not bridged (Twilio says
        // so; on Telnyx and SignalWire the missing key press tells). The rest
        // of the group rings again.
        Screening::GatherOnLeg => {
            let next = dial_ends(&app, cpaas, group, "completed", Some(false)).await;
            let again = only_dial(&next);
            assert_eq!(
                nouns(again),
                [cpaas.client_noun("alice")],
                "without the mobile"
            );
            assert_eq!(query_of(again.attr("action").unwrap())["round"], "1");
            next
        }
        // Plivo hangs up the leg that did not confirm; the laptop rings on
        // in the same Dial.
        Screening::ConfirmKey => first.clone(),
    };
    let dial = only_dial(&after);
    let whisper = leg_picks_up(&app, cpaas, dial, &laptop).await;
    leg_takes_the_call(&app, cpaas, dial, &whisper, &laptop).await;
    // A leg with a whisper is known bridged once the whisper ends; a
    // SignalWire <Verto> leg has none, so only the Dial's end says so.
    let whispered = dial
        .children
        .iter()
        .any(|n| n.text == laptop && n.attr("url").is_some());
    if !whispered {
        assert_hangup(&dial_ends(&app, cpaas, dial, "completed", Some(true)).await);
    }

    let connected = next_event(&receiver, "call.connected").await;
    assert_eq!(
        connected.body["data"]["destination_id"], "laptop",
        "{:?}",
        connected.body
    );
    assert!(connected.signature_valid);
    if whispered {
        // The bridged call ends; the Dial reports it.
        assert_hangup(&dial_ends(&app, cpaas, dial, "completed", Some(true)).await);
    }
    let s = session(&app, &id).await;
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["selected_destination"], "laptop", "{s}");
    let statuses: Vec<(String, String)> = s["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["destination_id"].as_str().unwrap().into(),
                l["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    // Plivo never bridged the cell, so it never counted as picked up.
    assert!(
        statuses.contains(&("cell".into(), "declined".into()))
            || cpaas.screening() == Screening::ConfirmKey,
        "{s}"
    );
    assert!(
        statuses.contains(&("laptop".into(), "connected".into())),
        "{s}"
    );
}

async fn a_screened_leg_that_picks_up_without_pressing_1_is_declined_and_the_hunt_goes_on(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
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
    let id = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&first);
    let whisper = leg_picks_up(&app, cpaas, desk, &cpaas.number(ALICE_DESK)).await;
    assert_screening_prompt(cpaas, &whisper);

    // The TwiML family: the whisper hung up: completed without a bridge
    // (Twilio says so; when it leaves DialBridged out, and always on Telnyx
    // and SignalWire, the missing key press decides). Plivo: the unconfirmed
    // leg is hung up and the Dial times out.
    let bridged_flags: &[Option<bool>] = match cpaas {
        Cpaas::Twilio => &[Some(false), None],
        Cpaas::Telnyx | Cpaas::SignalWire | Cpaas::Plivo => &[None],
    };
    let status = match cpaas.screening() {
        Screening::GatherOnLeg => "completed",
        Screening::ConfirmKey => "no-answer",
    };
    for (n, bridged) in bridged_flags.iter().enumerate() {
        let next = dial_ends(&app, cpaas, desk, status, *bridged).await;
        let laptop = only_dial(&next);
        assert_eq!(
            nouns(laptop),
            [cpaas.client_noun("alice")],
            "attempt {n}: {next:?}"
        );
    }
    let s = session(&app, &id).await;
    assert_eq!(s["state"], "forwarded", "the call goes on: {s}");
    assert_eq!(s["legs"][0]["destination_id"], "desk", "{s}");
    assert_eq!(s["legs"][0]["status"], "declined", "{s}");
}

async fn a_simultaneous_ring_names_the_destination_that_answered(cpaas: Cpaas, backend: Backend) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(
            ALICE,
            &alice_with(json!({
                "strategy": "simultaneous",
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": ALICE_DESK,
                     "webhook_url": receiver.url("/desk")},
                    {"id": "laptop", "kind": "client", "address": "alice"}
                ]
            })),
        )
        .await;
    let id = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let dial = only_dial(&first);
    let desk = cpaas.number(ALICE_DESK);

    let whisper = leg_picks_up(&app, cpaas, dial, &desk).await;
    leg_takes_the_call(&app, cpaas, dial, &whisper, &desk).await;

    let connected = next_event(&receiver, "call.connected").await;
    assert_eq!(connected.body["data"]["destination_id"], "desk");
    let s = session(&app, &id).await;
    assert_eq!(
        (s["state"].as_str(), s["selected_destination"].as_str()),
        (Some("connected"), Some("desk")),
        "{s}"
    );
    assert_hangup(&dial_ends(&app, cpaas, dial, "completed", Some(true)).await);
    assert_no_more(
        &[&app],
        &receiver,
        "call.connected",
        "call.connected is sent once",
    )
    .await;
}

async fn the_caller_hanging_up_mid_hunt_ends_the_session_missed_once(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app
        .register(
            ALICE,
            &crate::cpaas::alice_desk_only(Some(receiver.url("/desk"))),
        )
        .await;
    let id = ring(&app, &alice_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();
    let first = forwarded_as(&app, cpaas, &call_id, CALLER, SHARED, None).await;
    let dial = only_dial(&first);

    // The caller hangs up while the desk rings: the provider's final status
    // callback for the forwarded call (twice: callbacks are retried).
    for _ in 0..2 {
        let response = cpaas
            .status_request()
            .with_call_id(&call_id)
            .with_parties(CALLER, SHARED)
            .post(&app)
            .await;
        assert_eq!(response.status(), 204);
    }
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(
        missed.body["data"]["reason"], "caller_hung_up",
        "{:?}",
        missed.body
    );
    let s = session(&app, &id).await;
    assert_eq!(s["state"], "missed", "{s}");

    // A late Dial outcome changes nothing.
    assert_hangup(&dial_ends(&app, cpaas, dial, "no-answer", None).await);
    assert_eq!(session(&app, &id).await, s);
    assert_no_more(
        &[&app],
        &receiver,
        "call.missed",
        "call.missed is sent once",
    )
    .await;
}

async fn a_repeated_dial_status_answers_the_same_markup_and_records_one_leg(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &crate::cpaas::alice()).await;
    let id = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let desk = only_dial(&first);

    let once = dial_ends(&app, cpaas, desk, "busy", None).await;
    let twice = dial_ends(&app, cpaas, desk, "busy", None).await;
    let replayed_other = dial_ends(&app, cpaas, desk, "no-answer", None).await;

    assert_eq!(once, twice);
    assert_eq!(once, replayed_other);
    let s = session(&app, &id).await;
    let desk_legs: Vec<&Value> = s["legs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["destination_id"] == "desk")
        .collect();
    assert_eq!(desk_legs.len(), 1, "{s}");
    assert_eq!(desk_legs[0]["status"], "busy", "{s}");

    // A no-answer replayed once the call is connected starts no new Dial.
    let second = only_dial(&once);
    assert_hangup(&dial_ends(&app, cpaas, second, "completed", Some(true)).await);
    assert_hangup(&dial_ends(&app, cpaas, desk, "no-answer", None).await);
    assert_eq!(session(&app, &id).await["state"], "connected");
}

async fn a_callback_naming_another_subscriber_changes_nothing(cpaas: Cpaas, backend: Backend) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &crate::cpaas::alice()).await;
    app.register(crate::cpaas::BOB, &crate::cpaas::bob(SHARED))
        .await;
    let id = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let before = session(&app, &id).await;

    // Alice's session, Bob's number in the query (signed, so the provider
    // would post it as written).
    let action = only_dial(&first).attr("action").unwrap();
    let path = local_path(action).replace("%2B12025550199", "%2B12025550188");
    assert_ne!(path, local_path(action));
    let answer = cpaas
        .request("dial_busy")
        .at(&path)
        .with_parties(CALLER, SHARED)
        .markup(&app)
        .await;

    assert_hangup(&answer);
    assert_eq!(session(&app, &id).await, before);
}

async fn a_rejected_call_that_is_never_forwarded_expires_with_call_missed(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    // Two instances share the store (one, on memory): the ring on the
    // first, the expiry seen through the second.
    let first = spawn_app(backend).await;
    let second = match &first.backend {
        Backend::Memory => None,
        _ => Some(
            spawn_app_with(
                first.backend.clone(),
                &[("REDIS_KEY_PREFIX", &first.config.redis_key_prefix)],
            )
            .await,
        ),
    };
    let alice_reg = first
        .register(
            ALICE,
            &crate::cpaas::alice_desk_only(Some(receiver.url("/desk"))),
        )
        .await;
    let id = ring(&first, &alice_reg, Some(CALLER)).await;
    assert_eq!(
        next_event(&receiver, "call.ringing").await.kind(),
        "call.ringing"
    );

    // Nothing is forwarded (the carrier's forwarding codes were never
    // dialled): past FORWARD_TIMEOUT_SECS (30 s) on both instances' clocks,
    // the destinations hear that the call was missed, once.
    for app in std::iter::once(&first).chain(second.as_ref()) {
        app.clock.advance(Duration::from_secs(31));
    }
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(
        missed.body["data"]["reason"], "not_forwarded",
        "{:?}",
        missed.body
    );
    assert_eq!(missed.body["data"]["session_id"], id.as_str());
    let reader = second.as_ref().unwrap_or(&first);
    let s = session(reader, &id).await;
    assert_eq!(s["state"], "expired", "{s}");
    assert!(s["timeline"]["ended_at"].is_string(), "{s}");

    // A forwarded call arriving now does not take the expired session.
    let late = forwarded(reader, cpaas, CALLER, SHARED).await;
    assert_ne!(
        crate::cpaas::session_in(only_dial(&late)).as_deref(),
        Some(id.as_str())
    );
    // Either instance may have swept it: it is counted once between them.
    let instances: Vec<&TestApp> = std::iter::once(&first).chain(second.as_ref()).collect();
    let mut expired = 0;
    for app in &instances {
        expired += app
            .metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("ringrelay_sessions_ended_total{outcome=\"expired\"}"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>();
    }
    assert_eq!(expired, 1);
    assert_no_more(
        &instances,
        &receiver,
        "call.missed",
        "call.missed is sent once, by one instance",
    )
    .await;
}

async fn a_new_ring_report_supersedes_the_callers_older_unclaimed_session(
    cpaas: Cpaas,
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &crate::cpaas::alice()).await;
    // The caller hung up while the carrier forwarded, then called back.
    let lost = ring(&app, &alice_reg, Some(CALLER)).await;
    let current = ring(&app, &alice_reg, Some(CALLER)).await;

    let answer = forwarded(&app, cpaas, CALLER, SHARED).await;

    assert_eq!(
        crate::cpaas::session_in(only_dial(&answer)).as_deref(),
        Some(current.as_str())
    );
    assert_eq!(session(&app, &lost).await["state"], "expired");
    assert_eq!(session(&app, &current).await["state"], "forwarded");
}

/// Alice's desk only, screened or not, its notifications to `receiver`.
fn alice_desk(receiver: &WebhookReceiver, screening: bool) -> Value {
    alice_with(json!({
        "destinations": [
            {"id": "desk", "kind": "phone", "address": ALICE_DESK, "screening": screening,
             "webhook_url": receiver.url("/desk")}
        ]
    }))
}

async fn a_repeated_pick_up_or_key_press_sends_call_connected_once_and_answers_the_same(
    cpaas: Cpaas,
    backend: Backend,
) {
    for screening in [false, true] {
        let receiver = WebhookReceiver::start(Behaviour::Answer).await;
        let app = spawn_app(backend.clone()).await;
        let alice_reg = app.register(ALICE, &alice_desk(&receiver, screening)).await;
        let id = ring(&app, &alice_reg, Some(CALLER)).await;
        let first = forwarded(&app, cpaas, CALLER, SHARED).await;
        let dial = only_dial(&first);
        let desk = cpaas.number(ALICE_DESK);

        // Every request of the leg, twice (a provider retries a request
        // whose answer it did not get): the same answers.
        let whisper = leg_picks_up(&app, cpaas, dial, &desk).await;
        assert_eq!(leg_picks_up(&app, cpaas, dial, &desk).await, whisper);
        leg_takes_the_call(&app, cpaas, dial, &whisper, &desk).await;
        leg_takes_the_call(&app, cpaas, dial, &whisper, &desk).await;
        let done = dial_ends(&app, cpaas, dial, "completed", Some(true)).await;
        assert_hangup(&done);
        assert_eq!(
            dial_ends(&app, cpaas, dial, "completed", Some(true)).await,
            done
        );

        let connected = next_event(&receiver, "call.connected").await;
        assert_eq!(connected.body["data"]["destination_id"], "desk");
        let s = session(&app, &id).await;
        assert_eq!(s["state"], "connected", "screening {screening}: {s}");
        assert_eq!(s["legs"].as_array().unwrap().len(), 1, "{s}");
        assert_no_more(
            &[&app],
            &receiver,
            "call.connected",
            "call.connected is sent once",
        )
        .await;
    }
}

async fn a_repeated_voicemail_callback_sends_call_voicemail_once(cpaas: Cpaas, backend: Backend) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice_desk(&receiver, false)).await;
    let id = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let voicemail = dial_ends(&app, cpaas, only_dial(&first), "busy", None).await;
    let record = crate::cpaas::assert_voicemail(cpaas, &voicemail).clone();

    let (once, recording) = crate::cpaas::recording_ended(&app, cpaas, &record).await;
    let (twice, _) = crate::cpaas::recording_ended(&app, cpaas, &record).await;
    assert_hangup(&once);
    assert_eq!(once, twice);
    let event = next_event(&receiver, "call.voicemail").await;
    assert_eq!(event.body["data"]["recording_url"], recording.as_str());
    assert_eq!(session(&app, &id).await["state"], "voicemail");
    assert_no_more(
        &[&app],
        &receiver,
        "call.voicemail",
        "call.voicemail is sent once",
    )
    .await;
}

async fn a_leg_picking_up_after_the_call_is_over_is_hung_up(cpaas: Cpaas, backend: Backend) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice_simultaneous(&receiver)).await;
    let id = ring(&app, &alice_reg, Some(CALLER)).await;
    let call_id = cpaas.new_call_id();
    let first = forwarded_as(&app, cpaas, &call_id, CALLER, SHARED, None).await;
    let group = only_dial(&first);

    // The caller hangs up while both ring; then the mobile picks up late.
    let response = cpaas
        .status_request()
        .with_call_id(&call_id)
        .with_parties(CALLER, SHARED)
        .post(&app)
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(session(&app, &id).await["state"], "missed");
    let cell = cpaas.number(CELL);
    match cpaas.screening() {
        // The TwiML family runs the noun's whisper on the late leg.
        Screening::GatherOnLeg => {
            assert_hangup(&leg_picks_up(&app, cpaas, group, &cell).await);
            let whisper_url = group
                .children
                .iter()
                .find(|n| n.text == cell)
                .and_then(|n| n.attr("url"))
                .unwrap();
            // Its key press, had it come, bridges nothing either.
            let gather_query = local_path(whisper_url).replace("/screen?", "/screen-result?");
            let pressed = cpaas
                .request("screen_result")
                .at(&gather_query)
                .with("Digits", "1")
                .markup(&app)
                .await;
            assert_hangup(&pressed);
        }
        // Plivo asks for the confirm key itself: the whisper only speaks.
        Screening::ConfirmKey => {}
    }
    assert_eq!(session(&app, &id).await["state"], "missed");
}

async fn whispers_key_presses_and_voicemails_naming_another_subscriber_change_nothing(
    cpaas: Cpaas,
    backend: Backend,
) {
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let app = spawn_app(backend).await;
    let alice_reg = app.register(ALICE, &alice_desk(&receiver, true)).await;
    app.register(crate::cpaas::BOB, &crate::cpaas::bob(SHARED))
        .await;
    let id = ring(&app, &alice_reg, Some(CALLER)).await;
    let first = forwarded(&app, cpaas, CALLER, SHARED).await;
    let dial = only_dial(&first);
    let before = session(&app, &id).await;
    // Alice's session, Bob's number in the query.
    let as_bob = |url: &str| {
        let path = local_path(url).replace("%2B12025550199", "%2B12025550188");
        assert_ne!(path, local_path(url));
        path
    };
    let whisper_url = match cpaas.screening() {
        Screening::GatherOnLeg => dial.children[0].attr("url"),
        Screening::ConfirmKey => dial.attr("confirmSound"),
    }
    .expect("a screened leg has a whisper");
    let whisper = cpaas
        .request("screen")
        .at(&as_bob(whisper_url))
        .markup(&app)
        .await;
    if cpaas.screening() == Screening::GatherOnLeg {
        assert_hangup(&whisper);
        let pressed = cpaas
            .request("screen_result")
            .at(&as_bob(whisper_url).replace("/screen?", "/screen-result?"))
            .with("Digits", "1")
            .markup(&app)
            .await;
        assert_hangup(&pressed);
    }
    let voicemail = dial_ends(&app, cpaas, dial, "busy", None).await;
    let record = crate::cpaas::assert_voicemail(cpaas, &voicemail).clone();
    let recorded = cpaas
        .request("record")
        .at(&as_bob(record.attr("action").unwrap()))
        .with_parties(CALLER, SHARED)
        .markup(&app)
        .await;
    assert_hangup(&recorded);
    let s = session(&app, &id).await;
    assert_eq!(s["state"], "forwarded", "{s}");
    assert_eq!(s["selected_destination"], before["selected_destination"]);
    assert_no_more(
        &[&app],
        &receiver,
        "call.voicemail",
        "a voicemail posted for another subscriber announces nothing",
    )
    .await;
}

async fn a_forward_deadline_outlives_the_instance_that_wrote_it(cpaas: Cpaas, backend: Backend) {
    // The deadline lives in the store: an instance started after the ring
    // report (with a shorter timeout than the one that took the report)
    // ends the session. On memory there is one process: skip.
    let Backend::Redis(_) = &backend else { return };
    let receiver = WebhookReceiver::start(Behaviour::Answer).await;
    let reporting = spawn_app_with(backend, &[("FORWARD_TIMEOUT_SECS", "600")]).await;
    let alice_reg = reporting
        .register(
            ALICE,
            &crate::cpaas::alice_desk_only(Some(receiver.url("/desk"))),
        )
        .await;
    let id = ring(&reporting, &alice_reg, Some(CALLER)).await;
    let later = spawn_app_with(
        reporting.backend.clone(),
        &[("REDIS_KEY_PREFIX", &reporting.config.redis_key_prefix)],
    )
    .await;
    // Past the later instance's FORWARD_TIMEOUT_SECS (30 s), not the first's.
    later.clock.advance(Duration::from_secs(31));
    let missed = next_event(&receiver, "call.missed").await;
    assert_eq!(missed.body["data"]["reason"], "not_forwarded");
    assert_eq!(session(&later, &id).await["state"], "expired");
    // The late forwarded call is not matched to it.
    let late = forwarded(&later, cpaas, CALLER, SHARED).await;
    assert_ne!(
        crate::cpaas::session_in(only_dial(&late)).as_deref(),
        Some(id.as_str())
    );
}
