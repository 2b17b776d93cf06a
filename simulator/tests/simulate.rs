//! The simulator (`ringrelay simulate`, docs/simulator.md) as its users see it:
//! every fixture scenario on every provider through the library API, and
//! bad scenarios. (A stand-in service that breaks the rules is
//! tests/stand_in.rs; the binary driving a separately started deployment
//! on Redis with `--target` is tested at the repository's root,
//! tests/simulate_command.rs.)

use ringrelay_simulator::cpaas::kit::Cpaas;
mod common;

use common::fixture;
use ringrelay_simulator::{self as simulate, Error, Options, Outcome, Report, Scenario};
use serde_json::json;

/// Runs fixture `name` on `provider` against an in-process service.
async fn simulate_fixture(name: &str, provider: Cpaas) -> Report {
    let mut scenario: Scenario = fixture(name).parse().unwrap();
    scenario.provider = provider;
    simulate::run(scenario, Options::default())
        .await
        .unwrap_or_else(|e| panic!("{name} on {provider:?}: {e}"))
}

/// The call ended as expected, and the service agrees: the session's state
/// and selected destination, and the webhook every destination got last.
fn assert_call(report: &Report, outcome: Outcome, connected_to: Option<&str>) {
    let timeline: String = report
        .timeline
        .iter()
        .map(|e| format!("\n{:>7} {:8} {}", e.at_ms, e.party, e.event))
        .collect();
    assert_eq!(report.outcome, outcome, "{timeline}");
    assert_eq!(report.connected_to.as_deref(), connected_to, "{timeline}");
    assert!(report.webhooks.iter().all(|w| w.verified));
    assert!(!report.markup.is_empty() || outcome == Outcome::Cancelled);
    let session = &report.session;
    assert_eq!(session["state"], outcome.as_str(), "{session}{timeline}");
    if outcome == Outcome::Connected {
        assert_eq!(
            session["selected_destination"].as_str(),
            connected_to,
            "{session}{timeline}"
        );
    }
    let last = match outcome {
        Outcome::Connected => "call.connected",
        Outcome::Voicemail => "call.voicemail",
        Outcome::Missed => "call.missed",
        Outcome::Cancelled => "call.cancelled",
        Outcome::Ignored => return,
    };
    let mut destinations: Vec<&str> = report
        .webhooks
        .iter()
        .map(|w| w.destination_id.as_str())
        .collect();
    destinations.dedup();
    assert!(!destinations.is_empty(), "{timeline}");
    for id in destinations {
        assert!(
            report
                .webhooks
                .iter()
                .any(|w| w.destination_id == id && w.kind == last),
            "{id} got no {last}: {:?}{timeline}",
            report.webhooks
        );
    }
}

/// One test per fixture on each of the four providers, in a module per
/// provider: `name: "fixture" => Outcome, connected_to;`.
macro_rules! fixtures_on_every_provider {
    ($($name:ident: $file:literal => $outcome:ident, $to:expr;)+) => {
        fixtures_on_every_provider!(@on twilio Twilio; $($name $file $outcome $to;)+);
        fixtures_on_every_provider!(@on plivo Plivo; $($name $file $outcome $to;)+);
        fixtures_on_every_provider!(@on telnyx Telnyx; $($name $file $outcome $to;)+);
        fixtures_on_every_provider!(@on signalwire SignalWire; $($name $file $outcome $to;)+);
    };
    (@on $module:ident $provider:ident; $($name:ident $file:literal $outcome:ident $to:expr;)+) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let report = simulate_fixture($file, Cpaas::$provider).await;
                    assert_call(&report, Outcome::$outcome, $to);
                }
            )+
        }
    };
}

fixtures_on_every_provider! {
    sequential_hunt_connects_the_laptop_after_the_busy_desk:
        "sequential-hunt" => Connected, Some("laptop");
    simultaneous_ring_connects_the_first_to_pick_up:
        "simultaneous-ring" => Connected, Some("pbx");
    screened_voicemail_that_picks_up_first_does_not_swallow_the_call:
        "screened-voicemail-picks-up" => Connected, Some("laptop");
    plivo_screening_scenario_connects_the_one_who_pressed_1:
        "plivo-screened" => Connected, Some("mobile");
    pick_mode_connects_the_destination_that_accepted:
        "pick-mode" => Connected, Some("laptop");
    a_call_taken_on_the_phone_is_cancelled:
        "taken-on-the-phone" => Cancelled, None;
    a_caller_who_gives_up_while_it_rings_is_missed:
        "caller-gives-up" => Missed, None;
    all_busy_ends_in_a_voicemail:
        "all-busy-voicemail" => Voicemail, None;
    plivo_scenario_connects_the_laptop:
        "plivo" => Connected, Some("laptop");
    after_hours_goes_straight_to_voicemail:
        "after-hours" => Voicemail, None;
    do_not_disturb_goes_straight_to_voicemail:
        "do-not-disturb" => Voicemail, None;
    a_blocked_caller_hears_busy_and_is_missed:
        "blocked-caller" => Missed, None;
    a_vip_rings_through_do_not_disturb:
        "vip-through-dnd" => Connected, Some("desk");
    a_recorded_call_connects_the_desk:
        "recorded-call" => Connected, Some("desk");
    a_transcribed_voicemail_ends_in_a_voicemail:
        "transcribed-voicemail" => Voicemail, None;
    a_missed_caller_is_texted_and_the_call_is_missed:
        "missed-call-text" => Missed, None;
    telnyx_scenario_connects_the_first_to_pick_up:
        "telnyx" => Connected, Some("desk");
    signalwire_scenario_connects_the_screened_desk_after_the_busy_softphone:
        "signalwire" => Connected, Some("desk");
    a_softphone_that_is_not_there_is_skipped_at_once:
        "softphone-not-there" => Connected, Some("desk");
}

/// A softphone that is not there (docs/api.md): in a hunt its leg ends at
/// once, `unreachable`, and the next destination rings right away; in a
/// simultaneous ring it drops out and the others ring on. On every
/// provider.
#[tokio::test]
async fn a_softphone_that_fails_at_once_is_unreachable_and_costs_no_ring_timeout() {
    for provider in [
        Cpaas::Twilio,
        Cpaas::Plivo,
        Cpaas::Telnyx,
        Cpaas::SignalWire,
    ] {
        let report = simulate_fixture("softphone-not-there", provider).await;
        assert_call(&report, Outcome::Connected, Some("desk"));
        let legs: Vec<(&str, &str)> = report.session["legs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["destination_id"].as_str().unwrap(),
                    l["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            legs,
            [("laptop", "unreachable"), ("desk", "connected")],
            "{provider:?}"
        );
        let dialed_at = |who: &str| {
            report
                .timeline
                .iter()
                .find(|e| e.party == "service" && e.event.starts_with(&format!("Dial {who}")))
                .unwrap_or_else(|| panic!("{provider:?}: {who} is dialed: {:?}", report.timeline))
                .at_ms
        };
        let waited = dialed_at("desk") - dialed_at("laptop");
        assert!(
            waited < 2_000,
            "{provider:?}: the desk rang {waited} ms after the laptop, not a ring timeout later"
        );

        // Rung together, it drops out; the desk takes the call.
        let together = fixture("softphone-not-there")
            .replace("strategy = \"sequential\"", "strategy = \"simultaneous\"");
        let mut scenario: Scenario = together.parse().unwrap();
        scenario.provider = provider;
        let report = simulate::run(scenario, Options::default()).await.unwrap();
        assert_call(&report, Outcome::Connected, Some("desk"));
    }
}

/// The recording the CPaaS made of the bridged leg reaches the destination
/// once, on every provider that records.
#[tokio::test]
async fn a_recorded_call_sends_its_recording_once_on_every_provider() {
    for provider in [
        Cpaas::Twilio,
        Cpaas::Plivo,
        Cpaas::Telnyx,
        Cpaas::SignalWire,
    ] {
        let report = simulate_fixture("recorded-call", provider).await;
        let recordings: Vec<_> = report
            .webhooks
            .iter()
            .filter(|w| w.kind == "call.recording")
            .collect();
        assert_eq!(recordings.len(), 1, "{provider:?}: {:?}", report.webhooks);
        assert_eq!(recordings[0].destination_id, "desk");
        let dial = report
            .markup
            .iter()
            .find(|m| m.contains("<Dial"))
            .expect("a Dial");
        let ring_tone = dial.contains(r#"ringTone="uk""#);
        assert_eq!(ring_tone, provider != Cpaas::Plivo, "{provider:?}: {dial}");
    }
}

/// A missed caller gets one text, from the forwarding number, through the
/// API of every provider, and the session and `call.missed` say it was sent.
#[tokio::test]
async fn a_missed_caller_is_texted_once_on_every_provider() {
    for provider in Cpaas::ALL {
        let report = simulate_fixture("missed-call-text", provider).await;
        assert_eq!(report.texts.len(), 1, "{provider:?}: {:?}", report.texts);
        let text = &report.texts[0];
        assert_eq!(
            (text.from.as_str(), text.to.as_str()),
            ("+12025550100", "+12025550302"),
            "{provider:?}"
        );
        assert_eq!(
            text.body,
            "Sorry I missed your call, I'll ring you back. +12025550199"
        );
        assert_eq!(report.session["missed_call_text"], "sent", "{provider:?}");
        let missed = report
            .webhooks
            .iter()
            .find(|w| w.kind == "call.missed")
            .expect("call.missed");
        assert_eq!(missed.data["missed_call_text"], "sent", "{provider:?}");
    }
}

/// No text where the subscriber asks for none.
#[tokio::test]
async fn a_subscriber_without_missed_call_text_texts_nobody() {
    let report = simulate_fixture("caller-gives-up", Cpaas::Plivo).await;
    assert!(report.texts.is_empty(), "{:?}", report.texts);
    assert_eq!(report.session["missed_call_text"], serde_json::Value::Null);
}

/// The provider's transcription of the voicemail reaches the destination
/// once, on every provider, and the session keeps its text.
#[tokio::test]
async fn a_transcribed_voicemail_sends_its_text_once_on_every_provider() {
    for provider in [
        Cpaas::Twilio,
        Cpaas::Plivo,
        Cpaas::Telnyx,
        Cpaas::SignalWire,
    ] {
        let report = simulate_fixture("transcribed-voicemail", provider).await;
        let transcribed: Vec<_> = report
            .webhooks
            .iter()
            .filter(|w| w.kind == "call.voicemail_transcribed")
            .collect();
        assert_eq!(transcribed.len(), 1, "{provider:?}: {:?}", report.webhooks);
        let data = &transcribed[0].data;
        assert_eq!(data["status"], "completed", "{provider:?}: {data}");
        let text = data["text"].as_str().expect("a text");
        assert!(text.contains("call me back"), "{provider:?}: {data}");
        assert!(data["recording_url"].as_str().is_some(), "{data}");
        assert_eq!(
            report.session["voicemail_transcription"],
            json!({"status": "completed", "text": text}),
            "{provider:?}"
        );
        assert!(
            report
                .timeline
                .iter()
                .any(|e| e.event.starts_with("transcription of the voicemail ready")),
            "{provider:?}"
        );
    }
}

#[tokio::test]
async fn the_markup_gist_and_every_party_appear_in_the_timeline() {
    let report = simulate_fixture("simultaneous-ring", Cpaas::Twilio).await;
    let events: Vec<(&str, &str)> = report
        .timeline
        .iter()
        .map(|e| (e.party.as_str(), e.event.as_str()))
        .collect();
    for expected in [
        ("phone", "told reject"),
        ("service", "Dial desk, laptop, pbx together, timeout 20 s"),
        ("pbx", "picks up"),
        ("cpaas", "hangs up desk, laptop"),
        ("cpaas", "bridges the caller to pbx"),
    ] {
        assert!(events.contains(&expected), "{expected:?} in {events:?}");
    }
    assert!(
        report.timeline.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "the clock never goes back"
    );
    assert!(report.markup[0].contains("<Dial"), "{:?}", report.markup);
}

#[tokio::test]
async fn a_phone_that_is_off_sends_no_ring_report_and_the_call_is_forwarded_anyway() {
    let text = fixture("sequential-hunt").replace("phone = \"rejects\"", "phone = \"off\"");
    let report = simulate::run(text.parse().unwrap(), Options::default())
        .await
        .unwrap();
    assert_call(&report, Outcome::Connected, Some("laptop"));
    assert!(
        !report.webhooks.iter().any(|w| w.kind == "call.ringing"),
        "nobody is notified of a call that never rang the phone: {:?}",
        report.webhooks
    );
}

#[tokio::test]
async fn a_caller_who_hangs_up_at_the_greeting_leaves_no_voicemail() {
    let text = fixture("all-busy-voicemail").replace(
        "forwarded_from = true",
        "forwarded_from = true\ncaller_leaves_voicemail = false",
    );
    let report = simulate::run(text.parse().unwrap(), Options::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Missed);
    assert!(
        !report.webhooks.iter().any(|w| w.kind == "call.voicemail"),
        "{:?}",
        report.webhooks
    );
}

#[tokio::test]
async fn the_rules_decision_is_in_the_timeline_and_nobody_is_offered_the_call() {
    for (name, rules) in [
        (
            "after-hours",
            "rules: outside the schedule → straight to voicemail, nobody is notified",
        ),
        (
            "do-not-disturb",
            "rules: do-not-disturb is on → straight to voicemail, nobody is notified",
        ),
        (
            "blocked-caller",
            "rules: caller_rules[0] (block) matches the caller → the caller hears busy, nobody is notified",
        ),
    ] {
        let report = simulate_fixture(name, Cpaas::Twilio).await;
        assert!(
            report
                .timeline
                .iter()
                .any(|e| e.party == "service" && e.event == rules),
            "{name}: {:?}",
            report.timeline
        );
        assert!(
            !report.webhooks.iter().any(|w| w.kind == "call.ringing"),
            "{name}: {:?}",
            report.webhooks
        );
    }
    let blocked = simulate_fixture("blocked-caller", Cpaas::Plivo).await;
    assert!(
        blocked
            .timeline
            .iter()
            .any(|e| e.event == "call ends busy: POST /plivo/hangup"),
        "{:?}",
        blocked.timeline
    );
}

#[tokio::test]
async fn a_destination_outside_its_hours_is_neither_offered_nor_dialed() {
    let scenario = r#"
        clock = "2026-11-28T11:00:00Z"   # a Saturday
        [subscriber]
        forwarding_number = "+12025550100"
        strategy = "simultaneous"
        destinations = [
          {id = "desk", kind = "phone", address = "+12025550201",
           hours = [{days = ["mon", "tue", "wed", "thu", "fri"], from = "09:00", to = "17:00"}]},
          {id = "laptop", kind = "client", address = "alice", ring_timeout_secs = 10},
        ]
        # Destination hours are read in the schedule's time zone.
        [subscriber.schedule]
        timezone = "America/New_York"
        outside = "phone"
        hours = [{days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], from = "00:00", to = "24:00"}]
        [destinations.desk]
        answer = "after 1s"
        [destinations.laptop]
        answer = "after 4s"
    "#;
    let report = simulate::run(scenario.parse().unwrap(), Options::default())
        .await
        .unwrap();
    assert_call(&report, Outcome::Connected, Some("laptop"));
    let events: Vec<&str> = report.timeline.iter().map(|e| e.event.as_str()).collect();
    assert!(
        events.contains(
            &"rules: no rule applies → the destinations ring but desk (outside its hours)"
        ),
        "{events:?}"
    );
    assert!(
        !report
            .webhooks
            .iter()
            .any(|w| w.destination_id == "desk" && w.kind == "call.ringing"),
        "{:?}",
        report.webhooks
    );
    assert!(events.contains(&"Dial laptop, timeout 10 s"), "{events:?}");
}

// ---------------------------------------------------------------------------
// Bad scenarios

const MINIMAL: &str = r#"
[subscriber]
forwarding_number = "+12025550100"
destinations = [{id = "desk", kind = "phone", address = "+12025550201"}]
"#;

#[test]
fn bad_scenarios_are_refused_with_one_line_naming_the_key() {
    // (top-level keys, tables after [subscriber], the error line)
    let cases: &[(&str, &str, &str)] = &[
        (
            "",
            "[destinations.desk]\nanswer = \"sometimes\"",
            r#"destinations.desk.answer: expected "after Ns", "busy", "no-answer", "fails", "voicemail" or "unreachable""#,
        ),
        (
            "",
            "[destinations.desk]\nanswer = \"after 4\"",
            r#"destinations.desk.answer: expected "after Ns""#,
        ),
        (
            "",
            "[destinations.desk]\noffer = \"maybe\"",
            r#"destinations.desk.offer: expected "accept after Ns", "decline" or "ignore""#,
        ),
        (
            "",
            "[destinations.desk]\npress = \"12\"",
            "destinations.desk.press: expected one key",
        ),
        (
            "",
            "[destinations.desk]\nvolume = 11",
            "destinations.desk.volume: unknown field `volume`",
        ),
        (
            "",
            "[destinations.kitchen]\nanswer = \"busy\"",
            "destinations.kitchen: no destination \"kitchen\"",
        ),
        (
            "provider = \"vonage\"",
            "",
            "provider: unknown variant `vonage`",
        ),
        ("phone = \"broken\"", "", "phone: unknown variant `broken`"),
        (
            "caller_hangs_up_after_secs = \"ten\"",
            "",
            "caller_hangs_up_after_secs: invalid type",
        ),
        (
            "forward_delay_ms = -5",
            "",
            "forward_delay_ms: invalid value",
        ),
        ("colour = \"blue\"", "", "colour: unknown field `colour`"),
        ("provider = ", "", "line 1: "),
    ];
    for (top, tables, expected) in cases {
        let text = format!("{top}\n{MINIMAL}\n{tables}\n");
        let err = text
            .parse::<Scenario>()
            .expect_err(&format!("{top} {tables} is refused"));
        let line = err.to_string();
        assert!(line.starts_with(expected), "{top} {tables}: {line}");
        assert_eq!(line.lines().count(), 1, "{line}");
    }
    let err = "provider = \"twilio\"".parse::<Scenario>().unwrap_err();
    assert!(
        err.to_string().contains("missing field `subscriber`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_subscriber_the_service_refuses_is_a_bad_scenario_naming_the_field() {
    let text = MINIMAL.replace("id = \"desk\"", "id = \"Desk Phone\"");
    let err = simulate::run(text.parse().unwrap(), Options::default())
        .await
        .expect_err("422 from the service");
    assert!(matches!(err, Error::Scenario(_)), "{err}");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("destinations[0].id"), "{err}");
}

/// Lost forwards, as a whole call: the phone rejects, nothing is
/// forwarded, the session expires and every destination hears why.
async fn a_call_the_carrier_never_forwards(provider: Cpaas) {
    let report = simulate_fixture("not-forwarded", provider).await;

    assert_eq!(report.outcome, Outcome::Missed);
    assert_eq!(report.connected_to, None);
    assert!(report.markup.is_empty(), "no CPaaS request was made");
    assert_eq!(report.session["state"], "expired", "{}", report.session);
    for destination in ["desk", "laptop"] {
        let kinds: Vec<&str> = report
            .webhooks
            .iter()
            .filter(|w| w.destination_id == destination)
            .map(|w| w.kind.as_str())
            .collect();
        assert_eq!(kinds, ["call.ringing", "call.missed"], "{destination}");
    }
    assert!(
        report
            .webhooks
            .iter()
            .filter(|w| w.kind == "call.missed")
            .all(|w| w.data["reason"] == "not_forwarded"),
        "{:?}",
        report.webhooks
    );
    assert!(
        report
            .timeline
            .iter()
            .any(|e| e.party == "carrier" && e.event.contains("does not forward")),
        "{:?}",
        report.timeline
    );
}

#[tokio::test]
async fn a_call_the_carrier_never_forwards_expires_with_call_missed_on_twilio() {
    a_call_the_carrier_never_forwards(Cpaas::Twilio).await;
}

#[tokio::test]
async fn a_call_the_carrier_never_forwards_expires_with_call_missed_on_plivo() {
    a_call_the_carrier_never_forwards(Cpaas::Plivo).await;
}

#[tokio::test]
async fn a_call_the_carrier_never_forwards_expires_with_call_missed_on_telnyx() {
    a_call_the_carrier_never_forwards(Cpaas::Telnyx).await;
}

#[tokio::test]
async fn a_call_the_carrier_never_forwards_expires_with_call_missed_on_signalwire() {
    a_call_the_carrier_never_forwards(Cpaas::SignalWire).await;
}

/// The caller rules that fixtures do not show, and a destination's own ring
/// timeout, as whole calls on every provider.
#[tokio::test]
async fn caller_rules_and_a_destinations_ring_timeout_as_whole_calls() {
    let verified_scenario = |rule: &str, verdict: &str| {
        format!(
            r#"
caller = "+12025550302"
caller_verification = "{verdict}"

[subscriber]
forwarding_number = "+12025550100"
destinations = [
  {{id = "desk", kind = "phone", address = "+12025550201", ring_timeout_secs = 40}},
]
caller_rules = [{rule}]

[destinations.desk]
answer = "after 2s"
"#
        )
    };
    let scenario = |rule: &str| verified_scenario(rule, "verified");
    for provider in [
        Cpaas::Twilio,
        Cpaas::Plivo,
        Cpaas::Telnyx,
        Cpaas::SignalWire,
    ] {
        let run = |toml: String| async move {
            let mut scenario: Scenario = toml.parse().unwrap();
            scenario.provider = provider;
            simulate::run(scenario, Options::default())
                .await
                .unwrap_or_else(|e| panic!("{provider:?}: {e}"))
        };
        let voicemail = run(scenario(r#"{match = "+1202555*", action = "voicemail"}"#)).await;
        assert_call(&voicemail, Outcome::Voicemail, None);
        let phone = run(scenario(r#"{match = "+12025550302", action = "phone"}"#)).await;
        assert_eq!(phone.outcome, Outcome::Ignored, "{provider:?}");
        assert!(phone.webhooks.iter().all(|w| w.kind != "call.ringing"));
        // A failed STIR/SHAKEN check, known when the forwarded call
        // arrives: to voicemail then; a verified caller rings through.
        let failed_verification = r#"{match = "failed_verification", action = "voicemail"}"#;
        let spoofed = run(verified_scenario(failed_verification, "failed")).await;
        assert_call(&spoofed, Outcome::Voicemail, None);
        assert!(
            spoofed.markup.iter().all(|m| !m.contains("<Dial")),
            "{provider:?}: nobody is dialed: {:?}",
            spoofed.markup
        );
        let verified = run(verified_scenario(failed_verification, "verified")).await;
        assert_call(&verified, Outcome::Connected, Some("desk"));
        // A rule for another caller: the desk rings, for its own 40 s.
        let rings = run(scenario(r#"{match = "+1415*", action = "block"}"#)).await;
        assert_call(&rings, Outcome::Connected, Some("desk"));
        assert!(
            rings
                .timeline
                .iter()
                .any(|e| e.party == "service" && e.event.contains("timeout 40 s")),
            "{provider:?}: {:?}",
            rings.timeline
        );
    }
}
