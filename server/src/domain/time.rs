//! A point in time as the domain records and reads it: when a session
//! reached each step, until when do-not-disturb holds, what the rules
//! compare with a schedule. Shown as RFC 3339 in UTC with milliseconds.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// A point in time, shown as RFC 3339 in UTC with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

const RFC3339_MILLIS: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

impl Timestamp {
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        // Truncate to what is shown, so a stored and re-read time compares equal.
        Self(now.replace_millisecond(now.millisecond()).unwrap_or(now))
    }

    /// Milliseconds since the Unix epoch (orders sessions in the store).
    pub fn unix_millis(self) -> i64 {
        i64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// The time `millis` after the Unix epoch (`None` out of range).
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .ok()
            .map(Self)
    }

    pub fn after(self, duration: std::time::Duration) -> Self {
        Self(self.0 + duration)
    }

    pub fn before(self, duration: std::time::Duration) -> Self {
        Self(self.0 - duration)
    }

    /// How long from `self` until `later` (zero when `later` is past).
    pub(crate) fn until(self, later: Timestamp) -> std::time::Duration {
        (later.0 - self.0).try_into().unwrap_or_default()
    }

    pub fn to_rfc3339(self) -> String {
        self.0
            .format(RFC3339_MILLIS)
            .expect("a UTC time always formats")
    }
}

/// RFC 3339 in JSON (and the API); milliseconds since the epoch in a
/// binary format (the compact session encoding, `store::encoding`).
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.unix_millis())
        }
    }
}

/// In the OpenAPI description: the RFC 3339 string the `Serialize` impl writes.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339, in UTC, with milliseconds."))
            .examples(["2026-11-26T15:49:10.123Z"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            let millis = i64::deserialize(d)?;
            return Self::from_unix_millis(millis)
                .ok_or_else(|| serde::de::Error::custom("a time out of range"));
        }
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        // Kept in UTC, as it is shown: `…+01:00` reads as the same instant.
        OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
            .map(|t| Self(t.to_offset(time::UtcOffset::UTC)))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_show_milliseconds_in_utc_and_round_trip() {
        let t = Timestamp::now();
        let s = t.to_rfc3339();
        assert_eq!(s.len(), "2026-11-26T15:49:10.123Z".len(), "{s}");
        assert!(s.ends_with('Z'));
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn a_time_with_an_offset_is_read_as_the_same_instant_in_utc() {
        let t: Timestamp = serde_json::from_str("\"2026-12-05T12:30:00+01:00\"").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-05T11:30:00.000Z");
    }
}
