//! What the providers' REST clients share: one `reqwest::Client` per
//! provider, built once with timeouts and no redirects, and a short retry
//! of the failures worth retrying (a user waits on the answer).

use std::time::Duration;

use crate::flow::model::TextAttempt;
use crate::outbound::{Refusal, describe};

/// Attempts of one REST call: the first and two retries.
const ATTEMPTS: u32 = 3;
/// The pause before the first retry; then five times longer.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// The longest `Retry-After` honoured: past it the user has waited enough.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

/// A provider's REST client.
pub(crate) fn client(provider: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("ringrelay/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|err| panic!("building the {provider} REST client: {err}"))
}

/// Why a REST call failed, in words that hold no URL, header or body (they
/// may carry credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RestFailure(pub String);

/// Sends the request `build` makes, again after a transport failure, 408,
/// 429 or 5xx (honouring a short `Retry-After`); the first other answer,
/// or the last failure.
pub(crate) async fn send(
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, RestFailure> {
    let mut pause = FIRST_PAUSE;
    let mut last = RestFailure("no attempt made".into());
    for attempt in 1..=ATTEMPTS {
        let retry_after = match build().send().await {
            Ok(response) => {
                let refusal = Refusal::of(&response);
                if !refusal.retryable {
                    return Ok(response);
                }
                last = RestFailure(format!("answered {}", refusal.status));
                refusal.retry_after
            }
            Err(err) => {
                last = RestFailure(describe(&err));
                None
            }
        };
        if attempt < ATTEMPTS {
            tokio::time::sleep(retry_after.unwrap_or(pause).min(MAX_RETRY_AFTER)).await;
            pause *= 5;
        }
    }
    Err(last)
}

/// `base` with `segments` appended to its path (each one escaped), or why
/// not, naming `variable`.
pub(crate) fn endpoint(
    base: &url::Url,
    variable: &str,
    segments: &[&str],
) -> Result<url::Url, RestFailure> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| RestFailure(format!("{variable} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Sends a text message's request once (a retry is the caller's to
/// decide): 2xx took it; a transport failure before anything was sent,
/// 429 or 503 took nothing and may be tried again; anything else,
/// including a timeout (the provider may have sent it), failed for good.
pub(crate) async fn send_text(request: reqwest::RequestBuilder) -> TextAttempt {
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                return TextAttempt::Sent;
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            {
                return TextAttempt::TryAgain {
                    reason: format!("answered {status}"),
                    retry_after: response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                };
            }
            TextAttempt::Failed(format!("answered {status}"))
        }
        Err(err) if err.is_connect() => TextAttempt::TryAgain {
            reason: "could not connect".into(),
            retry_after: None,
        },
        Err(err) => TextAttempt::Failed(describe(&err)),
    }
}
