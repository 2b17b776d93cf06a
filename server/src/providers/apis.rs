//! The providers' REST APIs, each client built once at start from the
//! credentials configured: the softphone tokens use Telnyx's and
//! SignalWire's, the missed-call texts every provider's.

use std::sync::atomic::{AtomicBool, Ordering};

use super::plivo::api::PlivoApi;
use super::signalwire::api::SignalWireApi;
use super::telnyx::api::TelnyxApi;
use super::twilio::api::TwilioApi;
use super::voice_token::VoiceTokenSettings;
use crate::flow::model::{TextAttempt, TextGateway, TextMessage};

/// Every provider's API that has its credentials; `Err` names the first
/// variable missing.
pub(crate) struct ProviderApis {
    pub(crate) twilio: Result<TwilioApi, &'static str>,
    pub(crate) plivo: Result<PlivoApi, &'static str>,
    pub(crate) telnyx: Result<TelnyxApi, &'static str>,
    pub(crate) signalwire: Result<SignalWireApi, &'static str>,
    /// Whether "cannot send texts" was logged, by provider (in
    /// `texts_unconfigured`'s order): once a process, not once a call.
    warned: [AtomicBool; 4],
}

fn needs<T: Clone>(value: &Option<T>, variable: &'static str) -> Result<T, &'static str> {
    value.clone().ok_or(variable)
}

impl ProviderApis {
    pub(crate) fn new(s: &VoiceTokenSettings) -> Self {
        Self {
            twilio: (|| -> Result<TwilioApi, &'static str> {
                Ok(TwilioApi::new(
                    needs(&s.twilio_api_base, "TWILIO_API_BASE")?,
                    needs(&s.twilio_account_sid, "TWILIO_ACCOUNT_SID")?,
                    needs(&s.twilio_auth_token, "TWILIO_AUTH_TOKEN")?,
                ))
            })(),
            plivo: (|| -> Result<PlivoApi, &'static str> {
                Ok(PlivoApi::new(
                    needs(&s.plivo_api_base, "PLIVO_API_BASE")?,
                    needs(&s.plivo_auth_id, "PLIVO_AUTH_ID")?,
                    needs(&s.plivo_auth_token, "PLIVO_AUTH_TOKEN")?,
                ))
            })(),
            telnyx: (|| -> Result<TelnyxApi, &'static str> {
                Ok(TelnyxApi::new(
                    needs(&s.telnyx_api_base, "TELNYX_API_BASE")?,
                    needs(&s.telnyx_api_key, "TELNYX_API_KEY")?,
                ))
            })(),
            signalwire: (|| -> Result<SignalWireApi, &'static str> {
                let project_id = needs(&s.signalwire_project_id, "SIGNALWIRE_PROJECT_ID")?;
                let api_token = needs(&s.signalwire_api_token, "SIGNALWIRE_API_TOKEN")?;
                Ok(SignalWireApi::new(
                    needs(&s.signalwire_api_base, "SIGNALWIRE_SPACE")?,
                    project_id,
                    api_token,
                ))
            })(),
            warned: Default::default(),
        }
    }

    /// Logs, the first time only, that `provider` cannot send texts.
    fn unconfigured(&self, index: usize, provider: &str, variable: &'static str) -> TextAttempt {
        if !self.warned[index].swap(true, Ordering::Relaxed) {
            tracing::warn!(
                provider,
                missing = variable,
                "missed-call texts through this provider are skipped: set its API credentials"
            );
        }
        TextAttempt::NotConfigured(variable)
    }
}

#[async_trait::async_trait]
impl TextGateway for ProviderApis {
    async fn send(&self, provider: &str, message: &TextMessage) -> TextAttempt {
        match provider {
            "twilio" => match &self.twilio {
                Ok(api) => api.send_text(message).await,
                Err(missing) => self.unconfigured(0, provider, missing),
            },
            "plivo" => match &self.plivo {
                Ok(api) => api.send_text(message).await,
                Err(missing) => self.unconfigured(1, provider, missing),
            },
            "telnyx" => match &self.telnyx {
                Ok(api) => api.send_text(message).await,
                Err(missing) => self.unconfigured(2, provider, missing),
            },
            "signalwire" => match &self.signalwire {
                Ok(api) => api.send_text(message).await,
                Err(missing) => self.unconfigured(3, provider, missing),
            },
            other => TextAttempt::Failed(format!("no provider {other:?}")),
        }
    }
}
