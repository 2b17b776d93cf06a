//! Softphone credentials for `client` destinations (docs/api.md): the
//! token a provider's voice SDK registers the destination's client address
//! with, so that the `<Client>` (`<User>`, `<Sip>`, `<Verto>`) leg of a
//! forwarded call rings it. Twilio's and Plivo's are JWTs signed here;
//! Telnyx's and SignalWire's are minted by their REST APIs.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use super::apis::ProviderApis;
use super::jwt;
use super::plivo::endpoint_token::EndpointToken;
use super::rest::RestFailure;
use super::signalwire::api::SignalWireApi;
use super::telnyx::api::TelnyxApi;
use super::twilio::access_token::AccessToken;
use crate::domain::time::Timestamp;

/// The providers that issue voice tokens, by their name in
/// `VOICE_TOKEN_PROVIDER`.
pub const VOICE_TOKEN_PROVIDERS: [&str; 4] = ["twilio", "plivo", "telnyx", "signalwire"];

/// How long a Telnyx access token lasts (Telnyx's rule), when the token
/// does not say.
const TELNYX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What the configuration read of the providers' REST APIs, for voice
/// tokens and missed-call texts; each credential is `None` when its
/// variable is unset (the token route then answers 503 naming it, a text
/// is skipped).
#[derive(Debug, Clone, Default)]
pub struct VoiceTokenSettings {
    /// `VOICE_TOKEN_PROVIDER`: one of [`VOICE_TOKEN_PROVIDERS`]; unset, the
    /// only provider configured.
    pub provider: Option<&'static str>,
    /// `VOICE_TOKEN_TTL_SECS`.
    pub ttl: Duration,
    /// `TWILIO_ACCOUNT_SID`, `TWILIO_API_KEY_SID`, `TWILIO_API_KEY_SECRET`,
    /// `TWILIO_TWIML_APP_SID`.
    pub twilio_account_sid: Option<String>,
    pub twilio_api_key_sid: Option<String>,
    pub twilio_api_key_secret: Option<SecretString>,
    pub twilio_twiml_app_sid: Option<String>,
    /// The current `TWILIO_AUTH_TOKEN` and `TWILIO_API_BASE` (texts).
    pub twilio_auth_token: Option<SecretString>,
    pub twilio_api_base: Option<Url>,
    /// `PLIVO_AUTH_ID`, and the current `PLIVO_AUTH_TOKEN`.
    pub plivo_auth_id: Option<String>,
    pub plivo_auth_token: Option<SecretString>,
    /// `PLIVO_API_BASE` (texts).
    pub plivo_api_base: Option<Url>,
    /// `TELNYX_API_KEY`, `TELNYX_API_BASE`.
    pub telnyx_api_key: Option<SecretString>,
    pub telnyx_api_base: Option<Url>,
    /// `SIGNALWIRE_PROJECT_ID`, `SIGNALWIRE_API_TOKEN`, and
    /// `SIGNALWIRE_API_BASE` (or `https://<SIGNALWIRE_SPACE>.signalwire.com`).
    pub signalwire_project_id: Option<String>,
    pub signalwire_api_token: Option<SecretString>,
    pub signalwire_api_base: Option<Url>,
}

/// A softphone's credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VoiceToken {
    pub provider: &'static str,
    pub identity: String,
    pub token: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum VoiceTokenError {
    /// A variable it needs is unset: 503 naming it.
    #[error("{0} is not set on this service")]
    NotConfigured(&'static str),
    /// The provider's API did not mint one.
    #[error("{provider} did not issue a token: {failure}")]
    Provider {
        provider: &'static str,
        failure: RestFailure,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Issues voice tokens with the chosen provider's credentials: built once,
/// at start (with the provider's REST client, where it has one).
#[derive(Clone)]
pub(crate) struct VoiceTokens {
    issuer: Result<Issuer, &'static str>,
    ttl: Duration,
}

#[derive(Clone)]
enum Issuer {
    Twilio {
        account_sid: String,
        api_key_sid: String,
        api_key_secret: SecretString,
        twiml_app_sid: Option<String>,
    },
    Plivo {
        auth_id: String,
        auth_token: SecretString,
    },
    Telnyx(TelnyxApi),
    SignalWire(SignalWireApi),
}

impl VoiceTokens {
    /// From the settings, with `configured` the providers whose webhook
    /// credential is set (the default choice when there is one).
    pub(crate) fn new<'a>(
        settings: &VoiceTokenSettings,
        apis: &ProviderApis,
        configured: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let configured: Vec<&str> = configured.into_iter().collect();
        let provider = settings.provider.or(match configured[..] {
            [only] => VOICE_TOKEN_PROVIDERS.iter().copied().find(|p| *p == only),
            _ => None,
        });
        let issuer = match provider {
            None => Err("VOICE_TOKEN_PROVIDER"),
            Some(provider) => Issuer::configure(provider, settings, apis),
        };
        Self {
            issuer,
            ttl: settings.ttl,
        }
    }

    /// A token for the softphone `identity`, issued at `now`.
    pub(crate) async fn issue(
        &self,
        identity: &str,
        now: Timestamp,
    ) -> Result<VoiceToken, VoiceTokenError> {
        let issuer = self
            .issuer
            .as_ref()
            .map_err(|variable| VoiceTokenError::NotConfigured(variable))?;
        let not_before = now.unix_millis().div_euclid(1000);
        let lifetime_secs = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expires = |secs: i64| {
            Timestamp::from_unix_millis(secs.saturating_mul(1000))
                .ok_or_else(|| VoiceTokenError::Unexpected(anyhow::anyhow!("a time out of range")))
        };
        let signed = |result: Result<String, serde_json::Error>| {
            result.map_err(|err| VoiceTokenError::Unexpected(err.into()))
        };
        let (provider, token, expires_at) = match issuer {
            Issuer::Twilio {
                account_sid,
                api_key_sid,
                api_key_secret,
                twiml_app_sid,
            } => {
                let token = signed(
                    AccessToken {
                        account_sid,
                        api_key_sid,
                        identity,
                        twiml_app_sid: twiml_app_sid.as_deref(),
                        not_before,
                        lifetime_secs,
                    }
                    .sign(api_key_secret.expose_secret().as_bytes()),
                )?;
                ("twilio", token, expires(not_before + lifetime_secs)?)
            }
            Issuer::Plivo {
                auth_id,
                auth_token,
            } => {
                let token = signed(
                    EndpointToken {
                        auth_id,
                        username: identity,
                        not_before,
                        lifetime_secs,
                        jti: &format!("{identity}-{not_before}"),
                        incoming: true,
                        outgoing: false,
                    }
                    .sign(auth_token.expose_secret().as_bytes()),
                )?;
                ("plivo", token, expires(not_before + lifetime_secs)?)
            }
            Issuer::Telnyx(api) => {
                let token = api.credential_token(identity).await.map_err(|failure| {
                    VoiceTokenError::Provider {
                        provider: "telnyx",
                        failure,
                    }
                })?;
                let expires_at = match token_expiry(&token) {
                    Some(exp) => expires(exp)?,
                    None => now.after(TELNYX_TOKEN_LIFETIME),
                };
                ("telnyx", token, expires_at)
            }
            Issuer::SignalWire(api) => {
                // SignalWire counts in whole minutes.
                let minutes = self.ttl.as_secs().div_ceil(60);
                let token = api.relay_jwt(identity, minutes).await.map_err(|failure| {
                    VoiceTokenError::Provider {
                        provider: "signalwire",
                        failure,
                    }
                })?;
                let expires_at = match token_expiry(&token) {
                    Some(exp) => expires(exp)?,
                    None => now.after(Duration::from_secs(minutes * 60)),
                };
                ("signalwire", token, expires_at)
            }
        };
        Ok(VoiceToken {
            provider,
            identity: identity.to_owned(),
            token,
            expires_at,
        })
    }
}

/// The `exp` a provider's JWT states, in Unix seconds.
fn token_expiry(token: &str) -> Option<i64> {
    jwt::unverified_claims(token)?.get("exp")?.as_i64()
}

impl Issuer {
    /// `provider`'s issuer, or the first variable it lacks.
    fn configure(
        provider: &str,
        s: &VoiceTokenSettings,
        apis: &ProviderApis,
    ) -> Result<Self, &'static str> {
        fn needs<T: Clone>(value: &Option<T>, variable: &'static str) -> Result<T, &'static str> {
            value.clone().ok_or(variable)
        }
        Ok(match provider {
            "twilio" => Self::Twilio {
                account_sid: needs(&s.twilio_account_sid, "TWILIO_ACCOUNT_SID")?,
                api_key_sid: needs(&s.twilio_api_key_sid, "TWILIO_API_KEY_SID")?,
                api_key_secret: needs(&s.twilio_api_key_secret, "TWILIO_API_KEY_SECRET")?,
                twiml_app_sid: s.twilio_twiml_app_sid.clone(),
            },
            "plivo" => Self::Plivo {
                auth_id: needs(&s.plivo_auth_id, "PLIVO_AUTH_ID")?,
                auth_token: needs(&s.plivo_auth_token, "PLIVO_AUTH_TOKEN")?,
            },
            // The APIs' clients are the ones built at start, shared.
            "telnyx" => Self::Telnyx(apis.telnyx.clone()?),
            "signalwire" => Self::SignalWire(apis.signalwire.clone()?),
            _ => return Err("VOICE_TOKEN_PROVIDER"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> VoiceTokenSettings {
        VoiceTokenSettings {
            ttl: Duration::from_secs(3600),
            ..VoiceTokenSettings::default()
        }
    }

    #[tokio::test]
    async fn the_provider_is_the_only_one_configured_or_must_be_named() {
        let at = Timestamp::from_unix_millis(1_800_000_000_000).unwrap();
        let none = VoiceTokens::new(
            &settings(),
            &ProviderApis::new(&settings()),
            ["twilio", "plivo"],
        );
        assert!(matches!(
            none.issue("alice", at).await,
            Err(VoiceTokenError::NotConfigured("VOICE_TOKEN_PROVIDER"))
        ));
        let twilio = VoiceTokens::new(&settings(), &ProviderApis::new(&settings()), ["twilio"]);
        assert!(matches!(
            twilio.issue("alice", at).await,
            Err(VoiceTokenError::NotConfigured("TWILIO_ACCOUNT_SID"))
        ));
        let mut s = settings();
        s.provider = Some("plivo");
        s.plivo_auth_id = Some("MAXXXXXXXXXXXXXXXXXX".into());
        let plivo = VoiceTokens::new(&s, &ProviderApis::new(&s), ["twilio", "plivo"]);
        assert!(matches!(
            plivo.issue("alice", at).await,
            Err(VoiceTokenError::NotConfigured("PLIVO_AUTH_TOKEN"))
        ));
        s.plivo_auth_token = Some(SecretString::from("token"));
        let issued = VoiceTokens::new(&s, &ProviderApis::new(&s), [])
            .issue("alice", at)
            .await
            .unwrap();
        assert_eq!(issued.provider, "plivo");
        assert_eq!(issued.expires_at, at.after(Duration::from_secs(3600)));
        let claims = jwt::unverified_claims(&issued.token).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["jti"], "alice-1800000000");
    }
}
