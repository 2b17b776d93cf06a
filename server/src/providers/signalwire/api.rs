//! SignalWire's REST API (`SIGNALWIRE_PROJECT_ID` and
//! `SIGNALWIRE_API_TOKEN`, at `SIGNALWIRE_API_BASE`, by default the
//! space's own host): one client, built once. It mints the JWTs a
//! SignalWire (Relay) browser SDK logs a resource in with, and sends the
//! text back to a missed caller (the LaML Messages resource).

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::flow::model::{TextAttempt, TextMessage};
use crate::providers::rest::{self, RestFailure};
use crate::providers::twiml::messages;

/// SignalWire's API, as configured.
#[derive(Clone)]
pub(crate) struct SignalWireApi {
    client: reqwest::Client,
    base: Url,
    project_id: String,
    api_token: SecretString,
}

#[derive(Serialize)]
struct JwtRequest<'a> {
    resource: &'a str,
    /// Minutes.
    expires_in: u64,
}

#[derive(Deserialize)]
struct JwtAnswer {
    jwt_token: String,
}

impl SignalWireApi {
    pub(crate) fn new(base: Url, project_id: String, api_token: SecretString) -> Self {
        Self {
            client: rest::client("SignalWire"),
            base,
            project_id,
            api_token,
        }
    }

    /// A JWT for `resource` (the client address), valid `minutes`:
    /// `POST /api/relay/rest/jwt` with the project's basic auth.
    pub(crate) async fn relay_jwt(
        &self,
        resource: &str,
        minutes: u64,
    ) -> Result<String, RestFailure> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| RestFailure("SIGNALWIRE_API_BASE cannot take a path".into()))?
            .pop_if_empty()
            .extend(["api", "relay", "rest", "jwt"]);
        let body = JwtRequest {
            resource,
            expires_in: minutes,
        };
        let response = rest::send(|| {
            self.client
                .post(url.clone())
                .basic_auth(&self.project_id, Some(self.api_token.expose_secret()))
                .json(&body)
        })
        .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(RestFailure(format!("answered {status}")));
        }
        let answer: JwtAnswer = response
            .json()
            .await
            .map_err(|_| RestFailure("the answer has no jwt_token".into()))?;
        Ok(answer.jwt_token)
    }

    /// `POST /api/laml/2010-04-01/Accounts/{project}/Messages.json`, as
    /// Twilio's, with the project's basic auth.
    pub(crate) async fn send_text(&self, message: &TextMessage) -> TextAttempt {
        let segments = [
            "api",
            "laml",
            "2010-04-01",
            "Accounts",
            &self.project_id,
            "Messages.json",
        ];
        match rest::endpoint(&self.base, "SIGNALWIRE_API_BASE", &segments) {
            Ok(url) => {
                messages::send(
                    &self.client,
                    url,
                    &self.project_id,
                    &self.api_token,
                    message,
                )
                .await
            }
            Err(failure) => TextAttempt::Failed(failure.0),
        }
    }
}
