//! The CPaaS side of a call. [`kit`] is what each provider says on the wire
//! (routes, parameters, signatures, the words of its markup), shared with
//! the server's black-box tests, and [`markup`] reads markup as a provider
//! does. The rest is the simulated CPaaS: it takes the forwarded call, signs
//! every request to the service exactly as the provider does, and executes
//! the markup it gets back with the provider's semantics, on a virtual
//! clock. What every provider shares is here (the wire, the ringing of a
//! Dial's nouns, the caller's side of a greeting); each provider's own
//! semantics are in its file: Plivo's, and the TwiML family's (Twilio,
//! Telnyx, SignalWire), which differ in a flavour.

pub mod kit;
pub mod markup;
mod plivo;
mod twiml;

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};

use self::kit::Cpaas;
use self::markup::{Element, Grammar};
use super::Error;
use super::caller::Caller;
use super::destination::{Callee, Directory, Fate};
use super::scenario::Verification;
use super::timeline::Timeline;
use ringrelay_server::domain::rules::Decision;

const PARTY: &str = "cpaas";

/// How long a bridged call lasts when nobody hangs up sooner.
const CONVERSATION: Duration = Duration::from_secs(30);
/// How long busy and failing legs take to say so.
const QUICK_FAILURE: Duration = Duration::from_secs(1);
/// Text-to-speech pace.
const CHARS_PER_SECOND: usize = 15;

/// What every simulated voicemail says, as the provider transcribes it.
const TRANSCRIPT: &str = "Hi, it's the caller. Please call me back when you can.";
/// The longest voicemail Twilio transcribes.
const TWILIO_LONGEST_TRANSCRIPTION: Duration = Duration::from_secs(120);

/// The call the carrier forwards to the forwarding number.
#[derive(Debug, Clone)]
pub(crate) struct Forwarded {
    /// The caller, E.164 or a withheld marker.
    pub from: String,
    /// The forwarding number, E.164.
    pub to: String,
    /// The subscriber, when the carrier says so.
    pub forwarded_from: Option<String>,
    /// The STIR/SHAKEN verdict on the caller, when there is one.
    pub verification: Option<Verification>,
}

impl Forwarded {
    /// The parameters of `cpaas`'s voice webhook saying the verdict.
    fn verification_params(&self, cpaas: Cpaas) -> Params {
        self.verification
            .map(|verdict| cpaas.verification_params(verdict.as_str()))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| param(name, value))
            .collect()
    }
}

/// What the call did, in no provider's words.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallEnd {
    /// Who the caller was bridged to (the last one, if several).
    pub bridged_to: Option<Callee>,
    /// Whether a voicemail was recorded.
    pub recorded: bool,
    /// Whether the provider posted the voicemail's transcription.
    pub transcribed: bool,
}

/// How the forwarded call itself ended, for its final status callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// It was answered (bridged, or the markup spoke or recorded), then
    /// ended.
    Completed,
    /// The caller hung up before anything answered it.
    CallerGaveUp,
    /// The markup rejected it.
    Rejected,
    /// It ended without ever being answered.
    Unanswered,
}

/// Everything a provider needs to run one call.
pub(crate) struct CallSetup<'a> {
    pub client: &'a reqwest::Client,
    /// Where requests are sent.
    pub service_url: &'a str,
    /// What URLs are signed as (the service's `PUBLIC_BASE_URL`).
    pub public_base_url: &'a str,
    pub auth_token: &'a SecretString,
    pub timeline: &'a Timeline,
    pub directory: &'a Directory,
    pub caller: &'a Caller,
    /// What the rules decided for the call: no destination it skips may be
    /// dialed.
    pub decision: &'a Decision,
}

/// The markup documents the service answered, in order.
pub(crate) type Documents = Vec<String>;

/// Runs the forwarded call on `provider` until it ends.
pub(crate) async fn run(
    provider: Cpaas,
    setup: CallSetup<'_>,
    forwarded: Forwarded,
) -> Result<(CallEnd, Documents), Error> {
    let flavour = match provider {
        Cpaas::Twilio => Some(&twiml::TWILIO),
        Cpaas::Telnyx => Some(&twiml::TELNYX),
        Cpaas::SignalWire => Some(&twiml::SIGNALWIRE),
        Cpaas::Plivo => None,
    };
    let token = setup.auth_token.expose_secret();
    let secret = match provider {
        // The base64 seed of its key pair: a seed that is not base64 signs
        // nothing, and the service refuses it, as it should.
        Cpaas::Telnyx => base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap_or_default(),
        Cpaas::Twilio | Cpaas::Plivo | Cpaas::SignalWire => token.as_bytes().to_vec(),
    };
    let wire = Wire {
        cpaas: &setup,
        provider,
        secret,
        documents: Mutex::default(),
    };
    let mut call = Call {
        wire: &wire,
        answered: false,
        end: CallEnd::default(),
    };
    match flavour {
        Some(flavour) => twiml::run(&mut call, &forwarded, flavour).await?,
        None => plivo::run(&mut call, &forwarded).await?,
    }
    let end = call.end;
    let documents = wire.documents.into_inner().expect("documents lock");
    Ok((end, documents))
}

/// Form parameters, in order.
type Params = Vec<(String, String)>;

fn param(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// Requests to the service, signed as the provider signs them, and the
/// checks of what comes back.
struct Wire<'a> {
    cpaas: &'a CallSetup<'a>,
    provider: Cpaas,
    /// What the provider signs with ([`Cpaas::sign`]).
    secret: Vec<u8>,
    documents: Mutex<Documents>,
}

impl Wire<'_> {
    /// The absolute URL the provider requests for `url` as written in a
    /// document fetched from `base` (relative URLs resolve against it).
    fn absolute(&self, base: &str, url: &str) -> Result<String, Error> {
        let joined = url::Url::parse(base)
            .and_then(|b| b.join(url))
            .map_err(|e| Error::broken(format!("the markup's URL {url:?} is not valid: {e}")))?;
        // `Url` would normalise an absolute URL's spelling (and so change
        // what is signed): keep it as written unless it had to be joined.
        Ok(if url::Url::parse(url).is_ok() {
            url.to_owned()
        } else {
            joined.into()
        })
    }

    async fn post(&self, url: &str, params: &Params) -> Result<reqwest::Response, Error> {
        let path = url
            .strip_prefix(self.cpaas.public_base_url)
            .filter(|p| p.is_empty() || p.starts_with('/'))
            .ok_or_else(|| {
                Error::broken(format!(
                    "the markup points at {url}, outside the service's PUBLIC_BASE_URL {}",
                    self.cpaas.public_base_url
                ))
            })?;
        // What is signed is exactly what is sent.
        let body = kit::form_body(params);
        let signature = self.provider.sign(&self.secret, url, params);
        let mut request = self
            .cpaas
            .client
            .post(format!(
                "{}{path}",
                self.cpaas.service_url.trim_end_matches('/')
            ))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        for (name, value) in signature {
            request = request.header(name, value);
        }
        Ok(request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?)
    }

    /// Fetches a document: 200 with markup that `grammar` accepts.
    async fn document(
        &self,
        url: &str,
        params: &Params,
        grammar: &Grammar,
    ) -> Result<Element, Error> {
        let response = self.post(url, params).await?;
        let route = route(url);
        if response.status() != StatusCode::OK {
            return Err(Error::broken(format!(
                "POST {route} answered {}: a CPaaS request needs 200 with markup",
                response.status()
            )));
        }
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the answer to {route}"))?;
        self.documents
            .lock()
            .expect("documents lock")
            .push(text.clone());
        let root = markup::read(&text)
            .and_then(|root| grammar.check(&root).map(|()| root))
            .map_err(|e| Error::broken(format!("POST {route} answered invalid markup: {e}")))?;
        Ok(root)
    }

    /// Posts a status callback, whose answer is not markup: 200 or 204.
    async fn callback(&self, url: &str, params: &Params) -> Result<(), Error> {
        let response = self.post(url, params).await?;
        match response.status() {
            StatusCode::OK | StatusCode::NO_CONTENT => Ok(()),
            other => Err(Error::broken(format!(
                "POST {} answered {other} to a status callback",
                route(url)
            ))),
        }
    }
}

/// The path of an absolute URL, without its query, for messages.
fn route(url: &str) -> String {
    url::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.path().to_owned())
}

/// The state of one forwarded call while a provider runs it.
struct Call<'a> {
    wire: &'a Wire<'a>,
    /// Whether anything answered the call yet (it is billed from then).
    answered: bool,
    end: CallEnd,
}

impl Call<'_> {
    fn timeline(&self) -> &Timeline {
        self.wire.cpaas.timeline
    }

    fn caller(&self) -> &Caller {
        self.wire.cpaas.caller
    }

    fn directory(&self) -> &Directory {
        self.wire.cpaas.directory
    }

    /// Lets `duration` pass on the call; false when the caller hung up
    /// meanwhile (the clock then stops there).
    fn pass(&self, duration: Duration) -> bool {
        let until = self.timeline().now_ms() + millis(duration);
        match self.caller().hangs_up_before(until) {
            Some(at) => {
                self.timeline().advance_to(at);
                self.timeline().log("caller", "hangs up");
                false
            }
            None => {
                self.timeline().advance_to(until);
                true
            }
        }
    }

    /// Speaks `text` to the caller (answering the call); false when they
    /// hang up meanwhile.
    fn speak(&mut self, text: &str) -> bool {
        self.answered = true;
        self.pass(speech(text))
    }

    /// The caller's turn at a recording's beep: the message they leave.
    fn leave_message(&mut self, max: Duration) -> Option<Duration> {
        self.answered = true;
        let message = self.caller().message(self.timeline().now_ms(), max);
        match message {
            Some(length) => {
                self.timeline().log(
                    "caller",
                    format!("leaves a {} s message, hangs up", length.as_secs()),
                );
                self.timeline().advance(length);
            }
            None => self.timeline().log("caller", "hangs up at the beep"),
        }
        message
    }

    /// The voicemail `<Record>` `verb` (fetched from `url`) asked for a
    /// transcription: once the message of `length` is recorded, the
    /// provider posts it, signed, to the callback (Twilio transcribes
    /// nothing longer than two minutes: a failed one).
    async fn transcribe(
        &mut self,
        verb: &Element,
        url: &str,
        call_id: &str,
        recording_url: &str,
        length: Duration,
    ) -> Result<(), Error> {
        let provider = self.wire.provider;
        let Some(callback) = provider.transcription_callback(verb) else {
            return Ok(());
        };
        let callback = self.wire.absolute(url, callback)?;
        let text = (provider != Cpaas::Twilio || length <= TWILIO_LONGEST_TRANSCRIPTION)
            .then_some(TRANSCRIPT);
        self.timeline().log(
            PARTY,
            format!(
                "transcription of the voicemail {}: POST {}",
                if text.is_some() { "ready" } else { "failed" },
                route(&callback)
            ),
        );
        let params = provider.transcription_params(call_id, recording_url, text);
        self.wire.callback(&callback, &params).await?;
        self.end.transcribed = true;
        Ok(())
    }

    /// Starts ringing every noun of a Dial at once: only destinations the
    /// rules let ring.
    fn ring(&self, nouns: Vec<(Element, Callee)>, timeout: Duration) -> Result<Group, Error> {
        for (_, callee) in &nouns {
            if let Some(id) = &callee.destination_id {
                super::rules::check_dialed(self.wire.cpaas.decision, id)?;
            }
        }
        let started_ms = self.timeline().now_ms();
        let legs: Vec<Leg> = nouns
            .into_iter()
            .map(|(noun, callee)| Leg {
                fate: callee.fate(),
                noun,
                callee,
                id: self.wire.provider.new_call_id(),
            })
            .collect();
        for leg in &legs {
            let event = match leg.fate {
                Fate::Busy => "rings: busy",
                Fate::Fails => "rings: the call fails",
                Fate::Unreachable => "is not there: no-answer at once",
                Fate::PicksUp { .. } | Fate::RingsOn => "rings",
            };
            self.timeline().log(&leg.callee.party, event);
        }
        Ok(Group {
            legs,
            started_ms,
            deadline_ms: started_ms + millis(timeout),
        })
    }

    /// Ends the legs still ringing (all but `except`).
    fn hang_up_others(&self, group: &Group, except: &[usize]) {
        let others: Vec<&str> = group
            .ringing(except)
            .map(|leg| leg.callee.party.as_str())
            .collect();
        if !others.is_empty() {
            self.timeline()
                .log(PARTY, format!("hangs up {}", others.join(", ")));
        }
    }

    /// Logs the gist of a document the service answered.
    fn log_document(&self, document: &Element, noun_party: impl Fn(&Element, &Element) -> String) {
        self.timeline().log("service", gist(document, noun_party));
    }

    /// Logs the gist of a document the service answered for a dialed leg
    /// (`what`: "whisper", "confirmSound").
    fn log_leg_document(&self, what: &str, leg: &Leg, document: &Element) {
        self.timeline().log(
            "service",
            format!(
                "{what} to {}: {}",
                leg.callee.party,
                gist(document, |_, noun| noun.text.clone())
            ),
        );
    }
}

/// What to do once a verb has run.
enum Next {
    /// Go on with the next verb.
    Continue,
    /// Run this document, fetched from this URL.
    Document(Element, String),
    Ended(Ending),
}

/// After a verb the caller listened to: on, or the call ended by them.
fn said(caller_stayed: bool, call: &Call<'_>) -> Next {
    if caller_stayed {
        Next::Continue
    } else {
        Next::Ended(gave_up(call))
    }
}

fn ended(call: &Call<'_>) -> Ending {
    if call.answered {
        Ending::Completed
    } else {
        Ending::Unanswered
    }
}

fn gave_up(call: &Call<'_>) -> Ending {
    if call.answered {
        Ending::Completed
    } else {
        Ending::CallerGaveUp
    }
}

/// One dialed noun.
struct Leg {
    noun: Element,
    callee: Callee,
    fate: Fate,
    /// The provider's id of this leg (child CallSid, B-leg UUID).
    id: String,
}

/// The nouns of one Dial, ringing together.
struct Group {
    legs: Vec<Leg>,
    started_ms: u64,
    deadline_ms: u64,
}

/// Why nobody took a Dial, in no provider's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unanswered {
    Busy,
    Failed,
    NoAnswer,
}

impl Group {
    /// The legs that pick up before the timeout, as (when, leg index), in
    /// order.
    fn pick_ups(&self) -> Vec<(u64, usize)> {
        let mut pick_ups: Vec<(u64, usize)> = self
            .legs
            .iter()
            .enumerate()
            .filter_map(|(i, leg)| match leg.fate {
                Fate::PicksUp { after, .. } => Some((self.started_ms + millis(after), i)),
                _ => None,
            })
            .filter(|&(at, _)| at < self.deadline_ms)
            .collect();
        pick_ups.sort_unstable();
        pick_ups
    }

    /// Legs that would ring on, other than `except`.
    fn ringing<'g>(&'g self, except: &'g [usize]) -> impl Iterator<Item = &'g Leg> {
        self.legs
            .iter()
            .enumerate()
            .filter(move |(i, leg)| {
                !except.contains(i) && matches!(leg.fate, Fate::PicksUp { .. } | Fate::RingsOn)
            })
            .map(|(_, leg)| leg)
    }

    /// When the Dial gives up with nobody bridged, and why.
    fn unanswered(&self, picked_up: &[usize]) -> (u64, Unanswered) {
        if self.ringing(picked_up).next().is_some() {
            return (self.deadline_ms, Unanswered::NoAnswer);
        }
        let quickly = self.started_ms + millis(QUICK_FAILURE);
        let fates = || self.legs.iter().map(|leg| leg.fate);
        if fates().all(|f| f == Fate::Fails) {
            (quickly, Unanswered::Failed)
        } else if fates().all(|f| matches!(f, Fate::Busy | Fate::Fails)) {
            (quickly, Unanswered::Busy)
        } else {
            (quickly, Unanswered::NoAnswer)
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How long speaking `text` takes.
fn speech(text: &str) -> Duration {
    Duration::from_secs((text.chars().count() / CHARS_PER_SECOND).max(1) as u64)
}

/// How long the conversation of a bridged call lasts: until the caller
/// hangs up, or [`CONVERSATION`].
fn conversation(call: &Call<'_>) -> (Duration, bool) {
    let now = call.timeline().now_ms();
    match call.caller().hangs_up_before(now + millis(CONVERSATION)) {
        Some(at) => (Duration::from_millis(at - now), true),
        None => (CONVERSATION, false),
    }
}

/// One line saying what a document does: `Dial desk, laptop together,
/// timeout 20 s`, `Record voicemail, max 120 s`, `Hangup`. `noun_party`
/// names who a Dial's noun rings (with " (screened)" where it is).
fn gist(document: &Element, noun_party: impl Fn(&Element, &Element) -> String) -> String {
    if document.children.is_empty() {
        return "<Response/> (nothing more)".into();
    }
    let verbs: Vec<String> = document
        .children
        .iter()
        .map(|verb| match verb.name.as_str() {
            "Say" | "Speak" => format!("{} \"{}\"", verb.name, abbreviated(&verb.text)),
            "Dial" => {
                let nouns: Vec<String> = verb
                    .children
                    .iter()
                    .map(|noun| noun_party(verb, noun))
                    .collect();
                let together = if nouns.len() > 1 { " together" } else { "" };
                let timeout = verb
                    .attr("timeout")
                    .map(|t| format!(", timeout {t} s"))
                    .unwrap_or_default();
                let recorded = match verb.attr("record") {
                    None | Some("do-not-record" | "false") => "",
                    Some(_) => ", recorded",
                };
                let ring_tone = verb
                    .attr("ringTone")
                    .map(|t| format!(", ring tone {t}"))
                    .unwrap_or_default();
                format!(
                    "Dial {}{together}{timeout}{recorded}{ring_tone}",
                    nouns.join(", ")
                )
            }
            "Record" if verb.attr("startOnDialAnswer") == Some("true") => {
                "Record the dialed call from answer".to_owned()
            }
            "Record" => format!(
                "Record voicemail, max {} s",
                verb.attr("maxLength").unwrap_or("?")
            ),
            "Gather" | "GetInput" => {
                let prompt = verb.children.first().map(|p| abbreviated(&p.text));
                format!("Ask for a key: \"{}\"", prompt.unwrap_or_default())
            }
            "Reject" => format!("Reject ({})", verb.attr("reason").unwrap_or("rejected")),
            "Hangup" => match verb.attr("reason") {
                Some(reason) => format!("Hangup ({reason})"),
                None => "Hangup".to_owned(),
            },
            "Pause" | "Wait" => format!("Pause {} s", verb.attr("length").unwrap_or("1")),
            other => other.to_owned(),
        })
        .collect();
    verbs.join("; ")
}

fn abbreviated(text: &str) -> String {
    const SHOWN: usize = 48;
    if text.chars().count() <= SHOWN {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(SHOWN).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Answer, Behaviour};

    fn group(answers: &[Answer]) -> Group {
        let legs = answers
            .iter()
            .enumerate()
            .map(|(i, &answer)| {
                let callee = Callee {
                    party: format!("d{i}"),
                    destination_id: Some(format!("d{i}")),
                    screened: false,
                    behaviour: Behaviour {
                        answer,
                        ..Behaviour::default()
                    },
                };
                Leg {
                    noun: markup::read("<Response/>").unwrap(),
                    fate: callee.fate(),
                    callee,
                    id: i.to_string(),
                }
            })
            .collect();
        Group {
            legs,
            started_ms: 1_000,
            deadline_ms: 21_000,
        }
    }

    #[test]
    fn pick_ups_come_in_time_order_and_only_before_the_timeout() {
        let group = group(&[
            Answer::After(8),
            Answer::Voicemail,
            Answer::After(30),
            Answer::Busy,
        ]);
        assert_eq!(group.pick_ups(), [(6_000, 1), (9_000, 0)]);
    }

    #[test]
    fn a_dial_nobody_takes_ends_as_its_legs_say() {
        let cases: &[(&[Answer], (u64, Unanswered))] = &[
            (&[Answer::Busy, Answer::Busy], (2_000, Unanswered::Busy)),
            (&[Answer::Fails, Answer::Fails], (2_000, Unanswered::Failed)),
            (&[Answer::Busy, Answer::Fails], (2_000, Unanswered::Busy)),
            (
                &[Answer::Busy, Answer::NoAnswer],
                (21_000, Unanswered::NoAnswer),
            ),
        ];
        for (answers, expected) in cases {
            assert_eq!(group(answers).unanswered(&[]), *expected, "{answers:?}");
        }
    }

    #[test]
    fn the_gist_names_who_is_dialed_and_what_is_recorded() {
        let document = markup::read(
            r#"<Response><Say>The person you are calling is not available right now, sorry.</Say><Dial timeout="20"><Number>a</Number><Client>b</Client></Dial><Record maxLength="120"/><Hangup/></Response>"#,
        )
        .unwrap();
        assert_eq!(
            gist(&document, |_, noun| noun.text.clone()),
            "Say \"The person you are calling is not available righ…\"; \
             Dial a, b together, timeout 20 s; Record voicemail, max 120 s; Hangup"
        );
    }

    #[test]
    fn the_gist_says_what_is_recorded_the_ring_tone_and_a_busy_end() {
        let twiml = markup::read(
            r#"<Response><Dial timeout="20" record="record-from-answer-dual" recordingStatusCallback="/twilio/recording" recordingStatusCallbackEvent="completed" ringTone="uk"><Number>a</Number></Dial><Reject reason="busy"/></Response>"#,
        )
        .unwrap();
        assert_eq!(
            gist(&twiml, |_, noun| noun.text.clone()),
            "Dial a, timeout 20 s, recorded, ring tone uk; Reject (busy)"
        );
        let plivo = markup::read(
            r#"<Response><Record startOnDialAnswer="true" redirect="false" maxLength="14400" callbackUrl="/plivo/recording"/><Dial timeout="20"><Number>a</Number></Dial><Hangup reason="busy"/></Response>"#,
        )
        .unwrap();
        assert_eq!(
            gist(&plivo, |_, noun| noun.text.clone()),
            "Record the dialed call from answer; Dial a, timeout 20 s; Hangup (busy)"
        );
    }
}
