//! Plivo: the answer URL and its parameters (numbers as digits without
//! `+`), `X-Plivo-Signature-V3`, and Plivo XML executed as Plivo does. A
//! `<Dial>`'s nouns ring together. Without `confirmKey` the first to pick up
//! is bridged; with it, every leg that picks up hears `confirmSound` and is
//! bridged only once its person presses the key, while the others ring on
//! (a leg that does not press hangs up). The Dial's `callbackUrl` hears of
//! each B leg's answer, bridge and hangup; its `action` gets `DialStatus`
//! (there is no `canceled`: a caller who hangs up while it rings just ends
//! the call).

use std::time::Duration;

use super::kit::Cpaas;
use super::markup::{Element, Grammar, NumberAttr as _, Rule};
use super::{
    Call, Ending, Error, Forwarded, Group, Leg, Next, PARTY, Params, Unanswered, conversation,
    ended, gave_up, param, said, speech,
};
use crate::destination::{Callee, Fate, Kind};

/// What `<Play>` takes (the simulator fetches no audio).
const PLAY: Duration = Duration::from_secs(3);
/// How long a leg that heard `confirmSound` waits for a key before it is
/// hung up.
const CONFIRM_WAIT: Duration = Duration::from_secs(5);

const PROMPTS: &[&str] = &["Speak", "Play", "Wait"];

const RULES: &[Rule] = &[
    Rule {
        name: "Speak",
        attrs: &["voice", "language", "loop"],
        children: &[],
    },
    Rule {
        name: "Play",
        attrs: &["loop"],
        children: &[],
    },
    Rule {
        name: "Wait",
        attrs: &["length", "silence", "minSilence", "beep"],
        children: &[],
    },
    Rule {
        name: "GetInput",
        attrs: &[
            "action",
            "method",
            "inputType",
            "executionTimeout",
            "digitEndTimeout",
            "speechEndTimeout",
            "finishOnKey",
            "numDigits",
            "speechModel",
            "hints",
            "language",
            "interimSpeechResultsCallback",
            "interimSpeechResultsCallbackMethod",
            "log",
            "redirect",
            "profanityFilter",
        ],
        children: PROMPTS,
    },
    Rule {
        name: "GetDigits",
        attrs: &[
            "action",
            "method",
            "timeout",
            "digitTimeout",
            "finishOnKey",
            "numDigits",
            "retries",
            "redirect",
            "playBeep",
            "validDigits",
            "invalidDigitsSound",
            "log",
        ],
        children: PROMPTS,
    },
    Rule {
        name: "Dial",
        attrs: &[
            "action",
            "method",
            "hangupOnStar",
            "timeLimit",
            "timeout",
            "callerId",
            "callerName",
            "confirmSound",
            "confirmKey",
            "dialMusic",
            "callbackUrl",
            "callbackMethod",
            "redirect",
            "digitsMatch",
            "digitsMatchBLeg",
            "sipHeaders",
        ],
        children: &["Number", "User"],
    },
    Rule {
        name: "Number",
        attrs: &["sendDigits", "sendOnPreanswer", "sendDigitsMode"],
        children: &[],
    },
    Rule {
        name: "User",
        attrs: &["sendDigits", "sendOnPreanswer", "sipHeaders"],
        children: &[],
    },
    Rule {
        name: "Record",
        attrs: &[
            "action",
            "method",
            "fileFormat",
            "redirect",
            "timeout",
            "maxLength",
            "playBeep",
            "finishOnKey",
            "recordSession",
            "startOnDialAnswer",
            "transcriptionType",
            "transcriptionUrl",
            "transcriptionMethod",
            "callbackUrl",
            "callbackMethod",
        ],
        children: &[],
    },
    Rule {
        name: "Hangup",
        attrs: &["reason", "schedule"],
        children: &[],
    },
    Rule {
        name: "Redirect",
        attrs: &["method"],
        children: &[],
    },
    Rule {
        name: "PreAnswer",
        attrs: &[],
        children: PROMPTS,
    },
    Rule {
        name: "DTMF",
        attrs: &["async"],
        children: &[],
    },
];

/// Plivo XML for the call itself.
static CALL: Grammar = Grammar {
    provider: "Plivo",
    verbs: &[
        "Speak",
        "Play",
        "Wait",
        "GetInput",
        "GetDigits",
        "Dial",
        "Record",
        "Hangup",
        "Redirect",
        "PreAnswer",
        "DTMF",
    ],
    rules: RULES,
};

/// What a `confirmSound` URL may answer: prompts only.
static CONFIRM_SOUND: Grammar = Grammar {
    provider: "Plivo (in a confirmSound)",
    verbs: PROMPTS,
    rules: RULES,
};

/// A number as Plivo writes it: digits without the `+`.
fn digits(number: &str) -> String {
    Cpaas::Plivo.number(number)
}

/// A new call (or leg) UUID.
fn new_uuid() -> String {
    Cpaas::Plivo.new_call_id()
}

/// The forwarded call (the A leg).
struct Parent {
    uuid: String,
    forwarded: Forwarded,
}

impl Parent {
    fn params(&self, status: &str) -> Params {
        let mut params = vec![
            param("ALegUUID", &self.uuid),
            param("CallStatus", status),
            param("CallUUID", &self.uuid),
            param("Direction", "inbound"),
            param("From", digits(&self.forwarded.from)),
            param("To", digits(&self.forwarded.to)),
        ];
        if let Some(subscriber) = &self.forwarded.forwarded_from {
            params.push(param("ForwardedFrom", digits(subscriber)));
        }
        params
    }

    /// A B leg's own parameters (its `confirmSound` fetch).
    fn leg_params(&self, leg: &Leg) -> Params {
        vec![
            param("ALegUUID", &self.uuid),
            param("CallStatus", "in-progress"),
            param("CallUUID", &leg.id),
            param("Direction", "outbound"),
            param("From", digits(&self.forwarded.from)),
            param("To", &leg.noun.text),
        ]
    }
}

pub(super) async fn run(call: &mut Call<'_>, forwarded: &Forwarded) -> Result<(), Error> {
    let parent = Parent {
        uuid: new_uuid(),
        forwarded: forwarded.clone(),
    };
    let base = call.wire.cpaas.public_base_url;
    let routes = Cpaas::Plivo.routes();
    call.timeline().log(
        PARTY,
        format!(
            "call {} → {}: POST {}",
            forwarded.from, forwarded.to, routes.answer
        ),
    );
    let url = format!("{base}{}", routes.answer);
    let mut params = parent.params("ringing");
    params.push(param("Event", "StartApp"));
    params.extend(forwarded.verification_params(Cpaas::Plivo));
    let document = call.wire.document(&url, &params, &CALL).await?;
    let ending = execute(call, &parent, document, url).await?;
    let (status, cause) = match ending {
        Ending::Completed => ("completed", "NORMAL_CLEARING"),
        Ending::CallerGaveUp => ("cancel", "ORIGINATOR_CANCEL"),
        Ending::Rejected => ("busy", "USER_BUSY"),
        Ending::Unanswered => ("no-answer", "NO_ANSWER"),
    };
    call.timeline()
        .log(PARTY, format!("call ends {status}: POST {}", routes.status));
    let mut params = parent.params(status);
    params.extend([param("Event", "Hangup"), param("HangupCause", cause)]);
    call.wire
        .callback(&format!("{base}{}", routes.status), &params)
        .await
}

/// Runs the call's XML, following Dial actions and redirects, until the
/// call ends.
async fn execute(
    call: &mut Call<'_>,
    parent: &Parent,
    mut document: Element,
    mut url: String,
) -> Result<Ending, Error> {
    // A `<Record startOnDialAnswer>` earlier in the call records the next
    // Dial's bridged leg.
    let mut armed: Option<ArmedRecording> = None;
    'document: loop {
        call.log_document(&document, |dial, noun| noun_party(call, dial, noun));
        for verb in std::mem::take(&mut document.children) {
            let next = match verb.name.as_str() {
                "Speak" => said(call.speak(&verb.text), call),
                "Play" => {
                    call.answered = true;
                    said(call.pass(PLAY), call)
                }
                "Wait" => {
                    call.answered = true;
                    said(
                        call.pass(Duration::from_secs(verb.number("length", 1)?)),
                        call,
                    )
                }
                // Before the answer: the caller hears it, nothing is billed.
                "PreAnswer" => said(call.pass(prompts(&verb)?), call),
                // The caller presses nothing: after the prompt and the
                // timeout, Plivo goes on with the next element.
                "GetInput" | "GetDigits" => {
                    let timeout = match verb.name.as_str() {
                        "GetInput" => verb.number("executionTimeout", 15)?,
                        _ => verb.number("timeout", 5)?,
                    };
                    call.answered = true;
                    said(
                        call.pass(prompts(&verb)? + Duration::from_secs(timeout)),
                        call,
                    )
                }
                "DTMF" => Next::Continue,
                "Dial" => dial(call, parent, &verb, &url, armed.take()).await?,
                "Record" => match ArmedRecording::of(&verb, &url)? {
                    Some(recording) => {
                        armed = Some(recording);
                        Next::Continue
                    }
                    None => record(call, parent, &verb, &url).await?,
                },
                "Redirect" => {
                    let target = call.wire.absolute(&url, &verb.text)?;
                    let document = call
                        .wire
                        .document(&target, &parent.params("in-progress"), &CALL)
                        .await?;
                    Next::Document(document, target)
                }
                "Hangup" => Next::Ended(match verb.attr("reason") {
                    Some("rejected" | "busy") => Ending::Rejected,
                    _ => ended(call),
                }),
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

/// How long the prompts nested in an element take.
fn prompts(verb: &Element) -> Result<Duration, Error> {
    verb.children.iter().try_fold(Duration::ZERO, |total, p| {
        Ok(total
            + match p.name.as_str() {
                "Speak" => speech(&p.text),
                "Play" => PLAY,
                _ => Duration::from_secs(p.number("length", 1)?),
            })
    })
}

fn callee(call: &Call<'_>, noun: &Element) -> Callee {
    let address = noun.text.as_str();
    if noun.name == "Number" {
        return call
            .directory()
            .callee(Kind::Phone, &format!("+{}", digits(address)));
    }
    let sip = call.directory().callee(Kind::Sip, address);
    match Cpaas::Plivo.client_identity(&noun.name, address) {
        Some(identity) if sip.destination_id.is_none() => {
            call.directory().callee(Kind::Client, identity)
        }
        _ => sip,
    }
}

/// Who a noun rings; a Dial's `confirmKey` screens every one of its legs.
fn noun_party(call: &Call<'_>, dial: &Element, noun: &Element) -> String {
    let party = callee(call, noun).party;
    if dial.attr("confirmKey").is_some() {
        format!("{party} (screened)")
    } else {
        party
    }
}

async fn dial(
    call: &mut Call<'_>,
    parent: &Parent,
    dial: &Element,
    url: &str,
    recording: Option<ArmedRecording>,
) -> Result<Next, Error> {
    let nouns = dial
        .children
        .iter()
        .map(|n| (n.clone(), callee(call, n)))
        .collect();
    let timeout = Duration::from_secs(dial.number("timeout", 30)?);
    let confirm = match (dial.attr("confirmKey"), dial.attr("confirmSound")) {
        (Some(key), Some(sound)) => Some((key.to_owned(), call.wire.absolute(url, sound)?)),
        (Some(key), None) => Some((key.to_owned(), String::new())),
        (None, _) => None,
    };
    let callback = dial
        .attr("callbackUrl")
        .map(|c| call.wire.absolute(url, c))
        .transpose()?;
    let group = call.ring(nouns, timeout)?;
    let pick_ups = group.pick_ups();
    let mut declined = Vec::new();
    let mut bridged = None;
    for &(at, index) in &pick_ups {
        if let Some(gone) = call.caller().hangs_up_before(at) {
            return caller_gone(call, &group, &declined, gone);
        }
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
        b_leg_event(call, parent, callback.as_deref(), leg, "answer").await?;
        let Some((key, sound)) = &confirm else {
            bridged = Some(index);
            break;
        };
        if !sound.is_empty() {
            let document = call
                .wire
                .document(sound, &parent.leg_params(leg), &CONFIRM_SOUND)
                .await?;
            call.log_leg_document("confirmSound", leg, &document);
            if !call.pass(prompts(&document)?) {
                return caller_gone(call, &group, &declined, call.timeline().now_ms());
            }
        }
        if leg.callee.presses().is_some_and(|k| k.to_string() == *key) {
            call.timeline()
                .log(&leg.callee.party, format!("presses {key}"));
            bridged = Some(index);
            break;
        }
        if !call.pass(CONFIRM_WAIT) {
            return caller_gone(call, &group, &declined, call.timeline().now_ms());
        }
        call.timeline()
            .log(&leg.callee.party, "presses nothing: hung up");
        declined.push(index);
        b_leg_event(call, parent, callback.as_deref(), leg, "hangup").await?;
        // The others ring on.
    }
    let Some(index) = bridged else {
        let (gives_up_at, unanswered) = group.unanswered(&declined);
        let gives_up_at = gives_up_at.max(call.timeline().now_ms());
        if let Some(gone) = call.caller().hangs_up_before(gives_up_at) {
            return caller_gone(call, &group, &declined, gone);
        }
        call.timeline().advance_to(gives_up_at);
        let (status, cause) = match unanswered {
            Unanswered::Busy => ("busy", "USER_BUSY"),
            Unanswered::Failed => ("failed", "CALL_REJECTED"),
            Unanswered::NoAnswer if group.ringing(&declined).next().is_some() => {
                ("timeout", "NO_ANSWER")
            }
            Unanswered::NoAnswer => ("no-answer", "NO_ANSWER"),
        };
        call.hang_up_others(&group, &declined);
        call.timeline().log(PARTY, format!("Dial ends: {status}"));
        let last = declined.last().map(|&i| group.legs[i].id.as_str());
        return action(call, parent, dial, url, status, cause, last).await;
    };
    let leg = &group.legs[index];
    let mut done = declined.clone();
    done.push(index);
    call.hang_up_others(&group, &done);
    call.answered = true;
    call.end.bridged_to = Some(leg.callee.clone());
    call.timeline()
        .log(PARTY, format!("bridges the caller to {}", leg.callee.party));
    b_leg_event(call, parent, callback.as_deref(), leg, "connected").await?;
    let (talk, caller_hangs_up) = conversation(call);
    call.timeline().advance(talk);
    let who = if caller_hangs_up {
        "caller"
    } else {
        leg.callee.party.as_str()
    };
    call.timeline().log(who, "hangs up");
    b_leg_event(call, parent, callback.as_deref(), leg, "hangup").await?;
    if let Some(recording) = &recording {
        recording_ready(call, parent, leg, recording, talk).await?;
    }
    let next = action(
        call,
        parent,
        dial,
        url,
        "completed",
        "NORMAL_CLEARING",
        Some(&leg.id),
    )
    .await?;
    Ok(if caller_hangs_up {
        Next::Ended(Ending::Completed)
    } else {
        next
    })
}

/// The caller hung up at `at` while the Dial rang.
fn caller_gone(call: &Call<'_>, group: &Group, declined: &[usize], at: u64) -> Result<Next, Error> {
    call.timeline().advance_to(at);
    call.timeline().log("caller", "hangs up");
    call.hang_up_others(group, declined);
    Ok(Next::Ended(gave_up(call)))
}

/// The Dial's `callbackUrl`, on a B leg's `answer`, `connected` or `hangup`.
async fn b_leg_event(
    call: &Call<'_>,
    parent: &Parent,
    callback: Option<&str>,
    leg: &Leg,
    action: &str,
) -> Result<(), Error> {
    let Some(callback) = callback else {
        return Ok(());
    };
    let mut params = parent.params("in-progress");
    params.extend([
        param("DialALegUUID", &parent.uuid),
        param("DialAction", action),
        param("DialBLegStatus", action),
        param("DialBLegTo", &leg.noun.text),
        param("DialBLegUUID", &leg.id),
    ]);
    call.wire.callback(callback, &params).await
}

/// The Dial's `action`, when it has one; with `redirect` (the default) the
/// call goes on with the document it answers.
async fn action(
    call: &Call<'_>,
    parent: &Parent,
    dial: &Element,
    url: &str,
    status: &str,
    cause: &str,
    b_leg: Option<&str>,
) -> Result<Next, Error> {
    let Some(action) = dial.attr("action") else {
        return Ok(Next::Continue);
    };
    let action = call.wire.absolute(url, action)?;
    let mut params = parent.params("in-progress");
    params.extend([
        param("DialALegUUID", &parent.uuid),
        param("DialHangupCause", cause),
        param("DialStatus", status),
    ]);
    if let Some(b_leg) = b_leg {
        params.push(param("DialBLegUUID", b_leg));
    }
    let document = call.wire.document(&action, &params, &CALL).await?;
    Ok(if dial.attr("redirect") == Some("false") {
        Next::Continue
    } else {
        Next::Document(document, action)
    })
}

/// A `<Record startOnDialAnswer="true">`: it records the next Dial from the
/// moment a leg answers, and its `callbackUrl` hears when the file is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArmedRecording {
    /// `callbackUrl`, as written.
    callback: Option<String>,
    /// The URL of the document it was in (a relative `callbackUrl`'s base).
    base: String,
    max: Duration,
}

impl ArmedRecording {
    /// `None` for a `<Record>` that records the caller now (a voicemail).
    pub(super) fn of(verb: &Element, url: &str) -> Result<Option<Self>, Error> {
        if verb.attr("startOnDialAnswer") != Some("true") {
            return Ok(None);
        }
        Ok(Some(Self {
            callback: verb.attr("callbackUrl").map(str::to_owned),
            base: url.to_owned(),
            max: Duration::from_secs(verb.number("maxLength", 60)?),
        }))
    }
}

/// The bridged leg ended: the recording (up to `maxLength`) is ready.
async fn recording_ready(
    call: &Call<'_>,
    parent: &Parent,
    leg: &Leg,
    recording: &ArmedRecording,
    talk: Duration,
) -> Result<(), Error> {
    let length = talk.min(recording.max);
    let Some(callback) = &recording.callback else {
        call.timeline().log(
            PARTY,
            format!(
                "recorded the call with {} ({} s); no callbackUrl to tell",
                leg.callee.party,
                length.as_secs()
            ),
        );
        return Ok(());
    };
    let callback = call.wire.absolute(&recording.base, callback)?;
    call.timeline().log(
        PARTY,
        format!(
            "recording of the call with {} ready ({} s): POST {}",
            leg.callee.party,
            length.as_secs(),
            super::route(&callback)
        ),
    );
    let params = recording_params(parent, &new_uuid(), length);
    call.wire.callback(&callback, &params).await
}

/// The `callbackUrl` parameters of a finished recording.
fn recording_params(parent: &Parent, id: &str, length: Duration) -> Params {
    vec![
        param("CallUUID", &parent.uuid),
        param("From", digits(&parent.forwarded.from)),
        param("RecordUrl", record_url(id)),
        param("RecordingDuration", length.as_secs().to_string()),
        param("RecordingDurationMs", length.as_millis().to_string()),
        param("RecordingID", id),
        param("To", digits(&parent.forwarded.to)),
    ]
}

fn record_url(id: &str) -> String {
    format!("https://media.plivo.com/v1/Account/MA00000000000000000000/Recording/{id}.mp3")
}

/// A `<Record>`: the caller leaves a message (or hangs up at the beep);
/// either way the call is over afterwards.
async fn record(
    call: &mut Call<'_>,
    parent: &Parent,
    verb: &Element,
    url: &str,
) -> Result<Next, Error> {
    let max = Duration::from_secs(verb.number("maxLength", 60)?);
    let Some(length) = call.leave_message(max) else {
        return Ok(Next::Ended(Ending::Completed));
    };
    call.end.recorded = true;
    let id = new_uuid();
    let action = match verb.attr("action") {
        Some(action) => call.wire.absolute(url, action)?,
        None => url.to_owned(),
    };
    let mut params = parent.params("in-progress");
    params.extend([
        param("RecordUrl", record_url(&id)),
        param("RecordingDuration", length.as_secs().to_string()),
        param("RecordingDurationMs", length.as_millis().to_string()),
        param("RecordingID", &id),
    ]);
    // Posted and checked; the caller has hung up, so nothing of it runs.
    let document = call.wire.document(&action, &params, &CALL).await?;
    call.log_document(&document, |_, noun| noun.text.clone());
    call.transcribe(verb, url, &parent.uuid, &record_url(&id), length)
        .await?;
    Ok(Next::Ended(Ending::Completed))
}

#[cfg(test)]
mod tests {
    use super::super::markup;
    use super::*;

    const RECORDED: &str = r#"<Response><Record startOnDialAnswer="true" redirect="false" maxLength="14400" callbackUrl="/plivo/recording?s=1"/><Dial action="/plivo/dial-status" timeout="20"><Number>12025550201</Number></Dial></Response>"#;

    #[test]
    fn plivo_accepts_a_recording_before_the_dial_and_a_busy_hangup() {
        for document in [RECORDED, r#"<Response><Hangup reason="busy"/></Response>"#] {
            let root = markup::read(document).unwrap();
            CALL.check(&root)
                .unwrap_or_else(|e| panic!("{document}: {e}"));
        }
    }

    #[test]
    fn a_record_on_dial_answer_is_armed_and_a_voicemail_record_is_not() {
        let root = markup::read(RECORDED).unwrap();
        let armed = ArmedRecording::of(&root.children[0], "https://rr.example/plivo/answer")
            .unwrap()
            .unwrap();
        assert_eq!(
            armed,
            ArmedRecording {
                callback: Some("/plivo/recording?s=1".into()),
                base: "https://rr.example/plivo/answer".into(),
                max: Duration::from_secs(14_400),
            }
        );
        let voicemail = markup::read(
            r#"<Response><Record action="/plivo/voicemail" maxLength="120"/></Response>"#,
        )
        .unwrap();
        assert_eq!(
            ArmedRecording::of(&voicemail.children[0], "").unwrap(),
            None
        );
    }

    #[test]
    fn the_recording_callback_has_plivos_parameters() {
        let parent = Parent {
            uuid: "a-leg".into(),
            forwarded: Forwarded {
                from: "+12025550302".into(),
                to: "+12025550100".into(),
                forwarded_from: None,
                verification: None,
            },
        };
        let params = recording_params(&parent, "rec-1", Duration::from_secs(30));
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("CallUUID"), Some("a-leg"));
        assert_eq!(get("RecordingID"), Some("rec-1"));
        assert_eq!(get("RecordingDuration"), Some("30"));
        assert_eq!(get("RecordingDurationMs"), Some("30000"));
        assert!(get("RecordUrl").unwrap().ends_with("/Recording/rec-1.mp3"));
    }
}
