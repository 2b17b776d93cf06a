//! Telnyx: Ed25519-signed requests (`telnyx-signature-ed25519`), Twilio's
//! parameter names, and TeXML: softphones are Telnyx SIP credentials
//! (`<Sip>sip:<identity>@sip.telnyx.com</Sip>`), voicemail is recorded on one
//! channel, and there is no `answerOnBridge` (Telnyx answers the inbound
//! call before it fetches the first TeXML).

pub(crate) mod api;
pub mod signature;

use ed25519_dalek::VerifyingKey;

use super::twiml::render::{ClientNoun, Dialect, render};
use super::{
    Params, Provider, ProviderVars, Rotating, SignatureError, SignatureVariant, VariableProblem,
    Verified, WebhookRequest, twiml,
};
use crate::domain::caller_context::{CallerContext, CallerName, CallerVerification};
use crate::domain::phone::Region;
use crate::flow::model::{CallScript, InboundCall, ProviderRoutes, Screening};

pub(crate) struct Telnyx;

const PUBLIC_KEY: &str = "TELNYX_PUBLIC_KEY";

/// The domain Telnyx SIP credentials register under.
pub(crate) const SIP_DOMAIN: &str = "sip.telnyx.com";

const DIALECT: Dialect<'static> = Dialect {
    client: ClientNoun::SipUser { domain: SIP_DOMAIN },
    answer_on_bridge: false,
    // TeXML records both channels by default; a voicemail has one voice.
    record_attributes: &[("channels", "single")],
    transcription: ("transcription", "transcriptionCallback"),
};

impl Provider for Telnyx {
    const NAME: &'static str = "telnyx";
    const VARIABLES: &'static [&'static str] = &[PUBLIC_KEY, "TELNYX_API_KEY", "TELNYX_API_BASE"];
    const SIGNATURE_HEADERS: &'static [&'static str] = &["telnyx-signature-ed25519"];
    const MARKUP_CONTENT_TYPE: &'static str = "text/xml; charset=utf-8";
    const ROUTES: ProviderRoutes = ProviderRoutes {
        answer: "/telnyx/voice",
        status: "/telnyx/status",
        dial_status: "/telnyx/dial-status",
        voicemail: "/telnyx/voicemail",
        screen: "/telnyx/screen",
        screen_result: "/telnyx/screen-result",
        recording: "/telnyx/recording",
        transcription: "/telnyx/transcription",
    };
    const SCREENING: Screening = Screening::GatherOnLeg;

    /// The account's public key, and the next one while keys rotate.
    type Config = Rotating<VerifyingKey>;

    fn configure(vars: &ProviderVars) -> Result<Option<Self::Config>, VariableProblem> {
        vars.rotating(PUBLIC_KEY, signature::parse_public_key)
    }

    fn verify(
        keys: &Self::Config,
        request: &WebhookRequest<'_>,
    ) -> Result<Verified, SignatureError> {
        // The raw bytes are what was signed; the form is read after.
        let ((), key) = keys.verify(|key| {
            signature::verify(
                key,
                request.header("telnyx-timestamp"),
                request.header("telnyx-signature-ed25519"),
                request.body,
                request.received_at,
            )
        })?;
        Ok(Verified {
            params: Params::from_form(request.body),
            key,
            variant: SignatureVariant::AsSent,
        })
    }

    /// Twilio's names, but the caller's name is `CallerIdName` and the
    /// STIR/SHAKEN verdict `ShakenStirAttestation` with
    /// `ShakenStirValidated`.
    fn inbound_call(params: &Params, region: Region) -> Option<InboundCall> {
        let validated = match params.get("ShakenStirValidated").map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        };
        Some(InboundCall {
            caller: CallerContext {
                name: params.get("CallerIdName").and_then(CallerName::parse),
                verification: CallerVerification::from_attestation(
                    params.get("ShakenStirAttestation"),
                    validated,
                ),
            },
            ..twiml::inbound_call(params, region)?
        })
    }

    fn render(_keys: &Self::Config, script: &CallScript) -> String {
        render(script, &DIALECT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::{PhoneNumber, Region};
    use crate::domain::subscriber::{ClientIdentity, Target};
    use crate::flow::model::{Dial, DialTarget, Step};
    use crate::providers::parsed_markup::parse;

    /// Rendering needs no key; any will do.
    fn any_keys() -> Rotating<VerifyingKey> {
        Rotating::single(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key())
    }

    fn target(target: Target) -> DialTarget {
        DialTarget {
            target,
            pickup_url: Some("https://relay.example.com/telnyx/screen?d=x".into()),
            screened: false,
        }
    }

    #[test]
    fn texml_dials_softphones_as_telnyx_sip_users_without_answer_on_bridge() {
        let number = PhoneNumber::parse("+12025550201", Region::default()).unwrap();
        let script = CallScript(vec![Step::Dial(Dial {
            targets: vec![
                target(Target::Phone(number)),
                target(Target::Client(ClientIdentity::parse("alice").unwrap())),
            ],
            caller_id: None,
            timeout_secs: 20,
            action_url: "https://relay.example.com/telnyx/dial-status".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: None,
            ring_tone: None,
        })]);
        let dial = &parse(&Telnyx::render(&any_keys(), &script)).children[0];
        assert_eq!(dial.attr("answerOnBridge"), None);
        assert_eq!(dial.child_names(), ["Number", "Sip"]);
        assert_eq!(dial.children[1].text, "sip:alice@sip.telnyx.com");
        assert!(
            dial.children.iter().all(|n| n.attr("url").is_some()),
            "every leg has its whisper"
        );
    }

    #[test]
    fn voicemail_is_recorded_on_one_channel() {
        let script = CallScript(vec![Step::Record {
            action_url: "https://relay.example.com/telnyx/voicemail".into(),
            max_length_secs: 120,
            transcribe_url: None,
        }]);
        let record = &parse(&Telnyx::render(&any_keys(), &script)).children[0];
        assert_eq!(record.attr("channels"), Some("single"));
        assert_eq!(record.attr("maxLength"), Some("120"));
    }
}
