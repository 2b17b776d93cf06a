//! When a failed webhook delivery is tried again: exponential backoff from
//! a first pause, or the receiver's own `Retry-After` (delta-seconds or an
//! HTTP-date), clamped between a floor and a ceiling; either way with up to
//! 20 % of jitter, so that receivers coming back are not hit by every
//! sender at once; and a defined end, after `attempts`.

use std::time::{Duration, SystemTime};

/// Retries for events other than `call.ringing`. An input of the
/// application (`startup::Inputs`): tests run with a fast one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The pause before the first retry; each later one is `backoff` times
    /// longer.
    pub first_delay: Duration,
    pub backoff: u32,
    /// The shortest pause a receiver's `Retry-After` may ask for (`0`, or a
    /// date already past, would retry at once).
    pub min_retry_after: Duration,
    /// The longest a receiver's `Retry-After` may make us wait.
    pub max_retry_after: Duration,
    /// Per-attempt deadline.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, 1 s then 5 s then 25 s apart (plus jitter), unless the
    /// receiver asks for 1 to 60 s.
    fn default() -> Self {
        Self {
            attempts: 4,
            first_delay: Duration::from_secs(1),
            backoff: 5,
            min_retry_after: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first), given the
    /// receiver's `Retry-After` if it sent one that could be read; jitter
    /// not included (see [`jittered`]).
    pub(crate) fn pause(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.clamp(self.min_retry_after, self.max_retry_after),
            None => self
                .first_delay
                .saturating_mul(self.backoff.saturating_pow(retry.saturating_sub(1))),
        }
    }
}

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

/// `pause` plus up to a fifth of it, at random.
pub(crate) fn jittered(pause: Duration) -> Duration {
    let fifth = u64::try_from(pause.as_millis() / 5).unwrap_or(u64::MAX);
    if fifth == 0 {
        return pause;
    }
    pause + Duration::from_millis(rand::random::<u64>() % fifth)
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

    #[test]
    fn pauses_back_off_from_the_first_delay_unless_the_receiver_asks_within_bounds() {
        let policy = RetryPolicy::default();
        let secs = |n| Duration::from_secs(n);
        assert_eq!(
            [1, 2, 3].map(|retry| policy.pause(retry, None)),
            [secs(1), secs(5), secs(25)]
        );
        assert_eq!(policy.pause(1, Some(secs(30))), secs(30));
        assert_eq!(policy.pause(3, Some(secs(0))), secs(1), "the floor");
        assert_eq!(policy.pause(1, Some(secs(3600))), secs(60), "the ceiling");
        assert_eq!(
            policy.pause(u32::MAX, None),
            secs(u64::from(u32::MAX)),
            "no overflow"
        );
    }

    #[test]
    fn jitter_adds_at_most_a_fifth() {
        let pause = Duration::from_secs(10);
        for _ in 0..1000 {
            let waited = jittered(pause);
            assert!(pause <= waited && waited < pause + pause / 5, "{waited:?}");
        }
        assert_eq!(jittered(Duration::from_millis(4)), Duration::from_millis(4));
    }
}
