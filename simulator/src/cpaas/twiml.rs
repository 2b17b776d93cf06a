//! The TwiML family, Twilio, Telnyx (TeXML) and SignalWire (cXML): the voice
//! webhook and its parameters, and the markup executed as they do (each
//! provider's signature, ids and nouns are its [`Cpaas`] entry). A `<Dial>`'s nouns ring together and the first to
//! pick up wins, the others being hung up at once (a voicemail picking up
//! counts); a noun's `url` (the whisper) runs on that leg before the bridge,
//! and a whisper that hangs up ends the Dial `completed`, not bridged (Twilio
//! says `DialBridged=false`; the others say nothing more). A caller who hangs
//! up while the Dial rings ends the call: no `action` is fetched for a call
//! that is gone. Where the three differ is a [`Flavour`].

use std::time::Duration;

use super::kit::Cpaas;
use super::markup::{Element, Grammar, NumberAttr as _, Rule};
use super::{
    Call, Ending, Error, Forwarded, Group, Leg, Next, PARTY, Params, Unanswered, conversation,
    ended, gave_up, param, said, speech,
};
use crate::destination::{Callee, Fate, Kind};

/// The most nouns one `<Dial>` may hold.
const MAX_NOUNS: usize = 10;
/// What `<Play>` takes (the simulator fetches no audio).
const PLAY: Duration = Duration::from_secs(3);

/// Where the TwiML family's providers differ when they run a call.
pub struct Flavour {
    /// The provider, in messages.
    name: &'static str,
    /// Its wire: routes, signature, ids, nouns.
    cpaas: Cpaas,
    account_sid: &'static str,
    /// Twilio's extra parameters: `ApiVersion`, and `Caller`/`Called`
    /// repeating `From`/`To` (Telnyx sends neither).
    twilio_extras: bool,
    /// Whether it passes on the carrier's `ForwardedFrom` (Telnyx documents
    /// none).
    sends_forwarded_from: bool,
    /// Whether the Dial's `action` says `DialBridged` (Twilio only).
    reports_bridged: bool,
    call: &'static Grammar,
    whisper: &'static Grammar,
    recording_url: fn(&str) -> String,
}

pub static TWILIO: Flavour = Flavour {
    name: "Twilio",
    cpaas: Cpaas::Twilio,
    account_sid: "AC00000000000000000000000000000000",
    twilio_extras: true,
    sends_forwarded_from: true,
    reports_bridged: true,
    call: &Grammar {
        provider: "Twilio",
        verbs: CALL_VERBS,
        rules: &[
            SAY,
            PLAY_RULE,
            PAUSE,
            GATHER,
            TWILIO_DIAL,
            NUMBER,
            CLIENT,
            SIP,
            RECORD,
            HANGUP,
            REJECT,
            REDIRECT,
        ],
    },
    whisper: &Grammar {
        provider: "Twilio (in a whisper)",
        verbs: WHISPER_VERBS,
        rules: &[SAY, PLAY_RULE, PAUSE, GATHER, HANGUP],
    },
    recording_url: |sid| {
        format!(
            "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000/Recordings/{sid}"
        )
    },
};

pub static TELNYX: Flavour = Flavour {
    name: "Telnyx",
    cpaas: Cpaas::Telnyx,
    account_sid: "00000000-0000-4000-8000-000000000000",
    twilio_extras: false,
    sends_forwarded_from: false,
    reports_bridged: false,
    call: &Grammar {
        provider: "Telnyx",
        verbs: CALL_VERBS,
        rules: &[
            SAY,
            PLAY_RULE,
            PAUSE,
            GATHER,
            TELNYX_DIAL,
            NUMBER,
            SIP,
            TELNYX_RECORD,
            HANGUP,
            REJECT,
            REDIRECT,
        ],
    },
    whisper: &Grammar {
        provider: "Telnyx (in a whisper)",
        verbs: WHISPER_VERBS,
        rules: &[SAY, PLAY_RULE, PAUSE, GATHER, HANGUP],
    },
    recording_url: |sid| format!("https://s3.amazonaws.com/telnyx-recordings/{sid}.mp3"),
};

pub static SIGNALWIRE: Flavour = Flavour {
    name: "SignalWire",
    cpaas: Cpaas::SignalWire,
    account_sid: "00000000-0000-4000-8000-000000000001",
    twilio_extras: true,
    sends_forwarded_from: true,
    reports_bridged: false,
    call: &Grammar {
        provider: "SignalWire",
        verbs: CALL_VERBS,
        rules: &[
            SAY,
            PLAY_RULE,
            PAUSE,
            GATHER,
            SIGNALWIRE_DIAL,
            NUMBER,
            VERTO,
            SIP,
            RECORD,
            HANGUP,
            REJECT,
            REDIRECT,
        ],
    },
    whisper: &Grammar {
        provider: "SignalWire (in a whisper)",
        verbs: WHISPER_VERBS,
        rules: &[SAY, PLAY_RULE, PAUSE, GATHER, HANGUP],
    },
    recording_url: |sid| {
        format!("https://example.signalwire.com/api/laml/2010-04-01/Recordings/{sid}")
    },
};

const CALL_VERBS: &[&str] = &[
    "Say", "Play", "Pause", "Gather", "Dial", "Record", "Hangup", "Reject", "Redirect",
];
/// What a `<Number url>` may answer: no `<Dial>`, no `<Record>`.
const WHISPER_VERBS: &[&str] = &["Say", "Play", "Pause", "Gather", "Hangup"];

const NOUN_CALLBACKS: &[&str] = &[
    "url",
    "method",
    "statusCallback",
    "statusCallbackEvent",
    "statusCallbackMethod",
];

const SAY: Rule = Rule {
    name: "Say",
    attrs: &["voice", "language", "loop"],
    children: &[],
};
const PLAY_RULE: Rule = Rule {
    name: "Play",
    attrs: &["loop", "digits"],
    children: &[],
};
const PAUSE: Rule = Rule {
    name: "Pause",
    attrs: &["length"],
    children: &[],
};
const GATHER: Rule = Rule {
    name: "Gather",
    attrs: &[
        "action",
        "method",
        "numDigits",
        "timeout",
        "finishOnKey",
        "input",
        "speechTimeout",
        "language",
        "hints",
        "actionOnEmptyResult",
        "partialResultCallback",
        "partialResultCallbackMethod",
        "profanityFilter",
        "speechModel",
        "enhanced",
    ],
    children: &["Say", "Play", "Pause"],
};
const TWILIO_DIAL: Rule = Rule {
    name: "Dial",
    attrs: &[
        "action",
        "method",
        "timeout",
        "callerId",
        "answerOnBridge",
        "record",
        "recordingStatusCallback",
        "recordingStatusCallbackMethod",
        "recordingStatusCallbackEvent",
        "recordingTrack",
        "ringTone",
        "timeLimit",
        "hangupOnStar",
        "trim",
        "sequential",
        "referUrl",
        "referMethod",
    ],
    children: &["Number", "Client", "Sip"],
};
/// TeXML's `<Dial>`: no `answerOnBridge`, no `<Client>`.
const TELNYX_DIAL: Rule = Rule {
    name: "Dial",
    attrs: &[
        "action",
        "method",
        "callerId",
        "timeout",
        "timeLimit",
        "record",
        "ringTone",
        "hangupOnStar",
        "recordingStatusCallback",
        "recordingStatusCallbackMethod",
        "recordingStatusCallbackEvent",
    ],
    children: &["Number", "Sip"],
};
/// cXML's `<Dial>`: Twilio's, with `<Verto>` for softphones.
const SIGNALWIRE_DIAL: Rule = Rule {
    name: "Dial",
    attrs: TWILIO_DIAL.attrs,
    children: &["Number", "Verto", "Sip"],
};
const NUMBER: Rule = Rule {
    name: "Number",
    attrs: &[
        "url",
        "method",
        "statusCallback",
        "statusCallbackEvent",
        "statusCallbackMethod",
        "sendDigits",
        "byoc",
        "machineDetection",
    ],
    children: &[],
};
const CLIENT: Rule = Rule {
    name: "Client",
    attrs: NOUN_CALLBACKS,
    children: &[],
};
/// SignalWire's Verto noun takes no attributes.
const VERTO: Rule = Rule {
    name: "Verto",
    attrs: &[],
    children: &[],
};
const SIP: Rule = Rule {
    name: "Sip",
    attrs: &[
        "url",
        "method",
        "statusCallback",
        "statusCallbackEvent",
        "statusCallbackMethod",
        "username",
        "password",
    ],
    children: &[],
};
const RECORD: Rule = Rule {
    name: "Record",
    attrs: &[
        "action",
        "method",
        "timeout",
        "finishOnKey",
        "maxLength",
        "playBeep",
        "trim",
        "recordingStatusCallback",
        "recordingStatusCallbackMethod",
        "recordingStatusCallbackEvent",
        "transcribe",
        "transcribeCallback",
    ],
    children: &[],
};
/// TeXML's `<Record>` has `channels` (dual by default).
const TELNYX_RECORD: Rule = Rule {
    name: "Record",
    attrs: &[
        "action",
        "method",
        "timeout",
        "finishOnKey",
        "maxLength",
        "playBeep",
        "trim",
        "channels",
        "recordingStatusCallback",
        "recordingStatusCallbackMethod",
        "transcription",
        "transcriptionCallback",
    ],
    children: &[],
};
const HANGUP: Rule = Rule {
    name: "Hangup",
    attrs: &[],
    children: &[],
};
const REJECT: Rule = Rule {
    name: "Reject",
    attrs: &["reason"],
    children: &[],
};
const REDIRECT: Rule = Rule {
    name: "Redirect",
    attrs: &["method"],
    children: &[],
};

/// The forwarded call's own parameters, and the provider running it.
struct Parent {
    flavour: &'static Flavour,
    sid: String,
    from: String,
    forwarded: Forwarded,
}

/// Twilio's API version, in its requests.
const API_VERSION: &str = "2010-04-01";

impl Parent {
    fn params(&self, status: &str) -> Params {
        let flavour = self.flavour;
        let mut params = vec![param("AccountSid", flavour.account_sid)];
        if flavour.twilio_extras {
            params.push(param("ApiVersion", API_VERSION));
        }
        params.extend([param("CallSid", &self.sid), param("CallStatus", status)]);
        if flavour.twilio_extras {
            params.extend([
                param("Called", &self.forwarded.to),
                param("Caller", &self.from),
            ]);
        }
        params.extend([
            param("Direction", "inbound"),
            param("From", &self.from),
            param("To", &self.forwarded.to),
        ]);
        if let Some(subscriber) = &self.forwarded.forwarded_from
            && flavour.sends_forwarded_from
        {
            params.push(param("ForwardedFrom", subscriber));
        }
        params
    }

    /// A dialed leg's parameters (whisper, status callbacks).
    fn leg_params(&self, leg: &Leg, status: &str) -> Params {
        let mut params = vec![param("AccountSid", self.flavour.account_sid)];
        if self.flavour.twilio_extras {
            params.push(param("ApiVersion", API_VERSION));
        }
        params.extend([
            param("CallSid", &leg.id),
            param("CallStatus", status),
            param("Direction", "outbound-dial"),
            param("From", &self.from),
            param("ParentCallSid", &self.sid),
            param("To", &leg.noun.text),
        ]);
        params
    }

    /// The absolute URL of one of the provider's routes.
    fn url(base: &str, route: &str) -> String {
        format!("{base}{route}")
    }
}

/// How a whisper ended.
enum Whisper {
    Bridged,
    HungUp,
    CallerGone,
}

pub(super) async fn run(
    call: &mut Call<'_>,
    forwarded: &Forwarded,
    flavour: &'static Flavour,
) -> Result<(), Error> {
    let parent = Parent {
        flavour,
        sid: flavour.cpaas.new_call_id(),
        from: forwarded.from.clone(),
        forwarded: forwarded.clone(),
    };
    let base = call.wire.cpaas.public_base_url;
    let routes = flavour.cpaas.routes();
    call.timeline().log(
        PARTY,
        format!(
            "call {} → {}: POST {}",
            parent.from, forwarded.to, routes.answer
        ),
    );
    let url = Parent::url(base, routes.answer);
    let mut params = parent.params("ringing");
    params.extend(forwarded.verification_params(flavour.cpaas));
    let document = call.wire.document(&url, &params, flavour.call).await?;
    let ending = execute(call, &parent, document, url).await?;
    let status = match ending {
        Ending::Completed => "completed",
        Ending::CallerGaveUp => "canceled",
        Ending::Rejected => "busy",
        Ending::Unanswered => "no-answer",
    };
    call.timeline()
        .log(PARTY, format!("call ends {status}: POST {}", routes.status));
    call.wire
        .callback(&Parent::url(base, routes.status), &parent.params(status))
        .await
}

/// Runs the call's TwiML, following Dial actions and redirects, until the
/// call ends.
async fn execute(
    call: &mut Call<'_>,
    parent: &Parent,
    mut document: Element,
    mut url: String,
) -> Result<Ending, Error> {
    'document: loop {
        call.log_document(&document, |_, noun| noun_party(call, parent.flavour, noun));
        for verb in std::mem::take(&mut document.children) {
            let next = match verb.name.as_str() {
                "Say" => said(call.speak(&verb.text), call),
                "Play" => {
                    call.answered = true;
                    said(call.pass(PLAY), call)
                }
                "Pause" => {
                    call.answered = true;
                    said(
                        call.pass(Duration::from_secs(verb.number("length", 1)?)),
                        call,
                    )
                }
                // The caller presses nothing: after the prompt and the
                // timeout, Twilio goes on with the next verb.
                "Gather" => {
                    let prompt = verb
                        .children
                        .iter()
                        .map(|p| p.text.as_str())
                        .collect::<String>();
                    let timeout = Duration::from_secs(verb.number("timeout", 5)?);
                    said(call.speak(&prompt) && call.pass(timeout), call)
                }
                "Dial" => dial(call, parent, &verb, &url).await?,
                "Record" => record(call, parent, &verb, &url).await?,
                "Redirect" => {
                    let target = call.wire.absolute(&url, &verb.text)?;
                    let document = call
                        .wire
                        .document(&target, &parent.params("in-progress"), parent.flavour.call)
                        .await?;
                    Next::Document(document, target)
                }
                "Hangup" => Next::Ended(ended(call)),
                "Reject" => Next::Ended(Ending::Rejected),
                other => unreachable!("the grammar admits no <{other}>"),
            };
            match next {
                Next::Continue => {}
                Next::Document(next, at) => {
                    document = next;
                    url = at;
                    continue 'document;
                }
                Next::Ended(ending) => return Ok(ending),
            }
        }
        return Ok(ended(call));
    }
}

fn callee(call: &Call<'_>, flavour: &Flavour, noun: &Element) -> Callee {
    if noun.name == "Number" {
        return call.directory().callee(Kind::Phone, &noun.text);
    }
    match flavour.cpaas.client_identity(&noun.name, &noun.text) {
        Some(identity) => call.directory().callee(Kind::Client, identity),
        None => call.directory().callee(Kind::Sip, &noun.text),
    }
}

/// Who a noun rings, and whether its subscriber screens it: the markup
/// alone cannot say, since every noun has a whisper URL (which tells the
/// service who answered); what the whisper answers does the screening.
fn noun_party(call: &Call<'_>, flavour: &Flavour, noun: &Element) -> String {
    let callee = callee(call, flavour, noun);
    if callee.screened {
        format!("{} (screened)", callee.party)
    } else {
        callee.party
    }
}

async fn dial(
    call: &mut Call<'_>,
    parent: &Parent,
    dial: &Element,
    url: &str,
) -> Result<Next, Error> {
    if dial.children.len() > MAX_NOUNS {
        return Err(Error::broken(format!(
            "a <Dial> with {} nouns: {} rings at most {MAX_NOUNS}",
            dial.children.len(),
            parent.flavour.name
        )));
    }
    let nouns = dial
        .children
        .iter()
        .map(|n| (n.clone(), callee(call, parent.flavour, n)))
        .collect();
    let timeout = Duration::from_secs(dial.number("timeout", 30)?);
    let recording = DialRecording::of(dial)?;
    let group = call.ring(nouns, timeout)?;
    for leg in &group.legs {
        match leg.fate {
            Fate::Busy => leg_event(call, parent, url, leg, "completed", "busy").await?,
            Fate::Fails => leg_event(call, parent, url, leg, "completed", "failed").await?,
            Fate::Unreachable => {
                leg_event(call, parent, url, leg, "completed", "no-answer").await?
            }
            _ => leg_event(call, parent, url, leg, "ringing", "ringing").await?,
        }
    }
    let pick_up = group.pick_ups().first().copied();
    let (gives_up_at, unanswered) = group.unanswered(&[]);
    let decided_at = pick_up.map_or(gives_up_at, |(at, _)| at);
    if let Some(at) = call.caller().hangs_up_before(decided_at) {
        call.timeline().advance_to(at);
        call.timeline().log("caller", "hangs up");
        hang_up_all(call, parent, url, &group, &[]).await?;
        return Ok(Next::Ended(gave_up(call)));
    }
    let Some((at, index)) = pick_up else {
        call.timeline().advance_to(gives_up_at);
        let status = match unanswered {
            Unanswered::Busy => "busy",
            Unanswered::Failed => "failed",
            Unanswered::NoAnswer => "no-answer",
        };
        call.timeline().log(PARTY, format!("Dial ends: {status}"));
        for leg in group.ringing(&[]) {
            leg_event(call, parent, url, leg, "completed", "no-answer").await?;
        }
        return action(
            call,
            parent,
            dial,
            url,
            vec![param("DialCallStatus", status)],
        )
        .await;
    };
    call.timeline().advance_to(at);
    let leg = &group.legs[index];
    let machine = matches!(leg.fate, Fate::PicksUp { machine: true, .. });
    call.timeline().log(
        &leg.callee.party,
        if machine {
            "voicemail picks up"
        } else {
            "picks up"
        },
    );
    // First to pick up wins: Twilio ends the other legs now, whatever the
    // whisper on this one does next.
    hang_up_all(call, parent, url, &group, &[index]).await?;
    leg_event(call, parent, url, leg, "answered", "in-progress").await?;
    let whisper = match leg.noun.attr("url") {
        Some(whisper) => {
            let whisper = call.wire.absolute(url, whisper)?;
            run_whisper(call, parent, leg, whisper).await?
        }
        None => Whisper::Bridged,
    };
    let dial_call = |bridged: bool, duration: Duration| {
        let mut params = Vec::with_capacity(4);
        if parent.flavour.reports_bridged {
            params.push(param("DialBridged", bridged.to_string()));
        }
        params.extend([
            param("DialCallDuration", duration.as_secs().to_string()),
            param("DialCallSid", &leg.id),
            param("DialCallStatus", "completed"),
        ]);
        params
    };
    match whisper {
        Whisper::CallerGone => {
            call.timeline()
                .log(PARTY, format!("hangs up {}", leg.callee.party));
            leg_event(call, parent, url, leg, "completed", "completed").await?;
            Ok(Next::Ended(gave_up(call)))
        }
        Whisper::HungUp => {
            call.timeline()
                .log(&leg.callee.party, "hangs up: not bridged");
            leg_event(call, parent, url, leg, "completed", "completed").await?;
            action(call, parent, dial, url, dial_call(false, Duration::ZERO)).await
        }
        Whisper::Bridged => {
            call.answered = true;
            call.end.bridged_to = Some(leg.callee.clone());
            call.timeline()
                .log(PARTY, format!("bridges the caller to {}", leg.callee.party));
            let (talk, caller_hangs_up) = conversation(call);
            call.timeline().advance(talk);
            let who = if caller_hangs_up {
                "caller"
            } else {
                leg.callee.party.as_str()
            };
            call.timeline().log(who, "hangs up");
            leg_event(call, parent, url, leg, "completed", "completed").await?;
            if let Some(recording) = &recording {
                recording_ready(call, parent, url, leg, recording, talk).await?;
            }
            let next = action(call, parent, dial, url, dial_call(true, talk)).await?;
            // The action is fetched either way; a call whose caller is gone
            // runs none of its TwiML.
            Ok(if caller_hangs_up {
                Next::Ended(Ending::Completed)
            } else {
                next
            })
        }
    }
}

/// A `<Dial record>` that records: where its status callback goes, and
/// whether it asked for the `completed` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DialRecording {
    /// `recordingStatusCallback`, as written (relative to the document).
    callback: Option<String>,
    /// `recordingStatusCallbackEvent` holds `completed` (its default).
    on_completed: bool,
    /// `-dual`: caller and callee on two channels.
    dual: bool,
}

/// `record`'s values that record (Twilio, and TeXML and cXML after it).
const RECORDS: &[&str] = &[
    "record-from-answer",
    "record-from-answer-dual",
    "record-from-ringing",
    "record-from-ringing-dual",
];

impl DialRecording {
    /// What a `<Dial>`'s recording attributes ask for; `None` when it does
    /// not record.
    pub(super) fn of(dial: &Element) -> Result<Option<Self>, Error> {
        let record = match dial.attr("record") {
            None | Some("do-not-record" | "false") => return Ok(None),
            Some("true") => "record-from-answer",
            Some(other) if RECORDS.contains(&other) => other,
            Some(other) => {
                return Err(Error::broken(format!(
                    "invalid markup: <Dial record={other:?}>, record must be one of do-not-record, {}",
                    RECORDS.join(", ")
                )));
            }
        };
        let events = dial
            .attr("recordingStatusCallbackEvent")
            .unwrap_or("completed");
        Ok(Some(Self {
            callback: dial.attr("recordingStatusCallback").map(str::to_owned),
            on_completed: events.split([' ', ',']).any(|e| e == "completed"),
            dual: record.ends_with("-dual"),
        }))
    }
}

/// The recording of a bridged leg is ready once the leg ends: the
/// `recordingStatusCallback` hears of it, signed as every request.
async fn recording_ready(
    call: &Call<'_>,
    parent: &Parent,
    url: &str,
    leg: &Leg,
    recording: &DialRecording,
    talk: Duration,
) -> Result<(), Error> {
    let (Some(callback), true) = (&recording.callback, recording.on_completed) else {
        call.timeline().log(
            PARTY,
            format!(
                "recorded the call with {} ({} s); no recording callback asked for",
                leg.callee.party,
                talk.as_secs()
            ),
        );
        return Ok(());
    };
    let callback = call.wire.absolute(url, callback)?;
    let sid = format!("RE{:032x}", rand::random::<u128>());
    call.timeline().log(
        PARTY,
        format!(
            "recording of the call with {} ready ({} s): POST {}",
            leg.callee.party,
            talk.as_secs(),
            super::route(&callback)
        ),
    );
    let params = recording_params(parent, &sid, talk, recording.dual);
    call.wire.callback(&callback, &params).await
}

/// A recording status callback's parameters (Twilio's names; TeXML and cXML
/// use the same).
fn recording_params(parent: &Parent, sid: &str, duration: Duration, dual: bool) -> Params {
    let flavour = parent.flavour;
    let mut params = vec![param("AccountSid", flavour.account_sid)];
    params.extend([
        param("CallSid", &parent.sid),
        param("RecordingChannels", if dual { "2" } else { "1" }),
        param("RecordingDuration", duration.as_secs().to_string()),
        param("RecordingSid", sid),
        param("RecordingSource", "DialVerb"),
        param("RecordingStatus", "completed"),
        param("RecordingUrl", (flavour.recording_url)(sid)),
    ]);
    params
}

/// Hangs up the legs still ringing, except `except`.
async fn hang_up_all(
    call: &Call<'_>,
    parent: &Parent,
    url: &str,
    group: &Group,
    except: &[usize],
) -> Result<(), Error> {
    call.hang_up_others(group, except);
    for leg in group.ringing(except) {
        leg_event(call, parent, url, leg, "completed", "canceled").await?;
    }
    Ok(())
}

/// The Dial's `action`, when it has one: the document it answers.
async fn action(
    call: &Call<'_>,
    parent: &Parent,
    dial: &Element,
    url: &str,
    outcome: Params,
) -> Result<Next, Error> {
    let Some(action) = dial.attr("action") else {
        return Ok(Next::Continue);
    };
    let action = call.wire.absolute(url, action)?;
    let mut params = parent.params("in-progress");
    params.extend(outcome);
    let document = call
        .wire
        .document(&action, &params, parent.flavour.call)
        .await?;
    Ok(Next::Document(document, action))
}

/// Runs a `<Number url>` document on the answering leg.
async fn run_whisper(
    call: &Call<'_>,
    parent: &Parent,
    leg: &Leg,
    mut url: String,
) -> Result<Whisper, Error> {
    let params = parent.leg_params(leg, "in-progress");
    let whisper = parent.flavour.whisper;
    let mut document = call.wire.document(&url, &params, whisper).await?;
    'document: loop {
        call.log_leg_document("whisper", leg, &document);
        for verb in std::mem::take(&mut document.children) {
            let stayed = match verb.name.as_str() {
                "Say" => call.pass(speech(&verb.text)),
                "Play" => call.pass(PLAY),
                "Pause" => call.pass(Duration::from_secs(verb.number("length", 1)?)),
                "Gather" => {
                    let prompt = verb
                        .children
                        .iter()
                        .map(|p| p.text.as_str())
                        .collect::<String>();
                    if !call.pass(speech(&prompt)) {
                        return Ok(Whisper::CallerGone);
                    }
                    match leg.callee.presses() {
                        Some(key) => {
                            call.timeline()
                                .log(&leg.callee.party, format!("presses {key}"));
                            // Without `action`, Twilio posts to the
                            // document's own URL.
                            let target = match verb.attr("action") {
                                Some(action) => call.wire.absolute(&url, action)?,
                                None => url.clone(),
                            };
                            let mut with_digits = params.clone();
                            with_digits.push(param("Digits", key.to_string()));
                            document = call.wire.document(&target, &with_digits, whisper).await?;
                            url = target;
                            continue 'document;
                        }
                        None => {
                            call.timeline().log(&leg.callee.party, "presses nothing");
                            call.pass(Duration::from_secs(verb.number("timeout", 5)?))
                        }
                    }
                }
                "Hangup" => return Ok(Whisper::HungUp),
                other => unreachable!("the whisper grammar admits no <{other}>"),
            };
            if !stayed {
                return Ok(Whisper::CallerGone);
            }
        }
        // The end of the whisper (even an empty one) bridges the call.
        return Ok(Whisper::Bridged);
    }
}

/// The noun's `statusCallback` (relative to the Dial's document at `url`),
/// for the events it subscribed to (Twilio's default is `completed` alone).
async fn leg_event(
    call: &Call<'_>,
    parent: &Parent,
    url: &str,
    leg: &Leg,
    event: &str,
    status: &str,
) -> Result<(), Error> {
    let Some(callback) = leg.noun.attr("statusCallback") else {
        return Ok(());
    };
    let events = leg.noun.attr("statusCallbackEvent").unwrap_or("completed");
    if !events.split([' ', ',']).any(|e| e == event) {
        return Ok(());
    }
    let callback = call.wire.absolute(url, callback)?;
    let mut params = parent.leg_params(leg, status);
    params.push(param("CallbackSource", "call-progress-events"));
    call.wire.callback(&callback, &params).await
}

/// A `<Record>`: the caller leaves a message (or hangs up at the beep);
/// either way the call is over afterwards.
async fn record(
    call: &mut Call<'_>,
    parent: &Parent,
    verb: &Element,
    url: &str,
) -> Result<Next, Error> {
    let max = Duration::from_secs(verb.number("maxLength", 3600)?);
    let Some(length) = call.leave_message(max) else {
        return Ok(Next::Ended(Ending::Completed));
    };
    call.end.recorded = true;
    let sid = format!("RE{:032x}", rand::random::<u128>());
    let flavour = parent.flavour;
    let action = match verb.attr("action") {
        Some(action) => call.wire.absolute(url, action)?,
        None => url.to_owned(),
    };
    let mut params = parent.params("completed");
    params.extend([
        param("RecordingDuration", length.as_secs().to_string()),
        param("RecordingSid", &sid),
        param("RecordingUrl", (flavour.recording_url)(&sid)),
    ]);
    // Posted and checked; the caller has hung up, so nothing of it runs.
    let document = call.wire.document(&action, &params, flavour.call).await?;
    call.log_document(&document, |_, noun| noun.text.clone());
    call.transcribe(
        verb,
        url,
        &parent.sid,
        &(flavour.recording_url)(&sid),
        length,
    )
    .await?;
    Ok(Next::Ended(Ending::Completed))
}

#[cfg(test)]
mod tests {
    use super::super::markup;
    use super::*;

    /// What the renderers write for `record = "answer"` and a ring tone.
    const RECORDED: &str = r#"<Response><Dial action="/twilio/dial-status" timeout="20" record="record-from-answer-dual" recordingStatusCallback="/twilio/recording?s=1" recordingStatusCallbackEvent="completed" ringTone="uk"><Number>+12025550201</Number></Dial></Response>"#;

    #[test]
    fn every_flavour_accepts_a_recorded_dial_and_a_busy_reject() {
        for flavour in [&TWILIO, &TELNYX, &SIGNALWIRE] {
            for document in [RECORDED, r#"<Response><Reject reason="busy"/></Response>"#] {
                let root = markup::read(document).unwrap();
                flavour
                    .call
                    .check(&root)
                    .unwrap_or_else(|e| panic!("{}: {document}: {e}", flavour.name));
            }
        }
    }

    fn dial(attrs: &str) -> Element {
        let document = format!("<Response><Dial {attrs}><Number>+1</Number></Dial></Response>");
        markup::read(&document).unwrap().children.remove(0)
    }

    #[test]
    fn a_recorded_dial_is_read_from_its_attributes() {
        let root = markup::read(RECORDED).unwrap();
        assert_eq!(
            DialRecording::of(&root.children[0]).unwrap(),
            Some(DialRecording {
                callback: Some("/twilio/recording?s=1".into()),
                on_completed: true,
                dual: true,
            })
        );
        assert_eq!(DialRecording::of(&dial("")).unwrap(), None);
        assert_eq!(
            DialRecording::of(&dial(r#"record="do-not-record""#)).unwrap(),
            None
        );
        let quiet = DialRecording::of(&dial(
            r#"record="record-from-answer" recordingStatusCallback="/r" recordingStatusCallbackEvent="in-progress""#,
        ))
        .unwrap()
        .unwrap();
        assert!(!quiet.on_completed && !quiet.dual);
        let err = DialRecording::of(&dial(r#"record="sometimes""#)).unwrap_err();
        assert!(err.to_string().contains("record must be one of"), "{err}");
    }

    #[test]
    fn the_recording_callback_has_the_providers_parameters() {
        let parent = Parent {
            flavour: &TWILIO,
            sid: "CA1".into(),
            from: "+12025550302".into(),
            forwarded: Forwarded {
                from: "+12025550302".into(),
                to: "+12025550100".into(),
                forwarded_from: None,
                verification: None,
            },
        };
        let params = recording_params(&parent, "RE1", Duration::from_secs(30), true);
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("CallSid"), Some("CA1"));
        assert_eq!(get("RecordingSid"), Some("RE1"));
        assert_eq!(get("RecordingDuration"), Some("30"));
        assert_eq!(get("RecordingStatus"), Some("completed"));
        assert_eq!(get("RecordingChannels"), Some("2"));
        assert!(get("RecordingUrl").unwrap().ends_with("/Recordings/RE1"));
    }
}
