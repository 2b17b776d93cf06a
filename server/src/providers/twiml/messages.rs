//! The TwiML family's Messages resource (Twilio's, and SignalWire's under
//! `/api/laml`): a form of `From`, `To` and `Body`, posted with the
//! account's basic auth.

use secrecy::{ExposeSecret as _, SecretString};

use crate::flow::model::{TextAttempt, TextMessage};
use crate::providers::rest;

/// `POST {url}` (`…/Accounts/{account}/Messages.json`) as `user`.
pub(crate) async fn send(
    client: &reqwest::Client,
    url: url::Url,
    user: &str,
    password: &SecretString,
    message: &TextMessage,
) -> TextAttempt {
    let form = [
        ("From", message.from.as_str()),
        ("To", message.to.as_str()),
        ("Body", message.body.as_str()),
    ];
    rest::send_text(
        client
            .post(url)
            .basic_auth(user, Some(password.expose_secret()))
            .form(&form),
    )
    .await
}
