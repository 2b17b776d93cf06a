//! Fuzz targets (issue 12, item 6; FUZZING.md says how to run them). Each
//! `pub fn` here is one target of the AFL harness in `fuzz/`: it hands the
//! bytes it is given to one path that reads untrusted input, and panics when
//! an invariant breaks. They live in the library behind the `fuzzing` feature
//! (which the harness turns on) and in its test build, so that CI keeps them
//! building and `cargo test` runs them over the seed corpora; the harness is a
//! crate of its own that neither CI nor `cargo test` builds.
//!
//! The invariants are those the property tests check in CI
//! (`providers::properties`, `flow::callback`, `http::json`); the fuzzer
//! explores the same code guided by coverage rather than by a strategy.

use actix_web::ResponseError as _;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use crate::domain::phone::{PhoneNumber, Region};
use crate::domain::rules::RingTone;
use crate::domain::subscriber::{ClientIdentity, SipUri, SpecRules, SubscriberSpec, Target};
use crate::domain::webhook_target::TargetPolicy;
use crate::flow::CallbackQuery;
use crate::flow::model::{CallScript, Dial, DialTarget, Step};
use crate::http::json::parse_json_body;
use crate::providers::parsed_markup::{self, Element};
use crate::providers::plivo::{self, Plivo};
use crate::providers::twilio::{self, Twilio};
use crate::providers::{Params, Provider, ProviderVars, SignatureError, WebhookRequest, twiml};

/// A fuzz target: takes any bytes, panics when an invariant breaks.
pub type FuzzTarget = fn(&[u8]);

/// Every target, named as its harness binary (`fuzz/src/bin/<name>.rs`) and
/// its seed folder (`fuzz/seeds/<name>/`).
pub const TARGETS: &[(&str, FuzzTarget)] = &[
    ("twilio_webhook", twilio_webhook),
    ("plivo_webhook", plivo_webhook),
    ("telnyx_webhook", telnyx_webhook),
    ("subscriber_json", subscriber_json),
    ("callback_query", callback_query),
    ("twiml_render", twiml_render),
    ("plivo_xml_render", plivo_xml_render),
];

/// The auth token the webhook targets sign and check with; the signed seeds
/// are signed with it.
const AUTH_TOKEN: &[u8] = b"fuzzing-auth-token";

/// The header Plivo sends the V3 signature's nonce in (next to
/// [`Plivo::SIGNATURE_HEADERS[0]`]).
const PLIVO_NONCE_HEADER: &str = "x-plivo-signature-v3-nonce";

/// `P`'s check of a POST to `url` with `headers` and `body`, its credential
/// being [`AUTH_TOKEN`]: the parameters it read, or why it refused.
fn verified<P: Provider>(
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, SignatureError> {
    let mut vars = ProviderVars::default();
    vars.insert(
        P::VARIABLES[0],
        String::from_utf8(AUTH_TOKEN.to_vec()).expect("the token is text"),
    );
    let config = P::configure(&vars)
        .expect("a token is any text")
        .expect("the credential is set");
    let request = WebhookRequest {
        url,
        headers,
        body,
        received_at: crate::domain::time::Timestamp::now(),
    };
    P::verify(&config, &request).map(|verified| verified.params)
}

/// Builds, before the fuzz loop, what the targets' code otherwise builds on
/// first use: the `phonenumber` crate's metadata and regexes. Without it, the
/// first execution in each process AFL++ forks takes paths that later ones
/// do not, which AFL++ counts as instability and which wastes its effort
/// (FUZZING.md has the figures).
pub fn warm_up() {
    // Numbers in each form the inputs carry them: E.164, national, Plivo's
    // digits without `+`, another region's, and not a number at all.
    for raw in [
        "+12025550302",
        "2025550201",
        "(202) 555-0100",
        "12025550100",
        "+44 20 7946 0018",
        "442079460018",
        "+1",
        "anonymous",
        "",
    ] {
        std::hint::black_box(PhoneNumber::parse(raw, Region::default()).ok());
    }
}

/// A Twilio webhook, written as `URL \n X-Twilio-Signature \n form body`.
///
/// The form reads back the same (see [`read_form`]), every field the routes
/// read is read without a panic, and the signature check accepts exactly
/// what was signed with the auth token: it accepts the genuine signature of
/// a form, and a signature it accepts is the token's for the URL as given or
/// with its default port toggled (which Twilio's libraries accept too), over
/// the form, or, for a JSON body (`bodySHA256=` in the URL), over no
/// parameters with the body's hash in the query.
pub fn twilio_webhook(data: &[u8]) {
    let [url, signature, body] = webhook_request(data);
    let url = String::from_utf8_lossy(url);
    let params = read_form(body);
    read_every_field::<Twilio>(&params);

    let json_body = url.contains("bodySHA256=");
    let headers = request_headers(&[(Twilio::SIGNATURE_HEADERS[0], signature)]);
    if verified::<Twilio>(&url, &headers, body).is_ok() {
        let given = header_text(&headers, Twilio::SIGNATURE_HEADERS[0])
            .expect("an accepted request has a signature")
            .trim();
        let signed_params = if json_body { &[][..] } else { params.pairs() };
        let signed_with_the_token = std::iter::once(url.to_string())
            .chain(twilio::signature::default_port_variant(&url))
            .any(|signed_url| {
                twilio::signature::sign(AUTH_TOKEN, &signed_url, signed_params) == given
            });
        assert!(
            signed_with_the_token,
            "accepted {given:?}, not the token's signature of {url:?} and {signed_params:?}"
        );
        assert!(
            !json_body || query_has_body_hash(&url, body),
            "accepted a JSON body whose hash {url:?} does not carry"
        );
    }
    if !json_body {
        let genuine = twilio::signature::sign(AUTH_TOKEN, &url, params.pairs());
        let headers = request_headers(&[(Twilio::SIGNATURE_HEADERS[0], genuine.as_bytes())]);
        assert!(
            verified::<Twilio>(&url, &headers, body).is_ok(),
            "refused the genuine signature of {url:?} and {params:?}"
        );
    }
}

/// The seed of the key pair the Telnyx target signs and checks with (the
/// signed seeds are signed with it), and the time it checks at.
const TELNYX_SEED: [u8; 32] = [7; 32];
const TELNYX_NOW_SECS: i64 = 1_700_000_000;

/// A Telnyx webhook, written as `telnyx-timestamp \n
/// telnyx-signature-ed25519 \n raw body`.
///
/// The form reads back the same, every field is read without a panic, and
/// the Ed25519 check accepts exactly what the key signed, in time: an
/// accepted request carries the one signature of `timestamp|body` (Ed25519
/// signs deterministically, and the strict check refuses malleated ones)
/// and a timestamp within 300 s of now; the genuine signature of a timely
/// request is accepted.
pub fn telnyx_webhook(data: &[u8]) {
    use crate::providers::telnyx::{Telnyx, signature as telnyx};
    let [timestamp, signature, body] = webhook_request(data);
    let params = read_form(body);
    read_every_field::<Telnyx>(&params);
    let key = ed25519_dalek::SigningKey::from_bytes(&TELNYX_SEED);
    let now = crate::domain::time::Timestamp::from_unix_millis(TELNYX_NOW_SECS * 1000)
        .expect("a valid time");
    let text = |raw: &[u8]| std::str::from_utf8(raw).ok().map(str::to_owned);
    let (timestamp, signature) = (text(timestamp), text(signature));
    let checked = telnyx::verify(
        &key.verifying_key(),
        timestamp.as_deref(),
        signature.as_deref(),
        body,
        now,
    );
    let timely = |t: &str| {
        t.trim()
            .parse::<i64>()
            .is_ok_and(|t| (TELNYX_NOW_SECS - t).abs() <= telnyx::TOLERANCE_SECS)
    };
    if checked.is_ok() {
        let timestamp = timestamp
            .as_deref()
            .expect("accepted with a timestamp")
            .trim();
        assert!(
            timely(timestamp),
            "accepted the stale timestamp {timestamp:?}"
        );
        assert_eq!(
            signature.as_deref().map(str::trim),
            Some(telnyx::sign(&key, timestamp, body).as_str()),
            "accepted a signature the key did not make"
        );
    }
    if let Some(timestamp) = timestamp
        .as_deref()
        .map(str::trim)
        .filter(|t| timely(t) && !t.is_empty())
    {
        let genuine = telnyx::sign(&key, timestamp, body);
        assert_eq!(
            telnyx::verify(
                &key.verifying_key(),
                Some(timestamp),
                Some(&genuine),
                body,
                now
            ),
            Ok(()),
            "refused the genuine signature of {timestamp:?}"
        );
    }
}

/// A Plivo webhook, written as `URL \n X-Plivo-Signature-V3-Nonce \n
/// X-Plivo-Signature-V3 \n form body`.
///
/// The form reads back the same, every field is read without a panic, and
/// the V3 check accepts exactly what was signed with the auth token: the
/// genuine signature under any nonce is accepted, and an accepted header
/// holds, among its comma-separated signatures, the token's signature of the
/// URL, the form and the nonce.
pub fn plivo_webhook(data: &[u8]) {
    let [url, nonce, signatures, body] = webhook_request(data);
    let url = String::from_utf8_lossy(url);
    let params = read_form(body);
    read_every_field::<Plivo>(&params);

    let sign = |nonce: &str| {
        plivo::signature::sign_v3(
            AUTH_TOKEN,
            plivo::signature::Method::Post,
            &url,
            params.pairs(),
            nonce,
        )
    };
    let headers = request_headers(&[
        (PLIVO_NONCE_HEADER, nonce),
        (Plivo::SIGNATURE_HEADERS[0], signatures),
    ]);
    let nonce = header_text(&headers, PLIVO_NONCE_HEADER)
        .map(str::trim)
        .filter(|nonce| !nonce.is_empty());
    if verified::<Plivo>(&url, &headers, body).is_ok() {
        let nonce = nonce.expect("an accepted request has a nonce");
        let genuine = sign(nonce);
        let signatures = header_text(&headers, Plivo::SIGNATURE_HEADERS[0])
            .expect("an accepted request has a signature");
        assert!(
            signatures.split(',').any(|s| s.trim() == genuine),
            "accepted {signatures:?}, not the token's signature of {url:?}, {params:?} and {nonce:?}"
        );
    }
    if let Some(nonce) = nonce {
        let genuine = sign(nonce);
        let headers = request_headers(&[
            (PLIVO_NONCE_HEADER, nonce.as_bytes()),
            (Plivo::SIGNATURE_HEADERS[0], genuine.as_bytes()),
        ]);
        assert!(
            verified::<Plivo>(&url, &headers, body).is_ok(),
            "refused the genuine signature of {url:?}, {params:?} and {nonce:?}"
        );
    }
}

/// The admin API's subscriber body (`PUT /v1/subscribers/{number}`).
///
/// Any body is a subscriber spec, a 400 (not JSON) or a 422 (a field
/// named): never a panic, never another status. A spec that passes the
/// subscriber rules gives a subscriber which, sent back as the admin API
/// shows it, is accepted again as the same subscriber.
pub fn subscriber_json(data: &[u8]) {
    let spec = match parse_json_body::<SubscriberSpec>(data) {
        Ok(spec) => spec,
        Err(err) => {
            let status = err.status_code().as_u16();
            assert!(matches!(status, 400 | 422), "{status} for {err}");
            return;
        }
    };
    let number = readme_subscriber_number();
    let rules = SpecRules {
        region: Region::default(),
        webhooks_can_be_signed: true,
        webhook_targets: TargetPolicy::PublicOnly,
    };
    let Ok(subscriber) = spec.parse(number.clone(), rules) else {
        return;
    };
    let shown = serde_json::to_vec(&subscriber).expect("a subscriber serialises");
    let again = parse_json_body::<SubscriberSpec>(&shown)
        .unwrap_or_else(|err| panic!("the shown subscriber is not a spec ({err}): {subscriber:?}"))
        .parse(number, rules)
        .unwrap_or_else(|err| panic!("the shown subscriber is refused ({err}): {subscriber:?}"));
    assert_eq!(again, subscriber);
}

/// The query of our callback URLs, as a provider calls them back.
///
/// Any query is ours or not (never a panic), and one of ours, written out
/// again, reads back the same.
pub fn callback_query(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    if let Some(ours) = CallbackQuery::parse(&query) {
        let encoded = ours.encode();
        assert_eq!(
            CallbackQuery::parse(&encoded).as_ref(),
            Some(&ours),
            "{query:?} was written back as {encoded:?}"
        );
    }
}

/// TwiML: a script built from the bytes (see [`script_from`]) renders as a
/// well-formed document (checked by [`parsed_markup::parse`]) that reads back
/// to the script's verbs, texts, URLs and dialed addresses, less what XML
/// cannot carry.
pub fn twiml_render(data: &[u8]) {
    let script = script_from(data);
    let document = parsed_markup::parse(&twiml::render::render(
        &script,
        &twiml::render::Dialect::TWILIO,
    ));
    assert_eq!(
        Carried::read(
            &document,
            &[
                "action",
                "callerId",
                "reason",
                "recordingStatusCallback",
                "ringTone",
                "url"
            ]
        ),
        expected_twiml(&script),
        "{script:?}"
    );
}

/// Plivo XML, as [`twiml_render`] for TwiML.
pub fn plivo_xml_render(data: &[u8]) {
    let script = script_from(data);
    let document = parsed_markup::parse(&plivo::xml::render(&script));
    assert_eq!(
        Carried::read(
            &document,
            &[
                "action",
                "callbackUrl",
                "callerId",
                "confirmSound",
                "reason"
            ]
        ),
        expected_plivo_xml(&script),
        "{script:?}"
    );
}

/// Splits a webhook's input into its first `N - 1` lines (the URL and the
/// signature headers, none of which HTTP lets hold a line break) and the
/// body: everything after them. Missing lines are empty.
fn webhook_request<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut parts = [&[][..]; N];
    let mut rest = data;
    for part in parts.iter_mut().take(N - 1) {
        let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        *part = &rest[..line_end];
        rest = rest.get(line_end + 1..).unwrap_or_default();
    }
    parts[N - 1] = rest;
    parts
}

/// The headers of a request, from raw values. A value HTTP cannot carry (a
/// control character) is left out: no request could bring it.
fn request_headers(raw: &[(&'static str, &[u8])]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for &(name, value) in raw {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

/// A header as the providers' checks read it: absent unless it is text.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Reads a form body as the webhook routes do, and checks that nothing of
/// what was read is lost: written out again and read back, it gives the same
/// pairs in the same order (the signatures are computed over them).
fn read_form(body: &[u8]) -> Params {
    let params = Params::from_form(body);
    let written = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.pairs())
        .finish();
    assert_eq!(Params::from_form(written.as_bytes()), params, "{written:?}");
    params
}

/// Every reading the routes make of a provider's form: whatever the values,
/// none may panic.
fn read_every_field<P: Provider>(params: &Params) {
    let region = Region::default();
    std::hint::black_box((
        P::inbound_call(params, region),
        P::call_id(params),
        P::dial_result(params),
        P::digits(params),
        P::status_report(params, region),
        P::recording_url(params),
        P::finished_recording(params),
    ));
}

/// Whether one of `url`'s `bodySHA256` query values is the hex SHA-256 of
/// `body`, in either case.
fn query_has_body_hash(url: &str, body: &[u8]) -> bool {
    let digest = hex::encode(Sha256::digest(body));
    let before_fragment = url.split('#').next().unwrap_or_default();
    let query = before_fragment.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .any(|(name, value)| name == "bodySHA256" && value.eq_ignore_ascii_case(&digest))
}

/// The subscriber the admin target registers: the README's.
fn readme_subscriber_number() -> PhoneNumber {
    PhoneNumber::parse("+12025550199", Region::default()).expect("a valid number")
}

/// Builds a call script from fuzz bytes, so that the fuzzer chooses the
/// steps and every text in them. Each step starts with a byte naming its
/// kind; a text runs to the next 0xFF, a byte UTF-8 never uses, so that any
/// text can be spelled (invalid UTF-8 reads as U+FFFD); numbers and choices
/// take a byte each; input that has run out reads as zeros and empty texts.
fn script_from(data: &[u8]) -> CallScript {
    let mut input = ScriptBytes(data);
    let mut steps = Vec::new();
    while let Some(kind) = input.next() {
        steps.push(match kind % 6 {
            0 => Step::Say(input.text()),
            1 => Step::Dial(input.dial()),
            2 => Step::Gather {
                action_url: input.text(),
                num_digits: input.byte(),
                timeout_secs: input.byte().into(),
                prompt: input.text(),
            },
            3 => Step::Record {
                action_url: input.text(),
                max_length_secs: input.byte().into(),
                // The seeds' shape is kept; the renderers' property tests
                // carry any text in a transcription URL.
                transcribe_url: None,
            },
            4 => Step::Hangup,
            _ => Step::Reject,
        });
    }
    CallScript(steps)
}

/// What is left of the fuzz bytes while [`script_from`] reads them.
struct ScriptBytes<'a>(&'a [u8]);

impl ScriptBytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }

    fn text(&mut self) -> String {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0xFF)
            .unwrap_or(self.0.len());
        let text = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = self.0.get(end + 1..).unwrap_or_default();
        text
    }

    fn optional_text(&mut self) -> Option<String> {
        (self.byte() % 2 == 1).then(|| self.text())
    }

    fn dial(&mut self) -> Dial {
        let targets = (0..self.byte() % 4).map(|_| self.dial_target()).collect();
        Dial {
            targets,
            caller_id: self
                .optional_text()
                .and_then(|text| PhoneNumber::parse(&text, Region::default()).ok()),
            timeout_secs: self.byte().into(),
            action_url: self.text(),
            screen_url: self.optional_text(),
            leg_events_url: self.optional_text(),
            record_url: self.optional_text(),
            // A code the subscriber rules accept, when the text is one.
            ring_tone: self
                .optional_text()
                .and_then(|text| RingTone::parse(&text).ok()),
        }
    }

    /// A target of the kind the first byte names, at the address the text
    /// spells when it is a valid one (the subscriber rules let no other into
    /// a script), else at the README's desk phone.
    fn dial_target(&mut self) -> DialTarget {
        let kind = self.byte();
        let address = self.text();
        let target = match kind % 3 {
            0 => PhoneNumber::parse(&address, Region::default())
                .ok()
                .map(Target::Phone),
            1 => SipUri::parse(&address).ok().map(Target::Sip),
            _ => ClientIdentity::parse(&address).ok().map(Target::Client),
        };
        DialTarget {
            target: target.unwrap_or_else(|| {
                Target::Phone(
                    PhoneNumber::parse("+12025550201", Region::default()).expect("a valid number"),
                )
            }),
            pickup_url: self.optional_text(),
            screened: kind >= 0x80,
        }
    }
}

/// The part of a markup element that comes from the script: its name, the
/// attributes that carry the script's texts and URLs (sorted by name), its
/// text, and its children likewise. Fixed attributes (`method="POST"`) and
/// numbers are the renderers' own unit tests' business.
#[derive(Debug, PartialEq, Eq)]
struct Carried {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Carried>,
}

impl Carried {
    fn new(name: &str, attrs: Vec<(&str, String)>, text: String, children: Vec<Carried>) -> Self {
        let mut attrs: Vec<_> = attrs
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        attrs.sort();
        Self {
            name: name.to_owned(),
            attrs,
            text,
            children,
        }
    }

    fn bare(name: &str) -> Self {
        Self::new(name, Vec::new(), String::new(), Vec::new())
    }

    /// An element as parsed back, keeping only the attributes named in
    /// `carrying`.
    fn read(node: &Element, carrying: &[&str]) -> Self {
        let mut attrs: Vec<_> = node
            .attrs
            .iter()
            .filter(|(name, _)| carrying.contains(&name.as_str()))
            .cloned()
            .collect();
        attrs.sort();
        Self {
            name: node.name.clone(),
            attrs,
            text: node.text.clone(),
            children: node
                .children
                .iter()
                .map(|child| Self::read(child, carrying))
                .collect(),
        }
    }
}

/// What XML 1.0 can carry of a text: all of it but the control characters
/// other than tab, line feed and carriage return, and U+FFFE and U+FFFF.
/// Written out here rather than taken from the renderers, which it checks.
fn xml_kept(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            !((c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}'))
        })
        .collect()
}

/// The element speaking `text` (`Say`, `Speak`), or none when XML can carry
/// nothing of it: the renderers leave such a verb out.
fn spoken(element: &str, text: &str) -> Option<Carried> {
    let text = xml_kept(text);
    (!text.is_empty()).then(|| Carried::new(element, Vec::new(), text, Vec::new()))
}

fn expected_twiml(script: &CallScript) -> Carried {
    let say = |text: &str| spoken("Say", text);
    let verbs = script
        .0
        .iter()
        .filter_map(|step| match step {
            Step::Say(text) => say(text),
            Step::Dial(dial) => {
                let mut attrs = vec![("action", xml_kept(&dial.action_url))];
                attrs.extend(
                    dial.caller_id
                        .as_ref()
                        .map(|number| ("callerId", number.as_str().to_owned())),
                );
                attrs.extend(
                    dial.record_url
                        .as_deref()
                        .map(|url| ("recordingStatusCallback", xml_kept(url))),
                );
                attrs.extend(
                    dial.ring_tone
                        .as_ref()
                        .map(|tone| ("ringTone", tone.as_str().to_owned())),
                );
                let nouns = dial
                    .targets
                    .iter()
                    .map(|target| {
                        let (name, address) = match &target.target {
                            Target::Phone(number) => ("Number", number.as_str()),
                            Target::Sip(uri) => ("Sip", uri.as_str()),
                            Target::Client(identity) => ("Client", identity.as_str()),
                        };
                        let whisper = target
                            .pickup_url
                            .as_deref()
                            .map(|url| ("url", xml_kept(url)));
                        Carried::new(
                            name,
                            whisper.into_iter().collect(),
                            xml_kept(address),
                            Vec::new(),
                        )
                    })
                    .collect();
                Some(Carried::new("Dial", attrs, String::new(), nouns))
            }
            Step::Gather {
                action_url, prompt, ..
            } => Some(Carried::new(
                "Gather",
                vec![("action", xml_kept(action_url))],
                String::new(),
                say(prompt).into_iter().collect(),
            )),
            Step::Record { action_url, .. } => Some(Carried::new(
                "Record",
                vec![("action", xml_kept(action_url))],
                String::new(),
                Vec::new(),
            )),
            Step::Hangup => Some(Carried::bare("Hangup")),
            Step::Reject => Some(Carried::new(
                "Reject",
                vec![("reason", "busy".to_owned())],
                String::new(),
                Vec::new(),
            )),
        })
        .collect();
    Carried::new("Response", Vec::new(), String::new(), verbs)
}

fn expected_plivo_xml(script: &CallScript) -> Carried {
    let speak = |text: &str| spoken("Speak", text);
    // Plivo writes numbers as E.164 digits without the `+`.
    let digits = |number: &PhoneNumber| number.as_str().trim_start_matches('+').to_owned();
    let elements = script
        .0
        .iter()
        .flat_map(|step| -> Vec<Carried> {
            match step {
                Step::Say(text) => speak(text).into_iter().collect(),
                Step::Dial(dial) => {
                    let mut attrs = vec![("action", xml_kept(&dial.action_url))];
                    attrs.extend(
                        dial.caller_id
                            .as_ref()
                            .map(|number| ("callerId", digits(number))),
                    );
                    attrs.extend(
                        dial.screen_url
                            .as_deref()
                            .map(|url| ("confirmSound", xml_kept(url))),
                    );
                    attrs.extend(
                        dial.leg_events_url
                            .as_deref()
                            .map(|url| ("callbackUrl", xml_kept(url))),
                    );
                    // Plivo screens per Dial: a target's own whisper URL is
                    // not written.
                    let nouns = dial
                        .targets
                        .iter()
                        .map(|target| {
                            let (name, address) = match &target.target {
                                Target::Phone(number) => ("Number", digits(number)),
                                Target::Sip(uri) => ("User", xml_kept(uri.as_str())),
                                // Plivo endpoints are SIP users on its own
                                // domain.
                                Target::Client(identity) => {
                                    ("User", format!("sip:{}@phone.plivo.com", identity.as_str()))
                                }
                            };
                            Carried::new(name, Vec::new(), address, Vec::new())
                        })
                        .collect();
                    // The call is recorded by a Record just before the Dial;
                    // Plivo has no ring tone.
                    let record = dial.record_url.as_deref().map(|url| {
                        Carried::new(
                            "Record",
                            vec![("callbackUrl", xml_kept(url))],
                            String::new(),
                            Vec::new(),
                        )
                    });
                    record
                        .into_iter()
                        .chain([Carried::new("Dial", attrs, String::new(), nouns)])
                        .collect()
                }
                Step::Gather {
                    action_url, prompt, ..
                } => vec![Carried::new(
                    "GetInput",
                    vec![("action", xml_kept(action_url))],
                    String::new(),
                    speak(prompt).into_iter().collect(),
                )],
                Step::Record { action_url, .. } => vec![Carried::new(
                    "Record",
                    vec![("action", xml_kept(action_url))],
                    String::new(),
                    Vec::new(),
                )],
                Step::Hangup => vec![Carried::bare("Hangup")],
                Step::Reject => vec![Carried::new(
                    "Hangup",
                    vec![("reason", "busy".to_owned())],
                    String::new(),
                    Vec::new(),
                )],
            }
        })
        .collect();
    Carried::new("Response", Vec::new(), String::new(), elements)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// The harness, at the repository's root (next to this package).
    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    /// The files of a corpus folder, by path; none when it does not exist.
    fn corpus(folder: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .map(|entry| entry.expect("a readable folder").path())
            .filter(|path| path.is_file())
            .map(|path| {
                let bytes = std::fs::read(&path).expect("a readable seed");
                (path, bytes)
            })
            .collect();
        files.sort();
        files
    }

    /// Every target passes its seeds and the inputs of the crashes it found
    /// before (`fuzz/regressions/<target>/`), and has its harness binary.
    #[test]
    fn every_target_passes_its_seeds_and_past_crashes() {
        let fuzz = fuzz_dir();
        for &(name, target) in TARGETS {
            let harness = fuzz.join("src/bin").join(format!("{name}.rs"));
            assert!(harness.is_file(), "no harness {}", harness.display());
            let seeds = corpus(&fuzz.join("seeds").join(name));
            assert!(!seeds.is_empty(), "no seeds for {name}");
            let past_crashes = corpus(&fuzz.join("regressions").join(name));
            for (path, input) in seeds.iter().chain(&past_crashes) {
                let outcome = std::panic::catch_unwind(|| target(input));
                assert!(outcome.is_ok(), "{name} failed on {}", path.display());
            }
        }
    }

    /// The seeds named `signed-*` are signed with [`AUTH_TOKEN`], so that
    /// the fuzzer starts from requests the checks accept, and mutates them.
    #[test]
    fn the_signed_seeds_are_accepted() {
        let signed = |target: &str| {
            let seeds = corpus(&fuzz_dir().join("seeds").join(target));
            let signed: Vec<_> = seeds
                .into_iter()
                .filter(|(path, _)| {
                    path.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("signed-")
                })
                .collect();
            assert!(!signed.is_empty(), "no signed seeds for {target}");
            signed
        };
        for (path, input) in signed("twilio_webhook") {
            let [url, signature, body] = webhook_request(&input);
            let headers = request_headers(&[(Twilio::SIGNATURE_HEADERS[0], signature)]);
            let url = String::from_utf8_lossy(url);
            assert_eq!(
                verified::<Twilio>(&url, &headers, body).err(),
                None,
                "{}",
                path.display()
            );
        }
        for (path, input) in signed("plivo_webhook") {
            let [url, nonce, signatures, body] = webhook_request(&input);
            let headers = request_headers(&[
                (PLIVO_NONCE_HEADER, nonce),
                (Plivo::SIGNATURE_HEADERS[0], signatures),
            ]);
            let url = String::from_utf8_lossy(url);
            assert_eq!(
                verified::<Plivo>(&url, &headers, body).err(),
                None,
                "{}",
                path.display()
            );
        }
        for (path, input) in signed("telnyx_webhook") {
            let [timestamp, signature, body] = webhook_request(&input);
            let key = ed25519_dalek::SigningKey::from_bytes(&TELNYX_SEED);
            let now = crate::domain::time::Timestamp::from_unix_millis(TELNYX_NOW_SECS * 1000);
            let text = |raw| std::str::from_utf8(raw).ok();
            assert_eq!(
                crate::providers::telnyx::signature::verify(
                    &key.verifying_key(),
                    text(timestamp),
                    text(signature),
                    body,
                    now.unwrap(),
                ),
                Ok(()),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn a_webhook_input_is_its_lines_then_its_body() {
        let [url, header, body] = webhook_request(b"https://a/x\nsig\nA=1\nB=2");
        assert_eq!(
            (url, header, body),
            (&b"https://a/x"[..], &b"sig"[..], &b"A=1\nB=2"[..])
        );
        let [url, header, body] = webhook_request::<3>(b"https://a/x");
        assert_eq!(
            (url, header, body),
            (&b"https://a/x"[..], &b""[..], &b""[..])
        );
    }

    #[test]
    fn script_bytes_spell_steps_and_any_text() {
        let mut data = vec![0];
        data.extend_from_slice("Hello <€>".as_bytes());
        data.extend_from_slice(&[0xFF, 3]);
        data.extend_from_slice(b"https://relay.example.com/r?a=1&b=2");
        data.extend_from_slice(&[0xFF, 120, 4]);
        assert_eq!(
            script_from(&data),
            CallScript(vec![
                Step::Say("Hello <€>".into()),
                Step::Record {
                    action_url: "https://relay.example.com/r?a=1&b=2".into(),
                    max_length_secs: 120,
                    transcribe_url: None,
                },
                Step::Hangup,
            ])
        );
    }

    #[test]
    fn script_bytes_spell_a_recorded_dial_with_a_ring_tone_and_a_reject() {
        let mut data = vec![1, 0, 0, 20];
        data.extend_from_slice(b"https://relay.example.com/d");
        data.extend_from_slice(&[0xFF, 0, 0, 1]);
        data.extend_from_slice(b"https://relay.example.com/rec");
        data.extend_from_slice(&[0xFF, 1]);
        data.extend_from_slice(b"uk");
        data.extend_from_slice(&[0xFF, 5]);
        let script = script_from(&data);
        assert_eq!(
            script,
            CallScript(vec![
                Step::Dial(Dial {
                    targets: Vec::new(),
                    caller_id: None,
                    timeout_secs: 20,
                    action_url: "https://relay.example.com/d".into(),
                    screen_url: None,
                    leg_events_url: None,
                    record_url: Some("https://relay.example.com/rec".into()),
                    ring_tone: Some(RingTone::parse("uk").unwrap()),
                }),
                Step::Reject,
            ])
        );
        twiml_render(&data);
        plivo_xml_render(&data);
    }
}
