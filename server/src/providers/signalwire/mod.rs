//! SignalWire: Twilio's signature algorithm keyed with the project's signing
//! key (`X-SignalWire-Signature`, or `X-Twilio-Signature` as its SDKs also
//! read), Twilio's parameter names, and cXML: softphones are Verto clients
//! (`<Verto>alice@<your SIP domain>.verto.signalwire.com</Verto>`).

pub(crate) mod api;
use secrecy::{ExposeSecret as _, SecretString};

use super::twilio::signature;
use super::twiml::render::{ClientNoun, Dialect, render};
use super::{
    Provider, ProviderVars, Rotating, SignatureError, VariableProblem, Verified, WebhookRequest,
};
use crate::flow::model::{CallScript, ProviderRoutes, Screening};

pub(crate) struct SignalWire;

/// What SignalWire's routes need.
pub(crate) struct SignalWireConfig {
    /// The project's signing key, and the next one while it rotates.
    signing_key: Rotating<SecretString>,
    /// Where Verto addresses live: `<space>.verto.signalwire.com`.
    verto_domain: Option<String>,
}

const SIGNING_KEY: &str = "SIGNALWIRE_SIGNING_KEY";
/// Optional: the space's SIP domain (`example` in
/// `example.verto.signalwire.com`), which Verto addresses end in.
const SIP_DOMAIN: &str = "SIGNALWIRE_SIP_DOMAIN";

impl Provider for SignalWire {
    const NAME: &'static str = "signalwire";
    const VARIABLES: &'static [&'static str] = &[
        SIGNING_KEY,
        SIP_DOMAIN,
        "SIGNALWIRE_PROJECT_ID",
        "SIGNALWIRE_API_TOKEN",
        "SIGNALWIRE_SPACE",
        "SIGNALWIRE_API_BASE",
    ];
    const SIGNATURE_HEADERS: &'static [&'static str] =
        &["x-signalwire-signature", "x-twilio-signature"];
    const MARKUP_CONTENT_TYPE: &'static str = "text/xml; charset=utf-8";
    const ROUTES: ProviderRoutes = ProviderRoutes {
        answer: "/signalwire/voice",
        status: "/signalwire/status",
        dial_status: "/signalwire/dial-status",
        voicemail: "/signalwire/voicemail",
        screen: "/signalwire/screen",
        screen_result: "/signalwire/screen-result",
        recording: "/signalwire/recording",
        transcription: "/signalwire/transcription",
    };
    const SCREENING: Screening = Screening::GatherOnLeg;

    type Config = SignalWireConfig;

    fn configure(vars: &ProviderVars) -> Result<Option<Self::Config>, VariableProblem> {
        let verto_domain = match vars.get(SIP_DOMAIN).map(|d| d.expose_secret().trim()) {
            None => None,
            Some(domain) => Some(format!(
                "{}.verto.signalwire.com",
                sip_domain(domain).map_err(|p| (SIP_DOMAIN, p))?
            )),
        };
        Ok(vars
            .rotating(SIGNING_KEY, |key| Ok(SecretString::from(key)))?
            .map(|signing_key| SignalWireConfig {
                signing_key,
                verto_domain,
            }))
    }

    fn verify(
        config: &Self::Config,
        request: &WebhookRequest<'_>,
    ) -> Result<Verified, SignatureError> {
        let params = signature::request_params(request);
        let header = request
            .header("x-signalwire-signature")
            .or_else(|| request.header("x-twilio-signature"));
        let (variant, key) = config.signing_key.verify(|key| {
            signature::verify_request(
                key.expose_secret().as_bytes(),
                request,
                &params,
                header,
                &[],
            )
        })?;
        Ok(Verified {
            params,
            key,
            variant,
        })
    }

    fn render(config: &Self::Config, script: &CallScript) -> String {
        let domain = config.verto_domain.as_deref();
        let dialect = Dialect {
            client: ClientNoun::Verto { domain },
            answer_on_bridge: true,
            record_attributes: &[],
            transcription: Dialect::TWILIO.transcription,
        };
        render(script, &dialect)
    }
}

/// The space's SIP domain name (`example` of `example.verto.signalwire.com`).
fn sip_domain(value: &str) -> Result<&str, String> {
    let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
    if value.chars().all(label) && value.len() <= 63 {
        Ok(value)
    } else {
        Err(format!(
            "must be your space's SIP domain name (letters, digits and '-', as in \
             <name>.verto.signalwire.com), got {value:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::{PhoneNumber, Region};
    use crate::domain::subscriber::{ClientIdentity, Target};
    use crate::flow::model::{Dial, DialTarget, Step};
    use crate::providers::parsed_markup::parse;

    fn script() -> CallScript {
        let number = PhoneNumber::parse("+12025550201", Region::default()).unwrap();
        let whispered = |target| DialTarget {
            target,
            pickup_url: Some("https://relay.example.com/signalwire/screen".into()),
            screened: false,
        };
        CallScript(vec![Step::Dial(Dial {
            targets: vec![
                whispered(Target::Phone(number)),
                whispered(Target::Client(ClientIdentity::parse("alice").unwrap())),
            ],
            caller_id: None,
            timeout_secs: 20,
            action_url: "https://relay.example.com/signalwire/dial-status".into(),
            screen_url: None,
            leg_events_url: None,
            record_url: None,
            ring_tone: None,
        })])
    }

    /// SignalWire configured with `vars` (its signing key is `12345` unless
    /// given).
    fn configured(vars: &[(&str, &str)]) -> SignalWireConfig {
        let mut set = ProviderVars::default();
        set.insert(SIGNING_KEY, "12345".into());
        for (name, value) in vars {
            assert!(set.insert(name, (*value).into()), "{name}");
        }
        SignalWire::configure(&set).unwrap().unwrap()
    }

    #[test]
    fn cxml_dials_softphones_as_verto_clients_of_the_space_with_no_attributes() {
        let config = configured(&[(SIP_DOMAIN, "example")]);
        let dial = &parse(&SignalWire::render(&config, &script())).children[0];
        assert_eq!(dial.attr("answerOnBridge"), Some("true"));
        assert_eq!(dial.child_names(), ["Number", "Verto"]);
        assert_eq!(dial.children[1].text, "alice@example.verto.signalwire.com");
        assert!(
            dial.children[1].attrs.is_empty(),
            "<Verto> takes no attributes"
        );
        assert!(dial.children[0].attr("url").is_some());
    }

    #[test]
    fn without_the_sip_domain_a_verto_client_is_its_bare_identity() {
        let dial = &parse(&SignalWire::render(&configured(&[]), &script())).children[0];
        assert_eq!(dial.children[1].text, "alice");
    }

    #[test]
    fn the_sip_domain_must_be_a_domain_label() {
        let mut vars = ProviderVars::default();
        vars.insert(SIGNING_KEY, "12345".into());
        vars.insert(SIP_DOMAIN, "my-space".into());
        assert!(SignalWire::configure(&vars).is_ok());
        vars.insert(SIP_DOMAIN, "my space.com".into());
        let Err((variable, _)) = SignalWire::configure(&vars) else {
            panic!("a SIP domain with a space was taken");
        };
        assert_eq!(variable, SIP_DOMAIN);
    }

    #[test]
    fn the_published_vector_verifies_with_either_header() {
        // From SignalWire's validator tests.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let config = configured(&[]);
        for header in ["x-signalwire-signature", "x-twilio-signature"] {
            let mut headers = actix_web::http::header::HeaderMap::new();
            headers.insert(
                actix_web::http::header::HeaderName::from_static(header),
                actix_web::http::header::HeaderValue::from_static("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            );
            let request = WebhookRequest {
                url,
                headers: &headers,
                body: body.as_bytes(),
                received_at: crate::domain::time::Timestamp::now(),
            };
            let read = SignalWire::verify(&config, &request).unwrap();
            assert_eq!(read.params.get("Digits"), Some("1234"), "{header}");
            let forged = WebhookRequest {
                body: b"CallSid=CA1",
                ..request
            };
            assert_eq!(
                SignalWire::verify(&config, &forged),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn the_published_json_vector_verifies_through_its_body_hash() {
        let url = "https://example.ngrok.io/webhook?bodySHA256=69f3cbfc18e386ef8236cb7008cd5a54b7fed637a8cb3373b5a1591d7f0fd5f4";
        let key = b"PSKtest1234567890abcdef";
        let headers = actix_web::http::header::HeaderMap::new();
        let request = |body: &'static [u8]| WebhookRequest {
            url,
            headers: &headers,
            body,
            received_at: crate::domain::time::Timestamp::now(),
        };
        let genuine = request(br#"{"event":"call.state"}"#);
        assert!(
            signature::verify_request(
                key,
                &genuine,
                &signature::request_params(&genuine),
                Some("dfO9ek8mxyFtn2nMz24plPmPfIY="),
                &[]
            )
            .is_ok()
        );
        let tampered = request(br#"{"event":"call.ended"}"#);
        assert_eq!(
            signature::verify_request(
                key,
                &tampered,
                &signature::request_params(&tampered),
                Some("dfO9ek8mxyFtn2nMz24plPmPfIY="),
                &[]
            ),
            Err(SignatureError::Mismatch)
        );
    }
}
