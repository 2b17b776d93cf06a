//! A subscriber: the mobile number whose calls ringrelay moves, where they may
//! go, and how. `SubscriberSpec` is the admin API's body as received;
//! `SubscriberSpec::parse` turns it into a `Subscriber` or names the field
//! that is wrong.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use url::Url;

use super::caller_context::CallerVerification;
use super::error::FieldError;
use super::ids::DestinationId;
use super::phone::{Caller, PhoneNumber, Region};
use super::rules::{self, CallerRule, Decision, Record, RingTone, Route, Schedule, Window};
use super::time::Timestamp;
use super::webhook_target::{TargetPolicy, parse_webhook_url};

pub(crate) const RING_TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 5..=120;
pub(crate) const PICK_TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 3..=60;
pub(crate) const MAX_DESTINATIONS: usize = 10;

/// A validated subscriber, as stored and as shown by the admin API: every
/// field with its default filled in, numbers in E.164, no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscriber {
    pub number: PhoneNumber,
    pub forwarding_number: PhoneNumber,
    pub mode: Mode,
    pub strategy: Strategy,
    #[schema(minimum = 5, maximum = 120)]
    pub ring_timeout_secs: u32,
    #[schema(minimum = 3, maximum = 60)]
    pub pick_timeout_secs: u32,
    #[schema(min_items = 1, max_items = 10)]
    pub destinations: Vec<Destination>,
    pub fallback: Fallback,
    /// When the destinations ring; `null`: at any hour.
    #[serde(default)]
    #[schema(required = true)]
    pub schedule: Option<Schedule>,
    /// Who gets through, first match wins.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub caller_rules: Vec<CallerRule>,
    #[serde(default)]
    pub record: Record,
    /// The ringback the caller hears while the hunt runs; `null`: the
    /// provider's default.
    #[serde(default)]
    #[schema(required = true)]
    pub ring_tone: Option<RingTone>,
    /// Do-not-disturb is on until then (`PUT /v1/dnd`); `null` or a past
    /// time: off.
    #[serde(default)]
    #[schema(required = true)]
    pub dnd_until: Option<Timestamp>,
    /// Whether the provider transcribes voicemails: the text reaches the
    /// destinations as `call.voicemail_transcribed`.
    #[serde(default)]
    pub transcribe_voicemail: bool,
    /// The SMS a caller who was missed (or left a voicemail) gets back;
    /// `null`: none.
    #[serde(default)]
    #[schema(required = true)]
    pub missed_call_text: Option<MissedCallText>,
}

/// Most characters of a missed-call text: two SMS segments' worth.
pub(crate) const MAX_TEXT_CHARS: usize = 320;

/// The text a missed caller gets: `body`, with `{subscriber}` replaced by
/// the subscriber's number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MissedCallText {
    /// 1 to 320 characters.
    #[schema(
        min_length = 1,
        max_length = 320,
        example = "Sorry I missed you, I'll call back soon. {subscriber}"
    )]
    pub body: String,
}

impl MissedCallText {
    fn parse(self) -> Result<Self, FieldError> {
        let chars = self.body.trim().chars().count();
        if chars == 0 || chars > MAX_TEXT_CHARS {
            return Err(FieldError::new(
                "missed_call_text.body",
                format!("must be 1 to {MAX_TEXT_CHARS} characters, got {chars}"),
            ));
        }
        Ok(Self {
            body: self.body.trim().to_owned(),
        })
    }

    /// What the caller reads, for subscriber `number`.
    pub(crate) fn for_subscriber(&self, number: &PhoneNumber) -> String {
        self.body.replace("{subscriber}", number.as_str())
    }
}

impl Subscriber {
    /// Decides what a call from `caller` at `at` does, by this subscriber's
    /// rules (see `rules::decide`).
    pub fn route(&self, caller: &Caller, at: Timestamp) -> Decision {
        rules::decide(
            &self.caller_rules,
            self.dnd_until,
            self.schedule.as_ref(),
            self.destinations
                .iter()
                .map(|d| (&d.id, d.hours.as_deref())),
            caller,
            at,
        )
    }

    /// Where a forwarded call from `caller` goes, now that its provider gave
    /// `verification`, when a `failed_verification` rule says otherwise than
    /// the ring report's route (see `rules::decide_on_verification`).
    pub fn route_on_verification(
        &self,
        caller: &Caller,
        verification: CallerVerification,
    ) -> Option<Decision> {
        rules::decide_on_verification(&self.caller_rules, caller, verification)
    }

    /// What a forwarded call from `caller` that no ring report announced
    /// does at `at`: its rules, the verdict its provider gave included.
    pub fn route_forwarded(
        &self,
        caller: &Caller,
        verification: CallerVerification,
        at: Timestamp,
    ) -> Route {
        self.route_on_verification(caller, verification)
            .unwrap_or_else(|| self.route(caller, at))
            .route
    }

    pub(crate) fn destination(&self, id: &DestinationId) -> Option<&Destination> {
        self.destinations.iter().find(|d| &d.id == id)
    }
}

/// How a ringing call is offered to the destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Notify, then reject at once; the forwarded call dials by `strategy`.
    #[default]
    Auto,
    /// Wait until a destination accepts.
    Pick,
}

/// The order the forwarded call dials destinations in (auto mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// One at a time, in list order.
    #[default]
    Sequential,
    /// All in one Dial; the first to answer wins.
    Simultaneous,
}

/// A destination as stored: `id`, `kind` and `address` (see `Target`),
/// `webhook_url` (`null` when none) and `screening`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Destination {
    pub id: DestinationId,
    #[serde(flatten)]
    pub target: Target,
    /// Where the signed event notifications go.
    #[schema(required = true)]
    pub webhook_url: Option<Url>,
    /// Whether the person who answers must press 1 to take the call.
    pub screening: bool,
    /// When this destination rings, in the schedule's time zone (UTC
    /// without a schedule); `null`: whenever the subscriber's do.
    #[serde(default)]
    #[schema(required = true)]
    pub hours: Option<Vec<Window>>,
    /// How long its legs ring, in seconds.
    #[serde(default)]
    #[schema(minimum = 5, maximum = 120)]
    pub ring_timeout_secs: Option<u32>,
}

impl Destination {
    /// How long its legs ring: its own timeout, else the subscriber's.
    pub(crate) fn ring_timeout_secs(&self, subscriber: &Subscriber) -> u32 {
        self.ring_timeout_secs
            .unwrap_or(subscriber.ring_timeout_secs)
    }
}

/// What a destination's `address` dials, by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "address", rename_all = "lowercase")]
pub enum Target {
    Phone(PhoneNumber),
    Sip(SipUri),
    Client(ClientIdentity),
}

/// What happens when no destination takes the call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Fallback {
    #[default]
    Voicemail,
    Phone {
        address: PhoneNumber,
    },
    Hangup,
}

/// A `sip:` or `sips:` URI with a host part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String")]
#[schema(
    pattern = "^[sS][iI][pP][sS]?:",
    max_length = 255,
    example = "sip:alice@pbx.example.com"
)]
pub struct SipUri(String);

impl SipUri {
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("sips:")
            .or_else(|| lower.strip_prefix("sip:"))
            .ok_or_else(|| format!("must be a sip: or sips: URI, got {s:?}"))?;
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = host.split([';', '?']).next().unwrap_or_default();
        let printable = s
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'));
        if host.is_empty() || !printable || s.len() > 255 {
            return Err(format!(
                "must be a sip: or sips: URI with a host, got {s:?}"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SipUri {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

/// A softphone identity (Twilio `<Client>`, Plivo `<User>`): letters, digits,
/// `_`, `.` and `-`, at most 121 characters (Twilio's limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String")]
#[schema(pattern = "^[A-Za-z0-9_.-]{1,121}$", example = "alice")]
pub struct ClientIdentity(String);

impl ClientIdentity {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=121).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "must be 1 to 121 letters, digits, '_', '.' or '-', got {s:?}"
            ))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientIdentity {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

/// The admin API's `PUT /v1/subscribers/{number}` body as received: free-form
/// strings, defaults still missing. Unknown fields are ignored.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "forwarding_number": "+12025550100",
    "mode": "auto",
    "strategy": "sequential",
    "ring_timeout_secs": 20,
    "pick_timeout_secs": 15,
    "destinations": [
        {"id": "desk", "kind": "phone", "address": "+12025550201",
         "webhook_url": "https://crm.example.com/hooks/calls", "screening": false},
        {"id": "laptop", "kind": "client", "address": "alice"},
        {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com",
         "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "18:00"}],
         "ring_timeout_secs": 30}
    ],
    "fallback": {"kind": "voicemail"},
    "schedule": {
        "timezone": "America/New_York",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "20:00"}],
        "outside": "voicemail"
    },
    "caller_rules": [
        {"match": "+12025550377", "action": "vip"},
        {"match": "+1900*", "action": "block"}
    ],
    "record": "answer",
    "ring_tone": "us"
}))]
pub struct SubscriberSpec {
    /// The Twilio/Plivo number the carrier forwards to; E.164 or a national
    /// number of `DEFAULT_REGION`. Must differ from the subscriber's number.
    #[schema(example = "+12025550100")]
    pub forwarding_number: String,
    #[serde(default)]
    #[schema(default = "auto")]
    pub mode: Mode,
    #[serde(default)]
    #[schema(default = "sequential")]
    pub strategy: Strategy,
    /// How long each dial rings, in seconds.
    #[schema(minimum = 5, maximum = 120, default = 20)]
    pub ring_timeout_secs: Option<u32>,
    /// How long pick mode waits for an accept, in seconds.
    #[schema(minimum = 3, maximum = 60, default = 15)]
    pub pick_timeout_secs: Option<u32>,
    /// 1 to 10 destinations with unique ids.
    #[schema(min_items = 1, max_items = 10)]
    pub destinations: Vec<DestinationSpec>,
    /// Voicemail when absent.
    pub fallback: Option<FallbackSpec>,
    /// When the destinations ring; at any hour when absent.
    pub schedule: Option<Schedule>,
    /// Who gets through, first match wins.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub caller_rules: Vec<CallerRule>,
    #[serde(default)]
    #[schema(default = "none")]
    pub record: Record,
    /// A Twilio `ringTone` country code (`us`, `uk`, `de`, …).
    pub ring_tone: Option<RingTone>,
    /// As `GET` shows it, so that a subscriber read can be sent back: when
    /// present it must be the number in the path.
    #[schema(example = "+12025550199")]
    pub number: Option<String>,
    /// As `GET` shows it, read-only: do-not-disturb is set by the phone
    /// (`PUT /v1/dnd`), and a replaced subscriber keeps it.
    pub dnd_until: Option<Timestamp>,
    /// The provider transcribes each voicemail (Twilio transcribes those
    /// up to 120 s, which is every voicemail here) and the text reaches the
    /// destinations as `call.voicemail_transcribed`.
    #[serde(default)]
    #[schema(default = false)]
    pub transcribe_voicemail: bool,
    /// An SMS sent back, once, to a caller whose call ended missed or in
    /// the voicemail, from the forwarding number through the provider that
    /// carried the call (`{subscriber}` in `body` becomes the subscriber's
    /// number); not to withheld callers nor numbers that do not look like
    /// mobiles (toll-free, landlines where they can be told apart).
    pub missed_call_text: Option<MissedCallText>,
}

/// A destination as received.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DestinationSpec {
    /// Unique per subscriber.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$", example = "desk")]
    pub id: String,
    pub kind: TargetKind,
    /// By `kind`: `phone` a number (E.164 or national), `sip` a `sip:`/`sips:`
    /// URI with a host, `client` a softphone identity (letters, digits and
    /// `_`, up to 121 characters; addresses stored before this rule may
    /// also hold `.` and `-`).
    #[schema(example = "+12025550201")]
    pub address: String,
    /// An absolute `http://` or `https://` URL for the signed event
    /// notifications (needs `WEBHOOK_SECRET` on the service); `null` or empty
    /// for none.
    #[schema(example = "https://crm.example.com/hooks/calls")]
    pub webhook_url: Option<String>,
    /// Whether the person who answers must press 1 to take the call.
    #[serde(default)]
    #[schema(default = false)]
    pub screening: bool,
    /// When this destination rings, in the schedule's time zone; whenever
    /// the subscriber's do when absent.
    pub hours: Option<Vec<Window>>,
    /// How long its legs ring; the subscriber's `ring_timeout_secs` when
    /// absent.
    #[schema(minimum = 5, maximum = 120)]
    pub ring_timeout_secs: Option<u32>,
}

/// What a destination's `address` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Phone,
    Sip,
    Client,
}

/// The fallback as received.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FallbackSpec {
    pub kind: FallbackKind,
    /// The number to dial; required when `kind` is `phone`.
    #[schema(example = "+12025550333")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FallbackKind {
    Voicemail,
    Phone,
    Hangup,
}

/// What the rules of a subscriber depend on outside the body itself.
#[derive(Debug, Clone, Copy)]
pub struct SpecRules {
    pub region: Region,
    /// Whether `WEBHOOK_SECRET` is set: destinations with a `webhook_url`
    /// cannot be signed for otherwise.
    pub webhooks_can_be_signed: bool,
    /// Which hosts a `webhook_url` may name (`ALLOW_PRIVATE_WEBHOOKS`).
    pub webhook_targets: TargetPolicy,
}

impl SubscriberSpec {
    pub fn parse(self, number: PhoneNumber, rules: SpecRules) -> Result<Subscriber, FieldError> {
        let phone = |field: &str, raw: &str| {
            PhoneNumber::parse(raw, rules.region)
                .map_err(|e| FieldError::new(field, format!("{e}: {raw:?}")))
        };
        if let Some(given) = &self.number
            && phone("number", given)? != number
        {
            return Err(FieldError::new(
                "number",
                "must be the subscriber's number in the path (or left out)",
            ));
        }
        let forwarding_number = phone("forwarding_number", &self.forwarding_number)?;
        if forwarding_number == number {
            return Err(FieldError::new(
                "forwarding_number",
                "must differ from the subscriber's own number, or forwarded calls would loop",
            ));
        }
        let ring_timeout_secs = bounded(
            "ring_timeout_secs",
            self.ring_timeout_secs,
            20,
            RING_TIMEOUT_SECS,
        )?;
        let pick_timeout_secs = bounded(
            "pick_timeout_secs",
            self.pick_timeout_secs,
            15,
            PICK_TIMEOUT_SECS,
        )?;

        if self.destinations.is_empty() || self.destinations.len() > MAX_DESTINATIONS {
            return Err(FieldError::new(
                "destinations",
                format!(
                    "must list 1 to {MAX_DESTINATIONS} destinations, got {}",
                    self.destinations.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut destinations = Vec::with_capacity(self.destinations.len());
        for (i, spec) in self.destinations.into_iter().enumerate() {
            let at = |name: &str| format!("destinations[{i}].{name}");
            let id = DestinationId::parse(&spec.id).map_err(|m| FieldError::new(at("id"), m))?;
            if !seen.insert(id.clone()) {
                return Err(FieldError::new(
                    at("id"),
                    format!("{id:?} is used twice; ids must be unique"),
                ));
            }
            let target = match spec.kind {
                TargetKind::Phone => Target::Phone(phone(&at("address"), &spec.address)?),
                TargetKind::Sip => Target::Sip(
                    SipUri::parse(&spec.address).map_err(|m| FieldError::new(at("address"), m))?,
                ),
                TargetKind::Client => Target::Client(
                    ClientIdentity::parse(&spec.address)
                        .map_err(|m| FieldError::new(at("address"), m))?,
                ),
            };
            let webhook_url = spec
                .webhook_url
                .filter(|u| !u.is_empty())
                .map(|u| {
                    parse_webhook_url(&u, rules.webhook_targets)
                        .map_err(|m| FieldError::new(at("webhook_url"), m))
                })
                .transpose()?;
            if webhook_url.is_some() && !rules.webhooks_can_be_signed {
                return Err(FieldError::new(
                    at("webhook_url"),
                    "needs WEBHOOK_SECRET to be set on the service, to sign the notifications",
                ));
            }
            if let Some(hours) = &spec.hours {
                rules::check_hours(&at("hours"), hours)?;
            }
            let ring_timeout_secs = bounded(
                &at("ring_timeout_secs"),
                spec.ring_timeout_secs,
                ring_timeout_secs,
                RING_TIMEOUT_SECS,
            )?;
            destinations.push(Destination {
                id,
                target,
                webhook_url,
                screening: spec.screening,
                hours: spec.hours,
                ring_timeout_secs: Some(ring_timeout_secs),
            });
        }

        let fallback = match self.fallback {
            None => Fallback::Voicemail,
            Some(FallbackSpec {
                kind: FallbackKind::Voicemail,
                ..
            }) => Fallback::Voicemail,
            Some(FallbackSpec {
                kind: FallbackKind::Hangup,
                ..
            }) => Fallback::Hangup,
            Some(FallbackSpec {
                kind: FallbackKind::Phone,
                address,
            }) => {
                let address = address.ok_or_else(|| {
                    FieldError::new(
                        "fallback.address",
                        "is required when fallback.kind is phone",
                    )
                })?;
                Fallback::Phone {
                    address: phone("fallback.address", &address)?,
                }
            }
        };

        if let Some(schedule) = &self.schedule {
            rules::check_hours("schedule.hours", &schedule.hours)?;
        }
        rules::check_caller_rules(&self.caller_rules)?;

        Ok(Subscriber {
            number,
            forwarding_number,
            mode: self.mode,
            strategy: self.strategy,
            ring_timeout_secs,
            pick_timeout_secs,
            destinations,
            fallback,
            schedule: self.schedule,
            caller_rules: self.caller_rules,
            record: self.record,
            ring_tone: self.ring_tone,
            dnd_until: None,
            transcribe_voicemail: self.transcribe_voicemail,
            missed_call_text: self
                .missed_call_text
                .map(MissedCallText::parse)
                .transpose()?,
        })
    }
}

fn bounded(
    field: &str,
    value: Option<u32>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, FieldError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            format!(
                "must be from {} to {} seconds, got {value}",
                range.start(),
                range.end()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> SpecRules {
        SpecRules {
            region: Region::default(),
            webhooks_can_be_signed: true,
            webhook_targets: TargetPolicy::PublicOnly,
        }
    }

    fn number() -> PhoneNumber {
        PhoneNumber::parse("+12025550199", Region::default()).unwrap()
    }

    fn parse(body: serde_json::Value) -> Result<Subscriber, FieldError> {
        serde_json::from_value::<SubscriberSpec>(body)
            .unwrap()
            .parse(number(), rules())
    }

    fn minimal() -> serde_json::Value {
        json!({
            "forwarding_number": "+12025550100",
            "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]
        })
    }

    #[test]
    fn defaults_are_filled_in() {
        let s = parse(minimal()).unwrap();
        assert_eq!(s.mode, Mode::Auto);
        assert_eq!(s.strategy, Strategy::Sequential);
        assert_eq!(s.ring_timeout_secs, 20);
        assert_eq!(s.pick_timeout_secs, 15);
        assert_eq!(s.fallback, Fallback::Voicemail);
        assert!(!s.destinations[0].screening);
        assert_eq!(s.destinations[0].webhook_url, None);
    }

    #[test]
    fn serialises_in_the_contract_shape() {
        let mut body = minimal();
        body["destinations"] = json!([
            {"id": "desk", "kind": "phone", "address": "(202) 555-0201", "webhook_url": "https://crm.example.com/hooks"},
            {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com", "screening": true}
        ]);
        body["fallback"] = json!({"kind": "phone", "address": "2025550333"});
        let s = parse(body).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({
                "number": "+12025550199",
                "forwarding_number": "+12025550100",
                "mode": "auto",
                "strategy": "sequential",
                "ring_timeout_secs": 20,
                "pick_timeout_secs": 15,
                "destinations": [
                    {"id": "desk", "kind": "phone", "address": "+12025550201",
                     "webhook_url": "https://crm.example.com/hooks", "screening": false,
                     "hours": null, "ring_timeout_secs": 20},
                    {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com",
                     "webhook_url": null, "screening": true,
                     "hours": null, "ring_timeout_secs": 20}
                ],
                "fallback": {"kind": "phone", "address": "+12025550333"},
                "schedule": null,
                "caller_rules": [],
                "record": "none",
                "ring_tone": null,
                "dnd_until": null,
                "transcribe_voicemail": false,
                "missed_call_text": null
            })
        );
        let back: Subscriber = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_missed_call_text_is_trimmed_kept_to_320_characters_and_names_the_subscriber() {
        let mut body = minimal();
        body["missed_call_text"] =
            json!({"body": format!(" Missed you. {{subscriber}} {} ", "é".repeat(290))});
        let s = parse(body).unwrap();
        let text = s.missed_call_text.unwrap();
        assert!(text.body.starts_with("Missed you.") && !text.body.ends_with(' '));
        let number = PhoneNumber::parse("+12025550199", Region::default()).unwrap();
        assert!(
            text.for_subscriber(&number)
                .starts_with("Missed you. +12025550199 é")
        );
        assert_eq!(parse(minimal()).unwrap().missed_call_text, None);
    }

    #[test]
    fn each_rule_names_its_field() {
        type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "forwarding_number",
                Box::new(|b| b["forwarding_number"] = json!("not a number")),
            ),
            (
                "forwarding_number",
                Box::new(|b| b["forwarding_number"] = json!("+12025550199")),
            ),
            (
                "ring_timeout_secs",
                Box::new(|b| b["ring_timeout_secs"] = json!(4)),
            ),
            (
                "ring_timeout_secs",
                Box::new(|b| b["ring_timeout_secs"] = json!(121)),
            ),
            (
                "pick_timeout_secs",
                Box::new(|b| b["pick_timeout_secs"] = json!(2)),
            ),
            (
                "pick_timeout_secs",
                Box::new(|b| b["pick_timeout_secs"] = json!(61)),
            ),
            ("destinations", Box::new(|b| b["destinations"] = json!([]))),
            (
                "destinations",
                Box::new(|b| {
                    b["destinations"] = json!(
                        (0..11)
                            .map(
                                |i| json!({"id": format!("d{i}"), "kind": "client", "address": "a"})
                            )
                            .collect::<Vec<_>>()
                    )
                }),
            ),
            (
                "destinations[0].id",
                Box::new(|b| b["destinations"][0]["id"] = json!("Desk")),
            ),
            (
                "destinations[0].id",
                Box::new(|b| b["destinations"][0]["id"] = json!("")),
            ),
            (
                "destinations[0].id",
                Box::new(|b| b["destinations"][0]["id"] = json!("a".repeat(33))),
            ),
            (
                "destinations[1].id",
                Box::new(
                    |b| b["destinations"] = json!([{"id": "x", "kind": "client", "address": "a"}, {"id": "x", "kind": "client", "address": "b"}]),
                ),
            ),
            (
                "destinations[0].address",
                Box::new(|b| b["destinations"][0]["address"] = json!("12")),
            ),
            (
                "destinations[0].address",
                Box::new(|b| {
                    b["destinations"][0] =
                        json!({"id": "pbx", "kind": "sip", "address": "alice@pbx.example.com"})
                }),
            ),
            (
                "destinations[0].address",
                Box::new(|b| {
                    b["destinations"][0] = json!({"id": "pbx", "kind": "sip", "address": "sip:"})
                }),
            ),
            (
                "destinations[0].address",
                Box::new(|b| {
                    b["destinations"][0] =
                        json!({"id": "web", "kind": "client", "address": "alice smith"})
                }),
            ),
            (
                "destinations[0].webhook_url",
                Box::new(|b| b["destinations"][0]["webhook_url"] = json!("crm.example.com/hook")),
            ),
            (
                "destinations[0].webhook_url",
                Box::new(|b| {
                    b["destinations"][0]["webhook_url"] = json!("ftp://crm.example.com/hook")
                }),
            ),
            (
                "fallback.address",
                Box::new(|b| b["fallback"] = json!({"kind": "phone"})),
            ),
            (
                "fallback.address",
                Box::new(|b| b["fallback"] = json!({"kind": "phone", "address": "nope"})),
            ),
        ];
        let cases = cases.into_iter().chain([
            (
                "missed_call_text.body",
                Box::new(|b: &mut serde_json::Value| b["missed_call_text"] = json!({"body": " "}))
                    as Mutation,
            ),
            (
                "missed_call_text.body",
                Box::new(|b: &mut serde_json::Value| {
                    b["missed_call_text"] = json!({"body": "x".repeat(MAX_TEXT_CHARS + 1)})
                }),
            ),
        ]);
        for (field, mutate) in cases {
            let mut body = minimal();
            mutate(&mut body);
            let err = parse(body.clone()).expect_err(&format!("{body} should fail"));
            assert_eq!(err.field, field, "{body}: {err}");
        }
    }

    #[test]
    fn webhook_destinations_need_a_webhook_secret() {
        let mut body = minimal();
        body["destinations"][0]["webhook_url"] = json!("https://crm.example.com/hook");
        let spec: SubscriberSpec = serde_json::from_value(body).unwrap();
        let err = spec
            .parse(
                number(),
                SpecRules {
                    webhooks_can_be_signed: false,
                    webhook_targets: TargetPolicy::PublicOnly,
                    ..rules()
                },
            )
            .unwrap_err();
        assert_eq!(err.field, "destinations[0].webhook_url");
        assert!(err.message.contains("WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn sip_uris_and_client_identities_are_kept_as_written() {
        let mut body = minimal();
        body["destinations"] = json!([
            {"id": "pbx", "kind": "sips", "address": "x"},
        ]);
        assert!(
            serde_json::from_value::<SubscriberSpec>(body).is_err(),
            "unknown kind"
        );
        assert_eq!(
            SipUri::parse("SIP:bob@10.0.0.1:5060;transport=tcp")
                .unwrap()
                .as_str(),
            "SIP:bob@10.0.0.1:5060;transport=tcp"
        );
        assert!(SipUri::parse("sip:pbx.example.com").is_ok());
        assert!(SipUri::parse("sip:a@").is_err());
        assert!(SipUri::parse("sip:<a@b>").is_err());
        assert!(ClientIdentity::parse("alice_01.web-app").is_ok());
    }
}
