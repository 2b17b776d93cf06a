//! Plivo's endpoint access token: the JWT a Plivo Browser or mobile SDK
//! logs an endpoint in with (`loginWithAccessToken`), minted here as
//! Plivo's server SDKs mint it: HS256 with the auth token, header
//! `cty: plivo;v=1`, `iss` the Auth ID, `sub` the endpoint's username.

use serde::Serialize;

use crate::providers::jwt;

#[derive(Serialize)]
struct Header {
    alg: &'static str,
    cty: &'static str,
    typ: &'static str,
}

/// In the order Plivo's SDKs write them (their test vector depends on it).
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    exp: i64,
    nbf: i64,
    jti: &'a str,
    grants: Grants,
}

#[derive(Serialize)]
struct Grants {
    voice: VoiceGrants,
}

#[derive(Serialize)]
struct VoiceGrants {
    incoming_allow: bool,
    outgoing_allow: bool,
}

/// What an endpoint token says.
pub(crate) struct EndpointToken<'a> {
    pub auth_id: &'a str,
    pub username: &'a str,
    /// Unix seconds.
    pub not_before: i64,
    pub lifetime_secs: i64,
    pub jti: &'a str,
    pub incoming: bool,
    pub outgoing: bool,
}

impl EndpointToken<'_> {
    /// The token, signed with `auth_token`.
    pub(crate) fn sign(&self, auth_token: &[u8]) -> Result<String, serde_json::Error> {
        jwt::hs256(
            &Header {
                alg: "HS256",
                cty: "plivo;v=1",
                typ: "JWT",
            },
            &Claims {
                iss: self.auth_id,
                sub: self.username,
                exp: self.not_before + self.lifetime_secs,
                nbf: self.not_before,
                jti: self.jti,
                grants: Grants {
                    voice: VoiceGrants {
                        incoming_allow: self.incoming,
                        outgoing_allow: self.outgoing,
                    },
                },
            },
            auth_token,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of Plivo's own SDK (plivo-go's `TestJwt`): Auth ID
    /// `MADADADADADADADADADA`, auth token `qwerty`, endpoint `username`,
    /// valid from 12121212 for 300 s, id `username-12345`, both grants.
    #[test]
    fn plivos_sdk_vector_is_reproduced_byte_for_byte() {
        let token = EndpointToken {
            auth_id: "MADADADADADADADADADA",
            username: "username",
            not_before: 12_121_212,
            lifetime_secs: 300,
            jti: "username-12345",
            incoming: true,
            outgoing: true,
        }
        .sign(b"qwerty")
        .unwrap();
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsImN0eSI6InBsaXZvO3Y9MSIsInR5cCI6IkpXVCJ9.\
             eyJpc3MiOiJNQURBREFEQURBREFEQURBREFEQSIsInN1YiI6InVzZXJuYW1lIiwiZXhwIjoxMjEyMTUxMiwibmJmIjoxMjEyMTIxMiwianRpIjoidXNlcm5hbWUtMTIzNDUiLCJncmFudHMiOnsidm9pY2UiOnsiaW5jb21pbmdfYWxsb3ciOnRydWUsIm91dGdvaW5nX2FsbG93Ijp0cnVlfX19.\
             IpHETNEfApAE6aalOgb4OazlfFB64PF02oP-ww5TfSM"
        );
    }
}
