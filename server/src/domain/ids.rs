//! The ids more than one part of the domain names: a destination's (a
//! subscriber lists it, rules skip it, tokens and offers belong to it, legs
//! ring it), a provider's id of a call (a session is claimed by it, the
//! providers read it from their requests), and the phone app's own id of a
//! call (a retried ring report finds its session by it).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A destination's id: `[a-z0-9_-]{1,32}`, unique per subscriber.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String")]
#[schema(pattern = "^[a-z0-9_-]{1,32}$", example = "desk")]
pub struct DestinationId(String);

impl DestinationId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("must match [a-z0-9_-]{{1,32}}, got {s:?}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DestinationId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl fmt::Display for DestinationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The CPaaS id of a call (Twilio `CallSid`, Plivo `CallUUID`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallSid(String);

/// Longer ids are no provider's: refused rather than stored.
const MAX_CALL_SID_LEN: usize = 128;

impl CallSid {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s.len() > MAX_CALL_SID_LEN || s.chars().any(char::is_control) {
            return Err("a call id is 1 to 128 printable characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CallSid {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<CallSid> for String {
    fn from(sid: CallSid) -> String {
        sid.0
    }
}

impl fmt::Display for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallSid({})", self.0)
    }
}

/// The phone app's own id for a ringing call (`device_call_id`): a repeated
/// ring report with the same id is the same call. 1 to 128 bytes, no
/// control characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct DeviceCallId(String);

const MAX_DEVICE_CALL_ID_LEN: usize = 128;

impl DeviceCallId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_DEVICE_CALL_ID_LEN || s.chars().any(char::is_control) {
            return Err("must be 1 to 128 printable characters".into());
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for DeviceCallId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<DeviceCallId> for String {
    fn from(id: DeviceCallId) -> String {
        id.0
    }
}

impl fmt::Debug for DeviceCallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceCallId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_sids_are_printable_and_bounded() {
        assert_eq!(CallSid::parse(" CA1 ").unwrap().as_str(), "CA1");
        assert!(CallSid::parse("").is_err());
        assert!(CallSid::parse("a\nb").is_err());
        assert!(CallSid::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn device_call_ids_are_1_to_128_printable_characters() {
        assert_eq!(
            String::from(DeviceCallId::parse("a1b2c3").unwrap()),
            "a1b2c3"
        );
        assert!(DeviceCallId::parse(&"x".repeat(128)).is_ok());
        for bad in [String::new(), "x".repeat(129), "a\nb".into()] {
            assert!(DeviceCallId::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
