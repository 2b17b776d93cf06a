//! Plivo XML rendering: turns a provider-neutral [`CallScript`] into the XML
//! document Plivo executes. This module owns the mapping from each [`Step`]
//! to its Plivo element and attributes, and nothing else: the call flow
//! decides what to say and dial, the routes decide when to answer.
//! The document itself is the shared writer's (`providers::xml`).
//!
//! Element and attribute names follow Plivo's XML reference
//! (plivo.com/docs/voice/xml: Dial, Number, User, Record, GetInput) and the
//! attribute lists of the official SDKs' element classes (plivo-python
//! `plivo/xml/*Element.py`, plivo-ruby `lib/plivo/xml/*.rb`).

use std::borrow::Cow;
use std::io;
use std::ops::RangeInclusive;

use quick_xml::events::{BytesStart, BytesText, Event};

use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::Target;
use crate::flow::model::{CallScript, Dial, DialTarget, Step};
use crate::providers::xml::{XmlWriter, render_document, write_spoken, xml_chars};

/// The domain Plivo SIP endpoints (its softphones and browser SDK clients)
/// register under: endpoint `alice` is dialed as `sip:alice@phone.plivo.com`.
pub(super) const ENDPOINT_DOMAIN: &str = "phone.plivo.com";

/// The key a screened callee presses to accept the call.
const CONFIRM_KEY: &str = "1";

/// `GetInput executionTimeout`'s allowed values, in seconds.
const EXECUTION_TIMEOUT_SECS: RangeInclusive<u32> = 5..=60;

/// Renders a script as a Plivo XML document:
/// `<?xml version="1.0" encoding="UTF-8"?><Response>…</Response>`.
pub fn render(script: &CallScript) -> String {
    render_document(script, write_step)
}

fn write_step(w: &mut XmlWriter<'_>, step: &Step) -> io::Result<()> {
    match step {
        Step::Say(text) => write_spoken(w, "Speak", text),
        Step::Dial(dial) => write_dial(w, dial),
        Step::Record {
            action_url,
            max_length_secs,
            transcribe_url,
        } => {
            // `fileFormat` is left at its default (mp3). `redirect` defaults
            // to true too, but it is what makes Plivo run the XML our action
            // URL answers, so it is spelled out.
            let mut record = w
                .create_element("Record")
                .with_attribute(("action", xml_chars(action_url).as_ref()))
                .with_attribute(("method", "POST"))
                .with_attribute(("maxLength", max_length_secs.to_string().as_str()))
                .with_attribute(("playBeep", "true"))
                .with_attribute(("redirect", "true"));
            if let Some(url) = transcribe_url {
                record = record
                    .with_attribute(("transcriptionType", "auto"))
                    .with_attribute(("transcriptionUrl", xml_chars(url).as_ref()))
                    .with_attribute(("transcriptionMethod", "POST"));
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
            // GetInput, Plivo's replacement for GetDigits. Its
            // `executionTimeout` is the wait for input, counted once the
            // nested prompt has ended; without input Plivo goes on with the
            // next element (what `Step::Gather` promises). `digitEndTimeout`
            // is only the gap allowed between two digits, so it is left at
            // its default. Plivo accepts 5 to 60 s and at least one digit.
            let execution_timeout = (*timeout_secs).clamp(
                *EXECUTION_TIMEOUT_SECS.start(),
                *EXECUTION_TIMEOUT_SECS.end(),
            );
            w.create_element("GetInput")
                .with_attribute(("action", xml_chars(action_url).as_ref()))
                .with_attribute(("method", "POST"))
                .with_attribute(("inputType", "dtmf"))
                .with_attribute(("numDigits", num_digits.max(&1).to_string().as_str()))
                .with_attribute(("executionTimeout", execution_timeout.to_string().as_str()))
                .with_attribute(("redirect", "true"))
                // The prompt is nested: input is collected while it plays,
                // and the wait for input starts once it has ended.
                .write_inner_content(|w| write_spoken(w, "Speak", prompt))?;
            Ok(())
        }
        Step::Hangup => w.write_event(Event::Empty(BytesStart::new("Hangup"))),
        // Plivo's reject is a Hangup with a reason, before answering.
        Step::Reject => w
            .create_element("Hangup")
            .with_attribute(("reason", "busy"))
            .write_empty()
            .map(|_| ()),
    }
}

/// The longest recording of a call Plivo makes, in seconds (its maximum).
const LONGEST_CALL_RECORDING_SECS: &str = "14400";

fn write_dial(w: &mut XmlWriter<'_>, dial: &Dial) -> io::Result<()> {
    // Plivo's Dial has no recording attribute: a Record just before it that
    // starts when a leg answers records the bridged call, and goes on to
    // the Dial at once (`redirect="false"`); `callbackUrl` hears when the
    // file is ready. Plivo has no choice of ringback (no `ringTone`).
    if let Some(url) = &dial.record_url {
        w.create_element("Record")
            .with_attribute(("startOnDialAnswer", "true"))
            .with_attribute(("redirect", "false"))
            .with_attribute(("maxLength", LONGEST_CALL_RECORDING_SECS))
            .with_attribute(("callbackUrl", xml_chars(url).as_ref()))
            .write_empty()?;
    }
    let mut element = w
        .create_element("Dial")
        .with_attribute(("action", xml_chars(&dial.action_url).as_ref()))
        .with_attribute(("method", "POST"))
        .with_attribute(("timeout", dial.timeout_secs.to_string().as_str()));
    if let Some(caller_id) = &dial.caller_id {
        element = element.with_attribute(("callerId", plivo_number(caller_id)));
    }
    // Plivo runs the XML our action URL answers (next destination, fallback
    // or hangup). The default, spelled out because the flow depends on it.
    element = element.with_attribute(("redirect", "true"));
    // Plivo screens per Dial, not per number: `confirmSound` is fetched (POST)
    // and played to whichever leg answers, for EVERY leg of this Dial, and
    // only a leg that then presses `confirmKey` is bridged (the others ring
    // on). The XML it answers may hold only Speak, Play and Wait: accepting
    // is the confirm key, not a GetInput.
    if let Some(url) = &dial.screen_url {
        element = element
            .with_attribute(("confirmSound", xml_chars(url).as_ref()))
            .with_attribute(("confirmKey", CONFIRM_KEY));
    }
    // Plivo reports each B leg's answer and bridge there, with the number
    // it dialed: how we learn who took the call.
    if let Some(url) = &dial.leg_events_url {
        element = element
            .with_attribute(("callbackUrl", xml_chars(url).as_ref()))
            .with_attribute(("callbackMethod", "POST"));
    }
    // Several nouns in one <Dial> ring at once; the first to answer wins.
    element.write_inner_content(|w| {
        for target in &dial.targets {
            write_noun(w, target)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_noun(w: &mut XmlWriter<'_>, target: &DialTarget) -> io::Result<()> {
    let (name, address): (_, Cow<'_, str>) = match &target.target {
        Target::Phone(number) => ("Number", Cow::Borrowed(plivo_number(number))),
        Target::Sip(uri) => ("User", xml_chars(uri.as_str())),
        // Plivo endpoints are SIP users on Plivo's own domain.
        Target::Client(identity) => (
            "User",
            Cow::Owned(format!("sip:{}@{ENDPOINT_DOMAIN}", identity.as_str())),
        ),
    };
    w.create_element(name)
        .write_text_content(BytesText::new(&address))?;
    Ok(())
}

/// A number as Plivo writes it: the E.164 digits without the leading `+`
/// (`12025550201`), in `<Number>` as in `callerId`.
fn plivo_number(number: &PhoneNumber) -> &str {
    let e164 = number.as_str();
    e164.strip_prefix('+').unwrap_or(e164)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::subscriber::{ClientIdentity, SipUri};
    use crate::providers::parsed_markup::parse;
    use crate::providers::testing::{number, phone};

    #[test]
    fn single_number_dial_shows_the_caller_without_plus_signs() {
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![phone("+12025550201")],
            caller_id: Some(number("+12025550302")),
            timeout_secs: 20,
            action_url: "https://relay.example.com/plivo/dial-status?session=s1".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: None,
            ring_tone: None,
        })]);
        let xml = render(&script);
        assert!(!xml.contains('+'), "Plivo numbers carry no '+': {xml}");
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Dial"]);
        let dial = &response.children[0];
        assert_eq!(
            dial.attr_names(),
            ["action", "method", "timeout", "callerId", "redirect"]
        );
        assert_eq!(
            dial.attr("action"),
            Some("https://relay.example.com/plivo/dial-status?session=s1")
        );
        assert_eq!(dial.attr("method"), Some("POST"));
        assert_eq!(dial.attr("timeout"), Some("20"));
        assert_eq!(dial.attr("callerId"), Some("12025550302"));
        assert_eq!(dial.attr("redirect"), Some("true"));
        assert_eq!(dial.child_names(), ["Number"]);
        let noun = &dial.children[0];
        assert_eq!(noun.text, "12025550201");
        assert!(noun.attrs.is_empty() && noun.children.is_empty(), "{xml}");
    }

    #[test]
    fn a_recorded_dial_is_preceded_by_a_record_that_starts_on_answer_and_has_no_ring_tone() {
        let callback = "https://relay.example.com/plivo/recording?session=s1&step=0";
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![phone("+12025550201")],
            caller_id: None,
            timeout_secs: 20,
            action_url: "https://relay.example.com/plivo/dial-status".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: Some(callback.into()),
            ring_tone: Some(crate::domain::rules::RingTone::parse("uk").unwrap()),
        })]);
        let xml = render(&script);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Record", "Dial"], "{xml}");
        let record = &response.children[0];
        assert_eq!(
            record.attr_names(),
            ["startOnDialAnswer", "redirect", "maxLength", "callbackUrl"]
        );
        assert_eq!(record.attr("startOnDialAnswer"), Some("true"));
        assert_eq!(record.attr("redirect"), Some("false"));
        assert_eq!(record.attr("maxLength"), Some("14400"));
        assert_eq!(record.attr("callbackUrl"), Some(callback));
        let dial = &response.children[1];
        assert_eq!(
            dial.attr_names(),
            ["action", "method", "timeout", "redirect"],
            "no recording or ring tone attribute on Plivo's Dial"
        );
    }

    #[test]
    fn dial_without_caller_id_leaves_the_attribute_out() {
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![phone("+442079460123")],
            caller_id: None,
            timeout_secs: 30,
            action_url: "https://relay.example.com/plivo/dial-status".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: None,
            ring_tone: None,
        })]);
        let dial = &parse(&render(&script)).children[0];
        assert_eq!(
            dial.attr_names(),
            ["action", "method", "timeout", "redirect"]
        );
        assert_eq!(dial.attr("timeout"), Some("30"));
        assert_eq!(dial.children[0].text, "442079460123");
    }

    #[test]
    fn simultaneous_dial_rings_a_number_a_sip_uri_and_an_endpoint() {
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![
                phone("+12025550201"),
                DialTarget {
                    target: Target::Sip(SipUri::parse("sip:alice@pbx.example.com").unwrap()),
                    pickup_url: None,
                    screened: false,
                },
                DialTarget {
                    target: Target::Client(ClientIdentity::parse("alice_01.web").unwrap()),
                    pickup_url: None,
                    screened: false,
                },
            ],
            caller_id: Some(number("+12025550302")),
            timeout_secs: 25,
            action_url: "https://relay.example.com/plivo/dial-status?session=s1".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: None,
            ring_tone: None,
        })]);
        let xml = render(&script);
        let dial = &parse(&xml).children[0];
        assert_eq!(dial.attr("timeout"), Some("25"));
        assert_eq!(dial.attr("confirmSound"), None, "no screening: {xml}");
        assert_eq!(dial.attr("confirmKey"), None, "no screening: {xml}");
        assert_eq!(dial.child_names(), ["Number", "User", "User"]);
        let texts: Vec<_> = dial.children.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "12025550201",
                "sip:alice@pbx.example.com",
                "sip:alice_01.web@phone.plivo.com"
            ]
        );
        assert!(dial.children.iter().all(|n| n.attrs.is_empty()), "{xml}");
    }

    #[test]
    fn screening_confirms_the_whole_dial_and_leg_events_go_to_the_callback() {
        let whisper = "https://relay.example.com/plivo/screen?session=s1&destination=desk";
        let events = "https://relay.example.com/plivo/hangup?session=s1&step=0";
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![
                phone("+12025550201"),
                DialTarget {
                    target: Target::Sip(
                        SipUri::parse("sip:desk@pbx.example.com;transport=tls").unwrap(),
                    ),
                    pickup_url: None,
                    screened: true,
                },
                DialTarget {
                    target: Target::Phone(number("+12025550202")),
                    pickup_url: None,
                    screened: false,
                },
            ],
            caller_id: Some(number("+12025550302")),
            timeout_secs: 20,
            action_url: "https://relay.example.com/plivo/dial-status?session=s1".into(),
            screen_url: Some(whisper.into()),
            leg_events_url: Some(events.into()),
            record_url: None,
            ring_tone: None,
        })]);
        let xml = render(&script);
        let dial = &parse(&xml).children[0];
        assert_eq!(
            dial.attr_names(),
            [
                "action",
                "method",
                "timeout",
                "callerId",
                "redirect",
                "confirmSound",
                "confirmKey",
                "callbackUrl",
                "callbackMethod"
            ]
        );
        assert_eq!(dial.attr("confirmSound"), Some(whisper));
        assert_eq!(dial.attr("confirmKey"), Some("1"));
        assert_eq!(dial.child_names(), ["Number", "User", "Number"]);
        assert_eq!(
            dial.children[1].text,
            "sip:desk@pbx.example.com;transport=tls"
        );
        // Screening is on the Dial: the nouns carry no per-leg attributes.
        assert!(dial.children.iter().all(|n| n.attrs.is_empty()), "{xml}");
        assert_eq!(dial.attr("callbackUrl"), Some(events));
        assert_eq!(dial.attr("callbackMethod"), Some("POST"));
    }

    #[test]
    fn voicemail_is_a_greeting_then_a_recording() {
        let script = CallScript(vec![
            Step::Say("Please leave a message after the tone.".into()),
            Step::Record {
                action_url: "https://relay.example.com/plivo/voicemail?session=s1".into(),
                max_length_secs: 120,
                transcribe_url: None,
            },
        ]);
        let xml = render(&script);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Speak", "Record"]);
        let speak = &response.children[0];
        assert_eq!(speak.text, "Please leave a message after the tone.");
        assert!(speak.attrs.is_empty() && speak.children.is_empty());
        let record = &response.children[1];
        assert_eq!(
            record.attr_names(),
            ["action", "method", "maxLength", "playBeep", "redirect"]
        );
        assert_eq!(
            record.attr("action"),
            Some("https://relay.example.com/plivo/voicemail?session=s1")
        );
        assert_eq!(record.attr("method"), Some("POST"));
        assert_eq!(record.attr("maxLength"), Some("120"));
        assert_eq!(record.attr("playBeep"), Some("true"));
        assert_eq!(record.attr("redirect"), Some("true"));
        assert!(record.children.is_empty() && record.text.is_empty());
        assert!(xml.ends_with("/></Response>"), "Record is empty: {xml}");
    }

    #[test]
    fn unknown_call_is_a_message_then_hangup() {
        let script = CallScript(vec![
            Step::Say("This number cannot take your call.".into()),
            Step::Hangup,
        ]);
        let xml = render(&script);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["Speak", "Hangup"]);
        assert_eq!(
            response.children[0].text,
            "This number cannot take your call."
        );
        assert!(response.children[1].is_bare(), "{xml}");
        assert!(xml.ends_with("<Hangup/></Response>"), "{xml}");
    }

    #[test]
    fn gather_is_a_dtmf_get_input_with_its_prompt_nested() {
        let script = CallScript(vec![
            Step::Gather {
                action_url: "https://relay.example.com/plivo/screen-result?session=s1&d=desk"
                    .into(),
                num_digits: 1,
                timeout_secs: 8,
                prompt: "Press 1 to take the call.".into(),
            },
            Step::Hangup,
        ]);
        let xml = render(&script);
        let response = parse(&xml);
        assert_eq!(response.child_names(), ["GetInput", "Hangup"]);
        let input = &response.children[0];
        assert_eq!(
            input.attr_names(),
            [
                "action",
                "method",
                "inputType",
                "numDigits",
                "executionTimeout",
                "redirect"
            ]
        );
        assert_eq!(
            input.attr("action"),
            Some("https://relay.example.com/plivo/screen-result?session=s1&d=desk")
        );
        assert_eq!(input.attr("method"), Some("POST"));
        assert_eq!(input.attr("inputType"), Some("dtmf"));
        assert_eq!(input.attr("numDigits"), Some("1"));
        assert_eq!(input.attr("executionTimeout"), Some("8"));
        assert_eq!(input.attr("redirect"), Some("true"));
        assert_eq!(input.child_names(), ["Speak"]);
        assert_eq!(input.children[0].text, "Press 1 to take the call.");
    }

    #[test]
    fn gather_stays_within_the_limits_plivo_accepts() {
        let gather = |timeout_secs, num_digits| {
            let script = CallScript(vec![Step::Gather {
                action_url: "https://relay.example.com/g".into(),
                num_digits,
                timeout_secs,
                prompt: "Press 1.".into(),
            }]);
            parse(&render(&script)).children.remove(0)
        };
        assert_eq!(gather(3, 1).attr("executionTimeout"), Some("5"));
        assert_eq!(gather(5, 1).attr("executionTimeout"), Some("5"));
        assert_eq!(gather(60, 1).attr("executionTimeout"), Some("60"));
        assert_eq!(gather(600, 1).attr("executionTimeout"), Some("60"));
        assert_eq!(gather(10, 0).attr("numDigits"), Some("1"));
        assert_eq!(gather(10, 4).attr("numDigits"), Some("4"));
    }

    #[test]
    fn markup_characters_in_text_and_urls_are_escaped_and_round_trip() {
        let text = r#"Call from <Acme & Sons> "Ltd" 'UK'"#;
        let action = r#"https://relay.example.com/plivo/dial-status?session=a&b="c"&d=<e>"#;
        let whisper = "https://relay.example.com/plivo/screen?session=s1&destination=desk";
        let script = CallScript(vec![
            Step::Say(text.into()),
            Step::Dial(Dial {
                targets: vec![DialTarget {
                    target: Target::Phone(number("+12025550201")),
                    pickup_url: None,
                    screened: true,
                }],
                caller_id: None,
                timeout_secs: 20,
                action_url: action.into(),
                screen_url: Some(whisper.into()),
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
        let xml = render(&script);
        // Nothing of the input survives raw: every `<`, `&` and `"` was
        // escaped (the parser below would not always notice a stray `<` in
        // an attribute).
        for raw in [
            text,
            action,
            whisper,
            "<Acme",
            "a&b",
            "s1&destination",
            "=\"c\"",
        ] {
            assert!(!xml.contains(raw), "{raw:?} unescaped in {xml}");
        }
        let response = parse(&xml);
        assert_eq!(
            response.child_names(),
            ["Speak", "Dial", "GetInput", "Record"]
        );
        assert_eq!(response.children[0].text, text);
        let dial = &response.children[1];
        assert_eq!(dial.attr("action"), Some(action));
        assert_eq!(dial.attr("confirmSound"), Some(whisper));
        let input = &response.children[2];
        assert_eq!(input.attr("action"), Some(action));
        assert_eq!(input.children[0].text, text);
        assert_eq!(response.children[3].attr("action"), Some(action));
    }

    #[test]
    fn line_breaks_survive_and_characters_xml_cannot_carry_are_dropped() {
        let script = CallScript(vec![Step::Say(
            "one\ntwo\r\nthree\u{0}\u{1b}!\u{FFFF}".into(),
        )]);
        let response = parse(&render(&script));
        assert_eq!(response.children[0].text, "one\ntwo\r\nthree!");
    }

    #[test]
    fn empty_speak_is_left_out() {
        let script = CallScript(vec![
            Step::Say(String::new()),
            Step::Gather {
                action_url: "https://relay.example.com/g".into(),
                num_digits: 1,
                timeout_secs: 5,
                prompt: String::new(),
            },
        ]);
        let response = parse(&render(&script));
        assert_eq!(response.child_names(), ["GetInput"]);
        assert!(response.children[0].children.is_empty());
    }

    #[test]
    fn empty_script_is_an_empty_response() {
        let xml = render(&CallScript::default());
        assert_eq!(xml, r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#);
        assert!(parse(&xml).is_bare());
    }
}
