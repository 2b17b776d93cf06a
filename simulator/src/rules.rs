//! The subscriber's rules (docs/api.md) as the simulator checks them: the
//! stored subscriber, read back from the service, goes through the domain's
//! one rules function ([`Subscriber::route`]) at the service's own clock, and
//! what the service then does must follow that route: the ring report's
//! instruction, who is notified, who is dialed.

use serde_json::Value;

use super::Error;
use super::phone::Instruction;
use super::receiver::Delivery;
use ringrelay_server::domain::ids::DestinationId;
use ringrelay_server::domain::rules::{Decision, Reason, Route};
use ringrelay_server::domain::subscriber::{Fallback, Subscriber};

/// The subscriber as the service stored it (the PUT answer's `subscriber`),
/// every field with its default filled in.
pub fn stored_subscriber(stored: &Value) -> Result<Subscriber, Error> {
    serde_json::from_value(stored.clone()).map_err(|e| {
        Error::broken(format!(
            "the PUT answer's subscriber is not the stored subscriber: {e}"
        ))
    })
}

/// The timeline's line for a decision: `rules: outside the schedule →
/// straight to voicemail, nobody is notified`.
pub fn describe(decision: &Decision, subscriber: &Subscriber) -> String {
    let reason = match decision.reason {
        Reason::CallerRule(i) => match subscriber.caller_rules.get(i) {
            Some(rule) => format!(
                "caller_rules[{i}] ({}) matches the caller",
                serde_json::to_value(rule.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            None => decision.reason.to_string(),
        },
        other => other.to_string(),
    };
    format!("rules: {reason} → {}", gist(&decision.route, subscriber))
}

/// What a route does, in a few words.
fn gist(route: &Route, subscriber: &Subscriber) -> String {
    match route {
        Route::Destinations { skipped } if skipped.is_empty() => {
            "every destination rings".to_owned()
        }
        Route::Destinations { skipped } => {
            let skipped: Vec<&str> = skipped.iter().map(DestinationId::as_str).collect();
            format!(
                "the destinations ring but {} (outside its hours)",
                skipped.join(", ")
            )
        }
        Route::Phone => "only the phone rings".to_owned(),
        Route::Voicemail => match subscriber.fallback {
            Fallback::Voicemail => "straight to voicemail, nobody is notified".to_owned(),
            _ => "straight to the fallback, nobody is notified".to_owned(),
        },
        Route::Block => "the caller hears busy, nobody is notified".to_owned(),
    }
}

/// The ring report's instruction must follow the route: `ignore` when only
/// the phone rings, `reject` to voicemail or busy; with destinations it is
/// mode's business (checked elsewhere).
pub fn check_instruction(decision: &Decision, instruction: Instruction) -> Result<(), Error> {
    let expected = match decision.route {
        Route::Phone => Instruction::Ignore,
        Route::Voicemail | Route::Block => Instruction::Reject,
        Route::Destinations { .. } => return Ok(()),
    };
    if instruction == expected {
        return Ok(());
    }
    Err(Error::broken(format!(
        "the ring report answered {}, but {} routes the call to {}: it must be {}",
        instruction.word(),
        decision.reason,
        route_name(&decision.route),
        expected.word()
    )))
}

fn route_name(route: &Route) -> &'static str {
    match route {
        Route::Destinations { .. } => "the destinations",
        Route::Phone => "the phone only",
        Route::Voicemail => "the fallback",
        Route::Block => "busy",
    }
}

/// Whether the route lets destination `id` be notified and dialed.
pub fn rings(route: &Route, id: &str) -> bool {
    DestinationId::parse(id).is_ok_and(|id| route.rings(&id))
}

/// No destination the route skips is offered the call (`call.ringing`).
pub fn check_notifications(decision: &Decision, deliveries: &[Delivery]) -> Result<(), Error> {
    match deliveries
        .iter()
        .find(|d| d.kind == "call.ringing" && !rings(&decision.route, &d.destination_id))
    {
        Some(offer) => Err(Error::broken(format!(
            "{} got call.ringing, but {} routes the call to {}",
            offer.destination_id,
            decision.reason,
            skipped_why(&decision.route, &offer.destination_id)
        ))),
        None => Ok(()),
    }
}

/// A destination of the subscriber that the forwarded call dials must be
/// one the route rings.
pub fn check_dialed(decision: &Decision, destination_id: &str) -> Result<(), Error> {
    if rings(&decision.route, destination_id) {
        return Ok(());
    }
    Err(Error::broken(format!(
        "the forwarded call dialed {destination_id}, but {} routes the call to {}",
        decision.reason,
        skipped_why(&decision.route, destination_id)
    )))
}

fn skipped_why(route: &Route, id: &str) -> String {
    match route {
        Route::Destinations { .. } => format!("the destinations but {id} (outside its hours)"),
        other => route_name(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn subscriber(extra: Value) -> Subscriber {
        let mut stored = json!({
            "number": "+12025550199",
            "forwarding_number": "+12025550100",
            "mode": "auto",
            "strategy": "sequential",
            "ring_timeout_secs": 20,
            "pick_timeout_secs": 15,
            "destinations": [
                {"id": "desk", "kind": "phone", "address": "+12025550201",
                 "webhook_url": null, "screening": false, "hours": null,
                 "ring_timeout_secs": null},
                {"id": "laptop", "kind": "client", "address": "alice",
                 "webhook_url": null, "screening": false, "hours": null,
                 "ring_timeout_secs": null},
            ],
            "fallback": {"kind": "voicemail"},
            "schedule": null,
            "caller_rules": [],
            "record": "none",
            "ring_tone": null,
            "dnd_until": null,
        });
        for (key, value) in extra.as_object().unwrap() {
            stored[key] = value.clone();
        }
        stored_subscriber(&stored).unwrap()
    }

    fn decision(route: Route, reason: Reason) -> Decision {
        Decision { route, reason }
    }

    #[test]
    fn a_stored_subscriber_that_is_not_the_contracts_breaks_it() {
        let err = stored_subscriber(&json!({"number": "+12025550199"})).unwrap_err();
        assert!(
            err.to_string().contains("not the stored subscriber"),
            "{err}"
        );
    }

    #[test]
    fn the_decision_is_told_in_a_few_words() {
        let s = subscriber(json!({"caller_rules": [{"match": "withheld", "action": "vip"}]}));
        assert_eq!(
            describe(&decision(Route::Phone, Reason::OutsideSchedule), &s),
            "rules: outside the schedule → only the phone rings"
        );
        assert_eq!(
            describe(&decision(Route::default(), Reason::CallerRule(0)), &s),
            "rules: caller_rules[0] (vip) matches the caller → every destination rings"
        );
        assert_eq!(
            describe(&decision(Route::Voicemail, Reason::DoNotDisturb), &s),
            "rules: do-not-disturb is on → straight to voicemail, nobody is notified"
        );
        let skipped = Route::Destinations {
            skipped: vec![DestinationId::parse("desk").unwrap()],
        };
        assert_eq!(
            describe(&decision(skipped, Reason::Default), &s),
            "rules: no rule applies → the destinations ring but desk (outside its hours)"
        );
    }

    #[test]
    fn an_instruction_against_the_route_breaks_the_contract() {
        use Instruction::{Ignore, Reject, Wait};
        let cases = [
            (Route::Phone, Ignore, true),
            (Route::Phone, Reject, false),
            (Route::Voicemail, Reject, true),
            (Route::Voicemail, Ignore, false),
            (Route::Block, Reject, true),
            (Route::Block, Wait, false),
            (Route::default(), Wait, true),
            (Route::default(), Ignore, true),
        ];
        for (route, instruction, ok) in cases {
            let d = decision(route.clone(), Reason::Default);
            assert_eq!(
                check_instruction(&d, instruction).is_ok(),
                ok,
                "{route:?} {instruction:?}"
            );
        }
        let err = check_instruction(
            &decision(Route::Phone, Reason::OutsideSchedule),
            Instruction::Reject,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "contract broken: the ring report answered reject, but outside the schedule \
             routes the call to the phone only: it must be ignore"
        );
    }

    #[test]
    fn a_skipped_destination_is_neither_offered_nor_dialed() {
        let skipped = decision(
            Route::Destinations {
                skipped: vec![DestinationId::parse("desk").unwrap()],
            },
            Reason::Default,
        );
        assert!(check_dialed(&skipped, "laptop").is_ok());
        let err = check_dialed(&skipped, "desk").unwrap_err();
        assert!(
            err.to_string().contains("desk (outside its hours)"),
            "{err}"
        );
        assert!(check_dialed(&decision(Route::Voicemail, Reason::DoNotDisturb), "laptop").is_err());
        assert!(check_notifications(&skipped, &[]).is_ok());
    }
}
