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
/// The app's VAPID key (RFC 8291's sender key): Web Push is on.
pub const VAPID_PRIVATE_KEY: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";

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
    browse(body).await;
}

async fn browse<F>(body: F)
where
    F: AsyncFnOnce(&Client),
{
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
        ("VAPID_PRIVATE_KEY", VAPID_PRIVATE_KEY),
        ("VAPID_SUBJECT", "mailto:ops@relay.example.com"),
        ("WEBHOOK_SECRET", ringrelay_testkit::WEBHOOK_SECRET),
        // The tests' webhook receiver listens on 127.0.0.1.
        ("ALLOW_PRIVATE_WEBHOOKS", "true"),
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

/// Clicks the element `locator` finds. A live list re-renders its rows as
/// events arrive, so the element found may be replaced before the click
/// lands (a stale element): then it is found again, for at most 15 s.
pub async fn click(client: &Client, locator: Locator<'_>) {
    let started = Instant::now();
    loop {
        let clicked = match client.find(locator).await {
            Ok(element) => element.click().await.map(drop),
            Err(err) => Err(err),
        };
        match clicked {
            Ok(()) => return,
            Err(err) if err.is_stale_element_reference() || err.is_no_such_element() => {
                assert!(
                    started.elapsed() < WAIT,
                    "waited 15 s to click {locator:?}: {err}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("clicking {locator:?}: {err}"),
        }
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

/// A DevTools protocol command on the page's target, through chromedriver
/// (`goog/cdp/execute`); its result.
pub async fn devtools(client: &Client, method: &str, params: Value) -> Value {
    #[derive(Debug)]
    struct Cdp(Value);
    impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
        fn endpoint(
            &self,
            base_url: &url::Url,
            session_id: Option<&str>,
        ) -> Result<url::Url, url::ParseError> {
            base_url.join(&format!(
                "session/{}/goog/cdp/execute",
                session_id.unwrap_or_default()
            ))
        }
        fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
            (http::Method::POST, Some(self.0.to_string()))
        }
    }
    client
        .issue_cmd(Cdp(json!({"cmd": method, "params": params})))
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// A DevTools socket to the browser's first target of `kind` (`page`,
/// `service_worker`), once there is one.
async fn devtools_socket(
    client: &Client,
    kind: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let address = client
        .capabilities()
        .and_then(|caps| caps.get("goog:chromeOptions"))
        .and_then(|options| options["debuggerAddress"].as_str())
        .expect("chromedriver says where the browser's DevTools listen")
        .to_owned();
    let started = Instant::now();
    let target = loop {
        let targets: Value = reqwest::get(format!("http://{address}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == kind)
            .cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(started.elapsed() < WAIT, "no {kind} target: {targets}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let url = target["webSocketDebuggerUrl"].as_str().unwrap();
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Sends `method` with `params` on `socket` and returns the answer, passing
/// each event that comes first to `on_event`.
async fn devtools_call(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    id: u64,
    method: &str,
    params: Value,
    mut on_event: impl FnMut(&Value),
) -> Value {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let request = json!({"id": id, "method": method, "params": params});
    socket
        .send(Message::Text(request.to_string().into()))
        .await
        .unwrap();
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .unwrap_or_else(|_| panic!("{method} answers within 15 s"))
            .expect("the DevTools socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
            on_event(&answer);
        }
    }
}

/// Delivers `data` as a push message to the page's service worker whose
/// scope ends with `scope`, as a push service would (DevTools'
/// `ServiceWorker.deliverPushMessage`, which wants the registration's id:
/// the `ServiceWorker` domain says it once enabled).
pub async fn deliver_push(client: &Client, origin: &str, scope: &str, data: &str) {
    let mut socket = devtools_socket(client, "page").await;
    let mut registration: Option<String> = None;
    devtools_call(&mut socket, 1, "ServiceWorker.enable", json!({}), |event| {
        if event["method"] == "ServiceWorker.workerRegistrationUpdated" {
            for r in event["params"]["registrations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if r["scopeURL"].as_str().is_some_and(|s| s.ends_with(scope))
                    && r["isDeleted"] != true
                {
                    registration = r["registrationId"].as_str().map(str::to_owned);
                }
            }
        }
    })
    .await;
    // The registrations may be announced just after the answer.
    let mut next_id = 2;
    while registration.is_none() {
        devtools_call(
            &mut socket,
            next_id,
            "Runtime.evaluate",
            json!({"expression": "1"}),
            |event| {
                if event["method"] == "ServiceWorker.workerRegistrationUpdated" {
                    for r in event["params"]["registrations"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        if r["scopeURL"].as_str().is_some_and(|s| s.ends_with(scope))
                            && r["isDeleted"] != true
                        {
                            registration = r["registrationId"].as_str().map(str::to_owned);
                        }
                    }
                }
            },
        )
        .await;
        next_id += 1;
        assert!(next_id < 200, "no registration of scope {scope}");
    }
    devtools_call(
        &mut socket,
        next_id,
        "ServiceWorker.deliverPushMessage",
        json!({"origin": origin, "registrationId": registration, "data": data}),
        |_| {},
    )
    .await;
}

/// Evaluates `expression` (awaiting the promise it makes) in the page's
/// service worker, over the DevTools protocol: what no WebDriver command
/// reaches, such as pressing a notification's action.
pub async fn in_service_worker(client: &Client, expression: &str) -> Value {
    let mut socket = devtools_socket(client, "service_worker").await;
    let result = devtools_call(
        &mut socket,
        1,
        "Runtime.evaluate",
        json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        |_| {},
    )
    .await;
    assert!(result["exceptionDetails"].is_null(), "{result}");
    result["result"]["value"].clone()
}
