//! Plivo's REST API (`PLIVO_AUTH_ID` with the current `PLIVO_AUTH_TOKEN`,
//! at `PLIVO_API_BASE`): one client, built once. It sends the text back to
//! a missed caller.

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use url::Url;

use crate::flow::model::{TextAttempt, TextMessage};
use crate::providers::rest;

/// Plivo's API, as configured.
#[derive(Clone)]
pub(crate) struct PlivoApi {
    client: reqwest::Client,
    base: Url,
    auth_id: String,
    auth_token: SecretString,
}

/// A message as Plivo takes it: numbers without the `+`, as Plivo writes
/// them everywhere.
#[derive(Serialize)]
struct Message<'a> {
    src: &'a str,
    dst: &'a str,
    text: &'a str,
}

impl PlivoApi {
    pub(crate) fn new(base: Url, auth_id: String, auth_token: SecretString) -> Self {
        Self {
            client: rest::client("Plivo"),
            base,
            auth_id,
            auth_token,
        }
    }

    /// `POST /v1/Account/{auth_id}/Message/` (the trailing slash is
    /// Plivo's).
    pub(crate) async fn send_text(&self, message: &TextMessage) -> TextAttempt {
        let segments = ["v1", "Account", &self.auth_id, "Message", ""];
        let url = match rest::endpoint(&self.base, "PLIVO_API_BASE", &segments) {
            Ok(url) => url,
            Err(failure) => return TextAttempt::Failed(failure.0),
        };
        let body = Message {
            src: message.from.as_str().trim_start_matches('+'),
            dst: message.to.as_str().trim_start_matches('+'),
            text: &message.body,
        };
        rest::send_text(
            self.client
                .post(url)
                .basic_auth(&self.auth_id, Some(self.auth_token.expose_secret()))
                .json(&body),
        )
        .await
    }
}
