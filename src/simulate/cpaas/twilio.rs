//! Twilio: the voice webhook and its parameters, `X-Twilio-Signature`, and
//! TwiML executed as Twilio does. A `<Dial>`'s nouns ring together and the
//! first to pick up wins, the others being hung up at once (a voicemail
//! picking up counts); a noun's `url` (the whisper) runs on that leg before
//! the bridge, and a whisper that hangs up ends the Dial `completed` with
//! `DialBridged=false`. A caller who hangs up while the Dial rings ends the
//! call: Twilio fetches no `action` for a call that is gone.

use std::time::Duration;

use super::markup::{Element, Grammar, Rule};
use super::{
    Call, Ending, Error, Forwarded, Group, Leg, Next, PARTY, Params, Unanswered, conversation,
    ended, gave_up, param, said, speech,
};
use crate::providers::twilio::signature;
use crate::simulate::destination::{Callee, Fate, Kind};

const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
const API_VERSION: &str = "2010-04-01";
/// The most nouns one `<Dial>` may hold.
const MAX_NOUNS: usize = 10;
/// What `<Play>` takes (the simulator fetches no audio).
const PLAY: Duration = Duration::from_secs(3);

const NOUN_CALLBACKS: &[&str] = &[
    "url",
    "method",
    "statusCallback",
    "statusCallbackEvent",
    "statusCallbackMethod",
];

const RULES: &[Rule] = &[
    Rule {
        name: "Say",
        attrs: &["voice", "language", "loop"],
        children: &[],
    },
    Rule {
        name: "Play",
        attrs: &["loop", "digits"],
        children: &[],
    },
    Rule {
        name: "Pause",
        attrs: &["length"],
        children: &[],
    },
    Rule {
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
    },
    Rule {
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
    },
    Rule {
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
    },
    Rule {
        name: "Client",
        attrs: NOUN_CALLBACKS,
        children: &[],
    },
    Rule {
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
    },
    Rule {
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
    },
    Rule {
        name: "Hangup",
        attrs: &[],
        children: &[],
    },
    Rule {
        name: "Reject",
        attrs: &["reason"],
        children: &[],
    },
    Rule {
        name: "Redirect",
        attrs: &["method"],
        children: &[],
    },
];

/// TwiML for the call itself.
static CALL: Grammar = Grammar {
    provider: "Twilio",
    verbs: &[
        "Say", "Play", "Pause", "Gather", "Dial", "Record", "Hangup", "Reject", "Redirect",
    ],
    rules: RULES,
};

/// TwiML a `<Number url>` may answer: no `<Dial>`, no `<Record>`.
static WHISPER: Grammar = Grammar {
    provider: "Twilio (in a whisper)",
    verbs: &["Say", "Play", "Pause", "Gather", "Hangup"],
    rules: RULES,
};

pub(super) fn sign(
    token: &[u8],
    url: &str,
    params: &[(String, String)],
) -> Vec<(&'static str, String)> {
    vec![("X-Twilio-Signature", signature::sign(token, url, params))]
}

fn new_sid() -> String {
    format!("CA{:032x}", rand::random::<u128>())
}

/// The forwarded call's own parameters.
struct Parent {
    sid: String,
    from: String,
    forwarded: Forwarded,
}

impl Parent {
    fn params(&self, status: &str) -> Params {
        let mut params = vec![
            param("AccountSid", ACCOUNT_SID),
            param("ApiVersion", API_VERSION),
            param("CallSid", &self.sid),
            param("CallStatus", status),
            param("Called", &self.forwarded.to),
            param("Caller", &self.from),
            param("Direction", "inbound"),
            param("From", &self.from),
            param("To", &self.forwarded.to),
        ];
        if let Some(subscriber) = &self.forwarded.forwarded_from {
            params.push(param("ForwardedFrom", subscriber));
        }
        params
    }

    /// A dialed leg's parameters (whisper, status callbacks).
    fn leg_params(&self, leg: &Leg, status: &str) -> Params {
        vec![
            param("AccountSid", ACCOUNT_SID),
            param("ApiVersion", API_VERSION),
            param("CallSid", &leg.id),
            param("CallStatus", status),
            param("Direction", "outbound-dial"),
            param("From", &self.from),
            param("ParentCallSid", &self.sid),
            param("To", &leg.noun.text),
        ]
    }
}

/// How a whisper ended.
enum Whisper {
    Bridged,
    HungUp,
    CallerGone,
}

pub(super) async fn run(call: &mut Call<'_>, forwarded: &Forwarded) -> Result<(), Error> {
    let parent = Parent {
        sid: new_sid(),
        from: forwarded.from.clone(),
        forwarded: forwarded.clone(),
    };
    let base = call.wire.cpaas.public_base_url;
    call.timeline().log(
        PARTY,
        format!(
            "call {} → {}: POST /twilio/voice",
            parent.from, forwarded.to
        ),
    );
    let url = format!("{base}/twilio/voice");
    let document = call
        .wire
        .document(&url, &parent.params("ringing"), &CALL)
        .await?;
    let ending = execute(call, &parent, document, url).await?;
    let status = match ending {
        Ending::Completed => "completed",
        Ending::CallerGaveUp => "canceled",
        Ending::Rejected => "busy",
        Ending::Unanswered => "no-answer",
    };
    call.timeline()
        .log(PARTY, format!("call ends {status}: POST /twilio/status"));
    call.wire
        .callback(&format!("{base}/twilio/status"), &parent.params(status))
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
        call.log_document(&document, |_, noun| noun_party(call, noun));
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
                        .document(&target, &parent.params("in-progress"), &CALL)
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

fn callee(call: &Call<'_>, noun: &Element) -> Callee {
    let kind = match noun.name.as_str() {
        "Number" => Kind::Phone,
        "Client" => Kind::Client,
        _ => Kind::Sip,
    };
    call.directory().callee(kind, &noun.text)
}

/// Who a noun rings, and whether its subscriber screens it: the markup
/// alone cannot say, since every noun has a whisper URL (which tells the
/// service who answered); what the whisper answers does the screening.
fn noun_party(call: &Call<'_>, noun: &Element) -> String {
    let callee = callee(call, noun);
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
            "a <Dial> with {} nouns: Twilio rings at most {MAX_NOUNS}",
            dial.children.len()
        )));
    }
    let nouns = dial
        .children
        .iter()
        .map(|n| (n.clone(), callee(call, n)))
        .collect();
    let timeout = Duration::from_secs(dial.number("timeout", 30)?);
    let group = call.ring(nouns, timeout, new_sid);
    for leg in &group.legs {
        match leg.fate {
            Fate::Busy => leg_event(call, parent, url, leg, "completed", "busy").await?,
            Fate::Fails => leg_event(call, parent, url, leg, "completed", "failed").await?,
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
        vec![
            param("DialBridged", bridged.to_string()),
            param("DialCallDuration", duration.as_secs().to_string()),
            param("DialCallSid", &leg.id),
            param("DialCallStatus", "completed"),
        ]
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
    let document = call.wire.document(&action, &params, &CALL).await?;
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
    let mut document = call.wire.document(&url, &params, &WHISPER).await?;
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
                            document = call.wire.document(&target, &with_digits, &WHISPER).await?;
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
    let action = match verb.attr("action") {
        Some(action) => call.wire.absolute(url, action)?,
        None => url.to_owned(),
    };
    let mut params = parent.params("completed");
    params.extend([
        param("RecordingDuration", length.as_secs().to_string()),
        param("RecordingSid", &sid),
        param(
            "RecordingUrl",
            format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"),
        ),
    ]);
    // Posted and checked; the caller has hung up, so nothing of it runs.
    let document = call.wire.document(&action, &params, &CALL).await?;
    call.log_document(&document, |_, noun| noun.text.clone());
    Ok(Next::Ended(Ending::Completed))
}
