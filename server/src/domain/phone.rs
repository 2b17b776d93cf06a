//! Phone numbers in E.164 and the caller of a call, which may be withheld.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The region national-format numbers are read in (`DEFAULT_REGION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl Region {
    pub fn parse(code: &str) -> Result<Self, String> {
        phonenumber::country::Id::from_str(&code.trim().to_ascii_uppercase())
            .map(Self)
            .map_err(|_| {
                format!("is not a known ISO 3166 region code such as US or GB, got {code:?}")
            })
    }
}

impl Default for Region {
    fn default() -> Self {
        Self(phonenumber::country::Id::US)
    }
}

/// A valid phone number, held in E.164 (`+` and up to 15 digits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("is not a phone number")]
    Unparseable,
    #[error("is not a valid phone number for its region")]
    Invalid,
}

impl PhoneNumber {
    /// Parses international (`+…`, `00…` is not guessed) or national input,
    /// the latter in `region`. Input without `+` but starting with a country
    /// code (as Plivo sends) is tried as international when it does not parse
    /// as a national number of `region`.
    pub fn parse(input: &str, region: Region) -> Result<Self, PhoneNumberError> {
        let input = input.trim();
        // International input does not depend on the region: remember it.
        // Webhooks carry the same forwarding numbers and subscribers on every
        // call, and a full parse costs several microseconds.
        if input.starts_with('+') {
            return e164_memo::get_or_parse(input, || Self::parse_uncached(input, region));
        }
        Self::parse_uncached(input, region)
    }

    fn parse_uncached(input: &str, region: Region) -> Result<Self, PhoneNumberError> {
        let parsed =
            phonenumber::parse(Some(region.0), input).map_err(|_| PhoneNumberError::Unparseable)?;
        if parsed.is_valid() {
            return Ok(Self::from_parsed(&parsed));
        }
        if !input.starts_with('+')
            && input.bytes().all(|b| b.is_ascii_digit())
            && let Ok(international) = phonenumber::parse(None, format!("+{input}"))
            && international.is_valid()
        {
            return Ok(Self::from_parsed(&international));
        }
        Err(PhoneNumberError::Invalid)
    }

    fn from_parsed(parsed: &phonenumber::PhoneNumber) -> Self {
        Self(parsed.format().mode(phonenumber::Mode::E164).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the number looks like one that takes text messages: a
    /// mobile, or a number of a plan where mobiles and landlines look alike
    /// (North America). Toll-free, premium, shared-cost numbers, landlines
    /// that can be told apart and anything unknown do not.
    pub(crate) fn looks_mobile(&self) -> bool {
        use phonenumber::Type;
        phonenumber::parse(None, &self.0).is_ok_and(|parsed| {
            matches!(
                parsed.number_type(&phonenumber::metadata::DATABASE),
                Type::Mobile | Type::FixedLineOrMobile
            )
        })
    }

    /// The digits after the country code of a +1 number (`2025550100`).
    pub(crate) fn north_american_national(&self) -> Option<&str> {
        self.0.strip_prefix("+1")
    }

    /// Rebuilds a number this service wrote itself (the store). Only the
    /// E.164 shape is checked: the full parse happened when it was written.
    fn from_canonical(s: &str) -> Option<Self> {
        let digits = s.strip_prefix('+')?;
        (2..=15)
            .contains(&digits.len())
            .then_some(())
            .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'))
            .map(|_| Self(s.to_owned()))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.0)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_canonical(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an E.164 number")))
    }
}

/// The E.164 pattern every number the service shows matches.
const E164_PATTERN: &str = r"^\+[1-9][0-9]{1,14}$";

/// In the OpenAPI description: the E.164 string the `Serialize` impl writes.
impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A phone number in E.164 form."))
            .pattern(Some(E164_PATTERN))
            .examples(["+12025550199"])
            .into()
    }
}

impl utoipa::ToSchema for PhoneNumber {}

/// Who is calling: a number, or nobody we may show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    Number(PhoneNumber),
    /// Withheld, restricted, unknown, or not a number at all. Never an error:
    /// such calls still ring and still get forwarded.
    Withheld,
}

/// A bounded memo of parsed international numbers.
mod e164_memo {
    use std::collections::HashMap;
    use std::sync::{LazyLock, RwLock};

    use super::{PhoneNumber, PhoneNumberError};

    /// Entries kept before the memo starts over; a few hundred KiB at most.
    const CAPACITY: usize = 4096;

    type Memo = HashMap<Box<str>, Result<PhoneNumber, PhoneNumberError>>;
    static MEMO: LazyLock<RwLock<Memo>> = LazyLock::new(Default::default);

    pub(super) fn get_or_parse(
        input: &str,
        parse: impl FnOnce() -> Result<PhoneNumber, PhoneNumberError>,
    ) -> Result<PhoneNumber, PhoneNumberError> {
        if let Some(known) = MEMO.read().unwrap_or_else(|p| p.into_inner()).get(input) {
            return known.clone();
        }
        let parsed = parse();
        let mut memo = MEMO.write().unwrap_or_else(|p| p.into_inner());
        if memo.len() >= CAPACITY {
            memo.clear();
        }
        memo.insert(input.into(), parsed.clone());
        parsed
    }
}

/// The numbers carriers and Twilio use in place of a withheld caller.
const WITHHELD_NUMBERS: &[&str] = &["+266696687", "+86282452253", "+7378742833", "+8656696"];

impl Caller {
    /// Reads a caller as a phone app or a CPaaS reports it. Markers of a
    /// withheld caller, anything with letters, and anything that is not a
    /// valid number all mean `Withheld`.
    pub fn parse(input: Option<&str>, region: Region) -> Self {
        let Some(input) = input.map(str::trim).filter(|s| !s.is_empty()) else {
            return Self::Withheld;
        };
        if input.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Self::Withheld;
        }
        let plus_form = if input.starts_with('+') {
            std::borrow::Cow::Borrowed(input)
        } else {
            std::borrow::Cow::Owned(format!("+{input}"))
        };
        if WITHHELD_NUMBERS.contains(&plus_form.as_ref()) {
            return Self::Withheld;
        }
        PhoneNumber::parse(input, region).map_or(Self::Withheld, Self::Number)
    }

    /// The caller as a key: the E.164 number, or `withheld`.
    pub(crate) fn key(&self) -> &str {
        match self {
            Self::Number(n) => n.as_str(),
            Self::Withheld => "withheld",
        }
    }

    pub(crate) fn number(&self) -> Option<&PhoneNumber> {
        match self {
            Self::Number(n) => Some(n),
            Self::Withheld => None,
        }
    }
}

/// Serialised as the E.164 number, or `null` when withheld.
impl Serialize for Caller {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.number().serialize(s)
    }
}

/// In the OpenAPI description: the E.164 string, or `null` when withheld.
impl utoipa::PartialSchema for Caller {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some(
                "The caller's number in E.164 form, or null when the caller is withheld.",
            ))
            .pattern(Some(E164_PATTERN))
            .examples([serde_json::json!("+12025550302"), serde_json::Value::Null])
            .into()
    }
}

impl utoipa::ToSchema for Caller {}

impl<'de> Deserialize<'de> for Caller {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<PhoneNumber>::deserialize(d)?.map_or(Self::Withheld, Self::Number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Region {
        Region::default()
    }

    #[test]
    fn national_and_international_forms_give_the_same_e164() {
        for input in [
            "+12025550100",
            "(202) 555-0100",
            "202-555-0100",
            "2025550100",
            " +1 202 555 0100 ",
        ] {
            assert_eq!(
                PhoneNumber::parse(input, us()).unwrap().as_str(),
                "+12025550100",
                "{input}"
            );
        }
    }

    #[test]
    fn national_numbers_follow_the_region() {
        let gb = Region::parse("gb").unwrap();
        assert_eq!(
            PhoneNumber::parse("020 7946 0018", gb).unwrap().as_str(),
            "+442079460018"
        );
    }

    #[test]
    fn digits_with_a_country_code_but_no_plus_are_international() {
        // Plivo sends numbers this way.
        assert_eq!(
            PhoneNumber::parse("442079460018", us()).unwrap().as_str(),
            "+442079460018"
        );
        assert_eq!(
            PhoneNumber::parse("12025550100", us()).unwrap().as_str(),
            "+12025550100"
        );
    }

    #[test]
    fn garbage_and_impossible_numbers_are_rejected() {
        assert_eq!(
            PhoneNumber::parse("hello", us()),
            Err(PhoneNumberError::Unparseable)
        );
        assert!(PhoneNumber::parse("+1 000", us()).is_err());
        assert!(PhoneNumber::parse("123", us()).is_err());
    }

    #[test]
    fn remembered_international_numbers_parse_as_before() {
        for input in [
            "+12025550100",
            "+1 202 555 0100",
            "+442079460018",
            "+1000",
            "+12a",
        ] {
            let first = PhoneNumber::parse(input, us());
            let again = PhoneNumber::parse(input, us());
            assert_eq!(first, again, "{input}");
            assert_eq!(first, PhoneNumber::parse_uncached(input, us()), "{input}");
        }
    }

    #[test]
    fn every_withheld_marker_is_withheld() {
        for marker in [
            None,
            Some(""),
            Some("   "),
            Some("anonymous"),
            Some("Anonymous"),
            Some("restricted"),
            Some("unknown"),
            Some("private"),
            Some("+266696687"),
            Some("+86282452253"),
            Some("+7378742833"),
            Some("+8656696"),
            Some("266696687"),
            Some("sip:anonymous@anonymous.invalid"),
            Some("+1202555abcd"),
        ] {
            assert_eq!(Caller::parse(marker, us()), Caller::Withheld, "{marker:?}");
        }
    }

    #[test]
    fn a_real_caller_is_a_number() {
        assert_eq!(
            Caller::parse(Some("202 555 0302"), us()),
            Caller::Number(PhoneNumber::parse("+12025550302", us()).unwrap())
        );
    }

    #[test]
    fn stored_numbers_round_trip_and_bad_ones_are_refused() {
        let n = PhoneNumber::parse("+12025550100", us()).unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), n);
        assert!(serde_json::from_str::<PhoneNumber>("\"2025550100\"").is_err());
        assert!(serde_json::from_str::<PhoneNumber>("\"+12a\"").is_err());
    }

    #[test]
    fn withheld_callers_serialise_as_null() {
        assert_eq!(serde_json::to_string(&Caller::Withheld).unwrap(), "null");
        assert_eq!(
            serde_json::from_str::<Caller>("null").unwrap(),
            Caller::Withheld
        );
    }

    #[test]
    fn mobiles_and_look_alikes_take_texts_toll_free_and_landlines_do_not() {
        let region = Region::default();
        for (number, mobile) in [
            ("+12025550302", true),
            ("+14155550100", true),
            ("+447911123456", true),
            ("+18005551212", false),
            ("+18664005000", false),
            ("+442071838750", false),
            ("+448081570192", false),
        ] {
            let parsed = PhoneNumber::parse(number, region).expect(number);
            assert_eq!(parsed.looks_mobile(), mobile, "{number}");
        }
    }
}
