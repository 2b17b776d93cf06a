//! What the provider says of who is calling beyond the number
//! (docs/providers.md, "Who is calling"): the name its lookup found (CNAM) and its STIR/SHAKEN verdict. Both
//! come with the forwarded call; a carrier's forward often loses the
//! caller's token, so `none` is the usual verdict and never a failure.

use serde::{Deserialize, Serialize};

/// Longest caller name kept (CNAM names are 15 characters; some providers
/// send more).
const MAX_NAME_CHARS: usize = 64;

/// The caller's name as the provider's lookup gives it: printable text, its
/// runs of white space made one space, at most [`MAX_NAME_CHARS`]
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallerName(String);

impl CallerName {
    /// The name in `raw`; `None` when nothing printable is left.
    pub fn parse(raw: &str) -> Option<Self> {
        let words: Vec<&str> = raw
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
            .collect();
        let name: String = words.join(" ").chars().take(MAX_NAME_CHARS).collect();
        let name = name.trim_end();
        (!name.is_empty()).then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CallerName {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw).ok_or_else(|| "a caller name is printable text".to_owned())
    }
}

impl From<CallerName> for String {
    fn from(name: CallerName) -> Self {
        name.0
    }
}

impl utoipa::PartialSchema for CallerName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_NAME_CHARS))
            .description(Some(
                "The caller's name as the provider's lookup (CNAM) gives it.",
            ))
            .examples(["JANE DOE"])
            .into()
    }
}

impl utoipa::ToSchema for CallerName {}

/// The provider's STIR/SHAKEN verdict on the caller's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallerVerification {
    /// Attestation A, and the signature checked out: the caller's carrier
    /// vouches that the caller may use the number.
    Verified,
    /// Attestation B or C checked out: the carrier knows the caller, not
    /// that the number is theirs (B), or only where the call came from (C).
    Partial,
    /// The call carried a signature that did not check out.
    Failed,
    /// Nothing to check: no signature came (the usual case for a forwarded
    /// call, whose carrier often drops it), or the provider says nothing.
    #[default]
    None,
}

impl CallerVerification {
    /// A SIP `verstat` as Twilio (`StirVerstat`) and SignalWire send it:
    /// `TN-Validation-Passed-A` (or Telnyx's unsuffixed `-Passed`),
    /// `-Passed-B`, `-Passed-C`, `TN-Validation-Failed…`, `No-TN-Validation`.
    pub fn from_verstat(verstat: Option<&str>) -> Self {
        let Some(verstat) = verstat.map(|v| v.trim().to_ascii_lowercase()) else {
            return Self::None;
        };
        match verstat.strip_prefix("tn-validation-") {
            Some("passed" | "passed-a") => Self::Verified,
            Some("passed-b" | "passed-c") => Self::Partial,
            Some(failed) if failed.starts_with("failed") => Self::Failed,
            _ => Self::None,
        }
    }

    /// An attestation level (`A`, `B`, `C`) and whether the signature
    /// checked out, as Telnyx (`ShakenStirAttestation`,
    /// `ShakenStirValidated`) and Plivo (`STIRAttestation`,
    /// `STIRVerification`) send them. Without a verdict, or with a passed one
    /// of no known level, nothing is known.
    pub fn from_attestation(level: Option<&str>, validated: Option<bool>) -> Self {
        match (validated, level.map(|l| l.trim().to_ascii_uppercase())) {
            (Some(false), _) => Self::Failed,
            (Some(true), Some(level)) if level == "A" => Self::Verified,
            (Some(true), Some(level)) if level == "B" || level == "C" => Self::Partial,
            _ => Self::None,
        }
    }

    pub(crate) fn is_none(&self) -> bool {
        *self == Self::None
    }

    /// How the whisper says it after the caller ("Call from Jane Doe,
    /// verified, …"); nothing when there is nothing to say.
    pub(crate) fn spoken(self) -> Option<&'static str> {
        match self {
            Self::Verified => Some("verified"),
            Self::Partial => Some("partially verified"),
            Self::Failed => Some("failed verification"),
            Self::None => None,
        }
    }
}

/// What the forwarded call's provider says of the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerContext {
    pub name: Option<CallerName>,
    pub verification: CallerVerification,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_printable_text_of_bounded_length() {
        let name = |raw: &str| CallerName::parse(raw).map(|n| n.0);
        assert_eq!(name("JANE DOE"), Some("JANE DOE".into()));
        assert_eq!(name("  WASHINGTON   DC "), Some("WASHINGTON DC".into()));
        assert_eq!(name("Jane\r\nDoe\u{7}"), Some("Jane Doe".into()));
        assert_eq!(name(" \t "), None);
        assert_eq!(name(""), None);
        assert_eq!(name(&"x".repeat(200)).map(|n| n.len()), Some(64));
        let back: CallerName = serde_json::from_str("\"JANE DOE\"").unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), "\"JANE DOE\"");
    }

    /// The mapping docs/providers.md tabulates, value by value.
    #[test]
    fn every_verdict_maps_as_the_table_says() {
        use CallerVerification::*;
        for (verstat, expected) in [
            (Some("TN-Validation-Passed-A"), Verified),
            (Some("TN-Validation-Passed"), Verified),
            (Some("tn-validation-passed-a"), Verified),
            (Some("TN-Validation-Passed-B"), Partial),
            (Some("TN-Validation-Passed-C"), Partial),
            (Some("TN-Validation-Failed-A"), Failed),
            (Some("TN-Validation-Failed-B"), Failed),
            (Some("TN-Validation-Failed-C"), Failed),
            (Some("TN-Validation-Failed"), Failed),
            (Some("No-TN-Validation"), None),
            (Some(""), None),
            (Some("something-else"), None),
            (Option::None, None),
        ] {
            assert_eq!(
                CallerVerification::from_verstat(verstat),
                expected,
                "{verstat:?}"
            );
        }
        for (level, validated, expected) in [
            (Some("A"), Some(true), Verified),
            (Some("a"), Some(true), Verified),
            (Some("B"), Some(true), Partial),
            (Some("C"), Some(true), Partial),
            (Some("A"), Some(false), Failed),
            (Some("C"), Some(false), Failed),
            (Option::None, Some(false), Failed),
            (Some("A"), Option::None, None),
            (Option::None, Some(true), None),
            (Some("D"), Some(true), None),
            (Option::None, Option::None, None),
        ] {
            assert_eq!(
                CallerVerification::from_attestation(level, validated),
                expected,
                "{level:?} {validated:?}"
            );
        }
    }

    #[test]
    fn verdicts_serialise_as_their_names() {
        for (verdict, name) in [
            (CallerVerification::Verified, "verified"),
            (CallerVerification::Partial, "partial"),
            (CallerVerification::Failed, "failed"),
            (CallerVerification::None, "none"),
        ] {
            assert_eq!(serde_json::to_value(verdict).unwrap(), name);
        }
    }
}
