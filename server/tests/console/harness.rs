//! The browser harness of the console tests: one `chromedriver` per test
//! binary, a headless Chromium session per test, and the app in-process on
//! the memory store.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use ringrelay_server::config::Config;
use ringrelay_server::startup::Application;
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "test-admin-token-console";
pub const TWILIO_AUTH_TOKEN: &str = "test-twilio-auth-token";
pub const PUBLIC_BASE_URL: &str = "https://relay.example.com";

/// How long a condition may take to hold.
const WAIT: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The port of this test binary's chromedriver, started on first use. A
/// small shell watchdog ends it when the test process is gone (a static's
/// child is never dropped).
#[allow(
    clippy::zombie_processes,
    reason = "the watchdog lives as long as the test process; init reaps it"
)]
fn chromedriver_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let port = free_port();
        Command::new("sh")
            .args([
                "-c",
                "chromedriver --port=\"$1\" --silent & d=$!; \
                 while kill -0 \"$2\" 2>/dev/null && kill -0 \"$d\" 2>/dev/null; do sleep 1; done; \
                 kill \"$d\" 2>/dev/null",
                "sh",
                &port.to_string(),
                &std::process::id().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs (chromedriver: scripts/test installs chromium-driver)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on {port} within 20 s: is chromium-driver installed? (scripts/test installs it)"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        port
    })
}

/// At most two browsers at once: the machine may be small.
static BROWSERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Runs `body` with a fresh headless Chromium, which is closed afterwards
/// whatever the body did; then fails on errors the page collected.
pub async fn with_browser<F>(body: F)
where
    F: AsyncFnOnce(&Client),
{
    let _permit = BROWSERS.acquire().await.unwrap();
    let port = chromedriver_port();
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    let mut options = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--window-size=1200,900"],
    });
    // Debian's chromium, where chromedriver may not look for it.
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    caps.insert("goog:chromeOptions".into(), options);
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session starts");
    let outcome =
        futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(body(&client))).await;
    let errors = if outcome.is_ok() {
        client
            .execute("return window.__consoleErrors || null;", vec![])
            .await
            .ok()
    } else {
        None
    };
    let _ = client.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    if let Some(errors) = errors {
        assert_eq!(errors, json!([]), "errors in the browser's console");
    }
}

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
}

/// The app on port 0, memory store.
pub async fn spawn_app() -> TestApp {
    let vars: Vec<(String, String)> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("PUBLIC_BASE_URL", PUBLIC_BASE_URL),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::from_vars(vars).expect("a valid configuration");
    let app = Application::build(config).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Registers a subscriber; its device token and destination tokens.
    pub async fn register(&self, number: &str, body: &Value) -> Value {
        let response = self
            .http
            .put(self.url(&format!("/v1/subscribers/{number}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "registering {number}");
        response.json().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A form posted to a Twilio route, signed as Twilio signs it.
    pub async fn twilio(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signature = ringrelay_server::providers::twilio::signature::sign(
            TWILIO_AUTH_TOKEN.as_bytes(),
            &format!("{PUBLIC_BASE_URL}{path}"),
            &pairs,
        );
        self.http
            .post(self.url(path))
            .header("X-Twilio-Signature", signature)
            .form(&pairs)
            .send()
            .await
            .unwrap()
    }
}

/// Polls `condition` (a JS expression) until it is true, at most 15 s.
pub async fn wait_until(client: &Client, what: &str, condition: &str) {
    let script = format!("return Boolean({condition});");
    let started = Instant::now();
    loop {
        if client.execute(&script, vec![]).await.unwrap() == json!(true) {
            return;
        }
        assert!(started.elapsed() < WAIT, "waited 15 s for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The field whose label reads exactly `name` (its accessible name).
pub async fn field(client: &Client, name: &str) -> Element {
    let label = client
        .find(Locator::XPath(&format!(
            "//label[normalize-space()='{name}']"
        )))
        .await
        .unwrap_or_else(|_| panic!("a label reading {name:?}"));
    let id = label
        .attr("for")
        .await
        .unwrap()
        .expect("the label names its field");
    client.find(Locator::Id(&id)).await.unwrap()
}

/// The visible button named exactly `name`, within `scope` (XPath) when given.
pub async fn button(client: &Client, scope: &str, name: &str) -> Element {
    client
        .find(Locator::XPath(&format!(
            "{scope}//button[normalize-space()='{name}']"
        )))
        .await
        .unwrap_or_else(|_| panic!("a button named {name:?}"))
}

/// Opens the console and signs in with the token alone.
pub async fn sign_in(client: &Client, app: &TestApp, token: &str) {
    client.goto(&app.url("/console")).await.unwrap();
    field(client, "Token").await.send_keys(token).await.unwrap();
    button(client, "", "Sign in").await.click().await.unwrap();
}

/// The requests of the page that failed (4xx, 5xx), as the browser's
/// resource timing saw them: a correct sign-in shows none in the browser's
/// console.
pub async fn failed_requests(client: &Client) -> Value {
    client
        .execute(
            "return performance.getEntriesByType('resource') \
               .filter(e => e.responseStatus >= 400) \
               .map(e => e.responseStatus + ' ' + e.name);",
            vec![],
        )
        .await
        .unwrap()
}
