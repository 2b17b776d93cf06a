//! Test harness: a real `redis-server` per test on a free port, the service on
//! port 0 with its own key prefix, and request helpers.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ringrelay::config::Config;
use ringrelay::startup::Application;
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const TWILIO_AUTH_TOKEN: &str = "test-twilio-auth-token";
pub const PUBLIC_BASE_URL: &str = "https://relay.example.com";

/// A `redis-server` of this test's own, stopped when dropped.
pub struct TestRedis {
    child: std::sync::Mutex<Option<Child>>,
    port: u16,
}

impl TestRedis {
    pub fn start() -> Arc<Self> {
        let mut last_output = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "yes",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is not installed: run scripts/test, which installs it");
            let stdout = child.stdout.take().expect("piped stdout");
            // Readiness is what redis-server says, not a guess at timing.
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut said = String::new();
                let mut announced = false;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if !announced {
                        said.push_str(&line);
                        said.push('\n');
                        if line.contains("Ready to accept connections") {
                            announced = true;
                            let _ = ready_tx.send(Ok(()));
                        }
                    }
                }
                if !announced {
                    let _ = ready_tx.send(Err(said));
                }
            });
            match ready_rx.recv_timeout(Duration::from_secs(20)) {
                Ok(Ok(())) => {
                    return Arc::new(Self {
                        child: std::sync::Mutex::new(Some(child)),
                        port,
                    });
                }
                Ok(Err(output)) => last_output = output,
                Err(_) => last_output = "redis-server did not get ready within 20 s".into(),
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server:\n{last_output}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server, as an outage would.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A plain connection, to look at keys the way an operator would.
    pub async fn connection(&self) -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Which store an app under test runs on.
#[derive(Clone)]
pub enum Backend {
    Memory,
    Redis(Arc<TestRedis>),
}

impl Backend {
    pub fn redis() -> Self {
        Self::Redis(TestRedis::start())
    }

    pub fn test_redis(&self) -> &TestRedis {
        match self {
            Self::Redis(r) => r,
            Self::Memory => panic!("this test needs the Redis backend"),
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The configuration the app runs with (its key prefix, for one).
    pub config: Config,
    /// The store's backend; holding it keeps the test's redis-server alive.
    pub backend: Backend,
}

/// The configuration tests run with, plus `extra` (which wins; an empty value
/// unsets a variable).
pub fn test_config(
    backend: &Backend,
    extra: &[(&str, &str)],
) -> Result<Config, ringrelay::config::ConfigError> {
    let mut vars: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("PUBLIC_BASE_URL".into(), PUBLIC_BASE_URL.into()),
        ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ("TWILIO_AUTH_TOKEN".into(), TWILIO_AUTH_TOKEN.into()),
        ("WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
    ];
    if let Backend::Redis(redis) = backend {
        vars.push(("REDIS_URL".into(), redis.url()));
        vars.push(("REDIS_KEY_PREFIX".into(), unique_prefix()));
    }
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_string(), value.to_string()));
    }
    Config::from_vars(vars)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let config = test_config(&backend, extra).expect("test configuration is valid");
    let app = Application::build(config.clone())
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        config,
        backend,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn put_subscriber(&self, number: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v1/subscribers/{number}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_subscriber(&self, number: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/subscribers/{number}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_subscriber(&self, number: &str) -> reqwest::Response {
        self.client
            .delete(self.url(&format!("/v1/subscribers/{number}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }
}

/// The tokens a registration showed.
pub struct Registered {
    pub device_token: String,
    pub destination_tokens: std::collections::BTreeMap<String, String>,
}

impl TestApp {
    /// Registers a subscriber; fails the test unless it is created.
    pub async fn register(&self, number: &str, body: &Value) -> Registered {
        let response = self.put_subscriber(number, body).await;
        assert_eq!(response.status(), 201, "registering {number}");
        let created: Value = response.json().await.unwrap();
        Registered {
            device_token: created["device_token"].as_str().unwrap().to_owned(),
            destination_tokens: serde_json::from_value(created["destination_tokens"].clone())
                .unwrap(),
        }
    }

    pub async fn ring(&self, device_token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/ring"))
            .bearer_auth(device_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_session(&self, token: &str, session_id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/sessions/{session_id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form to a Twilio route, signed as Twilio signs it with the
    /// app's auth token over `PUBLIC_BASE_URL` + `path_and_query`.
    pub async fn twilio(&self, path_and_query: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signature = ringrelay::providers::twilio::signature::sign(
            TWILIO_AUTH_TOKEN.as_bytes(),
            &format!("{PUBLIC_BASE_URL}{path_and_query}"),
            &pairs,
        );
        self.client
            .post(self.url(path_and_query))
            .header("X-Twilio-Signature", signature)
            .form(&pairs)
            .send()
            .await
            .unwrap()
    }

    /// A signed Twilio webhook answered 200 with TwiML; its parsed tree.
    pub async fn twiml(
        &self,
        path_and_query: &str,
        params: &[(&str, &str)],
    ) -> crate::markup::Node {
        let response = self.twilio(path_and_query, params).await;
        assert_eq!(response.status(), 200, "{path_and_query}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/xml"),
            "TwiML is text/xml"
        );
        let root = crate::markup::parse(&response.text().await.unwrap());
        assert_eq!(root.name, "Response");
        root
    }
}

/// The path and query of an absolute URL of ours (a Dial `action`).
pub fn local_path(absolute: &str) -> String {
    absolute
        .strip_prefix(PUBLIC_BASE_URL)
        .unwrap_or_else(|| panic!("{absolute} is not under {PUBLIC_BASE_URL}"))
        .to_owned()
}

/// The contract's example subscriber.
pub fn example_subscriber() -> Value {
    json!({
        "forwarding_number": "+12025550100",
        "mode": "auto",
        "strategy": "sequential",
        "ring_timeout_secs": 20,
        "pick_timeout_secs": 15,
        "destinations": [
            {"id": "desk", "kind": "phone", "address": "+12025550201",
             "webhook_url": "https://crm.example.com/hooks/calls", "screening": false},
            {"id": "laptop", "kind": "client", "address": "alice"},
            {"id": "pbx", "kind": "sip", "address": "sip:alice@pbx.example.com"}
        ],
        "fallback": {"kind": "voicemail"}
    })
}

/// Asserts the contract's error shape and returns the body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|ct| ct.to_str().unwrap().starts_with("application/json")),
        "error bodies are JSON"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "exactly error and message: {body}"
    );
    body
}

/// Runs each listed test body once per store backend:
/// `both_backends!(name => |backend| async move { ... })`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:expr;)+) => {
        mod memory {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    ($body)($crate::helpers::Backend::Memory).await
                }
            )+
        }
        mod redis {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    ($body)($crate::helpers::Backend::redis()).await
                }
            )+
        }
    };
}
