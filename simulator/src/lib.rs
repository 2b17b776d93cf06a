//! `ringrelay simulate`: a whole call on a laptop (docs/simulator.md). Every
//! party of the flow is played here against the service, through its public
//! contract only (HTTP, real signatures, real markup): the phone app, the
//! carrier, the CPaaS, the destinations and their webhook receiver, and the
//! caller. The service does not know it is being simulated.

mod caller;
mod carrier;
pub mod cli;
pub mod cpaas;
mod destination;
mod messaging;
mod phone;
mod receiver;
mod report;
mod rules;
pub mod scenario;
mod service;
mod timeline;

use std::time::Duration;

use serde_json::Value;

use self::caller::Caller;
use self::carrier::Carrier;
use self::cpaas::kit::SentText;
use self::cpaas::{CallEnd, CallSetup};
use self::destination::Directory;
use self::phone::{Instruction, Phone};
use self::receiver::Receiver;
use self::service::{Registration, Service};
use self::timeline::Timeline;
use ringrelay_server::clock::WallClock;
use ringrelay_server::domain::phone::{Caller as CallingNumber, Region};
use ringrelay_server::domain::rules::{Decision, Route};

pub use self::receiver::Delivery;
pub use self::report::{Outcome, Report};
pub use self::scenario::{Scenario, ScenarioError};
pub use self::service::Target;
pub use self::timeline::Entry;

/// How long to wait for the webhooks the call's end implies.
const WEBHOOK_WAIT: Duration = Duration::from_secs(5);
/// How long a call that was never forwarded may take to be reported: the
/// default `FORWARD_TIMEOUT_SECS` of a deployment, a sweep, and a margin
/// (in process the timeout is 2 s).
const NOT_FORWARDED_WAIT: Duration = Duration::from_secs(40);

/// How to run a scenario.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A running deployment to drive; `None` starts the service in-process.
    pub target: Option<Target>,
}

/// Why a scenario did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file is wrong (exit status 2).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The service broke the contract (exit status 1).
    #[error("contract broken: {0}")]
    ContractBroken(String),
    /// Anything else: the service cannot be started or reached (exit
    /// status 1).
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Error {
    fn broken(rule: impl Into<String>) -> Self {
        Self::ContractBroken(rule.into())
    }

    /// The process exit status the contract gives this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Scenario(_) => 2,
            Self::ContractBroken(_) | Self::Unexpected(_) => 1,
        }
    }
}

/// Plays `scenario` against the service and reports what happened.
pub async fn run(scenario: Scenario, options: Options) -> Result<Report, Error> {
    let service = match options.target {
        Some(target) => {
            scenario.check_target()?;
            Service::remote(target)?
        }
        None => {
            // A clock the call's skipped time moves on (from the
            // scenario's time, or now).
            let clock = WallClock::starting_at(
                scenario
                    .clock
                    .map_or_else(ringrelay_server::domain::time::Timestamp::now, |at| at.0),
            );
            Service::in_process(scenario.provider, clock).await?
        }
    };
    let receiver = Receiver::start(service.target.webhook_secret.clone()).await?;
    let registration = service.register(&scenario, &receiver).await?;
    let result = play(&scenario, &service, &receiver, &registration).await;
    if service.is_remote() {
        let cleaned = service.delete_subscriber(&registration.number).await;
        if result.is_ok() {
            cleaned?;
        }
    }
    // The service first, so that no delivery is in flight when the
    // receiver goes.
    drop(service);
    receiver.stop().await;
    result
}

/// What the phone's side of the call came to.
enum PhoneSide {
    /// The call goes on to the carrier's forward.
    Forwarded,
    /// Taken on the phone, or abandoned while it rang: nothing is forwarded.
    Cancelled,
    /// Told `ignore`: it rings on, nothing is forwarded on purpose.
    Ignored,
}

async fn play(
    scenario: &Scenario,
    service: &Service,
    receiver: &Receiver,
    registration: &Registration,
) -> Result<Report, Error> {
    let timeline = Timeline::start(service.clock.clone());
    let directory = Directory::new(&registration.stored, scenario);
    let caller = Caller::new(scenario);
    let phone = Phone::new(service, registration.device_token.clone(), timeline.clone());
    let decision = decide(scenario, service, registration, &phone, &caller, &timeline).await?;

    let (session_id, side) = match scenario.phone {
        scenario::Phone::Off => {
            timeline.log("phone", "is off: no ring report");
            (None, PhoneSide::Forwarded)
        }
        scenario::Phone::Answers => {
            let ringing = phone.report_ring(&caller).await?;
            timeline.log("phone", "its owner takes the call on the phone");
            phone.report(&ringing.session_id, "answered").await?;
            (Some(ringing.session_id), PhoneSide::Cancelled)
        }
        scenario::Phone::Rejects => {
            let ringing = phone.report_ring(&caller).await?;
            rules::check_instruction(&decision, ringing.instruction)?;
            let id = ringing.session_id;
            let instruction = match ringing.instruction {
                Instruction::Wait => {
                    destination::answer_offers(&directory, receiver, service, &timeline, &caller)
                        .await?;
                    phone.wait_for_instruction(&id, &caller).await?
                }
                Instruction::Reject => {
                    notified_before_instruction(&directory, receiver, &decision.route)?;
                    Some(Instruction::Reject)
                }
                Instruction::Ignore => Some(Instruction::Ignore),
            };
            let side = match instruction {
                Some(Instruction::Reject) => {
                    phone.report(&id, "rejected").await?;
                    PhoneSide::Forwarded
                }
                Some(Instruction::Ignore) => {
                    timeline.log("phone", "rings on: nothing is forwarded");
                    PhoneSide::Ignored
                }
                Some(Instruction::Wait) | None => {
                    timeline.log("caller", "hangs up while the phone rings");
                    phone.report(&id, "ended").await?;
                    PhoneSide::Cancelled
                }
            };
            (Some(id), side)
        }
    };

    let (call, markup) = match side {
        PhoneSide::Forwarded if !scenario.carrier_forwards => {
            timeline.log(
                "carrier",
                "does not forward: the forwarding codes were never dialled",
            );
            (CallEnd::default(), Vec::new())
        }
        PhoneSide::Forwarded => {
            forward_and_run(
                scenario,
                service,
                registration,
                &directory,
                &caller,
                &timeline,
                &decision,
            )
            .await?
        }
        PhoneSide::Cancelled | PhoneSide::Ignored => (CallEnd::default(), Vec::new()),
    };

    let outcome = match side {
        PhoneSide::Ignored => Outcome::Ignored,
        PhoneSide::Cancelled => Outcome::Cancelled,
        PhoneSide::Forwarded if call.bridged_to.is_some() => Outcome::Connected,
        PhoneSide::Forwarded if call.recorded => Outcome::Voicemail,
        PhoneSide::Forwarded => Outcome::Missed,
    };
    let transcribed = call.transcribed;
    let connected_to = call
        .bridged_to
        .map(|callee| callee.destination_id.unwrap_or(callee.party));

    // A call never forwarded is only known lost once the service's forward
    // timeout has passed: wait for that, in real time.
    let wait = if scenario.carrier_forwards {
        WEBHOOK_WAIT
    } else {
        NOT_FORWARDED_WAIT
    };
    let kinds = outcome
        .webhook()
        .into_iter()
        .chain(transcribed.then_some("call.voicemail_transcribed"));
    for kind in kinds {
        await_webhooks(kind, &directory, receiver, &timeline, wait).await;
    }
    // Without a ring report the service may still open a session for the
    // forwarded call; its webhooks name it.
    let session_id = session_id.or_else(|| {
        receiver
            .deliveries()
            .iter()
            .find_map(|d| d.data["session_id"].as_str().map(str::to_owned))
    });
    let session = match &session_id {
        Some(id) => {
            let session = service.session(id).await?;
            // A call never forwarded ends `expired`, which is missed to
            // the caller.
            let expected = if scenario.carrier_forwards {
                outcome.session_state()
            } else {
                Some("expired")
            };
            cross_check(
                &session,
                expected,
                outcome,
                connected_to.as_deref(),
                &timeline,
            );
            session
        }
        None => Value::Null,
    };
    let texts = texts_sent(service, &timeline)?;
    let webhooks = receiver.deliveries();
    if let Some(forged) = webhooks.iter().find(|w| !w.verified) {
        return Err(Error::broken(format!(
            "the {} webhook to {} failed its Standard Webhooks signature check",
            forged.kind, forged.destination_id
        )));
    }
    rules::check_notifications(&decision, &webhooks)?;
    Ok(Report {
        outcome,
        connected_to,
        session,
        timeline: timeline.entries(),
        webhooks,
        texts,
        markup,
    })
}

/// The texts the in-process service sent the caller through the
/// provider's API (none to see on a deployment): at most one a call, each
/// one the provider's API would take.
fn texts_sent(service: &Service, timeline: &Timeline) -> Result<Vec<SentText>, Error> {
    let Some(messaging) = &service.messaging else {
        return Ok(Vec::new());
    };
    let texts = messaging
        .texts()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| Error::broken(format!("a text the provider's API refuses: {why}")))?;
    for text in &texts {
        timeline.log(
            "cpaas",
            format!("text from {} to {}: {:?}", text.from, text.to, text.body),
        );
    }
    if texts.len() > 1 {
        return Err(Error::broken(format!(
            "the caller was texted {} times; a missed call texts once",
            texts.len()
        )));
    }
    Ok(texts)
}

/// The rules' decision for this call, as the service must have made it: the
/// stored subscriber (with the do-not-disturb the phone app set, if the
/// scenario has it do so) through the domain's rules, at the service's
/// clock.
async fn decide(
    scenario: &Scenario,
    service: &Service,
    registration: &Registration,
    phone: &Phone<'_>,
    caller: &Caller,
    timeline: &Timeline,
) -> Result<Decision, Error> {
    let mut subscriber = rules::stored_subscriber(&registration.stored)?;
    if let Some(minutes) = scenario.dnd_minutes {
        let until = service
            .clock
            .now()
            .after(Duration::from_secs(u64::from(minutes.0) * 60));
        let until = phone.set_dnd(until).await?;
        let stored = service.subscriber(&registration.number).await?;
        let shown = stored["dnd_until"].as_str().unwrap_or("null");
        if rules::stored_subscriber(&stored)?.dnd_until != Some(until) {
            return Err(Error::broken(format!(
                "after PUT /v1/dnd until {}, the stored subscriber shows dnd_until {shown}",
                until.to_rfc3339()
            )));
        }
        subscriber.dnd_until = Some(until);
    }
    // The in-process service's DEFAULT_REGION; a deployment's may differ,
    // which only matters for a caller written in a national format.
    let calling = CallingNumber::parse(Some(&caller.number), Region::default());
    let decision = subscriber.route(&calling, service.clock.now());
    timeline.log("service", rules::describe(&decision, &subscriber));
    Ok(decision)
}

/// The carrier forwards the call and the CPaaS runs it.
async fn forward_and_run(
    scenario: &Scenario,
    service: &Service,
    registration: &Registration,
    directory: &Directory,
    caller: &Caller,
    timeline: &Timeline,
    decision: &Decision,
) -> Result<(CallEnd, cpaas::Documents), Error> {
    let carrier = Carrier {
        delay: Duration::from_millis(scenario.forward_delay_ms),
        sends_forwarded_from: scenario.forwarded_from,
    };
    let forwarding_number = registration.stored["forwarding_number"]
        .as_str()
        .ok_or_else(|| Error::broken("the stored subscriber has no forwarding_number"))?;
    let Some(forwarded) =
        carrier.forward(caller, &registration.number, forwarding_number, timeline)
    else {
        return Ok((CallEnd::default(), Vec::new()));
    };
    let setup = CallSetup {
        client: &service.client,
        service_url: &service.target.url,
        public_base_url: service.target.public_base_url.trim_end_matches('/'),
        auth_token: &service.target.provider_token,
        timeline,
        directory,
        caller,
        decision,
    };
    cpaas::run(scenario.provider, setup, forwarded).await
}

/// Auto mode's order: the phone is told `reject` only once
/// every destination the route rings was notified.
fn notified_before_instruction(
    directory: &Directory,
    receiver: &Receiver,
    route: &Route,
) -> Result<(), Error> {
    match directory
        .ids()
        .filter(|id| rules::rings(route, id))
        .find(|id| receiver.delivery(id, "call.ringing").is_none())
    {
        Some(id) => Err(Error::broken(format!(
            "the phone was told reject before {id} got call.ringing (notifications come first)"
        ))),
        None => Ok(()),
    }
}

/// Waits (bounded) for a webhook the call's end implies at every
/// destination: the outcome's, and the voicemail's transcription.
async fn await_webhooks(
    kind: &str,
    directory: &Directory,
    receiver: &Receiver,
    timeline: &Timeline,
    wait: Duration,
) {
    let ids: Vec<&str> = directory.ids().collect();
    if !receiver.wait_for(&ids, kind, wait).await {
        let missing: Vec<&str> = ids
            .into_iter()
            .filter(|id| receiver.delivery(id, kind).is_none())
            .collect();
        timeline.log(
            "service",
            format!(
                "sent no {kind} to {} within {} s",
                missing.join(", "),
                wait.as_secs()
            ),
        );
    }
}

/// Notes in the timeline where the session tells another story than the
/// call did.
fn cross_check(
    session: &Value,
    expected_state: Option<&str>,
    outcome: Outcome,
    connected_to: Option<&str>,
    timeline: &Timeline,
) {
    let state = session["state"].as_str().unwrap_or_default();
    let selected = session["selected_destination"].as_str();
    if let Some(expected) = expected_state
        && state != expected
    {
        timeline.log(
            "service",
            format!("session disagrees: state {state}, the call was {expected}"),
        );
    }
    if outcome == Outcome::Connected && selected != connected_to {
        timeline.log(
            "service",
            format!(
                "session disagrees: selected_destination {}, the call was bridged to {}",
                selected.unwrap_or("null"),
                connected_to.unwrap_or("null")
            ),
        );
    }
}
