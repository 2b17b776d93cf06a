//! The order a forwarded call tries destinations in, and the markup for each
//! step. A step is an index into the plan, carried in the `action` URL of the
//! Dial, so that hunting needs no state beyond the subscriber and the route
//! its rules chose.

use crate::domain::ids::DestinationId;
use crate::domain::rules::Route;
use crate::domain::session::Session;
use crate::domain::subscriber::{Destination, Fallback, Mode, Strategy, Subscriber};

/// What one step of the plan does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PlanStep<'a> {
    /// Ring these destinations together.
    Ring(Vec<&'a Destination>),
    /// Nobody took it: the subscriber's fallback.
    Fallback(&'a Fallback),
    /// Nothing left to try.
    Done,
}

#[derive(Debug)]
pub(crate) struct DialPlan<'a> {
    rings: Vec<Vec<&'a Destination>>,
    fallback: &'a Fallback,
}

impl<'a> DialPlan<'a> {
    /// The plan for `subscriber` on `route`, given the destination that
    /// accepted, if any: in pick mode only that one, then the fallback; in
    /// auto mode that one first, then the others by the strategy. A route
    /// that rings no destination goes straight to the fallback.
    pub fn new(
        subscriber: &'a Subscriber,
        route: &Route,
        selected: Option<&DestinationId>,
    ) -> Self {
        let chosen = selected
            .and_then(|id| subscriber.destination(id))
            .filter(|d| route.rings(&d.id));
        let others = subscriber
            .destinations
            .iter()
            .filter(|d| route.rings(&d.id) && Some(&d.id) != chosen.map(|c| &c.id));
        let mut rings: Vec<Vec<&Destination>> = chosen.map(|c| vec![c]).into_iter().collect();
        if subscriber.mode == Mode::Auto || chosen.is_none() {
            match subscriber.strategy {
                Strategy::Sequential => rings.extend(others.map(|d| vec![d])),
                Strategy::Simultaneous => {
                    let all: Vec<_> = others.collect();
                    if !all.is_empty() {
                        rings.push(all);
                    }
                }
            }
        }
        Self {
            rings,
            fallback: &subscriber.fallback,
        }
    }

    /// The plan for a forwarded call with its session.
    pub(crate) fn for_session(subscriber: &'a Subscriber, session: &Session) -> Self {
        Self::new(subscriber, session.route(), session.selected_destination())
    }

    pub(crate) fn step(&self, index: usize) -> PlanStep<'a> {
        match index.cmp(&self.rings.len()) {
            std::cmp::Ordering::Less => PlanStep::Ring(self.rings[index].clone()),
            std::cmp::Ordering::Equal => PlanStep::Fallback(self.fallback),
            std::cmp::Ordering::Greater => PlanStep::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::{PhoneNumber, Region};
    use crate::domain::subscriber::{SpecRules, SubscriberSpec};

    fn subscriber(mode: &str, strategy: &str) -> Subscriber {
        let spec: SubscriberSpec = serde_json::from_value(serde_json::json!({
            "forwarding_number": "+12025550100", "mode": mode, "strategy": strategy,
            "destinations": [
                {"id": "a", "kind": "client", "address": "a"},
                {"id": "b", "kind": "client", "address": "b"},
                {"id": "c", "kind": "client", "address": "c"}
            ]
        }))
        .unwrap();
        spec.parse(
            PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
            SpecRules {
                region: Region::default(),
                webhooks_can_be_signed: true,
                webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
            },
        )
        .unwrap()
    }

    fn ids(step: PlanStep<'_>) -> Vec<&str> {
        match step {
            PlanStep::Ring(ds) => ds.iter().map(|d| d.id.as_str()).collect(),
            other => panic!("expected a ring, got {other:?}"),
        }
    }

    fn id(s: &str) -> DestinationId {
        DestinationId::parse(s).unwrap()
    }

    #[test]
    fn sequential_hunts_one_at_a_time_then_falls_back() {
        let s = subscriber("auto", "sequential");
        let plan = DialPlan::new(&s, &Route::default(), None);
        assert_eq!(ids(plan.step(0)), ["a"]);
        assert_eq!(ids(plan.step(1)), ["b"]);
        assert_eq!(ids(plan.step(2)), ["c"]);
        assert_eq!(plan.step(3), PlanStep::Fallback(&Fallback::Voicemail));
        assert_eq!(plan.step(4), PlanStep::Done);
    }

    #[test]
    fn simultaneous_rings_all_at_once_then_falls_back() {
        let s = subscriber("auto", "simultaneous");
        let plan = DialPlan::new(&s, &Route::default(), None);
        assert_eq!(ids(plan.step(0)), ["a", "b", "c"]);
        assert_eq!(plan.step(1), PlanStep::Fallback(&Fallback::Voicemail));
    }

    #[test]
    fn an_accepting_destination_is_dialed_first() {
        let s = subscriber("auto", "sequential");
        let plan = DialPlan::new(&s, &Route::default(), Some(&id("b")));
        assert_eq!(ids(plan.step(0)), ["b"]);
        assert_eq!(ids(plan.step(1)), ["a"]);
        assert_eq!(ids(plan.step(2)), ["c"]);
    }

    #[test]
    fn a_route_rings_only_its_destinations_and_without_any_falls_back() {
        let s = subscriber("auto", "simultaneous");
        let skipping_b = Route::Destinations {
            skipped: vec![id("b")],
        };
        let plan = DialPlan::new(&s, &skipping_b, None);
        assert_eq!(ids(plan.step(0)), ["a", "c"]);
        // An accept by a skipped destination cannot put it back.
        let plan = DialPlan::new(&s, &skipping_b, Some(&id("b")));
        assert_eq!(ids(plan.step(0)), ["a", "c"]);
        for route in [Route::Voicemail, Route::Phone, Route::Block] {
            let plan = DialPlan::new(&s, &route, None);
            assert_eq!(plan.step(0), PlanStep::Fallback(&Fallback::Voicemail));
        }
    }

    #[test]
    fn in_pick_mode_only_the_accepting_destination_rings_before_the_fallback() {
        let s = subscriber("pick", "sequential");
        let plan = DialPlan::new(&s, &Route::default(), Some(&id("c")));
        assert_eq!(ids(plan.step(0)), ["c"]);
        assert_eq!(plan.step(1), PlanStep::Fallback(&Fallback::Voicemail));
    }
}
