//! What an answer from a server we call says about trying again, read the
//! same way wherever this service calls out (destinations' webhooks,
//! browsers' push services, the providers' REST APIs): which statuses may
//! succeed later, the server's own `Retry-After` (delta-seconds or an
//! HTTP-date), and a transport failure in words that hold no URL.

use std::time::{Duration, SystemTime};

/// A `Retry-After` value, as a pause from `now`: delta-seconds (`120`) or an
/// HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, and the two obsolete forms
/// HTTP still asks recipients to read). A date already past is no pause;
/// anything else is `None` (the backoff applies).
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than fit are still "a long time": the ceiling.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// What a receiver's answer other than a success says about trying again.
pub(crate) struct Refusal {
    pub status: reqwest::StatusCode,
    /// A server error, a 429 or a 408: the same request may succeed later.
    pub retryable: bool,
    /// When the receiver asked to be tried again (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Refusal {
    pub(crate) fn of(response: &reqwest::Response) -> Self {
        use reqwest::StatusCode;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        Self {
            status,
            retryable: status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT,
            retry_after,
        }
    }
}

/// The kind of transport failure, without the URL (which may carry a
/// receiver's secret in its query, or a provider's account).
pub(crate) fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "could not connect".into()
    } else {
        "transport error".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + NOW
    }

    #[test]
    fn retry_after_reads_delta_seconds_and_every_http_date_form() {
        let cases = [
            ("120", Some(120)),
            (" 7 ", Some(7)),
            ("0", Some(0)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("Sun, 06 Nov 1994 08:51:37 GMT", Some(120)),
            ("Sunday, 06-Nov-94 08:51:37 GMT", Some(120)),
            ("Sun Nov  6 08:51:37 1994", Some(120)),
            // Past: retry as soon as the floor allows.
            ("Sun, 06 Nov 1994 08:00:00 GMT", Some(0)),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("Sun, 06 Nov 1994 08:51:37 +0100", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                retry_after(value, now()),
                expected.map(Duration::from_secs),
                "{value:?}"
            );
        }
    }
}
