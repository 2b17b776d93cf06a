//! A subscriber's rules (docs/api.md): when the destinations ring, who gets
//! through, and how the call is recorded. `decide` applies them once per
//! call (as `Subscriber::route`); everything else follows its [`Route`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::caller_context::CallerVerification;
use super::error::FieldError;
use super::ids::DestinationId;
use super::phone::Caller;
use super::time::Timestamp;

/// Most windows a schedule (or a destination's `hours`) may list.
pub(crate) const MAX_WINDOWS: usize = 28;
/// Most caller rules a subscriber may have.
pub(crate) const MAX_CALLER_RULES: usize = 100;

/// When the destinations ring, in the subscriber's own time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    pub timezone: ZoneName,
    #[schema(min_items = 1, max_items = 28)]
    pub hours: Vec<Window>,
    #[serde(default)]
    pub outside: Outside,
}

/// What a call outside every window of the schedule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outside {
    /// Only the phone rings (the ring report answers `ignore`).
    #[default]
    Phone,
    /// The phone rejects and the forwarded call goes straight to the fallback.
    Voicemail,
}

/// An IANA time zone name that the bundled time zone database knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "Europe/Berlin")]
pub struct ZoneName(String);

impl ZoneName {
    pub fn parse(name: &str) -> Result<Self, String> {
        jiff::tz::db()
            .get(name)
            .map(|_| Self(name.to_owned()))
            .map_err(|_| format!("is not an IANA time zone name, got {:?}", clip(name)))
    }

    fn zone(&self) -> jiff::tz::TimeZone {
        // Checked when parsed, and the database is compiled in: it cannot
        // have lost the name since.
        jiff::tz::db()
            .get(&self.0)
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

impl TryFrom<String> for ZoneName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<ZoneName> for String {
    fn from(name: ZoneName) -> Self {
        name.0
    }
}

/// Days and a time range: `from` on each of `days` until `to`, the next
/// day when `to` is not after `from` (a window that crosses midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Window {
    #[schema(min_items = 1, max_items = 7)]
    pub days: Vec<Day>,
    pub from: ClockTime,
    pub to: ClockTime,
}

impl Window {
    /// Whether the local time `minute` of `day` falls in this window.
    fn contains(&self, day: Day, minute: u16) -> bool {
        let (from, to) = (self.from.0, self.to.0);
        if from < to {
            self.days.contains(&day) && (from..to).contains(&minute)
        } else {
            (self.days.contains(&day) && minute >= from)
                || (self.days.contains(&day.previous()) && minute < to)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    fn of(weekday: jiff::civil::Weekday) -> Self {
        Self::ALL[usize::from(weekday.to_monday_zero_offset().unsigned_abs())]
    }

    fn previous(self) -> Self {
        Self::ALL[(self as usize + 6) % 7]
    }
}

/// A time of day, `HH:MM` on the 24-hour clock; `24:00` ends a window at
/// midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClockTime(u16);

impl ClockTime {
    const MIDNIGHT_END: u16 = 24 * 60;

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "must be a time HH:MM from 00:00 to 24:00, got {:?}",
                clip(s)
            )
        };
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        let minute = h * 60 + m;
        if m >= 60 || minute > Self::MIDNIGHT_END {
            return Err(bad());
        }
        Ok(Self(minute))
    }
}

impl TryFrom<String> for ClockTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<ClockTime> for String {
    fn from(t: ClockTime) -> Self {
        t.to_string()
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl utoipa::PartialSchema for ClockTime {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"))
            .description(Some(
                "A time of day, HH:MM (24:00 ends a window at midnight).",
            ))
            .examples(["09:00"])
            .into()
    }
}

impl utoipa::ToSchema for ClockTime {}

/// One caller rule: calls whose caller matches get `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallerRule {
    #[serde(rename = "match")]
    pub pattern: CallerPattern,
    pub action: CallerAction,
}

/// Which callers a rule is for: one number in E.164, every number that
/// starts with a prefix (`+1900*`), withheld callers, or callers whose
/// number failed the forwarded call's STIR/SHAKEN check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CallerPattern {
    Number(String),
    Prefix(String),
    Withheld,
    /// Decided when the forwarded call arrives: the ring report cannot know
    /// the verdict, so at the ring report this pattern matches nobody.
    FailedVerification,
}

impl CallerPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "withheld" {
            return Ok(Self::Withheld);
        }
        if s == "failed_verification" {
            return Ok(Self::FailedVerification);
        }
        let (digits, prefix) = match s.strip_suffix('*') {
            Some(head) => (head, true),
            None => (s, false),
        };
        let well_formed = digits.strip_prefix('+').is_some_and(|d| {
            (1..=15).contains(&d.len())
                && d.bytes().all(|b| b.is_ascii_digit())
                && !d.starts_with('0')
        });
        if !well_formed {
            return Err(format!(
                "must be an E.164 number, an E.164 prefix ending in '*', \"withheld\" or \"failed_verification\", got {:?}",
                clip(s)
            ));
        }
        Ok(if prefix {
            Self::Prefix(digits.to_owned())
        } else {
            Self::Number(digits.to_owned())
        })
    }

    /// Whether a call from `caller` matches, its STIR/SHAKEN verdict being
    /// `verification` (`None` at the ring report, which cannot know it).
    fn matches(&self, caller: &Caller, verification: Option<CallerVerification>) -> bool {
        match (self, caller.number()) {
            (Self::FailedVerification, _) => verification == Some(CallerVerification::Failed),
            (Self::Withheld, None) => true,
            (Self::Number(n), Some(number)) => number.as_str() == n,
            (Self::Prefix(p), Some(number)) => number.as_str().starts_with(p.as_str()),
            _ => false,
        }
    }
}

impl TryFrom<String> for CallerPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<CallerPattern> for String {
    fn from(p: CallerPattern) -> Self {
        match p {
            CallerPattern::Number(n) => n,
            CallerPattern::Prefix(p) => format!("{p}*"),
            CallerPattern::Withheld => "withheld".to_owned(),
            CallerPattern::FailedVerification => "failed_verification".to_owned(),
        }
    }
}

impl utoipa::PartialSchema for CallerPattern {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(
                r"^(\+[1-9][0-9]{0,14}\*?|withheld|failed_verification)$",
            ))
            .description(Some(
                "An E.164 number, an E.164 prefix ending in `*`, `withheld`, or \
                 `failed_verification` (the forwarded call's STIR/SHAKEN check failed: \
                 decided when it arrives, with `block` or `voicemail` only).",
            ))
            .examples(["+1900*"])
            .into()
    }
}

impl utoipa::ToSchema for CallerPattern {}

/// What a caller rule does with a matching call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallerAction {
    /// The phone rejects; the forwarded call hears busy.
    Block,
    /// The phone rejects; the forwarded call goes straight to the fallback.
    Voicemail,
    /// Only the phone rings.
    Phone,
    /// The destinations ring whatever the hours and do-not-disturb say.
    Vip,
}

/// Whether the dialed legs are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Record {
    #[default]
    None,
    /// From the moment a leg answers, both parties.
    Answer,
}

/// The ringback the caller hears while the hunt runs: one of Twilio's
/// `ringTone` country codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "uk")]
pub struct RingTone(String);

impl RingTone {
    /// Twilio's `<Dial ringTone>` values.
    pub(crate) const CODES: &'static [&'static str] = &[
        "at", "au", "bg", "br", "be", "ch", "cl", "cn", "cz", "de", "dk", "ee", "es", "fi", "fr",
        "gr", "hu", "il", "in", "it", "lt", "jp", "mx", "my", "nl", "no", "nz", "ph", "pl", "pt",
        "ru", "se", "sg", "th", "uk", "us", "us-old", "tw", "ve", "za",
    ];

    pub fn parse(s: &str) -> Result<Self, String> {
        if Self::CODES.contains(&s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "must be one of {}, got {:?}",
                Self::CODES.join(", "),
                clip(s)
            ))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RingTone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<RingTone> for String {
    fn from(t: RingTone) -> Self {
        t.0
    }
}

/// Where a call goes, as the rules decided it when it began. The ring
/// report and the forwarded call both follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Route {
    /// Notify and dial the destinations, but those in `skipped` (outside
    /// their own hours).
    Destinations {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<DestinationId>,
    },
    /// Only the phone rings (the ring report answers `ignore`); a forwarded
    /// call (the carrier's forward on no answer) goes to the fallback.
    Phone,
    /// The phone rejects, nobody is notified, and the forwarded call goes
    /// straight to the fallback.
    Voicemail,
    /// The phone rejects, nobody is notified, and the forwarded call hears
    /// busy.
    Block,
}

impl Default for Route {
    /// Every destination: what a session written before the rules existed
    /// had.
    fn default() -> Self {
        Self::Destinations {
            skipped: Vec::new(),
        }
    }
}

impl Route {
    /// Whether it rings every destination (no rule held one back).
    pub(crate) fn is_every_destination(&self) -> bool {
        matches!(self, Self::Destinations { skipped } if skipped.is_empty())
    }

    /// Whether the destination `id` is notified and dialed.
    pub fn rings(&self, id: &DestinationId) -> bool {
        matches!(self, Self::Destinations { skipped } if !skipped.contains(id))
    }
}

/// What the rules decided for a call, and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub route: Route,
    pub reason: Reason,
}

/// Which rule decided a call's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No rule held the call back.
    Default,
    /// `caller_rules[index]` matched.
    CallerRule(usize),
    DoNotDisturb,
    OutsideSchedule,
    /// Every destination is outside its own hours.
    NoDestinationInHours,
}

impl Reason {
    /// Why only the phone rings, when that is what this reason decided.
    pub fn ignore_reason(self) -> Option<IgnoreReason> {
        match self {
            Self::CallerRule(_) => Some(IgnoreReason::CallerRule),
            Self::OutsideSchedule => Some(IgnoreReason::OutsideSchedule),
            Self::NoDestinationInHours => Some(IgnoreReason::NoDestinationInHours),
            Self::Default | Self::DoNotDisturb => None,
        }
    }
}

/// Why a phone is told `ignore`: it lets its call ring, and nothing is
/// forwarded on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// No CPaaS provider is configured: a rejected call would reach nothing.
    NoProviderConfigured,
    /// A caller rule with `action: phone` matched the caller.
    CallerRule,
    /// Outside the subscriber's schedule, whose `outside` is `phone`.
    OutsideSchedule,
    /// Every destination is outside its own hours.
    NoDestinationInHours,
    /// Pick mode: every destination declined.
    AllDeclined,
    /// Pick mode: no destination accepted within `pick_timeout_secs`.
    PickTimeout,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("no rule applies"),
            Self::CallerRule(i) => write!(f, "caller_rules[{i}] matches the caller"),
            Self::DoNotDisturb => f.write_str("do-not-disturb is on"),
            Self::OutsideSchedule => f.write_str("outside the schedule"),
            Self::NoDestinationInHours => f.write_str("every destination is outside its hours"),
        }
    }
}

/// Decides what a call from `caller` at `at` does, by a subscriber's
/// rules and its destinations' own hours (as `(id, hours)`, in order). The
/// first caller rule that matches wins (a `vip` rings every destination
/// whatever the hours and do-not-disturb say); then do-not-disturb; then
/// the schedule; then each destination's own hours. With no destination
/// left, only the phone rings.
pub(crate) fn decide<'a>(
    caller_rules: &[CallerRule],
    dnd_until: Option<Timestamp>,
    schedule: Option<&Schedule>,
    destination_hours: impl ExactSizeIterator<Item = (&'a DestinationId, Option<&'a [Window]>)>,
    caller: &Caller,
    at: Timestamp,
) -> Decision {
    let decided = |route, reason| Decision { route, reason };
    if let Some((index, rule)) = caller_rules
        .iter()
        .enumerate()
        .find(|(_, rule)| rule.pattern.matches(caller, None))
    {
        let route = match rule.action {
            CallerAction::Block => Route::Block,
            CallerAction::Voicemail => Route::Voicemail,
            CallerAction::Phone => Route::Phone,
            CallerAction::Vip => Route::default(),
        };
        return decided(route, Reason::CallerRule(index));
    }
    if dnd_until.is_some_and(|until| at < until) {
        return decided(Route::Voicemail, Reason::DoNotDisturb);
    }
    // Local time in the schedule's zone (UTC without a schedule: then
    // only destinations' own hours can apply).
    let zone = schedule.map_or(jiff::tz::TimeZone::UTC, |s| s.timezone.zone());
    let local = jiff::Timestamp::from_millisecond(at.unix_millis())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(zone);
    let (day, minute) = (
        Day::of(local.weekday()),
        u16::try_from(local.hour()).unwrap_or(0) * 60 + u16::try_from(local.minute()).unwrap_or(0),
    );
    let open = |hours: &[Window]| hours.iter().any(|w| w.contains(day, minute));
    if let Some(schedule) = schedule
        && !open(&schedule.hours)
    {
        let route = match schedule.outside {
            Outside::Phone => Route::Phone,
            Outside::Voicemail => Route::Voicemail,
        };
        return decided(route, Reason::OutsideSchedule);
    }
    let destinations = destination_hours.len();
    let skipped: Vec<DestinationId> = destination_hours
        .filter(|(_, hours)| hours.is_some_and(|hours| !open(hours)))
        .map(|(id, _)| id.clone())
        .collect();
    if skipped.len() == destinations {
        return decided(Route::Phone, Reason::NoDestinationInHours);
    }
    decided(Route::Destinations { skipped }, Reason::Default)
}

/// Where a forwarded call from `caller` goes once its STIR/SHAKEN verdict
/// is known, when that changes anything: `Some` when the first caller rule
/// that matches, given the verdict, is a `failed_verification` rule (an
/// earlier rule on the number still wins, as it did at the ring report).
pub(crate) fn decide_on_verification(
    caller_rules: &[CallerRule],
    caller: &Caller,
    verification: CallerVerification,
) -> Option<Decision> {
    let (index, rule) = caller_rules
        .iter()
        .enumerate()
        .find(|(_, rule)| rule.pattern.matches(caller, Some(verification)))?;
    let route = match (&rule.pattern, rule.action) {
        (CallerPattern::FailedVerification, CallerAction::Block) => Route::Block,
        (CallerPattern::FailedVerification, _) => Route::Voicemail,
        _ => return None,
    };
    Some(Decision {
        route,
        reason: Reason::CallerRule(index),
    })
}

/// The caller rules, checked: at most [`MAX_CALLER_RULES`], and a
/// `failed_verification` rule only blocks or sends to the fallback (the
/// phone rang long before the verdict came).
pub(crate) fn check_caller_rules(rules: &[CallerRule]) -> Result<(), FieldError> {
    if rules.len() > MAX_CALLER_RULES {
        return Err(FieldError::new(
            "caller_rules",
            format!(
                "must list at most {MAX_CALLER_RULES} rules, got {}",
                rules.len()
            ),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        if rule.pattern == CallerPattern::FailedVerification
            && !matches!(rule.action, CallerAction::Block | CallerAction::Voicemail)
        {
            return Err(FieldError::new(
                format!("caller_rules[{i}].action"),
                "must be block or voicemail with failed_verification: the verdict comes with \
                 the forwarded call, after the phone rang",
            ));
        }
    }
    Ok(())
}

/// The `hours` of a schedule or a destination, checked: 1 to
/// [`MAX_WINDOWS`] windows, each with days and a range that is not empty.
pub(crate) fn check_hours(field: &str, hours: &[Window]) -> Result<(), FieldError> {
    if hours.is_empty() || hours.len() > MAX_WINDOWS {
        return Err(FieldError::new(
            field,
            format!("must list 1 to {MAX_WINDOWS} windows, got {}", hours.len()),
        ));
    }
    for (i, window) in hours.iter().enumerate() {
        if window.days.is_empty() {
            return Err(FieldError::new(
                format!("{field}[{i}].days"),
                "must list at least one day (mon, tue, wed, thu, fri, sat, sun)",
            ));
        }
        if window.from.0 == ClockTime::MIDNIGHT_END {
            return Err(FieldError::new(
                format!("{field}[{i}].from"),
                "must be from 00:00 to 23:59; only `to` may be 24:00",
            ));
        }
        if window.from == window.to {
            return Err(FieldError::new(
                format!("{field}[{i}].to"),
                "must differ from `from`; a whole day is 00:00 to 24:00",
            ));
        }
    }
    Ok(())
}

/// At most 64 characters of what was sent, for error messages (docs/operations.md).
fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::{PhoneNumber, Region};
    use crate::domain::subscriber::{SpecRules, Subscriber, SubscriberSpec};
    use crate::domain::webhook_target::TargetPolicy;
    use serde_json::json;

    fn subscriber(patch: serde_json::Value) -> Subscriber {
        let mut body = json!({
            "forwarding_number": "+12025550100",
            "destinations": [
                {"id": "desk", "kind": "phone", "address": "+12025550201"},
                {"id": "laptop", "kind": "client", "address": "alice"}
            ]
        });
        for (key, value) in patch.as_object().unwrap() {
            body[key] = value.clone();
        }
        serde_json::from_value::<SubscriberSpec>(body)
            .unwrap()
            .parse(
                PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
                SpecRules {
                    region: Region::default(),
                    webhooks_can_be_signed: true,
                    webhook_targets: TargetPolicy::PublicOnly,
                },
            )
            .unwrap()
    }

    fn at(rfc3339: &str) -> Timestamp {
        serde_json::from_value(json!(rfc3339)).unwrap()
    }

    fn caller(number: &str) -> Caller {
        Caller::parse(Some(number), Region::default())
    }

    fn every() -> Route {
        Route::default()
    }

    #[test]
    fn windows_follow_the_time_zone_across_a_daylight_saving_change() {
        let s = subscriber(json!({"schedule": {
            "timezone": "Europe/Berlin",
            "hours": [{"days": ["sat", "sun"], "from": "09:00", "to": "17:00"}],
            "outside": "voicemail"
        }}));
        let c = caller("+12025550302");
        // 07:30 UTC: 08:30 in Berlin on Saturday (CET), 09:30 on Sunday,
        // the day clocks go forward (CEST).
        let cases = [
            ("2026-03-28T07:30:00Z", Route::Voicemail),
            ("2026-03-29T07:30:00Z", every()),
            ("2026-03-29T14:59:00Z", every()),
            ("2026-03-29T15:00:00Z", Route::Voicemail),
            ("2026-03-28T15:59:00Z", every()),
        ];
        for (time, route) in cases {
            assert_eq!(s.route(&c, at(time)).route, route, "{time}");
        }
    }

    #[test]
    fn a_window_that_crosses_midnight_runs_into_the_next_day() {
        let s = subscriber(json!({"schedule": {
            "timezone": "UTC",
            "hours": [{"days": ["fri"], "from": "22:00", "to": "06:00"}]
        }}));
        let c = caller("+12025550302");
        // 2026-12-04 is a Friday.
        let cases = [
            ("2026-12-04T21:59:00Z", Route::Phone),
            ("2026-12-04T22:00:00Z", every()),
            ("2026-12-05T05:59:00Z", every()),
            ("2026-12-05T06:00:00Z", Route::Phone),
            ("2026-12-03T23:00:00Z", Route::Phone),
            ("2026-12-05T22:30:00Z", Route::Phone),
        ];
        for (time, route) in cases {
            assert_eq!(s.route(&c, at(time)).route, route, "{time}");
        }
        // 24:00 ends a window at midnight.
        let whole_day = subscriber(json!({"schedule": {
            "timezone": "UTC",
            "hours": [{"days": ["fri"], "from": "00:00", "to": "24:00"}]
        }}));
        assert_eq!(
            whole_day.route(&c, at("2026-12-04T23:59:00Z")).route,
            every()
        );
        assert_eq!(
            whole_day.route(&c, at("2026-12-05T00:00:00Z")).route,
            Route::Phone
        );
    }

    #[test]
    fn the_first_matching_caller_rule_wins_and_prefixes_need_their_star() {
        let s = subscriber(json!({"caller_rules": [
            {"match": "+12025550302", "action": "vip"},
            {"match": "+1202*", "action": "block"},
            {"match": "+1415", "action": "phone"},
            {"match": "withheld", "action": "voicemail"}
        ]}));
        let now = at("2026-12-05T12:00:00Z");
        let cases = [
            ("+12025550302", every(), Reason::CallerRule(0)),
            ("+12025550303", Route::Block, Reason::CallerRule(1)),
            // An exact rule does not match a longer number.
            ("+14155550100", every(), Reason::Default),
            ("anonymous", Route::Voicemail, Reason::CallerRule(3)),
        ];
        for (number, route, reason) in cases {
            assert_eq!(
                s.route(&caller(number), now),
                Decision { route, reason },
                "{number}"
            );
        }
        let exact =
            subscriber(json!({"caller_rules": [{"match": "+14155550100", "action": "phone"}]}));
        assert_eq!(
            exact.route(&caller("+14155550100"), now).route,
            Route::Phone
        );
    }

    #[test]
    fn a_vip_goes_through_do_not_disturb_which_goes_before_the_schedule() {
        let mut s = subscriber(json!({
            "schedule": {"timezone": "UTC", "hours": [{"days": ["mon"], "from": "09:00", "to": "10:00"}]},
            "caller_rules": [{"match": "+1202555037*", "action": "vip"}]
        }));
        s.destinations[0].hours = Some(vec![Window {
            days: vec![Day::Mon],
            from: ClockTime::parse("09:00").unwrap(),
            to: ClockTime::parse("09:30").unwrap(),
        }]);
        let saturday = at("2026-12-05T12:00:00Z");
        let vip = caller("+12025550377");
        let other = caller("+12025550302");
        assert_eq!(s.route(&other, saturday).reason, Reason::OutsideSchedule);
        s.dnd_until = Some(at("2026-12-05T13:00:00Z"));
        assert_eq!(
            s.route(&other, saturday),
            Decision {
                route: Route::Voicemail,
                reason: Reason::DoNotDisturb
            }
        );
        // The VIP rings every destination, whatever the hours say.
        assert_eq!(s.route(&vip, saturday).route, every());
        // Do-not-disturb ends by itself at its time.
        assert_eq!(
            s.route(&other, at("2026-12-05T13:00:00Z")).reason,
            Reason::OutsideSchedule
        );
        // In the schedule, a destination outside its own hours is skipped.
        let monday = at("2026-12-07T09:45:00Z");
        assert_eq!(
            s.route(&other, monday).route,
            Route::Destinations {
                skipped: vec![DestinationId::parse("desk").unwrap()]
            }
        );
    }

    #[test]
    fn with_no_destination_in_its_hours_only_the_phone_rings() {
        let mut s = subscriber(json!({}));
        let monday_only = vec![Window {
            days: vec![Day::Mon],
            from: ClockTime::parse("09:00").unwrap(),
            to: ClockTime::parse("17:00").unwrap(),
        }];
        for d in &mut s.destinations {
            d.hours = Some(monday_only.clone());
        }
        assert_eq!(
            s.route(&caller("+12025550302"), at("2026-12-05T12:00:00Z")),
            Decision {
                route: Route::Phone,
                reason: Reason::NoDestinationInHours
            }
        );
    }

    #[test]
    fn a_failed_verification_rule_is_decided_on_arrival_where_it_matches_first() {
        use CallerVerification::*;
        let s = subscriber(json!({"caller_rules": [
            {"match": "+12025550377", "action": "vip"},
            {"match": "failed_verification", "action": "block"},
            {"match": "withheld", "action": "voicemail"}
        ]}));
        let now = at("2026-12-05T12:00:00Z");
        let (vip, other) = (caller("+12025550377"), caller("+12025550302"));
        // The ring report cannot know the verdict: the rule matches nobody.
        assert_eq!(s.route(&other, now).reason, Reason::Default);
        let blocked = Some(Decision {
            route: Route::Block,
            reason: Reason::CallerRule(1),
        });
        assert_eq!(s.route_on_verification(&other, Failed), blocked);
        for verdict in [Verified, Partial, None] {
            assert_eq!(
                s.route_on_verification(&other, verdict),
                Option::None,
                "{verdict:?}"
            );
        }
        // An earlier rule on the number matches first, as it did at the ring.
        assert_eq!(s.route_on_verification(&vip, Failed), Option::None);
        assert_eq!(s.route_forwarded(&other, Failed, now), Route::Block);
        assert_eq!(s.route_forwarded(&other, None, now), every());
        assert_eq!(
            s.route_forwarded(&Caller::Withheld, None, now),
            Route::Voicemail
        );
        let to_voicemail = subscriber(json!({"caller_rules": [
            {"match": "failed_verification", "action": "voicemail"}
        ]}));
        assert_eq!(
            to_voicemail
                .route_on_verification(&other, Failed)
                .map(|d| d.route),
            Some(Route::Voicemail)
        );
    }

    #[test]
    fn a_failed_verification_rule_only_blocks_or_sends_to_voicemail() {
        for action in ["phone", "vip"] {
            let body = json!({
                "forwarding_number": "+12025550100",
                "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}],
                "caller_rules": [
                    {"match": "+1202*", "action": "phone"},
                    {"match": "failed_verification", "action": action}
                ]
            });
            let err = serde_json::from_value::<SubscriberSpec>(body)
                .unwrap()
                .parse(
                    PhoneNumber::parse("+12025550199", Region::default()).unwrap(),
                    SpecRules {
                        region: Region::default(),
                        webhooks_can_be_signed: true,
                        webhook_targets: TargetPolicy::PublicOnly,
                    },
                )
                .unwrap_err();
            assert_eq!(err.field, "caller_rules[1].action", "{action}");
        }
        let rule: CallerRule =
            serde_json::from_value(json!({"match": "failed_verification", "action": "voicemail"}))
                .unwrap();
        assert_eq!(rule.pattern, CallerPattern::FailedVerification);
        assert_eq!(
            serde_json::to_value(&rule).unwrap()["match"],
            "failed_verification"
        );
    }

    #[test]
    fn shapes_are_checked_and_echoed() {
        assert!(ClockTime::parse("9:00").is_err());
        assert!(ClockTime::parse("24:01").is_err());
        assert!(ClockTime::parse("12:60").is_err());
        assert_eq!(ClockTime::parse("24:00").unwrap().to_string(), "24:00");
        assert!(CallerPattern::parse("+1*").is_ok());
        for bad in [
            "+",
            "*",
            "+*",
            "12025550302",
            "+0123",
            "+1 202*",
            "Withheld",
        ] {
            assert!(CallerPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(ZoneName::parse("Europe/Berlin").is_ok());
        assert!(ZoneName::parse("Mars/Olympus").is_err());
        assert!(RingTone::parse("uk").is_ok());
        assert!(RingTone::parse("xx").is_err());
        let rule: CallerRule =
            serde_json::from_value(json!({"match": "+1900*", "action": "block"})).unwrap();
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            json!({"match": "+1900*", "action": "block"})
        );
    }
}
