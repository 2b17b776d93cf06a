//! Twilio's REST API (`TWILIO_ACCOUNT_SID` with the current
//! `TWILIO_AUTH_TOKEN`, at `TWILIO_API_BASE`): one client, built once. It
//! sends the text back to a missed caller.

use secrecy::SecretString;
use url::Url;

use crate::flow::model::{TextAttempt, TextMessage};
use crate::providers::rest;
use crate::providers::twiml::messages;

/// Twilio's API, as configured.
#[derive(Clone)]
pub(crate) struct TwilioApi {
    client: reqwest::Client,
    base: Url,
    account_sid: String,
    auth_token: SecretString,
}

impl TwilioApi {
    pub(crate) fn new(base: Url, account_sid: String, auth_token: SecretString) -> Self {
        Self {
            client: rest::client("Twilio"),
            base,
            account_sid,
            auth_token,
        }
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
    pub(crate) async fn send_text(&self, message: &TextMessage) -> TextAttempt {
        let segments = ["2010-04-01", "Accounts", &self.account_sid, "Messages.json"];
        match rest::endpoint(&self.base, "TWILIO_API_BASE", &segments) {
            Ok(url) => {
                messages::send(
                    &self.client,
                    url,
                    &self.account_sid,
                    &self.auth_token,
                    message,
                )
                .await
            }
            Err(failure) => TextAttempt::Failed(failure.0),
        }
    }
}
