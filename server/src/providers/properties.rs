//! Property tests of the provider edge (docs/operations.md's fuzzing invariants,
//! run in CI): whatever text a script carries, every renderer writes a
//! well-formed document that reads back to the same words; whatever a
//! client sends, the signature checks answer (they never panic) and refuse
//! it unless it is signed.

use proptest::prelude::*;

use super::parsed_markup::parse;
use super::signalwire::SignalWire;
use super::telnyx::Telnyx;
use super::testing::configured;
use super::twilio::Twilio;
use super::{Provider, plivo, twilio};
use crate::domain::phone::{PhoneNumber, Region};
use crate::domain::rules::RingTone;
use crate::domain::subscriber::Target;
use crate::flow::model::{CallScript, Dial, DialTarget, Step};

/// Any text, control characters, markup and non-ASCII included.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..80).prop_map(|c| c.into_iter().collect())
}

/// What XML 1.0 keeps of a text (the renderers drop what it cannot carry).
fn kept(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            !((c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r'))
                || matches!(c, '\u{FFFE}' | '\u{FFFF}'))
        })
        .collect()
}

fn script(say: String, url: String) -> CallScript {
    let number = PhoneNumber::parse("+12025550201", Region::default()).unwrap();
    CallScript(vec![
        Step::Say(say.clone()),
        Step::Dial(Dial {
            targets: vec![DialTarget {
                target: Target::Phone(number),
                pickup_url: Some(url.clone()),
                screened: true,
            }],
            caller_id: None,
            timeout_secs: 20,
            action_url: url.clone(),
            screen_url: Some(url.clone()),
            leg_events_url: Some(url.clone()),
            record_url: Some(url.clone()),
            ring_tone: Some(RingTone::parse("uk").unwrap()),
        }),
        Step::Gather {
            action_url: url.clone(),
            num_digits: 1,
            timeout_secs: 8,
            prompt: say,
        },
        Step::Record {
            action_url: url.clone(),
            max_length_secs: 120,
            transcribe_url: Some(url),
        },
        Step::Hangup,
        Step::Reject,
    ])
}

/// A TwiML-family document of [`script`] says and points where it was told.
fn twiml_reads_back(xml: &str, say: &str, url: &str) -> Result<(), TestCaseError> {
    let url = kept(url);
    let response = parse(xml);
    let expected_verbs: Vec<&str> = if kept(say).is_empty() {
        vec!["Dial", "Gather", "Record", "Hangup", "Reject"]
    } else {
        vec!["Say", "Dial", "Gather", "Record", "Hangup", "Reject"]
    };
    prop_assert_eq!(response.child_names(), expected_verbs);
    let dial = response.children.iter().find(|c| c.name == "Dial").unwrap();
    prop_assert_eq!(dial.attr("action"), Some(url.as_str()));
    prop_assert_eq!(dial.attr("record"), Some("record-from-answer-dual"));
    prop_assert_eq!(dial.attr("recordingStatusCallback"), Some(url.as_str()));
    prop_assert_eq!(dial.attr("ringTone"), Some("uk"));
    let reject = response.children.last().unwrap();
    prop_assert_eq!(reject.attr("reason"), Some("busy"));
    prop_assert_eq!(dial.children[0].attr("url"), Some(url.as_str()));
    let record = response
        .children
        .iter()
        .find(|c| c.name == "Record")
        .unwrap();
    let transcribed_to = ["transcribeCallback", "transcriptionCallback"]
        .iter()
        .find_map(|name| record.attr(name));
    prop_assert_eq!(transcribed_to, Some(url.as_str()));
    if !kept(say).is_empty() {
        prop_assert_eq!(&response.children[0].text, &kept(say));
    }
    Ok(())
}

proptest! {
    #[test]
    fn twiml_is_well_formed_and_reads_back_the_same(say in text(), url in text()) {
        // The TwiML family: Twilio, Telnyx's TeXML, SignalWire's cXML.
        let script = script(say.clone(), url.clone());
        for markup in [
            Twilio::render(&configured::<Twilio>(), &script),
            Telnyx::render(&configured::<Telnyx>(), &script),
            SignalWire::render(&configured::<SignalWire>(), &script),
        ] {
            twiml_reads_back(&markup, &say, &url)?;
        }
    }


    #[test]
    fn plivo_xml_is_well_formed_and_reads_back_the_same(say in text(), url in text()) {
        let xml = plivo::xml::render(&script(say.clone(), url.clone()));
        let url = kept(&url);
        let response = parse(&xml);
        let at = response.children.iter().position(|c| c.name == "Dial").unwrap();
        let dial = &response.children[at];
        prop_assert_eq!(dial.attr("action"), Some(url.as_str()));
        prop_assert_eq!(dial.attr("confirmSound"), Some(url.as_str()));
        prop_assert_eq!(dial.attr("callbackUrl"), Some(url.as_str()));
        prop_assert_eq!(dial.attr("ringTone"), None, "Plivo has no ring tone");
        // The call's recording starts with the Dial's answer, just before it.
        let record = &response.children[at - 1];
        prop_assert_eq!(record.name.as_str(), "Record");
        prop_assert_eq!(record.attr("startOnDialAnswer"), Some("true"));
        prop_assert_eq!(record.attr("callbackUrl"), Some(url.as_str()));
        let reject = response.children.last().unwrap();
        prop_assert_eq!((reject.name.as_str(), reject.attr("reason")), ("Hangup", Some("busy")));
        let voicemail = response
            .children
            .iter()
            .find(|c| c.name == "Record" && c.attr("startOnDialAnswer").is_none())
            .unwrap();
        prop_assert_eq!(voicemail.attr("transcriptionUrl"), Some(url.as_str()));
        if !kept(&say).is_empty() {
            prop_assert_eq!(&response.children[0].text, &kept(&say));
        }
    }

    #[test]
    fn an_unsigned_or_forged_twilio_request_is_refused(
        url in text(),
        params in proptest::collection::vec((text(), text()), 0..8),
        signature in proptest::option::of(text()),
    ) {
        let result = twilio::signature::verify(b"token", &url, &params, signature.as_deref());
        let genuine = twilio::signature::sign(b"token", &url, &params);
        prop_assert!(result.is_err() || signature.as_deref() == Some(genuine.as_str()));
    }

    #[test]
    fn an_unsigned_or_forged_plivo_request_is_refused(
        url in text(),
        params in proptest::collection::vec((text(), text()), 0..8),
        nonce in proptest::option::of(text()),
        signatures in proptest::option::of(text()),
    ) {
        let result = plivo::signature::verify_v3(
            b"token",
            plivo::signature::Method::Post,
            &url,
            &params,
            nonce.as_deref(),
            signatures.as_deref(),
        );
        prop_assert!(result.is_err());
    }

    #[test]
    fn a_signed_twilio_request_is_accepted(
        path in "/[a-z/-]{0,20}",
        params in proptest::collection::vec(("[A-Za-z]{1,10}", text()), 0..8),
    ) {
        let url = format!("https://relay.example.com{path}");
        let signature = twilio::signature::sign(b"token", &url, &params);
        prop_assert!(twilio::signature::verify(b"token", &url, &params, Some(&signature)).is_ok());
    }
}
