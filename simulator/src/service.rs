//! The service under test, as the simulator reaches it: over HTTP only,
//! either started here in-process with throw-away secrets or a running
//! deployment (`--target`). Also the admin side of the call: registering
//! the scenario's subscriber, reading the session, cleaning up.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use tokio::sync::oneshot;

use super::Error;
use super::cpaas::kit::{Cpaas, SIGNALWIRE_SPACE, telnyx_public_key};
use super::messaging::MessagingApi;
use super::receiver::Receiver;
use super::scenario::{Scenario, ScenarioError};
use ringrelay_server::clock::WallClock;
use ringrelay_server::config::Config;
use ringrelay_server::notify::signing::WebhookSecret;
use ringrelay_server::startup::{Application, Inputs};

/// A running deployment to drive, and its secrets.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to send requests.
    pub url: String,
    /// What the deployment checks CPaaS signatures against (its
    /// `PUBLIC_BASE_URL`).
    pub public_base_url: String,
    pub admin_token: SecretString,
    /// The auth token of the scenario's provider.
    pub provider_token: SecretString,
    pub webhook_secret: WebhookSecret,
}

/// The service, wherever it runs.
pub struct Service {
    pub client: reqwest::Client,
    pub target: Target,
    /// The clock the service's rules read: the scenario's in process, the
    /// system's for a deployment.
    pub clock: WallClock,
    /// Stops the in-process service when dropped.
    stop_in_process: Option<oneshot::Sender<()>>,
    /// The provider's REST API the in-process service sends texts
    /// through; a deployment uses the provider's own.
    pub messaging: Option<MessagingApi>,
}

/// What registering the subscriber gave back.
pub struct Registration {
    pub number: String,
    /// The subscriber as stored, defaults filled in.
    pub stored: Value,
    pub device_token: SecretString,
}

/// Longer than the longest instruction long-poll (30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// How long a connection may idle before the client drops it rather than
/// reuse it: under the servers' usual keep-alive.
const IDLE_CONNECTION: Duration = Duration::from_secs(2);

/// The secret the simulator signs with for `provider` (for Telnyx, the
/// base64 seed of its key pair), and the variables that give the
/// in-process service its side of it.
fn provider_secrets(provider: Cpaas) -> (String, Vec<(String, String)>) {
    let var = |name: &str, value: &str| (name.to_owned(), value.to_owned());
    match provider {
        Cpaas::Twilio | Cpaas::Plivo => {
            let token = random_token();
            let vars = vec![var(provider.credential_variable(), &token)];
            (token, vars)
        }
        Cpaas::SignalWire => {
            let key = random_token();
            let vars = vec![
                var(provider.credential_variable(), &key),
                var("SIGNALWIRE_SIP_DOMAIN", SIGNALWIRE_SPACE),
            ];
            (key, vars)
        }
        // Telnyx signs with its private key: the simulator holds a fresh
        // pair, the service its public half.
        Cpaas::Telnyx => {
            let seed = rand::random::<[u8; 32]>();
            let vars = vec![var(
                provider.credential_variable(),
                &telnyx_public_key(&seed),
            )];
            (BASE64.encode(seed), vars)
        }
    }
}

impl Service {
    /// Starts the service here: memory store, random secrets, a free port on
    /// 127.0.0.1 that is also its `PUBLIC_BASE_URL`, and `clock` for its
    /// rules.
    pub async fn in_process(provider: Cpaas, clock: WallClock) -> anyhow::Result<Self> {
        let admin_token = random_token();
        let (provider_token, provider_vars) = provider_secrets(provider);
        let messaging = MessagingApi::start(provider, provider_token.clone().into()).await?;
        let api_vars = provider
            .api_variables(messaging.base())
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value));
        let webhook_secret = format!("whsec_{}", BASE64.encode(rand::random::<[u8; 32]>()));
        // The listener's port must be known before the configuration is
        // built (it is the PUBLIC_BASE_URL signatures are checked against),
        // so a free one is found first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let vars = [
            ("HOST", "127.0.0.1"),
            ("PORT", &port.to_string()),
            ("PUBLIC_BASE_URL", &url),
            ("ADMIN_TOKEN", &admin_token),
            ("WEBHOOK_SECRET", &webhook_secret),
            // The webhook receiver is on loopback.
            ("ALLOW_PRIVATE_WEBHOOKS", "true"),
            // The carrier's forward takes no real time here: a call that is
            // not forwarded is known lost quickly.
            ("FORWARD_TIMEOUT_SECS", "2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::from_vars(vars.into_iter().chain(provider_vars).chain(api_vars))
            .context("configuring the service")?;
        let inputs = Inputs {
            clock: clock.clone(),
            ..Inputs::default()
        };
        let app = Application::build_with(config, inputs)
            .await
            .context("starting the service")?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            client: client()?,
            target: Target {
                url: url.clone(),
                public_base_url: url,
                admin_token: admin_token.into(),
                provider_token: provider_token.into(),
                webhook_secret: WebhookSecret::parse(&webhook_secret)
                    .map_err(anyhow::Error::msg)?,
            },
            clock,
            stop_in_process: Some(stop),
            messaging: Some(messaging),
        })
    }

    pub fn remote(target: Target) -> anyhow::Result<Self> {
        Ok(Self {
            client: client()?,
            target,
            clock: WallClock::System,
            stop_in_process: None,
            messaging: None,
        })
    }

    pub fn is_remote(&self) -> bool {
        self.stop_in_process.is_none()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.url.trim_end_matches('/'))
    }

    /// Where to send a request for `url`, an absolute URL the service
    /// built from its `PUBLIC_BASE_URL` (a capability URL).
    pub fn reach(&self, url: &str) -> String {
        match url.strip_prefix(self.target.public_base_url.trim_end_matches('/')) {
            Some(path) => self.url(path),
            None => url.to_owned(),
        }
    }

    fn admin(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(self.target.admin_token.expose_secret())
    }

    /// PUTs the scenario's subscriber with every destination's webhook going
    /// to `receiver`. A body the service refuses (422) is a bad scenario.
    /// On a deployment, a subscriber that already exists is left alone: the
    /// simulator deletes what it registered, and must not take a real one.
    pub async fn register(
        &self,
        scenario: &Scenario,
        receiver: &Receiver,
    ) -> Result<Registration, Error> {
        let number = &scenario.subscriber.number;
        if self.is_remote() {
            let existing = self
                .admin(
                    self.client
                        .get(self.url(&format!("/v1/subscribers/{number}"))),
                )
                .send()
                .await
                .context("GET /v1/subscribers")?;
            if existing.status() == StatusCode::OK {
                return Err(Error::Scenario(ScenarioError {
                    key: "subscriber.number".into(),
                    problem: format!(
                        "{number} is already a subscriber of the target; simulate with another number"
                    ),
                }));
            }
        }
        let mut body = Value::Object(scenario.subscriber.body.clone());
        if let Some(destinations) = body["destinations"].as_array_mut() {
            for destination in destinations {
                let id = destination["id"].as_str().unwrap_or_default().to_owned();
                destination["webhook_url"] = Value::String(receiver.url(&id));
            }
        }
        let response = self
            .admin(
                self.client
                    .put(self.url(&format!("/v1/subscribers/{number}"))),
            )
            .query(&[("rotate_tokens", "true")])
            .json(&body)
            .send()
            .await
            .context("PUT /v1/subscribers")?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::OK | StatusCode::CREATED => Ok(Registration {
                number: answer["subscriber"]["number"]
                    .as_str()
                    .unwrap_or(number)
                    .to_owned(),
                device_token: answer["device_token"]
                    .as_str()
                    .ok_or_else(|| Error::broken("the PUT answer has no device_token"))?
                    .to_owned()
                    .into(),
                stored: answer["subscriber"].clone(),
            }),
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                let message = answer["message"].as_str().unwrap_or("refused");
                // The receiver the webhooks go to listens on this machine: a
                // deployment must allow private targets to be driven.
                let hint = if self.is_remote() && message.contains("ALLOW_PRIVATE_WEBHOOKS") {
                    " (the destinations' webhooks go to the simulator's receiver on this \
                     machine: set ALLOW_PRIVATE_WEBHOOKS=true on the target)"
                } else {
                    ""
                };
                Err(Error::Scenario(ScenarioError {
                    key: "subscriber".into(),
                    problem: format!("the service refused it: {message}{hint}"),
                }))
            }
            other => Err(Error::broken(format!(
                "PUT /v1/subscribers/{number} answered {other}"
            ))),
        }
    }

    /// The session as the admin sees it.
    pub async fn session(&self, id: &str) -> Result<Value, Error> {
        self.admin_read(&format!("/v1/sessions/{id}")).await
    }

    /// The stored subscriber (`GET /v1/subscribers/{number}`) as the admin reads it.
    pub async fn subscriber(&self, number: &str) -> Result<Value, Error> {
        self.admin_read(&format!("/v1/subscribers/{number}")).await
    }

    /// `GET path` with the admin token; anything but 200 breaks the contract.
    async fn admin_read(&self, path: &str) -> Result<Value, Error> {
        let response = self
            .admin(self.client.get(self.url(path)))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        if response.status() != StatusCode::OK {
            return Err(Error::broken(format!(
                "GET {path} answered {}",
                response.status()
            )));
        }
        Ok(response
            .json()
            .await
            .with_context(|| format!("reading GET {path}"))?)
    }

    pub async fn delete_subscriber(&self, number: &str) -> anyhow::Result<()> {
        let response = self
            .admin(
                self.client
                    .delete(self.url(&format!("/v1/subscribers/{number}"))),
            )
            .send()
            .await
            .context("DELETE /v1/subscribers")?;
        anyhow::ensure!(
            response.status().is_success(),
            "DELETE /v1/subscribers/{number} answered {}",
            response.status()
        );
        Ok(())
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        // Servers close idle connections after a few seconds (actix-web
        // and many proxies after 5 s): one idle that long, while the
        // simulator waited for webhooks, could be closed under the next
        // request ("connection closed before message completed").
        .pool_idle_timeout(IDLE_CONNECTION)
        .build()
        .context("building the HTTP client")
}

/// 32 random alphanumeric characters.
fn random_token() -> String {
    use rand::distr::{Alphanumeric, SampleString as _};
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}
