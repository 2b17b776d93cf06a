//! The destinations: who each dialed address is, how it answers a ring, what
//! it presses when screened, and what it does with a pick-mode offer.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use super::Error;
use super::caller::Caller;
use super::receiver::Receiver;
use super::scenario::{Answer, Behaviour, Key, Offer, Scenario};
use super::service::Service;
use super::timeline::Timeline;

/// How long a voicemail machine lets a call ring before it picks up.
const VOICEMAIL_PICKS_UP_AFTER: Duration = Duration::from_secs(5);

/// What a dialed address is, in the service's words (a destination's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Phone,
    Client,
    Sip,
}

impl Kind {
    fn parse(kind: &str) -> Option<Self> {
        match kind {
            "phone" => Some(Self::Phone),
            "client" => Some(Self::Client),
            "sip" => Some(Self::Sip),
            _ => None,
        }
    }
}

/// One destination as the service stored it, and how it behaves.
#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub kind: Kind,
    pub address: String,
    /// The subscriber asks this destination to press 1 first.
    pub screened: bool,
    pub behaviour: Behaviour,
}

/// Every destination of the subscriber, to tell who a dialed noun is.
#[derive(Debug, Clone, Default)]
pub struct Directory(Vec<Destination>);

impl Directory {
    /// From the stored subscriber (the PUT answer), whose addresses are
    /// normalised as the service dials them.
    pub fn new(stored: &Value, scenario: &Scenario) -> Self {
        let destinations = stored["destinations"].as_array().into_iter().flatten();
        Self(
            destinations
                .filter_map(|d| {
                    let id = d["id"].as_str()?;
                    Some(Destination {
                        id: id.to_owned(),
                        kind: Kind::parse(d["kind"].as_str()?)?,
                        address: d["address"].as_str()?.to_owned(),
                        screened: d["screening"].as_bool().unwrap_or(false),
                        behaviour: scenario.behaviour(id),
                    })
                })
                .collect(),
        )
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|d| d.id.as_str())
    }

    /// Who answers at `address` when dialed as `kind`: a destination, or a
    /// stranger (a fallback number) that behaves as the default.
    pub fn callee(&self, kind: Kind, address: &str) -> Callee {
        match self
            .0
            .iter()
            .find(|d| d.kind == kind && d.address == address)
        {
            Some(d) => Callee {
                party: d.id.clone(),
                destination_id: Some(d.id.clone()),
                screened: d.screened,
                behaviour: d.behaviour.clone(),
            },
            None => Callee {
                party: address.to_owned(),
                destination_id: None,
                screened: false,
                behaviour: Behaviour::default(),
            },
        }
    }
}

/// Whoever a Dial noun rings.
#[derive(Debug, Clone)]
pub struct Callee {
    /// The name in the timeline: the destination id, or the address.
    pub party: String,
    pub destination_id: Option<String>,
    /// Its subscriber configuration screens it (the markup may not say:
    /// on Twilio every noun has a whisper URL, screened or not).
    pub screened: bool,
    pub behaviour: Behaviour,
}

/// How one ringing leg ends, if nothing else ends it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Picks up this long after it starts ringing; `machine` for a
    /// voicemail, which never presses a key.
    PicksUp {
        after: Duration,
        machine: bool,
    },
    Busy,
    Fails,
    /// Ends at once, no-answer: a softphone that is not there.
    Unreachable,
    RingsOn,
}

impl Callee {
    pub fn fate(&self) -> Fate {
        match self.behaviour.answer {
            Answer::After(secs) => Fate::PicksUp {
                after: Duration::from_secs(secs.into()),
                machine: false,
            },
            Answer::Voicemail => Fate::PicksUp {
                after: VOICEMAIL_PICKS_UP_AFTER,
                machine: true,
            },
            Answer::Busy => Fate::Busy,
            Answer::Fails => Fate::Fails,
            Answer::NoAnswer => Fate::RingsOn,
            Answer::Unreachable => Fate::Unreachable,
        }
    }

    /// The key pressed when screening asks: a machine presses nothing.
    pub fn presses(&self) -> Option<Key> {
        match self.fate() {
            Fate::PicksUp { machine: false, .. } => self.behaviour.press,
            _ => None,
        }
    }
}

/// Pick mode: every destination acts on its `call.ringing` offer, in the
/// order its delay puts it on the call's clock, while the caller holds.
pub async fn answer_offers(
    directory: &Directory,
    receiver: &Receiver,
    service: &Service,
    timeline: &Timeline,
    caller: &Caller,
) -> Result<(), Error> {
    let offered_at = timeline.now_ms();
    let mut acting: Vec<(u64, &Destination)> = directory
        .0
        .iter()
        .filter_map(|d| match d.behaviour.offer {
            Offer::AcceptAfter(secs) => Some((u64::from(secs) * 1000, d)),
            Offer::Decline => Some((0, d)),
            Offer::Ignore => None,
        })
        .collect();
    acting.sort_by_key(|&(delay, _)| delay);
    let ids: Vec<&str> = acting.iter().map(|(_, d)| d.id.as_str()).collect();
    receiver.wait_for(&ids, "call.ringing", OFFER_WAIT).await;
    for (delay, destination) in acting {
        let at = offered_at + delay;
        if caller.hangs_up_before(at).is_some() {
            return Ok(());
        }
        timeline.advance_to(at);
        let Some(offer) = receiver.delivery(&destination.id, "call.ringing") else {
            timeline.log(&destination.id, "was never offered the call");
            continue;
        };
        let (verb, url_key) = match destination.behaviour.offer {
            Offer::AcceptAfter(_) => ("accepts", "accept_url"),
            _ => ("declines", "decline_url"),
        };
        let url = offer.data[url_key].as_str().ok_or_else(|| {
            Error::broken(format!(
                "call.ringing to {} has no {url_key}",
                destination.id
            ))
        })?;
        // A capability URL: a plain POST, no credentials.
        let response = service
            .client
            .post(service.reach(url))
            .send()
            .await
            .with_context(|| format!("POST {url_key}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let said = answer["state"]
            .as_str()
            .or(answer["error"].as_str())
            .unwrap_or_default();
        timeline.log(
            &destination.id,
            format!("{verb} the offer: {} {said}", status.as_u16()),
        );
    }
    Ok(())
}

/// How long to wait for offers to arrive.
const OFFER_WAIT: Duration = Duration::from_secs(5);
