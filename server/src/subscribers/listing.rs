//! Pages of the list routes (docs/console.md): their limits and their cursors.
//! A cursor is opaque to clients (base64url of where the page ended); a
//! malformed one is a field error naming `cursor`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::error::FieldError;
use crate::domain::phone::{PhoneNumber, Region};
use crate::domain::session::{Session, SessionId};

/// A page holds this many items unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 200;

/// `limit` as the query gives it: 1 to 200, default 50.
pub fn parse_limit(raw: Option<&str>) -> Result<usize, FieldError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            FieldError::new(
                "limit",
                format!(
                    "must be a whole number from 1 to {MAX_LIMIT}, got {:?}",
                    truncated(raw)
                ),
            )
        })
}

/// One page: the items, and the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// Where a page of subscribers ended: the last number shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberCursor(pub PhoneNumber);

/// Where a page of sessions ended: the last session shown, by when it
/// began and its id (sessions are listed by both, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor {
    pub began_at_millis: i64,
    pub id: SessionId,
}

impl SessionCursor {
    pub fn of(session: &Session) -> Self {
        Self {
            began_at_millis: session.began_at_millis(),
            id: session.id().clone(),
        }
    }

    /// Whether `session` comes after this cursor, newest first.
    pub fn precedes(&self, session: &Session) -> bool {
        (session.began_at_millis(), session.id().as_str())
            < (self.began_at_millis, self.id.as_str())
    }
}

impl SubscriberCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("n:{}", self.0))
    }

    pub fn decode(raw: &str, region: Region) -> Result<Self, FieldError> {
        let text = decoded(raw)?;
        let number = text.strip_prefix("n:").ok_or_else(|| bad_cursor(raw))?;
        let parsed = PhoneNumber::parse(number, region).map_err(|_| bad_cursor(raw))?;
        if parsed.as_str() != number {
            return Err(bad_cursor(raw));
        }
        Ok(Self(parsed))
    }
}

impl SessionCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("s:{}:{}", self.began_at_millis, self.id))
    }

    pub fn decode(raw: &str) -> Result<Self, FieldError> {
        let text = decoded(raw)?;
        let rest = text.strip_prefix("s:").ok_or_else(|| bad_cursor(raw))?;
        let (millis, id) = rest.split_once(':').ok_or_else(|| bad_cursor(raw))?;
        Ok(Self {
            began_at_millis: millis.parse().map_err(|_| bad_cursor(raw))?,
            id: SessionId::parse(id).map_err(|_| bad_cursor(raw))?,
        })
    }
}

fn decoded(raw: &str) -> Result<String, FieldError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| bad_cursor(raw))
}

fn bad_cursor(raw: &str) -> FieldError {
    FieldError::new(
        "cursor",
        format!(
            "is not a cursor this service handed out: {:?}",
            truncated(raw)
        ),
    )
}

/// At most 64 characters of what was sent.
fn truncated(raw: &str) -> String {
    raw.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_make() {
        let number = PhoneNumber::parse("+12025550199", Region::default()).unwrap();
        let cursor = SubscriberCursor(number);
        assert_eq!(
            SubscriberCursor::decode(&cursor.encode(), Region::default()),
            Ok(cursor)
        );
        let id = SessionId::parse("ses_q7Xb2mN4pR8sT1vW3yZ5aB").unwrap();
        let cursor = SessionCursor {
            began_at_millis: 1_764_000_000_123,
            id,
        };
        assert_eq!(SessionCursor::decode(&cursor.encode()), Ok(cursor));
        for bad in [
            "",
            "!!",
            "bm90IGEgY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("s:12:ses_x"),
        ] {
            assert_eq!(SessionCursor::decode(bad).unwrap_err().field, "cursor");
            assert!(SubscriberCursor::decode(bad, Region::default()).is_err());
        }
        assert_eq!(parse_limit(None), Ok(50));
        assert_eq!(parse_limit(Some("200")), Ok(200));
        for bad in ["0", "201", "-1", "ten"] {
            assert_eq!(parse_limit(Some(bad)).unwrap_err().field, "limit");
        }
    }
}
