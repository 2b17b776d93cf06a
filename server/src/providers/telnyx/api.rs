//! Telnyx's REST API (`TELNYX_API_KEY`, at `TELNYX_API_BASE`): one client,
//! built once. It mints the access tokens a Telnyx WebRTC SDK logs a
//! telephony credential in with, and sends the text back to a missed
//! caller.

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use url::Url;

use crate::flow::model::{TextAttempt, TextMessage};
use crate::providers::rest::{self, RestFailure};

/// A message as `POST /v2/messages` takes it.
#[derive(Serialize)]
struct Message<'a> {
    from: &'a str,
    to: &'a str,
    text: &'a str,
}

/// Telnyx's API, as configured.
#[derive(Clone)]
pub(crate) struct TelnyxApi {
    client: reqwest::Client,
    base: Url,
    api_key: SecretString,
}

impl TelnyxApi {
    pub(crate) fn new(base: Url, api_key: SecretString) -> Self {
        Self {
            client: rest::client("Telnyx"),
            base,
            api_key,
        }
    }

    /// A fresh access token (a JWT, valid 24 hours) for the telephony
    /// credential `credential_id`:
    /// `POST /v2/telephony_credentials/{id}/token`, whose answer is the
    /// token as text.
    pub(crate) async fn credential_token(
        &self,
        credential_id: &str,
    ) -> Result<String, RestFailure> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| RestFailure("TELNYX_API_BASE cannot take a path".into()))?
            .pop_if_empty()
            .extend(["v2", "telephony_credentials", credential_id, "token"]);
        let response = rest::send(|| {
            self.client
                .post(url.clone())
                .bearer_auth(self.api_key.expose_secret())
                .header(reqwest::header::ACCEPT, "text/plain, application/json")
        })
        .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(RestFailure(format!("answered {status}")));
        }
        let body = response
            .text()
            .await
            .map_err(|_| RestFailure("the answer could not be read".into()))?;
        // The token as text; a JSON string is taken too.
        let token = serde_json::from_str::<String>(&body).unwrap_or(body);
        let token = token.trim();
        if token.split('.').count() != 3 {
            return Err(RestFailure("the answer is not a token".into()));
        }
        Ok(token.to_owned())
    }

    /// `POST /v2/messages` with the API key.
    pub(crate) async fn send_text(&self, message: &TextMessage) -> TextAttempt {
        let url = match rest::endpoint(&self.base, "TELNYX_API_BASE", &["v2", "messages"]) {
            Ok(url) => url,
            Err(failure) => return TextAttempt::Failed(failure.0),
        };
        let body = Message {
            from: message.from.as_str(),
            to: message.to.as_str(),
            text: &message.body,
        };
        rest::send_text(
            self.client
                .post(url)
                .bearer_auth(self.api_key.expose_secret())
                .json(&body),
        )
        .await
    }
}
