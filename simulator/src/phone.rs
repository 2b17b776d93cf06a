//! The subscriber's phone app: reports the ring, obeys the instruction
//! (long-polling while it is `wait`), and reports what it did.

use std::time::Duration;

use anyhow::Context as _;
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::Error;
use super::caller::Caller;
use super::service::Service;
use super::timeline::Timeline;
use ringrelay_server::domain::time::Timestamp;

const PARTY: &str = "phone";

/// The longest long-poll the contract allows is 30 s; a little less keeps
/// clear of any proxy's idle timeout.
const LONG_POLL: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Instruction {
    Reject,
    Wait,
    Ignore,
}

impl Instruction {
    pub fn word(self) -> &'static str {
        instruction_word(self)
    }
}

/// The answer to the ring report.
#[derive(Debug, Clone, Deserialize)]
pub struct Ringing {
    pub session_id: String,
    pub instruction: Instruction,
}

pub struct Phone<'a> {
    service: &'a Service,
    device_token: SecretString,
    timeline: Timeline,
}

impl<'a> Phone<'a> {
    pub fn new(service: &'a Service, device_token: SecretString, timeline: Timeline) -> Self {
        Self {
            service,
            device_token,
            timeline,
        }
    }

    /// `POST /v1/ring`.
    pub async fn report_ring(&self, caller: &Caller) -> Result<Ringing, Error> {
        self.timeline.log(
            PARTY,
            format!("rings: {}; app sends the ring report", caller.number),
        );
        let response = self
            .service
            .client
            .post(self.service.url("/v1/ring"))
            .bearer_auth(self.device_token.expose_secret())
            .json(&json!({"caller": caller.number, "device_call_id": "simulated-call"}))
            .send()
            .await
            .context("POST /v1/ring")?;
        let ringing: Ringing = expect_json(response, StatusCode::CREATED, "POST /v1/ring").await?;
        self.timeline.log(
            PARTY,
            format!("told {}", instruction_word(ringing.instruction)),
        );
        Ok(ringing)
    }

    /// `PUT /v1/dnd`: do-not-disturb on until `until`. The answer
    /// must be 200 `{"dnd_until": until}`.
    pub async fn set_dnd(&self, until: Timestamp) -> Result<Timestamp, Error> {
        // To the millisecond, as RFC 3339 with milliseconds says it.
        let until = Timestamp::from_unix_millis(until.unix_millis()).unwrap_or(until);
        let response = self
            .service
            .client
            .put(self.service.url("/v1/dnd"))
            .bearer_auth(self.device_token.expose_secret())
            .json(&json!({ "until": until.to_rfc3339() }))
            .send()
            .await
            .context("PUT /v1/dnd")?;
        #[derive(Deserialize)]
        struct Answer {
            dnd_until: Option<Timestamp>,
        }
        let answer: Answer = expect_json(response, StatusCode::OK, "PUT /v1/dnd").await?;
        if answer.dnd_until != Some(until) {
            return Err(Error::broken(format!(
                "PUT /v1/dnd until {} answered dnd_until {}",
                until.to_rfc3339(),
                answer
                    .dnd_until
                    .map_or_else(|| "null".to_owned(), Timestamp::to_rfc3339)
            )));
        }
        self.timeline.log(
            PARTY,
            format!(
                "app turns do-not-disturb on until {}: 200",
                until.to_rfc3339()
            ),
        );
        Ok(until)
    }

    /// Long-polls the instruction while it is `wait`, until it changes or
    /// the caller hangs up (then `None`).
    pub async fn wait_for_instruction(
        &self,
        session_id: &str,
        caller: &Caller,
    ) -> Result<Option<Instruction>, Error> {
        loop {
            // Wakes when the caller would hang up, to report `ended` then.
            let left = match caller.hangs_up_at() {
                Some(at) => Duration::from_millis(at.saturating_sub(self.timeline.now_ms())),
                None => LONG_POLL,
            };
            if left.is_zero() {
                return Ok(None);
            }
            let wait = left.min(LONG_POLL).as_secs().max(1);
            let response = self
                .service
                .client
                .get(
                    self.service
                        .url(&format!("/v1/sessions/{session_id}/instruction")),
                )
                .query(&[("wait", wait)])
                .bearer_auth(self.device_token.expose_secret())
                .send()
                .await
                .context("GET /v1/sessions/{id}/instruction")?;
            #[derive(Deserialize)]
            struct Answer {
                instruction: Instruction,
            }
            let answer: Answer = expect_json(
                response,
                StatusCode::OK,
                "GET /v1/sessions/{id}/instruction",
            )
            .await?;
            if answer.instruction != Instruction::Wait {
                self.timeline.log(
                    PARTY,
                    format!("told {}", instruction_word(answer.instruction)),
                );
                return Ok(Some(answer.instruction));
            }
            if !caller.holds_at(self.timeline.now_ms()) {
                return Ok(None);
            }
        }
    }

    /// `POST /v1/sessions/{id}/events`.
    pub async fn report(&self, session_id: &str, event: &str) -> Result<(), Error> {
        let path = format!("/v1/sessions/{session_id}/events");
        let response = self
            .service
            .client
            .post(self.service.url(&path))
            .bearer_auth(self.device_token.expose_secret())
            .json(&json!({ "event": event }))
            .send()
            .await
            .context("POST /v1/sessions/{id}/events")?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(Error::broken(format!(
                "POST /v1/sessions/{{id}}/events ({event}) answered {}, not 204",
                response.status()
            )));
        }
        self.timeline.log(PARTY, format!("reports {event}"));
        Ok(())
    }
}

fn instruction_word(instruction: Instruction) -> &'static str {
    match instruction {
        Instruction::Reject => "reject",
        Instruction::Wait => "wait",
        Instruction::Ignore => "ignore",
    }
}

/// The JSON body of a response that must have `status`.
async fn expect_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    status: StatusCode,
    what: &str,
) -> Result<T, Error> {
    if response.status() != status {
        return Err(Error::broken(format!(
            "{what} answered {}, not {status}",
            response.status()
        )));
    }
    response.json().await.map_err(|e| {
        Error::broken(format!(
            "{what} answered a body that is not the contract's: {e}"
        ))
    })
}
