//! Twilio's Access Token: the JWT a Twilio Voice SDK registers a `<Client>`
//! identity with, minted here as Twilio's helper libraries mint it: HS256
//! with an API key's secret, header `cty: twilio-fpa;v=1`, `iss` the API
//! key's SID, `sub` the account SID, and a voice grant.

use serde::Serialize;

use crate::providers::jwt;

#[derive(Serialize)]
struct Header {
    typ: &'static str,
    alg: &'static str,
    cty: &'static str,
}

#[derive(Serialize)]
struct Claims<'a> {
    jti: String,
    iss: &'a str,
    sub: &'a str,
    nbf: i64,
    exp: i64,
    grants: Grants<'a>,
}

#[derive(Serialize)]
struct Grants<'a> {
    identity: &'a str,
    voice: VoiceGrant<'a>,
}

#[derive(Serialize)]
struct VoiceGrant<'a> {
    incoming: Incoming,
    #[serde(skip_serializing_if = "Option::is_none")]
    outgoing: Option<Outgoing<'a>>,
}

#[derive(Serialize)]
struct Incoming {
    allow: bool,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    application_sid: &'a str,
}

/// What an access token says.
pub(crate) struct AccessToken<'a> {
    pub account_sid: &'a str,
    pub api_key_sid: &'a str,
    pub identity: &'a str,
    /// The TwiML app outgoing calls run, when the softphone may call out.
    pub twiml_app_sid: Option<&'a str>,
    /// Unix seconds.
    pub not_before: i64,
    pub lifetime_secs: i64,
}

impl AccessToken<'_> {
    /// The token, signed with the API key's secret.
    pub(crate) fn sign(&self, api_key_secret: &[u8]) -> Result<String, serde_json::Error> {
        jwt::hs256(
            &Header {
                typ: "JWT",
                alg: "HS256",
                cty: "twilio-fpa;v=1",
            },
            &Claims {
                jti: format!("{}-{}", self.api_key_sid, self.not_before),
                iss: self.api_key_sid,
                sub: self.account_sid,
                nbf: self.not_before,
                exp: self.not_before + self.lifetime_secs,
                grants: Grants {
                    identity: self.identity,
                    voice: VoiceGrant {
                        incoming: Incoming { allow: true },
                        outgoing: self
                            .twiml_app_sid
                            .map(|application_sid| Outgoing { application_sid }),
                    },
                },
            },
            api_key_secret,
        )
    }
}
