//! The URLs ringrelay hands a provider (Dial `action`, whisper, `<Record>`
//! action, leg events): our public base, and what we put in their query and
//! read back when the provider calls them. The provider signs the whole
//! URL, so the query comes back as we wrote it.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::caller_context::{CallerContext, CallerName, CallerVerification};
use crate::domain::ids::DestinationId;
use crate::domain::phone::{Caller, PhoneNumber};
use crate::domain::session::{DialAttempt, Session, SessionId};

/// `PUBLIC_BASE_URL` as an absolute http(s) origin plus optional path prefix,
/// kept without a trailing slash so that `base + path` is the URL the
/// provider requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBaseUrl(String);

impl PublicBaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("is not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must start with http:// or https://".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("has no host".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not carry a query or a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        // Keep the text as written (minus a trailing slash): re-serialising
        // through `Url` would drop an explicit default port, and the signature
        // is computed over what the provider was told to call.
        Ok(Self(raw.trim_end_matches('/').to_owned()))
    }

    /// `http://localhost:{port}`: where a service that is told nothing
    /// else is reached.
    pub(crate) fn localhost(port: u16) -> Self {
        Self(format!("http://localhost:{port}"))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The absolute URL of one of our routes (`path` starts with `/`).
    pub(crate) fn join(&self, path: &str) -> String {
        let mut url = String::with_capacity(self.0.len() + path.len());
        url.push_str(&self.0);
        url.push_str(path);
        url
    }
}

/// Our context in the query of a callback URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CallbackQuery {
    pub subscriber: PhoneNumber,
    /// `None` when the store could not give the call a session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionId>,
    /// The plan step of the Dial the callback is about (of the fallback, for
    /// the voicemail's `<Record>`).
    pub step: u16,
    /// The round within that step (it rings again after a decline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u16>,
    /// The destination whose leg the callback is about (whisper, screening).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<DestinationId>,
    /// The caller: what the next leg shows, and what screening announces,
    /// even when the session cannot be read. Absent (or anything but a
    /// number) when withheld.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number_or_withheld"
    )]
    pub caller: Option<PhoneNumber>,
    /// The caller's name, as the forwarded call's provider gave it: what the
    /// whisper says, even when the session cannot be read.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "name_or_none"
    )]
    pub caller_name: Option<CallerName>,
    /// The forwarded call's STIR/SHAKEN verdict, for the whisper too.
    #[serde(
        default,
        skip_serializing_if = "CallerVerification::is_none",
        deserialize_with = "verdict_or_none"
    )]
    pub verification: CallerVerification,
}

/// Who is calling, as the callbacks carry it: the number, and what the
/// forwarded call's provider said of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallerInfo {
    pub number: Caller,
    pub context: CallerContext,
}

impl CallerInfo {
    /// The caller of `session`.
    pub(crate) fn of(session: &Session) -> Self {
        Self {
            number: session.caller().clone(),
            context: session.caller_context(),
        }
    }
}

/// A name that is not one is no name, not a foreign query.
fn name_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<CallerName>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|raw| CallerName::parse(&raw)))
}

/// A verdict we do not know is no verdict, not a foreign query.
fn verdict_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<CallerVerification, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    Ok(raw
        .and_then(|raw| serde_json::from_value(serde_json::Value::String(raw)).ok())
        .unwrap_or_default())
}

/// A caller that is not an E.164 number is withheld, not a foreign query.
fn number_or_withheld<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<PhoneNumber>, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    Ok(raw.and_then(|raw| serde_json::from_value(serde_json::Value::String(raw)).ok()))
}

impl CallbackQuery {
    pub fn new(
        subscriber: &PhoneNumber,
        session: Option<&SessionId>,
        caller: &CallerInfo,
        attempt: DialAttempt,
    ) -> Self {
        Self {
            subscriber: subscriber.clone(),
            session: session.cloned(),
            step: attempt.step,
            round: Some(attempt.round),
            destination: None,
            caller: caller.number.number().cloned(),
            caller_name: caller.context.name.clone(),
            verification: caller.context.verification,
        }
    }

    /// Reads our query back; `None` when it is not one of ours. (The HTTP
    /// edge reads it with `web::Query`, which decodes the same way.)
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn parse(query: &str) -> Option<Self> {
        serde_urlencoded::from_str(query).ok()
    }

    pub(crate) fn for_destination(mut self, destination: &DestinationId) -> Self {
        self.destination = Some(destination.clone());
        self
    }

    pub(crate) fn attempt(&self) -> DialAttempt {
        DialAttempt {
            step: self.step,
            round: self.round.unwrap_or(0),
        }
    }

    pub(crate) fn caller(&self) -> CallerInfo {
        CallerInfo {
            number: self.caller.clone().map_or(Caller::Withheld, Caller::Number),
            context: CallerContext {
                name: self.caller_name.clone(),
                verification: self.verification,
            },
        }
    }

    /// The query string, encoded.
    pub(crate) fn encode(&self) -> String {
        serde_urlencoded::to_string(self).expect("a flat struct of strings always encodes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;

    fn withheld() -> CallerInfo {
        CallerInfo {
            number: Caller::Withheld,
            context: CallerContext::default(),
        }
    }

    #[test]
    fn a_query_round_trips_with_every_field() {
        let subscriber = PhoneNumber::parse("+12025550199", Region::default()).unwrap();
        let caller = CallerInfo {
            number: Caller::parse(Some("+12025550302"), Region::default()),
            context: CallerContext {
                name: CallerName::parse("JANE DOE"),
                verification: CallerVerification::Verified,
            },
        };
        let id = SessionId::generate();
        let query = CallbackQuery::new(
            &subscriber,
            Some(&id),
            &caller,
            DialAttempt { step: 2, round: 1 },
        )
        .for_destination(&DestinationId::parse("desk").unwrap());
        let encoded = query.encode();
        assert!(encoded.contains("caller=%2B12025550302"), "{encoded}");
        assert!(encoded.contains("caller_name=JANE+DOE"), "{encoded}");
        assert!(encoded.contains("verification=verified"), "{encoded}");
        let back = CallbackQuery::parse(&encoded).unwrap();
        assert_eq!(back.caller(), caller);
        assert_eq!(back, query);
    }

    #[test]
    fn a_name_or_verdict_that_is_none_is_not_a_foreign_query() {
        let query = CallbackQuery::parse(
            "subscriber=%2B12025550199&step=0&caller_name=%0A&verification=maybe",
        )
        .unwrap();
        assert_eq!(query.caller().context, CallerContext::default());
    }

    #[test]
    fn a_withheld_caller_and_no_session_leave_their_fields_out() {
        let subscriber = PhoneNumber::parse("+12025550199", Region::default()).unwrap();
        let query = CallbackQuery::new(&subscriber, None, &withheld(), DialAttempt::FIRST);
        assert_eq!(query.encode(), "subscriber=%2B12025550199&step=0&round=0");
        let back = CallbackQuery::parse(&query.encode()).unwrap();
        assert_eq!(back.caller(), withheld());
        assert_eq!(back.attempt(), DialAttempt::FIRST);
        let marked =
            CallbackQuery::parse("subscriber=%2B12025550199&step=0&caller=withheld").unwrap();
        assert_eq!(marked.caller(), withheld());
    }

    #[test]
    fn foreign_queries_are_not_ours() {
        for query in [
            "",
            "step=1",
            "subscriber=alice&step=0",
            "subscriber=%2B12025550199",
            "subscriber=%2B12025550199&step=x",
        ] {
            assert_eq!(CallbackQuery::parse(query), None, "{query:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_query_is_ours_or_not_and_ours_round_trip(query in "\\PC{0,120}", step in 0u16..20, round in 0u16..5) {
            let _ = CallbackQuery::parse(&query);
            let subscriber = PhoneNumber::parse("+12025550199", Region::default()).unwrap();
            let ours = CallbackQuery::new(&subscriber, None, &withheld(), DialAttempt { step, round });
            proptest::prop_assert_eq!(CallbackQuery::parse(&ours.encode()), Some(ours));
        }
    }
}
