//! TwiML-family rendering: turns a provider-neutral [`CallScript`] into the
//! markup Twilio (TwiML), SignalWire (cXML) and Telnyx (TeXML) execute. They
//! share verbs and attributes; a [`Dialect`] says where they differ. This
//! module owns the mapping from each [`Step`] to its verb, and nothing else:
//! the call flow decides what to say and dial, the routes when to answer.

use std::borrow::Cow;
use std::io;

use quick_xml::events::{BytesStart, BytesText, Event};

use crate::domain::subscriber::{ClientIdentity, Target};
use crate::flow::model::{CallScript, Dial, DialTarget, Step};
use crate::providers::xml::{XmlWriter, render_document, write_spoken, xml_chars};

/// Where the TwiML family's providers differ.
#[derive(Debug, Clone, Copy)]
pub struct Dialect<'a> {
    /// How a `client` destination is dialed.
    pub client: ClientNoun<'a>,
    /// `answerOnBridge="true"` on `<Dial>`: the caller hears ringback (not
    /// silence) until a callee is bridged. Telnyx has no such attribute (it
    /// answers the inbound call before the first fetch).
    pub answer_on_bridge: bool,
    /// Extra attributes of voicemail's `<Record>`.
    pub record_attributes: &'a [(&'a str, &'a str)],
    /// The `<Record>` attributes that ask for a transcription: the one set
    /// to `true` and the one naming its callback (Twilio's `transcribe` and
    /// `transcribeCallback`).
    pub transcription: (&'a str, &'a str),
}

/// How a dialect dials a softphone.
#[derive(Debug, Clone, Copy)]
pub enum ClientNoun<'a> {
    /// `<Client>alice</Client>` (Twilio).
    Client,
    /// `<Sip>sip:alice@<domain></Sip>`: the softphone is a SIP credential of
    /// the provider's (Telnyx).
    SipUser { domain: &'a str },
    /// `<Verto>alice@<domain></Verto>` (SignalWire); the bare identity when
    /// the domain is unknown.
    Verto { domain: Option<&'a str> },
}

impl Dialect<'static> {
    pub const TWILIO: Self = Self {
        client: ClientNoun::Client,
        answer_on_bridge: true,
        record_attributes: &[],
        transcription: ("transcribe", "transcribeCallback"),
    };
}

/// Renders a script as a document of `dialect`:
/// `<?xml version="1.0" encoding="UTF-8"?><Response>…</Response>`.
pub fn render(script: &CallScript, dialect: &Dialect<'_>) -> String {
    render_document(script, |w, step| write_step(w, step, dialect))
}

fn write_step(w: &mut XmlWriter<'_>, step: &Step, dialect: &Dialect<'_>) -> io::Result<()> {
    match step {
        Step::Say(text) => write_spoken(w, "Say", text),
        Step::Dial(dial) => write_dial(w, dial, dialect),
        Step::Record {
            action_url,
            max_length_secs,
            transcribe_url,
        } => {
            let mut record = w
                .create_element("Record")
                .with_attribute(("action", xml_chars(action_url).as_ref()))
                .with_attribute(("method", "POST"))
                .with_attribute(("maxLength", max_length_secs.to_string().as_str()))
                .with_attribute(("playBeep", "true"))
                .with_attributes(dialect.record_attributes.iter().copied());
            if let Some(url) = transcribe_url {
                let (flag, callback) = dialect.transcription;
                record = record
                    .with_attribute((flag, "true"))
                    .with_attribute((callback, xml_chars(url).as_ref()));
            }
            record.write_empty()?;
            Ok(())
        }
        Step::Gather {
            action_url,
            num_digits,
            timeout_secs,
            prompt,
        } => {
            w.create_element("Gather")
                .with_attribute(("action", xml_chars(action_url).as_ref()))
                .with_attribute(("method", "POST"))
                .with_attribute(("numDigits", num_digits.to_string().as_str()))
                .with_attribute(("timeout", timeout_secs.to_string().as_str()))
                // The prompt is nested so that a keypress interrupts it.
                .write_inner_content(|w| write_spoken(w, "Say", prompt))?;
            Ok(())
        }
        Step::Hangup => w.write_event(Event::Empty(BytesStart::new("Hangup"))),
        Step::Reject => w
            .create_element("Reject")
            .with_attribute(("reason", "busy"))
            .write_empty()
            .map(|_| ()),
    }
}

fn write_dial(w: &mut XmlWriter<'_>, dial: &Dial, dialect: &Dialect<'_>) -> io::Result<()> {
    let mut element = w
        .create_element("Dial")
        .with_attribute(("action", xml_chars(&dial.action_url).as_ref()))
        .with_attribute(("method", "POST"))
        .with_attribute(("timeout", dial.timeout_secs.to_string().as_str()));
    if dialect.answer_on_bridge {
        // The caller keeps hearing ringback (not silence) until a callee
        // actually answers, and is not billed as connected before that.
        element = element.with_attribute(("answerOnBridge", "true"));
    }
    if let Some(caller_id) = &dial.caller_id {
        element = element.with_attribute(("callerId", caller_id.as_str()));
    }
    if let Some(url) = &dial.record_url {
        // Both parties, each on its own channel, from the moment a leg
        // answers; one callback, once the file is ready.
        element = element
            .with_attribute(("record", "record-from-answer-dual"))
            .with_attribute(("recordingStatusCallback", xml_chars(url).as_ref()))
            .with_attribute(("recordingStatusCallbackEvent", "completed"));
    }
    if let Some(tone) = &dial.ring_tone {
        element = element.with_attribute(("ringTone", tone.as_str()));
    }
    // Several nouns in one <Dial> ring at once; the first to answer wins.
    element.write_inner_content(|w| {
        for target in &dial.targets {
            write_noun(w, target, dialect)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_noun(w: &mut XmlWriter<'_>, target: &DialTarget, dialect: &Dialect<'_>) -> io::Result<()> {
    let (name, address): (_, Cow<'_, str>) = match &target.target {
        Target::Phone(number) => ("Number", Cow::Borrowed(number.as_str())),
        Target::Sip(uri) => ("Sip", xml_chars(uri.as_str())),
        Target::Client(identity) => client_noun(identity, dialect.client),
    };
    let mut element = w.create_element(name);
    // SignalWire's `<Verto>` takes no attributes: a softphone there has no
    // whisper, so it is neither screened nor named when it answers among
    // several (README, "Point a SignalWire number at ringrelay").
    let takes_url = !(matches!(target.target, Target::Client(_))
        && matches!(dialect.client, ClientNoun::Verto { .. }));
    if let Some(url) = target.pickup_url.as_ref().filter(|_| takes_url) {
        // The provider fetches this markup and runs it on the callee's leg
        // before bridging: that tells us who answered, and is where
        // screening asks the callee to accept.
        element = element
            .with_attribute(("url", xml_chars(url).as_ref()))
            .with_attribute(("method", "POST"));
    }
    element.write_text_content(BytesText::new(&address))?;
    Ok(())
}

fn client_noun<'a>(
    identity: &'a ClientIdentity,
    noun: ClientNoun<'_>,
) -> (&'static str, Cow<'a, str>) {
    let identity = identity.as_str();
    match noun {
        ClientNoun::Client => ("Client", Cow::Borrowed(identity)),
        ClientNoun::SipUser { domain } => ("Sip", Cow::Owned(format!("sip:{identity}@{domain}"))),
        ClientNoun::Verto {
            domain: Some(domain),
        } => ("Verto", Cow::Owned(format!("{identity}@{domain}"))),
        ClientNoun::Verto { domain: None } => ("Verto", Cow::Borrowed(identity)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::subscriber::{ClientIdentity, SipUri};
    use crate::providers::parsed_markup::parse;
    use crate::providers::testing::{number, phone};

    #[test]
    fn sequential_dial_of_one_number_shows_the_caller() {
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![phone("+12025550111")],
            caller_id: Some(number("+12025550302")),
            timeout_secs: 20,
            action_url: "https://relay.example.com/twilio/dial-status?session=s1".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: None,
            ring_tone: None,
        })]);
        let xml = render(&script, &Dialect::TWILIO);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Dial"]);
        let dial = &response.children[0];
        assert_eq!(
            dial.attr_names(),
            ["action", "method", "timeout", "answerOnBridge", "callerId"]
        );
        assert_eq!(
            dial.attr("action"),
            Some("https://relay.example.com/twilio/dial-status?session=s1")
        );
        assert_eq!(dial.attr("method"), Some("POST"));
        assert_eq!(dial.attr("timeout"), Some("20"));
        assert_eq!(dial.attr("answerOnBridge"), Some("true"));
        assert_eq!(dial.attr("callerId"), Some("+12025550302"));
        assert_eq!(dial.child_names(), ["Number"]);
        let noun = &dial.children[0];
        assert_eq!(noun.text, "+12025550111");
        assert!(noun.attrs.is_empty(), "no whisper: {xml}");
    }

    #[test]
    fn a_recorded_dial_records_both_parties_from_answer_with_its_ring_tone() {
        let callback = "https://relay.example.com/twilio/recording?session=s1&step=0";
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![phone("+12025550111")],
            caller_id: None,
            timeout_secs: 20,
            action_url: "https://relay.example.com/twilio/dial-status".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: Some(callback.into()),
            ring_tone: Some(crate::domain::rules::RingTone::parse("uk").unwrap()),
        })]);
        let xml = render(&script, &Dialect::TWILIO);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Dial"], "{xml}");
        let dial = &response.children[0];
        assert_eq!(
            dial.attr_names(),
            [
                "action",
                "method",
                "timeout",
                "answerOnBridge",
                "record",
                "recordingStatusCallback",
                "recordingStatusCallbackEvent",
                "ringTone"
            ]
        );
        assert_eq!(dial.attr("record"), Some("record-from-answer-dual"));
        assert_eq!(dial.attr("recordingStatusCallback"), Some(callback));
        assert_eq!(dial.attr("recordingStatusCallbackEvent"), Some("completed"));
        assert_eq!(dial.attr("ringTone"), Some("uk"));
    }

    #[test]
    fn dial_without_caller_id_leaves_the_attribute_out() {
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![phone("+12025550111")],
            caller_id: None,
            timeout_secs: 30,
            action_url: "https://relay.example.com/twilio/dial-status".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: None,
            ring_tone: None,
        })]);
        let dial = &parse(&render(&script, &Dialect::TWILIO)).children[0];
        assert_eq!(dial.attr("callerId"), None);
        assert_eq!(dial.attr("timeout"), Some("30"));
    }

    #[test]
    fn simultaneous_dial_rings_every_kind_of_target_with_the_whisper() {
        let whisper = "https://relay.example.com/twilio/screen?session=s1&destination=desk";
        let with_whisper = |target| DialTarget {
            target,
            pickup_url: Some(whisper.to_owned()),
            screened: true,
        };
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![
                with_whisper(Target::Phone(number("+12025550111"))),
                with_whisper(Target::Sip(
                    SipUri::parse("sip:alice@pbx.example.com;transport=tls").unwrap(),
                )),
                with_whisper(Target::Client(
                    ClientIdentity::parse("alice_01.web").unwrap(),
                )),
            ],
            caller_id: Some(number("+12025550302")),
            timeout_secs: 25,
            action_url: "https://relay.example.com/twilio/dial-status?session=s1".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: None,
            ring_tone: None,
        })]);
        let xml = render(&script, &Dialect::TWILIO);
        let dial = &parse(&xml).children[0];
        assert_eq!(dial.attr("timeout"), Some("25"));
        assert_eq!(dial.child_names(), ["Number", "Sip", "Client"]);
        let texts: Vec<_> = dial.children.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "+12025550111",
                "sip:alice@pbx.example.com;transport=tls",
                "alice_01.web"
            ]
        );
        for noun in &dial.children {
            assert_eq!(noun.attr_names(), ["url", "method"], "{xml}");
            assert_eq!(noun.attr("url"), Some(whisper));
            assert_eq!(noun.attr("method"), Some("POST"));
            assert!(noun.children.is_empty());
        }
    }

    #[test]
    fn voicemail_is_a_greeting_then_a_recording() {
        let script = CallScript(vec![
            Step::Say("Please leave a message after the tone.".into()),
            Step::Record {
                action_url: "https://relay.example.com/twilio/voicemail?session=s1".into(),
                max_length_secs: 120,
                transcribe_url: None,
            },
        ]);
        let xml = render(&script, &Dialect::TWILIO);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Say", "Record"]);
        assert_eq!(
            response.children[0].text,
            "Please leave a message after the tone."
        );
        let record = &response.children[1];
        assert_eq!(
            record.attr_names(),
            ["action", "method", "maxLength", "playBeep"]
        );
        assert_eq!(
            record.attr("action"),
            Some("https://relay.example.com/twilio/voicemail?session=s1")
        );
        assert_eq!(record.attr("method"), Some("POST"));
        assert_eq!(record.attr("maxLength"), Some("120"));
        assert_eq!(record.attr("playBeep"), Some("true"));
        assert!(record.children.is_empty() && record.text.is_empty());
        assert!(xml.ends_with("/></Response>"), "Record is empty: {xml}");
    }

    #[test]
    fn unknown_call_is_a_message_then_hangup() {
        let script = CallScript(vec![
            Step::Say("This number cannot take your call.".into()),
            Step::Hangup,
        ]);
        let xml = render(&script, &Dialect::TWILIO);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Say", "Hangup"]);
        assert_eq!(
            response.children[0].text,
            "This number cannot take your call."
        );
        let hangup = &response.children[1];
        assert!(hangup.attrs.is_empty() && hangup.children.is_empty() && hangup.text.is_empty());
        assert!(xml.ends_with("<Hangup/></Response>"), "{xml}");
    }

    #[test]
    fn gather_nests_its_prompt() {
        let script = CallScript(vec![
            Step::Gather {
                action_url: "https://relay.example.com/twilio/screen-result?session=s1&d=desk"
                    .into(),
                num_digits: 1,
                timeout_secs: 5,
                prompt: "Press 1 to take the call.".into(),
            },
            Step::Hangup,
        ]);
        let xml = render(&script, &Dialect::TWILIO);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Gather", "Hangup"]);
        let gather = &response.children[0];
        assert_eq!(
            gather.attr_names(),
            ["action", "method", "numDigits", "timeout"]
        );
        assert_eq!(
            gather.attr("action"),
            Some("https://relay.example.com/twilio/screen-result?session=s1&d=desk")
        );
        assert_eq!(gather.attr("method"), Some("POST"));
        assert_eq!(gather.attr("numDigits"), Some("1"));
        assert_eq!(gather.attr("timeout"), Some("5"));
        assert_eq!(gather.child_names(), ["Say"]);
        assert_eq!(gather.children[0].text, "Press 1 to take the call.");
    }

    #[test]
    fn markup_characters_in_text_and_urls_are_escaped_and_round_trip() {
        let text = r#"Call from <Acme & Sons> "Ltd" 'UK'"#;
        let action = r#"https://relay.example.com/twilio/dial-status?session=a&b="c"&d=<e>"#;
        let whisper = "https://relay.example.com/twilio/screen?session=s1&destination=desk";
        let script = CallScript(vec![
            Step::Say(text.into()),
            Step::Dial(Dial {
                targets: vec![DialTarget {
                    target: Target::Phone(number("+12025550111")),
                    pickup_url: Some(whisper.into()),
                    screened: true,
                }],
                caller_id: None,
                timeout_secs: 20,
                action_url: action.into(),
                screen_url: None,
                leg_events_url: None,
                record_url: None,
                ring_tone: None,
            }),
            Step::Gather {
                action_url: action.into(),
                num_digits: 1,
                timeout_secs: 5,
                prompt: text.into(),
            },
            Step::Record {
                action_url: action.into(),
                max_length_secs: 120,
                transcribe_url: None,
            },
        ]);
        let xml = render(&script, &Dialect::TWILIO);
        // Nothing of the input survives raw: every `<`, `&` and `"` was
        // escaped (the parser below would not always notice a stray `<` in
        // an attribute).
        for raw in [text, action, whisper, "<Acme", "a&b", "=\"c\""] {
            assert!(!xml.contains(raw), "{raw:?} unescaped in {xml}");
        }
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Say", "Dial", "Gather", "Record"]);
        assert_eq!(response.children[0].text, text);
        let dial = &response.children[1];
        assert_eq!(dial.attr("action"), Some(action));
        assert_eq!(dial.children[0].attr("url"), Some(whisper));
        let gather = &response.children[2];
        assert_eq!(gather.attr("action"), Some(action));
        assert_eq!(gather.children[0].text, text);
        assert_eq!(response.children[3].attr("action"), Some(action));
    }

    #[test]
    fn line_breaks_survive_and_characters_xml_cannot_carry_are_dropped() {
        let script = CallScript(vec![Step::Say(
            "one\ntwo\r\nthree\u{0}\u{1b}!\u{FFFF}".into(),
        )]);
        let response = parse(&render(&script, &Dialect::TWILIO));
        assert_eq!(response.children[0].text, "one\ntwo\r\nthree!");
    }

    #[test]
    fn empty_say_is_left_out() {
        // A text of characters XML cannot carry is empty once they are dropped
        // (found by the property test).
        let script = CallScript(vec![
            Step::Say("\0\u{1}".into()),
            Step::Gather {
                action_url: "https://relay.example.com/g".into(),
                num_digits: 1,
                timeout_secs: 5,
                prompt: String::new(),
            },
        ]);
        let response = parse(&render(&script, &Dialect::TWILIO));
        assert_eq!(response.child_names(), ["Gather"]);
        assert!(response.children[0].children.is_empty());
    }

    #[test]
    fn empty_script_is_an_empty_response() {
        let xml = render(&CallScript::default(), &Dialect::TWILIO);
        let response = parse(&xml);
        assert!(response.children.is_empty() && response.attrs.is_empty());
        assert!(response.text.is_empty());
    }
}
